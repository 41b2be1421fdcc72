"""Telemetry end to end on demo data: three tables on the requests' clock, the throttle seen in both."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

import perfkit
from perfkit.demo import DemoPlan, run_demo
from perfkit.sim import SimConfig, SimEvent, SimProcess
from perfkit.sim.engine import Engine, EventSchedule, SimRequest, Stepper
from perfkit.sim.gpu import SimGpu

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One scaled demo run (about 21 s of traffic), shared by the tests of this module.

    The throttle phase is 9 s, not 5: with five 1-s windows after it, a 4x TTFT rise is sometimes
    placed in the heavy phase before it (1 run in 20), which is the detector being honest about
    too little data, not a fault this module tests.
    """
    data = tmp_path_factory.mktemp("demo") / "data"
    with SimProcess(SimConfig(seed=0)) as sim:
        res = asyncio.run(run_demo(data, replace(DemoPlan().scaled(0.35), throttle_s=9.0), sim, seed=0))
        pid = sim.pid
    cat = perfkit.open(data)
    yield cat, res, pid
    cat.close()


def test_demo_has_all_three_tables_on_the_requests_clock(demo):
    cat, res, _ = demo
    rid = res.run_id
    lo, hi = cat.sql(f"SELECT min(sent_ns), max(end_ns) FROM requests WHERE run_id = '{rid}'").fetchall()[0]
    for table, per_s in (("gpu_samples", 10), ("server_metrics", 1), ("host_samples", 2)):
        t0, t1, n = cat.sql(
            f"SELECT min(t_ns), max(t_ns), count(DISTINCT t_ns) FROM {table} WHERE run_id = '{rid}'"
        ).fetchall()[0]
        # readings start before the first request and go on to its end, on the same clock
        assert t0 <= lo + 1.5e9 and t1 >= hi - 1.5e9, table
        assert n >= 0.7 * per_s * (hi - lo) / 1e9, (table, n)
    tele = res.manifest["telemetry"]
    assert tele["gpu"]["source"] == "sim" and tele["gpu"]["simulated"] is True
    assert set(cat.sql("SELECT DISTINCT source FROM gpu_samples").df()["source"]) == {"sim"}
    assert all(s["failures"] == 0 for s in tele["samplers"].values()), tele["samplers"]


def test_the_throttle_shows_in_gpu_clocks_in_the_same_seconds_as_the_latency_rises(demo):
    cat, res, _ = demo
    rid = res.run_id
    m = res.manifest
    ev = m["simulator"]["events"][0]
    epoch = m["simulator"]["epoch_ns"]
    start, end = epoch + ev["start_s"] * 1e9, epoch + ev["end_s"] * 1e9
    clock = cat.telemetry_wide("gpu_samples", rid).df()[["t_ns", "sm_clock_mhz", "throttle_thermal"]]
    low = clock[clock.sm_clock_mhz < 1980]
    # the clock drop covers exactly the injected window, to within a 10 Hz sample
    assert abs(low.t_ns.min() - start) < 0.15e9 and abs(low.t_ns.max() - end) < 0.15e9
    assert np.allclose(low.sm_clock_mhz, 1980 / ev["factor"]) and (low.throttle_thermal == 1).all()
    # per second: the first second whose clock is down is the first whose median TTFT is up
    tl = cat.timeline(rid, bin_s=1.0, include_warmup=False).df().dropna(subset=["ttft_p50_ms"])
    light = tl[tl.phase == "light"].ttft_p50_ms.median()
    steady = tl[tl.phase == "steady"].ttft_p50_ms.median()  # the busiest phase before the throttle
    first_low = tl[tl.sm_clock_mhz < 1900].t_s.min()
    first_slow = tl[(tl.ttft_p50_ms > 1.5 * max(light, steady)) & (tl.t_s >= first_low - 3)].t_s.min()
    assert abs(first_slow - first_low) <= 1.0, tl[["t_s", "phase", "ttft_p50_ms", "sm_clock_mhz"]]
    # per request: the lower the clock while it ran, the longer its TTFT
    rt = cat.request_telemetry(rid, ["sm_clock_mhz", "kv_usage", "power_w"]).df()
    rho = rt[["ttft_ms", "sm_clock_mhz"]].corr(method="spearman").iloc[0, 1]
    assert rho < -0.3, rho  # the long steady phase at the full clock holds most of the requests
    # requests sent early in the throttle spend most of their life (E2E ~3 s) under it
    inside = rt[(rt.sent_ns > start + 0.2e9) & (rt.sent_ns < end - 2.5e9)]
    assert len(inside) >= 5
    assert inside.ttft_ms.median() > 2 * light and inside.sm_clock_mhz.median() < 0.75 * 1980


def test_requests_get_the_counters_of_their_own_lifetime(demo):
    cat, res, _ = demo
    rt = cat.request_telemetry(res.run_id, ["kv_usage", "power_w", "running"]).df()
    assert len(rt) == cat.scalar(f"SELECT count(*) FROM requests WHERE run_id = '{res.run_id}' AND NOT warmup")
    assert rt["kv_usage"].between(0, 1).all() and rt["power_w"].between(70, 700).all()
    # heavier load: more running sequences and more KV in use while the request ran
    by = rt.groupby("phase")[["kv_usage", "running"]].median()
    assert by.loc["steady", "running"] > 2 * by.loc["light", "running"]
    assert by.loc["steady", "kv_usage"] > by.loc["light", "kv_usage"]
    assert (rt["power_w_n"] > 0).mean() > 0.9  # most requests span several 10 Hz readings


def test_host_samples_cover_client_server_and_system(demo):
    cat, res, pid = demo
    wide = cat.telemetry_wide("host_samples", res.run_id).df()
    assert set(wide["scope"]) == {"client", "server", "system"}
    server = wide[wide.scope == "server"]
    assert (server.pid == pid).all() and server.rss_bytes.min() > 10e6
    client = wide[wide.scope == "client"]
    assert client.cpu_pct.dropna().between(0, 400).all() and client.loop_lag_max_ms.notna().sum() > 5
    assert res.manifest["telemetry"]["host"]["server_pid"] == pid


def test_the_simulated_gpu_follows_the_engine():
    cfg = SimConfig()
    eng = Engine(cfg)
    sched = EventSchedule([SimEvent("throttle", 1.0, 2.0, factor=2.0)], epoch_ns=0)
    gpu = SimGpu(eng, sched, 0)
    idle = gpu.read(500_000_000)
    assert idle["gpu_util_pct"] == 0 and idle["power_w"] == 70 and idle["sm_clock_mhz"] == 1980
    assert idle["clocks_event_reasons"] == 1  # idle
    st = Stepper(eng, sched, 500_000_000)
    for i in range(40):
        st.offer(SimRequest(str(i), 500_000_000, 256, 64))
    while st.t_ns < 1_400_000_000 and (st.inbox or eng.has_work):
        st.advance()
    busy = gpu.read(1_500_000_000)
    assert busy["gpu_util_pct"] > 80 and busy["sm_clock_mhz"] == 990 and busy["throttle_hw_slowdown"] == 1
    assert 70 < busy["power_w"] < 700 * 0.5**2 + 70  # power falls with the clock squared
    assert busy["mem_used_bytes"] > idle["mem_used_bytes"] and busy["pcie_rx_bytes_per_s"] > 0
    assert busy["energy_j"] == pytest.approx(70 * 0.5 + busy["power_w"] * 1.0)
    after = gpu.read(2_500_000_000)
    assert after["sm_clock_mhz"] == 1980 and after["throttle_thermal"] == 0
    assert np.isclose(after["energy_j"] - busy["energy_j"], after["power_w"] * 1.0)


def test_changepoints_find_the_throttle_in_latency_and_in_the_gpu_clock(demo):
    from perfkit.analysis import change_table, detect_changes

    cat, res, _ = demo
    m = res.manifest
    t0 = cat.scalar(f"SELECT min(sent_ns) FROM requests WHERE run_id = '{res.run_id}'")
    start = (m["simulator"]["epoch_ns"] + m["simulator"]["events"][0]["start_s"] * 1e9 - t0) / 1e9
    end = start + m["simulator"]["events"][0]["end_s"] - m["simulator"]["events"][0]["start_s"]
    clock = detect_changes(cat, res.run_id, "sm_clock_mhz").changes
    # a drop where the throttle starts; and a rise where it ends, when the last requests outlive it
    # (placed up to min_size windows early, as the last segment must be that long)
    # (a 1-s window that straddles the start, part at the full clock, can make the drop two steps, 1 s apart)
    drops, rises = [c for c in clock if c.ratio < 1], [c for c in clock if c.ratio > 1]
    assert drops and abs(drops[0].t - start) <= 1 and all(abs(c.t - start) <= 2 for c in drops), clock
    assert float(np.prod([c.ratio for c in drops])) < 0.5, clock
    assert all(end - 6 <= c.t <= end + 1 for c in rises) and len(rises) <= 2, clock
    ttft = [c for c in detect_changes(cat, res.run_id, "ttft_p50_ms").changes if abs(c.t - start) <= 2]
    # a clear rise whose interval excludes no change
    assert len(ttft) == 1 and ttft[0].ratio > 1.5 and ttft[0].ratio_lo > 1 and ttft[0].t_lo <= start + 1
    table = change_table(cat, res.run_id)
    assert {"sm_clock_mhz", "ttft_p50_ms"} <= set(table["series"])
