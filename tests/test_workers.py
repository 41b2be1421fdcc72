"""Several client processes: the schedule split exactly, one run on disk, the flag for every worker."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from conftest import perfkit_cmd

import perfkit
from perfkit.client import PhaseSpec
from perfkit.errors import ConfigError
from perfkit.net import ReadPath
from perfkit.record import check_partitionable
from perfkit.workload.phase import StopRule


def _run(url: str, d, *extra: str) -> str:
    out = subprocess.run(
        perfkit_cmd(
            "run",
            "--endpoint",
            url,
            "--data-dir",
            str(d),
            "--rate",
            "30",
            "--arrival",
            "poisson",
            "--duration",
            "4",
            "--prompt-tokens",
            "32",
            "--output-tokens",
            "8",
            "--seed",
            "5",
            "--gpu",
            "off",
            *extra,
        ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    with perfkit.open(d) as cat:
        return cat.sql("SELECT run_id FROM runs ORDER BY run_id DESC LIMIT 1").fetchall()[0][0]


def test_two_workers_send_exactly_the_schedule_one_process_sends(sim, tmp_path):
    one = _run(sim.url, tmp_path / "one")
    two = _run(sim.url, tmp_path / "two", "--workers", "2")
    offsets = {}
    for d, run_id in ((tmp_path / "one", one), (tmp_path / "two", two)):
        with perfkit.open(d) as cat:
            m = cat.manifest(run_id)
            start = m["phase_windows"][0]["start_ns"]
            rows = cat.sql(
                f"SELECT request_id, intended_ns, ok FROM requests WHERE run_id = '{run_id}' ORDER BY intended_ns"
            ).df()
            fid = cat.fidelity(run_id).df().iloc[0]
        assert rows["request_id"].is_unique and rows["ok"].all()
        offsets[d.name] = (rows["intended_ns"] - start).to_numpy()
        assert m["client"]["workers"] == (2 if d.name == "two" else 1)
        # how chunks were timed is on record: the transport's read path, what was asked and what it came to
        t, path = m["client"]["transport"], ReadPath.from_env().resolved()
        assert t["kind"] == "fast" and t["rx_stamps"] == ("kernel" if path.stamps else "read")
        assert t["compiled_reads"] == path.compiled and t["read_thread"] == path.thread
        assert fid["loop_cpu_pct"] is not None and not np.isnan(fid["loop_cpu_pct"])  # every worker measured
        assert not fid["client_bound"]
        if d.name == "two":
            assert set(rows["request_id"] % 2) == {0, 1}  # both workers sent, ids apart
    assert np.array_equal(offsets["one"], offsets["two"])  # to the nanosecond


def test_sweeps_that_need_every_result_at_once_are_refused_with_workers():
    step = PhaseSpec("s", duration_s=1, rate=5, stop_when=StopRule(error_rate=0.1))
    with pytest.raises(ConfigError, match="without --workers"):
        check_partitionable([step])
