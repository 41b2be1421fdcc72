"""How does the analysis scale with the size of a run?  Prints figures; not a test.

1. **Summary with intervals over a very large run.** A synthetic run of ``--requests``
   requests with ``--chunks`` chunks each (default 10M requests, 100M chunks) is written
   once as Parquet in perfkit's layout (``--data``, kept for the next time), with the
   rollup a completed run gets (per-second log histograms, :mod:`perfkit.store.rollup`;
   its one-time cost is printed), and then summarised the way ``perfkit summary`` does
   it: the DuckDB summary (counts, rates, percentiles per phase) and
   :func:`perfkit.analysis.percentile_table` (TTFT, ITL and E2E p50/p90/p99 per phase with
   95% intervals that account for autocorrelation).  Wall time and peak resident memory
   of each step.  Then the same from every sample (``--no-exact`` skips it), and how far
   the rollup's figures are from those.
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
import pandas as pd

import perfkit
from perfkit.store.rollup import build_rollup, fresh_rollup
from perfkit.store.synthetic import write_synthetic_run

_RATE = 2000.0  # requests per second of the synthetic run


def _rss_mb() -> float:
    """Peak resident memory of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ensure(data: Path, run_id: str, n_req: int, per_req: int) -> None:
    man = data / "runs" / f"run_id={run_id}" / "manifest.json"
    if man.is_file():
        syn = json.loads(man.read_text()).get("synthetic") or {}
        if syn.get("requests") == n_req and syn.get("chunks_per_request") == per_req:
            return
    print(f"generating {run_id}: {n_req:,} requests, {n_req * per_req:,} chunks under {data} (once)", flush=True)
    t = time.perf_counter()
    write_synthetic_run(data, run_id, n_req, per_req, rate_rps=_RATE, progress=True)
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
    ap.add_argument("--no-exact", action="store_true", help="skip the comparison with every sample (about 60 s, 6 GB)")
    a = ap.parse_args()
    if a.quick:
        a.requests, a.report_requests = 1_000_000, 200_000
    run_id = f"synthetic-{a.requests}x{a.chunks}"
    _ensure(a.data, run_id, a.requests, a.chunks)

    from perfkit.analysis import percentile_table
    from perfkit.analysis.changepoints import ChangepointDetector
    from perfkit.analysis.series import detect_changes

    print(
        f"\n{run_id}: {a.requests:,} requests, {a.requests * a.chunks:,} chunks "
        f"({sum(f.stat().st_size for f in a.data.rglob('*.parquet') if run_id in str(f)) / 1e9:.2f} GB Parquet)"
    )
    if fresh_rollup(a.data, run_id) is None:  # what the recorder writes when a run ends
        _timed("rollup (once, when the run ends)", lambda: build_rollup(a.data, run_id))
    with perfkit.open(a.data) as cat:
        summ, t_sql = _timed("summary (counts, rates; latency from the rollup)", lambda: cat.summary(run_id).df())
        tab, t_ci = _timed("percentile_table (intervals, 2 phases x 3 x 3)", lambda: percentile_table(cat, run_id))
        res, t_cp = _timed("changepoints of TTFT p50 in 1-s windows", lambda: detect_changes(cat, run_id))
        exact, rss_fast = None, _rss_mb()
        if not a.no_exact:
            _, t_sql_x = _timed("summary from every sample", lambda: cat.summary(run_id, histograms="never").df())
            exact, t_ci_x = _timed(
                "percentile_table from every sample", lambda: percentile_table(cat, run_id, histograms="never")
            )
            print(f"every sample: {t_sql_x + t_ci_x:.2f} s")
    show = tab[["phase", "metric", "q", "n", "n_eff", "estimate", "lo", "hi"]]
    print(show.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if exact is not None:
        m = pd.merge(tab, exact, on=["phase", "metric", "q"], suffixes=("", "_x"))
        rel = (m["estimate"] / m["estimate_x"] - 1).abs()
        ratio = m["n_eff"] / m["n_eff_x"]
        held = ((m["lo"] <= m["lo_x"]) & (m["hi"] >= m["hi_x"])).mean()
        print(
            f"rollup against every sample over {len(m)} percentiles: estimate error max {100 * rel.max():.3f}% "
            f"(median {100 * rel.median():.4f}%), n_eff ratio {ratio.min():.2f}-{ratio.max():.2f}, "
            f"rollup interval holds the exact one in {100 * held:.0f}%"
        )
    boundary = a.requests * 0.6 / _RATE
    print(f"changes found at t = {[round(c.t, 1) for c in res.changes]} s (the phase boundary: {boundary:.0f} s)")

    rng = np.random.default_rng(1)
    y = np.exp(rng.normal(0, 0.2, 100_000) + np.repeat([0.0, 0.3, 0.0, 0.5], 25_000))
    cp, _ = _timed("changepoints of a 100,000-window series", lambda: ChangepointDetector().fit(y))
    print(f"changes found at {[c.index for c in cp.changes]} (true: 25000, 50000, 75000)")

    if not a.skip_report:
        sub = f"synthetic-{a.report_requests}x{a.chunks}"
        _ensure(a.data, sub, a.report_requests, a.chunks)
        if fresh_rollup(a.data, sub) is None:
            build_rollup(a.data, sub)
        from perfkit.report import build_report

        with perfkit.open(a.data) as cat:
            _timed(
                f"report of {a.report_requests:,} requests (HTML, figures)",
                lambda: build_report(cat, sub, a.data / "report", pdf=False),
            )
    print(
        f"summary_s={t_sql + t_ci:.2f} requests={a.requests} chunks={a.requests * a.chunks} peak_rss_mb={rss_fast:.0f}"
    )


if __name__ == "__main__":
    main()
