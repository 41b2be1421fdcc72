"""``perfkit demo``: the whole pipeline on the simulated endpoint, in about a minute.

Starts the simulator in its own process, runs four phases (warm-up, light
load, heavy load near the knee, and moderate load while the simulated GPU's
clock is throttled to a third, so every step takes 3× as long), records
SIMULATED GPU counters, the simulator's ``/metrics`` and the host beside the
requests, writes Parquet, prints the summary, writes the HTML report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from perfkit.aio import run_sync
from perfkit.client.endpoint import Endpoint
from perfkit.client.runner import PhaseSpec
from perfkit.record.telemetry import TelemetrySpec
from perfkit.sim.config import SimConfig, SimEvent
from perfkit.sim.process import SimProcess
from perfkit.workload.content import Slo, UserClass

__all__ = ["DEMO_VARIANTS", "DemoPlan", "demo_phases", "run_variants", "variant_phases"]

DEMO_VARIANTS = ("fp16", "int8", "int4")


@dataclass(frozen=True)
class DemoPlan:
    """Durations (s) and rates (requests/s) of the demo's phases."""

    warmup_s: float = 3.0
    light_s: float = 6.0
    steady_s: float = 60.0
    throttle_s: float = 12.0
    light_rate: float = 4.0
    # the headline phase: ~3,600 short requests below the knee, enough for a TTFT and ITL p99 with an interval at
    # their own autocorrelation (a p99 needs about 300 effectively independent requests, and the decision is
    # made on an upper bound of the autocorrelation time, which a tail's few exceedances leave wide)
    steady_rate: float = 60.0
    throttle_rate: float = 10.0
    throttle_factor: float = 3.0
    output_tokens: int = 16
    variant_step_s: float = 8.0
    variant_rates: tuple[float, ...] = (18.0, 28.0, 38.0)

    def scaled(self, k: float) -> DemoPlan:
        """The same plan with every duration multiplied by ``k`` (a variant's steps no shorter than 8 s)."""
        return replace(
            self,
            warmup_s=self.warmup_s * k,
            light_s=self.light_s * k,
            steady_s=self.steady_s * k,
            throttle_s=self.throttle_s * k,
            # a variant's levels need ~100 requests each for a p90 with an interval: no shorter than 8 s
            variant_step_s=max(8.0, self.variant_step_s * k),
        )


def demo_phases(plan: DemoPlan) -> tuple[list[PhaseSpec], list[SimEvent]]:
    """The demo's phases, and the simulator event that throttles its GPU (times from run start)."""
    # one class of chat users with an interactive SLO: TTFT within 100 ms, 30 ms per output token
    slo = Slo(ttft_ms=100, tpot_ms=30)
    chat = (UserClass("chat", prompt_tokens="lognormal:256,0.4", output_tokens=plan.output_tokens, slo=slo),)
    phases = [
        PhaseSpec("warmup", duration_s=plan.warmup_s, concurrency=2, prompt_tokens=256, output_tokens=64, warmup=True),
        PhaseSpec("light", duration_s=plan.light_s, rate=plan.light_rate, arrival="poisson", classes=chat),
        PhaseSpec("steady", duration_s=plan.steady_s, rate=plan.steady_rate, arrival="poisson", classes=chat),
        PhaseSpec("throttle", duration_s=plan.throttle_s, rate=plan.throttle_rate, arrival="poisson", classes=chat),
    ]
    start = plan.warmup_s + plan.light_s + plan.steady_s
    event = SimEvent("throttle", start_s=start, end_s=start + plan.throttle_s, factor=plan.throttle_factor)
    return phases, [event]


async def run_demo(
    data_dir: Path,
    plan: DemoPlan,
    sim: SimProcess,
    seed: int = 0,
    on_start=None,
    telemetry: TelemetrySpec | None = None,
    notify=None,
):
    """Schedule the throttle on ``sim`` and record the demo run; returns the RunResult.

    Telemetry defaults to the simulator's SIMULATED GPU counters, its ``/metrics`` and
    the host, with the simulator's process tree sampled as the server.
    """
    from perfkit.record.run import record_run

    phases, events = demo_phases(plan)
    simulator: dict[str, Any] = {
        "config": sim.config.to_dict(),
        "events": [asdict(e) for e in events],
        "epoch_ns": None,
        "url": sim.url,
    }

    def start(runner: Any, run_id: str) -> None:
        # the events count from the moment the traffic starts (a local call of a few ms): scheduled before the
        # run's set-up, the throttle would begin before the phase it belongs to and spill into the one before
        simulator["epoch_ns"] = sim.schedule_events(events)
        if on_start is not None:
            on_start(runner, run_id)

    return await record_run(
        Endpoint(sim.url),
        phases,
        data_dir,
        seed=seed,
        label="perfkit demo (simulated endpoint)",
        simulator=simulator,
        on_start=start,
        drain_timeout_s=30.0,
        telemetry=telemetry or TelemetrySpec(gpu="sim", metrics_interval_s=0.5, server_pid=sim.pid),
        notify=notify,
    )


def default_sim_config(seed: int = 0) -> SimConfig:
    return SimConfig(seed=seed)


def variant_phases(plan: DemoPlan) -> list[PhaseSpec]:
    """A short rate sweep (one Poisson phase per rate) measuring one model variant."""
    warm = PhaseSpec(
        "warmup",
        duration_s=max(0.5, plan.variant_step_s / 5),
        concurrency=4,
        prompt_tokens=256,
        output_tokens=64,
        warmup=True,
    )
    return [warm] + [
        PhaseSpec(
            f"rate={r:g}",
            duration_s=plan.variant_step_s,
            rate=r,
            arrival="poisson",
            prompt_tokens=256,
            output_tokens=128,
        )
        for r in plan.variant_rates
    ]


def run_variants(
    data_dir: Path, plan: DemoPlan, seed: int = 0, variants: tuple[str, ...] = DEMO_VARIANTS, notify=None
) -> list[str]:
    """Measure each simulated model variant in turn (its own simulator), tagged with its name; returns run ids.

    Each variant's simulator states its quality in its config, which the manifest keeps, so
    :func:`perfkit.analysis.tradeoffs` can draw the cost-quality curve from these runs alone.
    """
    from perfkit.record.run import record_run
    from perfkit.sim.variants import variant_config

    ids = []
    for name in variants:
        with SimProcess(variant_config(name, SimConfig(seed=seed))) as sim:
            res = run_sync(
                record_run(
                    Endpoint(sim.url),
                    variant_phases(plan),
                    data_dir,
                    seed=seed,
                    label=f"perfkit demo: model variant {name} (simulated)",
                    tags={"variant": name, "workload": "chat"},
                    telemetry=TelemetrySpec(gpu="sim", metrics_interval_s=0.5, host=False),
                    notify=notify,
                )
            )
        ids.append(res.run_id)
    return ids
