"""``perfkit bottleneck``: where each phase's time went, and what limited it."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_data_dir, add_json

NAME = "bottleneck"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    bn = sub.add_parser(
        NAME,
        help="where each phase's time went, and what limited it",
        description="Per phase: the mean request's time split into server queue, prefill and decode (the "
        "server's own histograms where it has them, and the time outside the server as its own part), a "
        "Little's-law check, and the bottleneck (client-, front-end-, error-, queue-, prefill-, decode-, "
        "KV-capacity-bound, throttled) with its evidence and confidence.",
    )
    bn.add_argument("run", help="run id ('latest' allowed)")
    add_data_dir(bn)
    add_json(bn)
    return bn


def run(a: argparse.Namespace) -> int:
    from perfkit.analysis.attribution import attribute
    from perfkit.cli.tables import print_attribution
    from perfkit.query.catalog import Catalog

    with Catalog(a.data_dir) as cat:
        rid = cat.require_run(a.run)
        res = attribute(cat, rid)
    if a.json:
        from perfkit.cli.common import print_json

        print_json({"run_id": rid, "phases": [r.to_dict() for r in res]})
    else:
        print_attribution(res)
    return 0
