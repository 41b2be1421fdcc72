"""``perfkit import``: another tool's result file as a perfkit run (vLLM bench serve, GuideLLM, AIPerf)."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_data_dir
from perfkit.errors import ExitCode

NAME = "import"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="make a perfkit run of vLLM bench serve, GuideLLM or AIPerf results",
        description="Read another tool's per-request results into a perfkit run, so that summary, compare, slo, "
        "report and every analysis work on it. vllm-bench: a `vllm bench serve --save-result --save-detailed` "
        "JSON; guidellm: GuideLLM's benchmarks JSON; aiperf: AIPerf's profile_export.jsonl (--export-level "
        "records; its profile_export_aiperf.json beside it gives the settings). Files may be gzipped. The "
        "manifest names the tool, where its metric definitions differ from perfkit's, and what the file lacks.",
    )
    p.add_argument("format", choices=("vllm-bench", "guidellm", "aiperf"), help="the tool that wrote the file")
    p.add_argument("path", help="the result file")
    add_data_dir(p)
    p.add_argument("--run-id", help="the new run's id (default imported-FORMAT-TIME)")
    p.add_argument("--label", help="a label for the run (default 'imported from TOOL')")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag for the run (repeatable)")
    p.add_argument(
        "--benchmark", type=int, metavar="K", help="GuideLLM: which benchmark of a file with several (0, 1, ...)"
    )
    return p


def run(a: argparse.Namespace) -> int:
    from pathlib import Path

    from perfkit.cli.common import parse_tags
    from perfkit.ingest import import_file
    from perfkit.query.catalog import Catalog

    Path(a.data_dir).mkdir(parents=True, exist_ok=True)
    rid = import_file(
        a.format, a.path, a.data_dir, run_id=a.run_id, label=a.label, tags=parse_tags(a.tag), benchmark=a.benchmark
    )
    with Catalog(a.data_dir) as cat:
        m = cat.manifest(rid)
        imp = m["imported"]
        n = m["counts"]["requests"]
        print(f"imported {n} requests from {imp['tool']} {imp.get('version') or ''}".rstrip() + f" as run {rid}")
        for what in imp["missing"]:
            print(f"  not in the file: {what}")
        for what in imp["reconstructed"]:
            print(f"  reconstructed: {what}")
        print(f"next: perfkit summary {rid} --data-dir {a.data_dir}")
    return ExitCode.OK
