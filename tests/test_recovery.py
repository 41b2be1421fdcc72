"""Recovery time against synthetic signals whose recovery is known."""

from __future__ import annotations

import numpy as np
import pytest

from perfkit.analysis import recovery_time


def _signal(slow_after_s: float, seed: int = 0, rate: float = 40.0, total_s: float = 30.0):
    """Healthy 0–10 s, every request failing 10–12 s, 3× slower for ``slow_after_s`` after, healthy again."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, total_s, int(rate * total_s)))
    lat = 50.0 * rng.lognormal(0.0, 0.3, len(t))
    ok = ~((t >= 10) & (t < 12))
    lat[(t >= 12) & (t < 12 + slow_after_s)] *= 3.0
    return t, lat, ok


@pytest.mark.parametrize("slow_s", [0.0, 2.0, 4.0, 7.5])
def test_recovery_time_matches_the_synthetic_truth_within_one_window(slow_s):
    hits = []
    for seed in range(20):
        r = recovery_time(*_signal(slow_s, seed), baseline_s=(0, 10))
        assert r.recovered and 10 <= r.outage_s[0] < 10.2 and 11.8 < r.outage_s[1] < 12
        hits.append(r.recovery_s)
    hits = np.array(hits)
    assert np.all(np.abs(hits - slow_s) <= 1.05), hits  # known to within one window (a window may straddle)


def test_a_deployment_that_never_recovers_is_said_so():
    t, lat, ok = _signal(100.0)
    r = recovery_time(t, lat, ok, baseline_s=(0, 10))
    assert not r.recovered and r.recovery_s is None and "not recovered" in r.reason
    assert not r.windows.loc[r.windows.start_s >= 12, "healthy"].any()


def test_recovery_needs_a_baseline_and_an_outage():
    t, lat, ok = _signal(2.0)
    with pytest.raises(ValueError, match="at least three"):
        recovery_time(t, lat, ok, baseline_s=(0, 1.5))
    with pytest.raises(ValueError, match="no outage"):
        recovery_time(t, lat, np.ones_like(ok), baseline_s=(0, 10))
    r = recovery_time(t, lat, np.ones_like(ok), baseline_s=(0, 10), outage_s=(10, 12))  # a slowdown, given
    assert r.recovered and 1.9 <= r.recovery_s <= 3.05
