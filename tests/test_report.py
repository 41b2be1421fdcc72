"""Charts as specs, the HTML report's self-containment and determinism, and a real headless browser."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

import perfkit
from perfkit.client import Endpoint, PhaseSpec
from perfkit.collect import TelemetrySpec
from perfkit.recorder import record_run
from perfkit.report import (
    build_report,
    cdf_chart,
    latency_over_time_chart,
    telemetry_chart,
    throughput_chart,
)

REQUIRE_BROWSER = os.environ.get("PERFKIT_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def recorded(sim, tmp_path_factory) -> tuple[Path, str]:
    data_dir = tmp_path_factory.mktemp("report") / "data"
    phases = [PhaseSpec("warm", duration_s=0.5, concurrency=1, prompt_tokens=16, output_tokens=8, warmup=True),
              PhaseSpec("steady", duration_s=2.5, rate=12, prompt_tokens=32, output_tokens=16)]
    res = asyncio.run(record_run(Endpoint(sim.url), phases, data_dir, run_id="rep", simulator={"url": sim.url},
                                 telemetry=TelemetrySpec(gpu="sim", metrics_interval_s=0.5)))
    return data_dir, res.run_id


def test_telemetry_chart_has_a_panel_per_channel_and_says_simulated(recorded):
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        spec = telemetry_chart(cat, run_id).to_dict()
    titles = [p["title"] for p in spec["vconcat"]]
    assert "GPU clock (SIMULATED)" in titles and "GPU power (SIMULATED)" in titles
    assert "Server KV cache" in titles and "Client event loop" in titles
    assert "SIMULATED" in spec["title"]
    domains = {str(p["layer"][1]["encoding"]["x"]["scale"]["domain"]) for p in spec["vconcat"]}
    assert len(domains) == 1  # every panel on one time axis


def test_chart_specs_encode_what_they_claim(recorded):
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        lat = latency_over_time_chart(cat, run_id).to_dict()
        cdf = cdf_chart(cat, run_id).to_dict()
        thr = throughput_chart(cat, run_id).to_dict()
    layers = lat["layer"]
    assert any(layer.get("mark", {}).get("type") == "circle" for layer in layers)
    assert any(layer["encoding"]["y"]["scale"]["type"] == "log" for layer in layers if "encoding" in layer
               and "y" in layer["encoding"] and "scale" in layer["encoding"]["y"])
    assert cdf["facet"]["column"]["field"] == "metric"
    cdf_values = next(iter(cdf["datasets"].values()))
    assert {row["metric"] for row in cdf_values} == {"TTFT", "ITL", "E2E"}
    ps = sorted(row["p"] for row in cdf_values if row["metric"] == "TTFT")
    assert 0 < ps[0] < 0.01 and 0.99 < ps[-1] < 1
    assert len(thr["vconcat"]) == 2


def test_report_is_self_contained_and_warns_honestly(recorded, tmp_path):
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        path = build_report(cat, run_id, tmp_path)
    html = path.read_text()
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "a resource outside the file"
    assert "@import" not in html and "url(http" not in html
    assert html.count("<svg") >= 3
    assert "simulated" in html and "fewer than 300 samples" in html
    assert "steady" in html and "Methods and reproducibility" in html
    assert html.count("<svg") >= 4 and 'id="fig-telemetry"' in html and "<h2>Telemetry</h2>" in html
    assert "GPU counters in this report are <b>SIMULATED</b>" in html
    assert "SIMULATED by perfkit&#x27;s simulator (not a GPU)" in html and "engine vllm" in html


def test_two_reports_of_a_run_differ_only_in_the_generated_line(recorded, tmp_path):
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        a = build_report(cat, run_id, tmp_path / "a").read_text().splitlines()
        b = build_report(cat, run_id, tmp_path / "b").read_text().splitlines()
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    assert len(a) == len(b) and all("Generated" in x for x, _ in diff)


class _Trap:
    """A proxy that accepts connections and records the first bytes of each: any request leaving the page."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hits: list[bytes] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(2)
            try:
                self.hits.append(conn.recv(300))
            except OSError:
                self.hits.append(b"?")
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._t.join(2)
        self.sock.close()


# hosts the browser itself contacts (updates, time, accounts), never the page's requests
_BROWSER_OWN = re.compile(rb"(google\.com|googleapis\.com|gvt1\.com|gstatic\.com)")


def test_report_opens_in_headless_chromium_without_console_errors_or_network(recorded, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if REQUIRE_BROWSER:
            pytest.fail("PERFKIT_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        path = build_report(cat, run_id, tmp_path)
    trap = _Trap()
    shot = tmp_path / "report.png"
    try:
        out = subprocess.run([
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--log-level=0",
            f"--proxy-server=http://127.0.0.1:{trap.port}", "--proxy-bypass-list=<-loopback>",
            "--virtual-time-budget=3000", "--hide-scrollbars", "--window-size=1200,2600",
            f"--screenshot={shot}", path.as_uri()], capture_output=True, text=True, timeout=120)
    finally:
        trap.close()
    console = [ln for ln in out.stderr.splitlines() if ":CONSOLE" in ln]
    assert shot.is_file() and shot.stat().st_size > 50_000, out.stderr[-2000:]
    assert console == [], console
    leaving = [h for h in trap.hits if not _BROWSER_OWN.search(h)]
    assert leaving == [], leaving
