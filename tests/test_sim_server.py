"""The simulated endpoint over real sockets: OpenAI API surface, /metrics, events."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from perfkit.sim import SimEvent


async def post(url: str, body: dict, headers: dict | None = None) -> tuple[int, str, dict]:
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
        return r.status, await r.text(), dict(r.headers)


def data_lines(text: str) -> list[str]:
    return [ln[6:] for ln in text.split("\n") if ln.startswith("data: ")]


async def test_models_lists_the_configured_model(sim):
    async with aiohttp.ClientSession() as s, s.get(sim.url + "/v1/models") as r:
        body = await r.json()
    assert body["data"][0]["id"] == sim.config.model


async def test_streamed_completion_with_usage_and_done(sim):
    status, text, headers = await post(
        sim.url + "/v1/completions",
        {
            "model": sim.config.model,
            "prompt": "one two three four",
            "max_tokens": 7,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        },
    )
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    lines = data_lines(text)
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(x) for x in lines[:-1]]
    texts = [c["choices"][0]["text"] for c in chunks if c["choices"] and c["choices"][0]["text"]]
    assert len(texts) == 7  # one token per chunk
    assert chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11}
    # continuous usage: completion_tokens counts up chunk by chunk
    counts = [c["usage"]["completion_tokens"] for c in chunks if c["choices"] and c["choices"][0]["text"]]
    assert counts == list(range(1, 8))


async def test_streamed_chat_starts_with_a_role_only_delta(sim):
    status, text, _ = await post(
        sim.url + "/v1/chat/completions",
        {
            "model": sim.config.model,
            "messages": [{"role": "user", "content": "hello there"}],
            "max_tokens": 3,
            "ignore_eos": True,
            "stream": True,
        },
    )
    chunks = [json.loads(x) for x in data_lines(text)[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert sum(bool(c["choices"][0]["delta"].get("content")) for c in chunks) == 3
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_non_streamed_completion_and_min_tokens(sim):
    status, text, _ = await post(
        sim.url + "/v1/completions", {"model": sim.config.model, "prompt": "a b", "max_tokens": 60, "min_tokens": 50}
    )
    body = json.loads(text)
    assert status == 200
    assert 50 <= body["usage"]["completion_tokens"] <= 60
    assert len(body["choices"][0]["text"].split()) == body["usage"]["completion_tokens"]


async def test_without_ignore_eos_outputs_stop_early_sometimes(sim):
    import asyncio

    answers = await asyncio.gather(
        *[post(sim.url + "/v1/completions", {"prompt": "x", "max_tokens": 150}) for _ in range(16)]
    )
    lengths = [json.loads(text)["usage"]["completion_tokens"] for _, text, _ in answers]
    assert min(lengths) < 150 and len(set(lengths)) >= 2


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"model": "no-such-model", "prompt": "x"}, 404, "does not exist"),
        ({"prompt": 5}, 400, "prompt"),
        ({"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ({"prompt": "x", "max_tokens": 10**6}, 400, "maximum context length"),
    ],
)
async def test_bad_requests_get_openai_style_errors(sim, body, status, message):
    got, text, _ = await post(sim.url + "/v1/completions", body)
    assert got == status
    assert message in json.loads(text)["error"]["message"]


async def test_metrics_use_vllm_names_and_count_tokens(sim):
    await post(sim.url + "/v1/completions", {"prompt": "a b c", "max_tokens": 4, "ignore_eos": True})
    async with aiohttp.ClientSession() as s, s.get(sim.url + "/metrics") as r:
        text = await r.text()
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:num_preemptions_total",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:e2e_request_latency_seconds_count",
    ):
        assert name in text, name
    gen = [ln for ln in text.splitlines() if ln.startswith("vllm:generation_tokens_total{")][0]
    assert float(gen.rsplit(" ", 1)[1]) >= 4


async def test_sim_log_records_what_it_did(sim):
    await post(
        sim.url + "/v1/completions",
        {"prompt": "a b c", "max_tokens": 5, "ignore_eos": True, "stream": True},
        headers={"X-Request-Id": "log-check"},
    )
    rec = [r for r in sim.request_log() if r["request_id"] == "log-check"][0]
    assert rec["output_tokens"] == 5 and len(rec["token_write_ns"]) == 5
    assert rec["http_arrival_ns"] <= rec["arrival_ns"] <= rec["first_token_ns"] <= rec["finish_ns"]


async def test_error_burst_and_in_stream_error_events(fresh_sim):
    s = fresh_sim()
    s.schedule_events([SimEvent("error_burst", 0, 30, rate=1.0, status=503)])
    status, text, headers = await post(s.url + "/v1/completions", {"prompt": "x", "max_tokens": 3})
    assert status == 503 and "injected" in text
    s.schedule_events([SimEvent("error_burst", 0, 30, rate=1.0, status=0)])
    status, text, _ = await post(s.url + "/v1/completions", {"prompt": "x", "max_tokens": 3, "stream": True})
    assert status == 200 and '"error"' in text


async def test_stall_event_pauses_the_stream(fresh_sim):
    s = fresh_sim()
    s.schedule_events([SimEvent("stall", 0.2, 1.0)])
    t = time.perf_counter()
    status, text, _ = await post(
        s.url + "/v1/completions", {"prompt": "x", "max_tokens": 40, "ignore_eos": True, "stream": True}
    )
    assert status == 200 and time.perf_counter() - t > 0.7


async def test_jsonl_log_is_written_as_requests_finish(tmp_path):
    from perfkit.sim import SimConfig, SimProcess

    path = tmp_path / "sim.jsonl"
    with SimProcess(SimConfig(), log_path=str(path)) as s:
        for i in range(3):
            await post(
                s.url + "/v1/completions",
                {"prompt": "a b", "max_tokens": 3, "ignore_eos": True, "stream": True},
                headers={"X-Request-Id": f"j{i}"},
            )
        # while the simulator still runs: a line is written once the response has gone out, so the last
        # may land a moment after the client has read its stream
        deadline = time.perf_counter() + 5
        while len(lines := path.read_text().splitlines()) < 3 and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
    assert [json.loads(x)["request_id"] for x in lines] == ["j0", "j1", "j2"]
