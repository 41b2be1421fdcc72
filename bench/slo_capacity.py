"""Does the maximum load under an SLO, read from one sweep of the simulator, bracket the true capacity?

Prints figures; not a test.  Each seed runs one rate sweep over real sockets against ``perfkit sim``
(default engine, 256-token prompts, 128-token answers, 10 s a step) and reads the highest rate at which
TTFT p90 stays within 250 ms, with its 95% bracket (:func:`perfkit.analysis.max_sustainable_load`).  The
truth is a dense sweep of the same engine replayed offline (rates 0.5 req/s apart, 20 Poisson schedules
a rate, :func:`perfkit.sim.truth.dense_sweep`).

    python bench/slo_capacity.py [--seeds 5] [--rates 12,18,22,26,30]

The last line reads ``capacity truth=… bracket_coverage=… estimate_mae=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

import numpy as np

import perfkit
from perfkit.analysis.slo import max_sustainable_load
from perfkit.client import Endpoint
from perfkit.record import record_run
from perfkit.sim import SimConfig, SimProcess
from perfkit.sim.truth import dense_sweep
from perfkit.workload.scenario import parse_scenario


def one_sweep(seed: int, rates: list[float], step_s: float, spec: str) -> tuple[float | None, float, float]:
    scen = parse_scenario(
        {
            "defaults": {"prompt_tokens": 256, "output_tokens": 128},
            "phases": [{"name": "sw", "load": {"sweep": {"rates": rates, "step_duration_s": step_s}}}],
        }
    )
    with tempfile.TemporaryDirectory() as d, SimProcess(SimConfig(seed=seed)) as sim:
        res = asyncio.run(record_run(Endpoint(sim.url), list(scen.phases), d, seed=seed))
        with perfkit.open(d) as cat:
            cap = max_sustainable_load(cat, res.run_id, spec)
    print(f"seed {seed}: {cap}", flush=True)
    return cap.estimate, cap.lo, cap.hi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rates", default="12,18,22,26,30")
    ap.add_argument("--step-s", type=float, default=10.0)
    a = ap.parse_args()
    rates = [float(r) for r in a.rates.split(",")]
    truth = dense_sweep(
        SimConfig(),
        np.arange(16, 32.01, 0.5),
        q=0.9,
        limit_ms=250,
        duration_s=a.step_s,
        prompt_tokens=256,
        output_tokens=128,
        seeds=20,
    )
    print(truth)
    rows = [one_sweep(s, rates, a.step_s, "ttft_p90<=250ms") for s in range(a.seeds)]
    cov = np.mean([lo <= truth.capacity <= hi for _, lo, hi in rows])
    errs = [abs(e - truth.capacity) for e, _, _ in rows if e is not None]
    width = np.median([hi - lo for _, lo, hi in rows])
    print(f"median bracket width {width:g} req/s (levels {a.rates})")
    print(f"capacity truth={truth.capacity:.2f} bracket_coverage={cov:.2f} estimate_mae={np.mean(errs):.2f}")


if __name__ == "__main__":
    main()
