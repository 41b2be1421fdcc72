"""Prometheus text exposition of the simulator's state, with vLLM's metric names."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perfkit.sim.engine import Engine

__all__ = ["Histogram", "render_metrics"]

_LATENCY_BUCKETS_S = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)


class Histogram:
    """A cumulative Prometheus histogram over fixed bucket bounds (seconds)."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = _LATENCY_BUCKETS_S) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def render(self, labels: str) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        cum = 0
        for bound, c in zip(self.buckets, self.counts):
            cum += c
            out.append(f'{self.name}_bucket{{{labels},le="{bound}"}} {cum}')
        out.append(f'{self.name}_bucket{{{labels},le="+Inf"}} {self.count}')
        out.append(f"{self.name}_sum{{{labels}}} {self.sum!r}")
        out.append(f"{self.name}_count{{{labels}}} {self.count}")
        return out


def _sample(kind: str, name: str, help_text: str, labels: str, value: float) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name}{{{labels}}} {value!r}"]


def render_metrics(
    engine: Engine,
    model: str,
    histograms: list[Histogram],
    success_total: int,
    errors_total: int,
    admission_rejections: int = 0,
) -> str:
    """Render the exposition text served at ``/metrics``; ``admission_rejections`` counts the requests refused for
    ``max_num_queued_reqs`` (vLLM's other reason, ``max_num_queued_tokens``, stays 0)."""
    labels = f'model_name="{model}"'
    kv = engine.kv_usage
    lines: list[str] = []
    lines += _sample(
        "gauge", "vllm:num_requests_running", "Requests in the running batch.", labels, float(len(engine.running))
    )
    lines += _sample(
        "gauge", "vllm:num_requests_waiting", "Requests waiting to be scheduled.", labels, float(len(engine.waiting))
    )
    lines += _sample("gauge", "vllm:kv_cache_usage_perc", "KV-cache usage, 1 means 100 percent.", labels, kv)
    lines += _sample("gauge", "vllm:gpu_cache_usage_perc", "KV-cache usage (older vLLM name).", labels, kv)
    lines += _sample(
        "counter", "vllm:num_preemptions_total", "Cumulative preemptions.", labels, float(engine.preemptions_total)
    )
    lines += _sample(
        "counter", "vllm:prompt_tokens_total", "Prefill tokens processed.", labels, float(engine.prompt_tokens_total)
    )
    lines += _sample(
        "counter",
        "vllm:generation_tokens_total",
        "Generation tokens produced.",
        labels,
        float(engine.generation_tokens_total),
    )
    lines += _sample(
        "counter",
        "vllm:prefix_cache_queries_total",
        "Prompt tokens looked up in the prefix cache.",
        labels,
        float(engine.prefix_cache.queries),
    )
    lines += _sample(
        "counter",
        "vllm:prefix_cache_hits_total",
        "Prompt tokens found in the prefix cache.",
        labels,
        float(engine.prefix_cache.hits),
    )
    lines += [
        "# HELP vllm:admission_rejections_total Number of admission attempts rejected by a queue limit, by reason.",
        "# TYPE vllm:admission_rejections_total counter",
        f'vllm:admission_rejections_total{{{labels},reason="max_num_queued_reqs"}} {float(admission_rejections)!r}',
        f'vllm:admission_rejections_total{{{labels},reason="max_num_queued_tokens"}} 0.0',
    ]
    lines += _sample(
        "counter", "vllm:request_success_total", "Requests finished successfully.", labels, float(success_total)
    )
    lines += _sample(
        "counter", "perfkit_sim:request_errors_total", "Requests answered with an error.", labels, float(errors_total)
    )
    lines += _sample(
        "counter",
        "perfkit_sim:busy_seconds_total",
        "Seconds the engine spent in steps.",
        labels,
        engine.busy_ns_total / 1e9,
    )
    for h in histograms:
        lines += h.render(labels)
    return "\n".join(lines) + "\n"
