"""``perfkit schema``: the data schema with units."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "schema"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    return sub.add_parser(
        NAME,
        help="print the data schema (columns, units, definitions)",
        description="Every table's columns with their types, units and meaning (also docs/schema.md).",
    )


def run(a: argparse.Namespace) -> int:
    from perfkit.store.schema import schema_markdown

    print(schema_markdown())
    return 0
