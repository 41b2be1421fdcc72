"""How many chunks and requests per second can one client process take in?  Prints figures; not a test.

The ground-truth server (``perfkit.sim.exact``, its own process and CPU) answers
with no delay at all: 128 one-token chunks as fast as it can write them.  Two
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
of percent within minutes.  Both are bound by
the one CPU they have; the server, on its own CPU, is faster than either
(its own rate is printed as a check).

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
    body = json.dumps({"model": "exact", "prompt": "hello " * 4, "max_tokens": TOKENS, "stream": True,
                       "stream_options": {"include_usage": True}})

    async def user(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            stamps: list[float] = []
            async with session.post(url + "/v1/completions", data=body,
                                    headers={"Content-Type": "application/json"}) as resp:
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
    return {"chunks_per_s": counts["chunks"] / wall, "requests_per_s": counts["requests"] / wall,
            "cpu_us_per_chunk": 1e6 * cpu / max(1, counts["chunks"])}


def _perfkit(url: str, concurrency: int, duration_s: float) -> dict[str, float]:
    import perfkit
    from perfkit.client import Endpoint, PhaseSpec
    from perfkit.collect.telemetry import TelemetrySpec
    from perfkit.recorder import record_run

    with tempfile.TemporaryDirectory() as tmp:
        phase = PhaseSpec("cap", duration_s=duration_s, concurrency=concurrency, prompt_tokens=16,
                          output_tokens=TOKENS)
        t0, c0 = time.perf_counter(), _cpu_s()
        res = _loop_run(record_run(Endpoint(url, model="exact"), [phase], tmp,
                                   telemetry=TelemetrySpec(gpu="off", server_metrics=False)), True)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
        with perfkit.open(tmp) as cat:
            chunks, reqs = cat.sql(f"SELECT (SELECT count(*) FROM chunks WHERE run_id = '{res.run_id}'), "
                                   f"(SELECT count(*) FROM requests WHERE run_id = '{res.run_id}' "
                                   "AND error_kind IS NULL)").fetchall()[0]
    return {"chunks_per_s": chunks / wall, "requests_per_s": reqs / wall, "cpu_us_per_chunk": 1e6 * cpu / max(1, chunks)}


def _child(which: str, url: str, concurrency: int, duration_s: float, cpu: int | None, q: Any) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if which == "perfkit":
        q.put(_perfkit(url, concurrency, duration_s))
    else:
        q.put(_loop_run(_baseline(url, concurrency, duration_s), which == "baseline"))


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
                p = ctx.Process(target=_child, args=(which, server.url, a.concurrency, a.duration_s, client_cpu, q))
                p.start()
                runs[which].append(q.get())
                p.join()
                time.sleep(0.5)
    print(f"C={a.concurrency} streams, {TOKENS} chunks an answer, no server delay; client on CPU {client_cpu}, "
          f"server on CPU {server_cpu}; {a.rounds} interleaved rounds of {a.duration_s:g} s, medians")
    print(f"{'client':<28} {'chunks/s':>10} {'requests/s':>11} {'CPU us/chunk':>13}   chunks/s by round")
    names = {"perfkit": "perfkit (record_run)", "baseline": "baseline (same loop)",
             "baseline_asyncio": "baseline (plain asyncio)"}
    med = {k: {m: float(np.median([r[m] for r in rs])) for m in rs[0]} for k, rs in runs.items()}
    for k, r in med.items():
        rounds = " ".join(f"{x['chunks_per_s']:.0f}" for x in runs[k])
        print(f"{names[k]:<28} {r['chunks_per_s']:>10.0f} {r['requests_per_s']:>11.1f} {r['cpu_us_per_chunk']:>13.2f}"
              f"   {rounds}")
    ratios = [p["chunks_per_s"] / b["chunks_per_s"] for p, b in zip(runs["perfkit"], runs["baseline"])]
    print(f"perfkit / baseline by round: {' '.join(f'{x:.2f}' for x in ratios)}")
    print(f"chunks_per_s perfkit={med['perfkit']['chunks_per_s']:.0f} baseline={med['baseline']['chunks_per_s']:.0f}")

if __name__ == "__main__":
    main()
