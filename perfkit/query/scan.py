"""A data directory's tables in each user's idiom: a polars LazyFrame, a pandas DataFrame, an Arrow table.

The same Parquet the DuckDB views read (``TABLE/run_id=RUN/part-*.parquet``), with ``run_id`` from the folder
name; unreadable parts (a crash mid-write) are left out as the catalog leaves them out, with the same warning.

    lf = perfkit.scan("data", "requests")                     # polars, lazy: filter and select before reading
    lf.filter(pl.col("ok")).group_by("phase").agg(pl.col("ttft_ms").median()).collect()
    df = perfkit.read_pandas("data", "chunks", run_id="latest")
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from perfkit.errors import ConfigError, DataWarning, RunNotFoundError
from perfkit.store.check import parquet_footer_ok
from perfkit.store.schema import TABLES

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

__all__ = ["read_arrow", "read_pandas", "scan"]


def _parts(data_dir: str | Path, table: str, run_id: str | None) -> list[Path]:
    d = Path(data_dir)
    if table not in TABLES:
        raise ConfigError(f"no table {table!r}; tables: {', '.join(TABLES)} (the runs' manifests: perfkit.open(...))")
    if not d.is_dir():
        raise RunNotFoundError(f"data directory {str(d)!r} does not exist")
    if run_id == "latest":
        from perfkit.query.catalog import Catalog

        with Catalog(d) as cat:
            run_id = cat.require_run("latest")
    pattern = f"run_id={run_id}/*.parquet" if run_id else "run_id=*/*.parquet"
    parts = sorted((d / table).glob(pattern))
    bad = [p for p in parts if not parquet_footer_ok(p)]
    if bad:
        warnings.warn(
            f"{len(bad)} unreadable Parquet part(s) of {table} left out, e.g. {bad[0]}; `perfkit check {d} --repair`",
            DataWarning,
            stacklevel=3,
        )
    good = [p for p in parts if p not in set(bad)]
    if not good and run_id:
        raise RunNotFoundError(f"{d} has no {table} of run {run_id!r}")
    return good


def scan(data_dir: str | Path, table: str = "requests", *, run_id: str | None = None) -> pl.LazyFrame:
    """``table`` of every run (or of ``run_id``; ``latest`` allowed) as a polars LazyFrame with ``run_id``."""
    import polars as pl
    import pyarrow as pa

    parts = _parts(data_dir, table, run_id)
    if not parts:
        empty = TABLES[table].empty_table().append_column("run_id", pa.array([], pa.string()))
        return pl.DataFrame(pl.from_arrow(empty)).lazy()
    frames = [
        pl.scan_parquet(p, hive_partitioning=False).with_columns(
            pl.lit(p.parent.name.partition("=")[2]).alias("run_id")
        )
        for p in parts
    ]
    return pl.concat(frames, how="diagonal_relaxed")


def read_arrow(data_dir: str | Path, table: str = "requests", *, run_id: str | None = None) -> pa.Table:
    """``table`` (of ``run_id``) as one Arrow table with ``run_id``."""
    return scan(data_dir, table, run_id=run_id).collect().to_arrow()


def read_pandas(data_dir: str | Path, table: str = "requests", *, run_id: str | None = None) -> pd.DataFrame:
    """``table`` (of ``run_id``) as a pandas DataFrame with ``run_id``."""
    return scan(data_dir, table, run_id=run_id).collect().to_pandas()
