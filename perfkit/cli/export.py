"""``perfkit export``: a run's results as another tool's users read them (vLLM bench serve JSON), or as perfkit's
own JSON with every interval."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from perfkit.cli.common import add_data_dir
from perfkit.errors import ConfigError, ExitCode

NAME = "export"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="write a run's results as vLLM bench serve JSON or perfkit's own JSON",
        description="vllm-bench: the keys of a `vllm bench serve --save-result --save-detailed` file (completed, "
        "request_throughput, mean/median/std/pXX of TTFT, TPOT, ITL and E2E, per-request ttfts and itls), with "
        "perfkit's intervals under 'perfkit'; json: perfkit's percentiles with their intervals per phase.",
    )
    p.add_argument("run", nargs="?", default="latest", help="run id ('latest', the default, or a unique prefix)")
    add_data_dir(p)
    p.add_argument(
        "--format",
        choices=("vllm-bench", "json", "csv"),
        default="vllm-bench",
        help="vllm-bench (default), json (perfkit's percentiles with intervals), csv (one row a request)",
    )
    p.add_argument("--phase", help="one phase only (default: every phase but the warm-up)")
    p.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    return p


def run(a: argparse.Namespace) -> int:
    from perfkit.query.catalog import Catalog
    from perfkit.report.export import perfkit_result, vllm_bench_result

    with Catalog(a.data_dir) as cat:
        rid = cat.require_run(a.run)
        phases = set(cat.sql("SELECT DISTINCT phase FROM requests WHERE run_id = $r", {"r": rid}).df()["phase"])
        if a.phase is not None and a.phase not in phases:
            raise ConfigError(f"run {rid} has no phase {a.phase!r}; its phases: {', '.join(sorted(phases))}")
        if a.format == "csv":
            from perfkit.query.frames import export_requests

            text = export_requests(cat, rid, a.phase).to_csv(index=False).rstrip("\n")
        else:
            data = (
                vllm_bench_result(cat, rid, a.phase) if a.format == "vllm-bench" else perfkit_result(cat, rid, a.phase)
            )
            text = json.dumps(data, indent=2, default=str)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")
        print(f"wrote {a.out} ({a.format})", file=sys.stderr)
    else:
        print(text)
    return ExitCode.OK
