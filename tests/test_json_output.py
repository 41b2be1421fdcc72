"""--json on run, compare, slo and bottleneck: the result as JSON on stdout, parseable, no NaN."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import perfkit_cmd


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(perfkit_cmd(*args), capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_each_command_prints_its_result_as_json(sim, data_dir):
    d = ["--data-dir", str(data_dir)]
    runs = []
    for rid in ("j1", "j2"):
        out = cli("run", "--endpoint", sim.url, "--rate", "15", "--duration", "3", "--output-tokens", "8", *d,
                  "--run-id", rid, "--gpu", "off", "--quiet", "--json")  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        got = json.loads(out.stdout)  # stdout is the JSON alone; the closing line went to stderr
        assert got["run_id"] == rid and got["requests"] > 20 and "ttft_ms" in got["percentiles_ms"]["main"]
        runs.append(got)
    cmp_ = json.loads(cli("compare", "j1", "j2", *d, "--json").stdout)
    assert cmp_["baseline"] == "j1" and cmp_["verdict"] and {"rel_lo", "rel_hi", "verdict"} <= set(cmp_["table"][0])
    slo = json.loads(cli("slo", "j2", *d, "--json").stdout)
    assert slo["run_id"] == "j2" and slo["slos"] and "verdict" in slo["slos"][0]
    csv = cli("export", "j2", *d, "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("request_id,ok,sent_ns") and len(csv) - 1 == runs[1]["requests"]
    bn = json.loads(cli("bottleneck", "j2", *d, "--json").stdout)
    assert bn["phases"][0]["verdict"] and "NaN" not in json.dumps(bn)
