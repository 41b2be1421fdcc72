"""Recording a run: the composition of a transport, the load runner, the side channels and one sink.

Everything below this package is a stage with one job (:mod:`perfkit.client` sends, :mod:`perfkit.collect`
samples, :mod:`perfkit.store` writes); this package wires them into a run: :func:`record_run` in one
process, :class:`WorkerGroup` over several processes, :class:`RayGroup` over a Ray cluster's nodes
(shares run separately are joined by :func:`perfkit.store.merge_shares`), :class:`Telemetry` for the side
channels, and :class:`ProcessSampler` for a sampler that needs a process of its own.
"""

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
