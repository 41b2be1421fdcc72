"""``perfkit demo``: the whole pipeline on the simulated endpoint, in about a minute.

Starts the simulator in its own process, runs four phases (warm-up, light
load, heavy load near the knee, and moderate load while the simulated GPU's
clock is throttled to a third, so every step takes 3× as long), records
SIMULATED GPU counters, the simulator's ``/metrics`` and the host beside the
requests, writes Parquet, prints the summary, writes the HTML report.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path

from perfkit.client.openai import Endpoint
from perfkit.client.runner import PhaseSpec
from perfkit.collect.telemetry import TelemetrySpec
from perfkit.sim.config import SimConfig, SimEvent
from perfkit.sim.process import SimProcess
from perfkit.workload.content import Slo, UserClass

__all__ = ["DemoPlan", "demo_phases"]


@dataclass(frozen=True)
class DemoPlan:
    """Durations (s) and rates (requests/s) of the demo's phases."""

    warmup_s: float = 3.0
    light_s: float = 15.0
    heavy_s: float = 15.0
    throttle_s: float = 15.0
    light_rate: float = 4.0
    heavy_rate: float = 20.0
    throttle_rate: float = 6.0
    throttle_factor: float = 3.0

    def scaled(self, k: float) -> DemoPlan:
        """The same plan with every duration multiplied by ``k``."""
        return DemoPlan(self.warmup_s * k, self.light_s * k, self.heavy_s * k, self.throttle_s * k,
                        self.light_rate, self.heavy_rate, self.throttle_rate, self.throttle_factor)


def demo_phases(plan: DemoPlan) -> tuple[list[PhaseSpec], list[SimEvent]]:
    """The demo's phases, and the simulator event that throttles its GPU (times from run start)."""
    # one class of chat users with an interactive SLO: TTFT within 100 ms, 30 ms per output token
    chat = (UserClass("chat", prompt_tokens="lognormal:256,0.4", output_tokens=128,
                      slo=Slo(ttft_ms=100, tpot_ms=30)),)
    phases = [
        PhaseSpec("warmup", duration_s=plan.warmup_s, concurrency=2, prompt_tokens=256, output_tokens=64,
                  warmup=True),
        PhaseSpec("light", duration_s=plan.light_s, rate=plan.light_rate, arrival="poisson", classes=chat),
        PhaseSpec("heavy", duration_s=plan.heavy_s, rate=plan.heavy_rate, arrival="poisson", classes=chat),
        PhaseSpec("throttle", duration_s=plan.throttle_s, rate=plan.throttle_rate, arrival="poisson",
                  classes=chat),
    ]
    start = plan.warmup_s + plan.light_s + plan.heavy_s
    event = SimEvent("throttle", start_s=start, end_s=start + plan.throttle_s, factor=plan.throttle_factor)
    return phases, [event]


async def run_demo(data_dir: Path, plan: DemoPlan, sim: SimProcess, seed: int = 0, on_start=None,  # type: ignore[no-untyped-def]
                   telemetry: TelemetrySpec | None = None, notify=None):
    """Schedule the throttle on ``sim`` and record the demo run; returns the RunResult.

    Telemetry defaults to the simulator's SIMULATED GPU counters, its ``/metrics`` and
    the host, with the simulator's process tree sampled as the server.
    """
    from perfkit.recorder import record_run

    phases, events = demo_phases(plan)
    epoch = await asyncio.get_running_loop().run_in_executor(None, sim.schedule_events, events)  # blocking HTTP
    simulator = {"config": sim.config.to_dict(), "events": [asdict(e) for e in events], "epoch_ns": epoch,
                 "url": sim.url}
    return await record_run(Endpoint(sim.url), phases, data_dir, seed=seed, label="perfkit demo (simulated endpoint)",
                            simulator=simulator, on_start=on_start, drain_timeout_s=30.0,
                            telemetry=telemetry or TelemetrySpec(gpu="sim", metrics_interval_s=0.5, server_pid=sim.pid),
                            notify=notify)


def default_sim_config(seed: int = 0) -> SimConfig:
    return SimConfig(seed=seed)
