"""Is the client-bound verdict right both ways?  Prints figures; not a test.

A ground-truth server (``perfkit.sim.exact``: TTFT 50 ms, then a chunk every 10 ms) runs pinned to its own
CPU.  perfkit runs in a child process pinned to another, in two settings:

* **starved**: busy processes (``--spinners``, default 8) pinned to the client's CPU beside it, so the client
  gets about a ninth of a core; half the runs open loop (200–300 req/s), half closed loop (64–256 users):
  loads the client keeps up with on a core of its own;
* **healthy on a busy machine**: one busy process on a CPU beside the client's (the server's, on a
  two-CPU machine), closed loop at concurrency 1, 2, 4, 8 and 16, two seeds each.

For each run it prints the summary's verdict (``Catalog.fidelity``'s ``client_bound``), the attribution's
verdict, the evidence, the reads' wait in their sockets (p99, 75th percentile over the 1-s intervals), the
closed-loop turnaround (p99 excess of next send after the previous end), the event loop's lag, and the
client's TTFT p50 against the server's own log (how far the measurement actually moved).

    python bench/client_bound.py [--runs 10] [--duration-s 6] [--spinners 3]

The last line reads ``starved_flagged=K/N healthy_flagged=K/N healthy_timely=M``, where ``healthy_timely``
counts the healthy runs whose read-delay p99 stayed under 2 ms (the ones the verdict must leave alone).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import perfkit
from perfkit.analysis import attribute
from perfkit.client import Endpoint, PhaseSpec
from perfkit.client.endpoint import request_uuid
from perfkit.query.metrics import client_evidence, client_note
from perfkit.record import TelemetrySpec, record_run
from perfkit.sim.exact import ExactServerProcess

TTFT_MS, ITL_MS, TOKENS = 50.0, 10.0, 48


def _spin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    x = 0
    while True:
        x += 1


def _client(url: str, data: str, run_id: str, phase: PhaseSpec, cpu: int | None, seed: int) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    import asyncio

    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    spec = TelemetrySpec(gpu="off", server_metrics=False)
    run(
        record_run(
            Endpoint(url, model="exact"),
            [PhaseSpec("warm", duration_s=1.0, concurrency=2, output_tokens=TOKENS, warmup=True), phase],
            Path(data),
            run_id=run_id,
            seed=seed,
            telemetry=spec,
            notify=lambda _m: None,
        )
    )


def one_run(
    server: ExactServerProcess, data: Path, name: str, phase: PhaseSpec, cpu: int | None, spin: list, seed: int
) -> dict:
    ctx = mp.get_context("spawn")
    spinners = [ctx.Process(target=_spin, args=(c,), daemon=True) for c in spin]
    for p in spinners:
        p.start()
    time.sleep(0.3)
    try:
        child = ctx.Process(target=_client, args=(server.url, str(data), name, phase, cpu, seed))
        child.start()
        child.join(phase.duration_s + 90)
        if child.exitcode != 0:
            raise RuntimeError(f"the client of {name} exited {child.exitcode}")
    finally:
        for p in spinners:
            p.kill()
            p.join()
    truth = server.dump(data / f"truth-{name}.npz")
    index = {tag: i for i, tag in enumerate(truth.tags)}
    with perfkit.open(data) as cat:
        fid = cat.fidelity(name).df().set_index("phase").loc["load"].to_dict()
        verdict = {a.phase: a for a in attribute(cat, name, n_boot=50)}["load"]
        reqs = cat.sql(
            "SELECT request_id, sent_ns, first_token_ns FROM requests WHERE run_id = $r AND phase = 'load' AND ok",
            params={"r": name},
        ).df()
    rep, true = [], []
    for r in reqs.itertuples():
        i = index.get(request_uuid(name, r.request_id))
        if i is not None:
            rep.append((r.first_token_ns - r.sent_ns) / 1e6)
            true.append((truth.chunks(i)[0] - truth.recv_ns[i]) / 1e6)
    fid["phase_name"] = name
    return {
        "name": name,
        "fid": fid,
        "verdict": verdict.verdict,
        "evidence": client_evidence(fid),
        "note": client_note(fid),
        "ttft_err_p50": float(np.median(np.array(rep) - np.array(true))) if rep else float("nan"),
        "requests": len(rep),
    }


def _f(v: object, fmt: str = ".1f") -> str:
    return "-" if v is None or v != v else format(float(v), fmt)  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="runs per setting")
    ap.add_argument("--duration-s", type=float, default=6.0)
    ap.add_argument("--spinners", type=int, default=8, help="busy processes beside the starved client")
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit("needs two CPUs or more: the server and the client each pinned to its own")
    client_cpu, server_cpu = cpus[0], cpus[1]
    busy_cpu = cpus[2] if len(cpus) > 2 else server_cpu
    starved, healthy = [], []
    with ExactServerProcess(TTFT_MS, ITL_MS, TOKENS, cpu=server_cpu) as server, tempfile.TemporaryDirectory() as t:
        data = Path(t)
        for i in range(a.runs):
            if i % 2 == 0:
                phase = PhaseSpec(
                    "load", duration_s=a.duration_s, rate=200 + 100 * (i / max(1, a.runs - 1)), output_tokens=TOKENS
                )
            else:
                phase = PhaseSpec(
                    "load", duration_s=a.duration_s, concurrency=(64, 128, 256)[i % 3], output_tokens=TOKENS
                )
            starved.append(one_run(server, data, f"starved{i}", phase, client_cpu, [client_cpu] * a.spinners, i))
            print(f"  starved{i}: {starved[-1]['verdict']}", file=sys.stderr)
        levels = (1, 2, 4, 8, 16)
        for i in range(a.runs):
            phase = PhaseSpec(
                "load", duration_s=a.duration_s, concurrency=levels[i % len(levels)], output_tokens=TOKENS
            )
            healthy.append(one_run(server, data, f"healthy{i}", phase, client_cpu, [busy_cpu], 100 + i))
            print(f"  healthy{i}: {healthy[-1]['verdict']}", file=sys.stderr)
    from perfkit.net import ReadPath

    path = ReadPath.from_env().resolved()
    print(
        f"{os.cpu_count()} CPUs; server on CPU {server_cpu}, client on CPU {client_cpu}; starved: {a.spinners} "
        f"busy processes on the client's CPU; healthy: one busy process on CPU {busy_cpu}; reads: "
        f"{'kernel stamps' if path.stamps else 'stamped at read'}, thread {path.thread}; TTFT {TTFT_MS:g} ms, "
        f"ITL {ITL_MS:g} ms, {TOKENS} chunks, {a.duration_s:g} s a run"
    )
    print(
        f"{'run':>10} {'load':>9} {'reqs':>5} | {'summary':>12} {'attribution':>21} | {'read p99':>8} "
        f"{'limit':>5} {'turn p99':>8} {'sched p99':>9} {'loop lag':>8} | {'TTFT err p50':>12}"
    )
    for r in starved + healthy:
        f = r["fid"]
        load = (
            f"{f['target_rate_rps']:.0f} req/s"
            if f.get("target_rate_rps") == f.get("target_rate_rps") and f.get("target_rate_rps")
            else "closed"
        )
        print(
            f"{r['name']:>10} {load:>9} {r['requests']:>5} | {'client-bound' if f['client_bound'] else 'ok':>12} "
            f"{r['verdict']:>21} | {_f(f.get('read_delay_ms'), '.2f'):>8} {_f(f.get('read_delay_limit_ms')):>5} "
            f"{_f(f.get('turnaround_p99_ms')):>8} {_f(f.get('schedule_lag_p99_ms')):>9} "
            f"{_f(f.get('loop_lag_ms')):>8} | {_f(r['ttft_err_p50'], '+.2f'):>12}"
        )
    for r in starved + healthy:
        if r["evidence"]:
            print(f"  {r['name']}: {r['evidence']}")
        elif r["note"]:
            print(f"  {r['name']} (note): {r['note']}")
    n_starved = sum(bool(r["fid"]["client_bound"]) for r in starved)
    timely = [r for r in healthy if (r["fid"].get("read_delay_ms") or 0) < 2.0]
    n_healthy = sum(bool(r["fid"]["client_bound"]) or r["verdict"] == "client-bound" for r in timely)
    print(
        f"starved_flagged={n_starved}/{len(starved)} healthy_flagged={n_healthy}/{len(timely)} "
        f"healthy_timely={len(timely)}"
    )


if __name__ == "__main__":
    main()
