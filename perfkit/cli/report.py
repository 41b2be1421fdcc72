"""``perfkit report``: a report (HTML, PDF, figures) of a run, of runs compared, or of a notebook."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_data_dir, add_out
from perfkit.errors import ConfigError

NAME = "report"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    rp = sub.add_parser(
        NAME,
        help="write a report (HTML, PDF, figures) of a run, of runs compared, or of a notebook",
        description="One run: OUT/RUN_ID.html and .pdf, and RUN_ID-figures/ with each figure as "
        "SVG and PDF (RUN_ID may be 'latest'). Several runs: the first is the baseline, "
        "the others are compared with it. --notebook: execute a notebook with papermill "
        "(parameters with -p NAME=VALUE) and render it to HTML and PDF.",
    )
    rp.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    add_data_dir(rp)
    add_out(rp)
    rp.add_argument("--phase", help="compare this phase only (with several runs)")
    rp.add_argument(
        "--allow-different",
        default="",
        metavar="KINDS",
        help="with several runs: compare although the workloads differ in these ways (as perfkit compare)",
    )
    rp.add_argument("--no-pdf", action="store_true", help="HTML only")
    rp.add_argument("--no-figures", action="store_true", help="do not export the figures one by one")
    rp.add_argument(
        "--notebook", metavar="FILE", help="a notebook to execute and render, e.g. notebooks/01_explore_a_run.ipynb"
    )
    rp.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a notebook parameter (repeatable); data_dir defaults to --data-dir",
    )
    rp.add_argument("--timeout", type=float, default=600, metavar="S", help="longest a notebook cell may run, s")
    return rp


def notebook_params(pairs: list[str], data_dir: str) -> dict[str, object]:
    """``-p key=value`` pairs as papermill parameters; values parsed as JSON where they are JSON."""
    import json

    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"-p {pair!r}: write a parameter as NAME=VALUE, e.g. -p run_id=latest")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    params.setdefault("data_dir", data_dir)
    # the kernel runs in the notebook's folder: a relative data directory means the one where the user stands
    if isinstance(params["data_dir"], str):
        from pathlib import Path

        params["data_dir"] = str(Path(params["data_dir"]).resolve())
    return params


def run(a: argparse.Namespace) -> int:
    from perfkit.cli.steps import Steps

    if a.notebook:
        from perfkit.report.notebook import report_notebook

        if a.run_ids:
            raise ConfigError(
                f"with --notebook, give the run as a parameter (-p run_id={a.run_ids[0]}), not as an argument"
            )
        with Steps("perfkit report", 3 if not a.no_pdf else 2) as steps:
            files = report_notebook(
                a.notebook,
                a.out,
                notebook_params(a.param, a.data_dir),
                pdf=not a.no_pdf,
                timeout_s=a.timeout,
                progress=steps,
            )
    else:
        from perfkit.query.catalog import Catalog
        from perfkit.report.render import build_report

        if not a.run_ids:
            raise ConfigError("name a run (or 'latest'), several runs to compare, or --notebook NOTEBOOK")
        with Catalog(a.data_dir) as cat:
            try:
                allow = tuple(k.strip() for k in a.allow_different.split(",") if k.strip())
                total = (11 if len(a.run_ids) == 1 else 4) - a.no_pdf - a.no_figures
                with Steps("perfkit report", total) as steps:
                    files = build_report(
                        cat,
                        a.run_ids,
                        a.out,
                        pdf=not a.no_pdf,
                        figures=not a.no_figures,
                        phase=a.phase,
                        allow=allow,
                        progress=steps,
                    )
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
    print(files.html.resolve())
    if files.pdf:
        print(files.pdf.resolve())
    if files.figures:
        print(f"{files.figures.resolve()}/")
    return 0
