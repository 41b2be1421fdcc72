"""DuckDB / Polars access to recorded runs."""

from perfkit.query.catalog import Catalog, open_catalog
from perfkit.query.metrics import SUMMARY_COLUMNS, summary_sql

__all__ = ["SUMMARY_COLUMNS", "Catalog", "open_catalog", "summary_sql"]
