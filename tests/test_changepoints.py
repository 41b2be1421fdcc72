"""Changepoints: the search against ruptures, the detector against synthetic and simulator ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import ruptures as rpt
from hypothesis import given, settings
from hypothesis import strategies as st

from perfkit.analysis import ChangepointDetector, f1_margin, heavy_tailed_shifts, pelt_l2
from perfkit.sim import SimConfig, SimEvent, replay


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("pen, min_size", [(0.05, 2), (0.3, 5), (2.0, 5)])
def test_pelt_l2_returns_what_ruptures_returns(seed, pen, min_size):
    y, _ = heavy_tailed_shifts(250, n_changes=1 + seed % 4, seed=seed)
    z = np.log(y)
    assert pelt_l2(z, pen, min_size) == rpt.Pelt(model="l2", min_size=min_size, jump=1).fit(z).predict(pen=pen)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=12, max_size=80), st.floats(0.01, 50))
def test_pelt_l2_segments_are_long_enough_and_end_at_n(zs, pen):
    b = pelt_l2(np.array(zs), pen, 4)
    assert b[-1] == len(zs) and all(y - x >= 4 for x, y in zip([0, *b[:-1]], b))


def test_f1_with_a_margin_follows_tcpdbench():
    assert f1_margin([100], [100])[0] == 1.0
    assert f1_margin([100], [104], margin=5)[0] == 1.0 and f1_margin([100], [106], margin=5)[0] < 1
    f1, precision, recall = f1_margin([100, 200], [])  # the zero baseline: only index 0 matches
    assert (precision, recall) == (1.0, 1 / 3) and f1 == pytest.approx(0.5)
    assert f1_margin([100], [98, 101])[1] == pytest.approx(2 / 3)  # one true change, matched once


def test_detector_beats_plain_pelt_and_the_zero_baseline_on_heavy_tailed_series():
    ours, raw, zero = [], [], []
    for s in range(16):
        y, cps = heavy_tailed_shifts(500, n_changes=1 + s % 3, seed=500 + s)
        ours.append(f1_margin(cps, [c.index for c in ChangepointDetector(n_perm=299).fit(y).changes])[0])
        b = rpt.Pelt(model="l2", min_size=5, jump=1).fit(y).predict(pen=2 * np.var(y) * np.log(len(y)))[:-1]
        raw.append(f1_margin(cps, b)[0])
        zero.append(f1_margin(cps, [])[0])
    # 0.88 here: the shortest segment is 2 windows, so that a transient event is found as a start and an end;
    # with 3% of windows hit by a Pareto spike, two land side by side about once in two series, and are taken
    # for one (bench/changepoint.py: F1 0.91, against 0.64 for plain PELT)
    assert np.mean(ours) > 0.85 and np.mean(ours) > np.mean(raw) + 0.15 and np.mean(ours) > np.mean(zero) + 0.3


def test_no_change_is_reported_in_series_without_one():
    found = [
        len(ChangepointDetector(n_perm=299).fit(heavy_tailed_shifts(500, 0, seed=900 + s)[0]).changes)
        for s in range(12)
    ]
    assert sum(f > 0 for f in found) <= 1, found


def test_each_change_has_a_location_interval_and_a_magnitude_with_an_interval():
    y, cps = heavy_tailed_shifts(600, n_changes=1, seed=3, min_jump=0.8, max_jump=0.8)
    res = ChangepointDetector().fit(y, np.arange(600) * 0.5)  # times in s, two windows a second
    assert len(res.changes) == 1
    c = res.changes[0]
    assert c.index_lo <= cps[0] <= c.index_hi and c.t == c.index * 0.5
    true_ratio = np.median(y[cps[0] :]) / np.median(y[: cps[0]])
    assert c.ratio_lo <= true_ratio <= c.ratio_hi
    assert abs(np.log(c.ratio)) == pytest.approx(np.log(1.8), abs=0.15) and c.p_adjusted < 0.05
    frame = res.to_frame()
    assert list(frame["index"]) == [c.index]


def test_defaults_accept_any_real_series_with_the_detect_changes_rule():
    rng = np.random.default_rng(4)
    y = np.r_[rng.normal(-1, 1, 300), rng.normal(2, 1, 300)]  # negative values: ranks, as detect_changes
    det = ChangepointDetector()
    assert det.transform_for(y) == "rank" and det.transform_for(np.exp(y)) == "log"
    res = det.fit(y)
    assert [abs(c.index - 300) <= 5 for c in res.changes] == [True]


def test_penalty_path_has_fewer_changes_as_the_penalty_grows():
    y, _ = heavy_tailed_shifts(400, n_changes=3, seed=8)
    path = ChangepointDetector().fit(y).penalty_path()
    assert (np.diff(path["n_changes"]) <= 0).all() and path["n_changes"].iloc[0] > path["n_changes"].iloc[-1]


def test_bad_input_is_refused_with_the_way_out():
    with pytest.raises(ValueError, match="transform='rank'"):
        ChangepointDetector(transform="log").fit([1.0, 0.0] * 20)
    assert ChangepointDetector(transform="rank").fit([1.0, 0.0] * 20).n == 40
    with pytest.raises(ValueError, match="too short"):
        ChangepointDetector().fit([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="not one of"):
        ChangepointDetector(transform="sqrt")


def _sim_ttft_p50(seed: int, factor: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arr = np.cumsum(rng.exponential(0.1, 1400))
    arr = arr[arr < 100]
    events = (SimEvent("slowdown", 40, 70, factor=factor),) if factor != 1 else ()
    reqs = replay(SimConfig(seed=seed, events=events), [(int(a * 1e9), 256, 64) for a in arr])
    t = np.array([r.arrival_ns / 1e9 for r in reqs])
    ttft = np.array([(r.first_token_ns - r.arrival_ns) / 1e6 for r in reqs])
    b = np.floor(t).astype(int)
    ts = np.unique(b)
    return ts.astype(float), np.array([np.median(ttft[b == x]) for x in ts])


def test_an_injected_slowdown_in_the_simulator_is_found_within_5_s_and_runs_without_one_are_quiet():
    found = quiet = 0
    for seed in range(8):
        t, y = _sim_ttft_p50(seed, 1.5)
        found += any(abs(c.t - 40) <= 5 for c in ChangepointDetector(n_perm=299).fit(y, t).changes)
        t, y = _sim_ttft_p50(100 + seed, 1.0)
        quiet += not ChangepointDetector(n_perm=299).fit(y, t).changes
    assert found >= 7 and quiet >= 7, (found, quiet)
