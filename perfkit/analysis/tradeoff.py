"""Compression trade-offs: which model variant (fp16, int8, int4...) is worth its cost.

Runs are tagged with the variant they measured (``perfkit run --tag variant=int8``; against perfkit's
simulator the variant is found in its config).  Quality comes from evaluation results read with
:func:`read_quality` (lm-evaluation-harness results JSON, or a tidy CSV/JSON), or, for simulated
variants, from the simulator's stated figure in the manifest (:func:`quality_from_manifests`).

:func:`tradeoff_levels` gives the tidy table, one row per variant × workload × load level (a phase):
output tokens/s, latency percentiles, energy per output token from the GPU's energy counter, and
whether the level met the SLOs (with confidence, :func:`perfkit.analysis.slo.slo_table`).
:func:`tradeoffs` reduces it to one row per variant and workload at its *SLO-feasible* load: from a
rate sweep, the maximum sustainable rate under the SLOs (:func:`perfkit.analysis.max_sustainable_load`,
interpolated, with its confidence bracket); without one, the highest-throughput level that met every
SLO.  At that load: cost per million output tokens from a $/GPU-hour price, energy per token (measured
at the highest feasible level), quality and its recovery against the baseline variant, and the Pareto
frontier over the chosen objectives with the bootstrap probability that each variant is on it.

The bootstrap resamples what each number is estimated from: the sweep levels' latency samples in
circular blocks (:func:`perfkit.analysis.slo.capacity_replicates`; or, without a sweep, the feasible
level's per-second output-token counts), the latency samples of the feasible level, and quality from a
normal law with the evaluation's standard error.  It measures sampling spread; the error of
interpolating between sweep levels is in the cost interval (the cost at the bracket's ends), not in
the frontier probability.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from perfkit.analysis.levels import NotASweepError, load_levels
from perfkit.analysis.percentiles import circular_block_indices
from perfkit.analysis.slo import capacity_replicates, max_sustainable_load, parse_slos, slo_table
from perfkit.errors import ConfigError
from perfkit.query.catalog import Catalog
from perfkit.query.frames import latency_samples, token_series, variant_levels, variant_runs

__all__ = ["pareto_front", "quality_from_manifests", "read_quality", "tradeoff_levels", "tradeoffs"]

_QUALITY_COLUMNS = ["variant", "task", "metric", "value", "stderr", "source"]


# -- quality ----------------------------------------------------------------------------------------
def _lm_eval(data: dict[str, Any], variant: str | None, source: str) -> list[dict[str, Any]]:
    if variant is None:
        cfg = data.get("config") or {}
        variant = data.get("model_name") or cfg.get("model_args") or cfg.get("model")
        raise ConfigError(
            f"{source}: lm-evaluation-harness results do not name a variant (the model was "
            f"{variant!r}); pass variant='int8' (or the variant these results are for)"
        )
    rows = []
    for task, res in (data.get("results") or {}).items():
        if not isinstance(res, dict):
            continue
        for key, value in res.items():
            name, _, filt = key.partition(",")
            if (
                name.endswith("_stderr")
                or name == "alias"
                or isinstance(value, bool)
                or not isinstance(value, (int, float))
            ):
                continue
            se = res.get(f"{name}_stderr,{filt}" if filt else f"{name}_stderr")
            rows.append(
                {
                    "variant": variant,
                    "task": task,
                    "metric": name + (f",{filt}" if filt and filt != "none" else ""),
                    "value": float(value),
                    "stderr": float(se) if isinstance(se, (int, float)) else None,
                    "source": source,
                }
            )
    if not rows:
        raise ConfigError(
            f"{source}: no numeric results under 'results'; is this an lm-evaluation-harness "
            "results JSON (results_*.json)?"
        )
    return rows


def read_quality(path: str | Path, *, variant: str | None = None) -> pd.DataFrame:
    """Quality scores from an evaluation: lm-evaluation-harness results JSON, or a tidy CSV/JSON.

    Parameters
    ----------
    path : str or Path
        An lm-evaluation-harness ``results_*.json`` (its ``results`` mapping of task → ``metric,filter``
        values with ``metric_stderr,filter``; both the 0.4 and the older key styles), or a CSV / JSON
        list of records with columns ``variant, value`` and optionally ``task, metric, stderr``.
    variant : str, optional
        The variant an lm-evaluation-harness file is for (its results do not say); for a tidy file,
        the variant of rows that have none.

    Returns
    -------
    pandas.DataFrame
        Columns ``variant, task, metric, value, stderr, source``.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"quality file {str(p)!r} does not exist")
    source = p.name
    if p.suffix.lower() == ".csv":
        df = pd.read_csv(p)
    else:
        try:
            data = json.loads(p.read_text())
        except ValueError as exc:
            raise ConfigError(f"{p}: not valid JSON ({exc})") from None
        if isinstance(data, dict) and "results" in data:
            return pd.DataFrame(_lm_eval(data, variant, source), columns=_QUALITY_COLUMNS)
        if not isinstance(data, list):
            raise ConfigError(
                f"{p}: expected lm-evaluation-harness results (a mapping with 'results') or a list "
                "of records with 'variant' and 'value'"
            )
        df = pd.DataFrame(data)
    if "variant" not in df.columns and variant is not None:
        df["variant"] = variant
    missing = {"variant", "value"} - set(df.columns)
    if missing:
        raise ConfigError(
            f"{p}: missing column(s) {sorted(missing)}; a quality table needs variant and value "
            "(and may have task, metric, stderr)"
        )
    df["variant"] = df["variant"].fillna(variant) if variant is not None else df["variant"]
    for col, default in (("task", "quality"), ("metric", "score"), ("stderr", None)):
        if col not in df.columns:
            df[col] = default
    df["value"] = pd.to_numeric(df["value"], errors="raise")
    df["source"] = source
    return df[_QUALITY_COLUMNS].reset_index(drop=True)


def quality_from_manifests(cat: Catalog) -> pd.DataFrame:
    """The simulator's stated quality of each simulated variant (labelled as simulated), one row per variant."""
    rows = {}
    for run_id in cat.run_ids():
        cfg = ((cat.manifest(run_id) or {}).get("simulator") or {}).get("config") or {}
        if cfg.get("quality") is not None and cfg.get("variant"):
            rows[cfg["variant"]] = {
                "variant": cfg["variant"],
                "task": cfg.get("quality_task", "simulated"),
                "metric": "score (SIMULATED)",
                "value": float(cfg["quality"]),
                "stderr": cfg.get("quality_stderr"),
                "source": f"simulator config (run {run_id})",
            }
    return pd.DataFrame(list(rows.values()), columns=_QUALITY_COLUMNS)


# -- performance per level --------------------------------------------------------------------------
def tradeoff_levels(
    cat: Catalog,
    run_ids: list[str] | None = None,
    *,
    slos: str | list[str] = "ttft_p90<=200ms,itl_p99<=50ms",
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per variant × workload × load level (a non-warm-up phase) of runs tagged with a variant.

    Parameters
    ----------
    cat : Catalog
    run_ids : list of str, optional
        Default: every run with a variant.
    slos : str or list
        SLOs a level must meet to be feasible (see :func:`perfkit.analysis.slo.parse_slos`).
    level : float
        Confidence of the SLO verdicts.

    Returns
    -------
    pandas.DataFrame
        ``variant, workload, run_id, phase, load, output_tokens_per_s, ttft_p50_ms, ttft_p90_ms,
        e2e_p90_ms, errors, energy_j_per_token, slo_verdict, feasible`` and the SLO columns; ``load``
        is the requested rate (req/s) in open loop and the users in closed loop; ``workload`` is the
        run's ``workload`` tag, else its label, else ``default``.
    """
    runs = variant_runs(cat)
    if run_ids is not None:
        wanted = [cat.require_run(r) for r in run_ids]
        runs = runs[runs["run_id"].isin(wanted)]
        untagged = sorted(set(wanted) - set(runs["run_id"]))
        if untagged:
            raise ConfigError(f"run(s) {', '.join(untagged)} name no variant: record them with --tag variant=NAME")
    if runs.empty:
        raise ConfigError(
            "no run here names a model variant: record runs with `perfkit run --tag variant=int8 ...` "
            "(or against `perfkit sim --variant int8`)"
        )
    lv = variant_levels(cat, list(runs["run_id"]))
    targets = parse_slos(slos)
    verdicts = []
    for run_id in runs["run_id"]:
        tab = slo_table(cat, run_id, targets, level=1 - (1 - level) / len(targets))
        for phase, g in tab.groupby("phase", sort=False):
            v = list(g["verdict"])
            verdicts.append(
                {
                    "run_id": run_id,
                    "phase": phase,
                    "slo_verdict": "met" if all(x == "met" for x in v) else "missed" if "missed" in v else "uncertain",
                    **{f"{s} (ms)": e for s, e in zip(g["slo"], g["sample_ms"])},
                }
            )
    lv = lv.merge(pd.DataFrame(verdicts), on=["run_id", "phase"], how="left")
    meta = runs.assign(
        workload=[json.loads(t).get("workload") or (lab or "default") for t, lab in zip(runs["tags"], runs["label"])]
    )[["run_id", "variant", "workload"]]
    lv = meta.merge(lv, on="run_id")
    span_s = (lv["t1_ns"] - lv["t0_ns"]) / 1e9
    lv["output_tokens_per_s"] = lv["output_tokens"] / span_s
    lv["load"] = lv["rate_rps"].where(lv["rate_rps"].notna(), lv["users"].astype(float))
    lv["energy_j_per_token"] = lv["energy_j"] / lv["output_tokens"]
    lv["feasible"] = lv["slo_verdict"].eq("met") & lv["errors"].eq(0)
    lv.attrs["slos"] = [t.label for t in targets]
    keep = [
        "variant",
        "workload",
        "run_id",
        "phase",
        "load",
        "rate_rps",
        "requests",
        "ok_requests",
        "errors",
        "output_tokens",
        "output_tokens_per_s",
        "ttft_p50_ms",
        "ttft_p90_ms",
        "e2e_p90_ms",
        "energy_j_per_token",
        "power_w",
        "slo_verdict",
        "feasible",
    ]
    extra = [c for c in lv.columns if c.endswith(" (ms)")]
    return lv[keep + extra].reset_index(drop=True)


# -- Pareto -----------------------------------------------------------------------------------------
def pareto_front(values: np.ndarray, senses: list[str] | tuple[str, ...]) -> np.ndarray:
    """Which rows of ``values`` (n × k) no other row dominates, with ``senses`` "min" or "max" per column.

    Row a dominates row b when it is at least as good on every objective and better on one.
    Rows with a missing value are never on the front.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(senses):
        raise ValueError(f"values must be n × {len(senses)} (one column per sense)")
    if not set(senses) <= {"min", "max"}:
        raise ValueError(f"senses must be 'min' or 'max', got {senses}")
    g = np.where(np.array(senses) == "max", -v, v)  # lower is better everywhere
    ok = np.asarray(np.isfinite(g).all(axis=1), dtype=bool)
    front: np.ndarray = ok.copy()
    for i in np.flatnonzero(ok):
        others = g[ok]
        dominated = ((others <= g[i]).all(axis=1) & (others < g[i]).any(axis=1)).any()
        front[i] = not dominated
    return front


_OBJECTIVES = {
    "cost": ("cost_per_mtok_usd", "min"),
    "quality": ("quality", "max"),
    "latency": ("ttft_p90_ms", "min"),
    "energy": ("energy_j_per_token", "min"),
}


def _is_sweep(cat: Catalog, run_id: str) -> bool:
    try:
        load_levels(cat, run_id, minimum=2)
    except NotASweepError:
        return False
    return True


def _token_bins(cat: Catalog, run_id: str, phase: str, bin_s: float = 1.0) -> np.ndarray:
    return token_series(cat, run_id, phase, bin_s) / bin_s


def tradeoffs(
    cat: Catalog,
    run_ids: list[str] | None = None,
    *,
    quality: pd.DataFrame | None = None,
    slos: str | list[str] = "ttft_p90<=200ms,itl_p99<=50ms",
    gpu_hour_usd: float = 2.5,
    gpus: int = 1,
    baseline: str = "fp16",
    objectives: tuple[str, ...] = ("cost", "quality"),
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per variant and workload at its SLO-feasible load, with cost, energy, quality and the Pareto front.

    Parameters
    ----------
    cat : Catalog
    run_ids : list of str, optional
        Default: every run with a variant.
    quality : pandas.DataFrame, optional
        From :func:`read_quality` (one ``task, metric`` is used: the first in the table); default
        :func:`quality_from_manifests`.
    slos : str or list
        SLOs that decide which load levels are feasible.
    gpu_hour_usd : float
        Price of one GPU for one hour, $.
    gpus : int
        GPUs the deployment occupies.
    baseline : str
        The variant quality recovery is measured against.
    objectives : tuple of {"cost", "quality", "latency", "energy"}
        The Pareto objectives (2 or 3 for the usual figures).
    n_boot : int
        Bootstrap replicates for the intervals and the frontier probability.
    level : float
        Interval level.
    seed : int

    Returns
    -------
    pandas.DataFrame
        ``variant, workload, basis, load`` (req/s, with ``load_lo``/``load_hi``), ``output_tokens_per_s,
        cost_per_mtok_usd`` (with ``_lo``/``_hi``, $), ``energy_j_per_token, ttft_p90_ms, phase`` (the
        highest feasible level), ``quality`` (with ``_stderr``, ``_lo``, ``_hi``),
        ``quality_recovery_pct, on_front, p_front``; a variant with no feasible load has null cost
        and is never on the front.  ``attrs`` hold the objectives, SLOs, price and quality task.
    """
    unknown = [o for o in objectives if o not in _OBJECTIVES]
    if unknown or len(objectives) < 2:
        raise ValueError(f"objectives must be two or more of {', '.join(_OBJECTIVES)}; got {objectives}")
    lv = tradeoff_levels(cat, run_ids, slos=slos, level=level)
    q = quality if quality is not None else quality_from_manifests(cat)
    if q.empty:
        raise ConfigError("no quality scores: pass quality=read_quality('results.json', variant='int8') per variant")
    first = q.iloc[0]
    q = q[(q["task"] == first["task"]) & (q["metric"] == first["metric"])].drop_duplicates("variant", keep="last")
    qmap = q.set_index("variant")
    rng = np.random.default_rng(seed)
    rows, draws = [], []
    for (variant, workload), g in lv.groupby(["variant", "workload"], sort=False):
        qv = float(qmap.loc[variant, "value"]) if variant in qmap.index else math.nan
        qse = qmap.loc[variant, "stderr"] if variant in qmap.index else None
        qse = float(qse) if qse is not None and not pd.isna(qse) else 0.0
        row: dict[str, Any] = {
            "variant": variant,
            "workload": workload,
            "quality": qv,
            "quality_stderr": qse,
            "basis": None,
            "load": math.nan,
            "load_lo": math.nan,
            "load_hi": math.nan,
            "output_tokens_per_s": math.nan,
            "cost_per_mtok_usd": math.nan,
            "cost_per_mtok_usd_lo": math.nan,
            "cost_per_mtok_usd_hi": math.nan,
            "energy_j_per_token": math.nan,
            "ttft_p90_ms": math.nan,
            "phase": None,
        }
        boot = {"quality": rng.normal(qv, qse, n_boot) if qse > 0 else np.full(n_boot, qv)}
        for k in ("cost", "energy", "latency"):
            boot[k] = np.full(n_boot, math.nan)
        usd_per_s = gpu_hour_usd * gpus / 3600
        open_loop = g[g["rate_rps"].notna()]
        feas = g[g["feasible"]]
        best = feas.loc[feas["output_tokens_per_s"].idxmax()] if len(feas) else None
        sweep = len(open_loop) >= 2 and len(g["run_id"].unique()) == 1 and _is_sweep(cat, str(g["run_id"].iloc[0]))
        if sweep:
            # a sweep: the interpolated maximum sustainable rate, its bracket, and its bootstrap spread
            run_id = str(g["run_id"].iloc[0])
            cap = max_sustainable_load(cat, run_id, slos, level=level)
            tokens = float(open_loop["output_tokens"].sum() / open_loop["ok_requests"].sum())
            if cap.estimate is not None and cap.estimate > 0:
                tput = cap.estimate * tokens
                row.update(
                    basis="max sustainable rate (sweep)",
                    load=cap.estimate,
                    load_lo=cap.lo,
                    load_hi=cap.hi,
                    output_tokens_per_s=tput,
                    cost_per_mtok_usd=usd_per_s / tput * 1e6,
                    cost_per_mtok_usd_lo=usd_per_s / (cap.hi * tokens) * 1e6,
                    cost_per_mtok_usd_hi=usd_per_s / (cap.lo * tokens) * 1e6 if cap.lo > 0 else math.inf,
                )
                reps = capacity_replicates(cat, run_id, slos, n_boot=n_boot, seed=seed)
                boot["cost"] = usd_per_s / (reps * tokens) * 1e6
        elif best is not None:
            # no sweep: the highest-throughput level that met the SLOs, its throughput bootstrapped
            tput = float(best["output_tokens_per_s"])
            row.update(
                basis="best feasible level",
                load=best["load"],
                load_lo=best["load"],
                load_hi=best["load"],
                output_tokens_per_s=tput,
                cost_per_mtok_usd=usd_per_s / tput * 1e6,
            )
            bins = _token_bins(cat, best["run_id"], best["phase"])
            idx = circular_block_indices(len(bins), max(1, min(3, len(bins))), rng, n_boot)
            boot["cost"] = row["cost_per_mtok_usd"] * bins.mean() / bins[idx].mean(axis=1)
            a = (1 - level) / 2
            row["cost_per_mtok_usd_lo"], row["cost_per_mtok_usd_hi"] = np.quantile(boot["cost"], [a, 1 - a])
        if best is not None:
            # energy and latency where they were measured: the highest feasible level
            row.update(
                phase=best["phase"], energy_j_per_token=best["energy_j_per_token"], ttft_p90_ms=best["ttft_p90_ms"]
            )
            t = latency_samples(cat, str(best["run_id"]), "ttft_ms", str(best["phase"])).get(
                str(best["phase"]), np.array([])
            )
            tidx = circular_block_indices(len(t), max(1, round(len(t) ** (1 / 3))), rng, n_boot)
            boot["latency"] = np.quantile(t[tidx], 0.9, axis=1, overwrite_input=True)
            boot["energy"] = np.full(n_boot, float(best["energy_j_per_token"]))
        a = (1 - level) / 2
        row["quality_lo"], row["quality_hi"] = (qv - stats.norm.ppf(1 - a) * qse, qv + stats.norm.ppf(1 - a) * qse)
        rows.append(row)
        draws.append(boot)
    out = pd.DataFrame(rows)
    base = out.loc[out["variant"] == baseline, "quality"]
    out["quality_recovery_pct"] = 100 * out["quality"] / float(base.iloc[0]) if len(base) else math.nan
    cols, senses = zip(*(_OBJECTIVES[o] for o in objectives))
    out["on_front"] = False
    out["p_front"] = 0.0
    for _, members in out.groupby("workload", sort=False).groups.items():
        rows_of = list(members)
        out.loc[rows_of, "on_front"] = pareto_front(out.loc[rows_of, list(cols)].to_numpy(float), senses)
        hits = np.zeros(len(rows_of))
        for b in range(n_boot):
            vals = np.array([[draws[i][o][b] for o in objectives] for i in rows_of])
            hits += pareto_front(vals, senses)
        out.loc[rows_of, "p_front"] = hits / n_boot
    out.attrs.update(
        objectives=list(objectives),
        slos=lv.attrs.get("slos"),
        gpu_hour_usd=gpu_hour_usd,
        gpus=gpus,
        quality_task=str(first["task"]),
        quality_metric=str(first["metric"]),
    )
    return out
