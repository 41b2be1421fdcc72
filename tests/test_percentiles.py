"""Percentile intervals against synthetic ground truth, the not-estimable rule, Holm's adjustment."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from perfkit.analysis import (
    effective_sample_size,
    holm,
    integrated_autocorrelation_time,
    min_samples,
    percentile_ci,
    percentile_cis,
)


def ar1_lognormal(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """exp of a stationary Gaussian AR(1) with unit variance: marginal quantile q is exp(Φ⁻¹(q))."""
    e = rng.standard_normal(n)
    z = np.empty(n)
    z[0] = e[0]
    for i in range(1, n):
        z[i] = phi * z[i - 1] + np.sqrt(1 - phi**2) * e[i]
    return np.exp(z)


def test_min_samples_rule():
    assert min_samples(0.99) == 300 and min_samples(0.999) == 3000
    assert min_samples(0.5) == 6 and min_samples(0.9) == 30


def test_a_percentile_the_sample_cannot_support_is_not_a_number():
    e = percentile_ci(np.arange(200.0), 0.99)
    assert not e.estimable and e.estimate is None and e.lo is None
    assert "p99 needs at least 300" in e.note
    assert percentile_ci([], 0.5).note == "no samples"
    ok = percentile_ci(np.random.default_rng(0).exponential(size=5000), 0.99)
    assert ok.estimable and ok.lo < ok.estimate < ok.hi


def test_autocorrelation_time_of_ar1_matches_theory():
    # τ = (1 + φ) / (1 − φ) for an AR(1): 9 for φ = 0.8
    rng = np.random.default_rng(3)
    z = np.log(ar1_lognormal(200_000, 0.8, rng))
    assert integrated_autocorrelation_time(z) == pytest.approx(9.0, rel=0.1)
    assert integrated_autocorrelation_time(rng.standard_normal(50_000)) == pytest.approx(1.0, abs=0.1)
    assert effective_sample_size(z) == pytest.approx(200_000 / 9, rel=0.12)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_intervals_cover_the_truth_on_autocorrelated_data_where_iid_ones_do_not(q):
    rng = np.random.default_rng(int(q * 1000))
    truth = float(np.exp(norm.ppf(q)))
    hits = {"ess": [], "order": []}
    for _ in range(150):
        x = ar1_lognormal(3000, 0.8, rng)
        for method in hits:
            e = percentile_ci(x, q, method=method)
            if e.estimable:
                hits[method].append(e.lo <= truth <= e.hi)
    assert len(hits["ess"]) >= 125  # decided on an upper bound of tau: most runs of this size get an interval
    # 150 replicates: a true 95% shows between about 90% and 99%
    assert 0.90 <= np.mean(hits["ess"]) <= 0.995, np.mean(hits["ess"])
    assert np.mean(hits["order"]) < 0.85  # assuming independence is far too optimistic here


def test_exact_order_interval_covers_on_independent_data():
    rng = np.random.default_rng(11)
    hits = []
    for _ in range(300):
        e = percentile_ci(rng.exponential(size=1000), 0.9, method="order")
        hits.append(e.lo <= np.log(10) <= e.hi)
    assert 0.92 <= np.mean(hits) <= 0.99


def test_block_bootstrap_brackets_the_estimate_and_is_seeded():
    x = ar1_lognormal(4000, 0.5, np.random.default_rng(2))
    a, b = (percentile_ci(x, 0.9, method="block", n_boot=300, seed=7) for _ in range(2))
    assert a == b and a.lo < a.estimate < a.hi
    with pytest.raises(ValueError, match="not one of"):
        percentile_ci(x, 0.9, method="magic")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=400), st.sampled_from([0.5, 0.9, 0.99]))
def test_intervals_are_ordered_and_inside_the_data(xs, q):
    e = percentile_ci(xs, q)
    if e.estimable:
        assert min(xs) <= e.lo <= e.estimate <= e.hi <= max(xs)
    else:
        assert e.estimate is None and e.note


def test_holm_against_hand_computed_values():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted: .005*4=.02, .01*3=.03, .03*2=.06, .04*1=.04 -> monotone: .02, .03, .06, .06
    assert np.allclose(holm(p)[:4], [0.03, 0.06, 0.06, 0.02]) and np.isnan(holm(p)[4])


def test_a_long_series_gets_the_autocorrelation_time_of_the_exact_sum():
    """Above 2^18 samples τ comes from batch means (linear cost); it matches the theory of an AR(1)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(3)
    for phi in (0.0, 0.9, 0.99):
        x = lfilter([1.0], [1.0, -phi], rng.standard_normal(1_500_000))
        want = (1 + phi) / (1 - phi)  # τ of an AR(1)
        assert integrated_autocorrelation_time(x) == pytest.approx(want, rel=0.05), phi
        ind = x <= np.quantile(x, 0.9)
        # an indicator is kept as bool (no float copy) and gets the same τ as its float version
        assert integrated_autocorrelation_time(ind) == pytest.approx(
            integrated_autocorrelation_time(ind.astype(float)), rel=1e-9
        )


def test_several_levels_at_once_give_the_numbers_of_one_call_each():
    rng = np.random.default_rng(4)
    x = ar1_lognormal(2500, 0.8, rng)  # p99.9 needs 3,000 effectively independent samples: not estimable
    x[[3, 70]] = np.nan
    for method in ("ess", "order", "block"):
        many = percentile_cis(x, (0.5, 0.9, 0.99, 0.999), method=method, n_boot=200)
        assert many == [percentile_ci(x, q, method=method, n_boot=200) for q in (0.5, 0.9, 0.99, 0.999)]
    assert not many[-1].estimable


def test_overlapping_batch_means_see_the_autocorrelation_of_an_ar1():
    """Unbiased for τ on average; with windows n/10 long one estimate has about 13.5 degrees of freedom
    (a relative error near 40%), so the default is checked on a mean of series and a single one with
    shorter windows."""
    from scipy.signal import lfilter

    from perfkit.analysis import overlapping_batch_means_time

    rng = np.random.default_rng(5)
    for phi in (0.0, 0.5, 0.9):
        want = (1 + phi) / (1 - phi)
        one = overlapping_batch_means_time(lfilter([1.0], [1.0, -phi], rng.standard_normal(200_000)), 100)
        assert one == pytest.approx(want, rel=0.25), phi
        many = [
            overlapping_batch_means_time(lfilter([1.0], [1.0, -phi], rng.standard_normal(20_000))) for _ in range(60)
        ]
        assert np.mean(many) == pytest.approx(want, rel=0.15), phi
    assert overlapping_batch_means_time(np.ones(50)) == 1.0 and overlapping_batch_means_time(np.arange(9.0)) == 1.0


def test_a_short_strongly_correlated_series_is_not_estimable_and_says_how_many_samples_would_do():
    # AR(1) with phi = 0.9: the p99's true effective size in 1,000 samples is about 170, under the 300 it needs
    rng = np.random.default_rng(21)
    given, needed = 0, []
    for _ in range(100):
        e = percentile_ci(ar1_lognormal(1000, 0.9, rng), 0.99)
        given += e.estimable
        if not e.estimable:
            needed.append(e.n_needed)
            assert "samples would do" in e.note and f"{e.n_needed:,}" in e.note
    assert given <= 5, given  # at most 5% of such runs get an interval
    # the plan is about right: at the median planned size, most series of that correlation are estimable
    n_plan = int(np.median(needed))
    assert 1_500 < n_plan < 12_000, n_plan
    ok = sum(percentile_ci(ar1_lognormal(n_plan, 0.9, rng), 0.99).estimable for _ in range(40))
    assert ok >= 20, (n_plan, ok)


def test_samples_needed_grows_with_the_autocorrelation_time():
    from perfkit.analysis.percentiles import AutocorrelationTime, samples_needed

    assert samples_needed(1.0, 0.99) == 300
    short = samples_needed(AutocorrelationTime(2.0, 30.0, 3.0, 10), 0.99)
    long = samples_needed(AutocorrelationTime(8.0, 30.0, 12.0, 80), 0.99)
    assert 600 <= short < long and long >= 2400
