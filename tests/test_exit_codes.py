"""Each exit status a CI gate can tell apart, produced by a real command: 0 ok, 1 a check that failed, 2 usage,
3 the run could not be done, 70 an internal error (perfkit.errors.ExitCode)."""

from __future__ import annotations

import subprocess

import pytest
from badserver import BadServer
from conftest import perfkit_cmd

from perfkit import cli
from perfkit.errors import ExitCode


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(perfkit_cmd(*args), capture_output=True, text=True, timeout=timeout)


def _short_run(url: str, data, *extra: str) -> subprocess.CompletedProcess[str]:
    return _cli(
        "run",
        "--endpoint",
        url,
        "--requests",
        "6",
        "--concurrency",
        "2",
        "--prompt-tokens",
        "8",
        "--output-tokens",
        "4",
        "--gpu",
        "off",
        "--quiet",
        "--data-dir",
        str(data),
        *extra,
    )


def test_exit_0_when_the_run_went_through(sim, tmp_path):
    out = _short_run(sim.url, tmp_path / "d")
    assert out.returncode == ExitCode.OK == 0, out.stderr


def test_exit_1_when_a_check_fails(sim, tmp_path):
    # an SLO no run can meet, with --fail-on-miss; and perfkit check on a damaged part
    d = tmp_path / "d"
    assert _short_run(sim.url, d, "--requests", "40").returncode == 0
    out = _cli("slo", "latest", "--slo", "e2e_p50<=1ms", "--fail-on-miss", "--data-dir", str(d))
    assert out.returncode == ExitCode.CHECK_FAILED == 1, out.stderr
    assert "missed" in out.stdout
    part = sorted((d / "requests").rglob("*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:100])
    out = _cli("check", "--data-dir", str(d))
    assert out.returncode == 1 and "unreadable part" in out.stdout


@pytest.mark.parametrize(
    "args, said",
    [
        (("run", "--endpoint", "http://127.0.0.1:9", "--rate", "-"), "invalid float value"),  # argparse
        (("run", "--endpoint", "http://127.0.0.1:9", "--prompt-tokens", "zipf:3"), "zipf"),
        (("compare", "nope", "nada", "--data-dir", "/nonexistent-perfkit-dir"), "does not exist"),
        (("slo", "latest", "--slo", "ttft<=3", "--data-dir", "."), "--slo"),
    ],
)
def test_exit_2_on_a_usage_mistake(args, said, tmp_path):
    out = _cli(*args)
    assert out.returncode == ExitCode.USAGE == 2, (out.stdout, out.stderr)
    assert said in out.stderr and "Traceback" not in out.stderr


def test_exit_3_when_the_endpoint_cannot_be_reached(tmp_path):
    out = _short_run("http://127.0.0.1:9", tmp_path / "d")
    assert out.returncode == ExitCode.RUN_FAILED == 3
    assert "cannot reach" in out.stderr and "Traceback" not in out.stderr


def test_exit_3_when_every_request_failed_and_the_requests_are_kept(tmp_path):
    d = tmp_path / "d"
    with BadServer("http_404") as bad:
        out = _short_run(bad.url, d, "--model", "m", "--no-server-metrics")
    assert out.returncode == 3, out.stderr
    assert "every request of run" in out.stderr and "6 http_status" in out.stderr and "HTTP 404" in out.stderr
    import perfkit

    with perfkit.open(d) as cat:
        assert cat.query_frame("SELECT count(*) AS n FROM requests WHERE NOT ok")["n"][0] == 6


def test_exit_70_on_an_internal_error(monkeypatch, capsys):
    from perfkit.cli import schema

    def broken(_args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(schema, "run", broken)
    assert cli.main(["schema"]) == ExitCode.INTERNAL == 70
    err = capsys.readouterr().err
    assert "RuntimeError: a bug" in err and "internal error" in err
