"""``perfkit slo``: percentile SLOs per phase with a verdict; from a sweep, the most load that meets them."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_data_dir, add_json
from perfkit.errors import ConfigError, ExitCode

NAME = "slo"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    so = sub.add_parser(
        NAME,
        help="check percentile SLOs per phase; from a sweep, the most load that meets them",
        description="Per phase and SLO: the percentile with its interval and a verdict (met, "
        "missed, uncertain, not estimable). When the run steps through two or more "
        "open-loop rates (a sweep), also the highest rate meeting every SLO with its "
        "confidence bracket.",
    )
    so.add_argument("run", help="run id ('latest' allowed)")
    so.add_argument(
        "--slo",
        default="chat",
        help="a preset (chat, rag) or comma-separated bounds such as 'ttft_p99<=200ms,itl_p99<=50ms'",
    )
    add_data_dir(so)
    add_json(so)
    so.add_argument("--class", dest="class_name", help="only this user class's requests")
    so.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    so.add_argument("--fail-on-miss", action="store_true", help="exit 1 when any phase missed an SLO")
    return so


def run(a: argparse.Namespace) -> int:
    from perfkit.analysis.levels import NotASweepError
    from perfkit.analysis.slo import max_sustainable_load, parse_slos, slo_table
    from perfkit.cli.tables import print_slo_table
    from perfkit.query.catalog import Catalog

    try:
        targets = parse_slos(a.slo)
    except ValueError as exc:
        raise ConfigError(f"--slo: {exc}; presets: chat, rag") from None
    if not 0 < a.level < 1:
        raise ConfigError(f"--level must be between 0 and 1, e.g. 0.95; got {a.level:g}")
    with Catalog(a.data_dir) as cat:
        run_id = cat.require_run(a.run)
        tab = slo_table(cat, run_id, targets, class_name=a.class_name, level=a.level)
        capacity: Any = None
        note = None
        fid = cat.fidelity(run_id).df()
        if fid["target_rate_rps"].notna().sum() >= 2:
            # a run with several open-loop rates may be a sweep; when it is not (a ramp, a burst, a throttle),
            # the maximum load is not computed and the note says what to run instead
            try:
                capacity = max_sustainable_load(cat, run_id, targets, level=a.level, class_name=a.class_name)
            except NotASweepError as exc:
                note = f"max load meeting the SLOs: not computed. {exc}"
        if a.json:
            from perfkit.cli.common import print_json

            cap = None
            if capacity is not None:
                cap = {k: getattr(capacity, k) for k in ("estimate", "lo", "hi", "level", "binding", "unit")}
                cap["levels"] = capacity.levels
            print_json({"run_id": run_id, "slos": tab, "max_load": cap, "note": note})
        else:
            print_slo_table(tab)
            if capacity is not None:
                print()
                print(capacity)
            elif note:
                print()
                print(note)
    missed = bool((tab["verdict"] == "missed").any()) if len(tab) else False
    return ExitCode.CHECK_FAILED if missed and a.fail_on_miss else ExitCode.OK
