"""A run's results in the formats other tools' users read: vLLM's ``bench serve`` result JSON, and perfkit's own.

:func:`vllm_bench_result` writes the keys a ``vllm bench serve --save-result --save-detailed`` file has
(``completed``, ``request_throughput``, ``output_throughput``, ``mean_ttft_ms``, ``median_ttft_ms``,
``std_ttft_ms``, ``p99_ttft_ms`` and the same for TPOT, ITL and E2E, the per-request ``ttfts`` and ``itls``
in seconds, lengths), computed with vLLM's definitions: TPOT per request is (E2E − TTFT) / (output
tokens − 1) over requests with more than one token, ITL is every gap between chunks pooled.  perfkit's
own figures (each percentile with its 95% interval on the effective sample) go under ``"perfkit"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perfkit.analysis.intervals import percentile_table
from perfkit.query.catalog import Catalog
from perfkit.query.frames import export_gaps, export_requests

__all__ = ["VLLM_PERCENTILES", "perfkit_result", "vllm_bench_result"]

VLLM_PERCENTILES = (50, 90, 99)


def _stats(name: str, values_ms: np.ndarray, percentiles: tuple[int, ...]) -> dict[str, float]:
    v = values_ms if len(values_ms) else np.zeros(1)
    out = {
        f"mean_{name}_ms": float(np.mean(v)),
        f"median_{name}_ms": float(np.median(v)),
        f"std_{name}_ms": float(np.std(v)),
    }
    for p in percentiles:
        out[f"p{p}_{name}_ms"] = float(np.percentile(v, p))
    return out


def perfkit_result(cat: Catalog, run_id: str, phase: str | None = None) -> dict[str, Any]:
    """perfkit's percentiles of a run (or one phase) with their intervals: ``{metric: {pXX: {estimate, lo, hi,
    n, n_eff, estimable, note}}}`` per phase, the figures every other output of perfkit gives."""
    t = percentile_table(cat, run_id)
    if phase is not None:
        t = t[t["phase"] == phase]
    out: dict[str, Any] = {}

    def num(v: Any) -> float | None:
        return None if v is None or v != v else float(v)

    for r in t.to_dict("records"):
        cell: dict[str, Any] = {k: num(r.get(k)) for k in ("estimate", "lo", "hi", "n_eff")}
        note = r.get("note")
        cell |= {"n": int(r["n"]), "estimable": bool(r["estimable"]), "note": note if isinstance(note, str) else None}
        key = f"p{round(100 * float(r['q'])):d}"
        out.setdefault(str(r["phase"]), {}).setdefault(str(r["metric"]), {})[key] = cell
    return out


def vllm_bench_result(
    cat: Catalog, run_id: str, phase: str | None = None, percentiles: tuple[int, ...] = VLLM_PERCENTILES
) -> dict[str, Any]:
    """The run (or one phase; warm-up left out) as a ``vllm bench serve`` result dict, perfkit's intervals added."""
    run_id = cat.require_run(run_id)
    req = export_requests(cat, run_id, phase)
    gaps = export_gaps(cat, run_id, phase)
    ok = req[req["ok"].astype(bool)]
    duration = float((req["end_ns"].max() - req["sent_ns"].min()) / 1e9) if len(req) else 0.0
    out_tokens = ok["output_tokens"].to_numpy(dtype=float)
    ttft = ok["ttft_ms"].to_numpy(dtype=float)
    e2e = ok["e2e_ms"].to_numpy(dtype=float)
    multi = out_tokens > 1
    tpot = (e2e[multi] - ttft[multi]) / (out_tokens[multi] - 1)
    itl = np.array([g for r in ok["request_id"] for g in gaps.get(int(r), [])], dtype=float)
    m = cat.manifest(run_id)
    endpoint = m.get("endpoint") or {}
    result: dict[str, Any] = {
        "date": m.get("started_utc"),
        "backend": "openai-chat" if endpoint.get("api") == "chat" else "openai",
        "model_id": endpoint.get("model"),
        "num_prompts": int(len(req)),
        "duration": duration,
        "completed": int(len(ok)),
        "failed": int(len(req) - len(ok)),
        "total_input_tokens": int(ok["prompt_tokens"].sum()),
        "total_output_tokens": int(out_tokens.sum()),
        "request_throughput": len(ok) / duration if duration else 0.0,
        "output_throughput": float(out_tokens.sum()) / duration if duration else 0.0,
        "total_token_throughput": float(out_tokens.sum() + ok["prompt_tokens"].sum()) / duration if duration else 0.0,
    }
    for name, values in (("ttft", ttft), ("tpot", tpot), ("itl", itl), ("e2el", e2e)):
        result.update(_stats(name, values, percentiles))
    # per request, every request in send order as vLLM lists them: a failed one has TTFT 0, no gaps, 0 tokens
    t0 = float(req["sent_ns"].min()) if len(req) else 0.0
    good = req["ok"].astype(bool).to_numpy()
    result.update(
        {
            "input_lens": [int(x) for x in req["prompt_tokens"].fillna(0)],
            "output_lens": [int(x) if g else 0 for x, g in zip(req["output_tokens"].fillna(0), good)],
            "ttfts": [float(x) / 1e3 if g else 0.0 for x, g in zip(req["ttft_ms"].fillna(0), good)],
            "itls": [[x / 1e3 for x in gaps.get(int(r), [])] if g else [] for r, g in zip(req["request_id"], good)],
            "latencies": [float(x) / 1e3 if g else 0.0 for x, g in zip(req["e2e_ms"].fillna(0), good)],
            "start_times": [(float(s) - t0) / 1e9 for s in req["sent_ns"].fillna(t0)],
            "errors": [str(e) for e in req["error_message"]],
            "perfkit": {
                "run_id": run_id,
                "phase": phase,
                "percentiles_ms": perfkit_result(cat, run_id, phase),
                "definitions": "perfkit's ITL is the gap between content chunks; a chunk may carry several tokens",
            },
        }
    )
    return result
