"""Altair charts (from frames), a run's figures (from a catalog), the publication theme, and reports (HTML,
PDF, figures) of runs and notebooks."""

from perfkit.report.charts import (
    cdf_chart,
    changes_chart,
    compare_cdf_chart,
    latency_over_time_chart,
    telemetry_chart,
    throughput_chart,
    tradeoff_chart,
)
from perfkit.report.figures import (
    cdf_figure,
    compare_cdf_figure,
    latency_figure,
    phase_windows,
    telemetry_figure,
    throughput_figure,
)
from perfkit.report.render import ReportFiles, build_report, chart_svg, export_figures

__all__ = [
    "ReportFiles",
    "build_report",
    "cdf_chart",
    "cdf_figure",
    "changes_chart",
    "chart_svg",
    "compare_cdf_chart",
    "compare_cdf_figure",
    "export_figures",
    "latency_figure",
    "latency_over_time_chart",
    "phase_windows",
    "telemetry_chart",
    "telemetry_figure",
    "throughput_chart",
    "throughput_figure",
    "tradeoff_chart",
]
