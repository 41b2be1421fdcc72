"""A synthetic run written straight to Parquet in perfkit's layout: large runs without waiting for them.

Used to measure how the analysis scales (``bench/analysis_scale.py``) and to
check the rollup against every sample (``tests/test_rollup.py``).  The latencies
have the structure of real ones: a slowly varying load (AR(1) in the log, so
neighbouring samples are alike), a per-request level of the inter-token latency,
lognormal noise, and a second phase (``surge``, from 60% of the requests on)
40% slower than the first (``steady``).  Requests arrive as a Poisson process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy.signal import lfilter

from perfkit.store.manifest import write_manifest
from perfkit.store.schema import CHUNKS, REQUESTS
from perfkit.store.writer import write_part

__all__ = ["write_synthetic_run"]


def _table(schema: pa.Schema, cols: dict[str, object], n: int) -> pa.Table:
    arrays = [pa.array(cols[f.name], type=f.type) if f.name in cols else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def write_synthetic_run(
    data_dir: str | Path,
    run_id: str,
    n_req: int,
    per_req: int,
    *,
    rate_rps: float = 2000.0,
    seed: int = 0,
    part_requests: int = 500_000,
    progress: bool = False,
) -> None:
    """Write a run of ``n_req`` requests with ``per_req`` chunks each under ``data_dir``.

    Parameters
    ----------
    data_dir : str or Path
    run_id : str
    n_req : int
        Requests.
    per_req : int
        Chunks per request (one token each).
    rate_rps : float
        Mean arrival rate, requests per second.
    seed : int
    part_requests : int
        Requests per Parquet part.
    progress : bool
        Print a line per part written.
    """
    data = Path(data_dir)
    rng = np.random.default_rng(seed)
    level = 0.0
    t = 1_000_000_000_000.0
    for part, start in enumerate(range(0, n_req, part_requests)):
        n = min(part_requests, n_req - start)
        ids = np.arange(start, start + n, dtype=np.int64)
        eps = rng.normal(0, 0.02, n)  # slowly varying load: AR(1) on the log scale, continued across parts
        load, _ = lfilter([1.0], [1.0, -0.999], eps, zi=[0.999 * level])
        level = float(load[-1])
        phase_index = (ids >= int(0.6 * n_req)).astype(np.int32)
        slow = np.where(phase_index == 1, 1.4, 1.0)
        sent = (t + np.cumsum(rng.exponential(1e9 / rate_rps, n))).astype(np.int64)
        t = float(sent[-1])
        ttft = 40.0 * slow * np.exp(load + rng.normal(0, 0.35, n))
        itl_level = 10.0 * slow * np.exp(0.5 * load + rng.normal(0, 0.1, n))
        itl = itl_level[:, None] * rng.lognormal(0, 0.25, (n, per_req))
        itl[:, 0] = np.nan
        first = sent + (ttft * 1e6).astype(np.int64)
        arrival = first[:, None] + np.cumsum(np.nan_to_num(itl) * 1e6, axis=1).astype(np.int64)
        last = arrival[:, -1]
        e2e = (last - sent) / 1e6
        tpot = (last - first) / 1e6 / max(per_req - 1, 1)
        req = _table(
            REQUESTS,
            {
                "request_id": ids,
                "phase": np.where(phase_index == 1, "surge", "steady").tolist(),
                "phase_index": phase_index,
                "warmup": np.zeros(n, bool),
                "class_name": ["default"] * n,
                "turn": np.zeros(n, np.int32),
                "intended_ns": sent,
                "sent_ns": sent,
                "headers_ns": sent,
                "first_token_ns": first,
                "last_token_ns": last,
                "end_ns": last,
                "schedule_lag_ms": np.zeros(n),
                "ttft_ms": ttft,
                "e2e_ms": e2e,
                "ttft_from_intended_ms": ttft,
                "e2e_from_intended_ms": e2e,
                "tpot_ms": tpot,
                "itl_mean_ms": tpot,
                "prompt_tokens_target": np.full(n, 256, np.int32),
                "prompt_tokens": np.full(n, 256, np.int32),
                "output_tokens_target": np.full(n, per_req, np.int32),
                "output_tokens": np.full(n, per_req, np.int32),
                "output_tokens_source": ["usage"] * n,
                "n_chunks": np.full(n, per_req, np.int32),
                "empty_chunks": np.zeros(n, np.int32),
                "malformed_chunks": np.zeros(n, np.int32),
                "status": np.full(n, 200, np.int32),
                "ok": np.ones(n, bool),
                "finish_reason": ["length"] * n,
            },
            n,
        )
        m = n * per_req
        chunks = _table(
            CHUNKS,
            {
                "request_id": np.repeat(ids, per_req),
                "chunk_index": np.tile(np.arange(per_req, dtype=np.int32), n),
                "arrival_ns": arrival.ravel(),
                "itl_ms": pa.array(itl.ravel(), from_pandas=True),
                "tokens": np.ones(m, np.int32),
                "chars": np.full(m, 4, np.int32),
            },
            m,
        )
        write_part(chunks, data / "chunks" / f"run_id={run_id}", part)
        write_part(req, data / "requests" / f"run_id={run_id}", part)
        if progress:
            print(f"  wrote part {part}: requests {start + n:,}", flush=True)
    write_manifest(
        data,
        run_id,
        {
            "status": "complete",
            "label": "synthetic (perfkit.store.synthetic)",
            "counts": {"requests": n_req},
            "seed": seed,
            "synthetic": {"requests": n_req, "chunks_per_request": per_req, "rate_rps": rate_rps},
        },
    )
