"""Estimators over recorded runs: percentiles with intervals, run comparison (more to come: stability,
changepoints, tails, attribution)."""

from perfkit.analysis.compare import ComparisonResult, compare_runs, holm
from perfkit.analysis.intervals import LATENCY_METRICS, latency_clusters, latency_samples, percentile_table
from perfkit.analysis.percentiles import (
    METHODS,
    PercentileEstimate,
    batch_means_time,
    block_length,
    effective_sample_size,
    integrated_autocorrelation_time,
    min_samples,
    percentile_ci,
)

__all__ = [
    "LATENCY_METRICS",
    "METHODS",
    "ComparisonResult",
    "PercentileEstimate",
    "batch_means_time",
    "block_length",
    "compare_runs",
    "effective_sample_size",
    "holm",
    "integrated_autocorrelation_time",
    "latency_clusters",
    "latency_samples",
    "min_samples",
    "percentile_ci",
    "percentile_table",
]
