"""API keys come from the environment and reach no file, log, report or message perfkit writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from badserver import BadServer

from perfkit.secrets import redact, register_secret
from perfkit.store.manifest import read_manifest, write_manifest

KEY = "sk-perfkit-SECRET-7f3c9a1e5b"


def _perfkit(*args: str, env_key: str = "PERFKIT_API_KEY") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PERFKIT_API_KEY", "OPENAI_API_KEY")}
    env[env_key] = KEY
    return subprocess.run(
        [sys.executable, "-m", "perfkit.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _files_holding_the_key(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


@pytest.mark.slow
def test_a_whole_run_and_its_report_never_write_the_key(sim, tmp_path):
    data, reports = tmp_path / "data", tmp_path / "reports"
    run = _perfkit(
        "run",
        "--endpoint",
        sim.url,
        "--requests",
        "12",
        "--concurrency",
        "2",
        "--prompt-tokens",
        "16",
        "--output-tokens",
        "8",
        "--data-dir",
        str(data),
        "--run-id",
        "keyed",
        "--gpu",
        "sim",
    )
    assert run.returncode == 0, run.stderr
    rep = _perfkit("report", "keyed", "--data-dir", str(data), "--out", str(reports), "--no-pdf")
    assert rep.returncode == 0, rep.stderr
    outputs = run.stdout + run.stderr + rep.stdout + rep.stderr
    assert list(reports.glob("*.html")) and list(data.rglob("*.parquet"))  # there is something to search
    assert _files_holding_the_key(tmp_path) == [] and KEY not in outputs


@pytest.mark.parametrize("http", ["fast", "aiohttp"])
@pytest.mark.parametrize("mode", ["echo_key", "echo_key_stream"])
def test_a_server_that_quotes_the_key_back_does_not_get_it_written(mode, http, tmp_path):
    data = tmp_path / "data"
    with BadServer(mode) as bad:
        run = _perfkit(
            "run",
            "--endpoint",
            bad.url,
            "--model",
            "m",
            "--requests",
            "3",
            "--concurrency",
            "1",
            "--prompt-tokens",
            "4",
            "--output-tokens",
            "2",
            "--data-dir",
            str(data),
            "--gpu",
            "off",
            "--no-server-metrics",
            "--http",
            http,
            "--run-id",
            "echo",
            env_key="OPENAI_API_KEY",
        )
    assert run.returncode == 3, run.stderr  # every request failed: recorded, and said, without the key
    assert "every request of run echo failed" in run.stderr
    sent = [k for k, line in zip(bad.seen, bad.heads) if line.startswith("POST")]
    # the key was sent with the preflight's request and every request of the run, and quoted back each time
    assert sent == [KEY] * 4, bad.heads
    assert _files_holding_the_key(tmp_path) == [] and KEY not in run.stdout + run.stderr
    manifest = (data / "runs" / "run_id=echo" / "manifest.json").read_text()
    assert '"preflight"' in manifest and "***" in manifest  # the preflight's failure, on record, redacted
    import duckdb

    msgs = (
        duckdb.connect()
        .execute(f"SELECT DISTINCT error_message FROM read_parquet('{data}/requests/*/*.parquet')")
        .fetchall()
    )
    expected = "Incorrect API key provided: ***" if mode == "echo_key" else "bad key ***"
    assert [m[0] for m in msgs] == [f"HTTP 401: {expected}" if mode == "echo_key" else expected]


def test_urls_with_credentials_and_registered_keys_are_redacted(tmp_path):
    register_secret("tok-abcdef-123456")
    text = "GET http://alice:pw123@h:8000/v1 failed with key tok-abcdef-123456"
    assert redact(text) == "GET http://***@h:8000/v1 failed with key ***"
    write_manifest(
        tmp_path,
        "r",
        {"command": ["perfkit", "run", "--endpoint", "https://bob:hunter22@x.y/v1"], "note": "tok-abcdef-123456"},
    )
    m = read_manifest(tmp_path, "r")
    assert m["command"][-1] == "https://***@x.y/v1" and m["note"] == "***"
    assert b"hunter22" not in (tmp_path / "runs" / "run_id=r" / "manifest.json").read_bytes()
