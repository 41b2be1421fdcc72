"""Recovery after an outage: how long until latency and errors are back within the baseline band.

The run is cut into windows (1 s by default) by each request's intended send
time.  A window is *healthy* when it holds at least one successful request,
its error share is no more than the baseline's plus ``error_slack``, and the
median of its latency lies inside the baseline band: the median of the
baseline windows' medians plus or minus ``band_mads`` scaled median absolute
deviations of them (never narrower than ``min_band_frac`` of that median, so
a very steady baseline does not make every later window look unhealthy).
Recovery is the start of the first run of ``hold`` healthy windows at or after
the end of the outage; the time to recover is measured from the outage's end
and known to within one window.

When the outage is not given it is read from the data: the span from the
first to the last request that failed after the baseline, the way a user of a
real endpoint (who did not inject the fault) would see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Recovery", "recovery_time"]


@dataclass(frozen=True)
class Recovery:
    """The outcome of :func:`recovery_time`.

    Attributes
    ----------
    recovered : bool
        Whether ``hold`` healthy windows in a row were found after the outage.
    recovery_s : float or None
        From the outage's end to the start of recovery, s (resolution ``window_s``); None if not recovered.
    outage_s : tuple of float
        The outage, s from the first request: given, or read from the failures.
    band_ms : tuple of float
        The healthy band of window medians, ms.
    baseline_error_rate : float
        Error share of the baseline windows.
    windows : pandas.DataFrame
        Per window: ``start_s``, ``n``, ``errors``, ``median_ms``, ``healthy`` (the evidence).
    reason : str
        One line saying what was found.
    """

    recovered: bool
    recovery_s: float | None
    outage_s: tuple[float, float]
    band_ms: tuple[float, float]
    baseline_error_rate: float
    windows: pd.DataFrame
    reason: str


def recovery_time(
    t_s: np.ndarray,
    latency_ms: np.ndarray,
    ok: np.ndarray,
    *,
    baseline_s: tuple[float, float],
    outage_s: tuple[float, float] | None = None,
    window_s: float = 1.0,
    hold: int = 3,
    band_mads: float = 5.0,
    min_band_frac: float = 0.25,
    error_slack: float = 0.05,
) -> Recovery:
    """Time from the end of an outage until latency and errors are back within the baseline band.

    Parameters
    ----------
    t_s : array of float
        Each request's intended send time, s from the run's start.
    latency_ms : array of float
        Its latency (TTFT or end to end), ms; ignored where ``ok`` is False.
    ok : array of bool
        Whether it succeeded.
    baseline_s : (float, float)
        The healthy stretch before the outage that sets the band, s.
    outage_s : (float, float), optional
        The outage, s; default: first to last failure after ``baseline_s``.
    window_s : float
        Window length, s (the resolution of the answer).
    hold : int
        Healthy windows in a row that count as recovered.
    band_mads, min_band_frac, error_slack : float
        Width of the latency band (scaled MADs of the baseline windows' medians, and its floor as a
        fraction of their median) and the error share allowed above the baseline's.

    Raises
    ------
    ValueError
        When the baseline holds fewer than three windows with a successful request, or no outage is found.
    """
    t = np.asarray(t_s, dtype=float)
    lat = np.asarray(latency_ms, dtype=float)
    good = np.asarray(ok, dtype=bool) & np.isfinite(lat)
    if not (t.shape == lat.shape == good.shape):
        raise ValueError("t_s, latency_ms and ok must have the same length")
    if window_s <= 0 or hold < 1:
        raise ValueError("window_s must be > 0 and hold >= 1")
    idx = np.floor(t / window_s).astype(np.int64)
    frame = pd.DataFrame({"w": idx, "lat": np.where(good, lat, np.nan), "err": ~good})
    per = frame.groupby("w").agg(n=("err", "size"), errors=("err", "sum"), median_ms=("lat", "median"))
    per = per.reindex(np.arange(idx.min(), idx.max() + 1), fill_value=0)
    per["median_ms"] = per["median_ms"].where(per["n"] - per["errors"] > 0)
    per["start_s"] = per.index * window_s
    b0, b1 = baseline_s
    base = per[(per["start_s"] >= b0) & (per["start_s"] + window_s <= b1)]
    meds = base["median_ms"].dropna().to_numpy()
    if len(meds) < 3:
        raise ValueError(
            f"the baseline {baseline_s} s holds {len(meds)} windows with a successful request; give it at least three"
        )
    centre = float(np.median(meds))
    half = max(band_mads * 1.4826 * float(np.median(np.abs(meds - centre))), min_band_frac * centre)
    band = (centre - half, centre + half)
    base_err = float(base["errors"].sum() / max(base["n"].sum(), 1))
    if outage_s is None:
        failed = t[~good & (t >= b1)]
        if not len(failed):
            raise ValueError(
                f"no request failed after the baseline (from {b1:g} s): no outage to recover from; "
                "pass outage_s to measure recovery from a slowdown"
            )
        outage_s = (float(failed.min()), float(failed.max()))
    err_share = per["errors"] / per["n"].where(per["n"] > 0)
    per["healthy"] = (per["median_ms"].between(*band) & (err_share <= base_err + error_slack)).fillna(False)
    per = per[["start_s", "n", "errors", "median_ms", "healthy"]].reset_index(drop=True)
    end = outage_s[1]
    after = per[per["start_s"] + window_s > end].reset_index(drop=True)  # windows not wholly before the end
    healthy = after["healthy"].to_numpy(dtype=bool)
    for i in range(len(healthy) - hold + 1):
        if healthy[i : i + hold].all():
            at = max(float(after["start_s"].iloc[i]), end)
            rec_s = at - end
            return Recovery(
                True,
                rec_s,
                outage_s,
                band,
                base_err,
                per,
                f"recovered {rec_s:.1f} s after the outage ended at {end:.1f} s "
                f"({hold} windows of {window_s:g} s in a row within {band[0]:.1f}–{band[1]:.1f} ms "
                f"and errors at most {100 * (base_err + error_slack):.0f}%)",
            )
    return Recovery(
        False,
        None,
        outage_s,
        band,
        base_err,
        per,
        f"not recovered by the end of the data ({float(per['start_s'].iloc[-1]) + window_s:.1f} s): "
        f"no {hold} healthy windows in a row after {end:.1f} s",
    )
