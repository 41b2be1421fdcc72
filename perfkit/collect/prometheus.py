"""The server's own metrics: scrape Prometheus ``/metrics``, parse it properly, map engine names.

Parsing uses ``prometheus_client``'s text parser (escaping, labels, exponents,
``+Inf``, histograms), not regular expressions.  Each scrape becomes
long-format rows of ``server_metrics``: every sample with its labels; for
cumulative samples (counters, histogram and summary ``_bucket``/``_sum``/
``_count``, and untyped ``*_total``) also the rate since the previous scrape.
A cumulative sample that went *down* is a counter reset (the server
restarted): the rate then counts from zero, as Prometheus's ``rate()`` does,
and the row is flagged ``reset``.

Engines name the same things differently; :data:`COMMON_NAMES` maps them to
engine-neutral names (``running``, ``waiting``, ``kv_usage`` as a fraction
0..1, ``preemptions``, ``prompt_tokens``, ``generation_tokens``, the prefix
cache's ``prefix_cache_queries`` and ``prefix_cache_hits``, vLLM's
``waiting_by_reason`` and ``admission_rejections``) for vLLM
(both ``kv_cache_usage_perc`` and the older ``gpu_cache_usage_perc``), SGLang,
TGI and llama.cpp.  A server with no ``/metrics`` is noted once and the run
goes on.
"""

from __future__ import annotations

import json
import math
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from perfkit.clock import now_ns
from perfkit.net.get import get, server_root
from perfkit.net.tls import TlsOptions

__all__ = ["COMMON_NAMES", "ENGINE_PREFIXES", "MetricsState", "PrometheusSource", "detect_engine", "parse_metrics"]

COMMON_NAMES: dict[str, str] = {
    # vLLM (the simulator uses these names too)
    "vllm:num_requests_running": "running",
    "vllm:num_requests_waiting": "waiting",
    "vllm:num_requests_waiting_by_reason": "waiting_by_reason",  # V1: label reason = capacity | deferred
    "vllm:kv_cache_usage_perc": "kv_usage",
    "vllm:gpu_cache_usage_perc": "kv_usage",  # vLLM before 0.10 (V0 engine)
    "vllm:num_preemptions_total": "preemptions",
    "vllm:prompt_tokens_total": "prompt_tokens",
    "vllm:generation_tokens_total": "generation_tokens",
    "vllm:prefix_cache_queries_total": "prefix_cache_queries",  # prompt tokens looked up (vLLM V1)
    "vllm:prefix_cache_hits_total": "prefix_cache_hits",  # ... and found
    "vllm:gpu_prefix_cache_queries_total": "prefix_cache_queries",  # the V0 engine's names
    "vllm:gpu_prefix_cache_hits_total": "prefix_cache_hits",
    # refused at admission with HTTP 503, label reason = max_num_queued_reqs | max_num_queued_tokens (vLLM's
    # --max-num-queued-reqs and --max-num-queued-tokens)
    "vllm:admission_rejections_total": "admission_rejections",
    # SGLang
    "sglang:num_running_reqs": "running",
    "sglang:num_queue_reqs": "waiting",
    "sglang:token_usage": "kv_usage",
    "sglang:num_retracted_requests_total": "preemptions",
    "sglang:prompt_tokens_total": "prompt_tokens",
    "sglang:generation_tokens_total": "generation_tokens",
    # Text Generation Inference (tokens are histogram sums over finished requests)
    "tgi_batch_current_size": "running",
    "tgi_queue_size": "waiting",
    "tgi_request_input_length_sum": "prompt_tokens",
    "tgi_request_generated_tokens_sum": "generation_tokens",
    # llama.cpp server (--metrics)
    "llamacpp:requests_processing": "running",
    "llamacpp:requests_deferred": "waiting",
    "llamacpp:kv_cache_usage_ratio": "kv_usage",
    "llamacpp:prompt_tokens_total": "prompt_tokens",
    "llamacpp:tokens_predicted_total": "generation_tokens",
}

ENGINE_PREFIXES = {"vllm:": "vllm", "sglang:": "sglang", "tgi_": "tgi", "llamacpp:": "llama.cpp"}

_CUMULATIVE_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def _cumulative(kind: str, name: str) -> bool:
    if kind in ("counter", "histogram", "summary", "gaugehistogram"):
        return not name.endswith("_created") and not (kind == "gaugehistogram" and name.endswith("_bucket"))
    return kind in ("unknown", "untyped") and name.endswith("_total")


def parse_metrics(text: str) -> list[dict[str, Any]]:
    """Parse exposition text into samples: name, labels (without ``le``), le, kind, value.

    Raises ``ValueError`` when the text is not Prometheus exposition format.
    """
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = dict(s.labels)
            le = labels.pop("le", None)
            out.append(
                {
                    "name": s.name,
                    "labels": json.dumps(labels, sort_keys=True, separators=(",", ":")),
                    "le": math.inf if le == "+Inf" else (float(le) if le is not None else None),
                    "kind": fam.type,
                    "value": float(s.value),
                }
            )
    return out


def detect_engine(names: list[str] | set[str]) -> str | None:
    """Which serving engine exposes these sample names ('vllm', 'sglang', 'tgi', 'llama.cpp'), if known."""
    for prefix, engine in ENGINE_PREFIXES.items():
        if any(n.startswith(prefix) for n in names):
            return engine
    return None


class MetricsState:
    """Previous value of each cumulative series, to turn scrapes into rates and spot resets."""

    def __init__(self) -> None:
        self.prev: dict[tuple[str, str, float | None], tuple[int, float]] = {}
        self.resets = 0

    def annotate(self, samples: list[dict[str, Any]], t_ns: int) -> None:
        """Add ``rate_per_s``, ``reset`` and ``common_name`` to each sample, in place."""
        for s in samples:
            s["common_name"] = COMMON_NAMES.get(s["name"])
            s["rate_per_s"], s["reset"] = None, None
            if not _cumulative(s["kind"], s["name"]):
                continue
            key = (s["name"], s["labels"], s["le"])
            before = self.prev.get(key)
            self.prev[key] = (t_ns, s["value"])
            if before is None or t_ns <= before[0]:
                continue
            dt = (t_ns - before[0]) / 1e9
            reset = s["value"] < before[1]
            s["reset"] = reset
            s["rate_per_s"] = (s["value"] if reset else s["value"] - before[1]) / dt
            self.resets += reset


class PrometheusSource:
    """Scrape ``ROOT/metrics`` of one endpoint; rows for ``server_metrics``.

    Parameters
    ----------
    base_url : str
        The endpoint's base URL (``/v1`` is stripped: ``/metrics`` lives at the root).
    timeout_s : float
        Longest wait for one scrape, s.
    headers : dict, optional
        Sent with each scrape (an ``Authorization`` header where the server wants one).
    url : str, optional
        Scrape this URL instead (metrics served on another port).
    tls : TlsOptions, optional
        Verification of an HTTPS server (default: the system's trust store).
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 2.0,
        headers: dict[str, str] | None = None,
        url: str | None = None,
        tls: TlsOptions | None = None,
    ) -> None:
        self.endpoint = base_url
        self.tls = tls
        self.url = url or server_root(base_url) + "/metrics"
        self.timeout_s = timeout_s
        self.headers = headers or {}
        self.state = MetricsState()
        self.engine: str | None = None
        self.series: set[str] = set()
        self.problem: str | None = None
        self.ok_scrapes = 0
        self.failed_scrapes = 0

    def read(self, t_ns: int) -> list[dict[str, Any]]:
        res = get(self.url, self.timeout_s, self.headers, context=self.tls.context if self.tls else None)
        t = now_ns()  # the moment the server's numbers arrived
        if res.status != 200 or res.error:
            self.failed_scrapes += 1
            self.problem = f"{self.url}: {res.error or f'HTTP {res.status}'}"
            return []
        try:
            samples = parse_metrics(res.body)
        except ValueError as exc:
            self.failed_scrapes += 1
            self.problem = f"{self.url}: not Prometheus text ({exc})"
            return []
        self.ok_scrapes += 1
        self.state.annotate(samples, t)
        if self.engine is None:
            self.series = {s["name"] for s in samples}
            self.engine = detect_engine(self.series)
        for s in samples:
            s["t_ns"], s["endpoint"] = t, self.endpoint
        return samples

    def describe(self) -> dict[str, Any]:
        mapped = sorted({COMMON_NAMES[n] for n in self.series if n in COMMON_NAMES})
        return {
            "url": self.url,
            "engine": self.engine,
            "ok_scrapes": self.ok_scrapes,
            "failed_scrapes": self.failed_scrapes,
            "counter_resets": self.state.resets,
            "series": len(self.series),
            "common_names": mapped,
            "available": self.ok_scrapes > 0,
            "last_problem": self.problem,
        }
