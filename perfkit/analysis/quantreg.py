"""Quantile regression of latency on load and request factors, with cluster-robust intervals.

``quantile_regression(df, "ttft_ms ~ running + prompt_tokens", qs=(0.5, 0.9, 0.99), cluster="run_id")``
fits each quantile with statsmodels' :class:`~statsmodels.regression.quantile_regression.QuantReg`
(the coefficients are statsmodels', which the tests check to 1e-6) and adds what a latency study
needs besides:

- **Intervals that survive dependence.** Requests of one run, or of neighbouring seconds, share a
  queue; treating them as independent gives intervals far too narrow.  The covariance is the
  cluster-robust sandwich of Parente & Santos Silva (2016): ``A⁻¹ B A⁻¹ / n`` with ``A`` the
  kernel estimate of the conditional density at the quantile (Powell, Hall–Sheather bandwidth) and
  ``B`` built from the score summed within each cluster, each cluster's sum freed of the pull of the
  fit toward it (a CR3-like correction), with Student's t on (clusters - 1) degrees of freedom.
  Clusters are a column (runs) or consecutive blocks of ``block`` rows in time order (``"auto"``:
  six autocorrelation times of the score), with a correction for the correlation that crosses
  block boundaries.  ``bench/quantreg_coverage.py`` measures the coverage.
- **No crossing.** Separately fitted quantile lines can cross; predictions are rearranged
  (sorted across the quantile levels at each point, Chernozhukov, Fernández-Val & Galichon 2010),
  which never moves an estimate further from the truth.

References
----------
Koenker, R. & Bassett, G., "Regression quantiles", *Econometrica* 46(1), 1978.
Parente, P. M. D. C. & Santos Silva, J. M. C., "Quantile regression with clustered data",
*Journal of Econometric Methods* 5(1), 2016.
Chernozhukov, V., Fernández-Val, I. & Galichon, A., "Quantile and probability curves without
crossing", *Econometrica* 78(3), 2010.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from perfkit.analysis.percentiles import geyer_sequence

__all__ = ["QuantRegResult", "auto_block", "extreme_quantile_regression", "quantile_regression"]

BLOCK_TAUS = 6  # block="auto": rows per block in autocorrelation times of the score


@dataclass
class QuantRegResult:
    """Coefficients per quantile with cluster-robust standard errors and intervals.

    Attributes
    ----------
    formula : str
    qs : tuple of float
    params, bse, lo, hi : DataFrame
        One row per term, one column per quantile level.
    n : int
        Rows used (rows with a missing value in the formula's variables are dropped).
    n_clusters : int
        Clusters behind the intervals (the fewest over the levels with ``block="auto"``).
    level : float
    cov : dict
        Covariance matrix of the coefficients, per quantile level.
    critical : dict
        The intervals' multiple of the standard error per quantile level: Student's t on (clusters - 1)
        degrees of freedom, or the normal one when every row is its own cluster.
    """

    formula: str
    qs: tuple[float, ...]
    params: pd.DataFrame
    bse: pd.DataFrame
    lo: pd.DataFrame
    hi: pd.DataFrame
    n: int
    n_clusters: int
    level: float
    cov: dict[float, np.ndarray]
    critical: dict[float, float]
    _design_info: object

    def __repr__(self) -> str:
        return (
            f"QuantRegResult({self.formula!r}, q={list(self.qs)}, n={self.n}, clusters={self.n_clusters}, "
            f"level={self.level:g}; .summary() for the coefficients)"
        )

    def summary(self) -> str:
        """The coefficients with their intervals, one line per term and quantile."""
        lines = [f"{self.formula}: {self.n} rows, {self.n_clusters} clusters, {100 * self.level:g}% intervals"]
        for q in self.qs:
            for t in self.params.index:
                coef, lo, hi = self.params.at[t, q], self.lo.at[t, q], self.hi.at[t, q]
                lines.append(f"  q={q:g}  {t:<24} {coef:+.4g}  [{lo:+.4g}, {hi:+.4g}]")
        return "\n".join(lines)

    def table(self) -> pd.DataFrame:
        """Long form: one row per term and quantile (``term``, ``q``, ``coef``, ``se``, ``lo``, ``hi``)."""
        rows = [
            {
                "term": t,
                "q": q,
                "coef": self.params.at[t, q],
                "se": self.bse.at[t, q],
                "lo": self.lo.at[t, q],
                "hi": self.hi.at[t, q],
            }
            for q in self.qs
            for t in self.params.index
        ]
        return pd.DataFrame(rows)

    def predict(self, new: pd.DataFrame) -> pd.DataFrame:
        """Predicted quantiles at the rows of ``new``, rearranged so that they never cross, with intervals.

        Columns ``q``, ``row`` (position in ``new``), ``estimate``, ``lo``, ``hi`` (the interval
        of the unrearranged fit at that level; rearrangement keeps the estimate inside the range of
        the fitted lines, not necessarily inside each interval when lines cross).
        """
        import patsy

        x = np.asarray(patsy.build_design_matrices([self._design_info], new, return_type="dataframe")[0])
        raw = np.column_stack([x @ self.params[q].to_numpy() for q in self.qs])
        fitted = np.sort(raw, axis=1)  # rearrangement: the qs are increasing, so sort across them
        rows = []
        for j, q in enumerate(self.qs):
            z = self.critical[q]
            se = np.sqrt(np.einsum("ij,jk,ik->i", x, self.cov[q], x))
            for i in range(len(x)):
                rows.append(
                    {
                        "q": q,
                        "row": i,
                        "estimate": fitted[i, j],
                        "lo": raw[i, j] - z * se[i],
                        "hi": raw[i, j] + z * se[i],
                    }
                )
        return pd.DataFrame(rows)


def _hall_sheather(n: int, q: float, alpha: float = 0.05) -> float:
    """The Hall–Sheather bandwidth on the probability scale."""
    z = stats.norm.ppf(1 - alpha / 2)
    x0 = stats.norm.ppf(q)
    f0 = stats.norm.pdf(x0)
    return n ** (-1 / 3) * z ** (2 / 3) * ((1.5 * f0**2) / (2 * x0**2 + 1)) ** (1 / 3)


def _sandwich(x: np.ndarray, resid: np.ndarray, q: float, groups: np.ndarray, block: int | None = None) -> np.ndarray:
    """Cluster-robust covariance of quantile-regression coefficients.

    The sandwich of Parente & Santos Silva (2016), ``A⁻¹ B A⁻¹ / n``, with each cluster's summed score first
    freed of what the fit took from it: the fitted coefficients move toward every cluster, so its score at the
    estimate is ``(I - A_g A⁻¹)`` times its score at the truth (``A_g`` the cluster's share of ``A``), and the
    score is divided by that factor (the jackknife-like CR3 of least squares, applied to the linearised score;
    without it the intervals at q = 0.9 with 40 clusters covered about 90%).  With clusters that are ``block``
    consecutive rows, the covariance is also scaled by ``τ / (τ - 2 Σ k ρ_k / block)`` per coefficient, from
    the autocorrelation of that coefficient's influence series: scores on either side of a block boundary are
    still correlated, which non-overlapping blocks leave out.
    """
    n, k = x.shape
    h = _hall_sheather(n, q)
    h = min(h, q - 1e-6, 1 - q - 1e-6) if 0 < q < 1 else h
    scale = min(np.std(resid, ddof=1), stats.iqr(resid) / 1.349) or np.std(resid) or 1.0
    hn = scale * (stats.norm.ppf(q + h) - stats.norm.ppf(q - h))
    w = (np.abs(resid) < hn) / (2 * hn * n)  # uniform kernel of half-width hn (Powell)
    a = x.T @ (x * w[:, None])
    ainv = np.linalg.pinv(a)
    score = x * (q - (resid < 0))[:, None]
    _, inv = np.unique(groups, return_inverse=True)
    g = int(inv.max()) + 1
    sums = np.zeros((g, k))
    np.add.at(sums, inv, score)
    share = np.zeros((g, k, k))
    np.add.at(share, inv, x[:, :, None] * x[:, None, :] * w[:, None, None])
    eye = np.eye(k)
    freed = np.stack([np.linalg.lstsq(eye - share[j] @ ainv, sums[j], rcond=None)[0] for j in range(g)])
    corr = (g - 1) / g if g > 1 else 1.0  # CR3's factor
    v = corr * ainv @ (freed.T @ freed / n) @ ainv / n
    if block is not None and block > 1:
        infl = score @ ainv.T
        factor = np.ones(k)
        for j in range(k):
            tau, moment = geyer_sequence(infl[:, j])
            factor[j] = tau / max(tau - 2 * moment / block, tau / 4)
        v = v * np.sqrt(np.outer(factor, factor))
    return v


def auto_block(x: np.ndarray, resid: np.ndarray, q: float) -> int:
    """A block length for rows in time order: :data:`BLOCK_TAUS` times the largest autocorrelation time of the
    coefficients' score series (at least ``n^(1/3)`` rows, at most a tenth of them, so that there are ten blocks
    or more)."""
    n = len(resid)
    score = x * (q - (resid < 0))[:, None]
    tau = max((geyer_sequence(score[:, j])[0] for j in range(x.shape[1]) if np.ptp(score[:, j]) > 0), default=1.0)
    return int(min(max(math.ceil(BLOCK_TAUS * tau), math.ceil(n ** (1 / 3))), max(1, n // 10)))


def _design(
    data: pd.DataFrame, formula: str, cluster: str | None, block: int | str | None, order: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The formula's response and design (rows with a missing value dropped) and each row's cluster (each row
    its own for ``block="auto"``, whose length the caller picks)."""
    import patsy

    if cluster is not None and cluster not in data:
        raise ValueError(
            f"cluster column {cluster!r} is not in the data (columns: {', '.join(map(str, data.columns))})"
        )
    if isinstance(block, str) and block != "auto":
        raise ValueError(f"block must be a number of rows or 'auto', got {block!r}")
    if isinstance(block, (int, float)) and block < 1:
        raise ValueError(f"block must be at least 1 row, got {block}")
    df = data.sort_values(order, kind="stable") if order is not None else data
    try:
        y, x = patsy.dmatrices(formula, df, return_type="dataframe", NA_action="drop")
    except patsy.PatsyError as exc:
        raise ValueError(f"formula {formula!r}: {exc}") from None
    n = len(y)
    if cluster is not None:
        groups = df.loc[y.index, cluster].to_numpy()
    elif isinstance(block, (int, float)):
        groups = np.arange(n) // int(block)
    else:
        groups = np.arange(n)
    return y, x, groups


def quantile_regression(
    data: pd.DataFrame,
    formula: str,
    qs: tuple[float, ...] = (0.5, 0.9, 0.99),
    *,
    cluster: str | None = None,
    block: int | str | None = None,
    order: str | None = None,
    level: float = 0.95,
    max_iter: int = 5000,
) -> QuantRegResult:
    """Fit ``formula`` at each quantile level of ``qs``, with cluster-robust intervals.

    Parameters
    ----------
    data : DataFrame
        One row per request (e.g. from :meth:`perfkit.query.Catalog.request_telemetry`).
    formula : str
        Patsy formula, e.g. ``"ttft_ms ~ running + prompt_tokens"`` or ``"np.log(ttft_ms) ~ C(phase)"``.
    qs : tuple of float
        Quantile levels, each in (0, 1).
    cluster : str, optional
        Column whose values are clusters (``run_id``: requests of one run are dependent).
    block : int or "auto", optional
        Without ``cluster``: clusters of ``block`` consecutive rows, in ``order`` (a column, e.g.
        ``sent_ns``) or the rows' order; ``"auto"`` picks the length per quantile level from the
        score's autocorrelation (:func:`auto_block`).  Default (neither): each row its own cluster,
        which is only right for independent requests.
    level : float
        Confidence level of the intervals.
    max_iter : int
        Iterations allowed to statsmodels' solver.
    """
    from statsmodels.regression.quantile_regression import QuantReg

    qs = tuple(float(q) for q in qs)
    if not qs or any(not 0 < q < 1 for q in qs):
        raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {qs}")
    if list(qs) != sorted(set(qs)):
        raise ValueError(f"give the quantile levels once each, in increasing order, got {qs}")
    y, x, groups = _design(data, formula, cluster, block, order)
    n = len(y)
    if n <= x.shape[1] + 1:
        raise ValueError(f"{n} complete rows are too few to fit {x.shape[1]} coefficients")
    yv, xv = y.iloc[:, 0].to_numpy(dtype=float), x.to_numpy(dtype=float)
    model = QuantReg(y, x)
    params, bse, lo, hi, cov, crit = {}, {}, {}, {}, {}, {}
    clusters = n
    for q in qs:
        res = model.fit(q=q, max_iter=max_iter)
        b = res.params.to_numpy()
        resid = yv - xv @ b
        rows = None
        grp = groups
        if cluster is None and block == "auto":
            rows = auto_block(xv, resid, q)
            grp = np.arange(n) // rows
        elif cluster is None and isinstance(block, (int, float)):
            rows = int(block)
        v = _sandwich(xv, resid, q, grp, rows)
        g = len(np.unique(grp))
        clusters = min(clusters, g)
        # Student's t on G - 1 degrees of freedom: the variance rests on G cluster sums, not on n rows
        crit[q] = float(stats.t.ppf(0.5 + level / 2, g - 1)) if 1 < g < n else float(stats.norm.ppf(0.5 + level / 2))
        se = np.sqrt(np.clip(np.diag(v), 0, None))
        params[q], bse[q], lo[q], hi[q], cov[q] = b, se, b - crit[q] * se, b + crit[q] * se, v
    terms = list(x.columns)
    frame = lambda d: pd.DataFrame(d, index=terms)  # noqa: E731
    return QuantRegResult(
        formula,
        qs,
        frame(params),
        frame(bse),
        frame(lo),
        frame(hi),
        n,
        clusters,
        level,
        cov,
        crit,
        x.design_info,
    )


def extreme_quantile_regression(
    data: pd.DataFrame,
    formula: str,
    q: float,
    new: pd.DataFrame,
    *,
    threshold_q: float = 0.9,
    cluster: str | None = None,
    block: int | str | None = None,
    order: str | None = None,
    level: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """A quantile beyond the data at the rows of ``new``: a regression line plus a Pareto tail above it.

    The ``threshold_q`` quantile is fitted by quantile regression; the residuals above that line
    are peaks over a threshold that moves with the covariates, and their generalised Pareto tail
    (probability-weighted moments, :func:`perfkit.analysis.evt.gpd_pwm`) gives how far above the
    line the ``q`` quantile lies.  This assumes the excesses' distribution does not depend on the
    covariates (the line carries the load's effect); the interval comes from resampling clusters
    (``cluster`` or blocks of ``block`` rows) and repeating the whole procedure.

    Returns
    -------
    DataFrame
        ``row``, ``estimate``, ``lo``, ``hi``, ``threshold`` (the fitted ``threshold_q`` line) and
        the tail's ``xi`` and ``sigma``.
    """
    import patsy
    from statsmodels.regression.quantile_regression import QuantReg

    from perfkit.analysis.evt import gpd_pwm, gpd_tail_quantile

    if not threshold_q < q < 1:
        raise ValueError(f"q must lie between threshold_q={threshold_q} and 1, got {q}")
    y, x, groups = _design(data, formula, cluster, block, order)
    n = len(y)
    if n * (1 - threshold_q) < 30:
        raise ValueError(
            f"{n} rows leave {n * (1 - threshold_q):.0f} above the {threshold_q:g} line; a tail fit "
            "needs at least 30 (lower threshold_q or use more requests)"
        )
    yv, xv = y.iloc[:, 0].to_numpy(dtype=float), x.to_numpy(dtype=float)
    if block == "auto" and cluster is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = np.asarray(QuantReg(yv, xv).fit(q=threshold_q, max_iter=5000).params)
        groups = np.arange(n) // auto_block(xv, yv - xv @ first, threshold_q)
    xn = np.asarray(patsy.build_design_matrices([x.design_info], new, return_type="dataframe")[0])
    labels, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == g) for g in range(len(labels))]

    def fit(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        b = QuantReg(yv[idx], xv[idx]).fit(q=threshold_q, max_iter=5000).params
        b = np.asarray(b)
        exc = yv[idx] - xv[idx] @ b
        exc = exc[exc > 0]
        xi, sigma = (float(v[0]) for v in gpd_pwm(exc))
        line = xn @ b
        share = len(exc) / len(idx)
        return gpd_tail_quantile(line, np.full(len(line), xi), np.full(len(line), sigma), share, q), line, xi, sigma

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' iteration notes on resamples
        est, threshold, xi, sigma = fit(np.arange(n))
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(n_boot):
            pick = rng.integers(0, len(members), len(members))
            boots.append(fit(np.concatenate([members[g] for g in pick]))[0])
    bt = np.array(boots)
    lo, hi = np.nanquantile(bt, [(1 - level) / 2, 1 - (1 - level) / 2], axis=0)
    return pd.DataFrame(
        {
            "row": np.arange(len(xn)),
            "estimate": est,
            "lo": lo,
            "hi": hi,
            "threshold": threshold,
            "xi": xi,
            "sigma": sigma,
        }
    )
