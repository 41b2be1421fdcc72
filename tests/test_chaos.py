"""Faults injected by the chaos proxy, over real sockets, and what perfkit records of each."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from perfkit.chaos import ChaosProxy, FaultOptions, parse_fault
from perfkit.client import AiohttpTransport, Endpoint, FastTransport, LoadRunner, PhaseSpec, RequestRecord
from perfkit.errors import ConfigError
from perfkit.rows import MemorySink
from perfkit.sim import SimProcess

# the outcome of every request under each request fault, as perfkit records it
EXPECTED = {
    "reset": "connection_reset",
    "http_429": "rate_limited",
    "http_500": "http_status",
    "http_503": "http_status",
    "malformed": "malformed_chunk",
    "no_done": "missing_done",
    "truncated": "truncated",
    "stall": "read_timeout",
    "drip": None,
    "giant_chunk": "oversized_event",
    "wrong_content_type": "wrong_content_type",
}
OPTIONS = FaultOptions(stall_s=5.0, giant_mb=3.0, drip_ms=1.0)


async def _run(url: str, phases: list[PhaseSpec], http: str = "fast", **kw) -> list[RequestRecord]:
    sink = MemorySink()
    read_timeout_s = kw.pop("read_timeout_s", 60.0)
    transport = (
        AiohttpTransport(64, read_timeout_s=read_timeout_s)
        if http == "aiohttp"
        else FastTransport(read_timeout_s=read_timeout_s)
    )
    try:
        await LoadRunner(Endpoint(url, model="perfkit-sim-7b"), phases, sink, transport=transport, **kw).run()
    finally:
        await transport.close()
    return sorted(sink.rows.get("requests", []), key=lambda r: r.request_id)


@pytest.mark.parametrize("http", ["fast", "aiohttp"])
@pytest.mark.parametrize("kind", sorted(EXPECTED))
async def test_each_request_fault_is_recorded_as_its_own_outcome(sim, kind, http):
    async with ChaosProxy(sim.url, [parse_fault(f"{kind}:1")], OPTIONS) as proxy:
        recs = await _run(
            proxy.url,
            [PhaseSpec("p", requests=3, concurrency=2, prompt_tokens=8, output_tokens=12)],
            http=http,
            read_timeout_s=0.5,
        )
    assert [r.request_id for r in recs] == [0, 1, 2]  # nothing lost
    assert [r.error_kind for r in recs] == [EXPECTED[kind]] * 3, [r.error_message for r in recs]
    assert proxy.injected[kind] == 3 and all(r.end_ns is not None for r in recs)
    r = recs[0]
    if kind == "http_429":
        assert r.status == 429 and "Retry-After: 1" in r.error_message
    if kind in ("http_500", "http_503"):
        assert r.status == int(kind[-3:]) and "injected by perfkit chaos" in r.error_message
    if kind == "malformed":
        assert r.malformed_chunks == 1 and len(r.chunk_ns) == 12  # every token still counted
    if kind in ("reset", "truncated", "stall", "giant_chunk"):
        assert len(r.chunk_ns) >= 2  # the tokens before the fault are kept
    if kind == "no_done":
        assert r.finish_reason == "length" and len(r.chunk_ns) == 12
    if kind == "drip":
        assert len(r.chunk_ns) == 12 and r.e2e_ms > 12 * 10  # ~17 writes of 7 bytes, 1 ms apart, per event


async def test_faults_hit_the_drawn_share_of_requests_and_replay_with_the_seed(sim):
    async def once() -> list[str | None]:
        async with ChaosProxy(
            sim.url, [parse_fault("http_503:0.3"), parse_fault("reset:0.2")], FaultOptions(seed=7)
        ) as proxy:
            recs = await _run(proxy.url, [PhaseSpec("p", requests=60, concurrency=1, prompt_tokens=8, output_tokens=4)])
        return [r.error_kind for r in recs]

    a, b = await once(), await once()
    assert a == b  # same seed, same requests hit
    n503, nreset = a.count("http_status"), a.count("connection_reset")
    assert 8 <= n503 <= 30 and 3 <= nreset <= 20 and a.count(None) == 60 - n503 - nreset


@pytest.mark.slow  # real timing: a loaded machine may delay the reopening of the listener
async def test_a_restart_resets_streams_refuses_connections_then_recovers(sim):
    async with ChaosProxy(sim.url, [parse_fault("restart@1.0+1.0")]) as proxy:
        recs = await _run(
            proxy.url,
            [PhaseSpec("p", duration_s=4.0, rate=20, arrival="constant", prompt_tokens=8, output_tokens=40)],
            connect_timeout_s=2.0,
        )
    t0 = recs[0].intended_ns
    kinds = {}
    for r in recs:
        t = (r.intended_ns - t0) / 1e9
        kinds.setdefault(
            "before" if t < 0.3 else "during" if 1.05 < t < 1.95 else "after" if t > 2.5 else "edge", []
        ).append(r.error_kind)
    assert "connection_reset" in [r.error_kind for r in recs]  # streams open at the restart were cut
    assert set(kinds["during"]) == {"connect_error"}
    assert set(kinds["before"]) == {None} and set(kinds["after"]) == {None}, kinds
    assert proxy.injected["restart"] == 1


@pytest.mark.parametrize(
    "spec, message",
    [
        ("explode:0.5", "unknown kind 'explode'"),
        ("reset:1.5", "probability must be in [0, 1]"),
        ("reset:often", "probability 'often' is not a number"),
        ("restart", "needs a window"),
        ("restart:0.5@1+2", "takes no probability"),
        ("reset@-1", "start must be a finite number >= 0"),
        ("reset:0.1@2+", "must read KIND"),
        ("stall:0.1@x", "start 'x' is not a number"),
    ],
)
def test_fault_mistakes_are_refused_clearly(spec, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_fault(spec)


def test_chaos_command_proxies_a_real_server_and_reports_what_it_injected(sim, data_dir):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perfkit.cli",
            "chaos",
            "--listen",
            "0",
            "--upstream",
            sim.url,
            "--fault",
            "http_503:0.5",
            "--fault-seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("perfkit-chaos listening on "), line + proc.stderr.read()
        url = line.split()[3]
        with urllib.request.urlopen(url + "/v1/models", timeout=10) as r:  # untouched by faults
            assert json.loads(r.read())["data"][0]["id"] == "perfkit-sim-7b"
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "perfkit.cli",
                "run",
                "--endpoint",
                url,
                "--requests",
                "20",
                "--concurrency",
                "2",
                "--prompt-tokens",
                "8",
                "--output-tokens",
                "4",
                "--data-dir",
                str(data_dir),
                "--gpu",
                "off",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "20 completion requests, injected {'http_503':" in err
    import duckdb

    n = (
        duckdb.connect()
        .execute(
            f"SELECT count(*), count(*) FILTER (status = 503) FROM read_parquet('{data_dir}/requests/*/*.parquet')"
        )
        .fetchone()
    )
    assert n[0] == 20 and 3 <= n[1] <= 17


def test_chaos_command_refuses_a_bad_upstream():
    run = subprocess.run(
        [sys.executable, "-m", "perfkit.cli", "chaos", "--listen", "0", "--upstream", "ftp://x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "must be an http:// URL" in run.stderr


async def test_the_simulator_fault_mode_injects_the_same_faults():
    with SimProcess(faults=["no_done:1"]) as s:
        recs = await _run(s.url, [PhaseSpec("p", requests=2, concurrency=1, prompt_tokens=8, output_tokens=5)])
    assert [r.error_kind for r in recs] == ["missing_done"] * 2


def test_a_giant_event_does_not_grow_the_parser_without_bound():
    from perfkit.client.sse import MAX_EVENT_BYTES, EventTooLarge, SSEParser

    p = SSEParser()
    with pytest.raises(EventTooLarge, match="more than 1 MiB"):
        for _ in range(40):
            p.feed_data(b"x" * (64 << 10) if _ else b"data: " + b"x" * (64 << 10))
    assert not p.pending  # what it held is dropped
    assert p.feed_data(b"data: {}\n\n") == [b"{}"] and MAX_EVENT_BYTES == 1 << 20
