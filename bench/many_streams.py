"""Hold N concurrent streams against the simulator and measure perfkit's memory: does it stay bounded?

Prints figures; not a test.  ``perfkit sim`` is configured to batch every request at once (N
sequences, KV cache and token budget to match, a cheap decode step) so that N streams really are open
together; ``perfkit run`` opens them (N closed-loop users started evenly over ``--ramp-s``, one
request each, long enough to outlast the ramp) and its RSS is sampled every 50 ms; the same command
holding 10 streams gives the fixed cost.  From the recorded data it reports how many streams were in
flight together at the peak (overlap of ``[sent, end]``), what the requests ended as, and the client's
memory per open stream.  Both processes raise their open-file limit to the hard limit.

    python bench/many_streams.py [--streams 10000] [--output-tokens 250] [--ramp-s 20]

The last line reads ``streams=… peak_in_flight=… ok=… peak_rss_mb=… rss_per_stream_kb=…``.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import psutil
import yaml

from perfkit.sim import SimConfig, SimProcess


def _sample(pid: int, out: list[float], stop: threading.Event) -> None:
    try:
        p = psutil.Process(pid)
        while not stop.is_set():
            out.append(p.memory_info().rss / 2**20)
            time.sleep(0.05)
    except psutil.NoSuchProcess:
        pass


def run_once(n: int, a: argparse.Namespace) -> tuple[list[tuple[int, int, str]], list[float], float]:
    """``perfkit run`` holding ``n`` streams against a simulator sized for them: rows, RSS samples (MB), wall s."""
    # a 100 ms step and one chunk per 10 tokens: 10,000 streams cost the simulator (Python, one core) about
    # 10,000 writes a second, leaving it time to accept the connections
    cfg = SimConfig(
        seed=1,
        max_num_seqs=n,
        max_batched_tokens=max(4096, 20 * n),
        kv_capacity_tokens=max(32768, 300 * n),
        step_base_ms=100.0,
        stream_interval=10,
        decode_ms_per_seq=0.0,
        attn_ms_per_kv_token=0.0,
        prefill_ms_per_token=0.0,
    )
    with tempfile.TemporaryDirectory() as d, SimProcess(cfg, start_timeout_s=60) as sim:
        scenario = Path(d) / "hold.yaml"  # N users, started evenly over ramp_s, one request each
        scenario.write_text(
            yaml.safe_dump(
                {
                    "name": "hold",
                    "phases": [
                        {
                            "name": "hold",
                            "requests": n,
                            "prompt_tokens": 16,
                            "output_tokens": a.output_tokens,
                            "load": {"users": n, "ramp_s": a.ramp_s * n / a.streams},
                        }
                    ],
                }
            )
        )
        cmd = [
            sys.executable,
            "-m",
            "perfkit.cli",
            "run",
            str(scenario),
            "--endpoint",
            sim.url,
            "--model",
            "perfkit-sim-7b",
            "--read-timeout",
            "120",
            "--data-dir",
            d,
            "--run-id",
            "many",
            "--gpu",
            "off",
            "--http",
            a.http,
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        rss: list[float] = []
        stop = threading.Event()
        th = threading.Thread(target=_sample, args=(proc.pid, rss, stop), daemon=True)
        th.start()
        out, err = proc.communicate(timeout=1800)
        stop.set()
        th.join()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(err[-3000:])
            raise SystemExit(f"perfkit run exited {proc.returncode}")
        rows = (
            duckdb.connect()
            .execute(
                f"SELECT sent_ns, end_ns, coalesce(error_kind, 'ok') AS k FROM "
                f"read_parquet('{Path(d)}/requests/*/*.parquet')"
            )
            .fetchall()
        )
    return rows, rss, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=10_000)
    ap.add_argument("--output-tokens", type=int, default=250, help="tokens per stream: enough to outlast the ramp")
    ap.add_argument(
        "--ramp-s",
        type=float,
        default=20.0,
        help="users start evenly over this, s (a burst of 10,000 connects overflows the listen backlog)",
    )
    ap.add_argument("--http", choices=("fast", "aiohttp"), default="fast")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by both children
    print(
        f"open-file limit {soft} -> {hard}; {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB"
    )
    _, base_rss, _ = run_once(10, a)  # the same command holding 10 streams: the fixed cost
    n = a.streams
    rows, rss, wall = run_once(n, a)
    sent = np.array([r[0] for r in rows if r[0] is not None], dtype=np.int64)
    end = np.array([r[1] for r in rows if r[0] is not None], dtype=np.int64)
    ev = np.concatenate([np.stack([sent, np.ones_like(sent)], 1), np.stack([end, -np.ones_like(end)], 1)])
    ev = ev[np.lexsort((ev[:, 1], ev[:, 0]))]  # at equal times an end before a start
    peak = int(np.cumsum(ev[:, 1]).max()) if len(ev) else 0
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r[2]] = kinds.get(r[2], 0) + 1
    base = max(base_rss) if base_rss else float("nan")
    top = max(rss) if rss else float("nan")
    print(f"{len(rows)} requests recorded in {wall:.1f} s; ended as {kinds}")
    print(f"perfkit run peak RSS: {base:.0f} MB holding 10 streams, {top:.0f} MB holding {peak}")
    per = (top - base) * 1024 / max(peak - 10, 1)
    print(
        f"streams={n} peak_in_flight={peak} ok={kinds.get('ok', 0)} peak_rss_mb={top:.0f} rss_per_stream_kb={per:.1f}"
    )


if __name__ == "__main__":
    main()
