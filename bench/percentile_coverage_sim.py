"""Do perfkit's 95% percentile intervals cover the true value 95% of the time on simulator data?

Prints figures; not a test.  Each replicate is one run of the simulator's
engine (``perfkit.sim.replay``, the model ``perfkit sim`` serves) fed Poisson
arrivals of a new seed: ``--requests`` requests with lognormal prompts and
128-token answers.  The true percentile is that of all replicates pooled
(the distribution a run of this length samples from, warm-up included).  For
each replicate and method, the 95% interval of TTFT p50/p90/p99 from that
run alone either covers the truth or not; the table gives the share that did.

Two loads: a moderate one and one near the knee, where queueing makes
consecutive requests' latencies strongly alike (the effective sample size
is a fraction of the count), which is where an interval assuming
independence under-covers.

    python bench/percentile_coverage_sim.py [--reps 300] [--requests 4000] [--first-seed 0] [--quick]

The last line reads ``coverage p50=... p90=... p99=...`` (default method ``ess``, near the knee).
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from perfkit.analysis.percentiles import percentile_ci
from perfkit.sim import SimConfig, replay

QS = (0.5, 0.9, 0.99)
METHODS = ("ess", "block", "order")


def one_run(args: tuple[int, float, int]) -> np.ndarray:
    seed, rate, n = args
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    prompts = rng.lognormal(np.log(256), 0.4, n).astype(int) + 1
    reqs = replay(SimConfig(), [(int(a * 1e9), int(p), 128) for a, p in zip(arrivals, prompts)])
    reqs.sort(key=lambda r: r.arrival_ns)  # the order a client sends them in
    return np.array([(r.first_token_ns - r.arrival_ns) / 1e6 for r in reqs])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--quick", action="store_true", help="60 replicates")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ...")
    a = ap.parse_args()
    reps = 60 if a.quick else a.reps
    last = {}
    print(f"{reps} replicates of {a.requests} requests each; 95% intervals of TTFT percentiles\n")
    print(f"{'load':<10} {'method':<7} " + " ".join(f"{'p' + format(100 * q, 'g'):>18}" for q in QS))
    for label, rate in (("moderate", 12.0), ("near knee", 19.0)):
        with ProcessPoolExecutor(2) as pool:
            runs = list(pool.map(one_run, [(a.first_seed + s, rate, a.requests) for s in range(reps)], chunksize=4))
        truth = {q: float(np.quantile(np.concatenate(runs), q)) for q in QS}
        for method in METHODS:
            cells = []
            for q in QS:
                ests = [percentile_ci(x, q, method=method, n_boot=400, seed=i) for i, x in enumerate(runs)]
                ok = [e.lo <= truth[q] <= e.hi for e in ests if e.estimable]
                neff = np.median([e.n_eff for e in ests])
                cov = float(np.mean(ok)) if ok else float("nan")
                cells.append(f"{cov:6.3f} (n_eff {neff:5.0f})")
                if method == "ess" and label == "near knee":
                    last[q] = cov
            print(f"{label:<10} {method:<7} " + " ".join(f"{c:>18}" for c in cells))
        print(f"{'':<10} truth   " + " ".join(f"{truth[q]:>15.2f} ms" for q in QS) + "\n")
    print("coverage " + " ".join(f"p{100 * q:g}={last[q]:.3f}" for q in QS))


if __name__ == "__main__":
    main()
