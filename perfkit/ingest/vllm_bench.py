"""vLLM's ``bench serve`` result file (``--save-result --save-detailed``) as an imported run.

The file lists every request in the order it was sent: ``ttfts`` and ``latencies`` (s), ``itls`` (the gaps
between streamed chunks, s), ``input_lens``, ``output_lens``, ``errors`` and, from vLLM 0.9 or so,
``start_times`` (s on the client's ``perf_counter``).  Chunk arrivals are rebuilt from the send time, the
TTFT and the gaps, exactly as vLLM measured them.  Without ``start_times`` (older files, or a file written
without ``--save-detailed``) sends are spread evenly over the benchmark's duration in the file's order, and
the manifest says so; without ``ttfts`` there is nothing per request to import and the error says which flag
adds it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from perfkit.errors import ConfigError
from perfkit.ingest.base import ImportedRun, read_json, request

__all__ = ["DEFINITIONS", "read_vllm_bench"]

DEFINITIONS = {
    "itl_ms": "the same as perfkit's: the gap between streamed chunks (a chunk may carry several tokens)",
    "tpot_ms": "vLLM: (E2E - TTFT) / (output tokens - 1) per request; perfkit: (last token - first token) / "
    "(output tokens - 1), which leaves out the stream's end",
    "e2e_ms": "vLLM's latency: from the request's send to its last byte, as perfkit's",
    "ttft_ms": "the same as perfkit's: send to the first streamed token",
}


def _as_ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def read_vllm_bench(path: str | Path) -> ImportedRun:
    """Read a ``vllm bench serve`` (or ``benchmark_serving.py``) result JSON; see the module docstring."""
    src = Path(path)
    d: Any = read_json(src, "vLLM bench serve")
    if not isinstance(d, dict) or "completed" not in d:
        raise ConfigError(f"{src} is not a vLLM bench serve result: it has no 'completed' key")
    ttfts = d.get("ttfts")
    if not isinstance(ttfts, list):
        raise ConfigError(
            f"{src} has vLLM's summary but no per-request data; record it with `vllm bench serve --save-result "
            "--save-detailed` (the ttfts, itls and latencies lists) to import it"
        )
    n = len(ttfts)

    def col(name: str, default: Any) -> list[Any]:
        v = d.get(name)
        return list(v) if isinstance(v, list) and len(v) == n else [default] * n

    itls, lats, ins, outs = col("itls", []), col("latencies", None), col("input_lens", None), col("output_lens", None)
    errors, starts = col("errors", ""), d.get("start_times")
    missing = ["intended send times (the schedule's lag is unknown)", "tokens per chunk"]
    reconstructed = []
    duration = float(d.get("duration") or 0.0)
    if isinstance(starts, list) and len(starts) == n:
        t0 = min(float(s) for s in starts)
        sent = [_as_ns(float(s) - t0) for s in starts]
    else:
        step = duration / n if n and duration > 0 else 0.0
        sent = [_as_ns(i * step) for i in range(n)]
        reconstructed.append("send times: spread evenly over the benchmark's duration in the file's order")
    if not any(isinstance(x, (int, float)) for x in lats):
        missing.append("end-to-end latency (no 'latencies' list; E2E is taken at the last chunk)")
    records = []
    for i in range(n):
        err = str(errors[i] or "")
        ok = not err and ttfts[i] is not None
        if not ok:
            records.append(request(i, sent[i], end_ns=sent[i], prompt_tokens=ins[i], error=err or "failed"))
            continue
        chunks = [sent[i] + _as_ns(float(ttfts[i]))]
        for gap in itls[i] or []:
            chunks.append(chunks[-1] + _as_ns(float(gap)))
        end = sent[i] + _as_ns(float(lats[i])) if isinstance(lats[i], (int, float)) else chunks[-1]
        records.append(
            request(
                i, sent[i], chunk_ns=chunks, end_ns=max(end, chunks[-1]), prompt_tokens=ins[i], output_tokens=outs[i]
            )
        )
    rate = d.get("request_rate")
    rate_f = float(rate) if isinstance(rate, (int, float)) or (isinstance(rate, str) and rate) else math.inf
    burst = float(d.get("burstiness") or 1.0)
    closed = not math.isfinite(rate_f)
    phase = {
        "mode": "closed" if closed else "open",
        "rate": None if closed else rate_f,
        "concurrency": d.get("max_concurrency") if closed else None,
        "arrival": None if closed else ("poisson" if burst == 1.0 else "gamma"),
        "burstiness": None if closed else burst,
        "prompt_tokens": None,  # the file keeps the lengths served, not the dataset's settings
        "output_tokens": None,
    }
    backend = str(d.get("backend") or d.get("endpoint_type") or "")
    endpoint = {
        "base_url": None,
        "model": d.get("model_id"),
        "api": "chat" if "chat" in backend else "completions",
        "ignore_eos": None,
    }
    date = str(d.get("date") or "")
    started = None
    if len(date) == 15 and date[8] == "-":  # 20261203-180537
        started = f"{date[:4]}-{date[4:6]}-{date[6:8]}T{date[9:11]}:{date[11:13]}:{date[13:15]}+00:00"
    return ImportedRun(
        "vllm bench serve",
        d.get("vllm_version") or None,
        records,
        endpoint,
        phase,
        started_utc=started,
        definitions=DEFINITIONS,
        missing=missing,
        reconstructed=reconstructed,
    )
