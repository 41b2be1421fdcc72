"""GPU counters through NVML (``nvidia-ml-py``, imported as ``pynvml``): the only module that imports it.

:class:`NvmlSource` takes the ``nvml`` module as a parameter (a seam: tests
pass a fake that plays NotSupported counters and a GPU lost mid-run).  Two
tiers share one source:

* the **fast** tier (default 10 Hz): GPU and memory utilisation, memory
  used/total, power (average and, where the driver has it, instantaneous),
  the total-energy counter, SM and memory clocks, temperature, and the
  clock-event ("throttle") reasons with their thermal/power/hardware flags;
* the **slow** tier (default 1 Hz) for calls that cost more: PCIe throughput
  (NVML itself samples it over ~20 ms), per-process memory, and on Hopper and
  later the GPM metrics (SM activity, tensor activity, DRAM bandwidth), which
  NVML computes from two samples taken an interval apart.

Every counter is optional.  A call answered ``NotSupported``,
``NoPermission`` or ``FunctionNotFound`` (an older driver) is marked
unsupported with that reason, is not called again, and its readings are
absent (null in the wide view); the reasons go into the manifest.  Any other
error nulls that one reading.  ``GpuIsLost`` marks the GPU lost at that
instant (a ``gpu_lost`` row and a manifest entry); the other GPUs, and the
load test, go on.

Units: NVML's milliwatts, millijoules and KB/s are converted to W, J and
bytes/s; names carry the unit (``power_w``, ``energy_j``, ``pcie_rx_bytes_per_s``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAST_METRICS", "SLOW_METRICS", "GpuDevice", "NvmlSource", "NvmlUnavailable", "load_nvml"]

FAST_METRICS = (
    "gpu_util_pct",
    "mem_util_pct",
    "mem_used_bytes",
    "mem_total_bytes",
    "power_w",
    "power_instant_w",
    "energy_j",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "temperature_c",
    "clocks_event_reasons",
    "throttle_thermal",
    "throttle_power",
    "throttle_hw_slowdown",
)
SLOW_METRICS = (
    "pcie_rx_bytes_per_s",
    "pcie_tx_bytes_per_s",
    "process_mem_used_bytes",
    "sm_active_pct",
    "tensor_active_pct",
    "dram_bw_util_pct",
)

# clock-event reason bits (nvml.h: nvmlClocksEventReason*)
_THERMAL = 0x20 | 0x40  # software and hardware thermal slowdown
_POWER = 0x04 | 0x80  # software power cap, hardware power brake
_HW_SLOWDOWN = 0x08 | 0x40 | 0x80

_UNSUPPORTED = ("NVML_ERROR_NOT_SUPPORTED", "NVML_ERROR_NO_PERMISSION", "NVML_ERROR_FUNCTION_NOT_FOUND")


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used on this machine (no driver, no library, no GPU); the message says why."""


def load_nvml() -> Any:
    """Import ``pynvml`` and initialise NVML, or raise :class:`NvmlUnavailable` with the reason."""
    try:
        import pynvml
    except ImportError as exc:  # pragma: no cover - nvidia-ml-py is a dependency
        raise NvmlUnavailable(f"the nvidia-ml-py package is not installed ({exc})") from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        hint = " (no NVIDIA driver on this machine)" if "Library Not Found" in str(exc) else ""
        raise NvmlUnavailable(f"NVML could not start: {exc}{hint}") from None
    return pynvml


@dataclass
class GpuDevice:
    """One GPU as NVML names it, and what the sampler learnt about it."""

    index: int
    handle: Any
    name: str = ""
    uuid: str = ""
    lost_ns: int | None = None
    lost_reason: str | None = None
    unsupported: dict[str, str] = field(default_factory=dict)
    gpm_sample: Any = None
    gpm_ok: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "lost_ns": self.lost_ns,
            "lost_reason": self.lost_reason,
            "unsupported": dict(self.unsupported),
            "gpm": self.gpm_ok,
        }


class _Lost(Exception):
    pass


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class NvmlSource:
    """Read NVML counters of every GPU (see the module docstring).

    Parameters
    ----------
    nvml : module
        ``pynvml`` after ``nvmlInit`` (see :func:`load_nvml`), or a fake with the same names.
    tier : {"fast", "slow"}
        Which counters :meth:`read` takes; the two tiers may share ``devices``.
    devices : list of GpuDevice, optional
        Devices already opened by another tier's source.
    """

    def __init__(self, nvml: Any, tier: str = "fast", devices: list[GpuDevice] | None = None) -> None:
        if tier not in ("fast", "slow"):
            raise ValueError(f"tier {tier!r} is not one of fast, slow")
        self.nvml = nvml
        self.tier = tier
        self.devices = devices if devices is not None else self._open()

    def _open(self) -> list[GpuDevice]:
        nv = self.nvml
        devs = []
        for i in range(nv.nvmlDeviceGetCount()):
            d = GpuDevice(i, nv.nvmlDeviceGetHandleByIndex(i))
            d.name = _text(self._try(d, "name", nv.nvmlDeviceGetName, d.handle) or "")
            d.uuid = _text(self._try(d, "uuid", nv.nvmlDeviceGetUUID, d.handle) or "")
            devs.append(d)
        return devs

    def driver_version(self) -> str | None:
        try:
            return _text(self.nvml.nvmlSystemGetDriverVersion())
        except self.nvml.NVMLError:
            return None

    # -- one call, made safe ----------------------------------------------------------
    def _try(self, dev: GpuDevice, metric: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn``; None when unsupported (remembered) or failing this once; _Lost when the GPU is gone."""
        if metric in dev.unsupported:
            return None
        nv = self.nvml
        try:
            return fn(*args)
        except nv.NVMLError as exc:
            code = getattr(exc, "value", None)
            if code == nv.NVML_ERROR_GPU_IS_LOST:
                raise _Lost(str(exc)) from None
            if code in {getattr(nv, n, None) for n in _UNSUPPORTED}:
                dev.unsupported[metric] = str(exc)
            return None
        except (AttributeError, NotImplementedError) as exc:  # a binding older than the counter
            dev.unsupported[metric] = f"not in this nvidia-ml-py: {exc}"
            return None

    def read(self, t_ns: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for dev in self.devices:
            if dev.lost_ns is not None:
                continue
            try:
                values = self._fast(dev) if self.tier == "fast" else self._slow(dev)
            except _Lost as exc:
                dev.lost_ns, dev.lost_reason = t_ns, str(exc)
                values = [("gpu_lost", 1.0, None)]
            rows += [
                {"t_ns": t_ns, "gpu": dev.index, "metric": m, "value": v, "detail": d, "source": "nvml"}
                for m, v, d in values
            ]
        return rows

    # -- the tiers --------------------------------------------------------------------
    def _fast(self, dev: GpuDevice) -> list[tuple[str, float | None, str | None]]:
        nv, h = self.nvml, dev.handle
        out: list[tuple[str, float | None, str | None]] = []
        util = self._try(dev, "utilization", nv.nvmlDeviceGetUtilizationRates, h)
        if util is not None:
            out += [("gpu_util_pct", float(util.gpu), None), ("mem_util_pct", float(util.memory), None)]
        mem = self._try(dev, "memory", nv.nvmlDeviceGetMemoryInfo, h)
        if mem is not None:
            out += [("mem_used_bytes", float(mem.used), None), ("mem_total_bytes", float(mem.total), None)]
        for metric, fn, args, scale in (
            ("power_w", nv.nvmlDeviceGetPowerUsage, (h,), 1e-3),
            ("energy_j", nv.nvmlDeviceGetTotalEnergyConsumption, (h,), 1e-3),
            ("sm_clock_mhz", nv.nvmlDeviceGetClockInfo, (h, nv.NVML_CLOCK_SM), 1.0),
            ("mem_clock_mhz", nv.nvmlDeviceGetClockInfo, (h, nv.NVML_CLOCK_MEM), 1.0),
            ("temperature_c", nv.nvmlDeviceGetTemperature, (h, nv.NVML_TEMPERATURE_GPU), 1.0),
        ):
            v = self._try(dev, metric, fn, *args)
            if v is not None:
                out.append((metric, float(v) * scale, None))
        out += self._instant_power(dev)
        reasons = self._try(dev, "clocks_event_reasons", self._reasons_fn(), h)
        if reasons is not None:
            r = int(reasons)
            out += [
                ("clocks_event_reasons", float(r), None),
                ("throttle_thermal", float(bool(r & _THERMAL)), None),
                ("throttle_power", float(bool(r & _POWER)), None),
                ("throttle_hw_slowdown", float(bool(r & _HW_SLOWDOWN)), None),
            ]
        return out

    def _reasons_fn(self) -> Callable[..., Any]:
        nv = self.nvml
        return (
            getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or nv.nvmlDeviceGetCurrentClocksThrottleReasons
        )  # drivers before 535

    def _instant_power(self, dev: GpuDevice) -> list[tuple[str, float | None, str | None]]:
        nv = self.nvml
        fid = getattr(nv, "NVML_FI_DEV_POWER_INSTANT", None)
        if fid is None:
            dev.unsupported.setdefault("power_instant_w", "NVML_FI_DEV_POWER_INSTANT not in this nvidia-ml-py")
            return []
        vals = self._try(dev, "power_instant_w", nv.nvmlDeviceGetFieldValues, dev.handle, [fid])
        if not vals:
            return []
        v = vals[0]
        if getattr(v, "nvmlReturn", 0) != 0:
            if v.nvmlReturn == nv.NVML_ERROR_NOT_SUPPORTED:
                dev.unsupported["power_instant_w"] = "field NVML_FI_DEV_POWER_INSTANT: Not Supported"
            return []
        return [("power_instant_w", float(v.value.uiVal) * 1e-3, None)]

    def _slow(self, dev: GpuDevice) -> list[tuple[str, float | None, str | None]]:
        nv, h = self.nvml, dev.handle
        out: list[tuple[str, float | None, str | None]] = []
        for metric, counter in (
            ("pcie_rx_bytes_per_s", nv.NVML_PCIE_UTIL_RX_BYTES),
            ("pcie_tx_bytes_per_s", nv.NVML_PCIE_UTIL_TX_BYTES),
        ):
            v = self._try(dev, metric, nv.nvmlDeviceGetPcieThroughput, h, counter)
            if v is not None:
                out.append((metric, float(v) * 1024.0, None))  # NVML reports KB/s
        procs = self._try(dev, "process_mem_used_bytes", nv.nvmlDeviceGetComputeRunningProcesses, h)
        for p in procs or ():
            used = getattr(p, "usedGpuMemory", None)
            out.append(("process_mem_used_bytes", float(used) if used is not None else None, str(p.pid)))
        out += self._gpm(dev)
        return out

    _GPM = (
        ("sm_active_pct", "NVML_GPM_METRIC_SM_UTIL"),
        ("tensor_active_pct", "NVML_GPM_METRIC_ANY_TENSOR_UTIL"),
        ("dram_bw_util_pct", "NVML_GPM_METRIC_DRAM_BW_UTIL"),
    )

    def _gpm(self, dev: GpuDevice) -> list[tuple[str, float | None, str | None]]:
        """GPM metrics between the previous slow reading and this one (Hopper and later)."""
        nv = self.nvml
        if "gpm" in dev.unsupported:
            return []
        if dev.gpm_sample is None:
            support = self._try(dev, "gpm", nv.nvmlGpmQueryDeviceSupport, dev.handle)
            if support is None or not getattr(support, "isSupportedDevice", 0):
                dev.unsupported.setdefault("gpm", "GPM needs a Hopper or later GPU (nvmlGpmQueryDeviceSupport)")
                return []
            dev.gpm_sample = self._try(dev, "gpm", nv.nvmlGpmSampleGet, dev.handle, nv.nvmlGpmSampleAlloc())
            dev.gpm_ok = dev.gpm_sample is not None
            return []  # the first sample only opens the interval
        new = self._try(dev, "gpm", nv.nvmlGpmSampleGet, dev.handle, nv.nvmlGpmSampleAlloc())
        if new is None:
            return []
        mg = nv.c_nvmlGpmMetricsGet_t()
        mg.version = nv.NVML_GPM_METRICS_GET_VERSION
        mg.numMetrics = len(self._GPM)
        mg.sample1, mg.sample2 = dev.gpm_sample, new
        for i, (_, const) in enumerate(self._GPM):
            mg.metrics[i].metricId = getattr(nv, const)
        old, dev.gpm_sample = dev.gpm_sample, new
        res = self._try(dev, "gpm", nv.nvmlGpmMetricsGet, mg)
        free = getattr(nv, "nvmlGpmSampleFree", None)
        if free is not None:
            try:
                free(old)
            except nv.NVMLError:
                pass
        if res is None:
            return []
        return [
            (name, float(res.metrics[i].value) if res.metrics[i].nvmlReturn == 0 else None, None)
            for i, (name, _) in enumerate(self._GPM)
        ]
