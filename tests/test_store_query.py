"""Writers, the Parquet layout, and the summary SQL against hand-computed values."""

from __future__ import annotations

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

import perfkit
from perfkit.errors import ConfigError, RunNotFoundError
from perfkit.rows import RequestRecord
from perfkit.store import (
    CHUNKS,
    REQUESTS,
    ParquetSink,
    records_to_tables,
    write_manifest,
)

MS = 1_000_000


def rec(
    i: int,
    sent_ms: float,
    ttft: float,
    chunk_offsets: list[float],
    e2e: float,
    *,
    phase: str = "a",
    warmup: bool = False,
    error: str | None = None,
) -> RequestRecord:
    sent = int(sent_ms * MS)
    r = RequestRecord(i, phase, 0 if phase == "a" else 1, warmup, None, sent, 16, 3)
    r.sent_ns, r.headers_ns, r.status = sent, sent + MS, 200
    r.chunk_ns = [sent + int(o * MS) for o in chunk_offsets]
    r.chunk_tokens, r.chunk_chars = [None] * len(chunk_offsets), [4] * len(chunk_offsets)
    if chunk_offsets:
        r.first_token_ns, r.last_token_ns = r.chunk_ns[0], r.chunk_ns[-1]
    r.end_ns = sent + int(e2e * MS)
    if error:
        r.fail(error, "boom")
    assert not chunk_offsets or chunk_offsets[0] == ttft
    return r


def hand_made() -> list[RequestRecord]:
    return [
        rec(0, 0, 10, [10, 15, 25], 100),
        rec(1, 1000, 20, [20, 40, 70], 200),
        rec(2, 2000, 30, [30, 31, 33], 300),
        rec(3, 3000, 40, [40, 140, 240], 400),
        rec(4, 4000, 0, [], 5, error="connect_error"),
        rec(5, -1000, 999, [999, 1999, 2999], 5000, warmup=True),
    ]


def write_run(data_dir, run_id: str, records: list[RequestRecord]) -> None:
    sink = ParquetSink(data_dir, run_id, flush_interval_s=0.05)
    for r in records:
        sink.put("requests", [r])
    sink.close()
    write_manifest(data_dir, run_id, {"status": "complete", "endpoint": {"base_url": "http://x/v1", "model": "m"}})


def test_tables_follow_the_documented_schema():
    req, ch = records_to_tables(hand_made())
    assert req.schema.equals(REQUESTS, check_metadata=False) and ch.schema.equals(CHUNKS, check_metadata=False)
    assert req.num_rows == 6 and ch.num_rows == 15
    r0 = req.slice(0, 1).to_pylist()[0]
    assert r0["ttft_ms"] == 10 and r0["e2e_ms"] == 100 and r0["tpot_ms"] == 7.5 and r0["itl_mean_ms"] == 7.5
    assert r0["output_tokens"] == 3 and r0["output_tokens_source"] == "chunks"
    assert ch.column("itl_ms").to_pylist()[:3] == [None, 5.0, 10.0]


def test_every_column_is_documented_with_its_meaning():
    for schema in (REQUESTS, CHUNKS):
        for f in schema:
            assert f.metadata and f.metadata[b"doc"], f.name
            if f.name.endswith("_ns"):
                assert b"ns" in f.metadata[b"doc"], f.name
            if f.name.endswith("_ms"):
                assert b"ms" in f.metadata[b"doc"], f.name


def test_sink_writes_hive_partitioned_parts_and_no_temp_files(data_dir):
    write_run(data_dir, "run-1", hand_made())
    parts = sorted((data_dir / "requests" / "run_id=run-1").iterdir())
    assert parts and all(p.name.startswith("part-") and p.suffix == ".parquet" for p in parts)
    n = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{data_dir}/requests/**/*.parquet', hive_partitioning=true)"
    ).fetchall()[0][0]
    assert n == 6
    assert pl.scan_parquet(data_dir / "chunks", hive_partitioning=True).select(pl.len()).collect().item() == 15


def test_sink_flushes_while_running_not_only_at_close(data_dir):
    import time

    sink = ParquetSink(data_dir, "live", flush_interval_s=0.1)
    for r in hand_made()[:3]:
        sink.put("requests", [r])
    time.sleep(0.5)
    on_disk = list((data_dir / "requests" / "run_id=live").glob("*.parquet"))
    assert on_disk, "nothing flushed before close()"
    assert sum(pq.read_metadata(p).num_rows for p in on_disk) == 3
    sink.close()


def test_summary_matches_hand_computed_values(data_dir):
    write_run(data_dir, "r1", hand_made())
    with perfkit.open(data_dir) as cat:
        rows = cat.summary("r1").df().to_dict("records")
    assert len(rows) == 1
    s = rows[0]
    assert s["run_id"] == "r1" and s["phase"] == "a"
    assert s["requests"] == 5 and s["errors"] == 1 and s["error_rate"] == pytest.approx(0.2)
    assert s["duration_s"] == pytest.approx(4.005)
    assert s["request_throughput_rps"] == pytest.approx(4 / 4.005)
    assert s["output_token_throughput_tps"] == pytest.approx(12 / 4.005)
    # TTFT over successful requests: 10, 20, 30, 40 ms (linear interpolation)
    assert (s["ttft_mean_ms"], s["ttft_p50_ms"], s["ttft_p90_ms"], s["ttft_p99_ms"]) == pytest.approx(
        (25, 25, 37, 39.7)
    )
    # ITL pooled over chunk gaps: 1, 2, 5, 10, 20, 30, 100, 100 ms
    assert (s["itl_mean_ms"], s["itl_p50_ms"], s["itl_p90_ms"], s["itl_p99_ms"]) == pytest.approx((33.5, 15, 100, 100))
    assert s["tpot_mean_ms"] == pytest.approx((7.5 + 25 + 1.5 + 100) / 4)
    assert (s["e2e_mean_ms"], s["e2e_p50_ms"], s["e2e_p90_ms"], s["e2e_p99_ms"]) == pytest.approx((250, 250, 370, 397))


def test_summary_warmup_switch_and_per_run_rows(data_dir):
    write_run(data_dir, "r1", hand_made())
    write_run(data_dir, "r2", hand_made()[:2])
    with perfkit.open(data_dir) as cat:
        assert cat.summary("r1", include_warmup=True).df()["requests"].sum() == 6
        both = cat.summary(by_phase=False).pl()
        assert both["run_id"].to_list() == ["r1", "r2"] and both["phase"].to_list() == ["all", "all"]
        assert cat.run_ids() == ["r1", "r2"]
        assert cat.table("runs").df()["status"].tolist() == ["complete", "complete"]


def test_empty_data_dir_gives_empty_views(data_dir):
    with perfkit.open(data_dir) as cat:
        assert cat.summary().df().empty
        assert cat.scalar("SELECT count(*) FROM chunks") == 0


def test_missing_data_dir_and_unknown_run_say_what_to_do(tmp_path, data_dir):
    with pytest.raises(RunNotFoundError, match="does not exist; make one with `perfkit demo"):
        perfkit.open(tmp_path / "nope")
    write_run(data_dir, "r1", hand_made())
    with perfkit.open(data_dir) as cat, pytest.raises(RunNotFoundError, match="runs here: r1"):
        cat.require_run("r9")
    with perfkit.open(data_dir) as cat, pytest.raises(ConfigError, match="characters"):
        cat.summary("x'; DROP TABLE requests; --")


def test_a_run_is_named_by_latest_or_a_unique_prefix_and_perfkit_runs_lists_them_all(data_dir):
    import subprocess

    from conftest import perfkit_cmd

    for rid in ("alpha-1", "alpha-2", "beta", "c1", "c2", "c3", "c4"):
        write_run(data_dir, rid, hand_made())
    with perfkit.open(data_dir) as cat:
        assert cat.require_run("bet") == "beta"
        with pytest.raises(RunNotFoundError, match="ambiguous.*2 runs start with it"):
            cat.require_run("alpha")
        with pytest.raises(RunNotFoundError, match="the newest 5 of 7; `perfkit runs` lists them all"):
            cat.require_run("zzz")
    out = subprocess.run(perfkit_cmd("runs", "--data-dir", str(data_dir)), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert all(rid in out.stdout for rid in ("alpha-1", "alpha-2", "beta", "c4")) and "complete" in out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) <= 120
    out = subprocess.run(
        perfkit_cmd("runs", "--data-dir", str(data_dir), "--limit", "2"), capture_output=True, text=True, timeout=60
    )
    assert "the newest 2 of 7 runs" in out.stdout
    write_run(data_dir, "a-newest", hand_made())  # named by hand: `latest` goes by when it ran, not by its name
    write_manifest(data_dir, "a-newest", {"status": "complete", "started_utc": "2030-01-01T00:00:00Z"})
    with perfkit.open(data_dir) as cat:
        assert cat.require_run("latest") == "a-newest" and cat.run_ids()[-1] == "a-newest"


def test_killed_run_manifest_reads_as_incomplete(data_dir):
    write_manifest(
        data_dir,
        "k",
        {
            "status": "running",
            "pid": 2**22 + 12345,
            "environment": {"host": {"hostname": __import__("socket").gethostname()}},
        },
    )
    with perfkit.open(data_dir) as cat:
        assert cat.table("runs").df()["status"].tolist() == ["incomplete"]


def test_a_class_without_an_slo_has_no_goodput_rather_than_a_goodput_of_zero(data_dir):
    records = hand_made()
    write_run(data_dir, "noslo", records)
    for r in records[:3]:
        r.slo_ok = True
    write_run(data_dir, "slo", records)
    with perfkit.open(data_dir) as cat:
        assert cat.slo("noslo").df()["goodput_rps"].isna().all()
        assert (cat.slo("slo").df()["goodput_rps"] > 0).all()


def test_the_tables_read_in_polars_pandas_and_arrow_match_duckdb(data_dir):
    import polars as pl

    write_run(data_dir, "p1", hand_made())
    write_run(data_dir, "p2", hand_made()[:3])
    with perfkit.open(data_dir) as cat:
        n_req = cat.scalar("SELECT count(*) FROM requests")
        n_p2 = cat.scalar("SELECT count(*) FROM chunks WHERE run_id = 'p2'")
        med = cat.scalar("SELECT median(ttft_ms) FROM requests WHERE ok AND run_id = 'p1'")
    lf = perfkit.scan(data_dir, "requests")
    assert isinstance(lf, pl.LazyFrame) and lf.collect().height == n_req
    got = lf.filter(pl.col("ok") & (pl.col("run_id") == "p1")).select(pl.col("ttft_ms").median()).collect().item()
    assert got == pytest.approx(med)
    assert len(perfkit.read_pandas(data_dir, "chunks", run_id="p2")) == n_p2
    assert perfkit.read_arrow(data_dir, "requests", run_id="latest").num_rows == 3
    assert perfkit.scan(data_dir, "gpu_samples").collect().height == 0
    with pytest.raises(perfkit.ConfigError, match="no table 'request'"):
        perfkit.scan(data_dir, "request")
