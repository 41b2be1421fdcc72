"""The simulated engine: determinism, the load curve, KV limits, events."""

from __future__ import annotations

import numpy as np
import pytest

from perfkit.errors import ConfigError
from perfkit.sim import SimConfig, SimEvent, replay
from perfkit.sim.config import load_sim_config


def poisson(rate: float, seconds: float, prompt: int = 256, out: int = 128, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1e9 / rate, size=int(rate * seconds)))
    return [(int(a), prompt, out) for a in t]


def ttft_ms(reqs) -> np.ndarray:
    return np.array([(r.first_token_ns - r.arrival_ns) / 1e6 for r in reqs])


def test_same_arrivals_give_the_same_schedule():
    arr = poisson(15, 20)
    a = replay(SimConfig(), arr)
    b = replay(SimConfig(), arr)
    assert [r.token_ns for r in a] == [r.token_ns for r in b]


def test_single_request_timing_follows_the_step_model():
    cfg = SimConfig()
    (r,) = replay(cfg, [(0, 100, 5)])
    prefill_step = cfg.step_base_ms + cfg.prefill_ms_per_token * 100 + cfg.attn_ms_per_kv_token * 100
    assert r.first_token_ns == pytest.approx(prefill_step * 1e6, abs=1)
    gaps = np.diff(r.token_ns) / 1e6
    # decode step with one sequence: base + per-seq + attention over its context
    expected = [cfg.step_base_ms + cfg.decode_ms_per_seq + cfg.attn_ms_per_kv_token * (100 + k) for k in range(1, 5)]
    assert gaps == pytest.approx(expected, abs=1e-5)
    assert len(r.token_ns) == 5 and r.finish_ns == r.token_ns[-1]


def test_latency_is_flat_then_knees_then_blows_up():
    med = {rate: np.median(ttft_ms(replay(SimConfig(), poisson(rate, 60)))) for rate in (2, 10, 40)}
    assert med[2] < 30 and med[10] < 1.5 * med[2] + 10  # flat at light load
    assert med[40] > 50 * med[10]  # past saturation the queue grows without bound


def test_itl_grows_with_batch_size():
    itl = {}
    for rate in (1, 20):
        reqs = replay(SimConfig(), poisson(rate, 40))
        itl[rate] = np.median(np.concatenate([np.diff(r.token_ns) for r in reqs])) / 1e6
    assert itl[20] > itl[1] * 1.3


def test_kv_cache_pressure_causes_preemption_and_waiting():
    cfg = SimConfig(kv_capacity_tokens=4096, max_num_seqs=64)
    reqs = replay(cfg, poisson(20, 10, prompt=512, out=256))
    assert sum(r.preemptions for r in reqs) > 0
    assert all(len(r.token_ns) == 256 for r in reqs)  # everyone finishes eventually


def test_chunked_prefill_splits_long_prompts_over_steps():
    cfg = SimConfig(max_batched_tokens=512)
    (r,) = replay(cfg, [(0, 2000, 2)])
    # 2000 tokens need 4 steps of at most 512 tokens before the first token
    one_step = cfg.step_base_ms + cfg.prefill_ms_per_token * 512
    assert r.first_token_ns / 1e6 > 3 * one_step


def test_slowdown_event_multiplies_step_time():
    base = replay(SimConfig(), [(0, 10, 50)])[0]
    slow = replay(SimConfig(events=(SimEvent("slowdown", 0, 100, factor=3.0),)), [(0, 10, 50)])[0]
    ratio = (slow.finish_ns - slow.arrival_ns) / (base.finish_ns - base.arrival_ns)
    assert ratio == pytest.approx(3.0, rel=1e-3)


def test_stall_event_stops_tokens_for_its_window():
    cfg = SimConfig(events=(SimEvent("stall", 0.05, 0.55),))
    (r,) = replay(cfg, [(0, 10, 40)])
    gaps = np.diff(r.token_ns) / 1e6
    assert gaps.max() > 450


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"max_num_seqs": 0}, "max_num_seqs must be > 0"),
        ({"nonsense": 1}, "unknown field"),
        ({"events": [{"kind": "meteor", "start_s": 0, "end_s": 1}]}, "event kind 'meteor'"),
        ({"events": [{"kind": "slowdown", "start_s": 5, "end_s": 1}]}, "start_s < end_s"),
        ({"events": [{"kind": "error_burst", "start_s": 0, "end_s": 1, "status": 418}]}, "status must be"),
    ],
)
def test_bad_config_is_refused_with_the_field_named(tmp_path, bad, message):
    path = tmp_path / "sim.yaml"
    import yaml

    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match=message) as info:
        load_sim_config(path)
    assert str(path) in str(info.value)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_sim_config(tmp_path / "nope.yaml")
