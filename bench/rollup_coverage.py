"""Do the intervals read from a rollup cover the truth as often as they claim?  Prints figures; not a test.

Each replicate is a synthetic latency series with a known distribution: the log
of a latency is a stationary AR(1) "load" (coefficient ``--phi`` per request,
started from its stationary law) plus independent noise, so neighbouring
requests are alike as in a queue, and the true ``q``-quantile is
``exp(z_q · s)`` with ``s² = σ_load² + σ_noise²``.  Requests arrive at
``--rate`` per second; the series is binned as a rollup bins it (1-s batches,
log buckets 0.54% wide) and :func:`perfkit.analysis.histograms.hist_percentile_cis`
gives 95% intervals for p50, p90 and p99.  For comparison, the sample-level
``ess`` intervals of :func:`perfkit.analysis.percentiles.percentile_cis` on the
same series, and the ``order`` intervals that assume independent samples.

    python bench/rollup_coverage.py [--reps 200] [--n 400000] [--rate 500] [--phi 0.99]

The last line reads ``coverage rollup=p50/p90/p99 sample_ess=… order=…``.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats
from scipy.signal import lfilter

from perfkit.analysis.histograms import hist_percentile_cis
from perfkit.analysis.percentiles import percentile_cis
from perfkit.query.rollup import LatencyHistogram

QS = (0.5, 0.9, 0.99)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--n", type=int, default=400_000, help="requests per replicate")
    ap.add_argument("--rate", type=float, default=500.0, help="requests per second")
    ap.add_argument("--phi", type=float, default=0.99, help="AR(1) coefficient of the load, per request")
    ap.add_argument("--sigma-load", type=float, default=0.4, help="stationary sd of the log load")
    ap.add_argument("--sigma-noise", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    s = np.hypot(a.sigma_load, a.sigma_noise)
    truth = np.exp(stats.norm.ppf(QS) * s)
    innov = a.sigma_load * np.sqrt(1 - a.phi**2)
    sec = (np.arange(a.n) / a.rate).astype(np.int64)
    hits = {k: np.zeros(len(QS)) for k in ("rollup", "sample_ess", "order")}
    est = {k: 0 for k in hits}
    ratio = []
    for r in range(a.reps):
        rng = np.random.default_rng([a.seed, r])
        load, _ = lfilter([1.0], [1.0, -a.phi], rng.normal(0, innov, a.n), zi=[a.phi * rng.normal(0, a.sigma_load)])
        x = np.exp(load + rng.normal(0, a.sigma_noise, a.n))
        res = {
            "rollup": hist_percentile_cis(LatencyHistogram.from_samples(x, sec), QS),
            "sample_ess": percentile_cis(x, QS),
            "order": percentile_cis(x, QS, method="order"),
        }
        for k, es in res.items():
            for j, e in enumerate(es):
                if e.estimable:
                    hits[k][j] += e.lo <= truth[j] <= e.hi
            est[k] += sum(e.estimable for e in es)
        ratio += [h.n_eff / e.n_eff for h, e in zip(res["rollup"], res["sample_ess"])]
    print(
        f"{a.reps} replicates of {a.n:,} requests at {a.rate:g}/s ({a.n / a.rate:.0f} s), log load AR(1) "
        f"phi={a.phi} sd {a.sigma_load}, noise sd {a.sigma_noise}; true p50/p90/p99 "
        + " / ".join(f"{t:.3f}" for t in truth)
    )
    print(f"{'intervals':<12} {'p50':>6} {'p90':>6} {'p99':>6}")
    for k, h in hits.items():
        print(f"{k:<12} " + " ".join(f"{v / a.reps:6.3f}" for v in h))
    print(
        f"n_eff rollup / sample-level: median {np.median(ratio):.2f}, 5-95% {np.percentile(ratio, 5):.2f}-"
        f"{np.percentile(ratio, 95):.2f}"
    )
    print("coverage " + " ".join(f"{k}=" + "/".join(f"{v / a.reps:.3f}" for v in h) for k, h in hits.items()))


if __name__ == "__main__":
    main()
