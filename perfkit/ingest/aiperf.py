"""AIPerf's per-record export (``profile_export.jsonl``, written with ``--export-level records``) as an
imported run.

Each line is one request: ``metadata`` with ``credit_issued_ns`` (when AIPerf's schedule released it: the
intended send perfkit records), ``request_start_ns`` and ``request_end_ns`` (ns on the wall clock), and
``metrics`` with ``time_to_first_token`` and ``inter_chunk_latency`` (ms: every gap between chunks),
``request_latency`` and the token counts; a failed request carries an ``error``.  The run's settings are read
from ``profile_export_aiperf.json`` beside the file when it is there (the model, the endpoint, the phase's
rate and the dataset's lengths); without it the manifest says they are unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfkit.errors import ConfigError
from perfkit.ingest.base import ImportedRun, read_json, read_lines, request

__all__ = ["DEFINITIONS", "read_aiperf"]

DEFINITIONS = {
    "ttft_ms": "AIPerf's time_to_first_token: from the request's start to the first response chunk, as perfkit's",
    "itl_ms": "AIPerf's inter_chunk_latency is perfkit's ITL (gaps between chunks); its inter_token_latency is a "
    "per-request mean over tokens, perfkit's TPOT",
    "e2e_ms": "AIPerf's request_latency: request start to the last response byte, as perfkit's",
}


def _value(metrics: dict[str, Any], key: str) -> Any:
    m = metrics.get(key)
    return m.get("value") if isinstance(m, dict) else None


def _summary_beside(src: Path) -> dict[str, Any]:
    """``profile_export_aiperf.json`` next to the records (or the same name with ``_aiperf.json``), if any."""
    name = src.name
    for cand in (
        src.with_name("profile_export_aiperf.json"),
        src.with_name(name.replace("profile_export.jsonl", "profile_export_aiperf.json")),
    ):
        if cand != src and cand.is_file():
            d = read_json(cand, "AIPerf")
            return d if isinstance(d, dict) else {}
    return {}


def read_aiperf(path: str | Path) -> ImportedRun:
    """Read AIPerf's ``profile_export.jsonl``; see the module docstring."""
    src = Path(path)
    lines = read_lines(src, "AIPerf")
    recs = [r for r in lines if isinstance(r, dict) and isinstance(r.get("metadata"), dict)]
    if not recs:
        raise ConfigError(
            f"{src} holds no AIPerf record (lines with 'metadata' and 'metrics'); export them with "
            "`aiperf profile ... --export-level records`"
        )
    recs = [r for r in recs if (r["metadata"].get("benchmark_phase") or "profiling") == "profiling"]
    recs.sort(key=lambda r: int(r["metadata"].get("request_start_ns") or 0))
    t0 = min(int(r["metadata"].get("request_start_ns") or 0) for r in recs)
    records = []
    for i, r in enumerate(recs):
        md, mt = r["metadata"], r.get("metrics") or {}
        sent = int(md.get("request_start_ns") or t0) - t0
        credit = md.get("credit_issued_ns")
        err = r.get("error") or md.get("error")
        if md.get("was_cancelled"):
            err = err or "cancelled"
        end = md.get("request_end_ns")
        end_rel = int(end) - t0 if isinstance(end, int) else None
        prompt = _value(mt, "usage_prompt_tokens") or _value(mt, "input_sequence_length")
        out = _value(mt, "usage_completion_tokens") or _value(mt, "output_sequence_length")
        ttft = _value(mt, "time_to_first_token")
        if err or not isinstance(ttft, (int, float)):
            message = err.get("message") if isinstance(err, dict) else err
            records.append(request(i, sent, end_ns=end_rel, prompt_tokens=prompt, error=str(message or "failed")))
            continue
        chunks = [sent + int(round(ttft * 1e6))]
        for gap in _value(mt, "inter_chunk_latency") or []:
            chunks.append(chunks[-1] + int(round(float(gap) * 1e6)))
        records.append(
            request(
                i,
                sent,
                intended_ns=int(credit) - t0 if isinstance(credit, int) else None,
                chunk_ns=chunks,
                end_ns=max(end_rel if end_rel is not None else chunks[-1], chunks[-1]),
                prompt_tokens=prompt,
                output_tokens=out,
            )
        )
    summary = _summary_beside(src)
    cfg = summary.get("input_config") or {}
    phases = [p for p in cfg.get("phases") or [] if p.get("kind", "profiling") == "profiling"]
    ph = phases[0] if phases else {}
    prompts = (((cfg.get("datasets") or [{}])[0]).get("prompts") or {}) if cfg.get("datasets") else {}
    kind = str(ph.get("type") or "")
    closed = kind == "concurrency" or (ph.get("concurrency") and not ph.get("rate"))
    isl, osl = (prompts.get("isl") or {}).get("mean"), (prompts.get("osl") or {}).get("mean")
    phase = {
        "mode": ("closed" if closed else "open") if ph else None,
        "rate": None if closed else ph.get("rate"),
        "concurrency": ph.get("concurrency") if closed else None,
        "arrival": kind if kind in ("poisson", "constant", "gamma") else None,
        "burstiness": 1.0 if kind == "poisson" else ph.get("burstiness"),
        "prompt_tokens": f"{isl:g}" if isinstance(isl, (int, float)) else None,
        "output_tokens": f"{osl:g}" if isinstance(osl, (int, float)) else None,
    }
    ep = cfg.get("endpoint") or {}
    models = ((cfg.get("models") or {}).get("items")) or [{}]
    endpoint = {
        "base_url": (ep.get("urls") or [None])[0],
        "model": models[0].get("name"),
        "api": "chat" if "chat" in str(ep.get("type") or "") else "completions",
        "ignore_eos": None,
    }
    missing = ["tokens per chunk"] + (
        [] if summary else ["the run's settings (no profile_export_aiperf.json beside it)"]
    )
    return ImportedRun(
        "aiperf",
        summary.get("aiperf_version"),
        records,
        endpoint,
        phase,
        started_utc=summary.get("start_time"),
        definitions=DEFINITIONS,
        missing=missing,
    )
