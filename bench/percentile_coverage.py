"""Do perfkit's 95% percentile intervals hold on strongly autocorrelated series, and is "not estimable" honest?

Prints figures; not a test.  Series are AR(1) in a Gaussian latent, ``z_t = φ z_{t-1} + √(1-φ²) ε_t``,
mapped to a latency marginal: lognormal (``exp(3 + 0.6 z)`` ms) or Pareto-tailed (``10 (1 - Φ(z))^(-1/2.5)``
ms, a tail index of 2.5).  The truth is known exactly: the marginal's quantile, and the effective size of
the indicator ``1{x_t ≤ x_q}`` (whose long-run variance governs a quantile estimate's error),
``n / τ_q`` with ``τ_q = 1 + 2 Σ_k ρ_k`` and ``ρ_k = (Φ₂(z_q, z_q; φ^k) − q²) / (q (1 − q))``.

For each cell (marginal × φ ∈ {0, 0.5, 0.9} × n ∈ {300, 1000, 5000, 20000}) and each of p50, p90, p99,
``--reps`` replicates are drawn and :func:`perfkit.analysis.percentile_cis` asked for a 95% interval.
A replicate that gets no interval ("not estimable") counts as neither hit nor miss; the table gives the
share that got one and, where at least 40 did, how many of those covered the truth.  A cell whose true
effective size is below perfkit's threshold (``min_samples(q)``: 6 for p50, 30 for p90, 300 for p99)
should give an interval in at most 5% of its replicates: such cells are marked ``below`` and checked.

    python bench/percentile_coverage.py [--reps 1000] [--first-seed 0] [--quick] [--workers 2]

The last line reads ``coverage_min=... coverage_max=... cells=... below_given_max=...``.
"""

from __future__ import annotations

import argparse
import math
from concurrent.futures import ProcessPoolExecutor
from functools import cache

import numpy as np
from scipy import stats
from scipy.signal import lfilter

from perfkit.analysis.percentiles import min_samples, percentile_cis

QS = (0.5, 0.9, 0.99)
PHIS = (0.0, 0.5, 0.9)
SIZES = (300, 1000, 5000, 20000)
MARGINALS = ("lognormal", "pareto")
_PARETO_ALPHA, _PARETO_SCALE = 2.5, 10.0


def marginal(kind: str, z: np.ndarray) -> np.ndarray:
    if kind == "lognormal":
        return np.exp(3.0 + 0.6 * z)
    return _PARETO_SCALE * stats.norm.sf(z) ** (-1 / _PARETO_ALPHA)


def true_quantile(kind: str, q: float) -> float:
    zq = stats.norm.ppf(q)
    if kind == "lognormal":
        return float(np.exp(3.0 + 0.6 * zq))
    return float(_PARETO_SCALE * (1 - q) ** (-1 / _PARETO_ALPHA))


@cache
def true_tau(phi: float, q: float) -> float:
    """Integrated autocorrelation time of the indicator below the q-quantile of an AR(1) Gaussian series."""
    if phi == 0:
        return 1.0
    zq = stats.norm.ppf(q)
    tau, k = 1.0, 1
    while True:
        r = phi**k
        if r < 1e-7:
            return tau
        joint = stats.multivariate_normal([0.0, 0.0], [[1.0, r], [r, 1.0]]).cdf([zq, zq])
        tau += 2 * (joint - q * q) / (q * (1 - q))
        k += 1


def ar1(rng: np.random.Generator, phi: float, n: int) -> np.ndarray:
    e = rng.standard_normal(n)
    if phi == 0:
        return e
    z0 = rng.standard_normal()
    out, _ = lfilter([math.sqrt(1 - phi * phi)], [1.0, -phi], e, zi=[phi * z0])
    return out


def cell(args: tuple[str, float, int, int, int]) -> dict:
    kind, phi, n, reps, seed = args
    rng = np.random.default_rng([seed, MARGINALS.index(kind), int(phi * 100), n])
    truth = {q: true_quantile(kind, q) for q in QS}
    given = {q: 0 for q in QS}
    hits = {q: 0 for q in QS}
    for _ in range(reps):
        x = marginal(kind, ar1(rng, phi, n))
        for q, e in zip(QS, percentile_cis(x, QS)):
            if e.estimable:
                given[q] += 1
                hits[q] += e.lo <= truth[q] <= e.hi
    out = {"kind": kind, "phi": phi, "n": n, "reps": reps}
    for q in QS:
        n_eff = n / true_tau(phi, q)
        out[q] = {"n_eff": n_eff, "below": n_eff < min_samples(q), "given": given[q], "hits": hits[q]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="100 replicates a cell")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    reps = 100 if a.quick else a.reps
    jobs = [(k, phi, n, reps, a.first_seed) for k in MARGINALS for phi in PHIS for n in SIZES]
    jobs.sort(key=lambda j: -j[2])  # the long series first, so the pool ends evenly
    with ProcessPoolExecutor(a.workers) as pool:
        rows = list(pool.map(cell, jobs))
    rows.sort(key=lambda r: (MARGINALS.index(r["kind"]), r["phi"], r["n"]))
    print(
        f"{reps} replicates a cell; 95% intervals; 'given': share of replicates with an interval; 'cover': share "
        "of those covering the truth\n(not scored where fewer than 40 got one); 'below': the true effective size "
        "is under perfkit's threshold, so at most 5% should get one\n"
    )
    head = " ".join(f"{'p' + format(100 * q, 'g') + ' n_eff/given/cover':>32}" for q in QS)
    print(f"{'marginal':<10} {'phi':>4} {'n':>6} | {head}")
    scored: list[float] = []
    below_given: list[float] = []
    for r in rows:
        cells = []
        for q in QS:
            c = r[q]
            share = c["given"] / r["reps"]
            cover = f"{c['hits'] / c['given']:.3f}" if c["given"] >= 40 else f"({c['given']})"
            if c["given"] >= 40:
                scored.append(c["hits"] / c["given"])
            if c["below"]:
                below_given.append(share)
            mark = " below" if c["below"] else "      "
            cells.append(f"{c['n_eff']:8.0f}{mark} {share:6.3f} {cover:>8}")
        print(f"{r['kind']:<10} {r['phi']:>4.1f} {r['n']:>6} | " + " ".join(f"{x:>32}" for x in cells))
    print()
    print(
        f"coverage_min={min(scored):.3f} coverage_max={max(scored):.3f} cells={len(scored)} "
        f"below_given_max={max(below_given) if below_given else 0.0:.3f}"
    )


if __name__ == "__main__":
    main()
