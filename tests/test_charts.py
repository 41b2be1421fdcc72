"""Chart specs from frames: the defects a reader saw, each caught on the spec before any rendering."""

from __future__ import annotations

import re

import pandas as pd

from perfkit.report.charts import cdf_chart, compare_cdf_chart


def _cdf(zero_share: float) -> pd.DataFrame:
    ps = [(i + 0.5) / 100 for i in range(100)]
    rows = []
    for metric, scale in (("TTFT", 40.0), ("ITL", 8.0), ("E2E", 1200.0)):
        for p in ps:
            v = 0.0 if metric == "ITL" and p < zero_share else scale * (1 + 3 * p)
            rows.append({"metric": metric, "value_ms": v, "p": p})
    return pd.DataFrame(rows)


def _values(spec: dict) -> list[dict]:
    data = spec.get("datasets") or {}
    return [row for rows in data.values() for row in rows]


def test_zero_chunk_gaps_are_not_drawn_on_a_log_axis_and_its_labels_do_not_overlap():
    """The ITL CDF was a vertical line with no ticks: 1-8% of chunk gaps are 0, which a log scale cannot place."""
    for chart in (cdf_chart(_cdf(0.08)), compare_cdf_chart({"base": _cdf(0.05), "new": _cdf(0.02)})):
        spec = chart.to_dict()
        values = _values(spec)
        assert values and min(r["value_ms"] for r in values) > 0
        x = spec["spec"]["encoding"]["x"]
        assert x["scale"]["type"] == "log" and x["axis"]["labelOverlap"] == "greedy" and x["title"] == "latency (ms)"


def test_runs_in_a_comparison_are_named_by_their_tags_or_label_not_their_ids(tmp_path):
    """The comparison report's legend listed raw run ids."""
    from test_store_query import hand_made, write_run

    import perfkit
    from perfkit.report.figures import compare_cdf_figure, run_names
    from perfkit.store.manifest import write_manifest

    for rid, extra in (
        ("a1", {"label": "nightly", "seed": 0}),
        ("b2", {"label": "nightly", "seed": 1}),
        ("c3", {"tags": {"variant": "int8"}}),
    ):
        write_run(tmp_path, rid, hand_made())
        write_manifest(tmp_path, rid, {"status": "complete", "endpoint": {"model": "m"}, **extra})
    with perfkit.open(tmp_path) as cat:
        names = run_names(cat, ["a1", "b2", "c3"])
        spec = compare_cdf_figure(cat, ["a1", "b2", "c3"]).to_dict()
    assert names == ["nightly · seed 0 (baseline)", "nightly · seed 1", "variant=int8"]
    assert {r["run"] for r in _values(spec)} == set(names)


def test_the_tradeoff_figure_names_a_variant_it_cannot_draw_and_its_cost_axis_never_goes_below_zero():
    """fp16 was left out silently (no load met the SLOs) and the cost axis ran to -$0.02."""
    from perfkit.report.charts import tradeoff_chart

    tab = pd.DataFrame(
        {
            "variant": ["fp16", "int8", "int4"],
            "cost_per_mtok_usd": [None, 0.021, 0.018],
            "cost_per_mtok_usd_lo": [None, 0.015, 0.012],
            "cost_per_mtok_usd_hi": [None, float("inf"), 0.025],  # no upper bound: the bar runs to the edge
            "quality": [0.64, 0.62, 0.58],
            "quality_lo": [0.63, 0.61, 0.57],
            "quality_hi": [0.65, 0.63, 0.59],
            "on_front": [False, True, True],
            "p_front": [0.0, 0.9, 0.95],
        }
    )
    spec = tradeoff_chart(tab).to_dict()
    assert "fp16" in " ".join(spec["title"]["subtitle"])
    x = next(
        layer["encoding"]["x"]
        for layer in spec["layer"]
        if "x" in layer.get("encoding", {}) and "scale" in layer["encoding"]["x"]
    )
    assert x["scale"]["domain"][0] >= 0 and x["scale"]["nice"] is False and "padding" not in x["scale"]
    assert x["scale"]["domain"][1] < 0.03  # an infinite end made the axis one tick at 0
    # a label overlapped an error bar: each label sits in the quadrant above and right of its point, which the
    # point's own bars (a vertical and a horizontal line through it) never enter
    text = next(layer["mark"] for layer in spec["layer"] if layer.get("mark", {}).get("type") == "text")
    assert text["align"] == "left" and text["baseline"] == "bottom" and text["dx"] > 0 and text["dy"] < 0
    # as drawn: domainMin 0 with Vega's pixel padding still put a tick at -0.04
    assert not [s for s in _drawn_text(tradeoff_chart(tab)) if s.startswith(("−", "-"))]


def _drawn_text(chart) -> list[str]:
    """Every text a chart draws (tick labels, legend entries, titles), as vl-convert renders it."""
    import re

    import vl_convert as vlc

    from perfkit.report.theme import themed_spec

    svg = vlc.vegalite_to_svg(themed_spec(chart))
    return [re.sub(r"<[^>]+>", "", s).strip() for s in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)]


def test_time_axes_start_where_the_run_does_and_log_axes_are_labelled_at_1_2_5():
    """Every time-series figure's axis ran from -10 s ("-10-5" overlapping) and the CDFs labelled 3, 4, 6, 8 too."""
    import numpy as np

    from perfkit.report.charts import latency_over_time_chart, log_ticks, throughput_chart

    phases = pd.DataFrame({"phase": ["warmup", "steady"], "start_s": [-0.4, 3.0], "end_s": [3.0, 60.0]})
    t = np.arange(-0.4, 60, 0.25)
    points = pd.DataFrame({"t_s": t, "ttft_ms": 30 + 10 * np.sin(t), "phase": "steady"})
    w = np.arange(1.0, 60, 2.0)
    windows = pd.DataFrame(
        {"t_s": w, "p50": 30.0, "p50_lo": 27.0, "p50_hi": 33.0, "p99": [None] * 5 + [45.0] * (len(w) - 5), "n": 20}
    )
    per_s = pd.DataFrame({"t_s": np.arange(0.0, 60), "value": 900.0, "completed": 30.0, "failed": 0.0})
    for chart in (latency_over_time_chart(points, windows, phases), throughput_chart(per_s, per_s, phases)):
        drawn = _drawn_text(chart)
        assert "time since start (s)" in drawn
        assert not [s for s in drawn if re.fullmatch(r"[−-]\d+", s)], drawn
    spec = latency_over_time_chart(points, windows, phases).to_dict()
    band = [layer for layer in spec["layer"] if layer.get("mark", {}).get("type") == "area"]
    assert band and band[0]["encoding"]["y2"]["field"] == "p50_hi"  # the p50's interval is drawn
    assert log_ticks(13, 85) == [10.0, 20.0, 50.0, 100.0]
    from perfkit.report.charts import changes_chart

    series = pd.DataFrame({"t_s": np.arange(3.0, 81.0), "value": np.linspace(15, 75, 78)})
    chart = changes_chart(series, [], "TTFT p50 (ms)", truth=[(69.0, 95.0)])
    line = chart.to_dict()["layer"][-1]["encoding"]
    assert line["y"]["axis"]["values"] == [10.0, 20.0, 50.0, 100.0] and line["x"]["scale"]["nice"] is False
    assert "85" not in _drawn_text(chart)  # the injected event is clamped to the series, not the axis widened
    cdf_x = cdf_chart(_cdf(0.0)).to_dict()["spec"]["encoding"]["x"]
    assert {v / 10 ** np.floor(np.log10(v)) for v in cdf_x["axis"]["values"]} <= {1.0, 2.0, 5.0}


def test_a_comparison_legend_shows_each_run_name_whole():
    """Two runs labelled "perfkit demo (simulated e…" could not be told apart."""
    long = "perfkit demo (simulated endpoint, steady phase at 60 req/s) · seed "
    drawn = _drawn_text(compare_cdf_chart({long + "0 (baseline)": _cdf(0.0), long + "1": _cdf(0.0)}))
    assert long + "0 (baseline)" in drawn and long + "1" in drawn
