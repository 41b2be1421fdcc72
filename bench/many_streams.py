"""Hold N concurrent streams against the simulator and measure perfkit's memory: does it stay bounded?

Prints figures; not a test.  ``perfkit sim`` is configured to batch every request at once (N
sequences, KV cache and token budget to match, a cheap decode step) so that N streams really are open
together; ``perfkit run --concurrency N --requests N`` opens them (one request per user, all at
once) and its RSS is sampled every 50 ms.  From the recorded data it reports how many streams were in
flight together at the peak (overlap of ``[sent, end]``), what the requests ended as, and the client's
memory per open stream.  Both processes raise their open-file limit to the hard limit.

    python bench/many_streams.py [--streams 10000] [--output-tokens 32]

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

from perfkit.sim import SimConfig, SimProcess


def _sample(pid: int, out: list[float], stop: threading.Event) -> None:
    try:
        p = psutil.Process(pid)
        while not stop.is_set():
            out.append(p.memory_info().rss / 2**20)
            time.sleep(0.05)
    except psutil.NoSuchProcess:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=10_000)
    ap.add_argument("--output-tokens", type=int, default=32)
    ap.add_argument("--http", choices=("fast", "aiohttp"), default="fast")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by both children
    print(f"open-file limit {soft} -> {hard}; {psutil.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB")
    n = a.streams
    cfg = SimConfig(seed=1, max_num_seqs=n, max_batched_tokens=max(4096, 20 * n), kv_capacity_tokens=max(32768, 80 * n),
                    decode_ms_per_seq=0.0005, attn_ms_per_kv_token=0.0, prefill_ms_per_token=0.0005)
    with tempfile.TemporaryDirectory() as d, SimProcess(cfg, start_timeout_s=60) as sim:
        cmd = [sys.executable, "-m", "perfkit.cli", "run", "--endpoint", sim.url, "--model", "perfkit-sim-7b",
               "--concurrency", str(n), "--requests", str(n), "--prompt-tokens", "16",
               "--output-tokens", str(a.output_tokens), "--read-timeout", "120", "--data-dir", d, "--run-id", "many",
               "--gpu", "off", "--http", a.http]
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
        con = duckdb.connect()
        rows = con.execute(f"SELECT sent_ns, end_ns, coalesce(error_kind, 'ok') AS k FROM "
                           f"read_parquet('{Path(d)}/requests/*/*.parquet')").fetchall()
    sent = np.array([r[0] for r in rows if r[0] is not None], dtype=np.int64)
    end = np.array([r[1] for r in rows if r[0] is not None], dtype=np.int64)
    ev = np.concatenate([np.stack([sent, np.ones_like(sent)], 1), np.stack([end, -np.ones_like(end)], 1)])
    ev = ev[np.lexsort((ev[:, 1], ev[:, 0]))]  # at equal times an end before a start
    peak = int(np.cumsum(ev[:, 1]).max()) if len(ev) else 0
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r[2]] = kinds.get(r[2], 0) + 1
    base = rss[0] if rss else float("nan")
    top = max(rss) if rss else float("nan")
    print(f"{len(rows)} requests recorded in {wall:.1f} s; ended as {kinds}")
    print(f"perfkit run RSS: at start {base:.0f} MB, peak {top:.0f} MB")
    per = (top - base) * 1024 / max(peak, 1)
    print(f"streams={n} peak_in_flight={peak} ok={kinds.get('ok', 0)} peak_rss_mb={top:.0f} "
          f"rss_per_stream_kb={per:.1f}")


if __name__ == "__main__":
    main()
