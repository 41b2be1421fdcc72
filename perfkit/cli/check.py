"""``perfkit check``: find unreadable Parquet parts and manifests; --repair sets them aside."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.errors import ExitCode

NAME = "check"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    ck = sub.add_parser(
        NAME,
        help="find unreadable Parquet parts and manifests; --repair sets them aside",
        description="Check every run in the data directory: Parquet parts (footer, or every page "
        "with --deep), manifests, schema versions, temporary files a killed run left. "
        "--repair moves unreadable parts to DATA_DIR/_quarantine/ (nothing is deleted "
        "but the temporary files). Exit 1 while a problem remains.",
    )
    ck.add_argument("dir", nargs="?", metavar="DATA_DIR", help="data directory (older spelling of --data-dir)")
    ck.add_argument("--data-dir", default="data", metavar="DIR", help="data directory (default data/)")
    ck.add_argument("--repair", action="store_true", help="move unreadable parts aside, remove stale temporary files")
    ck.add_argument("--deep", action="store_true", help="read every part whole, not just its footer")
    return ck


def run(a: argparse.Namespace) -> int:
    from perfkit.store.check import check_data

    rep = check_data(a.dir or a.data_dir, repair=a.repair, deep=a.deep)
    for line in rep.lines():
        print(line)
    return ExitCode.CHECK_FAILED if rep.remaining else ExitCode.OK
