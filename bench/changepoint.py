"""How well does perfkit find changepoints?  Prints figures; not a test.

1. **Simulator runs**: the simulator's engine (``perfkit.sim.replay``, the model
   ``perfkit sim`` serves) under Poisson arrivals for 120 s, with one injected
   slowdown (every step ``--factor`` times longer from 50 s to 80 s) or none,
   over ``--seeds`` seeds each.  The series is TTFT p50 in 1-s windows.  A run
   with an injection counts as found when a change lies within ±5 s of its start;
   a run without one counts as a false alarm when any change is reported.
2. **Steady simulator runs** (no injection), open loop (Poisson, ``RATE`` req/s) and closed loop (16
   users), ``--steady-seeds`` seeds each: the series a run's change table scans (TTFT p50 and p99, E2E
   p50, ITL p50 and p99 per token, output tokens/s in 1-s windows of the traffic), with the per-run false
   alarm control of :func:`perfkit.analysis.change_table` (Bonferroni across the series).  A run is
   flagged when any change is reported in any series.
3. **Transient spikes**: in a steady open-loop run, every request sent during ``D`` s (D = 2, 5, 10) at
   a random time waits ``F`` times as long for its first token (F = 3, 5, 10); found when the TTFT p50
   series reports a change within 2 s of the start and one within 2 s of the end.
4. **Synthetic heavy-tailed series** (``perfkit.analysis.datasets.heavy_tailed_shifts``,
   600 windows, 1–4 level shifts of 25–150%, AR(1) noise, Pareto spikes): F1 with a
   margin of 5 windows (TCPDBench's convention, index 0 counted as a change) for
   perfkit's detector, for ruptures' PELT with an L2 cost on the raw values and the
   same BIC-type rule on their variance (``2 · var(y) · log n``), and for predicting
   no change at all (the zero baseline), measured in the same run.

    python bench/changepoint.py [--seeds 30] [--steady-seeds 20] [--spike-seeds 20] [--series 100] [--factor 1.5]

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
from perfkit.sim import SimConfig, SimEvent, closed_loop_replay, replay

START_S, END_S, DURATION_S, RATE = 50.0, 80.0, 120.0, 10.0
WARMUP_S = 5.0


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


def _series(reqs: list) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The 1-s series a run's change table scans, from the engine's requests (by arrival second)."""
    t = np.array([r.arrival_ns / 1e9 for r in reqs])
    ttft = np.array([(r.first_token_ns - r.arrival_ns) / 1e6 for r in reqs])
    e2e = np.array([(r.finish_ns - r.arrival_ns) / 1e6 for r in reqs])
    b = np.floor(t - t.min()).astype(int)
    ts = np.unique(b)
    gaps = np.concatenate([np.diff(r.token_ns) / 1e6 for r in reqs])
    gap_t = np.concatenate([np.array(r.token_ns[1:]) / 1e9 for r in reqs])
    gb = np.floor(gap_t - t.min()).astype(int)
    toks = np.concatenate([np.array(r.token_ns) / 1e9 for r in reqs])
    tb = np.floor(toks - t.min()).astype(int)
    out = {
        "ttft_p50_ms": np.array([np.median(ttft[b == k]) for k in ts]),
        "ttft_p99_ms": np.array([np.quantile(ttft[b == k], 0.99) for k in ts]),
        "e2e_p50_ms": np.array([np.median(e2e[b == k]) for k in ts]),
    }
    series = {k: (ts.astype(float), v) for k, v in out.items()}
    gts = np.unique(gb[gb >= 0])
    series["itl_p50_ms"] = (gts.astype(float), np.array([np.median(gaps[gb == k]) for k in gts]))
    series["itl_p99_ms"] = (gts.astype(float), np.array([np.quantile(gaps[gb == k], 0.99) for k in gts]))
    kts = np.unique(tb[tb >= 0])
    series["output_tokens_per_s"] = (kts.astype(float), np.bincount(tb[tb >= 0])[kts].astype(float))
    # the traffic window as change_table keeps it (not the drain after the last send), less a warm-up of
    # WARMUP_S (the users' first requests all arrive at once), as a run's warm-up phase would leave out
    last = float(b.max())
    return {
        k: (t_[(t_ >= WARMUP_S) & (t_ <= last)], v[(t_ >= WARMUP_S) & (t_ <= last)]) for k, (t_, v) in series.items()
    }


def steady_run(args: tuple[int, str]) -> list[str]:
    """A steady run without any injection; the series in which a change was reported."""
    seed, mode = args
    rng = np.random.default_rng(seed)
    cfg = SimConfig(seed=seed)
    if mode == "open":
        arrivals = np.cumsum(rng.exponential(1 / RATE, int(RATE * DURATION_S * 1.2)))
        arrivals = arrivals[arrivals < DURATION_S]
        prompts = rng.lognormal(np.log(256), 0.4, len(arrivals)).astype(int) + 1
        reqs = replay(cfg, [(int(a * 1e9), int(p), 128) for a, p in zip(arrivals, prompts)])
    else:
        # answers of lognormal length, as a chat workload's are; with every answer 128 tokens long ("lockstep")
        # the users fall into step with each other and the batch's make-up shifts now and then: real changes
        # of a synchronised closed loop, which the detector reports
        out = 128 if mode == "lockstep" else (lambda g: int(g.lognormal(np.log(128), 0.5)) + 1)
        reqs = closed_loop_replay(
            cfg,
            16,
            DURATION_S,
            seed=seed,
            prompt_tokens=lambda g: int(g.lognormal(np.log(256), 0.4)) + 1,
            output_tokens=out,
        )
    series = _series(reqs)
    flagged = []
    for name, (ts, v) in series.items():
        det = ChangepointDetector(alpha=0.05 / len(series), seed=seed)
        if det.fit(v, ts).changes:
            flagged.append(name)
    return flagged


def spike_run(args: tuple[int, float, float]) -> tuple[bool, bool]:
    """A steady open-loop run in which every request sent during ``dur`` s at a random time waits ``factor`` times
    as long for its first token (a transient event: a stall of the scheduler, a brief outage of a dependency);
    returns (its start found, its end found) in the TTFT p50 series, each within 2 s."""
    seed, factor, dur = args
    rng = np.random.default_rng([seed, int(factor * 10), int(dur * 10)])
    arrivals = np.cumsum(rng.exponential(1 / RATE, int(RATE * DURATION_S * 1.2)))
    arrivals = arrivals[arrivals < DURATION_S]
    prompts = rng.lognormal(np.log(256), 0.4, len(arrivals)).astype(int) + 1
    reqs = replay(SimConfig(seed=seed), [(int(a * 1e9), int(p), 128) for a, p in zip(arrivals, prompts)])
    start = float(rng.uniform(20, DURATION_S - 20 - dur))
    t = np.array([r.arrival_ns / 1e9 for r in reqs])
    ttft = np.array([(r.first_token_ns - r.arrival_ns) / 1e6 for r in reqs])
    ttft = np.where((t >= start) & (t < start + dur), ttft * factor, ttft)
    b = np.floor(t - t.min()).astype(int)
    ts = np.unique(b)
    p50 = np.array([np.median(ttft[b == k]) for k in ts])
    found = [c.t + t.min() for c in ChangepointDetector(seed=seed).fit(p50, ts.astype(float)).changes]
    return any(abs(x - start) <= 2 for x in found), any(abs(x - (start + dur)) <= 2 for x in found)


def synthetic(seed: int) -> tuple[float, float, float]:
    y, cps = heavy_tailed_shifts(600, n_changes=1 + seed % 4, seed=10_000 + seed)
    ours = [c.index for c in ChangepointDetector().fit(y).changes]
    raw = rpt.Pelt(model="l2", min_size=5, jump=1).fit(y).predict(pen=2 * float(np.var(y)) * np.log(len(y)))[:-1]
    return f1_margin(cps, ours)[0], f1_margin(cps, raw)[0], f1_margin(cps, [])[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30, help="simulator runs with and without an injection, each")
    ap.add_argument("--series", type=int, default=100, help="synthetic series")
    ap.add_argument("--steady-seeds", type=int, default=20, help="steady runs, open and closed loop each")
    ap.add_argument("--spike-seeds", type=int, default=20, help="runs per spike factor and duration")
    ap.add_argument("--factor", type=float, default=1.5, help="slowdown factor of the injection")
    a = ap.parse_args()
    with ProcessPoolExecutor(2) as pool:
        sims = list(pool.map(sim_run, [(s, a.factor) for s in range(a.seeds)] + [(s, 1.0) for s in range(a.seeds)]))
        syn = np.array(list(pool.map(synthetic, range(a.series))))
        steady = {
            m: list(pool.map(steady_run, [(s, m) for s in range(a.steady_seeds)]))
            for m in ("open", "closed", "lockstep")
        }
        grid = [(f, d) for f in (3.0, 5.0, 10.0) for d in (2.0, 5.0, 10.0)]
        spikes = {fd: list(pool.map(spike_run, [(s, *fd) for s in range(a.spike_seeds)])) for fd in grid}
    found = [any(abs(t - START_S) <= 5 for t in ts) for inj, ts in sims if inj]
    ends = [any(abs(t - END_S) <= 5 for t in ts) for inj, ts in sims if inj]
    quiet = [not ts for inj, ts in sims if not inj]
    print(f"simulator, {a.seeds} seeds, slowdown x{a.factor:g} from {START_S:g} s to {END_S:g} s at {RATE:g} req/s:")
    print(f"  start found within +-5 s: {np.mean(found):.2f}; end found within +-5 s: {np.mean(ends):.2f}")
    print(f"  runs without an injection that report no change: {np.mean(quiet):.2f}")
    for mode, runs in steady.items():
        flagged = [r for r in runs if r]
        print(
            f"steady {mode}-loop runs flagged (any change in any series): {len(flagged)} of {len(runs)}"
            + (f" ({'; '.join(', '.join(r) for r in flagged)})" if flagged else "")
        )
    print(f"transient TTFT spikes at {RATE:g} req/s, start and end found within 2 s (share of seeds):")
    for (f, d), runs in spikes.items():
        st, en = np.mean([r[0] for r in runs]), np.mean([r[1] for r in runs])
        print(f"  x{f:g} for {d:g} s: start {st:.2f}, end {en:.2f}")
    worst = min(min(np.mean([r[0] for r in v]), np.mean([r[1] for r in v])) for v in spikes.values())
    print(
        f"steady_flagged open={sum(bool(r) for r in steady['open'])} closed={sum(bool(r) for r in steady['closed'])} "
        f"spikes_found_min={worst:.2f}"
    )
    print(f"synthetic heavy-tailed series: {a.series}; mean F1 at a margin of 5 windows")
    print(f"F1 perfkit={syn[:, 0].mean():.3f} pelt_l2_raw={syn[:, 1].mean():.3f} zero={syn[:, 2].mean():.3f}")


if __name__ == "__main__":
    main()
