"""Shares started on their own (``--partition W/N --start-at T``), joined by ``perfkit merge``: one run.

Two ``perfkit run`` processes, started separately, each send one share of a Poisson schedule; merged, their
intended send times are those of one ``--workers 2`` run to the nanosecond (relative to the phase start), the
request ids are unique, and what does not belong together is refused with a message that says why.
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest
from conftest import perfkit_cmd

import perfkit
from perfkit.errors import ConfigError
from perfkit.record.shares import Share, parse_partition, parse_start_at

LOAD = ["--rate", "30", "--arrival", "poisson", "--duration", "4", "--prompt-tokens", "32", "--output-tokens", "8"]


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _offsets(d, run_id: str) -> np.ndarray:
    with perfkit.open(d) as cat:
        start = cat.manifest(run_id)["phase_windows"][0]["start_ns"]
        rows = cat.sql(f"SELECT request_id, intended_ns, ok FROM requests WHERE run_id = '{run_id}'").df()
    assert rows["request_id"].is_unique and rows["ok"].all()
    return np.sort((rows["intended_ns"] - start).to_numpy())


@pytest.fixture(scope="module")
def shares(sim, tmp_path_factory):
    base = tmp_path_factory.mktemp("shares")
    start = f"@{time.time() + 6:.3f}"
    procs = [
        _start(
            perfkit_cmd(
                "run",
                "--endpoint",
                sim.url,
                *LOAD,
                "--seed",
                "5",
                "--gpu",
                "off",
                "--quiet",
                "--partition",
                f"{w}/2",
                "--start-at",
                start,
                "--data-dir",
                str(base / f"s{w}"),
            )
        )  # fmt: skip
        for w in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
    return base


def test_two_shares_merged_send_exactly_what_two_workers_send(sim, shares, tmp_path):
    one = tmp_path / "two-workers"
    out = subprocess.run(
        perfkit_cmd(
            "run",
            "--endpoint",
            sim.url,
            *LOAD,
            "--seed",
            "5",
            "--gpu",
            "off",
            "--quiet",
            "--workers",
            "2",
            "--data-dir",
            str(one),
            "--run-id",
            "w2",
        ),  # fmt: skip
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    merged = tmp_path / "merged"
    out = subprocess.run(
        perfkit_cmd("merge", str(shares / "s0"), str(shares / "s1"), "--data-dir", str(merged), "--run-id", "m"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 shares of 2" in out.stdout
    assert np.array_equal(_offsets(merged, "m"), _offsets(one, "w2"))  # to the nanosecond
    with perfkit.open(merged) as cat:
        m = cat.manifest("m")
        ids = cat.sql("SELECT request_id % 2 AS w, count(*) AS n FROM requests GROUP BY 1 ORDER BY 1").fetchall()
        nodes = cat.nodes("m")
    assert m["status"] == "complete" and m["client"]["workers"] == 2 and not m["lost_shares"]
    assert [w for w, _ in ids] == [0, 1] and abs(ids[0][1] - ids[1][1]) <= 1 + 0.2 * ids[0][1]
    assert m["counts"]["written"] == sum(n for _, n in ids)
    assert list(nodes["share"]) == [0, 1] and "wall clock" in m["merged_from"]["clock"]
    check = subprocess.run(perfkit_cmd("check", str(merged)), capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "0 unreadable" in check.stdout
    summary = subprocess.run(
        perfkit_cmd("summary", "m", "--data-dir", str(merged)), capture_output=True, text=True, timeout=120
    )
    assert summary.returncode == 0 and "nodes" in summary.stdout


def test_merge_refuses_what_does_not_belong_together(shares, tmp_path):
    def merge(*dirs: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        return subprocess.run(
            perfkit_cmd("merge", *dirs, "--data-dir", str(tmp_path / "out"), *extra),
            capture_output=True,
            text=True,
            timeout=60,
        )

    missing = merge(str(shares / "s0"))
    assert missing.returncode == 2 and "shares 1/2 are missing" in missing.stderr and "Traceback" not in missing.stderr
    twice = merge(str(shares / "s0"), str(shares / "s0"))
    assert twice.returncode == 2 and "there twice" in twice.stderr
    partial = merge(str(shares / "s0"), extra=("--partial", "--run-id", "p"))
    assert partial.returncode == 0, partial.stderr
    with perfkit.open(tmp_path / "out") as cat:
        assert cat.manifest("p")["lost_shares"][0]["share"] == 1
    nothing = merge(str(tmp_path))
    assert nothing.returncode == 2 and "no share of a partitioned run" in nothing.stderr
    (tmp_path / "file").write_text("x")
    into_file = subprocess.run(
        perfkit_cmd("merge", str(shares / "s0"), str(shares / "s1"), "--data-dir", str(tmp_path / "file")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert into_file.returncode == 2 and "is a file" in into_file.stderr


def test_partition_and_start_at_are_parsed_or_refused_clearly():
    assert parse_partition("1/4") == Share(1, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError, match="--partition"):
            parse_partition(bad)
    now = 1_800_000_000 * 10**9
    assert parse_start_at("+10", now) == 1_800_000_010 * 10**9  # the next whole 10 s, at least 1 s ahead
    assert parse_start_at("+10", now + 9_500_000_000) == 1_800_000_020 * 10**9
    before = 1_700_000_000 * 10**9  # 2023-11-14
    assert parse_start_at("2027-01-15T08:00:00Z", before) == now
    assert parse_start_at("2027-01-15T09:00:00+01:00", before) == now
    assert parse_start_at("2027-01-15T08:00:00", before) == now  # no zone: UTC
    assert parse_start_at("@1800000001.5", now) == 1_800_000_001_500_000_000
    with pytest.raises(ConfigError, match="in the past"):
        parse_start_at("2020-01-01T00:00:00Z", now)
    with pytest.raises(ConfigError, match="not a time"):
        parse_start_at("tomorrow", now)


def test_a_share_without_a_start_is_refused(sim, tmp_path):
    out = subprocess.run(
        perfkit_cmd("run", "--endpoint", sim.url, "--requests", "1", "--partition", "0/2", "--data-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--start-at" in out.stderr and "Traceback" not in out.stderr
