"""Simulator scenarios built to have one known bottleneck each: ground truth for attribution.

Each preset is a simulator configuration and one open-loop phase (and, for ``client-bound``, a
client starved of CPU) whose limit is known by construction:

================================  ========================================================================
``queue-bound``                   the default engine at 40 req/s, past its knee (about 29 req/s for these
                                  lengths) with a KV cache large enough for a full batch: requests queue
``KV-capacity-bound``             a KV cache of 6,144 tokens for 512-token prompts and 256-token answers
                                  at 8 req/s: sequences are preempted and recomputed
``power/thermal-throttled``       the GPU's SM clock held at a third (a ``throttle`` event for the whole
                                  run) at a light 6 req/s
``client-bound``                  a light 10 req/s, but the client's event loop is blocked for 40 ms in
                                  every 100 (synchronous work on the loop), so it sends and reads late
``front-end-bound``               an API server that takes 100 ms per request, one at a time (10 req/s at
                                  most), in front of a light engine, at 15 req/s with 32-token answers:
                                  requests wait before the engine sees them
``prefill-compute-bound``         6,000-token prompts with 4-token answers at 2 req/s: each prompt takes
                                  two full prefill chunks, longer than its few decode steps
``error-bound``                   an error burst answering 30 % of the requests with HTTP 503, at 6 req/s
``decode-bound``                  the control: a light 4 req/s with nothing wrong; requests spend their
                                  time generating tokens
================================  ========================================================================

:func:`run_preset` records one of them; ``bench/attribution.py`` scores the verdicts.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from perfkit.aio import run_sync
from perfkit.client.endpoint import Endpoint
from perfkit.client.runner import PhaseSpec
from perfkit.record.telemetry import TelemetrySpec
from perfkit.sim.config import SimConfig, SimEvent
from perfkit.sim.process import SimProcess

__all__ = ["BOTTLENECK_PRESETS", "BottleneckPreset", "run_preset"]


@dataclass(frozen=True)
class BottleneckPreset:
    """A simulator config, a load, and whether the client is starved."""

    config: dict = field(default_factory=dict)
    rate: float = 4.0
    prompt_tokens: int = 256
    output_tokens: int = 128
    throttle: float | None = None
    error_rate: float | None = None
    starve_client: bool = False


BOTTLENECK_PRESETS: dict[str, BottleneckPreset] = {
    "queue-bound": BottleneckPreset(rate=40.0),
    "KV-capacity-bound": BottleneckPreset(
        config={"kv_capacity_tokens": 6144}, rate=8.0, prompt_tokens=512, output_tokens=256
    ),
    "power/thermal-throttled": BottleneckPreset(rate=6.0, throttle=3.0),
    "client-bound": BottleneckPreset(rate=10.0, starve_client=True),
    "front-end-bound": BottleneckPreset(config={"frontend_ms": 100.0}, rate=15.0, output_tokens=32),
    "prefill-compute-bound": BottleneckPreset(rate=2.0, prompt_tokens=6000, output_tokens=4),
    "error-bound": BottleneckPreset(rate=6.0, error_rate=0.3),
    "decode-bound": BottleneckPreset(rate=4.0),
}


class _Starver:
    """Blocks the client's event loop for ``block_s`` in every ``period_s``: synchronous work done on the loop
    (parsing, logging, a notebook reading the run as it grows) that leaves the client too little time."""

    def __init__(self, block_s: float = 0.04, period_s: float = 0.1) -> None:
        self.block_s, self.period_s = block_s, period_s
        self.handle: asyncio.TimerHandle | None = None

    def start(self, _runner: object = None, _run_id: str = "") -> None:
        loop = asyncio.get_running_loop()

        def block() -> None:
            end = time.perf_counter() + self.block_s
            while time.perf_counter() < end:
                pass
            self.handle = loop.call_later(self.period_s - self.block_s, block)

        self.handle = loop.call_later(self.period_s, block)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()


def run_preset(name: str, data_dir: str | Path, *, seed: int = 0, duration_s: float = 10.0) -> str:
    """Record one preset's run (its own simulator) in ``data_dir``; returns the run id, tagged ``bottleneck=NAME``."""
    from perfkit.record.run import record_run

    if name not in BOTTLENECK_PRESETS:
        raise ValueError(f"no bottleneck preset {name!r}; the presets are {', '.join(BOTTLENECK_PRESETS)}")
    p = BOTTLENECK_PRESETS[name]
    events: tuple[SimEvent, ...] = (SimEvent("throttle", 0.0, 1e6, factor=p.throttle),) if p.throttle else ()
    if p.error_rate:
        events += (SimEvent("error_burst", 0.0, 1e6, rate=p.error_rate, status=503),)
    cfg = SimConfig(seed=seed, events=events, **p.config)
    phases = [
        PhaseSpec("warmup", duration_s=1.0, concurrency=2, prompt_tokens=64, output_tokens=16, warmup=True),
        PhaseSpec(
            "load",
            duration_s=duration_s,
            rate=p.rate,
            arrival="poisson",
            prompt_tokens=p.prompt_tokens,
            output_tokens=p.output_tokens,
        ),
    ]
    starver = _Starver() if p.starve_client else None

    async def go():
        try:
            return await record_run(
                Endpoint(sim.url),
                phases,
                data_dir,
                seed=seed,
                label=f"bottleneck preset: {name}",
                tags={"bottleneck": name},
                drain_timeout_s=15.0,
                telemetry=TelemetrySpec(gpu="sim", metrics_interval_s=0.5, server_pid=sim.pid),
                notify=lambda _line: None,
                on_start=starver.start if starver else None,
            )
        finally:
            if starver:
                starver.stop()

    with SimProcess(cfg) as sim:
        res = run_sync(go())
    return res.run_id
