"""Chart specs from frames: the defects a reader saw, each caught on the spec before any rendering."""

from __future__ import annotations

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
            "cost_per_mtok_usd_hi": [None, 0.030, 0.025],
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
    assert x["scale"]["domainMin"] == 0
