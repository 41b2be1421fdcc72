"""``perfkit query``: SQL over every run in a data directory."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from perfkit.cli.common import add_data_dir
from perfkit.errors import ConfigError

NAME = "query"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    q = sub.add_parser(
        NAME,
        help="run SQL over every run in a data directory",
        description="SQL over the views requests, chunks, runs, telemetry, gpu_samples, "
        "server_metrics and host_samples (DuckDB).  `perfkit query DATA_DIR SQL` is the "
        "older spelling of `perfkit query SQL --data-dir DATA_DIR`.",
    )
    q.add_argument("args", nargs="+", metavar="SQL", help="the query ([DATA_DIR] SQL)")
    add_data_dir(q)
    q.add_argument("--format", choices=("table", "csv", "json"), default="table")
    q.add_argument("--limit", type=int, default=50, help="rows shown in table format (default 50)")
    return q


def run(a: argparse.Namespace) -> int:
    from perfkit.cli.tables import print_frame
    from perfkit.query.catalog import Catalog

    if len(a.args) == 2:
        a.data_dir, sql = a.args
    elif len(a.args) == 1:
        sql = a.args[0]
    else:
        raise ConfigError("give one SQL query (quoted), and the data directory with --data-dir")
    with Catalog(a.data_dir) as cat:
        try:
            frame = cat.query_frame(sql)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if frame is None:
            return 0
        if a.format == "csv":
            frame.to_csv(sys.stdout, index=False)
        elif a.format == "json":
            print(frame.to_json(orient="records", indent=1))
        else:
            print_frame(frame, a.limit)
    return 0
