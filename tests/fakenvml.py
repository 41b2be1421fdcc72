"""A fake of the ``pynvml`` module surface that perfkit's NVML sampler uses.

It speaks NVML's units (mW, mJ, KB/s, MHz), raises ``NVMLError`` with NVML's
codes, can declare functions NotSupported per GPU, and can lose a GPU (every
call then raises GPU_IS_LOST) after a number of calls.
"""

from __future__ import annotations

import itertools
import threading
from types import SimpleNamespace

NOT_SUPPORTED, NO_PERMISSION, FUNCTION_NOT_FOUND, GPU_IS_LOST, UNKNOWN = 3, 4, 13, 15, 999
_TEXT = {
    NOT_SUPPORTED: "Not Supported",
    NO_PERMISSION: "Insufficient Permissions",
    FUNCTION_NOT_FOUND: "Function Not Found",
    GPU_IS_LOST: "GPU is lost",
    UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _TEXT.get(self.value, f"NVML error {self.value}")


class FakeGpu:
    """One fake GPU.

    Parameters
    ----------
    unsupported : set of str
        Names of NVML functions that answer NotSupported on this GPU.
    lose_after : int, optional
        After this many calls, every call raises GPU_IS_LOST.
    gpm : bool
        Whether the GPU supports GPM (Hopper and later).
    """

    def __init__(
        self,
        name: str = "NVIDIA H100 80GB HBM3",
        unsupported: set[str] | None = None,
        lose_after: int | None = None,
        gpm: bool = True,
        sm_clock: int = 1980,
    ) -> None:
        self.name, self.unsupported, self.lose_after, self.gpm = name, unsupported or set(), lose_after, gpm
        self.sm_clock = sm_clock
        self.calls = 0
        self.energy_mj = 1_000_000
        self._lock = threading.Lock()

    def call(self, fn: str) -> None:
        with self._lock:
            self.calls += 1
            if self.lose_after is not None and self.calls > self.lose_after:
                raise NVMLError(GPU_IS_LOST)
        if fn in self.unsupported:
            raise NVMLError(NOT_SUPPORTED)


class FakeNvml:
    """Module-like: ``FakeNvml([FakeGpu(), ...])`` stands in for ``pynvml`` after ``nvmlInit``."""

    NVMLError = NVMLError
    NVML_ERROR_NOT_SUPPORTED = NOT_SUPPORTED
    NVML_ERROR_NO_PERMISSION = NO_PERMISSION
    NVML_ERROR_FUNCTION_NOT_FOUND = FUNCTION_NOT_FOUND
    NVML_ERROR_GPU_IS_LOST = GPU_IS_LOST
    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0
    NVML_FI_DEV_POWER_INSTANT = 186
    NVML_PCIE_UTIL_TX_BYTES, NVML_PCIE_UTIL_RX_BYTES = 0, 1
    NVML_GPM_METRIC_SM_UTIL, NVML_GPM_METRIC_ANY_TENSOR_UTIL, NVML_GPM_METRIC_DRAM_BW_UTIL = 2, 5, 10
    NVML_GPM_METRICS_GET_VERSION = 1
    GPM_VALUES = {2: 63.0, 5: 41.0, 10: 55.0}

    def __init__(self, gpus: list[FakeGpu]) -> None:
        self.gpus = gpus
        self.shutdowns = 0
        self._ids = itertools.count()

    def _g(self, h: FakeGpu, fn: str) -> FakeGpu:
        h.call(fn)
        return h

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGpu:
        return self.gpus[i]

    def nvmlDeviceGetName(self, h: FakeGpu) -> str:
        return self._g(h, "nvmlDeviceGetName").name

    def nvmlDeviceGetUUID(self, h: FakeGpu) -> bytes:
        self._g(h, "nvmlDeviceGetUUID")
        return f"GPU-fake-{self.gpus.index(h)}".encode()

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> SimpleNamespace:
        self._g(h, "nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=87, memory=42)

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu) -> SimpleNamespace:
        self._g(h, "nvmlDeviceGetMemoryInfo")
        return SimpleNamespace(used=60 * 2**30, total=80 * 2**30, free=20 * 2**30)

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        self._g(h, "nvmlDeviceGetPowerUsage")
        return 450_000  # mW

    def nvmlDeviceGetTotalEnergyConsumption(self, h: FakeGpu) -> int:
        self._g(h, "nvmlDeviceGetTotalEnergyConsumption")
        h.energy_mj += 45_000
        return h.energy_mj

    def nvmlDeviceGetClockInfo(self, h: FakeGpu, kind: int) -> int:
        self._g(h, "nvmlDeviceGetClockInfo")
        return h.sm_clock if kind == self.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        self._g(h, "nvmlDeviceGetTemperature")
        return 64

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: FakeGpu) -> int:
        self._g(h, "nvmlDeviceGetCurrentClocksEventReasons")
        return 0x40 if h.sm_clock < 1980 else 0  # HW thermal slowdown when clocked down

    def nvmlDeviceGetFieldValues(self, h: FakeGpu, ids: list[int]) -> list[SimpleNamespace]:
        self._g(h, "nvmlDeviceGetFieldValues")
        if "NVML_FI_DEV_POWER_INSTANT" in h.unsupported:
            return [SimpleNamespace(nvmlReturn=NOT_SUPPORTED, value=SimpleNamespace(uiVal=0)) for _ in ids]
        return [SimpleNamespace(nvmlReturn=0, value=SimpleNamespace(uiVal=470_000)) for _ in ids]

    def nvmlDeviceGetPcieThroughput(self, h: FakeGpu, counter: int) -> int:
        self._g(h, "nvmlDeviceGetPcieThroughput")
        return 1000 if counter == self.NVML_PCIE_UTIL_RX_BYTES else 250  # KB/s

    def nvmlDeviceGetComputeRunningProcesses(self, h: FakeGpu) -> list[SimpleNamespace]:
        self._g(h, "nvmlDeviceGetComputeRunningProcesses")
        return [SimpleNamespace(pid=4242, usedGpuMemory=58 * 2**30)]

    def nvmlGpmQueryDeviceSupport(self, h: FakeGpu) -> SimpleNamespace:
        self._g(h, "nvmlGpmQueryDeviceSupport")
        return SimpleNamespace(isSupportedDevice=int(h.gpm))

    def nvmlGpmSampleAlloc(self) -> SimpleNamespace:
        return SimpleNamespace(id=next(self._ids))

    def nvmlGpmSampleGet(self, h: FakeGpu, sample: SimpleNamespace) -> SimpleNamespace:
        self._g(h, "nvmlGpmSampleGet")
        return sample

    def nvmlGpmSampleFree(self, sample: SimpleNamespace) -> None:
        pass

    def c_nvmlGpmMetricsGet_t(self) -> SimpleNamespace:
        return SimpleNamespace(
            version=0,
            numMetrics=0,
            sample1=None,
            sample2=None,
            metrics=[SimpleNamespace(metricId=0, nvmlReturn=0, value=0.0) for _ in range(98)],
        )

    def nvmlGpmMetricsGet(self, mg: SimpleNamespace) -> SimpleNamespace:
        assert mg.version == self.NVML_GPM_METRICS_GET_VERSION and mg.sample1 is not mg.sample2
        for m in mg.metrics[: mg.numMetrics]:
            m.value = self.GPM_VALUES[m.metricId]
        return mg

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1
