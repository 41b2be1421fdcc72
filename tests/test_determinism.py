"""One number per question: the same run summarised by the API, the CLI, the report and ``perfkit slo``
gives identical interval bounds, and gives them again on a second asking."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import perfkit_cmd

import perfkit
from perfkit.analysis import percentile_table, sample_plans, slo_table
from perfkit.client import Endpoint, PhaseSpec
from perfkit.record import record_run
from perfkit.report import build_report

SLOS = "ttft_p90<=5000ms,itl_p99<=5000ms,e2e_p50<=10000ms,ttft_p99<=5000ms"


@pytest.fixture(scope="module")
def recorded(sim, tmp_path_factory) -> tuple[Path, str]:
    data_dir = tmp_path_factory.mktemp("determinism") / "data"
    phases = [
        PhaseSpec("warm", duration_s=0.5, concurrency=1, prompt_tokens=16, output_tokens=8, warmup=True),
        PhaseSpec("steady", duration_s=3.0, rate=25, prompt_tokens=32, output_tokens=24),
        PhaseSpec("busy", duration_s=2.0, concurrency=8, prompt_tokens=64, output_tokens=24),
    ]
    res = asyncio.run(record_run(Endpoint(sim.url), phases, data_dir, run_id="det", simulator={"url": sim.url}))
    return data_dir, res.run_id


def _cli(*args: str) -> str:
    out = subprocess.run(perfkit_cmd(*args), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _cell(est: float, lo: float, hi: float) -> str:
    return f"{est:,.1f} [{lo:,.1f}, {hi:,.1f}]"


def test_the_api_cli_report_and_slo_give_the_same_bounds_twice(recorded, tmp_path):
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        first, second = percentile_table(cat, run_id), percentile_table(cat, run_id)
        slo_a, slo_b = slo_table(cat, run_id, SLOS), slo_table(cat, run_id, SLOS)
        html = [
            build_report(cat, run_id, tmp_path / f"r{i}", pdf=False, figures=False).html.read_text() for i in (1, 2)
        ]
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(slo_a, slo_b)
    est = first[first["estimable"]]
    assert len(est) >= 2, first[["phase", "metric", "q", "n", "note"]]

    # perfkit slo: the summary's own figures for every phase (no request failed), to the last bit
    keyed = first.set_index(["phase", "metric", "q"])
    for r in slo_a.to_dict("records"):
        # an ITL objective is judged per token; the simulator sends one token a chunk, so it is the summary's ITL
        metric = {"itl_token_ms": "itl_ms"}.get(r["metric"], r["metric"])
        row = keyed.loc[(r["phase"], metric, r["q"])]
        if row["estimable"]:
            assert (r["estimate_ms"], r["lo_ms"], r["hi_ms"]) == (row["estimate"], row["lo"], row["hi"]), r
        else:
            assert pd.isna(r["estimate_ms"]) and r["n_needed"] == row["n_needed"]

    # the CLI's summary, the report and the CLI's slo print those same bounds, twice alike
    summary = [_cli("summary", run_id, "--data-dir", str(data_dir)) for _ in range(2)]
    slo_out = [_cli("slo", run_id, "--slo", SLOS, "--data-dir", str(data_dir)) for _ in range(2)]
    assert summary[0] == summary[1] and slo_out[0] == slo_out[1]
    for r in est.to_dict("records"):
        cell = _cell(r["estimate"], r["lo"], r["hi"])
        assert cell in summary[0], (cell, summary[0])
        assert cell in html[0] and cell in html[1], cell
    for r in slo_a[slo_a["estimate_ms"].notna()].to_dict("records"):
        assert f"[{r['lo_ms']:,.1f}, {r['hi_ms']:,.1f}]" in slo_out[0], (r, slo_out[0])


def test_a_percentile_not_estimable_says_how_much_more_would_do(recorded):
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        table = percentile_table(cat, run_id)
    plans = sample_plans(table)
    short = table[~table["estimable"] & (table["n"] > 0)]
    assert len(plans) == len(short) > 0  # p99 of TTFT from a few seconds of traffic is not estimable
    for p in plans:
        assert p.n_needed > p.n and p.more_s is not None and p.more_s > 0
        assert f"{p.n_needed:,}" in str(p) and "s more at its rate" in str(p)
    out = _cli("summary", run_id, "--data-dir", str(data_dir))
    assert str(plans[0]) in out
