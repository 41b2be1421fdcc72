"""Crash safety and damaged data: random kills of `perfkit run`, torn or corrupted parts, mixed schema versions."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import perfkit
from perfkit.errors import DataWarning
from perfkit.rows import RequestRecord
from perfkit.store.check import check_data
from perfkit.store.manifest import write_manifest
from perfkit.store.writer import records_to_tables, write_part

ROOT = Path(__file__).resolve().parents[1]


def _fake_run(data: Path, rid: str, n_parts: int = 3, per_part: int = 5, **manifest) -> None:
    for k in range(n_parts):
        recs = []
        for j in range(per_part):
            i = k * per_part + j
            r = RequestRecord(i, "main", 0, False, None, 1_000_000 * i, 8, 4)
            r.sent_ns, r.first_token_ns, r.end_ns, r.status = (
                r.intended_ns,
                r.intended_ns + 20_000_000,
                r.intended_ns + 50_000_000,
                200,
            )
            r.chunk_ns, r.chunk_tokens, r.chunk_chars = [r.first_token_ns, r.end_ns], [1, 1], [3, 3]
            r.last_token_ns = r.end_ns
            recs.append(r)
        req, chunks = records_to_tables(recs)
        write_part(chunks, data / "chunks" / f"run_id={rid}", k)
        write_part(req, data / "requests" / f"run_id={rid}", k)
    write_manifest(data, rid, {"status": "complete", **manifest})


def test_a_corrupted_part_is_left_out_loudly_then_quarantined_by_check(data_dir):
    _fake_run(data_dir, "a")
    _fake_run(data_dir, "b")
    victim = data_dir / "requests" / "run_id=a" / "part-000001.parquet"
    victim.write_bytes(victim.read_bytes()[:-40])  # a truncated copy
    (data_dir / "requests" / "run_id=b" / ".part-000003.parquet.tmp").write_bytes(b"PAR1 half written")
    warned = r"1 unreadable Parquet part\(s\) of requests left out .* `perfkit check .* --repair`"
    with pytest.warns(DataWarning, match=warned):
        with perfkit.open(data_dir) as cat:
            assert cat.scalar("SELECT count(*) FROM requests") == 25  # 30 written, 5 in the damaged part
            assert cat.skipped == [victim]
    run = subprocess.run(
        [sys.executable, "-m", "perfkit.cli", "check", str(data_dir)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1 and f"unreadable part {victim}" in run.stdout and "--repair" in run.stdout
    assert "left-over temporary file" in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "perfkit.cli", "check", str(data_dir), "--repair"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout
    moved = data_dir / "_quarantine" / "requests" / "run_id=a" / "part-000001.parquet"
    assert moved.exists() and not victim.exists()  # set aside, not deleted
    assert not list(data_dir.glob("requests/run_id=b/.*.tmp"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with perfkit.open(data_dir) as cat:
            assert cat.scalar("SELECT count(*) FROM requests") == 25
    assert check_data(data_dir).ok


def test_a_part_with_a_good_footer_but_bad_pages_is_found_by_deep_check(data_dir):
    _fake_run(data_dir, "a", n_parts=1)
    p = data_dir / "chunks" / "run_id=a" / "part-000000.parquet"
    raw = bytearray(p.read_bytes())
    meta = pq.read_metadata(p)
    start = meta.row_group(0).column(0).data_page_offset
    raw[start : start + 64] = b"\xff" * 64  # damage a page, keep both PAR1 marks
    p.write_bytes(bytes(raw))
    deep = check_data(data_dir, deep=True)
    assert [q for q, _ in deep.unreadable] == [p]


def test_runs_of_several_schema_versions_read_together_and_a_newer_one_is_named(data_dir):
    _fake_run(data_dir, "old", n_parts=1)
    _fake_run(data_dir, "new", n_parts=1)
    m = data_dir / "runs" / "run_id=old" / "manifest.json"
    body = json.loads(m.read_text())
    body["schema_version"] = 0
    m.write_text(json.dumps(body))
    t = pq.read_table(data_dir / "requests" / "run_id=old" / "part-000000.parquet").drop_columns(["tpot_ms"])
    pq.write_table(t, data_dir / "requests" / "run_id=old" / "part-000000.parquet")  # an older layout
    with perfkit.open(data_dir) as cat:
        got = cat.sql("SELECT run_id, count(*), count(tpot_ms) FROM requests GROUP BY 1 ORDER BY 1").fetchall()
    assert got == [("new", 5, 5), ("old", 5, 0)]  # matched by name; the missing column reads as null
    rep = check_data(data_dir)
    assert rep.ok and dict(rep.schema_versions) == {0: 1, 1: 1}
    body["schema_version"] = 99
    m.write_text(json.dumps(body))
    rep = check_data(data_dir)
    assert not rep.ok and any("newer perfkit" in ln and "upgrade" in ln for ln in rep.lines())


def test_check_refuses_a_missing_directory(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "perfkit.cli", "check", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "does not exist" in run.stderr


@pytest.mark.slow
def test_random_kills_of_perfkit_run_leave_no_unreadable_run():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "kill_loop.py"), "--rounds", "8", "--max-delay", "4", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    print(out.stdout)
    assert last.startswith("rounds=8 unreadable=0 "), out.stdout
    assert "PROBLEMS" not in out.stdout
