"""The Parquet schema of a run, with units: the one place where columns are defined.

Layout under a data directory (Hive-partitioned by run, so one glob reads all runs)::

    DATA_DIR/
      requests/run_id=RUN/part-000000.parquet ...   one row per request
      chunks/run_id=RUN/part-000000.parquet ...     one row per streamed content chunk
      gpu_samples/run_id=RUN/part-gpu-*.parquet     GPU counters, long format (one row per reading)
      server_metrics/run_id=RUN/part-*.parquet      the server's Prometheus /metrics, long format
      host_samples/run_id=RUN/part-host-*.parquet   the client's (and a local server's) CPU, memory, loop lag
      runs/run_id=RUN/manifest.json                 config, versions, host, clock anchor
      rollups/run_id=RUN/latency.parquet            per-second log histograms of TTFT, ITL, E2E (perfkit.store.rollup)

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

__all__ = ["CHUNKS", "GPU_METRICS", "GPU_SAMPLES", "HOST_METRICS", "HOST_SAMPLES", "REQUESTS", "SCHEMA_VERSION",
           "SERVER_COMMON", "SERVER_METRICS", "TABLES", "TELEMETRY_TABLES", "schema_markdown"]

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

GPU_SAMPLES = pa.schema([
    _f("t_ns", pa.int64(), "When the reading was taken (midpoint of the calls), ns (monotonic, the requests' clock).", False),
    _f("gpu", pa.int32(), "GPU index (NVML order); -1 for readings about the sampler itself.", False),
    _f("metric", pa.string(), "Counter name with its unit suffix (see docs/telemetry.md), e.g. sm_clock_mhz.", False),
    _f("value", pa.float64(), "The reading, in the unit its name ends with; null when the call failed this time."),
    _f("detail", pa.string(), "Qualifier of the reading: the process id for process_mem_used_bytes, else null."),
    _f("source", pa.string(), "'nvml' (a real GPU through NVML) or 'sim' (SIMULATED from the simulator's engine).", False),
])

SERVER_METRICS = pa.schema([
    _f("t_ns", pa.int64(), "When the scrape's response arrived, ns (monotonic).", False),
    _f("endpoint", pa.string(), "Base URL of the server scraped (no credentials).", False),
    _f("name", pa.string(), "Sample name as exposed, e.g. vllm:num_requests_running or ..._bucket.", False),
    _f("labels", pa.string(), "The sample's labels as sorted JSON, without le; '{}' when none.", False),
    _f("le", pa.float64(), "Histogram bucket upper bound (the le label), in the metric's unit; null otherwise."),
    _f("kind", pa.string(), "Family type: counter, gauge, histogram, summary, info, stateset or unknown.", False),
    _f("value", pa.float64(), "The raw sample value, in the metric's unit.", False),
    _f("rate_per_s", pa.float64(), "Cumulative samples: increase since the previous scrape / elapsed s (a reset counts from 0); null otherwise."),
    _f("reset", pa.bool_(), "True when a cumulative sample went down since the previous scrape (server restart)."),
    _f("common_name", pa.string(), "Engine-neutral name (running, waiting, kv_usage, preemptions, prompt_tokens, generation_tokens) or null."),
])

HOST_SAMPLES = pa.schema([
    _f("t_ns", pa.int64(), "When the reading was taken, ns (monotonic).", False),
    _f("scope", pa.string(), "'client' (this perfkit process), 'server' (a local server's process tree) or 'system'.", False),
    _f("pid", pa.int32(), "Process id of the scope's root process; null for 'system'."),
    _f("metric", pa.string(), "Reading with its unit suffix: cpu_pct, rss_bytes, loop_lag_max_ms, ... (docs/telemetry.md).", False),
    _f("value", pa.float64(), "The reading, in the unit its name ends with."),
])

# metric names of the long tables, with their meaning (docs/telemetry.md is made from these)
GPU_METRICS: dict[str, str] = {
    "gpu_util_pct": "Percent of the last sample period a kernel ran (NVML utilization.gpu).",
    "mem_util_pct": "Percent of the period device memory was read or written (NVML utilization.memory).",
    "mem_used_bytes": "Device memory in use, bytes.",
    "mem_total_bytes": "Device memory, bytes.",
    "power_w": "Power draw averaged by the driver over about 1 s, W.",
    "power_instant_w": "Instantaneous power draw (NVML_FI_DEV_POWER_INSTANT), W; where the driver has it.",
    "energy_j": "Energy counter since the driver loaded, J (difference two readings for a window's energy).",
    "sm_clock_mhz": "SM clock, MHz.",
    "mem_clock_mhz": "Memory clock, MHz.",
    "temperature_c": "GPU temperature, °C.",
    "clocks_event_reasons": "Bitmask of why clocks are held down (nvmlClocksEventReason*).",
    "throttle_thermal": "1 when a software or hardware thermal slowdown is active, else 0.",
    "throttle_power": "1 when the software power cap or hardware power brake is active, else 0.",
    "throttle_hw_slowdown": "1 when a hardware slowdown (thermal, power brake, external) is active, else 0.",
    "pcie_rx_bytes_per_s": "PCIe receive throughput, bytes/s (slow tier; NVML samples it over ~20 ms).",
    "pcie_tx_bytes_per_s": "PCIe transmit throughput, bytes/s (slow tier).",
    "process_mem_used_bytes": "Device memory used by one process (pid in detail), bytes (slow tier).",
    "sm_active_pct": "GPM SM activity, percent (Hopper and later; slow tier). Simulated: equals gpu_util_pct.",
    "tensor_active_pct": "GPM tensor-core activity, percent (Hopper and later; slow tier).",
    "dram_bw_util_pct": "GPM DRAM bandwidth utilisation, percent (Hopper and later; slow tier).",
    "gpu_lost": "1 at the reading where the GPU fell off the bus (NVML GpuIsLost); no reading follows.",
}
HOST_METRICS: dict[str, str] = {
    "cpu_pct": "CPU time used over the interval, percent of one core (client/server: the process tree; system: all cores).",
    "rss_bytes": "Resident memory of the process tree, bytes.",
    "threads": "Threads in the process tree.",
    "processes": "Processes in the tree (the root and its descendants).",
    "loop_lag_max_ms": "Client only: the latest wake-up of a 50 ms event-loop probe in the interval, ms.",
    "loop_lag_mean_ms": "Client only: its mean lateness in the interval, ms (floor: ~1 ms timer granularity).",
    "loop_cpu_pct": "Client only: CPU of the event loop's own thread over the interval, percent of one core.",
    "read_delay_p99_ms": "Client only, where reads carry kernel receive stamps: p99 over the interval's reads of "
                         "how long received bytes waited in their socket before they were read (by the client's reading "
                         "thread, or its event loop), ms "
                         "(0.1 ms buckets; upper edge).",
    "read_delay_max_ms": "Client only, the same: the longest such wait in the interval, ms.",
    "mem_available_bytes": "System only: memory available to new processes, bytes.",
}
SERVER_COMMON: dict[str, str] = {
    "running": "Requests in the running batch (gauge).",
    "waiting": "Requests queued, not yet scheduled (gauge).",
    "kv_usage": "KV-cache use, fraction 0..1 (gauge).",
    "preemptions": "Preemptions / retractions (counter).",
    "prompt_tokens": "Prompt (prefill) tokens processed (counter).",
    "generation_tokens": "Generated tokens (counter).",
}

TELEMETRY_TABLES: dict[str, pa.Schema] = {"gpu_samples": GPU_SAMPLES, "server_metrics": SERVER_METRICS,
                                          "host_samples": HOST_SAMPLES}
TABLES: dict[str, pa.Schema] = {"requests": REQUESTS, "chunks": CHUNKS, **TELEMETRY_TABLES}


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
    for title, names in (("`gpu_samples.metric`", GPU_METRICS), ("`host_samples.metric`", HOST_METRICS),
                         ("`server_metrics.common_name`", SERVER_COMMON)):
        out += [f"### Values of {title}", "", "| name | meaning |", "|---|---|"]
        out += [f"| `{k}` | {v} |" for k, v in names.items()]
        out.append("")
    return "\n".join(out)
