"""``perfkit merge``: join the shares of a partitioned run into one run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from perfkit.cli.common import add_data_dir

NAME = "merge"

EXAMPLES = """examples:
  perfkit run --endpoint URL --rate 60 --duration 30 --partition 0/2 --start-at +10 --data-dir a &
  perfkit run --endpoint URL --rate 60 --duration 30 --partition 1/2 --start-at +10 --data-dir b
  perfkit merge a b --data-dir merged"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    m = sub.add_parser(
        NAME,
        help="join the shares of a partitioned run (--partition W/N) into one run",
        description="Join the shares recorded by `perfkit run --partition W/N --start-at TIME` into one run "
        "under --data-dir, after checking that they belong together (seed, phases, share count, start "
        "instant, endpoint), each share once. Instants are put on share 0's clock through the common "
        "start instant; see docs/scale-out.md.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument(
        "dirs", nargs="+", metavar="DIR", help="data directories holding the shares (each share's --data-dir)"
    )
    add_data_dir(m, "where the merged run goes (default data/)")
    m.add_argument("--run-id", help="the merged run's id (default: a new sortable id)")
    m.add_argument("--partial", action="store_true", help="merge although shares are missing; the manifest names them")
    return m


def run(a: argparse.Namespace) -> int:
    from perfkit.store.merge import find_shares, merge_shares

    shares = find_shares(a.dirs)
    run_id, manifest = merge_shares(shares, a.data_dir, a.run_id, partial=a.partial, command=sys.argv)
    c = manifest["counts"]
    lost = manifest["lost_shares"]
    print(
        f"run {run_id}: {len(shares)} shares of {manifest['merged_from']['shares']}, {c['written']} requests, "
        f"{c['errors']} errors" + (f"; missing shares {', '.join(str(x['share']) for x in lost)}" if lost else "")
    )
    return 0
