"""The repository's promises about itself: environment.yml matches pyproject, the public API, the docs."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest
import yaml

import perfkit
from perfkit.store.schema import schema_markdown

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"duckdb": "python-duckdb", "prometheus-client": "prometheus_client", "ray": "ray-default"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].strip().lower()


def test_environment_yml_installs_what_pyproject_requires():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d): d for d in env["dependencies"] if isinstance(d, str)}
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(p.startswith("-e .") for p in pip), "environment.yml must install the package itself"
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    from_pip = {_name(p): p for p in pip if not p.startswith("-")}
    for req in wanted:
        name = CONDA_NAMES.get(_name(req), _name(req))
        got = conda.get(name) or from_pip.get(_name(req))
        assert got, f"{req} is in pyproject.toml but not environment.yml"
        lower = re.search(r">=\s*([\d.]+)", req)
        if lower:
            assert f">={lower.group(1)}" in got, f"{req}: environment.yml has {got}"
    py = re.search(r">=\s*([\d.]+)", project["requires-python"]).group(1)
    assert conda.get("python") == f"python>={py}"


@pytest.mark.parametrize(
    "module",
    [
        "perfkit",
        "perfkit.client",
        "perfkit.collect",
        "perfkit.store",
        "perfkit.query",
        "perfkit.analysis",
        "perfkit.sim",
        "perfkit.report",
        "perfkit.workload",
    ],
)
def test_public_surface_is_sorted_and_complete(module):
    mod = importlib.import_module(module)
    names = mod.__all__
    assert names == sorted(names, key=lambda n: (n.startswith("_"), n.upper() != n, n)) or names == sorted(names)
    for n in names:
        assert hasattr(mod, n), f"{module}.__all__ lists {n} which does not exist"
    public = {
        n
        for n, v in vars(mod).items()
        if not n.startswith("_")
        and not isinstance(v, type(mod))
        and getattr(v, "__module__", module).startswith("perfkit")
    }
    missing = public - set(names) - {"annotations", "metadata"}
    assert not missing, f"{module} exposes {missing} without listing them in __all__"


def test_schema_doc_is_generated_from_the_code():
    assert (ROOT / "docs" / "schema.md").read_text().strip() == schema_markdown().strip(), (
        "docs/schema.md is stale: python -c 'from perfkit.store.schema import schema_markdown; "
        "print(schema_markdown())' > docs/schema.md"
    )


def test_readme_has_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = 'python3 -m pip install -e ".[test]" && python3 -m pytest'
    assert "python3 -m pip install -e . && perfkit demo" in readme
    assert test_cmd in readme
    assert test_cmd.replace("pip install -e", "pip install -q -e") in ci


def test_generated_data_and_reports_are_ignored():
    ignore = (ROOT / ".gitignore").read_text()
    assert "/data/*" in ignore and "/reports/*" in ignore


def test_version_is_the_installed_one():
    assert re.match(r"\d+\.\d+", perfkit.__version__)


def test_the_command_line_imports_neither_duckdb_nor_pyarrow_until_a_command_needs_them():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import perfkit.cli; perfkit.cli.build_parser()"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    heavy = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    assert not heavy & {"duckdb", "pyarrow", "pandas", "polars", "altair", "aiohttp", "numpy"}, heavy
    version = subprocess.run([sys.executable, "-m", "perfkit.cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("perfkit ")
