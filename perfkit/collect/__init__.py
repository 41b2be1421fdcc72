"""Side channels on the requests' clock: GPU counters (NVML or simulated), server ``/metrics``, the host."""

from perfkit.collect.base import Sampler, SamplerStats, TableBuffer
from perfkit.collect.host import HostSource, LoopLagMonitor
from perfkit.collect.nvml import GpuDevice, NvmlSource, NvmlUnavailable, load_nvml
from perfkit.collect.prometheus import COMMON_NAMES, MetricsState, PrometheusSource, detect_engine, parse_metrics
from perfkit.collect.simgpu import SimGpuSource
from perfkit.collect.telemetry import GPU_MODES, Telemetry, TelemetrySpec

__all__ = [
    "COMMON_NAMES",
    "GPU_MODES",
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
    "TableBuffer",
    "Telemetry",
    "TelemetrySpec",
    "detect_engine",
    "load_nvml",
    "parse_metrics",
]
