"""perfkit compare on simulator runs: a 20% slower engine is flagged, a different seed is not."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from conftest import perfkit_cmd

import perfkit
from perfkit.analysis import WorkloadMismatchError, compare_runs
from perfkit.client import Endpoint, PhaseSpec
from perfkit.record import TelemetrySpec, record_run
from perfkit.sim import SimConfig, SimEvent, SimProcess

pytestmark = pytest.mark.slow


def _run(data_dir, run_id: str, seed: int, factor: float) -> None:
    events = (SimEvent("slowdown", 0, 10_000, factor=factor),) if factor != 1 else ()
    phases = [
        PhaseSpec("warm", duration_s=2, rate=8, output_tokens=64, warmup=True),
        PhaseSpec("main", duration_s=14, rate=8, prompt_tokens="lognormal:256,0.4", output_tokens=64),
    ]
    with SimProcess(SimConfig(seed=seed, events=events)) as sim:
        asyncio.run(
            record_run(
                Endpoint(sim.url),
                phases,
                data_dir,
                run_id=run_id,
                seed=seed,
                telemetry=TelemetrySpec(gpu="off", host=False),
                notify=lambda _m: None,
            )
        )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    data = tmp_path_factory.mktemp("compare") / "data"
    _run(data, "base", seed=1, factor=1.0)
    _run(data, "reseeded", seed=2, factor=1.0)  # same configuration, other arrivals and lengths
    _run(data, "slower", seed=1, factor=1.2)  # same workload, every engine step 20% longer
    _run(data, "seed3", seed=3, factor=1.0)
    _run(data, "seed4", seed=4, factor=1.0)
    return data


def test_a_20_percent_slower_engine_regresses_itl_p99_and_is_flagged(runs):
    with perfkit.open(runs) as cat:
        res = compare_runs(cat, "base", "slower")
    t = res.table.set_index(["metric", "q"])
    itl99 = t.loc[("itl_ms", 0.99)]
    # 20% longer steps usually raise ITL p99 by 20-30% (slower steps also batch more), but on a VM whose
    # CPU is stolen the tail of both runs is dominated by scheduling stalls (seen once: +9%): the claim
    # checked is that a run whose ITL p99 did regress by 15% or more is flagged, and the run as a whole is
    assert itl99["rel_change"] > 0, itl99
    if itl99["rel_change"] > 0.15:
        assert itl99["verdict"] == "regressed" and itl99["rel_lo"] > 0, itl99
    assert res.regressed and (t["verdict"] == "regressed").sum() >= 3
    out = subprocess.run(
        perfkit_cmd("compare", "base", "slower", "--data-dir", str(runs)), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1, out.stderr
    assert "verdict: regressed" in out.stdout


def test_two_runs_of_one_configuration_with_different_seeds_are_not_flagged(runs):
    a, b = "base", "reseeded"
    with perfkit.open(runs) as cat:
        res = compare_runs(cat, a, b)
    if res.verdict != "no significant change":
        # What is tested is the false-alarm rate, and a false alarm happens by design in at most 5% of pairs; on a
        # shared VM the CPU stolen from the simulator also differs between runs, which is a real change in
        # what was measured that no within-run interval can see (seen once in CI). One such pair is
        # tolerated if a second, independent pair is clean: two in a row would mean a broken comparison.
        print("first pair flagged:\n" + res.table.to_string())
        a, b = "pair2_a", "pair2_b"
        _run(runs, a, seed=5, factor=1.0)
        _run(runs, b, seed=6, factor=1.0)
        with perfkit.open(runs) as cat:
            res = compare_runs(cat, a, b)
    assert res.verdict == "no significant change", res.table.to_string()
    tested = res.table[res.table.verdict != "not tested"]
    # 14-s runs: the p50s and the ITL tail can be estimated (about 120 requests and 7,000 gaps a run), the request
    # tails cannot at their correlation, and those rows say what sample would allow the test
    assert len(tested) >= 3 and (tested.p_adjusted > 0.05).all()
    out = subprocess.run(
        perfkit_cmd("compare", a, b, "--data-dir", str(runs)), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "no significant change" in out.stdout


def test_compare_refuses_bad_input_clearly(runs):
    out = subprocess.run(
        perfkit_cmd("compare", "base", "nope", "--data-dir", str(runs)), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "run 'nope' is not in" in out.stderr
    out = subprocess.run(
        perfkit_cmd("compare", "base", "slower", "--metrics", "ttft,latency", "--data-dir", str(runs)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "latency_ms" in out.stderr and "Traceback" not in out.stderr


def test_against_a_history_of_runs_a_slower_engine_is_flagged_and_another_seed_is_not(runs):
    from perfkit.analysis import compare_to_history

    with perfkit.open(runs) as cat:
        slow = compare_to_history(cat, ["base", "reseeded", "seed3"], "slower")
        same = compare_to_history(cat, ["base", "reseeded", "seed3"], "seed4")
        with pytest.raises(ValueError, match="at least 3 runs"):
            compare_to_history(cat, ["base", "reseeded"], "seed4")
    # three history runs give a t with 2 degrees of freedom: only clear changes pass Holm over 9 rows
    assert slow.regressed, slow.table
    assert same.verdict == "no significant change", same.table
    out = subprocess.run(
        perfkit_cmd("compare", "base,reseeded,seed3", "slower", "--data-dir", str(runs)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "a history of 3 runs" in out.stdout


def test_runs_of_different_workloads_are_refused_unless_the_difference_is_allowed(runs):
    phases = [
        PhaseSpec("warm", duration_s=1, rate=8, output_tokens=64, warmup=True),
        PhaseSpec("main", duration_s=4, rate=8, prompt_tokens="lognormal:256,0.4", output_tokens=128),
    ]
    with SimProcess(SimConfig(seed=7)) as sim:
        asyncio.run(
            record_run(
                Endpoint(sim.url, api="chat"),
                phases,
                runs,
                run_id="chat128",
                seed=7,
                telemetry=TelemetrySpec(gpu="off", host=False),
                notify=lambda _m: None,
            )
        )
    with perfkit.open(runs) as cat:
        with pytest.raises(WorkloadMismatchError) as err:
            compare_runs(cat, "base", "chat128")
        msg = str(err.value)
        assert "API: completions vs chat" in msg and "output tokens asked: 64 vs 128" in msg, msg
        assert "--allow-different api," in msg  # the chat template also lengthens the prompt the server counts
        res = compare_runs(cat, "base", "chat128", allow=("api", "prompt", "output"))
    assert {"api", "output"} <= {d.kind for d in res.differences} <= {"api", "prompt", "output"}
    # the short candidate cannot estimate a p99: the row says what sample would allow the test
    note = res.table.set_index(["metric", "q"]).loc[("ttft_ms", 0.99), "note"]
    assert note.startswith("not tested: run") and "run B has 28 samples" in note, note
    assert "at its correlation would do" in note, note
    cmd = ("compare", "base", "chat128", "--data-dir", str(runs))
    out = subprocess.run(perfkit_cmd(*cmd), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "measured different workloads" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(perfkit_cmd(*cmd, "--allow-different", "all"), capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1) and "the workloads differ (allowed)" in out.stdout, out.stderr
    assert "API: completions vs chat" in out.stdout
