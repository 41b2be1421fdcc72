"""Side channels on the requests' clock: GPU counters (NVML or simulated), server ``/metrics``, the host.

Each is a :class:`~perfkit.collect.base.Source` read by a :class:`~perfkit.collect.base.Sampler`
thread that writes through the run's :class:`~perfkit.rows.Sink`; :mod:`perfkit.record` composes them.
"""

from perfkit.collect.base import Sampler, SamplerStats, Source
from perfkit.collect.host import HostSource, LoopLagMonitor
from perfkit.collect.nvml import GpuDevice, NvmlSource, NvmlUnavailable, load_nvml
from perfkit.collect.prometheus import COMMON_NAMES, MetricsState, PrometheusSource, detect_engine, parse_metrics
from perfkit.collect.simgpu import SimGpuSource

__all__ = [
    "COMMON_NAMES",
    "GpuDevice",
    "HostSource",
    "LoopLagMonitor",
    "MetricsState",
    "NvmlSource",
    "NvmlUnavailable",
    "PrometheusSource",
    "Sampler",
    "SamplerStats",
    "SimGpuSource",
    "Source",
    "detect_engine",
    "load_nvml",
    "parse_metrics",
]
