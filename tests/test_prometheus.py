"""Prometheus /metrics: parsing the real formats of vLLM, SGLang, TGI and llama.cpp, rates, resets, no /metrics."""

from __future__ import annotations

import json
import math

import pytest

import perfkit
from perfkit.client import Endpoint, PhaseSpec
from perfkit.collect import COMMON_NAMES, MetricsState, PrometheusSource, detect_engine, parse_metrics
from perfkit.record import TelemetrySpec, record_run

# Written from each engine's documented metric names, in the shape each one exposes them.
VLLM = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 12.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.4375
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 1.2288e+06
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 409600.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.02",model_name="meta-llama/Llama-3.1-8B-Instruct"} 10.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 90.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="meta-llama/Llama-3.1-8B-Instruct"} 100.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 100.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 4.25
"""

VLLM_V0 = """\
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="facebook/opt-125m"} 0.25
# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="facebook/opt-125m"} 2.0
"""

SGLANG = """\
# HELP sglang:prompt_tokens_total Number of prefill tokens processed.
# TYPE sglang:prompt_tokens_total counter
sglang:prompt_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 8.128902e+06
# HELP sglang:generation_tokens_total Number of generation tokens processed.
# TYPE sglang:generation_tokens_total counter
sglang:generation_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.557572e+06
# HELP sglang:token_usage The token usage
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.28
# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct"} 26.0
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct"} 5.0
# HELP sglang:num_retracted_requests_total The number of retracted requests.
# TYPE sglang:num_retracted_requests_total counter
sglang:num_retracted_requests_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 2.0
# HELP sglang:cache_hit_rate The cache hit rate
# TYPE sglang:cache_hit_rate gauge
sglang:cache_hit_rate{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.007507552643049313
"""

TGI = """\
# TYPE tgi_batch_current_size gauge
tgi_batch_current_size 8
# TYPE tgi_queue_size gauge
tgi_queue_size 2
# TYPE tgi_request_count counter
tgi_request_count 1500
# TYPE tgi_request_input_length histogram
tgi_request_input_length_bucket{le="100"} 300
tgi_request_input_length_bucket{le="1000"} 1400
tgi_request_input_length_bucket{le="+Inf"} 1500
tgi_request_input_length_sum 512000
tgi_request_input_length_count 1500
# TYPE tgi_request_generated_tokens histogram
tgi_request_generated_tokens_bucket{le="100"} 700
tgi_request_generated_tokens_bucket{le="+Inf"} 1500
tgi_request_generated_tokens_sum 192000
tgi_request_generated_tokens_count 1500
# TYPE tgi_batch_current_max_tokens gauge
tgi_batch_current_max_tokens 4096
"""

LLAMACPP = """\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 6886
# HELP llamacpp:prompt_seconds_total Prompt process time
# TYPE llamacpp:prompt_seconds_total counter
llamacpp:prompt_seconds_total 2903.63
# HELP llamacpp:tokens_predicted_total Number of generation tokens processed.
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 3469
# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.
# TYPE llamacpp:kv_cache_usage_ratio gauge
llamacpp:kv_cache_usage_ratio 0.125
# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 1
# HELP llamacpp:requests_deferred Number of requests deferred.
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 0
"""


def _common(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in parse_metrics(text):
        if s["name"] in COMMON_NAMES:
            out[COMMON_NAMES[s["name"]]] = s["value"]
    return out


@pytest.mark.parametrize(
    "text, engine, expected",
    [
        (
            VLLM,
            "vllm",
            {
                "running": 12,
                "waiting": 3,
                "kv_usage": 0.4375,
                "preemptions": 7,
                "prompt_tokens": 1228800,
                "generation_tokens": 409600,
            },
        ),
        (VLLM_V0, "vllm", {"running": 2, "kv_usage": 0.25}),
        (
            SGLANG,
            "sglang",
            {
                "running": 26,
                "waiting": 5,
                "kv_usage": 0.28,
                "preemptions": 2,
                "prompt_tokens": 8128902,
                "generation_tokens": 7557572,
            },
        ),
        (TGI, "tgi", {"running": 8, "waiting": 2, "prompt_tokens": 512000, "generation_tokens": 192000}),
        (
            LLAMACPP,
            "llama.cpp",
            {"running": 1, "waiting": 0, "kv_usage": 0.125, "prompt_tokens": 6886, "generation_tokens": 3469},
        ),
    ],
)
def test_each_engine_maps_to_the_common_names(text, engine, expected):
    samples = parse_metrics(text)
    assert detect_engine({s["name"] for s in samples}) == engine
    assert _common(text) == pytest.approx(expected)


def test_labels_buckets_and_kinds_are_kept():
    s = {(x["name"], x["le"]): x for x in parse_metrics(VLLM)}
    b = s[("vllm:time_to_first_token_seconds_bucket", math.inf)]
    assert b["kind"] == "histogram" and b["value"] == 100
    assert json.loads(b["labels"]) == {"engine": "0", "model_name": "meta-llama/Llama-3.1-8B-Instruct"}
    assert s[("vllm:time_to_first_token_seconds_bucket", 0.02)]["value"] == 10
    assert s[("vllm:num_requests_running", None)]["kind"] == "gauge"
    assert s[("vllm:prompt_tokens_total", None)]["kind"] == "counter"


def test_counter_rates_and_a_reset_count_from_zero():
    state = MetricsState()
    scrape = lambda v, t: (
        state.annotate(
            x := parse_metrics(
                f'# TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total{{model_name="m"}} {v}\n'
                f'# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{model_name="m"}} 4\n'
            ),
            t,
        ),
        x,
    )[1]
    first = scrape(1000, 0)
    assert first[0]["rate_per_s"] is None and first[1]["rate_per_s"] is None
    second = scrape(1500, 2_000_000_000)
    assert second[0]["rate_per_s"] == 250.0 and second[0]["reset"] is False
    assert second[1]["rate_per_s"] is None  # a gauge has no rate
    third = scrape(90, 3_000_000_000)  # the server restarted: counted from zero, as Prometheus' rate() does
    assert third[0]["reset"] is True and third[0]["rate_per_s"] == 90.0 and state.resets == 1
    fourth = scrape(190, 4_000_000_000)
    assert fourth[0]["rate_per_s"] == 100.0 and fourth[0]["reset"] is False


def test_untyped_total_is_cumulative_and_histogram_sums_get_rates():
    state = MetricsState()
    a = parse_metrics("llamacpp:tokens_predicted_total 100\n" + TGI)
    state.annotate(a, 0)
    b = parse_metrics("llamacpp:tokens_predicted_total 300\n" + TGI.replace("192000", "192500"))
    state.annotate(b, 1_000_000_000)
    rates = {x["name"]: x["rate_per_s"] for x in b if x["le"] is None}
    assert rates["llamacpp:tokens_predicted_total"] == 200.0
    assert rates["tgi_request_generated_tokens_sum"] == 500.0 and rates["tgi_queue_size"] is None


def test_not_prometheus_text_is_an_error_not_a_crash():
    src = PrometheusSource("http://127.0.0.1:9/v1")
    assert src.url == "http://127.0.0.1:9/metrics"
    assert src.read(0) == [] and src.failed_scrapes == 1 and "127.0.0.1:9" in src.problem
    with pytest.raises(ValueError):
        parse_metrics("this is { not prometheus\n")


async def test_scraping_the_simulator_during_a_run(sim, data_dir):
    spec = TelemetrySpec(gpu="off", metrics_interval_s=0.2)
    res = await record_run(
        Endpoint(sim.url), [PhaseSpec("p", duration_s=2.5, rate=8, output_tokens=16)], data_dir, telemetry=spec
    )
    src = res.manifest["telemetry"]["server_metrics"]["sources"][0]
    assert src["engine"] == "vllm" and src["available"] and src["ok_scrapes"] >= 10
    assert set(src["common_names"]) == {
        "running",
        "waiting",
        "kv_usage",
        "preemptions",
        "prompt_tokens",
        "generation_tokens",
        "prefix_cache_queries",
        "prefix_cache_hits",
        "admission_rejections",
    }
    with perfkit.open(data_dir) as cat:
        wide = cat.telemetry_wide("server_metrics", res.run_id).df()
        assert len(wide) >= 10 and wide["running"].max() >= 1
        # the generation-token rate agrees with the tokens the client received
        client_tps = cat.scalar("SELECT sum(output_tokens) / ((max(end_ns) - min(sent_ns)) / 1e9) FROM requests")
        server_tps = wide["generation_tokens_per_s"].iloc[2:-2].mean()
        assert server_tps == pytest.approx(client_tps, rel=0.35)


async def test_a_server_without_metrics_is_noted_and_the_run_goes_on(sim, data_dir):
    notes: list[str] = []
    spec = TelemetrySpec(gpu="off", metrics_url=sim.url.rsplit("/v1", 1)[0] + "/no-such-metrics")
    res = await record_run(
        Endpoint(sim.url),
        [PhaseSpec("p", requests=3, concurrency=1, output_tokens=4)],
        data_dir,
        telemetry=spec,
        notify=notes.append,
    )
    assert res.progress.done == 3 and res.manifest["status"] == "complete"
    assert len(notes) == 1 and "server metrics are off" in notes[0] and "404" in notes[0]
    assert "404" in res.manifest["telemetry"]["server_metrics"]["problems"][0]
    assert not (data_dir / "server_metrics").exists()
