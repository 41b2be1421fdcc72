"""``perfkit runs``: the runs in a data directory, newest first, with what a reader needs to pick one."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from perfkit.cli.common import add_data_dir
from perfkit.errors import ExitCode

NAME = "runs"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="list the runs in a data directory, newest first",
        description="Each run with its label, tags, start (UTC), duration, requests, status and size on disk, "
        "newest first.  Wherever a command names a run, 'latest' or a unique prefix of its id will do.",
    )
    add_data_dir(p)
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the newest N runs")
    return p


def _duration_s(start: str | None, end: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
    except (TypeError, ValueError):
        return None


def _size_bytes(data_dir: Path, run_id: str) -> int:
    return sum(f.stat().st_size for d in data_dir.glob(f"*/run_id={run_id}") for f in d.rglob("*") if f.is_file())


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def run(a: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from perfkit.query.catalog import Catalog

    with Catalog(a.data_dir) as cat:
        rows = cat.sql("SELECT * FROM runs").df().to_dict("records")
    console = Console(width=120)
    if not rows:
        console.print(f"{a.data_dir} holds no run yet: `perfkit demo` or `perfkit run` makes one")
        return ExitCode.OK
    rows.sort(key=lambda r: (str(r.get("started_utc") or ""), r["run_id"]), reverse=True)
    shown = rows[: a.limit] if a.limit else rows
    t = Table(title=f"runs in {a.data_dir}", title_justify="left")
    for col, just in (
        ("run id", "left"),
        ("label", "left"),
        ("tags", "left"),
        ("start (UTC)", "left"),
        ("duration", "right"),
        ("requests", "right"),
        ("status", "left"),
        ("size", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in shown:
        tags = json.loads(r.get("tags") or "{}")
        dur = _duration_s(r.get("started_utc"), r.get("finished_utc"))
        req = r.get("requests")
        t.add_row(
            r["run_id"],
            str(r.get("label") or "–"),
            ", ".join(f"{k}={v}" for k, v in tags.items()) or "–",
            str(r.get("started_utc") or "–")[:19].replace("T", " "),
            f"{dur:.0f} s" if dur is not None else "–",
            f"{int(req):,}" if req == req and req is not None else "–",
            str(r.get("status") or "–"),
            _human(_size_bytes(Path(a.data_dir), r["run_id"])),
        )
    console.print(t)
    if len(shown) < len(rows):
        console.print(f"the newest {len(shown)} of {len(rows)} runs (--limit)")
    return ExitCode.OK
