"""Every notebook runs top to bottom on demo data (made when missing), headless, and renders to HTML and PDF."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import perfkit_cmd

import perfkit
import perfkit.notebook as pnb
from perfkit.report.notebook import report_notebook

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", ROOT / "tools" / "make_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    """Two short demo runs, made the way a notebook makes them when its folder holds none."""
    data = tmp_path_factory.mktemp("nb") / "data"
    cat = pnb.open_data(data, min_runs=2, scale=0.35)
    assert len(cat.run_ids()) == 2
    cat.close()
    return data


def test_the_six_notebooks_are_there_committed_without_outputs_and_as_generated():
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01_explore_a_run",
        "02_stability_and_changepoints",
        "03_tail_latency_regression",
        "04_bottleneck_investigation",
        "05_compression_tradeoffs",
        "06_compare_runs_and_capacity",
    ]
    gen = _generator()
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), f"{path.name}: no parameters cell"
        assert nb == gen.build(path.stem), f"{path.name} differs from tools/make_notebooks.py: rerun it"


def test_open_data_uses_what_is_there_and_makes_only_what_is_missing(demo_data):
    before = sorted(p.name for p in (demo_data / "runs").iterdir())
    cat = pnb.open_data(demo_data, min_runs=1)
    assert len(cat.run_ids()) == 2  # nothing made: there were enough
    cat.close()
    assert sorted(p.name for p in (demo_data / "runs").iterdir()) == before


# what each notebook must print or draw on the demo data, beyond running without an error
EXPECT = {
    "01_explore_a_run": [r"<svg", r"estimable", r"Phase \w+ has \d+ requests"],
    "02_stability_and_changepoints": [
        r"throttle injected at [\d.]+ s; change found at \d+ s",
        r"sm_clock_mhz: throttle injected",
        r"<svg",
    ],
    "03_tail_latency_regression": [
        r"\d+ requests in \d+ clusters",
        r"np.log\(ttft_ms\)",
        r"<svg",
        r"(TTFT p99.9: [\d.]+ ms \[|no tail fit: \d+ samples)",
    ],
    "04_bottleneck_investigation": [
        r"throttle: power/thermal-throttled",
        r"confidence \d+%",
        r"L_server",
        r"lambda_W",
        r"<svg",
    ],
    "05_compression_tradeoffs": [r"on the Pareto frontier", r"P\(front\)", r"int4", r"<svg"],
    "06_compare_runs_and_capacity": [
        r"verdict: (no significant change|regressed|improved)",
        r"<svg",
        r"slo_attainment",
        r"no knee here: .*scenarios/sweep.yaml",  # the demo runs are not sweeps: the notebook says so and how
    ],
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_demo_data_and_renders(path, demo_data, tmp_path):
    files = report_notebook(path, tmp_path, {"data_dir": str(demo_data)}, timeout_s=300)
    executed = json.loads((tmp_path / f"{path.stem}.ipynb").read_text())
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code), "a cell did not run"
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    html = files.html.read_text()
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "a resource outside the file"
    for pattern in EXPECT[path.stem]:
        assert re.search(pattern, html), (path.stem, pattern)
    assert files.pdf is not None and files.pdf.read_bytes().startswith(b"%PDF-")


def test_report_notebook_command_and_a_failing_notebook(demo_data, tmp_path):
    out = subprocess.run(
        perfkit_cmd(
            "report",
            "--notebook",
            str(NOTEBOOKS[0]),
            "-p",
            "run_id=latest",
            "--data-dir",
            str(demo_data),
            "--out",
            str(tmp_path / "a"),
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "a" / "01_explore_a_run.html").is_file() and (tmp_path / "a" / "01_explore_a_run.pdf").is_file()
    html = (tmp_path / "a" / "01_explore_a_run.html").read_text()
    with perfkit.open(demo_data) as cat:
        newest = cat.run_ids()[-1]
    assert "run_id=&#x27;latest&#x27;" in html and f"run {newest}:" in html  # the parameter reached the kernel

    bad = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Broken"),
            nbformat.v4.new_code_cell("x = 1\nprint('before')"),
            nbformat.v4.new_code_cell("raise ValueError('on purpose')"),
        ]
    )
    bad.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(bad, tmp_path / "broken.ipynb")
    out = subprocess.run(
        perfkit_cmd("report", "--notebook", str(tmp_path / "broken.ipynb"), "--no-pdf", "--out", str(tmp_path / "b")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0 and "ValueError" in out.stderr and "Traceback" not in out.stderr, out.stderr
    html = (tmp_path / "b" / "broken.html").read_text()
    assert "This notebook stopped with an error" in html and "before" in html and "on purpose" in html

    out = subprocess.run(
        perfkit_cmd("report", "--notebook", str(tmp_path / "missing.ipynb")), capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "is not a notebook file" in out.stderr
    out = subprocess.run(
        perfkit_cmd("report", "--notebook", str(NOTEBOOKS[0]), "-p", "oops"), capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "NAME=VALUE" in out.stderr
