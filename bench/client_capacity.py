"""How many chunks and requests per second can one client process take in?  Prints figures; not a test.

The ground-truth server (``perfkit.sim.exact``, its own process and CPU) answers
with no delay at all: 128 one-token chunks as fast as it can write them, one
write each but back to back, so that a client's read takes several (paced
streams, one chunk a read, cost perfkit about three times as much CPU a chunk:
see ``client_fidelity.py``).  Two
clients, each in its own process pinned to the other CPU, hold C concurrent
streams against it for a while:

* **perfkit**: ``record_run`` exactly as ``perfkit run`` does it (every chunk
  timestamped and written to Parquet, telemetry on);
* **baseline**: a plain aiohttp client written the way the common benchmark
  clients are (one session, ``async for line in resp.content``, ``json.loads``
  of each ``data:`` line, a ``time.perf_counter()`` per chunk kept in a list),
  on the same event loop as perfkit, then on plain asyncio.

It prints chunks/s, requests/s and CPU per chunk of each: the median of ``--rounds``
rounds, the three clients taking turns, since this kind of machine drifts by tens
of percent within minutes.  Each is meant to be bound by the one CPU it has, but
the server, on the other CPU, pays 6-9 us of kernel time for each chunk it
sends (a TCP send and its delivery over loopback; less where a client that reads
late lets the kernel merge several writes into one segment), so a client as
frugal as perfkit, reading each chunk as it comes, can outrun it.  So the share of its CPU that each used while
streaming is printed
too, with who set perfkit's pace: where the server did, perfkit's chunks/s is a
floor under its capacity, and the chunks it takes per second of its own CPU
(all its threads, Parquet writing and telemetry included) is the comparison
that holds.

    python bench/client_capacity.py [--concurrency 64] [--duration-s 10]

The last line reads ``chunks_per_s perfkit=... baseline=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import tempfile
import time
from typing import Any

import numpy as np

TOKENS = 128


def _loop_run(coro: Any, use_uvloop: bool) -> Any:
    if use_uvloop:
        try:
            import uvloop

            return uvloop.run(coro)
        except ImportError:
            pass
    return asyncio.run(coro)


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _baseline(url: str, concurrency: int, duration_s: float) -> dict[str, float]:
    import aiohttp

    deadline = time.perf_counter() + duration_s
    counts = {"chunks": 0, "requests": 0}
    body = json.dumps(
        {
            "model": "exact",
            "prompt": "hello " * 4,
            "max_tokens": TOKENS,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )

    async def user(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            stamps: list[float] = []
            async with session.post(
                url + "/v1/completions", data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                async for line in resp.content:
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        break
                    obj = json.loads(data)
                    if obj["choices"] and obj["choices"][0].get("text"):
                        stamps.append(time.perf_counter())
            counts["chunks"] += len(stamps)
            counts["requests"] += 1

    conn = aiohttp.TCPConnector(limit=concurrency + 8)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as session:
        t0, c0 = time.perf_counter(), _cpu_s()
        await asyncio.gather(*(user(session) for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    return {
        "chunks_per_s": counts["chunks"] / wall,
        "requests_per_s": counts["requests"] / wall,
        "cpu_us_per_chunk": 1e6 * cpu / max(1, counts["chunks"]),
    }


def _perfkit(url: str, concurrency: int, duration_s: float) -> dict[str, float]:
    import perfkit
    from perfkit.client import Endpoint, PhaseSpec
    from perfkit.record import TelemetrySpec, record_run

    with tempfile.TemporaryDirectory() as tmp:
        phase = PhaseSpec("cap", duration_s=duration_s, concurrency=concurrency, prompt_tokens=16, output_tokens=TOKENS)
        t0, c0 = time.perf_counter(), _cpu_s()
        res = _loop_run(
            record_run(
                Endpoint(url, model="exact"), [phase], tmp, telemetry=TelemetrySpec(gpu="off", server_metrics=False)
            ),
            True,
        )
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
        with perfkit.open(tmp) as cat:
            chunks, reqs = cat.sql(
                f"SELECT (SELECT count(*) FROM chunks WHERE run_id = '{res.run_id}'), "
                f"(SELECT count(*) FROM requests WHERE run_id = '{res.run_id}' "
                "AND error_kind IS NULL)"
            ).fetchall()[0]
    return {
        "chunks_per_s": chunks / wall,
        "requests_per_s": reqs / wall,
        "cpu_us_per_chunk": 1e6 * cpu / max(1, chunks),
    }


def _proc_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used so far; None where /proc has no answer."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _CpuWatch:
    """Every ``every_s``, this process's and the server's CPU seconds; :meth:`stop` gives the median share of
    a CPU each used over those intervals (the streaming, not the start-up and the writing at the end, decides
    a median of a run several times longer than them)."""

    def __init__(self, server_pid: int, every_s: float = 0.5) -> None:
        import threading

        self.server_pid, self.every_s = server_pid, every_s
        self.samples: list[tuple[float, float, float | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.samples.append((time.perf_counter(), _cpu_s(), _proc_cpu_s(self.server_pid)))
            if self._stop.wait(self.every_s):
                return

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._thread.join()
        s = self.samples
        client = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(s, s[1:])]
        server = [(b[2] - a[2]) / (b[0] - a[0]) for a, b in zip(s, s[1:]) if a[2] is not None and b[2] is not None]
        med = lambda xs: float(np.median(xs)) if xs else float("nan")  # noqa: E731
        return med(client), med(server)


def _child(which: str, url: str, concurrency: int, duration_s: float, cpu: int | None, server_pid: int, q: Any) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    watch = _CpuWatch(server_pid)
    if which == "perfkit":
        out = _perfkit(url, concurrency, duration_s)
    else:
        out = _loop_run(_baseline(url, concurrency, duration_s), which == "baseline")
    # each one's share of its CPU while streaming: the server's near 1 and the client's not, the server set the pace
    out["client_cpu"], out["server_cpu"] = watch.stop()
    q.put(out)


def main() -> None:
    from perfkit.sim.exact import ExactServerProcess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--duration-s", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the three clients (medians)")
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu, client_cpu = (cpus[-1], cpus[0]) if len(cpus) >= 2 else (None, None)
    ctx = mp.get_context("spawn")
    runs: dict[str, list[dict[str, float]]] = {"perfkit": [], "baseline": [], "baseline_asyncio": []}
    with ExactServerProcess(0.0, 0.0, TOKENS, cpu=server_cpu) as server:
        for _ in range(a.rounds):  # interleaved: this machine's speed drifts by tens of percent over minutes
            for which in runs:
                q = ctx.Queue()
                p = ctx.Process(
                    target=_child, args=(which, server.url, a.concurrency, a.duration_s, client_cpu, server.proc.pid, q)
                )
                p.start()
                runs[which].append(q.get())
                p.join()
                time.sleep(0.5)
    print(
        f"C={a.concurrency} streams, {TOKENS} chunks an answer, no server delay; client on CPU {client_cpu}, "
        f"server on CPU {server_cpu}; {a.rounds} interleaved rounds of {a.duration_s:g} s, medians"
    )
    print(
        f"{'client':<26} {'chunks/s':>9} {'requests/s':>10} {'CPU us/chunk':>12} {'client CPU':>10} "
        f"{'server CPU':>10} {'chunks/CPU-s':>12}   chunks/s by round"
    )
    names = {
        "perfkit": "perfkit (record_run)",
        "baseline": "baseline (same loop)",
        "baseline_asyncio": "baseline (plain asyncio)",
    }
    for rs in runs.values():
        for r in rs:
            r["chunks_per_cpu_s"] = 1e6 / r["cpu_us_per_chunk"]
    med = {k: {m: float(np.median([r[m] for r in rs])) for m in rs[0]} for k, rs in runs.items()}
    for k, r in med.items():
        rounds = " ".join(f"{x['chunks_per_s']:.0f}" for x in runs[k])
        print(
            f"{names[k]:<26} {r['chunks_per_s']:>9.0f} {r['requests_per_s']:>10.1f} {r['cpu_us_per_chunk']:>12.2f} "
            f"{r['client_cpu']:>10.0%} {r['server_cpu']:>10.0%} {r['chunks_per_cpu_s']:>12.0f}   {rounds}"
        )
    ratios = [p["chunks_per_s"] / b["chunks_per_s"] for p, b in zip(runs["perfkit"], runs["baseline"])]
    per_cpu = [p["chunks_per_cpu_s"] / b["chunks_per_cpu_s"] for p, b in zip(runs["perfkit"], runs["baseline"])]
    print(
        f"perfkit / baseline by round: chunks/s {' '.join(f'{x:.2f}' for x in ratios)}; "
        f"chunks per client CPU-second {' '.join(f'{x:.2f}' for x in per_cpu)}"
    )
    print(_verdict(med["perfkit"], float(np.median(ratios)), float(np.median(per_cpu))))
    print(f"chunks_per_s perfkit={med['perfkit']['chunks_per_s']:.0f} baseline={med['baseline']['chunks_per_s']:.0f}")


def _verdict(perfkit: dict[str, float], ratio: float, per_cpu: float) -> str:
    """Who set perfkit's pace, and so what its chunks/s says: its own limit, or a floor under it."""
    client, server = perfkit["client_cpu"], perfkit["server_cpu"]
    if client >= 0.9 and server >= 0.9:
        return (
            f"both CPUs were about full (perfkit {client:.0%}, the server {server:.0%}): {ratio:.2f}x the "
            f"baseline's chunks/s is about its capacity ratio, if anything under it ({per_cpu:.2f}x per "
            f"client CPU-second)"
        )
    if client >= 0.9:
        return (
            f"perfkit was bound by its own CPU ({client:.0%}): {ratio:.2f}x the baseline's chunks/s is its "
            f"capacity ratio ({per_cpu:.2f}x per client CPU-second)"
        )
    who = f"the server was (its CPU {server:.0%})" if server >= 0.9 else f"neither CPU was full (server {server:.0%})"
    return (
        f"perfkit was not the bottleneck (its CPU {client:.0%}); {who}: {ratio:.2f}x the baseline's chunks/s "
        f"is a floor under its capacity ratio; per client CPU-second it takes {per_cpu:.2f}x the baseline's "
        f"chunks ({perfkit['chunks_per_cpu_s']:.0f})"
    )


if __name__ == "__main__":
    main()
