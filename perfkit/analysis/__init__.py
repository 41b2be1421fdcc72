"""Estimators over recorded runs: percentiles with intervals, run comparison, changepoints, steady state and
stability, tail regression, SLO capacity, compression trade-offs, bottleneck attribution.

The estimators load on first use (``from perfkit.analysis import percentile_table`` imports what that needs and
no more), so that a command that prints one summary does not pay for SciPy's statistics or statsmodels.
"""

from __future__ import annotations

import typing
from importlib import import_module
from typing import Any

if typing.TYPE_CHECKING:
    from perfkit.analysis.attribution import VERDICTS, PhaseAttribution, attribute, attribution_table
    from perfkit.analysis.capacity import KneeFit, UslFit, knee, run_knee, run_usl, usl_fit
    from perfkit.analysis.changepoints import Change, ChangepointDetector, ChangepointResult, f1_margin, pelt_l2
    from perfkit.analysis.compare import ComparisonResult, compare_runs, compare_to_history, holm
    from perfkit.analysis.datasets import heavy_tailed_shifts
    from perfkit.analysis.evt import TailEstimate, gpd_pwm, pot_quantile
    from perfkit.analysis.intervals import (
        LATENCY_METRICS,
        SamplePlan,
        latency_clusters,
        latency_samples,
        metric_percentiles,
        percentile_table,
        sample_plans,
    )
    from perfkit.analysis.levels import LoadLevels, NotASweepError, load_levels
    from perfkit.analysis.percentiles import (
        METHODS,
        PercentileEstimate,
        batch_means_time,
        block_length,
        circular_block_indices,
        effective_sample_size,
        integrated_autocorrelation_time,
        min_samples,
        overlapping_batch_means_time,
        percentile_ci,
        percentile_cis,
        samples_needed,
    )
    from perfkit.analysis.quantreg import QuantRegResult, extreme_quantile_regression, quantile_regression
    from perfkit.analysis.recovery import Recovery, recovery_time
    from perfkit.analysis.series import DEFAULT_CHANGE_SERIES, change_table, detect_changes, injected_events, run_series
    from perfkit.analysis.serverview import (
        ServerView,
        admission_table,
        histogram_quantile,
        prefix_cache_table,
        prefix_cache_warning,
        server_view,
        server_view_table,
    )
    from perfkit.analysis.slo import (
        SLO_PRESETS,
        SloCapacity,
        SloTarget,
        capacity_replicates,
        max_sustainable_load,
        parse_slos,
        slo_table,
    )
    from perfkit.analysis.stability import StabilityVerdict, mser5, phase_stability, stability_table
    from perfkit.analysis.tradeoff import pareto_front, quality_from_manifests, read_quality, tradeoff_levels, tradeoffs
    from perfkit.analysis.workloads import WorkloadDifference, WorkloadMismatchError, workload_differences

__all__ = [
    "DEFAULT_CHANGE_SERIES",
    "LATENCY_METRICS",
    "METHODS",
    "SLO_PRESETS",
    "VERDICTS",
    "Change",
    "ChangepointDetector",
    "ChangepointResult",
    "ComparisonResult",
    "KneeFit",
    "LoadLevels",
    "NotASweepError",
    "PercentileEstimate",
    "PhaseAttribution",
    "QuantRegResult",
    "Recovery",
    "SamplePlan",
    "ServerView",
    "SloCapacity",
    "SloTarget",
    "StabilityVerdict",
    "TailEstimate",
    "UslFit",
    "WorkloadDifference",
    "WorkloadMismatchError",
    "admission_table",
    "attribute",
    "attribution_table",
    "batch_means_time",
    "block_length",
    "capacity_replicates",
    "change_table",
    "circular_block_indices",
    "compare_runs",
    "compare_to_history",
    "detect_changes",
    "effective_sample_size",
    "extreme_quantile_regression",
    "f1_margin",
    "gpd_pwm",
    "heavy_tailed_shifts",
    "histogram_quantile",
    "holm",
    "injected_events",
    "integrated_autocorrelation_time",
    "knee",
    "latency_clusters",
    "latency_samples",
    "load_levels",
    "max_sustainable_load",
    "metric_percentiles",
    "min_samples",
    "mser5",
    "overlapping_batch_means_time",
    "pareto_front",
    "parse_slos",
    "pelt_l2",
    "percentile_ci",
    "percentile_cis",
    "percentile_table",
    "phase_stability",
    "pot_quantile",
    "prefix_cache_table",
    "prefix_cache_warning",
    "quality_from_manifests",
    "quantile_regression",
    "read_quality",
    "recovery_time",
    "run_knee",
    "run_series",
    "run_usl",
    "sample_plans",
    "samples_needed",
    "server_view",
    "server_view_table",
    "slo_table",
    "stability_table",
    "tradeoff_levels",
    "tradeoffs",
    "usl_fit",
    "workload_differences",
]

_LAZY: dict[str, str] = {
    "Change": "perfkit.analysis.changepoints",
    "ChangepointDetector": "perfkit.analysis.changepoints",
    "ChangepointResult": "perfkit.analysis.changepoints",
    "ComparisonResult": "perfkit.analysis.compare",
    "DEFAULT_CHANGE_SERIES": "perfkit.analysis.series",
    "KneeFit": "perfkit.analysis.capacity",
    "LATENCY_METRICS": "perfkit.analysis.intervals",
    "LoadLevels": "perfkit.analysis.levels",
    "METHODS": "perfkit.analysis.percentiles",
    "NotASweepError": "perfkit.analysis.levels",
    "PercentileEstimate": "perfkit.analysis.percentiles",
    "PhaseAttribution": "perfkit.analysis.attribution",
    "QuantRegResult": "perfkit.analysis.quantreg",
    "Recovery": "perfkit.analysis.recovery",
    "SLO_PRESETS": "perfkit.analysis.slo",
    "SamplePlan": "perfkit.analysis.intervals",
    "ServerView": "perfkit.analysis.serverview",
    "SloCapacity": "perfkit.analysis.slo",
    "SloTarget": "perfkit.analysis.slo",
    "StabilityVerdict": "perfkit.analysis.stability",
    "TailEstimate": "perfkit.analysis.evt",
    "UslFit": "perfkit.analysis.capacity",
    "VERDICTS": "perfkit.analysis.attribution",
    "WorkloadDifference": "perfkit.analysis.workloads",
    "WorkloadMismatchError": "perfkit.analysis.workloads",
    "attribute": "perfkit.analysis.attribution",
    "attribution_table": "perfkit.analysis.attribution",
    "batch_means_time": "perfkit.analysis.percentiles",
    "block_length": "perfkit.analysis.percentiles",
    "capacity_replicates": "perfkit.analysis.slo",
    "change_table": "perfkit.analysis.series",
    "circular_block_indices": "perfkit.analysis.percentiles",
    "compare_runs": "perfkit.analysis.compare",
    "compare_to_history": "perfkit.analysis.compare",
    "detect_changes": "perfkit.analysis.series",
    "effective_sample_size": "perfkit.analysis.percentiles",
    "extreme_quantile_regression": "perfkit.analysis.quantreg",
    "f1_margin": "perfkit.analysis.changepoints",
    "gpd_pwm": "perfkit.analysis.evt",
    "heavy_tailed_shifts": "perfkit.analysis.datasets",
    "histogram_quantile": "perfkit.analysis.serverview",
    "holm": "perfkit.analysis.compare",
    "injected_events": "perfkit.analysis.series",
    "integrated_autocorrelation_time": "perfkit.analysis.percentiles",
    "knee": "perfkit.analysis.capacity",
    "latency_clusters": "perfkit.analysis.intervals",
    "latency_samples": "perfkit.analysis.intervals",
    "load_levels": "perfkit.analysis.levels",
    "max_sustainable_load": "perfkit.analysis.slo",
    "metric_percentiles": "perfkit.analysis.intervals",
    "min_samples": "perfkit.analysis.percentiles",
    "mser5": "perfkit.analysis.stability",
    "overlapping_batch_means_time": "perfkit.analysis.percentiles",
    "pareto_front": "perfkit.analysis.tradeoff",
    "parse_slos": "perfkit.analysis.slo",
    "pelt_l2": "perfkit.analysis.changepoints",
    "percentile_ci": "perfkit.analysis.percentiles",
    "percentile_cis": "perfkit.analysis.percentiles",
    "percentile_table": "perfkit.analysis.intervals",
    "phase_stability": "perfkit.analysis.stability",
    "pot_quantile": "perfkit.analysis.evt",
    "prefix_cache_table": "perfkit.analysis.serverview",
    "admission_table": "perfkit.analysis.serverview",
    "prefix_cache_warning": "perfkit.analysis.serverview",
    "quality_from_manifests": "perfkit.analysis.tradeoff",
    "quantile_regression": "perfkit.analysis.quantreg",
    "read_quality": "perfkit.analysis.tradeoff",
    "recovery_time": "perfkit.analysis.recovery",
    "run_knee": "perfkit.analysis.capacity",
    "run_series": "perfkit.analysis.series",
    "run_usl": "perfkit.analysis.capacity",
    "sample_plans": "perfkit.analysis.intervals",
    "samples_needed": "perfkit.analysis.percentiles",
    "server_view": "perfkit.analysis.serverview",
    "server_view_table": "perfkit.analysis.serverview",
    "slo_table": "perfkit.analysis.slo",
    "stability_table": "perfkit.analysis.stability",
    "tradeoff_levels": "perfkit.analysis.tradeoff",
    "tradeoffs": "perfkit.analysis.tradeoff",
    "usl_fit": "perfkit.analysis.capacity",
    "workload_differences": "perfkit.analysis.workloads",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perfkit.analysis' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
