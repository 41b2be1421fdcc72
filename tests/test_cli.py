"""The command line end to end: run, query, report, demo, and a SIGKILL mid-run."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest
from conftest import perfkit_cmd

from perfkit.cli import build_parser
from perfkit.client.endpoint import request_uuid

pytestmark = pytest.mark.slow


def run_cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(perfkit_cmd(*args), capture_output=True, text=True, timeout=timeout, **kw)


def test_run_records_every_request_it_sent_and_duckdb_sees_them(sim, data_dir, tmp_path):
    out = run_cli(
        "run",
        "--endpoint",
        sim.url,
        "--rate",
        "15",
        "--duration",
        "3",
        "--warmup",
        "1",
        "--prompt-tokens",
        "uniform:32,96",
        "--output-tokens",
        "16",
        "--data-dir",
        str(data_dir),
        "--run-id",
        "cli-run",
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    assert "run cli-run" in out.stdout and "main" in out.stdout  # the summary table
    ids = {request_uuid("cli-run", i) for i in range(5000)}  # what each request's X-Request-Id was
    sent = [r for r in sim.request_log() if r["request_id"] in ids]
    n = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{data_dir}/requests/**/*.parquet', hive_partitioning=true)"
    ).fetchall()[0][0]
    assert n == len(sent) > 40
    manifest = json.loads((data_dir / "runs" / "run_id=cli-run" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["requests"] == n
    assert manifest["endpoint"]["model"] == sim.config.model  # discovered from /v1/models
    assert manifest["clock_anchor"]["mono_ns"] > 0 and manifest["environment"]["versions"]["duckdb"]

    q = run_cli(
        "query", str(data_dir), "SELECT phase, count(*) AS n FROM requests GROUP BY 1 ORDER BY 1", "--format", "json"
    )
    assert q.returncode == 0, q.stderr
    assert {r["phase"] for r in json.loads(q.stdout)} == {"main", "warmup"}

    rep = run_cli("report", "latest", "--data-dir", str(data_dir), "--out", str(tmp_path / "reports"))
    assert rep.returncode == 0, rep.stderr
    assert (tmp_path / "reports" / "cli-run.html").is_file()


def test_sigkill_mid_run_keeps_every_request_finished_a_second_before(sim, data_dir):
    proc = subprocess.Popen(
        perfkit_cmd(
            "run",
            "--endpoint",
            sim.url,
            "--rate",
            "12",
            "--duration",
            "60",
            "--output-tokens",
            "24",
            "--data-dir",
            str(data_dir),
            "--run-id",
            "killed",
            "--quiet",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(7.5)  # ~1 s of it is start-up: the /metrics scraper process takes its first reading first
    kill_ns = time.perf_counter_ns()  # same monotonic clock as the simulator (CLOCK_MONOTONIC)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    number = {request_uuid("killed", i): i for i in range(5000)}  # X-Request-Id -> request id
    log = [r for r in sim.request_log() if r["request_id"] in number and r["status"] == 200]
    done_before = {number[r["request_id"]] for r in log if r["finish_ns"] < kill_ns - 1.2e9}
    assert len(done_before) > 30
    rows = duckdb.sql(
        f"SELECT request_id, ok FROM read_parquet('{data_dir}/requests/run_id=killed/*.parquet')"
    ).fetchall()
    on_disk = {rid for rid, ok in rows if ok}
    assert done_before <= on_disk, sorted(done_before - on_disk)
    import perfkit

    with perfkit.open(data_dir) as cat:
        assert cat.table("runs").df()["status"].tolist() == ["incomplete"]
        assert cat.summary("killed").df()["requests"].iloc[0] == len(rows)


def test_sigterm_closes_the_run_cleanly(sim, data_dir):
    proc = subprocess.Popen(
        perfkit_cmd(
            "run",
            "--endpoint",
            sim.url,
            "--rate",
            "8",
            "--duration",
            "60",
            "--output-tokens",
            "16",
            "--data-dir",
            str(data_dir),
            "--run-id",
            "termed",
            "--quiet",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    manifest = json.loads((data_dir / "runs" / "run_id=termed" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted", err
    assert manifest["counts"]["written"] == manifest["counts"]["requests"] > 10


def test_unreachable_endpoint_is_one_clear_line(tmp_path):
    out = run_cli("run", "--endpoint", "http://127.0.0.1:9", "--requests", "1", "--data-dir", str(tmp_path))
    assert out.returncode == 3  # the run could not be done
    assert "cannot reach http://127.0.0.1:9/v1/models" in out.stderr and "Traceback" not in out.stderr


def test_a_model_the_endpoint_does_not_serve_is_refused_before_any_request(tmp_path, sim):
    out = run_cli(
        "run",
        "--endpoint",
        sim.url,
        "--model",
        "perfkit-sim-7B",
        "--requests",
        "1",
        "--data-dir",
        str(tmp_path),
        "--gpu",
        "off",
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "model 'perfkit-sim-7B' is not served by" in out.stderr and "did you mean 'perfkit-sim-7b'" in out.stderr
    assert not list(tmp_path.rglob("*.parquet"))  # nothing was started


def test_bad_length_and_missing_data_dir_are_clear_errors(tmp_path, sim):
    out = run_cli("run", "--endpoint", sim.url, "--prompt-tokens", "zipf:3", "--data-dir", str(tmp_path))
    assert out.returncode == 2 and "zipf" in out.stderr and "Traceback" not in out.stderr
    out = run_cli("query", str(tmp_path / "none"), "SELECT 1")
    assert out.returncode == 2 and "does not exist" in out.stderr
    out = run_cli("query", str(tmp_path), "SELEC nonsense")
    assert out.returncode == 2 and "query failed" in out.stderr


def test_demo_prints_a_summary_and_the_report_path(tmp_path):
    out = run_cli(
        "demo",
        "--variants",
        "--scale",
        "0.15",
        "--data-dir",
        str(tmp_path / "d"),
        "--reports-dir",
        str(tmp_path / "r"),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for phase in ("light", "steady", "throttle"):
        assert phase in out.stdout
    assert "SLO met %" in out.stdout and "schedule fidelity" in out.stdout
    report = [ln.split(":", 1)[1].strip() for ln in out.stdout.splitlines() if ln.startswith("report:")][0]
    assert os.path.isfile(report) and report.endswith(".html")
    # the compression trade-off of three simulated variants, measured by the demo, with the frontier marked
    for v in ("fp16", "int8", "int4"):
        assert f"{v}: max " in out.stdout, out.stdout[-2000:]
    fig = [ln.split("figure", 1)[1].strip() for ln in out.stdout.splitlines() if "tradeoff.svg" in ln][0]
    svg = open(fig, encoding="utf-8").read()
    assert all(v in svg for v in ("fp16", "int8", "int4")) and "on the Pareto frontier" in svg and "P(front)" in svg
    html = [ln.split(":", 1)[1].strip() for ln in out.stdout.splitlines() if ln.startswith("trade-offs:")][0]
    assert "SIMULATED" in open(html, encoding="utf-8").read()


def test_every_cli_command_is_documented_and_every_link_of_the_docs_leads_somewhere():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    commands = (root / "docs" / "commands.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert f"`perfkit {name}" in commands, name
    readme = (root / "README.md").read_text()
    assert "docs/commands.md" in readme and len(readme.splitlines()) <= 200
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "bench" / "README.md"]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_python_dash_m_entry_points():
    out = subprocess.run([sys.executable, "-m", "perfkit.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("perfkit ")


def test_a_run_in_progress_can_be_followed_from_its_growing_data(sim, data_dir):
    import perfkit

    proc = subprocess.Popen(
        perfkit_cmd(
            "run",
            "--endpoint",
            sim.url,
            "--rate",
            "10",
            "--duration",
            "8",
            "--output-tokens",
            "8",
            "--data-dir",
            str(data_dir),
            "--run-id",
            "live",
            "--quiet",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        seen = []
        deadline = time.time() + 30
        while time.time() < deadline and len(seen) < 3:
            time.sleep(1.5)
            if (data_dir / "requests").exists():
                with perfkit.open(data_dir) as cat:  # what a notebook does: open (or refresh) and query
                    seen.append(cat.scalar("SELECT count(*) FROM requests WHERE run_id = 'live'"))
                    status = cat.table("runs").df()["status"].tolist()
        assert len(seen) == 3 and seen[0] < seen[1] < seen[2], seen
        assert status == ["running"]
    finally:
        proc.wait(60)


def test_an_api_key_reaches_no_file_and_no_output(sim, tmp_path):
    canary = "sk-perfkit-canary-7f3a9e1c5b"
    env = {**os.environ, "PERFKIT_API_KEY": canary}
    data, reports = tmp_path / "data", tmp_path / "reports"
    run = run_cli(
        "run",
        "--endpoint",
        sim.url,
        "--rate",
        "8",
        "--duration",
        "2",
        "--output-tokens",
        "8",
        "--gpu",
        "sim",
        "--metrics-interval",
        "0.3",
        "--data-dir",
        str(data),
        "--quiet",
        env=env,
    )
    assert run.returncode == 0, run.stderr
    rep = run_cli("report", "latest", "--data-dir", str(data), "--out", str(reports), env=env)
    assert rep.returncode == 0, rep.stderr
    manifest = json.loads(next(data.glob("runs/*/manifest.json")).read_text())
    assert manifest["endpoint"]["api_key_set"] is True  # the key was used...
    assert manifest["telemetry"]["server_metrics"]["sources"][0]["ok_scrapes"] > 3  # ...by the scraper too
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.suffix == ".html" for p in files)
    for p in files:  # ...and is written nowhere
        assert canary.encode() not in p.read_bytes(), p
    assert canary not in run.stdout + run.stderr + rep.stdout + rep.stderr


def test_the_flags_vllm_and_aiperf_users_type_a_dataset_and_extra_fields_reach_the_server(sim, tmp_path):
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    convs = [
        {
            "id": str(i),
            "conversations": [
                {"from": "human", "value": " ".join(words[: 3 + i % 7]) + " please"},
                {"from": "gpt", "value": " ".join(words * (2 + i % 3))},
            ],
        }
        for i in range(12)
    ]
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(convs))
    out = run_cli(
        "run",
        "--base-url",
        sim.url,
        "--dataset",
        "sharegpt",
        "--dataset-path",
        str(path),
        "--extra-body",
        '{"temperature": 0}',
        "--request-rate",
        "5",
        "--max-concurrency",
        "4",
        "--num-prompts",
        "40",
        "--run-id",
        "peer-flags",
        "--gpu",
        "off",
        "--data-dir",
        str(tmp_path / "data"),
        "--quiet",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    ids = {request_uuid("peer-flags", i) for i in range(100)}
    log = [r for r in sim.request_log() if r["request_id"] in ids]
    assert len(log) == 40 and all(r["params"] == {"temperature": 0} for r in log)  # the count and the field
    events = sorted([(r["http_arrival_ns"], 1) for r in log] + [(r["finish_ns"], -1) for r in log])
    depth = max(itertools.accumulate(d for _, d in events))
    assert depth <= 4  # the cap
    assert {r["prompt_tokens"] for r in log} <= {4 + i % 7 for i in range(12)}  # the dataset's prompts
    manifest = json.loads((tmp_path / "data" / "runs" / "run_id=peer-flags" / "manifest.json").read_text())
    assert manifest["endpoint"]["extra_body"] == {"temperature": 0}
    # the run as a vLLM bench serve result: its keys and definitions, perfkit's intervals beside them
    exp = run_cli("export", "peer-flags", "--data-dir", str(tmp_path / "data"), "--format", "vllm-bench")
    assert exp.returncode == 0, exp.stderr
    res = json.loads(exp.stdout)
    ttft = duckdb.sql(
        f"SELECT median(ttft_ms) FROM read_parquet('{tmp_path}/data/requests/run_id=peer-flags/*.parquet') WHERE ok"
    ).fetchall()[0][0]
    assert res["completed"] == 40 and res["median_ttft_ms"] == pytest.approx(ttft)
    assert {"request_throughput", "output_throughput", "p99_itl_ms", "mean_tpot_ms", "std_e2el_ms"} <= set(res)
    assert len(res["ttfts"]) == len(res["itls"]) == 40 and res["ttfts"][0] < 10  # seconds, as vLLM writes them
    assert "p50" in res["perfkit"]["percentiles_ms"]["main"]["ttft_ms"]


def test_a_notebook_reads_the_data_directory_where_the_user_stands(tmp_path, monkeypatch):
    """`perfkit report --notebook notebooks/02_... -p run_id=latest` made new demo runs in notebooks/data/."""
    from perfkit.cli.report import notebook_params

    monkeypatch.chdir(tmp_path)
    assert notebook_params(["run_id=latest"], "data") == {"run_id": "latest", "data_dir": str(tmp_path / "data")}
    assert notebook_params(["data_dir=runs/a", "n=3"], "data")["data_dir"] == str(tmp_path / "runs" / "a")


def test_probe_says_what_a_server_supports(sim):
    out = run_cli("probe", sim.url)
    assert out.returncode == 0, out.stderr
    for line in (
        "models: perfkit-sim-7b",
        "streaming completion: yes",
        "in every chunk: yes",
        "exact output length: yes",
        "tokens per chunk: 1.00",
        "(vllm)",
    ):
        assert line in out.stdout, out.stdout
    out = run_cli("probe", "http://127.0.0.1:9")
    assert out.returncode == 3 and "streaming completion: failed" in out.stdout and "Traceback" not in out.stderr
