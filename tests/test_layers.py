"""The package's layout is real: each module's stage comes from its path, and no stage imports one above it.

Data flows one way (docs/architecture.md): the base (contracts, clock, errors, the socket layer) at the
bottom, then ``workload``, then ``client`` / ``collect`` / ``sim`` side by side, ``store``, ``query``,
``analysis``, ``report``, the run's composition (``record``), and the entry points on top.  A module
may import its own stage and any stage of a lower rank; two stages of one rank never import each other
(the client and the ground-truth server it is judged by share only the neutral socket layer).  No
module imports another module's private name.  Imports inside functions count as much as those at the
top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "perfkit"

# stage -> rank; modules directly under perfkit/ are listed by name, packages by folder
RANKS = {
    "base": 0,  # perfkit.errors, clock, secrets, aio, rows and perfkit.net
    "workload": 1,
    "chaos": 1,
    "client": 2,
    "collect": 2,
    "ingest": 4,  # other tools' results written as runs: beside query, below analysis
    "sim": 2,
    "store": 3,
    "query": 4,
    "analysis": 5,
    "report": 6,
    "record": 7,
    "top": 8,  # the command line, the demo, notebook helpers, presets, and the package's own __init__
}
BASE_MODULES = {"errors", "clock", "secrets", "aio", "rows", "net"}
TOP_MODULES = {"cli", "demo", "notebook", "bottlenecks", "__init__"}


def stage_of(module: str) -> str:
    """``perfkit.client.runner`` -> ``client``; entry points (``__main__``) are top."""
    parts = module.split(".")
    if parts[-1] == "__main__":
        return "top"
    if len(parts) == 1:
        return "top"  # the package itself
    head = parts[1]
    if head in BASE_MODULES:
        return "base"
    if head in TOP_MODULES:
        return "top"
    if head in RANKS:
        return head
    raise AssertionError(
        f"{module}: no stage for perfkit/{head}; add it to RANKS in tests/test_layers.py and to docs/architecture.md"
    )


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts)
        out.append((name.removesuffix(".__init__"), path))
    return out


def _imports(module: str, path: Path) -> list[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) for every perfkit import of ``module``."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "perfkit"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base.split(".")[0] == "perfkit":
                found += [(node.lineno, base, a.name) for a in node.names]
    return found


def _is_module(name: str) -> bool:
    p = PKG.parent.joinpath(*name.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists() or any(p.parent.glob(p.name + ".*.so"))


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def layer_violations() -> list[str]:
    problems = []
    for module, path in _modules():
        mine = stage_of(module)
        for line, target, name in _imports(module, path):
            full = f"{target}.{name}" if name and _is_module(f"{target}.{name}") else target
            theirs = stage_of(full)
            if theirs != mine and RANKS[theirs] >= RANKS[mine]:
                problems.append(
                    f"{path.relative_to(PKG.parent)}:{line}: {mine} imports {full} ({theirs}), a stage "
                    f"{'beside' if RANKS[theirs] == RANKS[mine] else 'above'} it"
                )
    return problems


def private_violations() -> list[str]:
    problems = []
    for module, path in _modules():
        for line, target, name in _imports(module, path):
            parts = target.split(".")

            def owner_ok(owner: str, module: str = module) -> bool:
                return module == owner or module.startswith(owner + ".")

            for i, part in enumerate(parts):
                if _private(part) and not owner_ok(".".join(parts[:i])):
                    problems.append(f"{path.relative_to(PKG.parent)}:{line}: imports the private module {target}")
            if name and _private(name):
                # a package's own private submodule (its compiled extension, say) is its business
                if _is_module(f"{target}.{name}") and owner_ok(target):
                    continue
                if module != target:
                    problems.append(
                        f"{path.relative_to(PKG.parent)}:{line}: imports the private name {name} of {target}"
                    )
    return problems


def test_every_module_has_a_stage():
    assert {stage_of(m) for m, _ in _modules()} <= set(RANKS)


def test_no_stage_imports_a_stage_above_or_beside_it():
    assert layer_violations() == []


def test_no_module_imports_another_modules_private_name():
    assert private_violations() == []


@pytest.mark.parametrize(
    "source, expected",
    [
        (
            "from perfkit.report.charts import cdf_chart\n",
            "client imports perfkit.report.charts (report), a stage above",
        ),
        (
            "from perfkit.collect.host import HostSource\n",
            "client imports perfkit.collect.host (collect), a stage beside",
        ),
        ("def f():\n    from perfkit.sim import SimConfig\n", "client imports perfkit.sim (sim), a stage beside"),
    ],
)
def test_the_rule_catches_an_import_of_a_higher_or_sibling_stage(tmp_path, monkeypatch, source, expected):
    bad = PKG / "client" / "_layers_probe.py"
    bad.write_text(source)
    try:
        assert any(expected in p for p in layer_violations()), layer_violations()
    finally:
        bad.unlink()


def test_the_rule_catches_a_private_import(tmp_path):
    bad = PKG / "analysis" / "layers_probe.py"
    bad.write_text("from perfkit.analysis.percentiles import _MIN_TAIL\nfrom perfkit.net import _rx\n")
    try:
        found = private_violations()
        assert any("private name _MIN_TAIL of perfkit.analysis.percentiles" in p for p in found), found
        assert any("private name _rx of perfkit.net" in p for p in found), found
    finally:
        bad.unlink()


def test_only_the_cluster_module_imports_ray():
    """Ray is an optional extra: one module imports it, inside its functions, so the rest runs without it."""
    importers = []
    for module, path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n.split(".")[0] == "ray" for n in names):
                importers.append((module, node.col_offset))
    assert {m for m, _ in importers} == {"perfkit.record.cluster"}
    assert all(col > 0 for _, col in importers)  # never at the top of the module
