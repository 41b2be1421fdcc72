"""Compression trade-offs: quality files read, Pareto fronts found, simulated variants measured and ranked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import perfkit
from perfkit.analysis import pareto_front, read_quality, tradeoff_levels, tradeoffs
from perfkit.demo import DemoPlan, run_variants
from perfkit.errors import ConfigError
from perfkit.report import chart_svg, tradeoff_chart
from perfkit.sim import SimConfig
from perfkit.sim.truth import dense_sweep
from perfkit.sim.variants import SIM_VARIANTS, variant_config


def test_pareto_front_in_two_and_three_objectives():
    # cost (min), quality (max)
    v = np.array([[1.0, 0.9], [0.5, 0.8], [0.6, 0.7], [0.5, 0.8], [np.nan, 1.0], [2.0, 0.95]])
    assert pareto_front(v, ["min", "max"]).tolist() == [True, True, False, True, False, True]
    # a third objective (latency, min) rescues the point the first two dominate
    v3 = np.column_stack([v, [50, 50, 10, 50, 50, 50]])
    assert pareto_front(v3, ["min", "max", "min"]).tolist() == [True, True, True, True, False, True]
    with pytest.raises(ValueError, match="one column per sense"):
        pareto_front(v, ["min"])


def _lm_eval_results(acc: float, se: float) -> dict:
    """The shape of lm-evaluation-harness 0.4's results_*.json (numbers made up)."""
    return {
        "results": {
            "mmlu": {"alias": "mmlu", "acc,none": acc, "acc_stderr,none": se},
            "arc_challenge": {
                "alias": "arc_challenge",
                "acc,none": 0.5,
                "acc_stderr,none": 0.0146,
                "acc_norm,none": 0.53,
                "acc_norm_stderr,none": "N/A",
            },
        },
        "config": {"model": "vllm", "model_args": "pretrained=some/model,quantization=awq"},
        "versions": {"mmlu": 2},
        "n-shot": {"mmlu": 5},
    }


def test_quality_is_read_from_lm_eval_harness_json_and_tidy_tables(tmp_path):
    p = tmp_path / "results_2026.json"
    p.write_text(json.dumps(_lm_eval_results(0.6512, 0.0038)))
    q = read_quality(p, variant="int4")
    mmlu = q[(q.task == "mmlu") & (q.metric == "acc")].iloc[0]
    assert mmlu.variant == "int4" and mmlu.value == pytest.approx(0.6512) and mmlu.stderr == pytest.approx(0.0038)
    norm = q[(q.task == "arc_challenge") & (q.metric == "acc_norm")].iloc[0]
    assert norm.value == pytest.approx(0.53) and pd.isna(norm.stderr)
    # the older style: plain keys, acc_stderr beside acc
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"results": {"hellaswag": {"acc": 0.57, "acc_stderr": 0.005}}}))
    assert read_quality(old, variant="fp16").iloc[0].stderr == pytest.approx(0.005)
    with pytest.raises(ConfigError, match="pass variant='int8'"):
        read_quality(p)
    csv = tmp_path / "q.csv"
    csv.write_text("variant,value,stderr\nfp16,0.64,0.004\nint8,0.63,0.004\n")
    t = read_quality(csv)
    assert list(t.variant) == ["fp16", "int8"] and set(t.task) == {"quality"}
    bad = tmp_path / "bad.csv"
    bad.write_text("model,score\nfp16,0.6\n")
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['value', 'variant'\]"):
        read_quality(bad)


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """The demo's three simulated variants, each measured with a three-step rate sweep (8 s a step)."""
    d = tmp_path_factory.mktemp("variants")
    ids = run_variants(d, DemoPlan(), seed=0)
    return d, ids


def test_faster_variants_sustain_more_load_and_the_brackets_hold_the_truth(variants):
    d, ids = variants
    with perfkit.open(d) as cat:
        tab = tradeoffs(cat, n_boot=300)
        levels = tradeoff_levels(cat)
    tab = tab.set_index("variant")
    assert list(tab.index) == ["fp16", "int8", "int4"] and set(levels["run_id"]) == set(ids)
    # each variant's maximum sustainable rate, against a dense sweep of its engine replayed offline
    plan = DemoPlan()
    for name in SIM_VARIANTS:
        truth = dense_sweep(
            variant_config(name, SimConfig()),
            np.arange(18, 46.01, 1.0),
            q=0.9,
            limit_ms=200,
            duration_s=plan.variant_step_s,
            prompt_tokens=256,
            output_tokens=128,
            seeds=8,
        )
        row = tab.loc[name]
        # measured: fp16 25.0 [22, 30] vs 26.8; int8 32.7 [30, 38] vs 32.7; int4 36.8 [30, 38] vs 36.7
        assert row.load_lo <= truth.capacity <= row.load_hi, (name, row.load, row.load_lo, row.load_hi, str(truth))
    assert tab.loc["fp16", "load"] < tab.loc["int8", "load"] < tab.loc["int4", "load"]
    assert (
        tab.loc["fp16", "cost_per_mtok_usd"]
        > tab.loc["int8", "cost_per_mtok_usd"]
        > tab.loc["int4", "cost_per_mtok_usd"]
    )
    assert tab.loc["fp16", "quality_recovery_pct"] == 100.0 and 94 < tab.loc["int4", "quality_recovery_pct"] < 96
    # energy per token falls with the faster kernels (the simulated GPU's energy counter), at the same rate ...
    same = levels[levels["load"] == 28.0].set_index("variant")["energy_j_per_token"]
    assert same["int4"] < same["int8"] < same["fp16"], same
    # ... and where each is read, its highest level that met the SLOs (fp16's lowest level can be one whose
    # ITL p99 is not estimable on a busy machine, ITL tails moving together across streams: then it has none)
    if not np.isnan(tab.loc["fp16", "energy_j_per_token"]):
        assert tab.loc["int4", "energy_j_per_token"] < tab.loc["fp16", "energy_j_per_token"]
    # cheapest-but-worst, middle, and best-but-dearest: all three on the frontier of cost and quality
    assert tab["on_front"].all() and (tab["p_front"] > 0.5).all()
    assert (
        (tab.cost_per_mtok_usd_lo <= tab.cost_per_mtok_usd) & (tab.cost_per_mtok_usd <= tab.cost_per_mtok_usd_hi)
    ).all()


def test_quality_from_an_evaluation_file_changes_the_frontier(variants, tmp_path):
    d, _ = variants
    rows = [
        {"variant": "fp16", "value": 0.64, "stderr": 0.002},
        {"variant": "int8", "value": 0.55, "stderr": 0.002},
        {"variant": "int4", "value": 0.60, "stderr": 0.002},
    ]
    (tmp_path / "q.json").write_text(json.dumps(rows))
    with perfkit.open(d) as cat:
        tab = tradeoffs(cat, quality=read_quality(tmp_path / "q.json"), n_boot=200).set_index("variant")
        three = tradeoffs(
            cat, quality=read_quality(tmp_path / "q.json"), objectives=("cost", "quality", "latency"), n_boot=50
        )
    # a badly quantised int8: dearer than int4 and worse, so dominated
    assert not tab.loc["int8", "on_front"] and tab.loc["int8", "p_front"] < 0.05
    assert tab.loc["int4", "on_front"] and tab.loc["fp16", "on_front"]
    assert three.attrs["objectives"] == ["cost", "quality", "latency"]
    svg = chart_svg(tradeoff_chart(tab.reset_index()))
    assert "on the Pareto frontier" in svg and "dominated" in svg and "int8" in svg


def test_runs_without_a_variant_are_refused_with_the_fix(tmp_path):
    (tmp_path / "runs").mkdir()
    with perfkit.open(tmp_path) as cat, pytest.raises(ConfigError, match="--tag variant="):
        tradeoff_levels(cat)


def test_tradeoff_cli_writes_the_report_and_refuses_a_missing_quality_file(variants, tmp_path):
    import subprocess

    from conftest import perfkit_cmd

    d, _ = variants
    out = subprocess.run(
        perfkit_cmd("tradeoff", "--data-dir", str(d), "--out", str(tmp_path), "--no-pdf"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "int4" in out.stdout and "report:" in out.stdout
    html = out.stdout.split("report:")[1].strip()
    assert "Pareto frontier" in open(html, encoding="utf-8").read()
    bad = subprocess.run(
        perfkit_cmd("tradeoff", "--data-dir", str(d), "--quality", "int8=/no/such.json"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
