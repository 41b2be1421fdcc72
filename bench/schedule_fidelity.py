"""How closely does perfkit keep its send schedule?  Prints figures; not a test.

Replays the bundled trace (scenarios/inputs/azure_style_trace.csv) against the
simulator at 1x, 2x and 4x speed, and runs a Poisson phase with almost no
streaming, then reports per configuration: requests, mean streams in flight,
schedule lag (actual - intended send) p50/p99/max, and the error of the
inter-arrival gaps against the schedule (p50/p99).

    python bench/schedule_fidelity.py [--quick]

The last line reads ``trace_x4 gap_err_p99_ms=... lag_p99_ms=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import numpy as np

import perfkit
from perfkit.client import Endpoint, PhaseSpec
from perfkit.record import record_run
from perfkit.sim import SimProcess
from perfkit.workload.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[1]


def measure(url: str, phases: list[PhaseSpec]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        res = asyncio.run(record_run(Endpoint(url), phases, tmp, drain_timeout_s=30))
        with perfkit.open(tmp) as cat:
            rows = np.array(
                cat.sql(
                    f"SELECT intended_ns, sent_ns, end_ns FROM requests WHERE run_id = "
                    f"'{res.run_id}' ORDER BY intended_ns"
                ).fetchall(),
                dtype=float,
            )
    lag = (rows[:, 1] - rows[:, 0]) / 1e6
    gap = np.abs(np.diff(rows[:, 1]) - np.diff(rows[:, 0])) / 1e6
    span = rows[:, 2].max() - rows[:, 1].min()
    streams = float(np.sum(rows[:, 2] - rows[:, 1]) / span)
    return {
        "requests": len(rows),
        "streams": streams,
        "lag_p50": np.median(lag),
        "lag_p99": np.percentile(lag, 99),
        "lag_max": lag.max(),
        "gap_p50": np.median(gap),
        "gap_p99": np.percentile(gap, 99),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4x and the Poisson check only")
    a = ap.parse_args()
    speeds = [0.25] if a.quick else [1.0, 0.5, 0.25]
    results = {}
    with SimProcess() as sim:
        for scale in speeds:
            scen = parse_scenario(
                {
                    "phases": [
                        {"name": "replay", "load": {"trace": "inputs/azure_style_trace.csv", "time_scale": scale}}
                    ]
                },
                "bench",
                ROOT / "scenarios",
            )
            results[f"trace_x{1 / scale:g}"] = measure(sim.url, list(scen.phases))
        results["poisson50_1tok"] = measure(
            sim.url, [PhaseSpec("p", duration_s=15, rate=50, prompt_tokens=32, output_tokens=1)]
        )
    print(
        f"{'configuration':<16} {'requests':>8} {'streams':>8} {'lag p50':>8} {'lag p99':>8} {'lag max':>8} "
        f"{'gap p50':>8} {'gap p99':>8}   (ms)"
    )
    for name, r in results.items():
        print(
            f"{name:<16} {r['requests']:>8} {r['streams']:>8.1f} {r['lag_p50']:>8.3f} {r['lag_p99']:>8.3f} "
            f"{r['lag_max']:>8.3f} {r['gap_p50']:>8.3f} {r['gap_p99']:>8.3f}"
        )
    r = results["trace_x4"]
    print(f"trace_x4 gap_err_p99_ms={r['gap_p99']:.3f} lag_p99_ms={r['lag_p99']:.3f}")


if __name__ == "__main__":
    main()
