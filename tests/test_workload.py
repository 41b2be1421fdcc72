"""Arrival processes, lengths and content, offline (no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from perfkit.errors import ConfigError
from perfkit.workload import parse_length
from perfkit.workload.arrivals import RateProfile, make_arrivals
from perfkit.workload.content import Conversation, Slo, UserClass, Workload, _spoil


def gaps(kind: str, rate, n: int = 20000, burstiness: float = 1.0, seed: int = 0) -> np.ndarray:
    it = make_arrivals(kind, rate, burstiness).offsets_ns(np.random.default_rng(seed))
    return np.diff(np.array([next(it) for _ in range(n)]) / 1e9)


def cv(x: np.ndarray) -> float:
    return float(np.std(x) / np.mean(x))


def test_poisson_gaps_have_the_rate_and_cv_1():
    g = gaps("poisson", 50)
    assert 1 / g.mean() == pytest.approx(50, rel=0.02) and cv(g) == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("target_cv", [0.5, 2.0, 3.0])
def test_gamma_burstiness_sets_the_cv(target_cv):
    g = gaps("gamma", 20, burstiness=1 / target_cv**2, n=60000)
    assert cv(g) == pytest.approx(target_cv, rel=0.05) and 1 / g.mean() == pytest.approx(20, rel=0.05)


def test_constant_arrivals_are_exact():
    assert np.allclose(gaps("constant", 40, n=100), 0.025)


def test_linear_ramp_has_the_expected_counts_per_window():
    it = make_arrivals("poisson", RateProfile.linear(10, 50, 60)).offsets_ns(np.random.default_rng(1))
    t = []
    for x in it:
        if x >= 60e9:
            break
        t.append(x / 1e9)
    counts = np.histogram(t, bins=[0, 10, 50, 60])[0]
    expected = [10 * 10 + 40 / 60 * 10**2 / 2, None, None]
    assert counts[0] == pytest.approx(expected[0], rel=0.15)
    assert len(t) == pytest.approx((10 + 50) / 2 * 60, rel=0.05)


def test_steps_and_spikes_shape_the_rate():
    p = RateProfile.steps(5, 20, 4, 40).with_spikes([(12, 2, 3)])
    assert p.rate(1) == 5 and p.rate(11) == 10 and p.rate(13) == 30 and p.rate(14.5) == 10 and p.rate(39) == 20
    assert p.cumulative(40) == pytest.approx(10 * (5 + 10 + 15 + 20) + 2 * 20)
    for u in (0.3, 17.0, 123.4, 499.0):
        assert p.cumulative(p.inverse(u)) == pytest.approx(u)


@pytest.mark.parametrize("bad", ["-3", "zipf:1,2", "uniform:5,1", "normal:0,1", "lognormal:100", "abc"])
def test_bad_lengths_are_refused(bad):
    with pytest.raises(ConfigError):
        parse_length(bad)


def test_lengths_are_clipped_and_seeded():
    d = parse_length("lognormal:100,2,10,200")
    a, b = d.sample(np.random.default_rng(3), 1000), d.sample(np.random.default_rng(3), 1000)
    assert (a == b).all() and a.min() >= 10 and a.max() <= 200


def test_class_mix_follows_the_weights():
    w = Workload((UserClass("a", 3), UserClass("b", 1)), seed=0)
    rng = np.random.default_rng(0)
    picks = [w.pick(rng).name for _ in range(4000)]
    assert picks.count("a") / 4000 == pytest.approx(0.75, abs=0.03)


def test_conversations_grow_and_shared_prefix_is_shared():
    cls = UserClass("c", prompt_tokens=10, output_tokens=5, turns=3, shared_prefix_tokens=7)
    w = Workload((cls,), seed=1)
    rng = np.random.default_rng(0)
    conv, _ = w.start(cls, rng)
    conv2, _ = w.start(cls, rng)
    assert conv.system == conv2.system and len(conv.system.split()) == 7
    w.next_user_turn(cls, rng, conv, 0, None)
    first = len(conv.prompt().split())
    conv.add("assistant", "x " * 5)
    w.next_user_turn(cls, rng, conv, 1, None)
    assert len(conv.prompt().split()) == first + 5 + 10
    assert [m["role"] for m in conv.messages()] == ["system", "user", "assistant", "user"]


def test_imperfect_input_kinds():
    rng = np.random.default_rng(0)
    text = "the quick brown fox jumps over the lazy dog " * 5
    assert _spoil(text, "empty", rng) == ""
    assert 0 < len(_spoil(text, "truncate", rng)) < len(text)
    typo = _spoil(text, "typos", rng)
    assert typo != text and abs(len(typo) - len(text)) < len(text) // 10
    assert isinstance(Conversation().prompt(), str)


def test_slo_attainment_rules():
    slo = Slo(ttft_ms=200, tpot_ms=50)
    assert slo.met(True, 150, 40, 5000)
    assert not slo.met(True, 250, 40, 100) and not slo.met(True, 100, 60, 100) and not slo.met(False, 1, 1, 1)
    assert not slo.met(True, None, 10, 10)
    with pytest.raises(ConfigError):
        Slo()


def test_live_window_rolls_and_alerts():
    from perfkit.client.live import LiveWindow
    from perfkit.rows import RequestRecord

    w = LiveWindow(window_s=10)
    ms = 1_000_000
    for i in range(20):
        r = RequestRecord(i, "p", 0, False, None, 0, 1, 4, class_name="chat")
        r.sent_ns, r.first_token_ns, r.end_ns = 0, (10 + i) * ms, 100 * ms
        r.chunk_ns = [r.first_token_ns + k * 5 * ms for k in range(4)]
        r.last_token_ns = r.chunk_ns[-1]
        if i % 4 == 0:
            r.fail("http_status", "HTTP 503")
        r.slo_ok = r.ok and i < 10
        w.add(r)
    snap = w.snapshot(now=5_000 * ms)
    assert snap.done == 20 and snap.errors == 5 and snap.error_rate == 0.25
    assert snap.ttft_p50_ms == pytest.approx(np.percentile([10 + i for i in range(20) if i % 4], 50))
    assert snap.itl_p50_ms == pytest.approx(5.0)
    assert snap.slo_attainment["chat"] == pytest.approx(7 / 20)
    alerts = snap.alerts()
    assert any("error rate 25.0%" in a for a in alerts) and any("class chat" in a for a in alerts)
    assert w.snapshot(now=20_000 * ms).done == 0  # everything has rolled out of the window


def test_live_window_stays_bounded_when_nobody_reads_it():
    """A script's record_run has no live view calling snapshot(): the window must still drop old requests
    (it grew by about 110 bytes a request, 102 MB over a 1M-request run, before this was fixed)."""
    from perfkit.client.live import LiveWindow
    from perfkit.rows import RequestRecord

    w = LiveWindow(window_s=10)
    s = 1_000_000_000
    for i in range(10_000):  # 100 requests a second for 100 s
        r = RequestRecord(i, "p", 0, False, None, 0, 1, 4)
        r.sent_ns, r.first_token_ns, r.end_ns = i * s // 100, i * s // 100 + 1, i * s // 100 + 2
        w.add(r)
    assert len(w._done) <= 1_001
    assert w.snapshot(now=r.end_ns).done == len(w._done)


@pytest.mark.parametrize(
    "kind, expected, answer, ok",
    [
        ("exact", "42", " 42 ", True),
        ("exact", "42", "42.", False),
        ("contains", "Paris", "It is paris.", True),
        ("contains", "Paris", "Lyon", False),
        ("regex", r"^\s*tac\s*$", " tac", True),
        ("regex", r"^tac$", "cat", False),
        ("json", None, '{"a": 1}', True),
        ("json", None, "{a: 1}", False),
        ("json_schema", {"type": "object", "required": ["ok"]}, '{"ok": true}', True),
        ("json_schema", {"type": "object", "required": ["ok"]}, '{"no": 1}', False),
    ],
)
def test_response_checks(kind, expected, answer, ok):
    from perfkit.workload.checks import Check

    passed, why = Check(kind, expected).evaluate(answer)
    assert passed is ok and (why is None) is ok


@pytest.mark.parametrize(
    "kind, expected, message",
    [
        ("fuzzy", "x", "not one of exact"),
        ("regex", "([", "does not compile"),
        ("exact", 5, "needs a string"),
        ("json_schema", {"type": "nonsense"}, "schema is invalid"),
    ],
)
def test_bad_checks_are_refused(kind, expected, message):
    from perfkit.workload.checks import Check

    with pytest.raises(ConfigError, match=message):
        Check(kind, expected)


def test_a_shared_prefix_longer_than_any_prompt_is_refused_before_it_is_made():
    # made whole when the workload is built: 10^12 words would take the machine's memory first
    with pytest.raises(ConfigError, match="shared_prefix_tokens 1000000000000 is more than 131072"):
        UserClass("c", prompt_tokens=10, output_tokens=5, shared_prefix_tokens=10**12)
    assert UserClass("c", prompt_tokens=10, output_tokens=5, shared_prefix_tokens=131072).shared_prefix_tokens == 131072


def test_runs_send_their_own_words_unless_asked_for_the_same_ones_with_the_same_ids_every_server_accepts():
    """A second run against one server found 71-85% of its prompt tokens in the first run's prefix cache."""
    import asyncio
    import json
    import uuid

    from perfkit.client import Endpoint, PhaseSpec
    from perfkit.client.runner import LoadRunner
    from perfkit.rows import MemorySink

    class Capture:  # a transport that answers at once and keeps what it was sent
        def __init__(self) -> None:
            self.sent: list[tuple[dict, dict]] = []

        async def send(self, request, record):
            self.sent.append((dict(request.headers), json.loads(request.body)))
            record.sent_ns = record.end_ns = record.intended_ns
            return record

        async def close(self) -> None:
            pass

        def describe(self) -> dict:
            return {"kind": "capture"}

    def prompts(run_id: str, salt: str | None, request_id: bool = True) -> tuple[list[str], list[dict]]:
        t = Capture()
        phase = PhaseSpec("p", requests=6, concurrency=1, prompt_tokens="lognormal:64,0.3", output_tokens=4)
        ep = Endpoint("http://127.0.0.1:9", model="m", request_id=request_id)
        asyncio.run(LoadRunner(ep, [phase], MemorySink(), seed=3, run_id=run_id, transport=t, prompt_salt=salt).run())
        return [b["prompt"] for _, b in t.sent], [h for h, _ in t.sent]

    a, heads = prompts("run-a", "run-a")
    b, _ = prompts("run-b", "run-b")
    assert [len(x.split()) for x in a] == [len(x.split()) for x in b]  # the seed's lengths either way
    assert all(x != y for x, y in zip(a, b))  # different words: nothing for a prefix cache to find
    assert prompts("run-a", None)[0] == prompts("run-b", None)[0]  # the same words, on request
    assert all(uuid.UUID(h["X-Request-Id"]) for h in heads)  # llama-cpp-python accepts only a UUID
    assert "X-Request-Id" not in prompts("run-c", "run-c", request_id=False)[1][0]
