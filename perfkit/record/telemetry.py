"""Start and stop every side channel of a run: GPU, server metrics, host.

The GPU mode decides where ``gpu_samples`` come from:

``auto``
    NVML when a driver answers; otherwise GPU counters are off, said in one
    line, and the run goes on.  ``auto`` never falls back to simulated data.
``nvml``
    NVML, asked for explicitly; without a driver the same one line, and the
    run goes on without GPU counters.
``sim``
    The SIMULATED counters of perfkit's simulator (the endpoint must be it);
    labelled ``source='sim'`` in the data, ``simulated: true`` in the manifest.
``off``
    No GPU counters.

Server metrics are scraped from each endpoint's ``/metrics`` unless turned
off; an endpoint without one is noted (one line, and in the manifest) and
not scraped again.  Host samples (client CPU, memory, event-loop lag, and a
local server's process tree when its pid is known) are always cheap and on
by default.  Everything runs in threads (the scraper in a process of its own);
only the loop-lag probe lives on the event loop.  Every sampler writes through
the run's sink, the same one the load runner writes through.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfkit.collect.base import Sampler
from perfkit.collect.host import HostSource, LoopLagMonitor
from perfkit.collect.nvml import NvmlSource, NvmlUnavailable, load_nvml
from perfkit.collect.prometheus import PrometheusSource
from perfkit.collect.simgpu import SimGpuSource, probe_sim_gpu
from perfkit.errors import ConfigError
from perfkit.net import ReadDelays
from perfkit.net.tls import TlsOptions
from perfkit.record.sampler_process import ProcessSampler
from perfkit.rows import Sink

__all__ = ["GPU_MODES", "Telemetry", "TelemetrySpec"]

GPU_MODES = ("auto", "nvml", "sim", "off")


@dataclass(frozen=True)
class TelemetrySpec:
    """What to record beside the requests, and how often.

    Parameters
    ----------
    gpu : {"auto", "nvml", "sim", "off"}
        Source of GPU counters (see the module docstring).
    gpu_interval_s, gpu_slow_interval_s : float
        Fast tier (utilisation, power, clocks, ...) and slow tier (PCIe, processes, GPM) intervals, s.
    server_metrics : bool
        Scrape each endpoint's Prometheus ``/metrics``.
    metrics_interval_s : float
        Scrape interval, s.
    metrics_url : str, optional
        Scrape this URL instead of ``ROOT/metrics`` of the first endpoint.
    host : bool
        Sample the client's CPU, memory and event-loop lag.
    host_interval_s : float
        Host sampling interval, s.
    server_pid : int, optional
        Pid of a server on this host, whose process tree is sampled too.
    flush_interval_s : float
        Parquet flush interval of the telemetry tables, s.
    nvml : object, optional
        An NVML module to use instead of ``pynvml`` (tests pass a fake).
    """

    gpu: str = "auto"
    gpu_interval_s: float = 0.1
    gpu_slow_interval_s: float = 1.0
    server_metrics: bool = True
    metrics_interval_s: float = 1.0
    metrics_url: str | None = None
    host: bool = True
    host_interval_s: float = 0.5
    server_pid: int | None = None
    flush_interval_s: float = 1.0
    nvml: Any = None

    def __post_init__(self) -> None:
        if self.gpu not in GPU_MODES:
            raise ConfigError(f"--gpu {self.gpu!r} is not one of {', '.join(GPU_MODES)}")
        for name in ("gpu_interval_s", "gpu_slow_interval_s", "metrics_interval_s", "host_interval_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"telemetry: {name} must be > 0 s, got {getattr(self, name)!r}")


class Telemetry:
    """The side channels of one run.

    Parameters
    ----------
    spec : TelemetrySpec
    sink : Sink
        Where the samplers of this process write (the run's sink).
    data_dir : Path
        Where a sampler in a process of its own writes (through a Parquet sink of its own).
    run_id : str
    base_urls : list of str
        The run's endpoints (their ``/metrics`` are scraped; the first one's ``/sim/gpu`` in ``sim`` mode).
    headers : dict, optional
        Sent with scrapes (an ``Authorization`` header; never stored).
    notify : callable, optional
        Called with one line for each thing the user should know (GPU counters off, no ``/metrics``).
    lag : object, optional
        The load's event-loop probe when the load runs in other processes (their worst lag).
    read_delays : ReadDelays, optional
        The client transport's read delays, reported by the host sampler.
    tls : TlsOptions, optional
        Verification of HTTPS endpoints for the scrapes.
    """

    def __init__(
        self,
        spec: TelemetrySpec,
        sink: Sink,
        data_dir: Path,
        run_id: str,
        base_urls: list[str],
        headers: dict[str, str] | None = None,
        notify: Callable[[str], None] | None = None,
        lag: Any = None,
        read_delays: ReadDelays | None = None,
        tls: TlsOptions | None = None,
    ) -> None:
        self.spec = spec
        self.sink = sink
        self.read_delays = read_delays
        self.tls = tls
        self._lag_source = lag  # the workers' loop lag, when the load runs in other processes
        self.data_dir = Path(data_dir)
        self.run_id = run_id
        self.base_urls = base_urls
        self.headers = headers or {}
        self.notify = notify or (lambda _msg: None)
        self.samplers: list[Sampler | ProcessSampler] = []
        self.gpu: dict[str, Any] = {"mode": spec.gpu, "source": None, "simulated": False, "off_reason": None}
        self.metrics: list[PrometheusSource] = []
        self.metrics_desc: dict[int, dict[str, Any]] = {}  # what each scraper process reported at its end
        self.metrics_problems: list[str] = []
        self.host: HostSource | None = None
        self.lag: LoopLagMonitor | None = None
        self._nvml: Any = None
        self._nvml_devices: NvmlSource | None = None
        self.stats: dict[str, Any] = {}

    def _sampler(self, name: str, source: Any, interval_s: float, table: str) -> None:
        self.samplers.append(Sampler(name, source, interval_s, self.sink, table))

    # -- set-up (blocking probes: call through run_in_executor) --------------------------
    def _setup_gpu(self) -> None:
        mode = self.spec.gpu
        if mode == "off":
            self.gpu["off_reason"] = "turned off (--gpu off)"
            return
        if mode == "sim":
            devices, why = probe_sim_gpu(self.base_urls[0])
            if devices is None:
                raise ConfigError(
                    f"--gpu sim records the simulator's SIMULATED GPU counters, but {why}; "
                    "use --gpu auto or nvml for a real server"
                )
            self.gpu.update(source="sim", simulated=True, devices=devices)
            self._sampler("gpu-sim", SimGpuSource(self.base_urls[0]), self.spec.gpu_interval_s, "gpu_samples")
            return
        try:
            nv = self.spec.nvml if self.spec.nvml is not None else load_nvml()
            fast = NvmlSource(nv, "fast")
        except NvmlUnavailable as exc:
            self._gpu_off(str(exc))
            return
        except Exception as exc:
            self._gpu_off(f"NVML failed while listing GPUs: {type(exc).__name__}: {exc}")
            return
        if not fast.devices:
            self._gpu_off("NVML answered but lists no GPU")
            return
        self._nvml = nv
        self._nvml_devices = fast
        self.gpu.update(source="nvml", driver=fast.driver_version())
        self._sampler("gpu-fast", fast, self.spec.gpu_interval_s, "gpu_samples")
        self._sampler(
            "gpu-slow", NvmlSource(nv, "slow", devices=fast.devices), self.spec.gpu_slow_interval_s, "gpu_samples"
        )

    def _gpu_off(self, reason: str) -> None:
        self.gpu["off_reason"] = reason
        asked = "--gpu nvml was asked for, but " if self.spec.gpu == "nvml" else ""
        self.notify(
            f"GPU counters are off: {asked}{reason}. The run goes on without them (--gpu off silences this line)."
        )

    def _setup_metrics(self) -> None:
        if not self.spec.server_metrics:
            return
        urls = (
            [(self.base_urls[0], self.spec.metrics_url)]
            if self.spec.metrics_url
            else [(u, None) for u in self.base_urls]
        )
        for base, url in urls:
            src = PrometheusSource(base, headers=self.headers, url=url, tls=self.tls)
            src.read(0)  # a first scrape: does the server have /metrics at all?
            if not src.ok_scrapes:
                msg = f"server metrics are off for {base}: {src.problem}; the run goes on without them"
                self.metrics_problems.append(msg)
                self.notify(msg)
                continue
            self.metrics.append(src)
            # parsing an exposition is milliseconds of pure Python: done in a child process, off our GIL
            name = f"metrics-{len(self.metrics) - 1}"
            args = {
                "base_url": base,
                "headers": self.headers,
                "url": url,
                "tls": dataclasses.asdict(self.tls) if self.tls else None,
            }
            self.samplers.append(
                ProcessSampler(
                    name,
                    "prometheus",
                    args,
                    self.spec.metrics_interval_s,
                    self.data_dir,
                    self.run_id,
                    "server_metrics",
                    f"part-{name}",
                    self.spec.flush_interval_s,
                )
            )

    def _setup_host(self) -> None:
        if not self.spec.host:
            return
        self.host = HostSource(self.lag, self.spec.server_pid, self.read_delays)
        self._sampler("host", self.host, self.spec.host_interval_s, "host_samples")

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> Telemetry:
        """Probe the sources (off the loop), start the loop-lag probe and the sampler threads."""
        loop = asyncio.get_running_loop()
        if self.spec.host:
            self.lag = self._lag_source or LoopLagMonitor().start()
        for setup in (self._setup_gpu, self._setup_metrics, self._setup_host):
            await loop.run_in_executor(None, setup)
        for s in self.samplers:
            await loop.run_in_executor(None, s.start)  # a scraper process takes ~1 s to come up
        return self

    def read_now(self) -> None:
        """A reading of the server's ``/metrics`` now (at a phase boundary), so that its counters and histograms
        are read at the boundary, not up to an interval from it.  Blocking: call it through ``run_in_executor``."""
        for s in self.samplers:
            if isinstance(s, ProcessSampler):
                s.read_now()
            elif s.table == "server_metrics":
                s.read_once()

    def stop(self) -> dict[str, Any]:
        """Stop every sampler, shut NVML down; returns :meth:`describe` (the sink's owner closes the sink).

        Blocking (joins threads): call it through ``run_in_executor`` from a coroutine.
        """
        if self.lag is not None:
            self.lag.stop()
        for s in self.samplers:
            self.stats[s.name] = s.stop()
            if isinstance(s, ProcessSampler) and s.description is not None:
                i = int(s.name.rsplit("-", 1)[1])
                self.metrics_desc[i] = s.description
        if self._nvml is not None and self.spec.nvml is None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """The manifest's ``telemetry`` entry: sources, devices, what was unsupported or lost, costs."""
        gpu = dict(self.gpu)
        if self._nvml_devices is not None:
            gpu["devices"] = [d.describe() for d in self._nvml_devices.devices]
        if gpu["source"]:
            gpu["interval_s"] = self.spec.gpu_interval_s
            gpu["slow_interval_s"] = self.spec.gpu_slow_interval_s if gpu["source"] == "nvml" else None
        return {
            "gpu": gpu,
            "server_metrics": {
                "enabled": self.spec.server_metrics,
                "interval_s": self.spec.metrics_interval_s,
                "sources": [self.metrics_desc.get(i) or m.describe() for i, m in enumerate(self.metrics)],
                "problems": self.metrics_problems,
            },
            "host": {
                "enabled": self.spec.host,
                "interval_s": self.spec.host_interval_s,
                **(self.host.describe() if self.host else {}),
            },
            "samplers": dict(self.stats),
        }
