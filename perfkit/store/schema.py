"""The Parquet schema of a run, with units: the one place where columns are defined.

Layout under a data directory (Hive-partitioned by run, so one glob reads all runs)::

    DATA_DIR/
      requests/run_id=RUN/part-000000.parquet ...   one row per request
      chunks/run_id=RUN/part-000000.parquet ...     one row per streamed content chunk
      runs/run_id=RUN/manifest.json                 config, versions, host, clock anchor

``run_id`` is not stored inside the files: it comes from the directory name
(``hive_partitioning=true`` in DuckDB, ``hive_partitioning=True`` in Polars).

All ``*_ns`` columns are integer nanoseconds on the run's monotonic clock
(``time.perf_counter_ns``); the manifest's ``clock_anchor`` converts them to UTC.

Latency definitions (they differ between tools, so they are spelled out):

* ``ttft_ms`` = first content chunk received − request sent.  A chunk whose
  delta is empty (the role-only first chunk of chat streams) does not count.
* ``e2e_ms`` = end of stream (``[DONE]`` or the last byte) − request sent.
* ``itl_ms`` (``chunks`` table) = gap between consecutive content chunks of a
  request, what a user watching the stream sees.  This is vLLM's bench
  "ITL" and AIPerf's "inter chunk latency".
* ``tpot_ms`` = (last content chunk − first content chunk) / (output_tokens − 1),
  the mean time per output token after the first, using the server's token
  count.  vLLM's bench "TPOT" uses (e2e − ttft) instead, which also counts
  the tail after the last token; AIPerf's "ITL" is that same (e2e − ttft) /
  (tokens − 1); GuideLLM's "inter token latency" matches ``tpot_ms``.  With one
  token per chunk, the mean of ``itl_ms`` over a request equals ``tpot_ms``.
* ``tokens`` (``chunks`` table) = tokens in the chunk, from the server's
  cumulative ``usage.completion_tokens`` when it streams usage in every chunk
  (vLLM ``continuous_usage_stats``), else null; per-token gaps within a
  multi-token chunk are then unknown and ``tpot_ms`` is the per-token figure.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["CHUNKS", "REQUESTS", "SCHEMA_VERSION", "TABLES", "schema_markdown"]

SCHEMA_VERSION = 1


def _f(name: str, typ: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={"doc": doc})


REQUESTS = pa.schema([
    _f("request_id", pa.int64(), "Sequence number of the request in its run (0, 1, ...).", False),
    _f("phase", pa.string(), "Name of the phase that issued the request.", False),
    _f("phase_index", pa.int32(), "Position of that phase in the run (0-based).", False),
    _f("warmup", pa.bool_(), "True for warm-up requests: recorded, left out of summaries.", False),
    _f("user_id", pa.int32(), "Closed loop: the user (0..N-1) that sent it; null in open loop."),
    _f("class_name", pa.string(), "The user class that sent it ('default' without a mix).", False),
    _f("session_id", pa.int64(), "The session (conversation) it belongs to."),
    _f("turn", pa.int32(), "Turn within the session (0-based); its prompt holds every earlier turn.", False),
    _f("endpoint", pa.string(), "Base URL of the endpoint (replica) that served it."),
    _f("target_rate_rps", pa.float64(), "Open loop: the phase's mean requested arrival rate, sessions/s; null in closed loop."),
    _f("intended_ns", pa.int64(), "When the schedule meant to send it, ns (monotonic).", False),
    _f("sent_ns", pa.int64(), "When the client started sending it, ns (monotonic)."),
    _f("headers_ns", pa.int64(), "When the response headers arrived, ns (monotonic)."),
    _f("first_token_ns", pa.int64(), "When the first content chunk arrived, ns (monotonic)."),
    _f("last_token_ns", pa.int64(), "When the last content chunk arrived, ns (monotonic)."),
    _f("end_ns", pa.int64(), "When the response ended (or failed), ns (monotonic)."),
    _f("schedule_lag_ms", pa.float64(), "sent_ns - intended_ns, ms: how late the client sent it."),
    _f("ttft_ms", pa.float64(), "Time to first token: first_token_ns - sent_ns, ms."),
    _f("e2e_ms", pa.float64(), "End-to-end latency: end_ns - sent_ns, ms."),
    _f("ttft_from_intended_ms", pa.float64(), "first_token_ns - intended_ns, ms: TTFT as the schedule saw it (coordinated omission)."),
    _f("e2e_from_intended_ms", pa.float64(), "end_ns - intended_ns, ms: E2E as the schedule saw it."),
    _f("tpot_ms", pa.float64(), "Time per output token after the first: (last - first token) / (output_tokens - 1), ms."),
    _f("itl_mean_ms", pa.float64(), "Mean gap between content chunks: (last - first token) / (n_chunks - 1), ms."),
    _f("prompt_tokens_target", pa.int32(), "Prompt length the workload asked for, tokens.", False),
    _f("prompt_tokens", pa.int32(), "Prompt tokens the server reported in usage, tokens (null if not reported)."),
    _f("output_tokens_target", pa.int32(), "max_tokens sent, tokens.", False),
    _f("output_tokens", pa.int32(), "Output tokens: the server's usage if reported, else the content-chunk count.", False),
    _f("output_tokens_source", pa.string(), "'usage' or 'chunks': where output_tokens came from.", False),
    _f("n_chunks", pa.int32(), "Content chunks received.", False),
    _f("empty_chunks", pa.int32(), "Chunks with choices but no text (role-only, finish-only).", False),
    _f("malformed_chunks", pa.int32(), "Data lines that were not a JSON object.", False),
    _f("status", pa.int32(), "HTTP status of the response; null if none arrived."),
    _f("ok", pa.bool_(), "True when the request completed with output and no error.", False),
    _f("error_kind", pa.string(), "Null on success, else one of perfkit.client.records.ErrorKind."),
    _f("error_message", pa.string(), "What went wrong, at most 500 characters (no secrets)."),
    _f("finish_reason", pa.string(), "The server's finish_reason ('length', 'stop', ...)."),
    _f("slo_ok", pa.bool_(), "Whether the request met its class's SLO, a wrong answer counting as a miss (null when the class has none)."),
    _f("check_ok", pa.bool_(), "Probes: whether the answer passed its check (false: a semantic error); null otherwise."),
    _f("check_message", pa.string(), "Why the answer failed its check."),
])

CHUNKS = pa.schema([
    _f("request_id", pa.int64(), "The request the chunk belongs to.", False),
    _f("chunk_index", pa.int32(), "Position among the request's content chunks (0-based).", False),
    _f("arrival_ns", pa.int64(), "When the read that completed this chunk returned, ns (monotonic).", False),
    _f("itl_ms", pa.float64(), "Gap since the request's previous content chunk, ms; null for the first."),
    _f("tokens", pa.int32(), "Tokens in the chunk from the server's cumulative usage; null if not streamed."),
    _f("chars", pa.int32(), "Characters of text in the chunk.", False),
])

TABLES: dict[str, pa.Schema] = {"requests": REQUESTS, "chunks": CHUNKS}


def schema_markdown() -> str:
    """The schema as Markdown (``perfkit schema`` prints it; docs/schema.md is made from it)."""
    out = ["# perfkit data schema", "", f"Schema version {SCHEMA_VERSION}.", "",
           __doc__.strip().split("\n\n", 1)[1], ""]
    for name, schema in TABLES.items():
        out += [f"## `{name}`", "", "| column | type | null | meaning |", "|---|---|---|---|"]
        for f in schema:
            doc = f.metadata[b"doc"].decode()
            out.append(f"| `{f.name}` | {f.type} | {'yes' if f.nullable else 'no'} | {doc} |")
        out.append("")
    return "\n".join(out)
