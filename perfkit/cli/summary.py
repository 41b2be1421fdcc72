"""``perfkit summary``: print a recorded run's summary again (the tables ``perfkit run`` ends with)."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_data_dir
from perfkit.errors import ExitCode

NAME = "summary"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="print a recorded run's summary: percentiles with intervals, changes, stability, fidelity",
        description="The tables a run ends with, from its recorded data: the same figures as the report, "
        "perfkit slo and perfkit.analysis.percentile_table.",
    )
    p.add_argument("run", nargs="?", default="latest", help="run id ('latest', the default)")
    add_data_dir(p)
    return p


def run(a: argparse.Namespace) -> int:
    from perfkit.cli.tables import print_run
    from perfkit.query.catalog import Catalog

    with Catalog(a.data_dir) as cat:
        print_run(cat, cat.require_run(a.run))
    return ExitCode.OK
