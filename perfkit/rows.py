"""The row contracts: every row a producer writes, defined together at the bottom of the package.

A run is recorded as five tables.  The load runner produces :class:`RequestRecord` objects (each one
row of ``requests`` and a row of ``chunks`` per streamed content chunk); the side-channel samplers
produce rows of ``gpu_samples``, ``server_metrics`` and ``host_samples`` as dicts
(:class:`GpuSample`, :class:`ServerMetric`, :class:`HostSample`).  Every producer hands its rows to a
:class:`Sink` (``sink.put(table, rows)``): Parquet on disk (:class:`perfkit.store.ParquetSink`),
memory in tests (:class:`MemorySink`), or anything else with that one method.

Every stage may import this module; it imports nothing of perfkit's and no third-party package, so
the columns' definitions (:data:`TABLE_COLUMNS`, with their units) are one source for the Parquet
schema (:mod:`perfkit.store.schema`), the documentation (``perfkit schema``) and the producers.

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

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

__all__ = [
    "CHUNK_COLUMNS",
    "GPU_METRICS",
    "GPU_SAMPLE_COLUMNS",
    "HOST_METRICS",
    "HOST_SAMPLE_COLUMNS",
    "INSTANT_COLUMNS",
    "REQUEST_COLUMNS",
    "SCHEMA_VERSION",
    "SERVER_COMMON",
    "SERVER_METRIC_COLUMNS",
    "TABLE_COLUMNS",
    "TELEMETRY_TABLES",
    "Column",
    "ErrorKind",
    "GpuSample",
    "HostSample",
    "MemorySink",
    "RequestRecord",
    "ServerMetric",
    "Sink",
]

SCHEMA_VERSION = 1
"""Version of the tables' layout; a reader refuses parts of a version it does not know."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table: its name (with a unit suffix), type, nullability and meaning.

    ``type`` is one of ``int32``, ``int64``, ``float64``, ``bool``, ``string``.
    """

    name: str
    type: str
    doc: str
    nullable: bool = True


REQUEST_COLUMNS: tuple[Column, ...] = (
    Column("request_id", "int64", "Sequence number of the request in its run (0, 1, ...).", nullable=False),
    Column("phase", "string", "Name of the phase that issued the request.", nullable=False),
    Column("phase_index", "int32", "Position of that phase in the run (0-based).", nullable=False),
    Column("warmup", "bool", "True for warm-up requests: recorded, left out of summaries.", nullable=False),
    Column("user_id", "int32", "Closed loop: the user (0..N-1) that sent it; null in open loop."),
    Column("class_name", "string", "The user class that sent it ('default' without a mix).", nullable=False),
    Column("session_id", "int64", "The session (conversation) it belongs to."),
    Column("turn", "int32", "Turn within the session (0-based); its prompt holds every earlier turn.", nullable=False),
    Column("endpoint", "string", "Base URL of the endpoint (replica) that served it."),
    Column(
        "target_rate_rps",
        "float64",
        "Open loop: the phase's mean requested arrival rate, sessions/s; null in closed loop.",
    ),
    Column("intended_ns", "int64", "When the schedule meant to send it, ns (monotonic).", nullable=False),
    Column("sent_ns", "int64", "When the client started sending it, ns (monotonic)."),
    Column("headers_ns", "int64", "When the response headers arrived, ns (monotonic)."),
    Column("first_token_ns", "int64", "When the first content chunk arrived, ns (monotonic)."),
    Column("last_token_ns", "int64", "When the last content chunk arrived, ns (monotonic)."),
    Column("end_ns", "int64", "When the response ended (or failed), ns (monotonic)."),
    Column("schedule_lag_ms", "float64", "sent_ns - intended_ns, ms: how late the client sent it."),
    Column("ttft_ms", "float64", "Time to first token: first_token_ns - sent_ns, ms."),
    Column("e2e_ms", "float64", "End-to-end latency: end_ns - sent_ns, ms."),
    Column(
        "ttft_from_intended_ms",
        "float64",
        "first_token_ns - intended_ns, ms: TTFT as the schedule saw it (coordinated omission).",
    ),
    Column("e2e_from_intended_ms", "float64", "end_ns - intended_ns, ms: E2E as the schedule saw it."),
    Column(
        "tpot_ms", "float64", "Time per output token after the first: (last - first token) / (output_tokens - 1), ms."
    ),
    Column("itl_mean_ms", "float64", "Mean gap between content chunks: (last - first token) / (n_chunks - 1), ms."),
    Column("prompt_tokens_target", "int32", "Prompt length the workload asked for, tokens.", nullable=False),
    Column("prompt_tokens", "int32", "Prompt tokens the server reported in usage, tokens (null if not reported)."),
    Column("output_tokens_target", "int32", "max_tokens sent, tokens.", nullable=False),
    Column(
        "output_tokens",
        "int32",
        "Output tokens: the server's usage if reported, else the content-chunk count.",
        nullable=False,
    ),
    Column("output_tokens_source", "string", "'usage' or 'chunks': where output_tokens came from.", nullable=False),
    Column("n_chunks", "int32", "Content chunks received.", nullable=False),
    Column("empty_chunks", "int32", "Chunks with choices but no text (role-only, finish-only).", nullable=False),
    Column("malformed_chunks", "int32", "Data lines that were not a JSON object.", nullable=False),
    Column("status", "int32", "HTTP status of the response; null if none arrived."),
    Column("ok", "bool", "True when the request completed with output and no error.", nullable=False),
    Column("error_kind", "string", "Null on success, else one of perfkit.rows.ErrorKind."),
    Column("error_message", "string", "What went wrong, at most 500 characters (no secrets)."),
    Column("finish_reason", "string", "The server's finish_reason ('length', 'stop', ...)."),
    Column(
        "slo_ok",
        "bool",
        "Whether the request met its class's SLO, a wrong answer counting as a miss (null when the class has none).",
    ),
    Column(
        "check_ok", "bool", "Probes: whether the answer passed its check (false: a semantic error); null otherwise."
    ),
    Column("check_message", "string", "Why the answer failed its check."),
)
"""One row per request (the ``requests`` table)."""

CHUNK_COLUMNS: tuple[Column, ...] = (
    Column("request_id", "int64", "The request the chunk belongs to.", nullable=False),
    Column("chunk_index", "int32", "Position among the request's content chunks (0-based).", nullable=False),
    Column("arrival_ns", "int64", "When the read that completed this chunk returned, ns (monotonic).", nullable=False),
    Column("itl_ms", "float64", "Gap since the request's previous content chunk, ms; null for the first."),
    Column("tokens", "int32", "Tokens in the chunk from the server's cumulative usage; null if not streamed."),
    Column("chars", "int32", "Characters of text in the chunk.", nullable=False),
)
"""One row per streamed content chunk (the ``chunks`` table)."""

GPU_SAMPLE_COLUMNS: tuple[Column, ...] = (
    Column(
        "t_ns",
        "int64",
        "When the reading was taken (midpoint of the calls), ns (monotonic, the requests' clock).",
        nullable=False,
    ),
    Column("gpu", "int32", "GPU index (NVML order); -1 for readings about the sampler itself.", nullable=False),
    Column(
        "metric",
        "string",
        "Counter name with its unit suffix (see docs/telemetry.md), e.g. sm_clock_mhz.",
        nullable=False,
    ),
    Column("value", "float64", "The reading, in the unit its name ends with; null when the call failed this time."),
    Column("detail", "string", "Qualifier of the reading: the process id for process_mem_used_bytes, else null."),
    Column(
        "source",
        "string",
        "'nvml' (a real GPU through NVML) or 'sim' (SIMULATED from the simulator's engine).",
        nullable=False,
    ),
)
SERVER_METRIC_COLUMNS: tuple[Column, ...] = (
    Column("t_ns", "int64", "When the scrape's response arrived, ns (monotonic).", nullable=False),
    Column("endpoint", "string", "Base URL of the server scraped (no credentials).", nullable=False),
    Column("name", "string", "Sample name as exposed, e.g. vllm:num_requests_running or ..._bucket.", nullable=False),
    Column("labels", "string", "The sample's labels as sorted JSON, without le; '{}' when none.", nullable=False),
    Column("le", "float64", "Histogram bucket upper bound (the le label), in the metric's unit; null otherwise."),
    Column(
        "kind", "string", "Family type: counter, gauge, histogram, summary, info, stateset or unknown.", nullable=False
    ),
    Column("value", "float64", "The raw sample value, in the metric's unit.", nullable=False),
    Column(
        "rate_per_s",
        "float64",
        "Cumulative samples: increase since the previous scrape / elapsed s (a reset counts from 0); null otherwise.",
    ),
    Column("reset", "bool", "True when a cumulative sample went down since the previous scrape (server restart)."),
    Column(
        "common_name",
        "string",
        "Engine-neutral name (running, waiting, kv_usage, preemptions, prompt_tokens, generation_tokens) or null.",
    ),
)
HOST_SAMPLE_COLUMNS: tuple[Column, ...] = (
    Column("t_ns", "int64", "When the reading was taken, ns (monotonic).", nullable=False),
    Column(
        "scope",
        "string",
        "'client' (this perfkit process), 'server' (a local server's process tree), 'system'; for a run over "
        "a Ray cluster also 'worker' (a worker's process) and 'worker-system' (its node), pid the worker's.",
        nullable=False,
    ),
    Column("pid", "int32", "Process id of the scope's root process; null for 'system'."),
    Column(
        "metric",
        "string",
        "Reading with its unit suffix: cpu_pct, rss_bytes, loop_lag_max_ms, ... (docs/telemetry.md).",
        nullable=False,
    ),
    Column("value", "float64", "The reading, in the unit its name ends with."),
)

TELEMETRY_TABLES = ("gpu_samples", "server_metrics", "host_samples")
TABLE_COLUMNS: dict[str, tuple[Column, ...]] = {
    "requests": REQUEST_COLUMNS,
    "chunks": CHUNK_COLUMNS,
    "gpu_samples": GPU_SAMPLE_COLUMNS,
    "server_metrics": SERVER_METRIC_COLUMNS,
    "host_samples": HOST_SAMPLE_COLUMNS,
}
"""Every table's columns, in the order they are written."""

INSTANT_COLUMNS: dict[str, tuple[str, ...]] = {
    table: tuple(c.name for c in cols if c.name.endswith("_ns")) for table, cols in TABLE_COLUMNS.items()
}
"""Each table's instants on the monotonic clock (the columns a move to another host's clock shifts)."""


class GpuSample(TypedDict):
    """A row of ``gpu_samples`` (see :data:`GPU_SAMPLE_COLUMNS`)."""

    t_ns: int
    gpu: int
    metric: str
    value: float | None
    detail: str | None
    source: str


class ServerMetric(TypedDict):
    """A row of ``server_metrics`` (see :data:`SERVER_METRIC_COLUMNS`)."""

    t_ns: int
    endpoint: str
    name: str
    labels: str
    le: float | None
    kind: str
    value: float
    rate_per_s: float | None
    reset: bool | None
    common_name: str | None


class HostSample(TypedDict):
    """A row of ``host_samples`` (see :data:`HOST_SAMPLE_COLUMNS`)."""

    t_ns: int
    scope: str
    pid: int | None
    metric: str
    value: float


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
    "cpu_pct": "CPU time used over the interval, percent of one core (client/server: the process tree; system: all "
    "cores).",
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
    "waiting_by_reason": "Requests queued, by why they wait (gauge; label reason: capacity, deferred).",
    "kv_usage": "KV-cache use, fraction 0..1 (gauge).",
    "preemptions": "Preemptions / retractions (counter).",
    "prompt_tokens": "Prompt (prefill) tokens processed (counter).",
    "generation_tokens": "Generated tokens (counter).",
    "prefix_cache_queries": "Prompt tokens looked up in the prefix cache (counter).",
    "prefix_cache_hits": "Prompt tokens found in the prefix cache (counter).",
    "admission_rejections": "Requests refused at admission with HTTP 503 (counter; label reason: "
    "max_num_queued_reqs, max_num_queued_tokens).",
}


class ErrorKind:
    """The error kinds a request can end with (``error_kind`` column); None means success."""

    HTTP_STATUS = "http_status"  # a non-200 answer (other than 429); the code is in ``status``
    RATE_LIMITED = "rate_limited"  # HTTP 429; the message carries the server's Retry-After
    CONNECT = "connect_error"  # refused, DNS, unreachable
    CONNECT_TIMEOUT = "connect_timeout"
    READ_TIMEOUT = "read_timeout"  # no byte for longer than the read timeout (a stall)
    RESET = "connection_reset"  # the server closed or reset mid-response
    TRUNCATED = "truncated"  # the stream stopped part-way (mid-event, or before any finish_reason)
    MISSING_DONE = "missing_done"  # a finish_reason arrived and the stream ended cleanly, without ``[DONE]``
    OVERSIZED = "oversized_event"  # an event grew past perfkit.client.sse.MAX_EVENT_BYTES
    MALFORMED = "malformed_chunk"  # a data line that is not JSON
    STREAM_ERROR = "stream_error"  # an error object inside the stream
    EMPTY = "empty_response"  # a complete answer with no output text
    WRONG_CONTENT_TYPE = "wrong_content_type"
    CANCELLED = "cancelled"  # perfkit gave up on it (end of run, user cancellation)
    CLIENT = "client_error"  # anything else raised while sending or reading


def _ms(a: int | None, b: int | None) -> float | None:
    return (b - a) / 1e6 if a is not None and b is not None else None


@dataclass(slots=True)
class RequestRecord:
    """Everything measured for one request; the ``requests`` and ``chunks`` rows are made from it
    (:data:`REQUEST_COLUMNS`, :data:`CHUNK_COLUMNS`).  Times are integer ns on :func:`perfkit.clock.now_ns`."""

    request_id: int
    phase: str
    phase_index: int
    warmup: bool
    user_id: int | None
    intended_ns: int
    prompt_tokens_target: int
    output_tokens_target: int
    class_name: str = "default"
    session_id: int | None = None
    turn: int = 0
    target_rate_rps: float | None = None
    endpoint: str | None = None
    sent_ns: int | None = None
    headers_ns: int | None = None
    first_token_ns: int | None = None
    last_token_ns: int | None = None
    end_ns: int | None = None
    status: int | None = None
    error_kind: str | None = None
    error_message: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    output_tokens_usage: int | None = None
    empty_chunks: int = 0
    malformed_chunks: int = 0
    chunk_ns: list[int] = field(default_factory=list)
    chunk_tokens: list[int | None] = field(default_factory=list)
    chunk_chars: list[int] = field(default_factory=list)
    text_parts: list[str] | None = None  # kept only when a later turn or a check needs the answer
    slo_ok: bool | None = None
    check_ok: bool | None = None
    check_message: str | None = None

    def fail(self, kind: str, message: str | None = None) -> None:
        """Record the first failure; later ones do not overwrite it."""
        if self.error_kind is None:
            self.error_kind = kind
            self.error_message = (message or "")[:500] or None

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    @property
    def output_tokens(self) -> int:
        """Output tokens: the server's ``usage`` when given, else one per content chunk."""
        if self.output_tokens_usage is not None:
            return self.output_tokens_usage
        return len(self.chunk_ns)

    @property
    def ttft_ms(self) -> float | None:
        return _ms(self.sent_ns, self.first_token_ns)

    @property
    def e2e_ms(self) -> float | None:
        return _ms(self.sent_ns, self.end_ns)

    @property
    def tpot_ms(self) -> float | None:
        span = _ms(self.first_token_ns, self.last_token_ns)
        n = self.output_tokens
        return span / (n - 1) if span is not None and n > 1 else None

    @property
    def output_tokens_source(self) -> str:
        return "usage" if self.output_tokens_usage is not None else "chunks"


class Sink(Protocol):
    """Where every producer of a run writes its rows.

    ``table`` is ``"requests"`` (rows are :class:`RequestRecord` objects, which also make the
    ``chunks`` rows) or one of :data:`TELEMETRY_TABLES` (rows are dicts of that table's columns).
    ``put`` is called on event loops and sampler threads alike: it must not block and must be safe
    from any thread.  ``close`` writes what is held and releases the sink.
    """

    def put(self, table: str, rows: Sequence[Any]) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """A :class:`Sink` that keeps every row in memory, per table (tests, and a producer's own buffer).

    Attributes
    ----------
    rows : dict of str to list
        The rows put so far, per table, in the order they came.
    """

    def __init__(self) -> None:
        self.rows: dict[str, list[Any]] = {}
        self.closed = False
        self._lock = threading.Lock()

    def put(self, table: str, rows: Sequence[Any]) -> None:
        with self._lock:
            self.rows.setdefault(table, []).extend(rows)

    def take(self, table: str) -> list[Any]:
        """The rows of ``table`` put since the last take (and forget them)."""
        with self._lock:
            return self.rows.pop(table, [])

    def close(self) -> None:
        self.closed = True
