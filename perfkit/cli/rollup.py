"""``perfkit rollup``: a run's per-second latency histograms (fast summaries of huge runs)."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_data_dir

NAME = "rollup"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    ru = sub.add_parser(
        NAME,
        help="write a run's per-second latency histograms (fast summaries of huge runs)",
        description="Write DATA_DIR/rollups/run_id=RUN/latency.parquet: per metric, phase and second, "
        "the samples in each 0.54%%-wide log bucket. Summaries of runs with millions of "
        "samples read it instead of every sample. A completed run gets one when it ends; "
        "this writes it for an interrupted or older run.",
    )
    ru.add_argument("run", help="run id, 'latest' or 'all'")
    add_data_dir(ru)
    ru.add_argument("--force", action="store_true", help="rewrite an up-to-date rollup too")
    return ru


def run(a: argparse.Namespace) -> int:
    import time

    from perfkit.query.catalog import Catalog
    from perfkit.store.rollup import build_rollup, fresh_rollup, rollup_info

    with Catalog(a.data_dir) as cat:
        runs = cat.run_ids() if a.run == "all" else [cat.require_run(a.run)]
    for run_id in runs:
        if fresh_rollup(a.data_dir, run_id) is not None and not a.force:
            print(f"{run_id}: up to date")
            continue
        t = time.perf_counter()
        path = build_rollup(a.data_dir, run_id)
        if path is None:
            print(f"{run_id}: no requests, no rollup")
            continue
        samples: dict[str, int] = (rollup_info(path) or {}).get("samples") or {}  # type: ignore[assignment]
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(samples.items()))
        print(f"{run_id}: {path} ({counts}) in {time.perf_counter() - t:.1f} s")
    return 0
