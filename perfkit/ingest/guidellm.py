"""GuideLLM's benchmarks file (``guidellm run --output kind=json``, or ``benchmarks.json``) as imported runs.

Each benchmark of the file (one per load level of a sweep) holds its requests, successful, errored and
incomplete, with their own timings (epoch s): ``targeted_start`` (when the schedule wanted the send: the
intended time perfkit records), ``request_start``, ``first_token_iteration``, ``last_token_iteration``,
``request_end``, and token counts.  GuideLLM keeps no time per chunk, so ITL per chunk is missing: its own
"inter token latency" is a per-request mean over tokens, which perfkit calls TPOT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfkit.errors import ConfigError
from perfkit.ingest.base import ImportedRun, read_json, request

__all__ = ["DEFINITIONS", "read_guidellm"]

DEFINITIONS = {
    "ttft_ms": "GuideLLM: from the request's start to the first token iteration, as perfkit's TTFT",
    "tpot_ms": "GuideLLM's inter_token_latency_ms is (last token - first token) / (output tokens - 1), perfkit's "
    "TPOT; its time_per_output_token_ms divides the whole latency by all tokens",
    "itl_ms": "not in the file: GuideLLM keeps no time per chunk",
}


def _ns(t: Any) -> int | None:
    return int(round(float(t) * 1e9)) if isinstance(t, (int, float)) else None


def read_guidellm(path: str | Path, benchmark: int | None = None) -> ImportedRun:
    """Read a GuideLLM benchmarks JSON; ``benchmark`` picks one of several (a sweep's load levels; default the
    only one, else an error that lists them)."""
    src = Path(path)
    d: Any = read_json(src, "GuideLLM")
    benches = d.get("benchmarks") if isinstance(d, dict) else None
    if not isinstance(benches, list) or not benches:
        raise ConfigError(f"{src} is not a GuideLLM benchmarks file: it has no 'benchmarks' list")
    if benchmark is None and len(benches) > 1:
        names = ", ".join(f"{k}: {_strategy(b)}" for k, b in enumerate(benches))
        raise ConfigError(f"{src} holds {len(benches)} benchmarks ({names}); pick one with --benchmark K")
    if benchmark is not None and not 0 <= benchmark < len(benches):
        raise ConfigError(f"{src} holds benchmarks 0 to {len(benches) - 1}; there is no benchmark {benchmark}")
    b = benches[benchmark or 0]
    reqs = b.get("requests") or {}
    rows: list[tuple[dict[str, Any], str | None]] = []
    for status in ("successful", "errored", "incomplete"):
        for r in reqs.get(status) or []:
            err = None if status == "successful" else str((r.get("info") or {}).get("error") or status)
            rows.append((r, err))
    if not rows:
        raise ConfigError(
            f"{src}: benchmark {benchmark or 0} keeps no request (GuideLLM samples requests when "
            "--metrics sample_size is set; record with every request kept)"
        )

    def start(r: dict[str, Any]) -> float:
        t = ((r.get("info") or {}).get("timings") or {}).get("request_start") or r.get("request_start_time")
        return float(t) if isinstance(t, (int, float)) else float("inf")

    rows.sort(key=lambda x: start(x[0]))
    t0 = min(start(r) for r, _ in rows)
    records = []
    for i, (r, err) in enumerate(rows):
        tm = (r.get("info") or {}).get("timings") or {}
        s = _ns(start(r) - t0) if start(r) != float("inf") else None

        def rel(key: str, tm: dict[str, Any] = tm) -> int | None:
            v = tm.get(key)
            return _ns(float(v) - t0) if isinstance(v, (int, float)) else None

        records.append(
            request(
                i,
                s or 0,
                intended_ns=rel("targeted_start"),
                first_token_ns=rel("first_token_iteration"),
                last_token_ns=rel("last_token_iteration"),
                end_ns=rel("request_end"),
                prompt_tokens=r.get("prompt_tokens"),
                output_tokens=r.get("output_tokens"),
                error=err,
            )
        )
    strategy = (b.get("config") or {}).get("strategy") or {}
    kind = str(strategy.get("type_") or "")
    spec = ((d.get("config") or {}).get("spec") or {}) if isinstance(d.get("config"), dict) else {}
    data = (spec.get("data") or [{}])[0] if isinstance(spec.get("data"), list) else {}
    backend = spec.get("backend") or {}
    body_ignore_eos = None
    first = rows[0][0].get("request_args")
    if isinstance(first, str) and '"ignore_eos":true' in first.replace(" ", ""):
        body_ignore_eos = True
    closed = kind in ("concurrent", "synchronous", "throughput")
    phase = {
        "mode": "closed" if closed else "open",
        "rate": None if closed else strategy.get("rate"),
        "concurrency": (strategy.get("streams") or 1) if closed else None,
        "arrival": {"poisson": "poisson", "constant": "constant"}.get(kind) if not closed else None,
        "burstiness": 1.0 if kind == "poisson" else None,
        "prompt_tokens": str(data["prompt_tokens"]) if data.get("prompt_tokens") is not None else None,
        "output_tokens": str(data["output_tokens"]) if data.get("output_tokens") is not None else None,
    }
    fmt = str(backend.get("request_format") or "")
    endpoint = {
        "base_url": backend.get("target"),
        "model": backend.get("model") or None,
        "api": "chat" if "chat" in fmt else "completions",
        "ignore_eos": body_ignore_eos,
    }
    meta = d.get("metadata") or {}
    started = b.get("start_time")
    return ImportedRun(
        "guidellm",
        meta.get("guidellm_version"),
        records,
        endpoint,
        phase,
        started_utc=_iso(started),
        definitions=DEFINITIONS,
        missing=["chunk arrival times (no ITL per chunk; TPOT from the first and last token)"],
        label=f"imported from guidellm ({_strategy(b)})",
    )


def _strategy(b: dict[str, Any]) -> str:
    s = (b.get("config") or {}).get("strategy") or {}
    kind = str(s.get("type_") or "?")
    return f"{kind}@{s['rate']:g}" if isinstance(s.get("rate"), (int, float)) else kind


def _iso(epoch: Any) -> str | None:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(float(epoch), UTC).isoformat() if isinstance(epoch, (int, float)) else None
