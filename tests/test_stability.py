"""Steady state and stability verdicts against simulator runs with known behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from perfkit.analysis import mser5, phase_stability
from perfkit.sim import SimConfig, SimEvent, replay


def _replay(
    seed: int, rates: tuple[float, float], duration_s: float = 120.0, events: tuple[SimEvent, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """TTFT (ms) by send time (s) of a run whose Poisson rate goes linearly from rates[0] to rates[1]."""
    rng = np.random.default_rng(seed)
    t, out = 0.0, []
    while t < duration_s:
        rate = rates[0] + (rates[1] - rates[0]) * t / duration_s
        t += rng.exponential(1 / rate)
        out.append(t)
    reqs = replay(SimConfig(seed=seed, events=events), [(int(a * 1e9), 256, 64) for a in out[:-1]])
    return (
        np.array([r.arrival_ns / 1e9 for r in reqs]),
        np.array([(r.first_token_ns - r.arrival_ns) / 1e6 for r in reqs]),
    )


def test_mser5_finds_an_initial_transient_and_leaves_steady_data_alone():
    rng = np.random.default_rng(0)
    steady = rng.normal(10, 1, 2000)
    drop, found = mser5(steady)
    assert found and drop <= 100
    transient = steady + np.r_[np.linspace(30, 0, 300), np.zeros(1700)]
    drop, found = mser5(transient)
    assert found and 200 <= drop <= 400
    drop, found = mser5(np.linspace(0, 50, 2000) + rng.normal(0, 1, 2000))  # a ramp never settles
    assert not found


@pytest.mark.parametrize("seed", range(3))
def test_a_constant_load_below_the_knee_is_stable(seed):
    t, ttft = _replay(seed, (10, 10))
    v = phase_stability(t, ttft, phase="steady", metric="ttft_ms")
    assert v.verdict == "stable", v
    assert abs(v.drift) < 0.1 and v.cv_p50 < 0.15 and v.windows >= 15


@pytest.mark.parametrize("seed", range(3))
def test_a_rising_load_is_a_trend(seed):
    t, ttft = _replay(seed, (4, 19))
    v = phase_stability(t, ttft)
    assert v.verdict in ("trend", "no steady state"), v
    if v.verdict == "trend":
        assert v.drift > 0.1 and v.drift_lo > 0


@pytest.mark.parametrize("seed", range(3))
def test_an_injected_slowdown_inside_the_phase_is_not_stable(seed):
    t, ttft = _replay(seed, (10, 10), events=(SimEvent("slowdown", 45, 75, factor=1.8),))
    v = phase_stability(t, ttft)
    assert v.verdict != "stable", v
    assert v.cv_p50 > 0.15


def test_a_short_phase_gets_no_verdict():
    v = phase_stability(np.arange(30.0), np.ones(30))
    assert v.verdict == "too short" and "at least 40" in v.reasons


def test_our_theil_sen_gives_scipys_slope_and_interval():
    """The stability verdict's trend no longer loads scipy.stats (start-up time); its figures must not move."""
    from scipy import stats

    from perfkit.analysis.stability import theil_sen

    rng = np.random.default_rng(4)
    for n in (8, 13, 40):
        for rounding in (6, 1):  # 1: ties in y; x with ties below
            x = np.floor(np.arange(n) / (2 if rounding == 1 else 1)).astype(float)
            y = (rng.normal(size=n) + 0.02 * x).round(rounding)
            s = stats.theilslopes(y, x, alpha=0.95)
            assert np.allclose(theil_sen(y, x, 0.95), (s[0], s[2], s[3]), rtol=0, atol=1e-12)
