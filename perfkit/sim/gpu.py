"""A SIMULATED GPU whose counters follow the simulated engine's state.

It gives the telemetry path, the demo and the tests something to record on a
machine with no GPU; every reading it makes is labelled simulated
(``source = 'sim'`` in ``gpu_samples``, ``simulated: true`` at ``/sim/gpu``).
The readings use NVML's meanings and perfkit's units:

* ``gpu_util_pct``: share of the elapsed time the engine spent in steps (NVML:
  time a kernel was running), 0..100;
* ``mem_used_bytes``: weights + a fixed activation reserve + the KV blocks in
  use (a real vLLM preallocates its KV pool, so its NVML memory is flat; this
  model shows what the pool holds instead);
* ``power_w``: idle + (max − idle) · utilisation · intensity · (clock / max clock)²,
  where intensity = 0.3 + 0.7 · min(1, tokens processed per busy second /
  ``saturating_tokens_per_s``): a busy GPU decoding a small batch draws far
  less than one running large prefills; ``energy_j`` is its integral (NVML's
  total-energy counter); ``sm_active_pct`` is utilisation · intensity;
* ``sm_clock_mhz``: the maximum clock divided by the factor of any active
  ``throttle`` event, whose clock-event reasons read HW slowdown + HW thermal;
* ``temperature_c``: first order towards a level set by power (time constant
  ``thermal_tau_s``);
* PCIe throughput from prompt and generated tokens (4 bytes each way per token
  id, the order of magnitude of what an engine copies per token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perfkit.sim.engine import Engine, EventSchedule

__all__ = ["SimGpu", "SimGpuSpec"]

_HW_SLOWDOWN, _HW_THERMAL, _IDLE = 0x08, 0x40, 0x01


@dataclass(frozen=True, slots=True)
class SimGpuSpec:
    """Constants of the simulated GPU (an H100-like part by default)."""

    name: str = "SIMULATED GPU (perfkit-sim, H100-like)"
    mem_total_bytes: int = 80 * 2**30
    weights_bytes: int = 14 * 2**30
    reserve_bytes: int = 2 * 2**30
    kv_bytes_per_token: int = 128 * 1024
    idle_power_w: float = 70.0
    max_power_w: float = 700.0
    sm_clock_max_mhz: float = 1980.0
    mem_clock_mhz: float = 2619.0
    temp_idle_c: float = 32.0
    temp_full_c: float = 78.0
    thermal_tau_s: float = 10.0
    saturating_tokens_per_s: float = 40_000.0


class SimGpu:
    """Integrates the engine's activity into NVML-like counters between readings.

    Parameters
    ----------
    engine : Engine
    schedule : EventSchedule
        Where ``throttle`` events are found.
    t0_ns : int
        Start of the first interval, ns (monotonic).
    spec : SimGpuSpec
    """

    def __init__(self, engine: Engine, schedule: EventSchedule, t0_ns: int, spec: SimGpuSpec | None = None) -> None:
        self.engine = engine
        self.schedule = schedule
        self.spec = spec or SimGpuSpec()
        self.t_ns = t0_ns
        self.busy_ns = engine.busy_ns_total
        self.prompt_tokens = engine.prompt_tokens_total
        self.prefill_tokens = engine.prefill_tokens_total
        self.gen_tokens = engine.generation_tokens_total
        self.energy_j = 0.0
        self.temperature_c = self.spec.temp_idle_c
        self.util = 0.0
        self.intensity = 0.3

    def read(self, now_ns: int) -> dict[str, Any]:
        """Advance to ``now_ns`` and return the counters (a mapping of metric → value)."""
        s, e = self.spec, self.engine
        dt_s = max(now_ns - self.t_ns, 0) / 1e9
        factor = self.schedule.throttle_at(now_ns)
        clock = s.sm_clock_max_mhz / factor
        busy_s = (e.busy_ns_total - self.busy_ns) / 1e9
        tokens = (e.prefill_tokens_total - self.prefill_tokens) + (e.generation_tokens_total - self.gen_tokens)
        if dt_s > 0:
            self.util = min(1.0, max(0.0, busy_s / dt_s))
            self.intensity = 0.3 + 0.7 * min(1.0, tokens / busy_s / s.saturating_tokens_per_s) if busy_s > 0 else 0.3
        active = self.util * self.intensity
        power = s.idle_power_w + (s.max_power_w - s.idle_power_w) * active * (clock / s.sm_clock_max_mhz) ** 2
        self.energy_j += power * dt_s
        target = s.temp_idle_c + (s.temp_full_c - s.temp_idle_c) * (power - s.idle_power_w) / (
            s.max_power_w - s.idle_power_w
        )
        if dt_s > 0:
            self.temperature_c += (target - self.temperature_c) * min(1.0, dt_s / s.thermal_tau_s)
        rx = (e.prompt_tokens_total - self.prompt_tokens) * 4 / dt_s if dt_s > 0 else 0.0
        tx = (e.generation_tokens_total - self.gen_tokens) * 4 / dt_s if dt_s > 0 else 0.0
        kv_tokens = (e.total_blocks - e.free_blocks) * e.cfg.kv_block_tokens
        reasons = (_HW_SLOWDOWN | _HW_THERMAL) if factor > 1 else (_IDLE if self.util == 0 else 0)
        self.t_ns, self.busy_ns = now_ns, e.busy_ns_total
        self.prompt_tokens, self.gen_tokens = e.prompt_tokens_total, e.generation_tokens_total
        self.prefill_tokens = e.prefill_tokens_total
        return {
            "gpu_util_pct": 100 * self.util,
            "mem_util_pct": 100 * self.util * (0.3 + 0.5 * e.kv_usage),
            "mem_used_bytes": float(s.weights_bytes + s.reserve_bytes + kv_tokens * s.kv_bytes_per_token),
            "mem_total_bytes": float(s.mem_total_bytes),
            "power_w": power,
            "power_instant_w": power,
            "energy_j": self.energy_j,
            "sm_clock_mhz": clock,
            "mem_clock_mhz": s.mem_clock_mhz,
            "temperature_c": self.temperature_c,
            "clocks_event_reasons": float(reasons),
            "throttle_thermal": float(factor > 1),
            "throttle_power": 0.0,
            "throttle_hw_slowdown": float(factor > 1),
            "pcie_rx_bytes_per_s": rx,
            "pcie_tx_bytes_per_s": tx,
            "sm_active_pct": 100 * active,
        }
