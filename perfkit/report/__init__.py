"""Altair charts, the publication theme and report rendering."""

from perfkit.report.charts import cdf_chart, latency_over_time_chart, telemetry_chart, throughput_chart
from perfkit.report.render import build_report, chart_svg

__all__ = ["build_report", "cdf_chart", "chart_svg", "latency_over_time_chart", "telemetry_chart",
           "throughput_chart"]
