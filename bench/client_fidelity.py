"""How much of what perfkit reports is perfkit itself?  Prints figures; not a test.

A ground-truth server (``perfkit.sim.exact``, its own process, pinned to its own
CPU) streams answers on an exact schedule (TTFT 50 ms, then a chunk every 10 ms,
128 one-token chunks) and logs when it read each request and when each chunk
left.  perfkit, pinned to another CPU, holds C concurrent streams against it for
a while (closed loop), exactly as ``perfkit run`` would: real Parquet, telemetry
on.  For C = 1, 32, 128, 512, 1024 it prints

* TTFT and ITL p50/p99 as perfkit reported them, as the server's log has them,
  and the difference (the client's error; positive: perfkit saw it later);
* the per-chunk delivery delay (client timestamp - server write time) p50/p99/max;
* requests/s achieved against what the schedule allows (C / (TTFT + 127 ITL));
* client CPU per request and per chunk (the whole client process: event loop,
  Parquet writer, samplers);
* the server's own state: how late it wrote chunks against its schedule (p99)
  and how long requests waited in its sockets before its loop read them (p99).
  Both grow when the server, not the client, runs out of CPU;
* the run's verdict on itself (``Catalog.fidelity``): ``client-bound`` or
  ``ok``, and the p99 wait of received bytes in their sockets before perfkit
  read them (75th percentile over the 1-s intervals, ms); and, for a
  client-bound run, the evidence in words.

The server's request times are the kernel's receive stamps, and so are
perfkit's chunk times (:mod:`perfkit.net`; ``PERFKIT_RX_STAMPS=0``
times perfkit's reads when its event loop takes them instead, for comparison;
the server keeps its stamps).

Requests sent in the first ``--skip-s`` seconds (connections being opened, users
ramping up) are left out.

    python bench/client_fidelity.py [--quick] [--levels 1,32,128,512,1024] [--duration-s 12] [--workers N]

The last line reads ``c512 ttft_p99_err_ms=... itl_p99_err_ms=...``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import perfkit
from perfkit.client import Endpoint, PhaseSpec
from perfkit.client.endpoint import request_uuid
from perfkit.query.metrics import client_evidence
from perfkit.record import TelemetrySpec, record_run
from perfkit.sim.exact import ExactLog, ExactServerProcess

TTFT_MS, ITL_MS, TOKENS = 50.0, 10.0, 128


def _run(coro):  # the event loop ``perfkit run`` uses
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        import asyncio

        return asyncio.run(coro)


def measure(
    server: ExactServerProcess, c: int, duration_s: float, skip_s: float, tmp: Path, workers: int | None
) -> dict[str, float]:
    ramp = min(2.0, skip_s / 2)
    phase = PhaseSpec(
        f"c{c}",
        duration_s=duration_s,
        concurrency=c,
        ramp_users_s=ramp if c > 1 else 0.0,
        prompt_tokens=16,
        output_tokens=TOKENS,
    )
    spec = TelemetrySpec(gpu="off", server_metrics=False)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    kw = {"workers": workers} if workers else {}
    res = _run(record_run(Endpoint(server.url, model="exact"), [phase], tmp, telemetry=spec, drain_timeout_s=30, **kw))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    truth = server.dump(tmp / f"truth-{c}.npz")
    with perfkit.open(tmp) as cat:
        reqs = cat.sql(
            f"SELECT request_id, sent_ns, first_token_ns, error_kind FROM requests WHERE run_id = '{res.run_id}'"
        ).df()
        chunks = cat.sql(
            f"SELECT request_id, chunk_index, arrival_ns FROM chunks WHERE run_id = '{res.run_id}' "
            f"ORDER BY request_id, chunk_index"
        ).df()
        fid = cat.fidelity(res.run_id).df().iloc[0].to_dict()  # the run's own verdict on itself
    out = compare(res.run_id, reqs, chunks, truth, skip_s, c, cpu_s)
    out["client_bound"] = bool(fid["client_bound"])
    out["read_delay_ms"] = fid.get("read_delay_ms")
    out["evidence"] = client_evidence(fid)
    return out


def compare(run_id: str, reqs, chunks, truth: ExactLog, skip_s: float, c: int, cpu_s: float) -> dict[str, float]:
    index = {tag: i for i, tag in enumerate(truth.tags)}
    t0 = reqs["sent_ns"].min()
    by_req = {rid: g["arrival_ns"].to_numpy() for rid, g in chunks.groupby("request_id")}
    ttft_c, ttft_t, itl_c, itl_t, delay, late, read_lag = [], [], [], [], [], [], []
    n_all = len(reqs)
    for r in reqs.itertuples():
        i = index.get(request_uuid(run_id, r.request_id))
        if i is None or r.error_kind is not None or r.sent_ns < t0 + skip_s * 1e9:
            continue
        w = truth.chunks(i)
        a = by_req.get(r.request_id)
        if a is None or len(a) != len(w):
            continue
        ttft_c.append((r.first_token_ns - r.sent_ns) / 1e6)
        ttft_t.append((w[0] - truth.recv_ns[i]) / 1e6)
        itl_c.append(np.diff(a) / 1e6)
        itl_t.append(np.diff(w) / 1e6)
        delay.append((a - w) / 1e6)
        late.append((w - truth.due_ns[truth.offsets[i] : truth.offsets[i + 1]]) / 1e6)
        read_lag.append((truth.read_ns[i] - truth.recv_ns[i]) / 1e6)
    tc, tt = np.array(ttft_c), np.array(ttft_t)
    ic, it, dl = np.concatenate(itl_c), np.concatenate(itl_t), np.concatenate(delay)
    lt, rl = np.concatenate(late), np.array(read_lag)
    span_s = (reqs["sent_ns"].max() - t0) / 1e9 - skip_s
    ideal = c / ((TTFT_MS + (TOKENS - 1) * ITL_MS) / 1e3)
    p = np.percentile
    return {
        "c": c,
        "requests": len(tc),
        "ttft_p50_rep": p(tc, 50),
        "ttft_p50_true": p(tt, 50),
        "ttft_p99_rep": p(tc, 99),
        "ttft_p99_true": p(tt, 99),
        "itl_p50_rep": p(ic, 50),
        "itl_p50_true": p(it, 50),
        "itl_p99_rep": p(ic, 99),
        "itl_p99_true": p(it, 99),
        "delay_p50": p(dl, 50),
        "delay_p99": p(dl, 99),
        "delay_max": dl.max(),
        "server_late_p99": p(lt, 99),
        "server_read_lag_p99": p(rl, 99),
        "rate": len(tc) / span_s if span_s > 0 else float("nan"),
        "ideal_rate": ideal,
        "cpu_ms_per_req": 1e3 * cpu_s / max(1, n_all),
        "cpu_us_per_chunk": 1e6 * cpu_s / max(1, n_all * TOKENS),
    }


def _ms(v: object) -> str:
    return "-" if v is None or v != v else f"{float(v):.2f}"  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="C = 1, 128 and 512, 6 s each")
    ap.add_argument("--levels", default="1,32,128,512,1024")
    ap.add_argument("--duration-s", type=float, default=12.0)
    ap.add_argument("--skip-s", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=None, help="client worker processes (default: one)")
    a = ap.parse_args()
    levels = [1, 128, 512] if a.quick else [int(x) for x in a.levels.split(",")]
    duration = 6.0 if a.quick else a.duration_s
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu = cpus[-1] if len(cpus) >= 2 else None
    if server_cpu is not None and not a.workers:
        os.sched_setaffinity(0, set(cpus[:-1]))  # the client off the server's CPU
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    rows = []
    with ExactServerProcess(TTFT_MS, ITL_MS, TOKENS, cpu=server_cpu) as server, tempfile.TemporaryDirectory() as tmp:
        for c in levels:
            rows.append(measure(server, c, duration, a.skip_s, Path(tmp), a.workers))
            r = rows[-1]
            print(f"  c={c}: {r['requests']} requests, delivery delay p99 {r['delay_p99']:.2f} ms", file=sys.stderr)
            time.sleep(0.5)
    from perfkit.net import ReadPath

    print(
        f"server pinned to CPU {server_cpu}, client to {cpus[:-1] if server_cpu is not None else 'any'}; "
        f"TTFT {TTFT_MS:g} ms, ITL {ITL_MS:g} ms, {TOKENS} chunks; client reads timed by "
        f"{'kernel receive stamps' if ReadPath.from_env().resolved().stamps else 'the event loop'}; times in ms"
    )
    print(
        f"{'C':>5} {'reqs':>6} | {'TTFT p50 rep/true/err':>23} | {'TTFT p99 rep/true/err':>23} | "
        f"{'ITL p50 err':>11} | {'ITL p99 rep/true/err':>21} | {'delay p50/p99/max':>19} | "
        f"{'req/s got/ideal':>15} | {'CPU ms/req':>10} {'us/chunk':>8} | {'server late/read p99':>20} | "
        f"{'self-check':>22}"
    )
    for r in rows:
        print(
            f"{r['c']:>5} {r['requests']:>6} | {r['ttft_p50_rep']:7.2f} {r['ttft_p50_true']:7.2f} "
            f"{r['ttft_p50_rep'] - r['ttft_p50_true']:+7.2f} | {r['ttft_p99_rep']:7.2f} {r['ttft_p99_true']:7.2f} "
            f"{r['ttft_p99_rep'] - r['ttft_p99_true']:+7.2f} | {r['itl_p50_rep'] - r['itl_p50_true']:+11.3f} | "
            f"{r['itl_p99_rep']:6.2f} {r['itl_p99_true']:6.2f} {r['itl_p99_rep'] - r['itl_p99_true']:+7.3f} | "
            f"{r['delay_p50']:5.2f} {r['delay_p99']:6.2f} {r['delay_max']:6.1f} | "
            f"{r['rate']:7.1f} {r['ideal_rate']:7.1f} | {r['cpu_ms_per_req']:10.2f} {r['cpu_us_per_chunk']:8.2f} | "
            f"{r['server_late_p99']:9.2f} {r['server_read_lag_p99']:10.2f} | "
            f"{'client-bound' if r['client_bound'] else 'ok':>12} {_ms(r['read_delay_ms']):>9}"
        )
    for r in rows:
        if r["evidence"]:
            print(f"  c{r['c']} client-bound: {r['evidence']}")
    last = next((r for r in rows if r["c"] == 512), rows[-1])
    print(
        f"c{last['c']} ttft_p99_err_ms={last['ttft_p99_rep'] - last['ttft_p99_true']:.2f} "
        f"itl_p99_err_ms={last['itl_p99_rep'] - last['itl_p99_true']:.2f}"
    )


if __name__ == "__main__":
    main()
