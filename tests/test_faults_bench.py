"""The fault table of the docs is made by a script anyone can run; here it runs short, over real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from perfkit.chaos import FAULTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_fault_runs_through_perfkit_without_a_crash_or_a_lost_request(tmp_path):
    out = tmp_path / "faults.md"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "faults.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    print(run.stdout)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1].startswith(f"faults={len(FAULTS)} crashed=0 lost=0 ")
    table = out.read_text()
    for kind in FAULTS:
        assert f"| `{kind}` |" in table
    expected = {
        "reset": "connection_reset",
        "http_429": "rate_limited",
        "malformed": "malformed_chunk",
        "no_done": "missing_done",
        "truncated": "truncated",
        "stall": "read_timeout",
        "giant_chunk": "oversized_event",
        "wrong_content_type": "wrong_content_type",
        "refused": "connect_error",
        "restart": "connect_error",
    }
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines() if line.startswith("| `")}
    for kind, outcome in expected.items():
        assert outcome in rows[kind], rows[kind]
    assert "Crashed: none. Requests lost: 0." in table
