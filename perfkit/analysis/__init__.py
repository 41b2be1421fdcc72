"""Estimators over recorded runs: percentiles with intervals, run comparison, changepoints, steady state and
stability, tail regression, SLO capacity, compression trade-offs, bottleneck attribution."""

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
    "Change",
    "ChangepointDetector",
    "ChangepointResult",
    "ComparisonResult",
    "DEFAULT_CHANGE_SERIES",
    "KneeFit",
    "LATENCY_METRICS",
    "LoadLevels",
    "METHODS",
    "NotASweepError",
    "PercentileEstimate",
    "PhaseAttribution",
    "QuantRegResult",
    "Recovery",
    "SLO_PRESETS",
    "SamplePlan",
    "ServerView",
    "SloCapacity",
    "SloTarget",
    "StabilityVerdict",
    "TailEstimate",
    "UslFit",
    "VERDICTS",
    "WorkloadDifference",
    "WorkloadMismatchError",
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
    "prefix_cache_table",
    "prefix_cache_warning",
    "slo_table",
    "stability_table",
    "tradeoff_levels",
    "tradeoffs",
    "usl_fit",
    "workload_differences",
]
