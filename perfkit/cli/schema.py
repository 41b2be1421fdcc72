"""``perfkit schema``: the data schema with units, or the JSON Schema of scenario files."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "schema"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="print the data schema (columns, units, definitions), or the scenario files' JSON Schema",
        description="Every table's columns with their types, units and meaning (also docs/schema.md); with "
        "--scenario, the JSON Schema of scenario files (also scenarios/scenario.schema.json), for editors "
        "and validators.",
    )
    p.add_argument("--scenario", action="store_true", help="the JSON Schema of scenario files instead")
    return p


def run(a: argparse.Namespace) -> int:
    if a.scenario:
        import json

        from perfkit.workload.scenario import scenario_schema

        print(json.dumps(scenario_schema(), indent=2))
        return 0
    from perfkit.store.schema import schema_markdown

    print(schema_markdown())
    return 0
