"""Other tools' results imported as perfkit runs, read by perfkit's analyses, compared with perfkit's own run.

The fixtures in tests/peers/fixtures/ were written by the tools themselves (vLLM's ``bench serve``, GuideLLM,
AIPerf, installed from PyPI) against perfkit's simulator, by tests/peers/record.sh, which names the versions
and the workload: /v1/completions, 2,048-word prompts, 64 tokens an answer, Poisson arrivals at 5 req/s, 200
requests.  The test records perfkit's own run of that workload against a simulator with the same seed and
asks ``perfkit compare`` whether the other tool's run differs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, perfkit_cmd

import perfkit
from perfkit.errors import ConfigError
from perfkit.ingest import import_file

FIX = ROOT / "tests" / "peers" / "fixtures"
FILES = {
    "vllm-bench": FIX / "vllm_bench_serve.json.gz",
    "guidellm": FIX / "guidellm_benchmarks.json.gz",
    "aiperf": FIX / "aiperf_profile_export.jsonl.gz",
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(perfkit_cmd(*args), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def data(tmp_path_factory, request) -> Path:
    """The three imports and perfkit's own run of the recorded workload (``pk``), in one data folder."""
    from perfkit.sim import SimConfig, SimProcess

    d = tmp_path_factory.mktemp("imports") / "data"
    for fmt, path in FILES.items():
        out = cli("import", fmt, str(path), "--data-dir", str(d), "--run-id", fmt)
        assert out.returncode == 0, out.stderr
        assert f"as run {fmt}" in out.stdout
    with SimProcess(SimConfig(seed=1)) as sim:
        args = ["run", "--endpoint", sim.url, "--rate", "5", "--arrival", "poisson", "--requests", "200"]
        args += ["--prompt-tokens", "2048", "--output-tokens", "64", "--data-dir", str(d), "--run-id", "pk"]
        out = cli(*args, "--quiet", "--gpu", "off")
        assert out.returncode == 0, out.stderr[-2000:]
    return d


def test_each_import_keeps_every_request_and_says_what_its_file_lacks(data):
    with perfkit.open(data) as cat:
        for fmt in FILES:
            m = cat.manifest(fmt)
            imp = m["imported"]
            assert imp["tool"] in ("vllm bench serve", "guidellm", "aiperf") and imp["definitions"]
            assert m["counts"]["requests"] == 200 and m["endpoint"]["model"] == "perfkit-sim-7b"
            s = cat.summary(fmt).df().iloc[0]
            assert s["requests"] == 200 and s["errors"] == 0
            assert 5 < s["ttft_p50_ms"] < 200 and s["e2e_p50_ms"] > s["ttft_p50_ms"]
        assert any("chunk" in w for w in cat.manifest("guidellm")["imported"]["missing"])
        assert any("intended" in w for w in cat.manifest("vllm-bench")["imported"]["missing"])
        # the tools' own summaries agree with what perfkit computes from their per-request data
        raw = json.loads(__import__("gzip").decompress(FILES["vllm-bench"].read_bytes()))
        s = cat.summary("vllm-bench").df().iloc[0]
        assert abs(s["ttft_p50_ms"] - raw["median_ttft_ms"]) < 1e-6 * raw["median_ttft_ms"] + 1e-6
        assert abs(s["itl_p50_ms"] - raw["median_itl_ms"]) < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FILES))
def test_an_imported_run_compared_with_perfkit_on_the_same_workload_shows_no_significant_change(data, fmt):
    out = cli("compare", fmt, "pk", "--data-dir", str(data), "--percentiles", "50,90")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "verdict: no significant change" in out.stdout, out.stdout[-3000:]
    assert "[" in out.stdout  # each tested change has its interval


def test_export_is_read_back_by_the_import_with_the_same_percentiles(data, tmp_path):
    exported = tmp_path / "pk.json"
    out = cli("export", "pk", "--data-dir", str(data), "--format", "vllm-bench", "--out", str(exported))
    assert out.returncode == 0, out.stderr
    rid = import_file("vllm-bench", exported, data, run_id="pk-roundtrip")
    from perfkit.report.export import vllm_bench_result

    with perfkit.open(data) as cat:
        again = vllm_bench_result(cat, rid)
    first = json.loads(exported.read_text())
    for name in ("ttft", "tpot", "itl", "e2el"):
        for stat in ("mean", "median", "p90", "p99"):
            key = f"{stat}_{name}_ms"
            assert np.isclose(again[key], first[key], rtol=1e-6, atol=1e-6), (key, again[key], first[key])
    assert again["completed"] == first["completed"] and again["total_output_tokens"] == first["total_output_tokens"]


def test_a_file_of_the_wrong_kind_or_without_per_request_data_gets_a_clear_error(tmp_path, data):
    summary_only = tmp_path / "summary.json"
    summary_only.write_text(json.dumps({"completed": 10, "mean_ttft_ms": 12.0}))
    with pytest.raises(ConfigError, match="--save-detailed"):
        import_file("vllm-bench", summary_only, tmp_path / "d")
    with pytest.raises(ConfigError, match="not a GuideLLM"):
        import_file("guidellm", FILES["vllm-bench"], tmp_path / "d")
    with pytest.raises(ConfigError, match="already exists"):
        import_file("aiperf", FILES["aiperf"], data, run_id="aiperf")
    out = cli("import", "aiperf", str(tmp_path / "nope.jsonl"), "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2 and "is not a file" in out.stderr and "Traceback" not in out.stderr


def test_a_guidellm_sweep_is_imported_one_benchmark_at_a_time(tmp_path):
    import gzip

    d = json.loads(gzip.decompress(FILES["guidellm"].read_bytes()))
    d["benchmarks"] = d["benchmarks"] * 2  # a sweep's file holds one benchmark per load level
    two = tmp_path / "sweep.json"
    two.write_text(json.dumps(d))
    out = cli("import", "guidellm", str(two), "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2 and "holds 2 benchmarks (0: poisson@5, 1: poisson@5)" in out.stderr, out.stderr
    assert "--benchmark K" in out.stderr
    out = cli("import", "guidellm", str(two), "--data-dir", str(tmp_path / "d"), "--benchmark", "1", "--run-id", "b1")
    assert out.returncode == 0 and "as run b1" in out.stdout, out.stderr
    out = cli("import", "guidellm", str(two), "--data-dir", str(tmp_path / "d"), "--benchmark", "5")
    assert out.returncode == 2 and "no benchmark 5" in out.stderr and "Traceback" not in out.stderr
