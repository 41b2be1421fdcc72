"""The NVML sampler against a fake NVML: units, NotSupported counters, a GPU lost mid-run, no driver."""

from __future__ import annotations

import subprocess

import pytest
from conftest import perfkit_cmd
from fakenvml import FakeGpu, FakeNvml

import perfkit
from perfkit.client import Endpoint, PhaseSpec
from perfkit.collect import NvmlSource, NvmlUnavailable, Sampler, load_nvml
from perfkit.record import TelemetrySpec, record_run
from perfkit.store import ParquetSink


def _by_metric(rows):
    return {(r["gpu"], r["metric"], r["detail"]): r["value"] for r in rows}


def test_fast_tier_reads_every_counter_in_perfkit_units():
    src = NvmlSource(FakeNvml([FakeGpu(sm_clock=1410)]), "fast")
    got = _by_metric(src.read(123))
    assert got[(0, "power_w", None)] == 450.0 and got[(0, "power_instant_w", None)] == 470.0  # mW -> W
    assert got[(0, "energy_j", None)] == 1045.0  # mJ -> J
    assert got[(0, "sm_clock_mhz", None)] == 1410 and got[(0, "mem_clock_mhz", None)] == 2619
    assert got[(0, "gpu_util_pct", None)] == 87 and got[(0, "mem_used_bytes", None)] == 60 * 2**30
    assert got[(0, "temperature_c", None)] == 64
    assert got[(0, "clocks_event_reasons", None)] == 0x40
    assert got[(0, "throttle_thermal", None)] == 1 and got[(0, "throttle_hw_slowdown", None)] == 1
    assert got[(0, "throttle_power", None)] == 0
    assert src.devices[0].name == "NVIDIA H100 80GB HBM3" and src.devices[0].uuid == "GPU-fake-0"


def test_slow_tier_reads_pcie_processes_and_gpm_over_an_interval():
    nv = FakeNvml([FakeGpu()])
    src = NvmlSource(nv, "slow")
    first = _by_metric(src.read(1))
    assert first[(0, "pcie_rx_bytes_per_s", None)] == 1000 * 1024  # KB/s -> bytes/s
    assert first[(0, "process_mem_used_bytes", "4242")] == 58 * 2**30
    assert not any(m.endswith("active_pct") for _, m, _ in first)  # GPM needs two samples
    second = _by_metric(src.read(2))
    assert second[(0, "sm_active_pct", None)] == 63.0 and second[(0, "tensor_active_pct", None)] == 41.0
    assert second[(0, "dram_bw_util_pct", None)] == 55.0 and src.devices[0].gpm_ok


def test_not_supported_counters_are_absent_with_their_reason_and_not_asked_again():
    gpu = FakeGpu(
        unsupported={"nvmlDeviceGetTotalEnergyConsumption", "NVML_FI_DEV_POWER_INSTANT", "nvmlDeviceGetPcieThroughput"},
        gpm=False,
    )
    fast, slow = NvmlSource(FakeNvml([gpu]), "fast"), None
    slow = NvmlSource(fast.nvml, "slow", devices=fast.devices)
    rows = fast.read(1) + slow.read(1)
    metrics = {r["metric"] for r in rows}
    assert "energy_j" not in metrics and "power_instant_w" not in metrics and "pcie_rx_bytes_per_s" not in metrics
    assert "power_w" in metrics and "sm_clock_mhz" in metrics  # the rest still read
    reasons = fast.devices[0].unsupported
    assert reasons["energy_j"] == "Not Supported"
    assert "Not Supported" in reasons["power_instant_w"] and "Hopper" in reasons["gpm"]
    calls = gpu.calls
    fast.read(2)
    # util, memory, power, 2 clocks, temperature, reasons: energy and instant power are not asked again
    assert gpu.calls - calls == 7


def test_a_gpu_lost_mid_run_is_recorded_and_the_others_go_on():
    nv = FakeNvml([FakeGpu(), FakeGpu(lose_after=25)])
    src = NvmlSource(nv, "fast")
    rows = []
    for t in range(1, 6):
        rows += src.read(t)
    lost = [r for r in rows if r["metric"] == "gpu_lost"]
    assert [(r["gpu"], r["value"]) for r in lost] == [(1, 1.0)]
    assert max(r["t_ns"] for r in rows if r["gpu"] == 1) == lost[0]["t_ns"]  # nothing after the loss
    assert {r["t_ns"] for r in rows if r["gpu"] == 0 and r["metric"] == "power_w"} == {1, 2, 3, 4, 5}
    assert src.devices[1].describe()["lost_reason"] == "GPU is lost"


def test_sampler_runs_in_its_thread_and_measures_its_cost(tmp_path):
    sink = ParquetSink(tmp_path, "r1", flush_interval_s=0.05, prefix="part-gpu")
    s = Sampler("gpu-fast", NvmlSource(FakeNvml([FakeGpu()]), "fast"), 0.01, sink, "gpu_samples").start()
    import time

    time.sleep(0.8)
    stats = s.stop()
    sink.close()
    assert stats["readings"] >= 10 and stats["failures"] == 0
    assert 0 < stats["cost_us_p50"] < 50_000 and stats["cpu_us_p50"] is not None
    parts = sorted((tmp_path / "gpu_samples" / "run_id=r1").glob("part-gpu-*.parquet"))
    assert len(parts) >= 2  # flushed while running, not only at the end
    assert not list((tmp_path / "gpu_samples").rglob(".*.tmp"))


async def test_run_with_fake_nvml_records_gpu_samples_and_survives_a_lost_gpu(sim, data_dir):
    nv = FakeNvml([FakeGpu(unsupported={"nvmlDeviceGetTotalEnergyConsumption"}), FakeGpu(lose_after=40)])
    spec = TelemetrySpec(gpu="nvml", gpu_interval_s=0.05, gpu_slow_interval_s=0.2, nvml=nv)
    res = await record_run(
        Endpoint(sim.url), [PhaseSpec("p", duration_s=2.0, rate=5, output_tokens=8)], data_dir, telemetry=spec
    )
    tele = res.manifest["telemetry"]["gpu"]
    assert tele["source"] == "nvml" and not tele["simulated"] and tele["driver"] == "550.54.15"
    assert tele["devices"][0]["unsupported"] == {"energy_j": "Not Supported"}
    assert tele["devices"][1]["lost_ns"] is not None and res.manifest["status"] == "complete"
    assert res.progress.done >= 5 and res.progress.errors == 0
    with perfkit.open(data_dir) as cat:
        wide = cat.telemetry_wide("gpu_samples", res.run_id).df()
        assert set(wide["source"]) == {"nvml"}
        g0 = wide[wide.gpu == 0]
        assert g0["energy_j"].isna().all() and g0["power_w"].notna().sum() >= 20  # unsupported -> null column
        assert wide[wide.gpu == 1]["gpu_lost"].max() == 1
        span = cat.sql(f"SELECT min(sent_ns), max(end_ns) FROM requests WHERE run_id = '{res.run_id}'").fetchall()[0]
        inside = cat.scalar(f"SELECT count(*) FROM gpu_samples WHERE t_ns BETWEEN {span[0]} AND {span[1]}")
        assert inside > 20  # on the requests' clock


def test_no_driver_means_gpu_counters_off_with_the_reason():
    try:
        load_nvml()
    except NvmlUnavailable as exc:
        assert "NVML" in str(exc)
    else:
        pytest.skip("this machine has an NVIDIA driver")


def _nvml_works() -> bool:
    try:
        load_nvml()
    except NvmlUnavailable:
        return False
    return True


@pytest.mark.skipif(_nvml_works(), reason="this machine has an NVIDIA driver")
@pytest.mark.parametrize("mode", ["nvml", "auto"])
def test_gpu_nvml_without_a_driver_prints_one_clear_line_and_completes(sim, tmp_path, mode):
    out = subprocess.run(
        perfkit_cmd(
            "run",
            "--endpoint",
            sim.url,
            "--requests",
            "3",
            "--output-tokens",
            "4",
            "--gpu",
            mode,
            "--quiet",
            "--data-dir",
            str(tmp_path),
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if "GPU" in ln]
    assert len(lines) == 1, out.stderr
    assert "GPU counters are off" in lines[0] and "NVML" in lines[0] and "goes on" in lines[0]
    assert ("--gpu nvml was asked for" in lines[0]) == (mode == "nvml")
    with perfkit.open(tmp_path) as cat:
        assert cat.scalar("SELECT count(*) FROM requests") == 3
        assert cat.scalar("SELECT count(*) FROM gpu_samples") == 0  # auto never falls back to simulated data
        assert cat.table("runs").df()["gpu_source"].isna().all()


def test_gpu_sim_against_a_server_that_is_not_the_simulator_is_refused(tmp_path):
    from badserver import BadServer

    with BadServer("http_429") as bad:
        out = subprocess.run(
            perfkit_cmd(
                "run",
                "--endpoint",
                bad.url,
                "--model",
                "m",
                "--requests",
                "1",
                "--gpu",
                "sim",
                "--quiet",
                "--data-dir",
                str(tmp_path),
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 2 and "--gpu sim" in out.stderr and "simulator" in out.stderr
    assert "Traceback" not in out.stderr
    assert not list(tmp_path.rglob("manifest.json"))  # a refused run leaves no run behind
