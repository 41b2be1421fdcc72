"""The Parquet schema of a run, made from the row contracts in :mod:`perfkit.rows`.

Layout under a data directory (Hive-partitioned by run, so one glob reads all runs)::

    DATA_DIR/
      requests/run_id=RUN/part-000000.parquet ...   one row per request
      chunks/run_id=RUN/part-000000.parquet ...     one row per streamed content chunk
      gpu_samples/run_id=RUN/part-*.parquet         GPU counters, long format (one row per reading)
      server_metrics/run_id=RUN/part-*.parquet      the server's Prometheus /metrics, long format
      host_samples/run_id=RUN/part-*.parquet        the client's (and a local server's) CPU, memory, loop lag
      runs/run_id=RUN/manifest.json                 config, versions, host, clock anchor
      rollups/run_id=RUN/latency.parquet            per-second log histograms of TTFT, ITL (per chunk, per token), E2E

``run_id`` is not stored inside the files: it comes from the directory name
(``hive_partitioning=true`` in DuckDB, ``hive_partitioning=True`` in Polars).
"""

from __future__ import annotations

import pyarrow as pa

from perfkit import rows
from perfkit.rows import GPU_METRICS, HOST_METRICS, SCHEMA_VERSION, SERVER_COMMON, TABLE_COLUMNS, Column

__all__ = [
    "CHUNKS",
    "GPU_METRICS",
    "GPU_SAMPLES",
    "HOST_METRICS",
    "HOST_SAMPLES",
    "REQUESTS",
    "SCHEMA_VERSION",
    "SERVER_COMMON",
    "SERVER_METRICS",
    "TABLES",
    "TELEMETRY_TABLES",
    "arrow_schema",
    "schema_markdown",
]

_TYPES = {"int32": pa.int32(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(), "string": pa.string()}


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema of a table's columns, each field carrying its meaning as ``doc`` metadata."""
    return pa.schema([pa.field(c.name, _TYPES[c.type], nullable=c.nullable, metadata={"doc": c.doc}) for c in columns])


TABLES: dict[str, pa.Schema] = {name: arrow_schema(cols) for name, cols in TABLE_COLUMNS.items()}
REQUESTS = TABLES["requests"]
CHUNKS = TABLES["chunks"]
GPU_SAMPLES = TABLES["gpu_samples"]
SERVER_METRICS = TABLES["server_metrics"]
HOST_SAMPLES = TABLES["host_samples"]
TELEMETRY_TABLES: dict[str, pa.Schema] = {name: TABLES[name] for name in rows.TELEMETRY_TABLES}


def schema_markdown() -> str:
    """The schema as Markdown (``perfkit schema`` prints it; docs/schema.md is made from it)."""
    layout = (__doc__ or "").strip().split("\n\n", 1)[1]
    definitions = (rows.__doc__ or "").strip().split("\n\n", 4)[-2:]
    out = [
        "# perfkit data schema",
        "",
        f"Schema version {SCHEMA_VERSION}.",
        "",
        layout,
        "",
        definitions[0],
        "",
        definitions[1],
        "",
    ]
    for name, columns in TABLE_COLUMNS.items():
        out += [f"## `{name}`", "", "| column | type | null | meaning |", "|---|---|---|---|"]
        for c in columns:
            out.append(f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {c.doc} |")
        out.append("")
    for title, names in (
        ("`gpu_samples.metric`", GPU_METRICS),
        ("`host_samples.metric`", HOST_METRICS),
        ("`server_metrics.common_name`", SERVER_COMMON),
    ):
        out += [f"### Values of {title}", "", "| name | meaning |", "|---|---|"]
        out += [f"| `{k}` | {v} |" for k, v in names.items()]
        out.append("")
    return "\n".join(out)
