"""A run's latencies as per-second log histograms, written once so that summaries never reread every chunk.

A run of 10M requests holds 100M inter-token latencies; reading and sorting them
takes tens of seconds however it is done.  The *rollup* keeps, per metric
(``ttft_ms``, ``itl_ms``, ``e2e_ms`` and ``itl_token_ms``), phase and second of the run, how many
samples fell in each log bucket and their sum.  ``itl_token_ms`` counts each chunk's gap divided
over its tokens once per token (as :data:`perfkit.query.frames.LATENCY_METRICS` defines it), so a
chunk of k tokens adds k to its bucket's count.  Bucket ``b`` holds values in
``[2^(b/128), 2^((b+1)/128))`` ms (a relative width of 0.54%); values at or below
zero go to :data:`ZERO_BUCKET`.  That is enough for percentiles to within a
bucket, exact counts and means, and the per-second counts that the effective
sample size of a percentile needs (:mod:`perfkit.analysis.histograms`).

Samples are those of the summaries: successful requests, warm-up left out,
``NULL`` latencies left out.  Seconds count from the run's first send
(``sent_ns``); TTFT and E2E samples are placed at their request's send, ITL at
the chunk's arrival (the time orders :func:`perfkit.analysis.latency_samples` uses).

Layout::

    DATA_DIR/rollups/run_id=RUN/latency.parquet

The file's metadata names the parts it was built from (name and size): a rollup
whose run has gained, lost or changed a part since is *stale* and is not used
(:func:`fresh_rollup`).  The recorder writes it when a run completes;
``perfkit rollup`` (or :func:`build_rollup`) writes it for any other run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "BUCKETS_PER_OCTAVE",
    "ROLLUP_METRICS",
    "ROLLUP_SCHEMA",
    "ZERO_BUCKET",
    "build_rollup",
    "fresh_rollup",
    "fresh_rollup_info",
    "rollup_info",
    "rollup_path",
    "rollup_sources",
]

BUCKETS_PER_OCTAVE = 128
ZERO_BUCKET = -(1 << 20)  # values <= 0 ms (two chunks read at the same instant)
ROLLUP_METRICS = ("ttft_ms", "itl_ms", "e2e_ms", "itl_token_ms")
_META_KEY = b"perfkit.rollup"
_VERSION = 2  # 2: itl_token_ms

ROLLUP_SCHEMA = pa.schema(
    [
        pa.field("metric", pa.string(), nullable=False),
        pa.field("phase_index", pa.int32(), nullable=False),
        pa.field("phase", pa.string(), nullable=False),
        pa.field("second", pa.int32(), nullable=False),
        pa.field("bucket", pa.int32(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("sum_ms", pa.float64(), nullable=False),
    ]
)


def rollup_path(data_dir: str | Path, run_id: str) -> Path:
    """Where the rollup of ``run_id`` lives."""
    return Path(data_dir) / "rollups" / f"run_id={run_id}" / "latency.parquet"


def rollup_sources(data_dir: str | Path, run_id: str) -> dict[str, list[list[Any]]]:
    """The run's ``requests`` and ``chunks`` parts as ``{table: [[name, size], ...]}`` (sorted)."""
    out: dict[str, list[list[object]]] = {}
    for table in ("requests", "chunks"):
        folder = Path(data_dir) / table / f"run_id={run_id}"
        parts = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        out[table] = [[p.name, p.stat().st_size] for p in parts]
    return out


def rollup_info(path: str | Path) -> dict[str, object] | None:
    """What a rollup file says about itself (version, sources, ``samples`` per metric); None if unreadable."""
    try:
        meta = pq.read_schema(path).metadata or {}
        info = json.loads(meta[_META_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None
    return info if isinstance(info, dict) else None


def fresh_rollup_info(data_dir: str | Path, run_id: str) -> tuple[Path, dict[str, object]] | None:
    """The rollup of ``run_id`` and what it says of itself, if it was built from the parts the run has now."""
    path = rollup_path(data_dir, run_id)
    if not path.is_file():
        return None
    info = rollup_info(path)
    if info is None or info.get("version") != _VERSION or info.get("sources") != rollup_sources(data_dir, run_id):
        return None
    return path, info


def fresh_rollup(data_dir: str | Path, run_id: str) -> Path | None:
    """The rollup of ``run_id`` if it exists and was built from the parts the run has now, else None."""
    fresh = fresh_rollup_info(data_dir, run_id)
    return fresh[0] if fresh else None


def _list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _rollup_sql(req_parts: list[str], chunk_parts: list[str], several: bool) -> str:
    """The rollup's query; ``several``: whether some chunk carries more than one token.  Where none does, the
    per-token ITL is the per-chunk one, and :func:`build_rollup` copies its rows rather than read every chunk
    twice over."""
    bucket = f"CASE WHEN v > 0 THEN CAST(floor(log2(v) * {BUCKETS_PER_OCTAVE}) AS INTEGER) ELSE {ZERO_BUCKET} END"
    itl = ""
    if chunk_parts:
        src = f"FROM read_parquet({_list(chunk_parts)}, union_by_name=true) c JOIN r USING (request_id)"
        if several:
            # one pass over the chunks (most of a run's bytes): each gives its ITL row and its per-token row
            k = "greatest(coalesce(c.tokens, 1), 1)"
            pair = (
                "[struct_pack(m := 'itl_ms', v := c.itl_ms, w := 1), "
                f"struct_pack(m := 'itl_token_ms', v := c.itl_ms / {k}, w := {k})]"
            )
            itl = (
                "UNION ALL SELECT x.u.m, x.phase_index, x.phase, x.t, x.u.v, x.u.w FROM ("
                f"SELECT r.phase_index, r.phase, c.arrival_ns AS t, unnest({pair}) AS u {src} "
                "WHERE c.itl_ms IS NOT NULL) x"
            )
        else:
            itl = (
                f"UNION ALL SELECT 'itl_ms', r.phase_index, r.phase, c.arrival_ns, c.itl_ms, 1 {src} "
                "WHERE c.itl_ms IS NOT NULL"
            )
    return f"""
WITH allr AS (SELECT * FROM read_parquet({_list(req_parts)}, union_by_name=true)),
t0 AS (SELECT min(sent_ns) AS t0 FROM allr),
r AS (SELECT request_id, phase_index, phase, sent_ns, ttft_ms, e2e_ms FROM allr WHERE ok AND NOT warmup),
s AS (  -- w: how many samples the row stands for (a chunk's tokens for itl_token_ms)
  SELECT 'ttft_ms' AS metric, phase_index, phase, sent_ns AS t, ttft_ms AS v, 1 AS w FROM r WHERE ttft_ms IS NOT NULL
  UNION ALL SELECT 'e2e_ms', phase_index, phase, sent_ns, e2e_ms, 1 FROM r WHERE e2e_ms IS NOT NULL
  {itl}
)
SELECT metric, CAST(phase_index AS INTEGER) AS phase_index, phase,
    CAST((t - t0) // 1000000000 AS INTEGER) AS second, {bucket} AS bucket,
    sum(w) AS count, sum(v * w) AS sum_ms
FROM s, t0
GROUP BY ALL
ORDER BY metric, phase_index, second, bucket
"""


def _several_tokens_a_chunk(con: duckdb.DuckDBPyConnection, chunk_parts: list[str]) -> bool:
    """Whether some chunk of the parts carries more than one token (a run recorded before chunks had a
    ``tokens`` column counts a token a chunk)."""
    src = f"read_parquet({_list(chunk_parts)}, union_by_name=true)"
    if "tokens" not in {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}:
        return False
    return bool(con.execute(f"SELECT coalesce(max(tokens), 1) > 1 FROM {src}").fetchall()[0][0])


def build_rollup(
    data_dir: str | Path, run_id: str, *, threads: int | None = None, memory_limit_mb: int = 1024
) -> Path | None:
    """Write the rollup of ``run_id`` (see the module docstring); None when the run has no requests.

    One pass over the run's Parquet with DuckDB.  The file is written under a temporary name and
    renamed into place, so a reader never sees half of one.

    Parameters
    ----------
    data_dir : str or Path
    run_id : str
    threads : int, optional
        DuckDB threads (default: DuckDB's, one per core).
    memory_limit_mb : int
        DuckDB's memory limit, MB; past it, DuckDB spills to a folder beside the rollup (removed after).
    """
    sources = rollup_sources(data_dir, run_id)
    if not sources["requests"]:
        return None
    base = Path(data_dir)
    req = [str(base / "requests" / f"run_id={run_id}" / n) for n, _ in sources["requests"]]
    chk = [str(base / "chunks" / f"run_id={run_id}" / n) for n, _ in sources["chunks"]]
    path = rollup_path(data_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    spill = path.parent / f".duckdb-spill-{os.getpid()}"
    con = duckdb.connect(":memory:")
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        # the recorder builds it inside the client process: bounded memory, spilling to disk beyond it
        con.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
        con.execute("SET temp_directory = '" + str(spill).replace("'", "''") + "'")
        several = bool(chk) and _several_tokens_a_chunk(con, chk)
        table = con.sql(_rollup_sql(req, chk, several)).to_arrow_table()
        if chk and not several:  # a token a chunk: per token is per chunk
            itl = table.filter(pc.equal(table["metric"], "itl_ms"))
            itl = itl.set_column(0, "metric", pa.array(["itl_token_ms"] * itl.num_rows, table.schema.field(0).type))
            table = pa.concat_tables([table, itl])
    finally:
        con.close()
        if spill.is_dir():
            shutil.rmtree(spill, ignore_errors=True)
    table = table.cast(ROLLUP_SCHEMA)
    totals = table.group_by("metric").aggregate([("count", "sum")]).to_pylist()
    samples = {r["metric"]: int(r["count_sum"]) for r in totals}
    meta = {
        _META_KEY: json.dumps(
            {
                "version": _VERSION,
                "buckets_per_octave": BUCKETS_PER_OCTAVE,
                "zero_bucket": ZERO_BUCKET,
                "samples": samples,
                "sources": sources,
            }
        ).encode()
    }
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path
