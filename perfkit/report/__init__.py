"""Altair charts, the publication theme, and reports (HTML, PDF, figures) of runs and notebooks."""

from perfkit.report.charts import (
    cdf_chart,
    compare_cdf_chart,
    latency_over_time_chart,
    telemetry_chart,
    throughput_chart,
    tradeoff_chart,
)
from perfkit.report.render import ReportFiles, build_report, chart_svg, export_figures

__all__ = ["ReportFiles", "build_report", "cdf_chart", "chart_svg", "compare_cdf_chart", "export_figures",
           "latency_over_time_chart", "telemetry_chart", "throughput_chart", "tradeoff_chart"]
