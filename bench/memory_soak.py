"""Does the client's memory stay bounded over a long run?  Prints figures; not a test.

``record_run`` (what ``perfkit run`` does, Parquet and telemetry included) sends
``--requests`` requests (default 1M) through ``--concurrency`` closed-loop users
to the ground-truth server (``perfkit.sim.exact``, its own process and CPU),
which answers at once with ``--tokens`` one-token chunks.  The client runs in
its own process, pinned to the other CPU; this script samples its resident
memory (``/proc/PID/status``, VmRSS) every 0.5 s and prints it at each tenth of
the traffic, then the growth from the first tenth to the last (the largest
reading in each), and apart, the peak after the traffic, when the run's rollup
is built (:mod:`perfkit.store.rollup`).

    python bench/memory_soak.py [--requests 1000000] [--concurrency 32] [--tokens 8]

The last line reads ``rss_growth_mb=… rss_first_tenth_mb=… rss_peak_mb=… rollup_peak_mb=… requests=…``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _finished(data: Path) -> bool:
    import json

    for m in data.glob("runs/run_id=*/manifest.json"):
        try:
            return json.loads(m.read_text()).get("status") not in (None, "running")
        except (OSError, ValueError):
            return False
    return False


def _client(url: str, data: str, requests: int, concurrency: int, tokens: int, cpu: int | None, q: Any) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    import asyncio

    from perfkit.client import Endpoint, PhaseSpec
    from perfkit.record import TelemetrySpec, record_run

    phase = PhaseSpec("soak", requests=requests, concurrency=concurrency, prompt_tokens=16, output_tokens=tokens)
    coro = record_run(
        Endpoint(url, model="exact"), [phase], data, telemetry=TelemetrySpec(gpu="off", server_metrics=False)
    )
    try:
        import uvloop

        res = uvloop.run(coro)
    except ImportError:
        res = asyncio.run(coro)
    q.put(res.run_id)


def main() -> None:
    from perfkit.sim.exact import ExactServerProcess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=8)
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu, client_cpu = (cpus[-1], cpus[0]) if len(cpus) >= 2 else (None, None)
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as data, ExactServerProcess(0.0, 0.0, a.tokens, cpu=server_cpu) as server:
        q = ctx.Queue()
        p = ctx.Process(target=_client, args=(server.url, data, a.requests, a.concurrency, a.tokens, client_cpu, q))
        t0 = time.perf_counter()
        p.start()
        samples: list[tuple[float, float, int]] = []  # (s, RSS MB, requests written so far)
        parts = Path(data) / "requests"
        last_count_t, written = 0.0, 0
        traffic_end: float | None = None
        while p.is_alive():
            rss = _rss_mb(p.pid)
            now = time.perf_counter() - t0
            if now - last_count_t >= 5.0:  # requests written so far, from the Parquet footers
                written = 0
                for f in parts.glob("run_id=*/*.parquet"):
                    try:
                        written += pq.read_metadata(f).num_rows
                    except Exception:
                        pass
                last_count_t = now
            if rss is not None:
                samples.append((now, rss, written))
            if traffic_end is None and _finished(Path(data)):
                traffic_end = now  # the final manifest is written before the rollup is built
            time.sleep(0.5)
        run_id = q.get()
        p.join()
        wall = time.perf_counter() - t0
        server.dump(Path(data) / "truth.npz")  # the server's log, cleared
        import perfkit

        with perfkit.open(data) as cat:
            n_ok, n_all = cat.sql(
                f"SELECT count(*) FILTER (WHERE ok), count(*) FROM requests WHERE run_id = '{run_id}'"
            ).fetchall()[0]
    end_t = traffic_end if traffic_end is not None else samples[-1][0]
    traffic = [x for x in samples if x[0] <= end_t]
    print(
        f"{n_all:,} requests ({n_ok:,} ok) in {end_t:.0f} s of traffic ({n_all / end_t:,.0f}/s), {a.concurrency} "
        f"users, {a.tokens} chunks each; client on CPU {client_cpu}, server on CPU {server_cpu}"
    )
    print(f"{'elapsed':>8} {'written':>10} {'RSS MB':>8}")
    for k in range(1, 11):
        s = min(traffic, key=lambda x: abs(x[0] - end_t * k / 10))
        print(f"{s[0]:>7.0f}s {s[2]:>10,} {s[1]:>8.0f}")
    first = max(r for t, r, _ in traffic if t <= end_t / 10)
    last = max(r for t, r, _ in traffic if t >= end_t * 0.9)
    peak = max(r for _, r, _ in traffic)
    after = max((r for t, r, _ in samples if t > end_t), default=float("nan"))
    print(f"after the traffic (final manifest, rollup of the run): peak {after:.0f} MB, {wall - end_t:.1f} s")
    print(
        f"rss_growth_mb={last - first:.0f} rss_first_tenth_mb={first:.0f} rss_peak_mb={peak:.0f} "
        f"rollup_peak_mb={after:.0f} requests={n_all}"
    )


if __name__ == "__main__":
    main()
