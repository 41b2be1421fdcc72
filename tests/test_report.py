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
from perfkit.record import TelemetrySpec, record_run
from perfkit.report import (
    build_report,
    cdf_figure,
    latency_figure,
    telemetry_figure,
    throughput_figure,
)

REQUIRE_BROWSER = os.environ.get("PERFKIT_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def recorded(sim, tmp_path_factory) -> tuple[Path, str]:
    data_dir = tmp_path_factory.mktemp("report") / "data"
    phases = [
        PhaseSpec("warm", duration_s=0.5, concurrency=1, prompt_tokens=16, output_tokens=8, warmup=True),
        PhaseSpec("steady", duration_s=2.5, rate=12, prompt_tokens=32, output_tokens=16),
    ]
    res = asyncio.run(
        record_run(
            Endpoint(sim.url),
            phases,
            data_dir,
            run_id="rep",
            simulator={"url": sim.url},
            telemetry=TelemetrySpec(gpu="sim", metrics_interval_s=0.5),
        )
    )
    return data_dir, res.run_id


def test_telemetry_chart_has_a_panel_per_channel_and_says_simulated(recorded):
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        spec = telemetry_figure(cat, run_id).to_dict()
    titles = [p["title"] for p in spec["vconcat"]]
    assert "GPU clock (SIMULATED)" in titles and "GPU power (SIMULATED)" in titles
    assert "Server KV cache" in titles and "Client event loop" in titles
    assert "SIMULATED" in spec["title"]
    domains = {str(p["layer"][1]["encoding"]["x"]["scale"]["domain"]) for p in spec["vconcat"]}
    assert len(domains) == 1  # every panel on one time axis


def test_chart_specs_encode_what_they_claim(recorded):
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        lat = latency_figure(cat, run_id).to_dict()
        cdf = cdf_figure(cat, run_id).to_dict()
        thr = throughput_figure(cat, run_id).to_dict()
    layers = lat["layer"]
    assert any(layer.get("mark", {}).get("type") == "circle" for layer in layers)
    assert any(
        layer["encoding"]["y"]["scale"]["type"] == "log"
        for layer in layers
        if "encoding" in layer and "y" in layer["encoding"] and "scale" in layer["encoding"]["y"]
    )
    assert cdf["facet"]["column"]["field"] == "metric"
    cdf_values = next(iter(cdf["datasets"].values()))
    assert {row["metric"] for row in cdf_values} == {"TTFT", "ITL", "E2E"}
    ps = sorted(row["p"] for row in cdf_values if row["metric"] == "TTFT")
    assert 0 < ps[0] < 0.01 and 0.99 < ps[-1] < 1
    assert len(thr["vconcat"]) == 2


def test_report_is_self_contained_and_warns_honestly(recorded, tmp_path):
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        path = build_report(cat, run_id, tmp_path, pdf=False, figures=False).html
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
    from perfkit.report.run_report import run_document
    from perfkit.report.typst_render import render_typst

    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        a = build_report(cat, run_id, tmp_path / "a", pdf=False, figures=False).html.read_text().splitlines()
        b = build_report(cat, run_id, tmp_path / "b", pdf=False, figures=False).html.read_text().splitlines()
        ta = render_typst(run_document(cat, run_id), tmp_path / "ta").splitlines()
        tb = render_typst(run_document(cat, run_id), tmp_path / "tb").splitlines()
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    assert len(a) == len(b) and all("Generated" in x for x, _ in diff), [d for d in diff if "Generated" not in d[0]][:3]
    # the PDF's source too, and the figures it sets
    tdiff = [(x, y) for x, y in zip(ta, tb) if x != y]
    assert len(ta) == len(tb) and len(tdiff) <= 1 and all("Generated" in x for x, _ in tdiff)
    for svg in (tmp_path / "ta").glob("*.svg"):
        assert svg.read_bytes() == (tmp_path / "tb" / svg.name).read_bytes(), svg.name


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
        path = build_report(cat, run_id, tmp_path, pdf=False, figures=False).html
    trap = _Trap()
    shot = tmp_path / "report.png"
    try:
        out = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--enable-logging=stderr",
                "--log-level=0",
                f"--proxy-server=http://127.0.0.1:{trap.port}",
                "--proxy-bypass-list=<-loopback>",
                "--virtual-time-budget=3000",
                "--hide-scrollbars",
                "--window-size=1200,2600",
                f"--screenshot={shot}",
                path.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        trap.close()
    console = [ln for ln in out.stderr.splitlines() if ":CONSOLE" in ln]
    assert shot.is_file() and shot.stat().st_size > 50_000, out.stderr[-2000:]
    assert console == [], console
    leaving = [h for h in trap.hits if not _BROWSER_OWN.search(h)]
    assert leaving == [], leaving


REQUIRE_PDFTOPPM = os.environ.get("PERFKIT_REQUIRE_PDFTOPPM") == "1"


def _ink(pgm: Path) -> float:
    """Share of a greyscale page's pixels that are not white (a P5 PGM from pdftoppm -gray)."""
    import numpy as np

    raw = pgm.read_bytes()
    parts = raw.split(maxsplit=4)  # P5, width, height, maxval, pixels
    w, h = int(parts[1]), int(parts[2])
    px = np.frombuffer(parts[4][-w * h :], dtype=np.uint8)
    return float(np.mean(px < 200))


def test_pdf_report_turns_into_pages_with_its_figures(recorded, tmp_path):
    pdftoppm, pdftotext = shutil.which("pdftoppm"), shutil.which("pdftotext")
    if pdftoppm is None or pdftotext is None:
        if REQUIRE_PDFTOPPM:
            pytest.fail("PERFKIT_REQUIRE_PDFTOPPM=1 but no pdftoppm on PATH (apt-get install poppler-utils)")
        pytest.skip("poppler-utils is not installed (apt-get install poppler-utils)")
    data_dir, run_id = recorded
    with perfkit.open(data_dir) as cat:
        files = build_report(cat, run_id, tmp_path)
    assert files.pdf is not None and files.pdf.read_bytes().startswith(b"%PDF-")
    # every figure on its own, as SVG and PDF, for a paper
    names = {p.name for p in files.figures.iterdir()}
    assert {"latency.svg", "latency.pdf", "cdf.svg", "cdf.pdf", "throughput.pdf", "telemetry.svg"} <= names
    assert all((files.figures / n).stat().st_size > 5_000 for n in names)
    text = subprocess.run(
        [pdftotext, "-layout", str(files.pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for needle in (
        "Percentiles with 95% intervals",
        "Statistical warnings",
        "Methods and reproducibility",
        "SIMULATED",
        "Figure 1:",
        "Figure 4:",
        "git commit",
        "GPU",
    ):
        assert needle in text, needle
    subprocess.run([pdftoppm, "-gray", "-r", "40", str(files.pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.pgm"))
    assert len(pages) >= 3
    ink = [_ink(p) for p in pages]
    # the figures are drawn as vectors with real text: their axis and panel titles are in the PDF
    for axis in ("time since start (s)", "fraction of samples", "GPU clock (SIMULATED)", "output tokens/s"):
        assert axis in text, axis
    # and the pages that hold them are not blank: lines, points and shaded phases put ink on them
    fig_pages = [
        i
        for i, p in enumerate(pages)
        if "Figure"
        in subprocess.run(
            [pdftotext, "-f", str(i + 1), "-l", str(i + 1), str(files.pdf), "-"], capture_output=True, text=True
        ).stdout
    ]
    assert sum(ink[i] > 0.025 for i in fig_pages) >= 2, ink


def test_comparison_report_of_two_runs(recorded, sim, tmp_path):
    data_dir, run_id = recorded
    phases = [
        PhaseSpec("warm", duration_s=0.5, concurrency=1, prompt_tokens=16, output_tokens=8, warmup=True),
        PhaseSpec("steady", duration_s=2.5, rate=12, prompt_tokens=32, output_tokens=16),
    ]
    other = tmp_path / "data"
    import shutil as _sh

    _sh.copytree(data_dir, other)
    asyncio.run(
        record_run(
            Endpoint(sim.url),
            phases,
            other,
            run_id="rep2",
            simulator={"url": sim.url},
            telemetry=TelemetrySpec(gpu="off", host=False),
            notify=lambda _m: None,
        )
    )
    with perfkit.open(other) as cat:
        files = build_report(cat, [run_id, "rep2"], tmp_path / "out")
        with pytest.raises(ValueError, match="twice"):
            build_report(cat, [run_id, run_id], tmp_path / "out")
    assert files.html.name == f"compare-{run_id}-vs-rep2.html" and files.pdf.is_file()
    html = files.html.read_text()
    assert "<script" not in html.lower() and "Comparisons" in html and "rep2 against " + run_id in html
    assert re.search(r"<b>(no significant change|regressed|improved)</b>", html)
    assert 'id="fig-compare-cdf"' in html and "Run rep2" in html and "Run " + run_id in html
