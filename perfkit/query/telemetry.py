"""SQL over the telemetry tables: wide pivots, one long view, and counters joined to each request.

The ``telemetry`` view puts every side channel in one long shape
``(run_id, t_ns, channel, metric, value)`` with engine-neutral names:

* GPU counters under their own names (``sm_clock_mhz``, ``power_w``, ...),
  averaged over the GPUs at each reading, except the additive ones
  (``power_w``, ``power_instant_w``, ``energy_j``, ``mem_used_bytes``,
  ``mem_total_bytes``), which are summed;
* server gauges under their common names (``running``, ``waiting``,
  ``kv_usage``) and counters as rates (``preemptions_per_s``,
  ``prompt_tokens_per_s``, ``generation_tokens_per_s``,
  ``admission_rejections_per_s``), summed over label
  sets (each endpoint's scrapes are their own readings, at their own
  instants); where an engine exposes two names for one thing
  (vLLM's ``kv_cache_usage_perc`` and ``gpu_cache_usage_perc``) one is taken;
* host readings prefixed by their scope (``client_cpu_pct``,
  ``client_loop_lag_max_ms``, ``server_cpu_pct``, ``server_rss_bytes``, ...).

:func:`request_telemetry_sql` attaches to each request the mean of chosen
metrics over its lifetime, ``[sent_ns, end_ns]`` (an interval join), and, for
a request shorter than the sampling interval, the last reading at or before
its end (an ASOF join); ``<metric>_n`` says how many readings the mean used
(0: the ASOF value).
"""

from __future__ import annotations

from perfkit.store.schema import GPU_METRICS, HOST_METRICS

__all__ = [
    "DEFAULT_REQUEST_METRICS",
    "DEFAULT_TIMELINE_METRICS",
    "SERVER_TIMINGS",
    "TELEMETRY_VIEW_SQL",
    "request_telemetry_sql",
    "timeline_sql",
    "wide_sql",
]

# Per-request time histograms (seconds) that engines expose, and the part of a request each one times.  vLLM
# times each stage from the request's arrival in the engine; SGLang its queue, first token and whole request;
# TGI its queue, inference and whole request.  What the client sees beyond the engine's ``e2e`` is outside it.
SERVER_TIMINGS: dict[str, str] = {
    "vllm:request_queue_time_seconds": "queue",
    "vllm:request_prefill_time_seconds": "prefill",
    "vllm:request_decode_time_seconds": "decode",
    "vllm:time_to_first_token_seconds": "ttft",
    "vllm:e2e_request_latency_seconds": "e2e",
    "sglang:queue_time_seconds": "queue",
    "sglang:time_to_first_token_seconds": "ttft",
    "sglang:e2e_request_latency_seconds": "e2e",
    "tgi_request_queue_duration": "queue",
    "tgi_request_inference_duration": "inference",
    "tgi_request_duration": "e2e",
    "vllm:inter_token_latency_seconds": "itl",
    "sglang:inter_token_latency_seconds": "itl",
    "tgi_request_mean_time_per_token_duration": "tpot",
}

_ADDITIVE_GPU = ("power_w", "power_instant_w", "energy_j", "mem_used_bytes", "mem_total_bytes")
_GAUGES = ("running", "waiting", "kv_usage")
_COUNTERS = ("preemptions", "prompt_tokens", "generation_tokens", "admission_rejections")

DEFAULT_REQUEST_METRICS = (
    "sm_clock_mhz",
    "gpu_util_pct",
    "power_w",
    "mem_used_bytes",
    "temperature_c",
    "kv_usage",
    "running",
    "waiting",
    "preemptions_per_s",
    "client_cpu_pct",
    "client_loop_lag_max_ms",
)
DEFAULT_TIMELINE_METRICS = (
    "sm_clock_mhz",
    "gpu_util_pct",
    "power_w",
    "kv_usage",
    "running",
    "waiting",
    "client_cpu_pct",
    "client_loop_lag_max_ms",
)


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"metric name {name!r} must be letters, digits and '_'")
    return name


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _cols(metrics: list[str] | tuple[str, ...], key: str = "metric", agg: str = "max") -> str:
    return ",\n    ".join(f"{agg}(value) FILTER (WHERE {key} = {_lit(m)}) AS {_ident(m)}" for m in metrics)


TELEMETRY_VIEW_SQL = f"""
WITH gpu AS (
  SELECT run_id, t_ns, 'gpu' AS channel, metric,
      CASE WHEN metric IN ({", ".join(map(_lit, _ADDITIVE_GPU))}) THEN sum(value) ELSE avg(value) END AS value
  FROM gpu_samples WHERE detail IS NULL AND value IS NOT NULL GROUP BY run_id, t_ns, metric
),
per_name AS (
  SELECT run_id, t_ns, endpoint, common_name, name,
      CASE WHEN common_name = 'kv_usage' THEN avg(value) ELSE sum(value) END AS value, sum(rate_per_s) AS rate
  FROM server_metrics WHERE common_name IS NOT NULL GROUP BY run_id, t_ns, endpoint, common_name, name
),
per_endpoint AS (  -- two names for one thing (vLLM's old and new KV names) are alternatives: take one
  SELECT run_id, t_ns, endpoint, common_name, max(value) AS value, max(rate) AS rate FROM per_name
  GROUP BY run_id, t_ns, endpoint, common_name
),
server AS (
  SELECT run_id, t_ns, 'server' AS channel, common_name AS metric,
      CASE WHEN common_name = 'kv_usage' THEN avg(value) ELSE sum(value) END AS value
  FROM per_endpoint WHERE common_name IN ({", ".join(map(_lit, _GAUGES))}) GROUP BY run_id, t_ns, common_name
  UNION ALL
  SELECT run_id, t_ns, 'server', common_name || '_per_s', sum(rate)
  FROM per_endpoint WHERE common_name IN ({", ".join(map(_lit, _COUNTERS))}) AND rate IS NOT NULL
  GROUP BY run_id, t_ns, common_name
),
host AS (
  SELECT run_id, t_ns, 'host' AS channel, scope || '_' || metric AS metric, value FROM host_samples
  WHERE value IS NOT NULL
)
SELECT * FROM gpu UNION ALL SELECT * FROM server UNION ALL SELECT * FROM host
"""

_HOST_WIDE = tuple(HOST_METRICS)
_GPU_WIDE = tuple(m for m in GPU_METRICS if m != "process_mem_used_bytes")


def wide_sql(table: str, where: str = "TRUE") -> str:
    """One row per reading instant, one column per metric, for a long telemetry table.

    ``gpu_samples``: per (run_id, t_ns, gpu), a column per GPU metric (null where
    unsupported or not read at that instant: fast and slow tiers read at
    different instants).  ``host_samples``: per (run_id, t_ns, scope).
    ``server_metrics``: per (run_id, t_ns, endpoint), the common names, with
    counters as ``<name>_total`` and ``<name>_per_s``.
    """
    if table == "gpu_samples":
        return f"""
SELECT run_id, t_ns, gpu, any_value(source) AS source,
    {_cols(_GPU_WIDE)}
FROM gpu_samples WHERE ({where}) AND detail IS NULL
GROUP BY run_id, t_ns, gpu ORDER BY run_id, t_ns, gpu"""
    if table == "host_samples":
        return f"""
SELECT run_id, t_ns, scope, any_value(pid) AS pid,
    {_cols(_HOST_WIDE)}
FROM host_samples WHERE {where}
GROUP BY run_id, t_ns, scope ORDER BY run_id, t_ns, scope"""
    if table == "server_metrics":
        gauges = ",\n    ".join(f"max(value) FILTER (WHERE common_name = {_lit(m)}) AS {m}" for m in _GAUGES)
        counters = ",\n    ".join(
            f"max(value) FILTER (WHERE common_name = {_lit(m)}) AS {m}_total,\n    "
            f"max(rate) FILTER (WHERE common_name = {_lit(m)}) AS {m}_per_s"
            for m in _COUNTERS
        )
        return f"""
WITH per_name AS (
  SELECT run_id, t_ns, endpoint, common_name, name,
      CASE WHEN common_name = 'kv_usage' THEN avg(value) ELSE sum(value) END AS value, sum(rate_per_s) AS rate
  FROM server_metrics WHERE ({where}) AND common_name IS NOT NULL
  GROUP BY run_id, t_ns, endpoint, common_name, name
)
SELECT run_id, t_ns, endpoint,
    {gauges},
    {counters}
FROM per_name GROUP BY run_id, t_ns, endpoint ORDER BY run_id, t_ns, endpoint"""
    raise ValueError(f"no telemetry table {table!r}; the tables are gpu_samples, host_samples, server_metrics")


def request_telemetry_sql(where: str = "TRUE", metrics: tuple[str, ...] | list[str] = DEFAULT_REQUEST_METRICS) -> str:
    """Each request of ``requests`` (filtered by ``where``) with the mean of ``metrics`` over its lifetime.

    Metrics are names of the ``telemetry`` view (see the module docstring);
    a metric never recorded in a run gives nulls.  Failed requests are kept
    (their lifetime ends at the failure).
    """
    names = [_ident(m) for m in metrics]
    if not names:
        raise ValueError("name at least one telemetry metric")
    inlist = ", ".join(map(_lit, names))
    cols = ",\n    ".join(
        f"max(value) FILTER (WHERE metric = {_lit(m)}) AS {m},\n    max(n) FILTER (WHERE metric = {_lit(m)}) AS {m}_n"
        for m in names
    )
    return f"""
WITH r AS (
  SELECT run_id, request_id, phase, warmup, ok, sent_ns, end_ns, ttft_ms, tpot_ms, e2e_ms, prompt_tokens,
      output_tokens
  FROM requests WHERE ({where}) AND sent_ns IS NOT NULL AND end_ns IS NOT NULL
),
t AS (SELECT run_id, t_ns, metric, value FROM telemetry WHERE metric IN ({inlist})),
m AS (SELECT * FROM (VALUES {", ".join(f"({_lit(n)})" for n in names)}) v(metric)),
rm AS (SELECT r.run_id, r.request_id, r.sent_ns, r.end_ns, m.metric FROM r CROSS JOIN m),
inside AS (
  SELECT rm.run_id, rm.request_id, rm.metric, avg(t.value) AS value, count(*) AS n
  FROM rm JOIN t ON t.run_id = rm.run_id AND t.metric = rm.metric AND t.t_ns BETWEEN rm.sent_ns AND rm.end_ns
  GROUP BY rm.run_id, rm.request_id, rm.metric
),
last_before AS (
  SELECT rm.run_id, rm.request_id, rm.metric, t.value
  FROM rm ASOF LEFT JOIN t ON t.run_id = rm.run_id AND t.metric = rm.metric AND rm.end_ns >= t.t_ns
),
pm AS (
  SELECT l.run_id, l.request_id, l.metric, coalesce(i.value, l.value) AS value, coalesce(i.n, 0) AS n
  FROM last_before l LEFT JOIN inside i USING (run_id, request_id, metric)
),
wide AS (
  SELECT run_id, request_id,
    {cols}
  FROM pm GROUP BY run_id, request_id
)
SELECT r.*, wide.* EXCLUDE (run_id, request_id)
FROM r JOIN wide USING (run_id, request_id)
ORDER BY r.run_id, r.request_id
"""


def timeline_sql(
    where: str = "TRUE", bin_s: float = 1.0, metrics: tuple[str, ...] | list[str] = DEFAULT_TIMELINE_METRICS
) -> str:
    """Per run and time bin: requests sent, their TTFT/E2E percentiles, ITL, throughput, mean telemetry.

    Bins are ``bin_s`` seconds from the run's first send (``t_s`` is the bin's
    start, s).  Requests fall in the bin of their send; chunk gaps
    (``itl_p50_ms``, ``itl_p99_ms``) and streamed tokens
    (``output_tokens_per_s``) in the bin of their arrival; telemetry in the
    bin of its reading.  Requests are those matching ``where`` (successful
    ones for latencies); telemetry is every reading of the selected runs.
    """
    if not bin_s > 0:
        raise ValueError(f"bin_s must be > 0, got {bin_s}")
    names = [_ident(m) for m in metrics]
    bin_ns = int(bin_s * 1e9)
    cols = ",\n    ".join(f"avg(value) FILTER (WHERE metric = {_lit(m)}) AS {m}" for m in names) or "NULL AS none"
    return f"""
WITH r AS (SELECT * FROM requests WHERE {where}),
t0 AS (SELECT run_id, min(sent_ns) AS t0 FROM requests WHERE run_id IN (SELECT run_id FROM r) GROUP BY run_id),
req AS (
  SELECT r.run_id, (r.sent_ns - t0.t0) // {bin_ns} AS bin, count(*) AS requests,
      count(*) FILTER (WHERE NOT r.ok) AS errors,
      quantile_cont(r.ttft_ms, 0.5) FILTER (WHERE r.ok) AS ttft_p50_ms,
      quantile_cont(r.ttft_ms, 0.99) FILTER (WHERE r.ok) AS ttft_p99_ms,
      quantile_cont(r.e2e_ms, 0.5) FILTER (WHERE r.ok) AS e2e_p50_ms,
      any_value(r.phase) AS phase
  FROM r JOIN t0 USING (run_id) WHERE r.sent_ns IS NOT NULL GROUP BY ALL
),
ch AS (
  SELECT c.run_id, (c.arrival_ns - t0.t0) // {bin_ns} AS bin,
      quantile_cont(c.itl_ms, 0.5) AS itl_p50_ms, quantile_cont(c.itl_ms, 0.99) AS itl_p99_ms,
      sum(coalesce(c.tokens, 1)) / {bin_s} AS output_tokens_per_s
  FROM chunks c JOIN r USING (run_id, request_id) JOIN t0 USING (run_id) WHERE r.ok GROUP BY ALL
),
tel AS (
  SELECT t.run_id, (t.t_ns - t0.t0) // {bin_ns} AS bin,
    {cols}
  FROM telemetry t JOIN t0 USING (run_id) WHERE t.t_ns >= t0.t0 GROUP BY ALL
)
SELECT run_id, bin * {bin_s} AS t_s, req.* EXCLUDE (run_id, bin), ch.* EXCLUDE (run_id, bin),
    tel.* EXCLUDE (run_id, bin)
FROM req FULL JOIN ch USING (run_id, bin) FULL JOIN tel USING (run_id, bin)
ORDER BY run_id, t_s
"""
