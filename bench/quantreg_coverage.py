"""Do quantile-regression slope intervals hold when rows are dependent?  Prints figures; not a test.

Two designs, ``--reps`` datasets each, 95% intervals of the slope at q = 0.5 and 0.9:

* **clusters**: 40 clusters of 15 rows, ``y = 1 + 2x + u_g + e`` with ``x`` mostly shared within a
  cluster and a cluster effect ``u_g``; intervals clustered on the group (the slope is 2 at every q).
* **blocks**: 600 rows in time order whose regressor and error are both AR(1) with φ = 0.9 (a load
  that drifts, a queue that remembers); intervals from clusters of ``--block`` consecutive rows, and
  (``blocks_auto``) with ``block="auto"``.  The error is a location shift, so the slope is 2 at every q.

Besides perfkit's intervals, the same fits with each row its own cluster (what ignoring the dependence
gives).  The last line reads ``coverage_q90 clusters=... blocks=... blocks_auto=... datasets=...``.

    python bench/quantreg_coverage.py [--reps 300] [--block 30]
"""

from __future__ import annotations

import argparse
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from perfkit.analysis import quantile_regression

QS = (0.5, 0.9)


def clustered(rng: np.random.Generator, groups: int = 40, per: int = 15) -> pd.DataFrame:
    g = np.repeat(np.arange(groups), per)
    x = rng.uniform(0, 4, groups)[g] + 0.3 * rng.standard_normal(groups * per)
    y = 1 + 2 * x + rng.standard_normal(groups)[g] + rng.standard_normal(groups * per)
    return pd.DataFrame({"x": x, "y": y, "g": g})


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = rng.standard_normal(n)
    out, _ = lfilter([np.sqrt(1 - phi * phi)], [1.0, -phi], e, zi=[phi * rng.standard_normal()])
    return out


def blocked(rng: np.random.Generator, n: int = 600, phi: float = 0.9) -> pd.DataFrame:
    x = 2 + ar1(rng, n, phi)
    y = 1 + 2 * x + ar1(rng, n, phi)
    return pd.DataFrame({"x": x, "y": y, "t": np.arange(n)})


def one(args: tuple[int, int]) -> dict[str, list[bool]]:
    seed, block = args
    rng = np.random.default_rng(seed)
    out: dict[str, list[bool]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' iteration notes on small samples
        blocks = blocked(rng)
        for design, df, kw in (
            ("clusters", clustered(rng), {"cluster": "g"}),
            ("blocks", blocks, {"block": block, "order": "t"}),
            ("blocks_auto", blocks, {"block": "auto", "order": "t"}),
        ):
            for how, k in (("perfkit", kw), ("independent", {})) if design != "blocks_auto" else (("perfkit", kw),):
                r = quantile_regression(df, "y ~ x", QS, **k)
                out[f"{design}/{how}"] = [bool(r.lo.at["x", q] <= 2 <= r.hi.at["x", q]) for q in QS]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--block", type=int, default=30, help="rows per block in the blocks design")
    ap.add_argument("--first-seed", type=int, default=0)
    a = ap.parse_args()
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(one, [(a.first_seed + s, a.block) for s in range(a.reps)], chunksize=4))
    print(f"{a.reps} datasets a design; share of 95% slope intervals covering the true slope\n")
    print(f"{'design / intervals':<26} " + " ".join(f"{'q=' + format(q, 'g'):>8}" for q in QS))
    cover = {}
    for key in runs[0]:
        hits = np.mean([r[key] for r in runs], axis=0)
        cover[key] = hits
        print(f"{key:<26} " + " ".join(f"{h:8.3f}" for h in hits))
    print(
        f"\ncoverage_q90 clusters={cover['clusters/perfkit'][1]:.3f} blocks={cover['blocks/perfkit'][1]:.3f} "
        f"blocks_auto={cover['blocks_auto/perfkit'][1]:.3f} datasets={a.reps}"
    )


if __name__ == "__main__":
    main()
