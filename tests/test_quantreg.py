"""Quantile regression: statsmodels' coefficients, cluster-robust intervals that cover, no crossing."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from perfkit.analysis import quantile_regression


def _clustered(rng: np.random.Generator, groups: int = 40, per: int = 15) -> pd.DataFrame:
    """y = 1 + 2x + cluster effect + noise, x mostly shared within a cluster: the slope is 2 at every q."""
    g = np.repeat(np.arange(groups), per)
    x = rng.uniform(0, 4, groups)[g] + 0.3 * rng.standard_normal(groups * per)
    y = 1 + 2 * x + rng.standard_normal(groups)[g] + rng.standard_normal(groups * per)
    return pd.DataFrame({"x": x, "y": y, "g": g})


def test_coefficients_are_statsmodels_quantreg_on_the_same_model():
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "running": rng.integers(1, 60, n),
            "prompt": rng.lognormal(5.5, 0.4, n),
            "phase": rng.choice(["light", "heavy"], n),
        }
    )
    df["ttft_ms"] = np.exp(
        2.5 + 0.02 * df.running + 0.001 * df.prompt + 0.3 * (df.phase == "heavy") + 0.3 * rng.standard_normal(n)
    )
    formula = "np.log(ttft_ms) ~ running + prompt + C(phase)"
    res = quantile_regression(df, formula, (0.5, 0.9, 0.99))
    for q in res.qs:
        ref = smf.quantreg(formula, df).fit(q=q, max_iter=5000).params
        assert list(ref.index) == list(res.params.index)
        np.testing.assert_allclose(res.params[q].to_numpy(), ref.to_numpy(), atol=1e-6, rtol=0)
    assert res.n == n and res.table().shape == (4 * 3, 6)


def test_cluster_robust_intervals_cover_and_naive_ones_do_not():
    rng = np.random.default_rng(1)
    reps = 150
    hits = {"cluster": np.zeros(2), "naive": np.zeros(2)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' iteration notes on small samples
        for _ in range(reps):
            df = _clustered(rng)
            for kind, kw in (("cluster", {"cluster": "g"}), ("naive", {})):
                r = quantile_regression(df, "y ~ x", (0.5, 0.9), **kw)
                hits[kind] += [(r.lo.at["x", q] <= 2 <= r.hi.at["x", q]) for q in (0.5, 0.9)]
    cover = {k: v / reps for k, v in hits.items()}
    # measured: 96.7% and 92.7% clustered; 64% and 66% when the requests are taken as independent
    assert (cover["cluster"] >= 0.89).all() and (cover["cluster"] <= 0.99).all(), cover
    assert (cover["naive"] < 0.8).all(), cover


def test_independent_rows_need_no_clusters_and_blocks_are_consecutive_rows():
    rng = np.random.default_rng(2)
    reps, hits = 150, np.zeros(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(reps):
            x = rng.uniform(0, 4, 300)
            df = pd.DataFrame({"x": x, "y": 1 + 2 * x + (1 + 0.5 * x) * rng.standard_normal(300)})
            r = quantile_regression(df, "y ~ x", (0.5, 0.9))
            true = {0.5: 2.0, 0.9: 2 + 0.5 * 1.2815515655446004}  # slope of the conditional quantile
            hits += [(r.lo.at["x", q] <= true[q] <= r.hi.at["x", q]) for q in (0.5, 0.9)]
    assert ((hits / reps) >= 0.9).all() and ((hits / reps) <= 0.99).all(), hits / reps
    df = _clustered(np.random.default_rng(3))
    assert quantile_regression(df, "y ~ x", (0.5,), block=15).n_clusters == 40
    assert quantile_regression(df, "y ~ x", (0.5,), cluster="g").n_clusters == 40


def test_predictions_never_cross():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, 40)
    df = pd.DataFrame({"x": x, "y": x + rng.standard_normal(40)})
    res = quantile_regression(df, "y ~ x", (0.5, 0.55, 0.6, 0.9))
    grid = pd.DataFrame({"x": np.linspace(-3, 4, 50)})  # far outside the data, where lines cross
    raw = np.column_stack([res.params.at["Intercept", q] + res.params.at["x", q] * grid.x for q in res.qs])
    assert (np.diff(raw, axis=1) < 0).any(), "the premise: some fitted lines cross on this grid"
    pred = res.predict(grid).pivot(index="row", columns="q", values="estimate")
    assert (np.diff(pred.to_numpy(), axis=1) >= 0).all()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"qs": (0.5, 1.0)}, "strictly between 0 and 1"),
        ({"qs": (0.9, 0.5)}, "increasing order"),
        ({"cluster": "run"}, "cluster column 'run' is not in the data"),
        ({"formula": "y ~ nope"}, "formula 'y ~ nope'"),
        ({"block": 0}, "block must be at least 1"),
    ],
)
def test_bad_input_is_refused_with_what_to_fix(kw, message):
    df = _clustered(np.random.default_rng(5), groups=4, per=5)
    args = {"formula": "y ~ x", "qs": (0.5,)} | kw
    with pytest.raises(ValueError, match=message):
        quantile_regression(df, args.pop("formula"), args.pop("qs"), **args)


def test_pwm_recovers_a_generalised_pareto_tail():
    from scipy import stats

    from perfkit.analysis import gpd_pwm

    y = stats.genpareto.rvs(0.2, scale=2.0, size=200_000, random_state=1)
    xi, sigma = gpd_pwm(y)
    assert abs(xi[0] - 0.2) < 0.02 and abs(sigma[0] - 2.0) < 0.05


def test_pot_quantile_beyond_the_data_covers_where_the_empirical_one_cannot():
    from scipy import stats

    from perfkit.analysis import pot_quantile

    rng = np.random.default_rng(0)
    reps, hits, pot_err, emp_err = 150, 0, [], []
    for dist in (stats.genpareto(0.2, scale=10), stats.lognorm(0.5, scale=50)):
        for r in range(reps):
            x = dist.rvs(size=3000, random_state=rng)
            e = pot_quantile(x, 0.9999, n_boot=300, seed=r)
            true = dist.ppf(0.9999)
            hits += e.lo <= true <= e.hi
            pot_err.append(abs(e.estimate / true - 1))
            emp_err.append(abs(np.quantile(x, 0.9999) / true - 1))
    # measured: 90% (Pareto tail) and 92.5% (lognormal) for a nominal 95%; the percentile bootstrap of a
    # tail fit runs a little narrow, which the docs say
    assert hits / (2 * reps) >= 0.86, hits / (2 * reps)
    assert np.median(pot_err) < 0.7 * np.median(emp_err), (np.median(pot_err), np.median(emp_err))
    with pytest.raises(ValueError, match="at least 30"):
        pot_quantile(np.arange(100.0), 0.999)
    with pytest.raises(ValueError, match="between threshold_q"):
        pot_quantile(np.arange(1000.0), 0.5)


def test_extreme_quantile_regression_follows_the_load_and_the_tail():
    from scipy import stats

    from perfkit.analysis import extreme_quantile_regression

    rng = np.random.default_rng(3)
    n, q = 3000, 0.999
    x = rng.uniform(0, 4, n)
    tail = stats.genpareto(0.2, scale=3)
    df = pd.DataFrame({"x": x, "y": 10 + 5 * x + tail.rvs(size=n, random_state=rng)})
    new = pd.DataFrame({"x": [0.5, 2.0, 3.5]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = extreme_quantile_regression(df, "y ~ x", q, new, n_boot=60, block=100)
    true = 10 + 5 * new.x + tail.ppf(q)
    assert (np.abs(out.estimate / true - 1) < 0.15).all(), (out, true)
    assert ((out.lo <= true) & (true <= out.hi)).all(), (out, true)
    assert (np.diff(out.estimate) > 0).all() and (out.estimate > out.threshold).all()


def test_a_result_prints_short_and_summarises_its_coefficients():
    """Printing a result dumped pages of covariance matrices."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.random(200)})
    df["y"] = 1 + 2 * df.x + rng.standard_normal(200)
    res = quantile_regression(df, "y ~ x", (0.5, 0.9))
    assert len(repr(res)) < 200 and ".summary()" in repr(res)
    text = res.summary()
    assert len(text.splitlines()) == 5 and "q=0.9" in text and "[" in text
