"""One publication theme for every perfkit figure."""

from __future__ import annotations

from typing import Any

import altair as alt

__all__ = ["PALETTE", "theme_config", "themed_spec"]

# Okabe & Ito's colour-blind-safe palette
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def theme_config() -> dict[str, Any]:
    """The Vega-Lite ``config`` of perfkit's publication theme."""
    return {
        "font": FONT,
        "background": "white",
        "view": {"stroke": None, "continuousWidth": 640, "continuousHeight": 220},
        "axis": {
            "labelFontSize": 11,
            "titleFontSize": 12,
            "titleFontWeight": "normal",
            "gridColor": "#e6e6e6",
            "domainColor": "#666",
            "tickColor": "#666",
        },
        "legend": {"labelFontSize": 11, "titleFontSize": 11, "orient": "right"},
        "title": {"fontSize": 13, "fontWeight": "bold", "anchor": "start"},
        "header": {"labelFontSize": 12, "titleFontSize": 12},
        "range": {"category": PALETTE},
        "point": {"size": 14},
    }


def themed_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec (a dict) with perfkit's theme as its config."""
    spec = chart.to_dict()
    spec["config"] = theme_config()
    return spec
