"""The README and docs/ run as written: every fenced command and Python block, and every inline command's options.

Each page's shell blocks run in order in one ``bash`` script, in a scratch folder that holds the repository's
``scenarios/`` and ``notebooks/`` and a ``data/`` folder with four short runs of one workload. What a reader
would type is changed only where it must be: ports become free ones, ``gpu-box`` becomes the simulator on
this machine, durations shrink (``--duration 3``, ``--warmup 1``, scenarios at ``--scale 0.05``) and the
placeholders (``BASELINE_RUN``, ``RUN_ID``, ``/path/to/data`` ...) name the runs in ``data/``. A command
passes when it exits 0 or 1 (1 is a verdict: a regression, a missed SLO) and prints no traceback; a server
started with ``&`` is waited for before the next line.

Blocks marked ``sh`` are commands for another machine (a Ray cluster, a Kubernetes pod): not run, but their
``perfkit`` options are checked like every inline command's. Three lines are not run here, each for a stated
reason: ``pip install`` (``.ci/run`` and the fresh-clone check run the README's two commands as written),
``python3 -m pytest`` (this suite) and ``jupyter lab`` (it waits
for a person).
"""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, perfkit_cmd

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "notebooks" / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
NOT_RUN = ("pip install", "python3 -m pytest", "jupyter lab")
PLACEHOLDERS = {
    "BASELINE_RUN": "doc-a",
    "CANDIDATE_RUN": "doc-cand",
    "RUN1,RUN2,RUN3": "doc-a,doc-b,doc-c",
    "RUN_ID": "latest",
}


def blocks(page: Path) -> list[tuple[str, str]]:
    """The fenced blocks of a page as (language, text); every block must name its language."""
    found = FENCE.findall(page.read_text())
    for lang, text in found:
        assert lang, f"{page.name}: a code block without a language (```text for output and diagrams): {text[:60]!r}"
    return found


def shell_lines(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def adapt(line: str, ports: dict[str, str], data: Path) -> str:
    """What a reader types, made to run here (see the module's docstring)."""
    for old, new in ports.items():
        line = re.sub(rf"\b{old}\b", new, line)
    line = line.replace("gpu-box", "127.0.0.1").replace("/path/to/data", str(data))
    for old, new in PLACEHOLDERS.items():
        line = line.replace(old, new)
    line = re.sub(r"--duration \d+", "--duration 3", line)
    line = re.sub(r"--warmup \d+", "--warmup 1", line)
    if re.match(r"perfkit run scenarios/", line):
        line = line.replace(" #", " --scale 0.05 #", 1) if " #" in line else line + " --scale 0.05"
    return line


def script(lines: list[str], ports: dict[str, str], data: Path) -> str:
    out = [
        "set -u",
        "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT",
        "wait_port() { for _ in $(seq 200); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0;"
        ' sleep 0.1; done; echo "nothing listens on $1"; exit 90; }',
    ]
    for line in lines:
        if any(skip in line for skip in NOT_RUN):
            continue
        cmd = adapt(line, ports, data)
        out.append(f"echo {shlex.quote('+ ' + cmd)}")
        if cmd.split(" #")[0].rstrip().endswith("&"):
            out.append(cmd)
            port = re.search(r"--(?:port|listen) (\d+)", cmd)
            assert port, f"a server started with & names its port: {line}"
            out.append(f"wait_port {port.group(1)}")
        else:
            out.append(cmd)
            out.append(
                f'rc=$?; if [ $rc -gt 1 ]; then echo {shlex.quote("DOCS-FAIL " + line)} " (exit $rc)"; exit 91; fi'
            )
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def seeded(sim, tmp_path_factory) -> Path:
    """A data folder with four short runs of one workload, named as the docs' placeholders are mapped."""
    base = tmp_path_factory.mktemp("docs-data")
    for run_id in ("doc-a", "doc-b", "doc-c", "doc-cand"):
        args = ["run", "--endpoint", sim.url, "--rate", "12", "--duration", "6", "--output-tokens", "16"]
        args += ["--data-dir", str(base / "data"), "--run-id", run_id, "--gpu", "sim", "--quiet"]
        out = subprocess.run(perfkit_cmd(*args), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
    return base / "data"


def scratch(seeded: Path, tmp_path: Path) -> Path:
    """A folder a reader might stand in: the repository's scenarios, notebooks and tests, and a copy of the runs."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(seeded, work / "data")
    for name in ("scenarios", "notebooks", "tests"):
        (work / name).symlink_to(ROOT / name)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "perfkit").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m perfkit.cli "$@"\n')
    (shim / "perfkit").chmod(0o755)
    return work


def runnable(page: Path) -> bool:
    return any(lang in ("bash", "python") for lang, _ in blocks(page))


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_of_the_page_runs(page: Path, seeded: Path, tmp_path: Path) -> None:
    import os

    work = scratch(seeded, tmp_path)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"}
    env.pop("PERFKIT_DATA_DIR", None)
    env["HOME"] = str(tmp_path / "home")  # what a page installs in a home folder (completion) lands here
    found = blocks(page)
    shell = [ln for lang, text in found if lang == "bash" for ln in shell_lines(text)]
    if shell:
        ports = {"8000": str(free_port()), "8001": str(free_port())}
        body = script(shell, ports, work / "data")
        out = subprocess.run(["bash", "-c", body], cwd=work, env=env, capture_output=True, text=True, timeout=900)
        log = out.stdout + out.stderr
        assert out.returncode == 0, f"{page.name}: a command failed\n{log[-4000:]}"
        assert "Traceback" not in log, f"{page.name}: a traceback\n{log[-4000:]}"
    python = "\n".join(text for lang, text in found if lang == "python")
    if python:
        out = subprocess.run(
            [sys.executable, "-c", python], cwd=work, env=env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, f"{page.name}: its Python blocks failed\n{out.stderr[-4000:]}"


def test_every_inline_command_names_options_that_exist() -> None:
    from perfkit.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    bad = []
    for page in [*PAGES, ROOT / "bench" / "README.md"]:
        spans = re.findall(r"`(perfkit [^`]+)`", page.read_text())
        # ``bash`` blocks run here; ``sh`` blocks are for another machine (a cluster, a pod), checked only here
        spans += [ln for lang, text in blocks(page) if lang in ("bash", "sh") for ln in shell_lines(text)]
        for span in spans:
            words = span.split()
            if len(words) < 2 or not words[0] == "perfkit" or words[1].startswith("-"):
                continue
            name = words[1]
            if name in ("COMMAND",):
                continue
            if name not in sub.choices:
                bad.append(f"{page.name}: `{span}` (no command {name})")
                continue
            known = set(sub.choices[name]._option_string_actions)
            for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", span.split(" #")[0]):
                if opt not in known:
                    bad.append(f"{page.name}: `{span[:80]}` ({opt} is not an option of perfkit {name})")
    assert not bad, "\n".join(bad)
