"""``perfkit compare``: run B against baseline run A (or a history); exit 1 on a regression."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_data_dir, add_json
from perfkit.errors import ConfigError, ExitCode

NAME = "compare"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    c = sub.add_parser(
        NAME,
        help="compare two runs' latency percentiles; exit 1 on a regression",
        description="Compare run B against baseline run A: percentile differences with bootstrap "
        "intervals and a verdict with false alarms controlled across the table (Holm). "
        "The two runs' workloads must match (model, API, lengths, load shape) unless a "
        "difference is allowed. Exits 1 when B regressed, so it can gate CI.",
    )
    c.add_argument("run_a", help="baseline run id ('latest' allowed), or a history: 3 or more ids separated by commas")
    c.add_argument("run_b", help="candidate run id")
    add_data_dir(c)
    add_json(c)
    c.add_argument("--metrics", default="ttft,itl,e2e", help="comma-separated: ttft, itl, tpot, e2e")
    c.add_argument("--percentiles", default="50,90,99", help="comma-separated percentiles (default 50,90,99)")
    c.add_argument("--phase", help="compare one phase present in both runs (default: all non-warm-up requests)")
    c.add_argument("--alpha", type=float, default=0.05, help="family-wise false-alarm rate over the table")
    c.add_argument(
        "--min-effect", type=float, default=0.05, help="smallest relative change that counts (default 0.05 = 5%%)"
    )
    c.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    c.add_argument(
        "--allow-different",
        default="",
        metavar="KINDS",
        help="compare although the workloads differ in these ways (comma-separated: model, api, sampling, prompt, "
        "output, load, or all); the differences are printed beside the verdict",
    )
    return c


def run(a: argparse.Namespace) -> int:
    from perfkit.analysis.compare import compare_runs, compare_to_history
    from perfkit.cli.tables import print_comparison
    from perfkit.query.catalog import Catalog

    metrics = tuple(m.strip() if m.strip().endswith("_ms") else m.strip() + "_ms" for m in a.metrics.split(","))
    try:
        qs = tuple(float(q) / 100 for q in a.percentiles.split(","))
    except ValueError:
        raise ConfigError(
            f"--percentiles {a.percentiles!r} must be numbers separated by commas, e.g. 50,90,99"
        ) from None
    allow = tuple(k.strip() for k in a.allow_different.split(",") if k.strip())
    with Catalog(a.data_dir) as cat:
        try:
            if "," in a.run_a:
                res = compare_to_history(
                    cat,
                    [r.strip() for r in a.run_a.split(",") if r.strip()],
                    a.run_b,
                    metrics=metrics,
                    qs=qs,
                    phase=a.phase,
                    alpha=a.alpha,
                    min_effect=a.min_effect,
                    allow=allow,
                )
            else:
                res = compare_runs(
                    cat,
                    a.run_a,
                    a.run_b,
                    metrics=metrics,
                    qs=qs,
                    phase=a.phase,
                    alpha=a.alpha,
                    min_effect=a.min_effect,
                    seed=a.seed,
                    allow=allow,
                )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        from perfkit.analysis.serverview import prefix_cache_warning

        cache_note = prefix_cache_warning(cat, res.run_a, res.run_b) if "," not in a.run_a else None
    if a.json:
        from perfkit.cli.common import print_json

        print_json(
            {
                "baseline": res.run_a,
                "candidate": res.run_b,
                "verdict": res.verdict,
                "regressed": bool(res.regressed),
                "table": res.table,
                "workload_differences_allowed": [str(d) for d in res.differences],
                "prefix_cache_warning": cache_note,
            }
        )
    else:
        print_comparison(res)
        if cache_note:
            print(f"warning: {cache_note}")
    return ExitCode.CHECK_FAILED if res.regressed else ExitCode.OK
