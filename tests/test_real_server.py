"""perfkit against a real inference engine: llama-cpp-python's OpenAI server, installed from the package
registry, serving a tiny random-weight Llama made here (tests/realserver/make_tiny_model.py; no model hub).

``.ci/run`` installs the engine; elsewhere these tests are skipped with the reason.  Other engines run the same
tests when their base URLs are in ``PERFKIT_REAL_SERVER_URLS`` (comma-separated; a vLLM, SGLang or TGI server).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import perfkit_cmd

import perfkit

pytestmark = [pytest.mark.real_server, pytest.mark.slow]
HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        why = f"{module} is not installed (.ci/run installs llama-cpp-python[server] and gguf)"
        if os.environ.get("PERFKIT_REQUIRE_REAL_SERVER") == "1":
            pytest.fail(why)
        pytest.skip(why)


def _llama_cpp_server(tmp: Path):
    _need("llama_cpp.server")
    _need("gguf")
    model = tmp / "tiny.gguf"
    subprocess.run([sys.executable, str(HERE / "realserver" / "make_tiny_model.py"), str(model)], check=True)
    port = _free_port()
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--model_alias",
            "tiny",
            # by default a new request interrupts the one streaming (docs/servers.md): let them queue instead
            "--interrupt_requests",
            "False",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail(f"llama-cpp-python's server did not start: {(tmp / 'server.log').read_text()[-2000:]}")


def _servers() -> list[str]:
    extra = [u.strip() for u in os.environ.get("PERFKIT_REAL_SERVER_URLS", "").split(",") if u.strip()]
    return ["llama-cpp-python", *extra]


@pytest.fixture(scope="module", params=_servers())
def server(request, tmp_path_factory):
    if request.param != "llama-cpp-python":
        yield request.param
        return
    proc, url = _llama_cpp_server(tmp_path_factory.mktemp("llama-cpp"))
    yield url
    proc.terminate()
    proc.wait(10)


def _run(server: str, data: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        perfkit_cmd("run", "--endpoint", server, "--gpu", "off", "--data-dir", str(data), *extra),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_a_run_with_default_options_has_no_errors_and_counts_every_token(server, tmp_path, api):
    out = _run(
        server,
        tmp_path,
        "--api",
        api,
        "--requests",
        "12",
        "--concurrency",
        "2",
        "--prompt-tokens",
        "32",
        "--output-tokens",
        "16",
        "--run-id",
        f"real-{api}",
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    with perfkit.open(tmp_path) as cat:
        df = cat.sql(
            "SELECT ok, output_tokens, n_chunks, error_kind FROM requests WHERE run_id = $r", {"r": f"real-{api}"}
        ).df()
    assert len(df) == 12 and df["ok"].all(), df
    # the streamed count against the server's own count of a non-streamed answer of the same request
    body = {"model": "tiny", "max_tokens": 16, "stream": False}
    body |= {"messages": [{"role": "user", "content": "alpha beta"}]} if api == "chat" else {"prompt": "alpha beta"}
    path = "/v1/chat/completions" if api == "chat" else "/v1/completions"
    req = urllib.request.Request(
        server.rstrip("/").removesuffix("/v1") + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        usage = json.loads(r.read())["usage"]
    assert set(df["output_tokens"]) == {usage["completion_tokens"]}, (df["output_tokens"].tolist(), usage)


def test_a_sweep_a_report_and_the_probe(server, tmp_path):
    out = _run(server, tmp_path, "--rate", "2", "--duration", "6", "--output-tokens", "8", "--run-id", "real-rate")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = (out.stdout + out.stderr).splitlines()
    # llama-cpp-python has no /metrics: said once when the run starts (and in the summary's list of what was
    # recorded), never once a scrape
    assert sum("metrics are off" in line for line in lines) == 1, lines
    assert sum("/metrics" in line for line in lines) <= 2, lines
    rep = subprocess.run(
        perfkit_cmd("report", "real-rate", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r"), "--no-pdf"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rep.returncode == 0 and (tmp_path / "r" / "real-rate.html").is_file(), rep.stderr[-2000:]
    probe = subprocess.run(perfkit_cmd("probe", server), capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0 and "streaming completion: yes" in probe.stdout, probe.stdout + probe.stderr
