"""How does the analysis scale with the size of a run?  Prints figures; not a test.

1. **Summary with intervals over a very large run.** A synthetic run of ``--requests``
   requests with ``--chunks`` chunks each (default 10M requests, 100M chunks) is written
   once as Parquet in perfkit's layout (``--data``, kept for the next time) and then
   summarised the way ``perfkit summary`` does it: the DuckDB summary (counts, rates,
   percentiles per phase) and :func:`perfkit.analysis.percentile_table` (TTFT, ITL and E2E
   p50/p90/p99 per phase with 95% intervals that account for autocorrelation).  Wall time
   and peak resident memory of each step.
   The synthetic latencies have the structure of real ones: a slowly varying load (AR(1) in
   the log, so samples are autocorrelated), a per-request level of the inter-token latency,
   lognormal noise, and a second phase 40% slower than the first.
2. **Changepoints over a long series**: TTFT p50 in 1-s windows over the whole run (one
   change, at the phase boundary), and a 100,000-window synthetic series.
3. **A report of a large run**: ``perfkit.report.build_report`` (HTML, figures, no PDF) on the
   first ``--report-requests`` requests of the run written as a run of their own.

    python bench/analysis_scale.py [--requests 10000000] [--chunks 10] [--data /tmp/perfkit-scale]

``--quick`` uses 1M requests.  The last line reads
``summary_s=… requests=… chunks=… peak_rss_mb=…``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy.signal import lfilter

import perfkit
from perfkit.store.manifest import write_manifest
from perfkit.store.schema import CHUNKS, REQUESTS
from perfkit.store.writer import write_part

_PART = 500_000  # requests per Parquet part
_RATE = 2000.0   # requests per second of the synthetic run


def _rss_mb() -> float:
    """Peak resident memory of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _table(schema: pa.Schema, cols: dict[str, object], n: int) -> pa.Table:
    arrays = [pa.array(cols[f.name], type=f.type) if f.name in cols else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def generate(data: Path, run_id: str, n_req: int, per_req: int, seed: int = 0) -> None:
    """Write a synthetic run of ``n_req`` requests with ``per_req`` chunks each under ``data``."""
    rng = np.random.default_rng(seed)
    level = 0.0
    t0 = 1_000_000_000_000
    t = float(t0)
    for part, start in enumerate(range(0, n_req, _PART)):
        n = min(_PART, n_req - start)
        ids = np.arange(start, start + n, dtype=np.int64)
        # slowly varying load: AR(1) on the log scale, continued across parts
        eps = rng.normal(0, 0.02, n)
        load, _ = lfilter([1.0], [1.0, -0.999], eps, zi=[0.999 * level])
        level = float(load[-1])
        phase_index = (ids >= int(0.6 * n_req)).astype(np.int32)
        slow = np.where(phase_index == 1, 1.4, 1.0)
        gaps = rng.exponential(1e9 / _RATE, n)
        sent = (t + np.cumsum(gaps)).astype(np.int64)
        t = float(sent[-1])
        ttft = 40.0 * slow * np.exp(load + rng.normal(0, 0.35, n))
        itl_level = 10.0 * slow * np.exp(0.5 * load + rng.normal(0, 0.1, n))
        itl = itl_level[:, None] * rng.lognormal(0, 0.25, (n, per_req))
        itl[:, 0] = np.nan
        first = sent + (ttft * 1e6).astype(np.int64)
        offs = np.nan_to_num(itl) * 1e6
        arrival = first[:, None] + np.cumsum(offs, axis=1).astype(np.int64)
        last = arrival[:, -1]
        e2e = (last - sent) / 1e6
        req = _table(REQUESTS, {
            "request_id": ids, "phase": np.where(phase_index == 1, "surge", "steady").tolist(),
            "phase_index": phase_index, "warmup": np.zeros(n, bool), "class_name": ["default"] * n,
            "turn": np.zeros(n, np.int32), "intended_ns": sent, "sent_ns": sent, "headers_ns": sent,
            "first_token_ns": first, "last_token_ns": last, "end_ns": last, "schedule_lag_ms": np.zeros(n),
            "ttft_ms": ttft, "e2e_ms": e2e, "ttft_from_intended_ms": ttft, "e2e_from_intended_ms": e2e,
            "tpot_ms": (last - first) / 1e6 / (per_req - 1), "itl_mean_ms": (last - first) / 1e6 / (per_req - 1),
            "prompt_tokens_target": np.full(n, 256, np.int32), "prompt_tokens": np.full(n, 256, np.int32),
            "output_tokens_target": np.full(n, per_req, np.int32), "output_tokens": np.full(n, per_req, np.int32),
            "output_tokens_source": ["usage"] * n, "n_chunks": np.full(n, per_req, np.int32),
            "empty_chunks": np.zeros(n, np.int32), "malformed_chunks": np.zeros(n, np.int32),
            "status": np.full(n, 200, np.int32), "ok": np.ones(n, bool), "finish_reason": ["length"] * n,
        }, n)
        write_part(req, data / "requests" / f"run_id={run_id}", part)
        m = n * per_req
        chunks = _table(CHUNKS, {
            "request_id": np.repeat(ids, per_req), "chunk_index": np.tile(np.arange(per_req, dtype=np.int32), n),
            "arrival_ns": arrival.ravel(), "itl_ms": pa.array(itl.ravel(), from_pandas=True),
            "tokens": np.ones(m, np.int32), "chars": np.full(m, 4, np.int32),
        }, m)
        write_part(chunks, data / "chunks" / f"run_id={run_id}", part)
        print(f"  wrote part {part}: requests {start + n:,}", flush=True)
    write_manifest(data, run_id, {"status": "finished", "label": "synthetic (bench/analysis_scale.py)",
                                  "counts": {"requests": n_req}, "seed": seed,
                                  "synthetic": {"requests": n_req, "chunks_per_request": per_req,
                                                "rate_rps": _RATE}})


def _ensure(data: Path, run_id: str, n_req: int, per_req: int) -> None:
    man = data / "runs" / f"run_id={run_id}" / "manifest.json"
    if man.is_file():
        syn = json.loads(man.read_text()).get("synthetic") or {}
        if syn.get("requests") == n_req and syn.get("chunks_per_request") == per_req:
            return
    print(f"generating {run_id}: {n_req:,} requests, {n_req * per_req:,} chunks under {data} (once)", flush=True)
    t = time.perf_counter()
    generate(data, run_id, n_req, per_req)
    print(f"  generated in {time.perf_counter() - t:.1f} s", flush=True)


def _timed(label: str, fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    print(f"{label:<44} {dt:8.2f} s   peak RSS {_rss_mb():7.0f} MB", flush=True)
    return out, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--chunks", type=int, default=10, help="chunks per request")
    ap.add_argument("--report-requests", type=int, default=1_000_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/perfkit-scale"))
    ap.add_argument("--quick", action="store_true", help="1M requests, a report of 200k")
    ap.add_argument("--skip-report", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.requests, a.report_requests = 1_000_000, 200_000
    run_id = f"synthetic-{a.requests}x{a.chunks}"
    _ensure(a.data, run_id, a.requests, a.chunks)

    from perfkit.analysis import percentile_table
    from perfkit.analysis.changepoints import ChangepointDetector
    from perfkit.analysis.series import detect_changes

    print(f"\n{run_id}: {a.requests:,} requests, {a.requests * a.chunks:,} chunks "
          f"({sum(f.stat().st_size for f in a.data.rglob('*.parquet') if run_id in str(f)) / 1e9:.2f} GB Parquet)")
    with perfkit.open(a.data) as cat:
        summ, t_sql = _timed("summary (DuckDB: counts, rates, percentiles)", lambda: cat.summary(run_id).df())
        tab, t_ci = _timed("percentile_table (intervals, 2 phases x 3 x 3)", lambda: percentile_table(cat, run_id))
        res, t_cp = _timed("changepoints of TTFT p50 in 1-s windows", lambda: detect_changes(cat, run_id))
    show = tab[["phase", "metric", "q", "n", "n_eff", "estimate", "lo", "hi"]]
    print(show.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    boundary = a.requests * 0.6 / _RATE
    print(f"changes found at t = {[round(c.t, 1) for c in res.changes]} s (the phase boundary: {boundary:.0f} s)")

    rng = np.random.default_rng(1)
    y = np.exp(rng.normal(0, 0.2, 100_000) + np.repeat([0.0, 0.3, 0.0, 0.5], 25_000))
    cp, _ = _timed("changepoints of a 100,000-window series", lambda: ChangepointDetector().fit(y))
    print(f"changes found at {[c.index for c in cp.changes]} (true: 25000, 50000, 75000)")

    if not a.skip_report:
        sub = f"synthetic-{a.report_requests}x{a.chunks}"
        _ensure(a.data, sub, a.report_requests, a.chunks)
        from perfkit.report import build_report

        with perfkit.open(a.data) as cat:
            _timed(f"report of {a.report_requests:,} requests (HTML, figures)",
                   lambda: build_report(cat, sub, a.data / "report", pdf=False))
    print(f"summary_s={t_sql + t_ci:.2f} requests={a.requests} chunks={a.requests * a.chunks} "
          f"peak_rss_mb={_rss_mb():.0f}")


if __name__ == "__main__":
    main()
