"""Analyses check that the data fits them: a knee, a USL fit and the maximum load meeting SLOs only on a sweep."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from conftest import perfkit_cmd

import perfkit
from perfkit.analysis import NotASweepError, load_levels, max_sustainable_load, run_knee, run_usl
from perfkit.client import Endpoint, PhaseSpec
from perfkit.demo import DemoPlan, run_demo
from perfkit.record import record_run
from perfkit.sim import SimConfig
from perfkit.sim.process import SimProcess
from perfkit.workload.scenario import parse_scenario


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo's shape, short: light, heavy, then moderate load under an injected GPU throttle."""
    d = tmp_path_factory.mktemp("demo-shape")
    with SimProcess(SimConfig(seed=0)) as sim:
        res = asyncio.run(run_demo(d, DemoPlan(warmup_s=0.5, light_s=1.5, steady_s=1.5, throttle_s=1.5), sim))
    return d, res.run_id


@pytest.fixture(scope="module")
def shaped_runs(sim, tmp_path_factory):
    """A ramp between two steady rates, and a closed-loop sweep of users."""
    d = tmp_path_factory.mktemp("shapes")
    ramp = parse_scenario(
        {
            "defaults": {"prompt_tokens": 32, "output_tokens": 8},
            "phases": [
                {"name": "low", "duration_s": 1, "load": {"rate": 4}},
                {"name": "ramp", "duration_s": 1, "load": {"ramp": {"from": 4, "to": 12}}},
                {"name": "high", "duration_s": 1, "load": {"rate": 12}},
            ],
        }
    )
    users = [PhaseSpec(f"u{n}", duration_s=0.8, concurrency=n, prompt_tokens=32, output_tokens=8) for n in (1, 2, 4, 8)]
    ids = {}
    for name, phases in (("ramp", list(ramp.phases)), ("users", users)):
        ids[name] = asyncio.run(record_run(Endpoint(sim.url), phases, d, run_id=name, seed=0)).run_id
    return d, ids


def test_the_demo_is_not_a_sweep_and_slo_says_what_to_run_instead(demo_run):
    d, run_id = demo_run
    with perfkit.open(d) as cat:
        with pytest.raises(NotASweepError) as err:
            max_sustainable_load(cat, run_id, "chat")
        with pytest.raises(NotASweepError, match="a knee needs at least 5"):
            run_knee(cat, run_id)
    msg = str(err.value)
    assert "phase 'throttle' ran under an injected throttle (x3)" in msg, msg
    assert "4, 60, 10 req/s, not rising" in msg and "scenarios/sweep.yaml" in msg, msg
    out = subprocess.run(perfkit_cmd("slo", run_id, "--data-dir", str(d)), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "max load meeting the SLOs: not computed" in out.stdout and "scenarios/sweep.yaml" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_a_knee_on_a_ramp_is_refused_and_users_levels_are_found(shaped_runs):
    d, ids = shaped_runs
    with perfkit.open(d) as cat:
        with pytest.raises(NotASweepError, match="phase 'ramp' changes its rate as it runs"):
            run_knee(cat, ids["ramp"])
        lv = load_levels(cat, ids["users"], axis="users", minimum=4)
        assert list(lv.frame["load"]) == [1, 2, 4, 8] and lv.unit == "users"
        fit = run_usl(cat, ids["users"])
        assert fit.lam > 0
        with pytest.raises(NotASweepError, match="0 steady open-loop rates"):
            load_levels(cat, ids["users"])  # a closed-loop sweep has no open-loop rates
