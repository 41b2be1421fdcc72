"""How well does perfkit find changepoints?  Prints figures; not a test.

1. **Simulator runs**: the simulator's engine (``perfkit.sim.replay``, the model
   ``perfkit sim`` serves) under Poisson arrivals for 120 s, with one injected
   slowdown (every step ``--factor`` times longer from 50 s to 80 s) or none,
   over ``--seeds`` seeds each.  The series is TTFT p50 in 1-s windows.  A run
   with an injection counts as found when a change lies within ±5 s of its start;
   a run without one counts as a false alarm when any change is reported.
2. **Synthetic heavy-tailed series** (``perfkit.analysis.datasets.heavy_tailed_shifts``,
   600 windows, 1–4 level shifts of 25–150%, AR(1) noise, Pareto spikes): F1 with a
   margin of 5 windows (TCPDBench's convention, index 0 counted as a change) for
   perfkit's detector, for ruptures' PELT with an L2 cost on the raw values and the
   same BIC-type rule on their variance (``2 · var(y) · log n``), and for predicting
   no change at all (the zero baseline), measured in the same run.

    python bench/changepoint.py [--seeds 30] [--series 100] [--factor 1.5]

Needs ruptures for the baseline (``pip install -e ".[test]"``).  The last line reads
``F1 perfkit=... pelt_l2_raw=... zero=...``.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import ruptures as rpt

from perfkit.analysis.changepoints import ChangepointDetector, f1_margin
from perfkit.analysis.datasets import heavy_tailed_shifts
from perfkit.sim import SimConfig, SimEvent, replay

START_S, END_S, DURATION_S, RATE = 50.0, 80.0, 120.0, 10.0


def sim_run(args: tuple[int, float]) -> tuple[bool, list[float]]:
    """One simulator run; returns (injected, times of the changes found)."""
    seed, factor = args
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / RATE, int(RATE * DURATION_S * 1.2)))
    arrivals = arrivals[arrivals < DURATION_S]
    prompts = rng.lognormal(np.log(256), 0.4, len(arrivals)).astype(int) + 1
    events = (SimEvent("slowdown", START_S, END_S, factor=factor),) if factor != 1 else ()
    reqs = replay(SimConfig(seed=seed, events=events), [(int(a * 1e9), int(p), 128) for a, p in zip(arrivals, prompts)])
    t = np.array([r.arrival_ns / 1e9 for r in reqs])
    ttft = np.array([(r.first_token_ns - r.arrival_ns) / 1e6 for r in reqs])
    bins = np.floor(t).astype(int)
    ts = np.unique(bins)
    p50 = np.array([np.median(ttft[bins == b]) for b in ts])
    res = ChangepointDetector().fit(p50, ts.astype(float))
    return factor != 1, [c.t for c in res.changes]


def synthetic(seed: int) -> tuple[float, float, float]:
    y, cps = heavy_tailed_shifts(600, n_changes=1 + seed % 4, seed=10_000 + seed)
    ours = [c.index for c in ChangepointDetector().fit(y).changes]
    raw = rpt.Pelt(model="l2", min_size=5, jump=1).fit(y).predict(pen=2 * float(np.var(y)) * np.log(len(y)))[:-1]
    return f1_margin(cps, ours)[0], f1_margin(cps, raw)[0], f1_margin(cps, [])[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30, help="simulator runs with and without an injection, each")
    ap.add_argument("--series", type=int, default=100, help="synthetic series")
    ap.add_argument("--factor", type=float, default=1.5, help="slowdown factor of the injection")
    a = ap.parse_args()
    with ProcessPoolExecutor(2) as pool:
        sims = list(pool.map(sim_run, [(s, a.factor) for s in range(a.seeds)] + [(s, 1.0) for s in range(a.seeds)]))
        syn = np.array(list(pool.map(synthetic, range(a.series))))
    found = [any(abs(t - START_S) <= 5 for t in ts) for inj, ts in sims if inj]
    ends = [any(abs(t - END_S) <= 5 for t in ts) for inj, ts in sims if inj]
    quiet = [not ts for inj, ts in sims if not inj]
    print(f"simulator, {a.seeds} seeds, slowdown x{a.factor:g} from {START_S:g} s to {END_S:g} s at {RATE:g} req/s:")
    print(f"  start found within +-5 s: {np.mean(found):.2f}; end found within +-5 s: {np.mean(ends):.2f}")
    print(f"  runs without an injection that report no change: {np.mean(quiet):.2f}")
    print(f"synthetic heavy-tailed series: {a.series}; mean F1 at a margin of 5 windows")
    print(f"F1 perfkit={syn[:, 0].mean():.3f} pelt_l2_raw={syn[:, 1].mean():.3f} zero={syn[:, 2].mean():.3f}")


if __name__ == "__main__":
    main()
