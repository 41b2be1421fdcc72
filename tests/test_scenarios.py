"""Scenario files and production-like traffic against the simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import yaml

import perfkit
from perfkit.client import Endpoint, PhaseSpec
from perfkit.errors import ConfigError
from perfkit.record import record_run
from perfkit.sim import SimConfig
from perfkit.workload.content import UserClass
from perfkit.workload.scenario import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
OK_PHASE = {"name": "p", "duration_s": 5, "load": {"rate": 2}}


def run(sim_url: str, phases, data_dir, **kw) -> tuple[str, perfkit.Catalog]:
    res = asyncio.run(record_run(Endpoint(sim_url, api=kw.pop("api", "completions")), list(phases), data_dir, **kw))
    return res.run_id, perfkit.open(data_dir)


# -- ten-plus kinds of scenario mistakes, each with its message ----------------------------------
MISTAKES = [
    (
        {"phases": [{**OK_PHASE, "duraton_s": 5}]},
        "phases[0].duraton_s: unknown field 'duraton_s' (did you mean 'duration_s'?)",
    ),
    ({"phase": [OK_PHASE]}, "bad.yaml: phase: unknown field 'phase' (did you mean 'phases'?)"),
    ({"phases": []}, "phases: expected a non-empty list of phases"),
    ({"phases": [{"name": "p", "load": {"rate": 2}}]}, "give a duration_s or a number of requests"),
    ({"phases": [{"duration_s": 5, "load": {"rate": 2}}]}, "phases[0]: missing required field 'name'"),
    ({"phases": [OK_PHASE, OK_PHASE]}, "phase names must be unique; repeated: p"),
    ({"phases": [{**OK_PHASE, "load": {"rate": 2, "users": 3}}]}, "give exactly one of users (closed loop), rate"),
    ({"phases": [{**OK_PHASE, "load": {"rate": -1}}]}, "load.rate: value -1 must be > 0"),
    ({"phases": [{**OK_PHASE, "load": {"rate": "fast"}}]}, "load.rate: value 'fast' is not a number"),
    (
        {"phases": [{**OK_PHASE, "load": {"rate": 2, "arrival": "weibull"}}]},
        "load.arrival: value 'weibull' is not one of constant, poisson, gamma",
    ),
    (
        {"phases": [{**OK_PHASE, "load": {"rate": 2, "arrival": "gamma", "burstiness": 0}}]},
        "load.burstiness: value 0 must be > 0",
    ),
    ({"phases": [{**OK_PHASE, "load": {"rate": 2, "burstiness": 0.5}}]}, "burstiness needs arrival: gamma"),
    ({"phases": [{**OK_PHASE, "load": {"users": 2.5}}]}, "load.users: value 2.5 is not an integer"),
    ({"phases": [{**OK_PHASE, "prompt_tokens": "zipf:1,2"}]}, "kind 'zipf' is not one of fixed, uniform, normal"),
    ({"phases": [OK_PHASE], "classes": [{"name": "a", "weight": 0}]}, "classes[0] ('a').weight: value 0 must be > 0"),
    (
        {"phases": [OK_PHASE], "classes": [{"name": "a", "slo": {"ttft_p99": 5}}]},
        "slo.ttft_p99: unknown field 'ttft_p99' (did you mean 'ttft_ms'?); allowed: ttft_ms, tpot_ms, itl_ms, e2e_ms",
    ),
    (
        {"phases": [OK_PHASE], "classes": [{"name": "a", "imperfect": "rude"}]},
        "imperfect: value 'rude' is not one of typos, truncate, empty, long",
    ),
    ({"phases": [OK_PHASE], "classes": [{"name": "a"}, {"name": "a"}]}, "class names must be unique"),
    ({"phases": [{**OK_PHASE, "load": {"trace": "nope.csv"}}]}, "load.trace: file"),
    (
        {"phases": [{**OK_PHASE, "load": {"rate": 2, "spikes": [{"at_s": 1, "duration_s": 2}]}}]},
        "spikes[0]: missing required field 'factor'",
    ),
    ({"phases": [{**OK_PHASE, "load": {"ramp": {"from": 1}}}]}, "load.ramp: missing required field 'to'"),
    ({"phases": [{**OK_PHASE, "load": {"rate": 2, "think_time_s": 1}}]}, "think_time_s applies to closed-loop users"),
    ({"phases": [OK_PHASE], "api": "grpc"}, "api: value 'grpc' is not one of completions, chat"),
    (
        {"phases": [{"name": "s", "load": {"sweep": {"rates": [1, -2], "step_duration_s": 3}}}]},
        "sweep.rates: value [1, -2] must be a non-empty list of rates > 0",
    ),
    ([1, 2], "expected a mapping"),
]


@pytest.mark.parametrize("spec, message", MISTAKES, ids=[m for _, m in MISTAKES])
def test_scenario_mistakes_are_named_precisely(tmp_path, spec, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_yaml_syntax_errors_carry_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("phases:\n  - name: a\n    load: {rate: 2\n")
    with pytest.raises(ConfigError, match=r"(?s)not valid YAML.*line 3"):
        load_scenario(path)


def test_trace_without_the_needed_columns(tmp_path):
    (tmp_path / "t.csv").write_text("when,in,out\n1,2,3\n")
    with pytest.raises(ConfigError, match="lacks a time column"):
        parse_scenario({"phases": [{"name": "r", "load": {"trace": "t.csv"}}]}, "s.yaml", tmp_path)


# -- the must-show measurements -------------------------------------------------------------------
@pytest.mark.slow
def test_poisson_50_per_s_for_60_s_and_gamma_cv3_against_the_simulator(fresh_sim, data_dir):
    sim = fresh_sim(seed=4)
    phases = [
        PhaseSpec("poisson", duration_s=60, rate=50, arrival="poisson", prompt_tokens=32, output_tokens=4),
        PhaseSpec(
            "gamma", duration_s=60, rate=50, arrival="gamma", burstiness=1 / 9, prompt_tokens=32, output_tokens=4
        ),
    ]
    run_id, cat = run(sim.url, phases, data_dir, seed=8)
    with cat:
        sent = {
            ph: np.sort(np.array(cat.sql(f"SELECT sent_ns FROM requests WHERE phase = '{ph}'").fetchall()).ravel())
            / 1e9
            for ph in ("poisson", "gamma")
        }
        fid = cat.fidelity(run_id).df().set_index("phase")
    g = np.diff(sent["poisson"])
    assert (len(sent["poisson"]) - 1) / (sent["poisson"][-1] - sent["poisson"][0]) == pytest.approx(50, abs=2)
    assert np.std(g) / np.mean(g) == pytest.approx(1.0, abs=0.05)
    g = np.diff(sent["gamma"])
    assert np.std(g) / np.mean(g) == pytest.approx(3.0, abs=0.3)
    assert not fid.loc["poisson", "client_behind"]
    assert fid.loc["poisson", "achieved_rate_rps"] == pytest.approx(50, abs=2)


@pytest.mark.slow
def test_trace_replay_reproduces_inter_arrival_times(sim, data_dir, record_property):
    """Replays the bundled trace at 4x speed (≈ 16 req/s, ≈ 25 concurrent streams).

    Measured here (2 cores shared with the simulator): median gap error ≈ 0.02 ms, p99 1.4–2.9 ms on a
    quiet machine. The p99 tail comes from bursts of chunk processing (every stream's token of an engine
    step arrives at once) that a due request waits behind; under 1 ms needs the multi-process sender of
    the performance issue. When the virtual machine's CPU is being stolen (seen: 54 stalls/s of up to
    12 ms for a bare busy loop, against 17/s under 0.55 ms on a quiet day), the same code measured a
    median of 0.17–0.38 ms and a p99 of 5–16 ms, the commit before the telemetry as much as after it.
    The precise figures belong to ``bench/schedule_fidelity.py``; this test keeps bounds that a broken
    scheduler fails (asyncio's ~1 ms timer granularity alone puts the median near 0.5 ms) and that
    a stolen CPU does not.
    """
    scen = parse_scenario(
        {"phases": [{"name": "replay", "load": {"trace": "inputs/azure_style_trace.csv", "time_scale": 0.25}}]},
        "trace.yaml",
        ROOT / "scenarios",
    )
    trace = scen.phases[0].trace
    run_id, cat = run(sim.url, scen.phases, data_dir)
    with cat:
        rows = cat.sql(
            "SELECT sent_ns, prompt_tokens_target, output_tokens_target FROM requests ORDER BY sent_ns"
        ).fetchall()
    sent = np.array([r[0] for r in rows])
    offsets = np.array(trace.offsets)
    assert len(sent) == len(offsets)
    gap_err_ms = np.abs(np.diff(sent) - np.diff(offsets)) / 1e6  # inter-arrival times
    offset_err_ms = np.abs((sent - sent[0]) - (offsets - offsets[0])) / 1e6  # and the schedule as a whole
    record_property("gap_err_p99_ms", float(np.percentile(gap_err_ms, 99)))
    assert np.median(gap_err_ms) < 0.45, np.median(gap_err_ms)
    assert np.percentile(gap_err_ms, 99) < 25.0, np.percentile(gap_err_ms, 99)
    assert np.percentile(offset_err_ms, 99) < 25.0, np.percentile(offset_err_ms, 99)
    # lengths follow the trace too (output tokens exactly; prompts are word counts of made text)
    assert sorted(r[2] for r in rows) == sorted(trace.output_tokens)


# -- sessions, classes, SLOs ------------------------------------------------------------------------
def test_multi_turn_sessions_grow_prompt_tokens_turn_by_turn(sim, data_dir):
    cls = UserClass("chat", prompt_tokens=20, output_tokens=6, turns=4, think_time_s=0.05)
    run_id, cat = run(sim.url, [PhaseSpec("s", duration_s=2, rate=3, classes=(cls,))], data_dir, api="chat")
    with cat:
        rows = cat.sql("SELECT session_id, turn, prompt_tokens FROM requests WHERE ok ORDER BY 1, 2").fetchall()
    sessions: dict[int, list[int]] = {}
    for sid, _turn, ptok in rows:
        sessions.setdefault(sid, []).append(ptok)
    full = [v for v in sessions.values() if len(v) == 4]
    assert full, sessions
    for v in full:  # each turn carries the history: 20 new words + 6 answer words per earlier turn
        assert v == [v[0] + 26 * i for i in range(4)], v


def test_per_class_slo_attainment_appears_in_the_summary(sim, data_dir, capsys):
    classes = (
        UserClass("fast", 3, prompt_tokens=16, output_tokens=4, slo=perfkit_slo(ttft_ms=10_000)),
        UserClass("strict", 1, prompt_tokens=16, output_tokens=4, slo=perfkit_slo(ttft_ms=0.001)),
        UserClass("free", 1, prompt_tokens=16, output_tokens=4),
    )
    run_id, cat = run(sim.url, [PhaseSpec("mix", duration_s=3, rate=15, classes=classes)], data_dir)
    with cat:
        slo = cat.slo(run_id).df().set_index("class_name")
        from perfkit.cli.tables import print_run

        print_run(cat, run_id)
    assert slo.loc["fast", "slo_attainment"] == 1.0 and slo.loc["strict", "slo_attainment"] == 0.0
    assert np.isnan(slo.loc["free", "slo_attainment"])
    assert slo.loc["fast", "requests"] > slo.loc["strict", "requests"]
    assert "SLO met %" in capsys.readouterr().out


def perfkit_slo(**kw):
    from perfkit.workload.content import Slo

    return Slo(**kw)


def test_impatient_users_are_recorded_as_cancelled(sim, data_dir):
    cls = UserClass("impatient", prompt_tokens=8, output_tokens=300, cancel_fraction=1.0, cancel_after_s=0.3)
    run_id, cat = run(sim.url, [PhaseSpec("c", requests=3, concurrency=1, classes=(cls,))], data_dir)
    with cat:
        rows = cat.sql("SELECT error_kind, error_message, e2e_ms, n_chunks FROM requests").fetchall()
    assert [r[0] for r in rows] == ["cancelled"] * 3
    assert all("gave up after 0.3 s" in r[1] and 250 < r[2] < 600 and r[3] > 0 for r in rows)


def test_sweep_stops_early_when_its_rule_fires(sim, data_dir):
    scen = parse_scenario(
        {
            "phases": [
                {
                    "name": "sw",
                    "load": {"sweep": {"rates": [2, 4, 8], "step_duration_s": 1, "stop_when": {"ttft_p99_ms": 0.01}}},
                }
            ]
        }
    )
    run_id, cat = run(sim.url, scen.phases, data_dir)
    with cat:
        phases = [r[0] for r in cat.sql("SELECT DISTINCT phase FROM requests").fetchall()]
        manifest = cat.manifest(run_id)
    assert phases == ["sw@2"]
    assert manifest["sweep_stops"][0]["after_phase"] == "sw@2" and "TTFT p99" in manifest["sweep_stops"][0]["reason"]


def test_same_scenario_and_seed_send_the_same_requests(sim, tmp_path):
    phases = [PhaseSpec("p", duration_s=1.5, rate=10, prompt_tokens="uniform:10,50", output_tokens="uniform:2,6")]
    seqs = []
    for k in range(2):
        run_id, cat = run(sim.url, phases, tmp_path / f"d{k}", seed=77)
        with cat:
            rows = cat.sql(
                "SELECT intended_ns, prompt_tokens_target, output_tokens_target FROM requests ORDER BY request_id"
            ).fetchall()
        t0 = rows[0][0]
        seqs.append([(r[0] - t0, r[1], r[2]) for r in rows])
    assert seqs[0] == seqs[1]


# -- every example scenario runs as-is against the simulator, shortened ------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_example_scenario_runs_against_the_simulator(fresh_sim, data_dir, path):
    scen = load_scenario(path)
    total = sum(p.duration_s or (p.trace.offsets[-1] / 1e9 if p.trace else 5) for p in scen.phases)
    short = scen.scaled(min(1.0, 6.0 / total))
    sim = fresh_sim(**SimConfig().to_dict() | {"events": ()})
    run_id, cat = run(
        sim.url, short.phases, data_dir, api=scen.api or "completions", seed=scen.seed, drain_timeout_s=10
    )
    with cat:
        s = cat.summary(run_id, include_warmup=True).df()
        assert s["requests"].sum() > 0
        assert (s["error_rate"] < 0.5).all() or path.stem == "multiclass_mix"


def test_probes_are_checked_and_quality_degrades_under_load(fresh_sim, data_dir):
    from perfkit.workload.checks import Check, Probe

    sim = fresh_sim(max_num_seqs=16, probe_wrong_rate=0.0, probe_wrong_rate_full=1.0)
    probes = (Probe("capital of France?", Check("contains", "Paris")), Probe("7 x 6?", Check("exact", "42")))
    cls = UserClass("probe", prompt_tokens=8, output_tokens=8, probes=probes, slo=perfkit_slo(ttft_ms=60_000))
    bulk = UserClass("bulk", 3, prompt_tokens=64, output_tokens=200)
    phases = [
        PhaseSpec("light", requests=12, concurrency=1, classes=(cls,)),
        PhaseSpec("heavy", duration_s=3, rate=30, arrival="constant", classes=(cls, bulk)),
    ]  # saturates 16 slots
    run_id, cat = run(sim.url, phases, data_dir, drain_timeout_s=30)
    with cat:
        by = cat.slo(run_id).df().set_index(["phase", "class_name"])
        bad = cat.sql("SELECT check_message FROM requests WHERE check_ok = FALSE LIMIT 1").fetchall()
        slo_vs_check = cat.sql("SELECT count(*) FROM requests WHERE check_ok = FALSE AND slo_ok").fetchall()[0][0]
    assert by.loc[("light", "probe"), "wrong_answers"] == 0
    assert by.loc[("heavy", "probe"), "semantic_error_rate"] > 0.5  # a full batch answers worse
    assert bad and ("does not contain" in bad[0][0] or "expected exactly" in bad[0][0])
    assert slo_vs_check == 0  # a wrong answer never meets its SLO


def test_automatic_sweep_measures_sync_and_max_then_steps_between(sim, data_dir):
    scen = parse_scenario(
        {
            "phases": [
                {
                    "name": "sw",
                    "prompt_tokens": 16,
                    "output_tokens": 8,
                    "load": {"sweep": {"auto": True, "steps": 3, "step_duration_s": 1.5, "max_users": 12}},
                }
            ]
        }
    )
    run_id, cat = run(sim.url, scen.phases, data_dir)
    with cat:
        manifest = cat.manifest(run_id)
        fid = cat.fidelity(run_id).df()
    names = [p["name"] for p in manifest["phases"]]
    assert names[:2] == ["sw-synchronous", "sw-throughput"] and len(names) == 5
    rates = [p["rate"] for p in manifest["phases"][2:]]
    assert rates == sorted(rates) and rates[0] > 0
    gaps = np.diff(rates)
    assert np.allclose(gaps, gaps[0], rtol=1e-6)  # evenly spaced between the measured ends
    steps = fid[fid["phase"].str.startswith("sw@")]
    assert len(steps) == 3 and (steps["target_rate_rps"] > 0).all()


def test_sweep_config_mistakes(tmp_path):
    with pytest.raises(ConfigError, match="automatic sweep measures its own rates"):
        parse_scenario(
            {"phases": [{"name": "s", "load": {"sweep": {"auto": True, "rates": [1], "step_duration_s": 2}}}]}
        )


def test_sweep_stops_when_the_server_saturates(fresh_sim, data_dir):
    sim = fresh_sim(max_num_seqs=4)  # saturates near 4 / (64 tokens × ~8 ms) ≈ 8 req/s
    scen = parse_scenario(
        {
            "phases": [
                {
                    "name": "sw",
                    "prompt_tokens": 16,
                    "output_tokens": 64,
                    "load": {
                        "sweep": {"rates": [2, 40, 60], "step_duration_s": 2, "stop_when": {"min_completion": 0.9}}
                    },
                }
            ]
        }
    )
    run_id, cat = run(sim.url, scen.phases, data_dir, drain_timeout_s=30)
    with cat:
        manifest = cat.manifest(run_id)
    stops = manifest["sweep_stops"]
    assert [s["after_phase"] for s in stops] == ["sw@40"] and "saturated" in stops[0]["reason"]


def test_every_scenario_validates_against_the_published_json_schema_made_from_the_loaders_rules():
    """scenarios/scenario.schema.json is what the loader's field lists make, and every shipped scenario
    passes it; a field the loader refuses, the schema refuses too."""
    import json

    import jsonschema
    import yaml

    from perfkit.workload.scenario import parse_scenario, scenario_schema

    root = Path(__file__).resolve().parents[1]
    published = json.loads((root / "scenarios" / "scenario.schema.json").read_text())
    assert published == scenario_schema(), "run: perfkit schema --scenario > scenarios/scenario.schema.json"
    jsonschema.Draft202012Validator.check_schema(published)
    validator = jsonschema.Draft202012Validator(published)
    files = sorted((root / "scenarios").glob("*.yaml"))
    assert len(files) >= 7
    for path in files:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert errors == [], (path.name, errors)
    bad = {"phases": [{"name": "a", "duration_s": 5, "load": {"rate": 5, "arival": "poisson"}}]}
    assert list(validator.iter_errors(bad))
    with pytest.raises(ConfigError, match="unknown field 'arival'"):
        parse_scenario(bad)
    worse = {"phases": [{"name": "a", "duration_s": 5, "load": {"rate": -1}}]}
    assert list(validator.iter_errors(worse))
    with pytest.raises(ConfigError):
        parse_scenario(worse)
