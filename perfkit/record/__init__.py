"""Recording a run: the composition of a transport, the load runner, the side channels and one sink.

Everything below this package is a stage with one job (:mod:`perfkit.client` sends, :mod:`perfkit.collect`
samples, :mod:`perfkit.store` writes); this package wires them into a run: :func:`record_run` in one
process, :class:`WorkerGroup` over several processes, :class:`RayGroup` over a Ray cluster's nodes
(shares run separately are joined by :func:`perfkit.store.merge.merge_shares`), :class:`Telemetry` for the side
channels, and :class:`ProcessSampler` for a sampler that needs a process of its own.

The names load on first use: a scraper process (``python -m perfkit.record.sampler_process``) imports this
package first, and should not pay for the load generator it does not run (about 0.35 s of its start).
"""

from __future__ import annotations

import typing
from importlib import import_module
from typing import Any

if typing.TYPE_CHECKING:  # for type checkers and IDEs; at run time these load on first use
    from perfkit.record.cluster import RayGroup
    from perfkit.record.run import RunResult, record_run
    from perfkit.record.sampler_process import ProcessSampler
    from perfkit.record.shares import Share
    from perfkit.record.telemetry import GPU_MODES, Telemetry, TelemetrySpec
    from perfkit.record.workers import WorkerGroup, check_partitionable

__all__ = [
    "GPU_MODES",
    "ProcessSampler",
    "RayGroup",
    "RunResult",
    "Share",
    "Telemetry",
    "TelemetrySpec",
    "WorkerGroup",
    "check_partitionable",
    "record_run",
]

_LAZY: dict[str, str] = {
    "GPU_MODES": "perfkit.record.telemetry",
    "ProcessSampler": "perfkit.record.sampler_process",
    "RayGroup": "perfkit.record.cluster",
    "RunResult": "perfkit.record.run",
    "Share": "perfkit.record.shares",
    "Telemetry": "perfkit.record.telemetry",
    "TelemetrySpec": "perfkit.record.telemetry",
    "WorkerGroup": "perfkit.record.workers",
    "check_partitionable": "perfkit.record.workers",
    "record_run": "perfkit.record.run",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perfkit.record' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
