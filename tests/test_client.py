"""The streaming client and the load runner against real sockets."""

from __future__ import annotations

import socket

import duckdb
import numpy as np
import pytest
from badserver import BadServer

from perfkit.client import (
    AiohttpTransport,
    Endpoint,
    LoadRunner,
    PhaseSpec,
    Request,
    RequestRecord,
)
from perfkit.client.endpoint import discover_model, normalize_base_url, request_uuid
from perfkit.errors import ConfigError, EndpointError
from perfkit.record import record_run
from perfkit.rows import MemorySink
from perfkit.sim import SimEvent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_phases(url: str, phases: list[PhaseSpec], **kw) -> list[RequestRecord]:
    sink = MemorySink()
    ep = Endpoint(url, model=kw.pop("model", "perfkit-sim-7b"), api=kw.pop("api", "completions"))
    await LoadRunner(ep, phases, sink, **kw).run()
    return sink.rows.get("requests", [])


@pytest.mark.parametrize(
    "given, expected",
    [
        ("http://h:8000", "http://h:8000/v1"),
        ("http://h:8000/", "http://h:8000/v1"),
        ("http://h:8000/v1/", "http://h:8000/v1"),
        ("https://x.y/api/v1", "https://x.y/api/v1"),
    ],
)
def test_base_url_with_or_without_v1(given, expected):
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize("bad", ["localhost:8000", "ftp://h", "http://", ""])
def test_invalid_urls_are_refused_clearly(bad):
    with pytest.raises(ConfigError, match="not an http"):
        Endpoint(bad)


async def test_light_load_ttft_and_itl_medians_match_the_simulator_log_within_1_5ms(fresh_sim, data_dir):
    sim = fresh_sim(seed=3)
    # a recorded warm-up first: the first requests of a fresh process pay one-time costs (measured up to
    # +1.3 ms on the median against +0.6 ms warm), and summaries leave warm-up out just the same
    phases = [
        PhaseSpec("warmup", requests=8, concurrency=1, prompt_tokens=64, output_tokens=32, warmup=True),
        PhaseSpec("light", requests=40, concurrency=1, prompt_tokens=64, output_tokens=32),
    ]
    res = await record_run(Endpoint(sim.url), phases, data_dir)
    log = {r["request_id"]: r for r in sim.request_log()}
    con = duckdb.connect()
    reqs = con.sql(
        f"SELECT request_id, ttft_ms FROM read_parquet('{data_dir}/requests/*/*.parquet') WHERE NOT warmup ORDER BY 1"
    ).fetchall()
    chunks = con.sql(
        f"SELECT c.request_id, c.itl_ms FROM read_parquet('{data_dir}/chunks/*/*.parquet') c "
        f"JOIN read_parquet('{data_dir}/requests/*/*.parquet') r USING (request_id) "
        "WHERE c.itl_ms IS NOT NULL AND NOT r.warmup"
    ).fetchall()
    assert len(reqs) == 40
    sim_ttft, sim_itl = [], []
    for rid, _ in reqs:
        entry = log[request_uuid(res.run_id, rid)]
        sim_ttft.append((entry["first_token_ns"] - entry["http_arrival_ns"]) / 1e6)
        sim_itl += list(np.diff(entry["chunk_write_ns"]) / 1e6)
    ours_ttft = np.median([t for _, t in reqs])
    ours_itl = np.median([t for _, t in chunks])
    # the client's TTFT also holds the request's way in (send, loopback, the server's HTTP parsing): typically
    # 0.5-0.8 ms here, and up to 1.04 ms seen on this shared 2-core VM while other tests ran
    assert abs(ours_ttft - np.median(sim_ttft)) < 1.5, (ours_ttft, np.median(sim_ttft))
    assert abs(ours_itl - np.median(sim_itl)) < 1.0, (ours_itl, np.median(sim_itl))


async def test_records_carry_usage_tokens_and_per_chunk_token_counts(sim, loop_guard):
    recs = await run_phases(sim.url, [PhaseSpec("p", requests=3, concurrency=1, prompt_tokens=20, output_tokens=9)])
    for r in recs:
        assert r.ok and r.status == 200 and r.finish_reason == "length"
        assert r.prompt_tokens == 20 and r.output_tokens == 9 and r.output_tokens_source == "usage"
        assert r.chunk_tokens == [1] * 9 and len(r.chunk_ns) == 9
        assert r.intended_ns <= r.sent_ns <= r.headers_ns <= r.first_token_ns <= r.last_token_ns <= r.end_ns


async def test_chat_api_skips_the_role_only_chunk_for_ttft(sim, loop_guard):
    recs = await run_phases(
        sim.url, [PhaseSpec("p", requests=2, concurrency=1, prompt_tokens=8, output_tokens=4)], api="chat"
    )
    for r in recs:
        assert r.ok and len(r.chunk_ns) == 4 and r.empty_chunks >= 1


async def test_tokens_counted_from_chunks_when_the_server_gives_no_usage(sim):
    ep = Endpoint(sim.url, model="perfkit-sim-7b", continuous_usage=False)
    transport = AiohttpTransport(4)
    rec = RequestRecord(0, "p", 0, False, None, 0, 3, 5)
    body = ep.payload("a b c", 5).replace(b'"include_usage": true', b'"include_usage": false')
    await transport.send(Request(ep.url, ep.headers(), body), rec)
    await transport.close()
    assert rec.ok and rec.output_tokens == 5 and rec.output_tokens_source == "chunks"
    assert rec.chunk_tokens == [None] * 5


async def test_open_loop_poisson_follows_its_schedule(sim, loop_guard):
    recs = await run_phases(
        sim.url, [PhaseSpec("p", duration_s=3, rate=20, arrival="poisson", prompt_tokens=16, output_tokens=4)], seed=5
    )
    assert 35 <= len(recs) <= 90  # 60 expected
    lag = np.array([(r.sent_ns - r.intended_ns) / 1e6 for r in recs])
    assert np.median(lag) < 5
    gaps = np.diff(sorted(r.intended_ns for r in recs)) / 1e9
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(1.0, abs=0.35)  # exponential gaps: CV ≈ 1


async def test_constant_rate_is_evenly_spaced_and_seeded(sim):
    phases = [PhaseSpec("p", requests=10, rate=50, arrival="constant", prompt_tokens=4, output_tokens=2)]
    recs = await run_phases(sim.url, phases)
    offs = sorted(r.intended_ns for r in recs)
    assert np.allclose(np.diff(offs), 20e6, atol=1)


async def test_max_in_flight_cap_shows_up_as_schedule_lag(sim):
    phases = [
        PhaseSpec("p", requests=12, rate=200, arrival="constant", max_in_flight=2, prompt_tokens=4, output_tokens=20)
    ]
    recs = await run_phases(sim.url, phases)
    lag = max((r.sent_ns - r.intended_ns) / 1e6 for r in recs)
    assert lag > 200  # 12 requests of ~160 ms through 2 slots cannot keep a 5-ms schedule


async def test_closed_loop_users_and_warmup_flag(sim):
    phases = [
        PhaseSpec("warm", requests=4, concurrency=2, prompt_tokens=4, output_tokens=2, warmup=True),
        PhaseSpec("main", requests=6, concurrency=3, prompt_tokens=4, output_tokens=2),
    ]
    recs = await run_phases(sim.url, phases)
    assert sum(r.warmup for r in recs) == 4
    assert {r.user_id for r in recs if r.phase == "main"} == {0, 1, 2}
    assert sorted(r.request_id for r in recs) == list(range(10))


async def test_unreachable_endpoint_is_recorded_per_request_not_raised():
    url = f"http://127.0.0.1:{free_port()}"
    recs = await run_phases(url, [PhaseSpec("p", requests=3, concurrency=1, prompt_tokens=4, output_tokens=2)])
    assert [r.error_kind for r in recs] == ["connect_error"] * 3


async def test_model_discovery_fails_clearly_when_unreachable():
    with pytest.raises(EndpointError, match="cannot reach .* Is the server running"):
        await discover_model(Endpoint(f"http://127.0.0.1:{free_port()}"))


async def test_stall_longer_than_the_read_timeout_is_a_read_timeout(fresh_sim):
    s = fresh_sim()
    s.schedule_events([SimEvent("stall", 0.1, 3.0)])
    recs = await run_phases(
        s.url, [PhaseSpec("p", requests=1, concurrency=1, prompt_tokens=4, output_tokens=50)], read_timeout_s=0.5
    )
    assert recs[0].error_kind == "read_timeout" and recs[0].chunk_ns  # the chunks before the stall are kept


async def test_injected_http_errors_and_in_stream_errors_are_data(fresh_sim):
    s = fresh_sim()
    s.schedule_events([SimEvent("error_burst", 0, 60, rate=1.0, status=503)])
    recs = await run_phases(s.url, [PhaseSpec("p", requests=2, concurrency=1, prompt_tokens=4, output_tokens=3)])
    assert [(r.error_kind, r.status) for r in recs] == [("http_status", 503)] * 2
    assert "HTTP 503" in recs[0].error_message
    s.schedule_events([SimEvent("error_burst", 0, 60, rate=1.0, status=0)])
    recs = await run_phases(s.url, [PhaseSpec("p", requests=1, concurrency=1, prompt_tokens=4, output_tokens=3)])
    assert recs[0].error_kind == "stream_error" and "injected" in recs[0].error_message


@pytest.mark.parametrize(
    "mode, kind",
    [
        ("truncated", "truncated"),
        ("malformed", "malformed_chunk"),
        ("error_object", "stream_error"),
        ("wrong_content_type", "wrong_content_type"),
        ("empty", "empty_response"),
        ("reset", "connection_reset"),
        ("http_429", "rate_limited"),
        ("keepalive_comments", None),
    ],
)
async def test_misbehaving_servers_are_recorded_as_their_own_error_kind(mode, kind):
    with BadServer(mode) as bad:
        recs = await run_phases(
            bad.url, [PhaseSpec("p", requests=2, concurrency=1, prompt_tokens=4, output_tokens=3)], model="m"
        )
    assert [r.error_kind for r in recs] == [kind, kind]
    assert all(r.end_ns is not None for r in recs)
    if mode == "malformed":
        assert recs[0].malformed_chunks == 1 and len(recs[0].chunk_ns) == 2
    if mode == "http_429":
        assert recs[0].status == 429


@pytest.mark.parametrize("policy, weights", [("round_robin", None), ("weighted", [3, 1]), ("least_outstanding", None)])
async def test_several_endpoints_share_the_traffic_by_policy(fresh_sim, data_dir, policy, weights):
    from perfkit.client.routing import Router

    fast = fresh_sim()
    slow = fresh_sim(step_base_ms=40.0)  # a replica five times slower
    eps = [Endpoint(fast.url), Endpoint(slow.url)]
    phases = [PhaseSpec("p", requests=40, rate=40, arrival="constant", prompt_tokens=16, output_tokens=16)]
    res = await record_run(eps, phases, data_dir, router=Router(2, policy, weights))
    import perfkit

    with perfkit.open(data_dir) as cat:
        share = dict(cat.sql("SELECT endpoint, count(*) FROM requests GROUP BY 1").fetchall())
        per_ep = cat.endpoints(res.run_id).df().set_index("endpoint")
    n_fast, n_slow = share[eps[0].base_url], share[eps[1].base_url]
    if policy == "round_robin":
        assert n_fast == n_slow == 20
    elif policy == "weighted":
        assert (n_fast, n_slow) == (30, 10)
    else:  # the slow replica holds its requests longer, so it is picked less
        assert n_fast > n_slow + 5
    assert per_ep.loc[eps[1].base_url, "ttft_p50_ms"] > per_ep.loc[eps[0].base_url, "ttft_p50_ms"]
    assert res.manifest["routing"]["policy"] == policy and len(res.manifest["endpoints"]) == 2


def test_routing_mistakes_are_refused():
    from perfkit.client.routing import Router

    with pytest.raises(ConfigError, match="one of round_robin"):
        Router(2, "random")
    with pytest.raises(ConfigError, match="2 positive numbers"):
        Router(2, "weighted", [1])
    with pytest.raises(ConfigError, match="needs --weights"):
        Router(2, "weighted")
