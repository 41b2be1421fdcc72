"""What does each telemetry sampler cost the client per reading?  Prints figures; not a test.

For each side channel, reads it N times in a loop (as its sampler thread
does) and reports the CPU time of the reading thread (what sampling takes from
the load generator) and the wall time (which also includes waiting for the
device, the server or the GIL), p50 / p99 in microseconds:

* ``nvml-fast`` / ``nvml-slow``: the real GPU through NVML, where a driver answers
  (on a machine without one they are reported as unavailable);
* ``gpu-sim``: the simulator's SIMULATED GPU counters over HTTP (``GET /sim/gpu``);
* ``metrics``: one scrape of the simulator's ``/metrics`` (HTTP, parse, rates);
* ``metrics-parse-vllm``: parsing alone of an exposition the size of a real vLLM
  server's (about 600 samples: the simulator's text with its histograms repeated);
* ``host``: the client's and the simulator's process trees, system CPU and memory.

    python bench/telemetry_cost.py [--n 300]

The last line reads ``cpu_us_p50 nvml_fast=... gpu_sim=... metrics=... host=...``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from perfkit.clock import now_ns
from perfkit.collect import HostSource, NvmlSource, NvmlUnavailable, PrometheusSource, SimGpuSource, load_nvml
from perfkit.collect.prometheus import MetricsState, parse_metrics
from perfkit.net.get import get, server_root
from perfkit.sim import SimProcess


def measure(read, n: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    cpu, wall = [], []
    for _ in range(n):
        c0, t0 = time.thread_time_ns(), now_ns()
        read(t0)
        wall.append((now_ns() - t0) / 1e3)
        cpu.append((time.thread_time_ns() - c0) / 1e3)
    return np.array(cpu), np.array(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="readings per channel")
    a = ap.parse_args()
    results: dict[str, tuple[np.ndarray, np.ndarray] | str] = {}
    try:
        nv = load_nvml()
        fast = NvmlSource(nv, "fast")
        slow = NvmlSource(nv, "slow", devices=fast.devices)
        print(
            f"NVML: driver {fast.driver_version()}, {len(fast.devices)} GPU(s): "
            + ", ".join(d.name for d in fast.devices)
        )
        results["nvml-fast"] = measure(fast.read, a.n)
        results["nvml-slow"] = measure(slow.read, max(10, a.n // 10))  # PCIe sampling alone takes ~20 ms
        print("unsupported:", {d.index: d.unsupported for d in fast.devices})
    except NvmlUnavailable as exc:
        results["nvml-fast"] = results["nvml-slow"] = f"unavailable: {exc}"
    with SimProcess() as sim:
        results["gpu-sim"] = measure(SimGpuSource(sim.url).read, a.n)
        results["metrics"] = measure(PrometheusSource(sim.url).read, a.n)
        text = get(server_root(sim.url) + "/metrics", 5).body
        head, hist = text.split("# HELP vllm:time_to_first_token_seconds", 1)
        big = head + "".join(
            "# HELP vllm:time_to_first_token_seconds" + hist.replace("vllm:", f"vllm{i}:") for i in range(5)
        )
        state = MetricsState()
        results["metrics-parse-vllm"] = measure(lambda t: state.annotate(parse_metrics(big), t), a.n)
        n_samples = len(parse_metrics(big))
        host = HostSource(server_pid=sim.pid)
        results["host"] = measure(host.read, a.n)
    print(f"\n{'channel':<20} {'cpu p50 µs':>11} {'cpu p99 µs':>11} {'wall p50 µs':>12} {'wall p99 µs':>12}")
    for name, r in results.items():
        if isinstance(r, str):
            print(f"{name:<20} {r}")
            continue
        cpu, wall = r
        print(
            f"{name:<20} {np.percentile(cpu, 50):>11.0f} {np.percentile(cpu, 99):>11.0f} "
            f"{np.percentile(wall, 50):>12.0f} {np.percentile(wall, 99):>12.0f}"
        )
    print(f"(metrics-parse-vllm parses {n_samples} samples)")

    def p50(name: str) -> str:
        r = results[name]
        return "na" if isinstance(r, str) else f"{np.percentile(r[0], 50):.0f}"

    print(
        f"cpu_us_p50 nvml_fast={p50('nvml-fast')} gpu_sim={p50('gpu-sim')} metrics={p50('metrics')} host={p50('host')}"
    )


if __name__ == "__main__":
    main()
