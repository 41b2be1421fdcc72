"""Simulated model variants: one model at several precisions, each faster and a little worse.

Quantising weights shrinks what every decode step must read from memory, so memory-bound decode
steps get cheaper, and the freed memory holds more KV cache; activation quantisation (W8A8) also
speeds up prefill, while weight-only 4-bit kernels pay a dequantisation cost there.  Quality drops a
little with each halving of precision.  The figures below are the simulator's *assumptions*, of the
size reported for 7-8B models (for example int8 W8A8 within about 1 % of fp16 accuracy and 4-bit
weight-only within a few percent, Kurtic et al., "Give Me BF16 or Give Me Death? Accuracy-Performance
Trade-Offs in LLM Quantization", 2024); they give the trade-off analyses a curve with a known shape,
not a measurement of any model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from perfkit.errors import ConfigError
from perfkit.sim.config import SimConfig

__all__ = ["SIM_VARIANTS", "SimVariant", "variant_config"]


@dataclass(frozen=True)
class SimVariant:
    """Multipliers of the fp16 engine's costs and capacity, and the variant's quality (simulated)."""

    step_base: float
    prefill: float
    decode: float
    kv_capacity: float
    quality: float
    quality_stderr: float


SIM_VARIANTS: dict[str, SimVariant] = {
    "fp16": SimVariant(1.00, 1.00, 1.00, 1.0, 0.642, 0.0040),
    "int8": SimVariant(0.70, 0.80, 0.90, 1.4, 0.637, 0.0040),
    "int4": SimVariant(0.48, 1.05, 0.85, 1.8, 0.611, 0.0041),
}


def variant_config(name: str, base: SimConfig | None = None, **overrides: Any) -> SimConfig:
    """``base`` (default :class:`SimConfig`) turned into variant ``name``: costs, KV capacity, quality, model name.

    Raises
    ------
    ConfigError
        When ``name`` is not one of :data:`SIM_VARIANTS`.
    """
    if name not in SIM_VARIANTS:
        raise ConfigError(f"simulated variant {name!r} is not one of {', '.join(SIM_VARIANTS)}")
    v, b = SIM_VARIANTS[name], base or SimConfig()
    kv = int(b.kv_capacity_tokens * v.kv_capacity) // b.kv_block_tokens * b.kv_block_tokens
    model = b.model if name == "fp16" else f"{b.model}-{name}"
    cfg = dataclasses.replace(
        b,
        model=model,
        step_base_ms=b.step_base_ms * v.step_base,
        prefill_ms_per_token=b.prefill_ms_per_token * v.prefill,
        decode_ms_per_seq=b.decode_ms_per_seq * v.decode,
        kv_capacity_tokens=kv,
        variant=name,
        quality=v.quality,
        quality_stderr=v.quality_stderr,
        quality_task="simulated accuracy (5-shot, 14k questions)",
    )
    return dataclasses.replace(cfg, **overrides) if overrides else cfg
