"""Parquet layout, writers and run manifests."""

from perfkit.store.manifest import (
    effective_status,
    new_run_id,
    read_manifest,
    write_manifest,
)
from perfkit.store.schema import CHUNKS, REQUESTS, SCHEMA_VERSION, schema_markdown
from perfkit.store.writer import ParquetSink, records_to_tables

__all__ = [
    "CHUNKS",
    "REQUESTS",
    "SCHEMA_VERSION",
    "ParquetSink",
    "effective_status",
    "new_run_id",
    "read_manifest",
    "records_to_tables",
    "schema_markdown",
    "write_manifest",
]
