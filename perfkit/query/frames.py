"""The queries behind the analyses and the figures: each returns a frame or arrays, with bound parameters.

Every value that comes from a user or from the data (a run id, a phase or class name, a time origin,
a bin width) is a DuckDB parameter (``$name``), never spliced into the SQL text.  Estimators in
:mod:`perfkit.analysis` take what these return (frames, numpy arrays); charts in
:mod:`perfkit.report.charts` take frames; so each can be tested on a fixture frame without a
data directory, and these queries are tested on real Parquet once.

Times in frames for figures are seconds since the run's first intended send (``t_s``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from perfkit.query.telemetry import SERVER_TIMINGS

if TYPE_CHECKING:
    from perfkit.query.catalog import Catalog

__all__ = [
    "CDF_POINTS",
    "LATENCY_METRICS",
    "cdf_frame",
    "chunk_sizes",
    "export_gaps",
    "export_requests",
    "first_error",
    "first_intended_ns",
    "first_sent_ns",
    "last_end_ns",
    "last_sent_ns",
    "latency_clusters",
    "latency_samples",
    "phase_order",
    "admission_counters",
    "prefix_cache_counters",
    "phase_spans",
    "request_rate_frame",
    "request_spans",
    "send_spans",
    "server_buckets",
    "server_timings",
    "share_lags",
    "stability_samples",
    "telemetry_long",
    "telemetry_span",
    "telemetry_timeline",
    "token_means",
    "token_rate_frame",
    "token_series",
    "ttft_points",
    "ttft_windows",
    "variant_levels",
    "variant_run_ids",
    "variant_runs",
]

LATENCY_METRICS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "itl_token_ms")
"""The latencies a run's samples give: per request (TTFT, TPOT, E2E), per chunk gap (``itl_ms``) and per output
token (``itl_token_ms``: each chunk's gap divided over the tokens it carried, one sample per token; the same as
``itl_ms`` where every chunk carries one token, as it does unless the server's front end falls behind)."""

# one row per output token of each chunk after a request's first: its share of the chunk's gap
_TOKEN_GAPS = (
    "SELECT r.phase_index AS p, r.sent_ns, r.request_id, c.arrival_ns, c.chunk_index, c.itl_ms / k.n AS v "
    "FROM chunks c JOIN requests r USING (run_id, request_id), "
    "LATERAL (SELECT greatest(coalesce(c.tokens, 1), 1) AS n) k, LATERAL range(k.n) t "
    "WHERE {where} AND r.ok AND c.itl_ms IS NOT NULL"
)
CDF_POINTS = 200


def _df(cat: Catalog, sql: str, **params: Any) -> pd.DataFrame:
    return cat.con.execute(sql, params).df()


def _kept_df(cat: Catalog, name: str, sql: str, **params: Any) -> pd.DataFrame:
    """:func:`_df`, kept on the catalog for the next analysis that asks the same (a copy each time)."""
    key = (name, *sorted(params.items()))
    hit = cat.kept(key)
    if hit is None:
        hit = _df(cat, sql, **params)
        cat.keep(key, hit, int(hit.memory_usage(deep=True).sum()))
    return hit.copy()


def _one(cat: Catalog, sql: str, **params: Any) -> Any:
    rows = cat.con.execute(sql, params).fetchall()  # whole: a half-read result holds the connection
    return rows[0][0] if rows else None


def _check_metric(metric: str) -> None:
    if metric not in LATENCY_METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(LATENCY_METRICS)}")


# -- one value ------------------------------------------------------------------------------------
def first_intended_ns(cat: Catalog, run_id: str) -> int:
    """The run's first intended send, ns (0 when it has no request): the origin of figures' time axes."""
    t0 = _one(cat, "SELECT min(intended_ns) FROM requests WHERE run_id = $run", run=run_id)
    return int(t0) if t0 is not None else 0


def first_sent_ns(cat: Catalog, run_id: str) -> int | None:
    """The run's first actual send, ns (None without requests)."""
    t0 = _one(cat, "SELECT min(sent_ns) FROM requests WHERE run_id = $run", run=run_id)
    return None if t0 is None else int(t0)


def last_sent_ns(cat: Catalog, run_id: str) -> int | None:
    """The run's last actual send, ns (None without requests)."""
    t1 = _one(cat, "SELECT max(sent_ns) FROM requests WHERE run_id = $run", run=run_id)
    return None if t1 is None else int(t1)


def last_end_ns(cat: Catalog, run_id: str) -> int | None:
    """When the run's last request ended, ns (None without requests)."""
    t1 = _one(cat, "SELECT max(end_ns) FROM requests WHERE run_id = $run", run=run_id)
    return None if t1 is None else int(t1)


def first_error(cat: Catalog, run_id: str) -> str | None:
    """The error message of the run's first failed request (by id)."""
    return _one(
        cat, "SELECT error_message FROM requests WHERE run_id = $run AND NOT ok ORDER BY request_id LIMIT 1", run=run_id
    )


def telemetry_span(cat: Catalog, run_id: str) -> float | None:
    """Seconds from the run's first telemetry reading to its last (None without telemetry)."""
    return _one(cat, "SELECT (max(t_ns) - min(t_ns)) / 1e9 FROM telemetry WHERE run_id = $run", run=run_id)


# -- phases ------------------------------------------------------------------------------------------
def phase_order(cat: Catalog, run_id: str, *, include_warmup: bool = True) -> list[str]:
    """The run's phases in the order they ran."""
    sql = (
        "SELECT phase FROM requests WHERE run_id = $run AND ($warm OR NOT warmup) GROUP BY phase "
        "ORDER BY min(phase_index)"
    )
    return [str(p) for p in _kept_df(cat, "phase_order", sql, run=run_id, warm=include_warmup)["phase"]]


def phase_spans(cat: Catalog, run_id: str, t0_ns: int) -> pd.DataFrame:
    """Each phase's first and last intended send (``phase``, ``start_s``, ``end_s``; s since ``t0_ns``), for a
    run whose manifest has no phase windows."""
    return _df(
        cat,
        """SELECT phase, (min(intended_ns) - $t0) / 1e9 AS start_s, (max(intended_ns) - $t0) / 1e9 AS end_s
                       FROM requests WHERE run_id = $run GROUP BY phase ORDER BY 2""",
        run=run_id,
        t0=t0_ns,
    )


def send_spans(cat: Catalog, run_id: str) -> pd.DataFrame:
    """Each phase's stretch of sending, warm-up left out: ``phase``, ``span_s`` (first to last actual send, s),
    and ``start_s``, ``end_s`` (those sends, s since the run's first send)."""
    return _kept_df(
        cat,
        "send_spans",
        """WITH t0 AS (SELECT min(sent_ns) AS t0 FROM requests WHERE run_id = $run)
           SELECT phase, (max(sent_ns) - min(sent_ns)) / 1e9 AS span_s,
                  (min(sent_ns) - any_value(t0.t0)) / 1e9 AS start_s, (max(sent_ns) - any_value(t0.t0)) / 1e9 AS end_s
           FROM requests, t0 WHERE run_id = $run AND NOT warmup AND sent_ns IS NOT NULL
           GROUP BY phase ORDER BY min(phase_index)""",
        run=run_id,
    )


def token_means(cat: Catalog, run_id: str, phase: str | None = None) -> dict[str, float | None]:
    """Mean prompt and output tokens the server reported (``prompt_tokens``, ``output_tokens``) over the run's
    successful non-warm-up requests, or one phase's."""
    df = _df(
        cat,
        """SELECT avg(prompt_tokens) AS prompt_tokens, avg(output_tokens) AS output_tokens FROM requests
           WHERE run_id = $run AND NOT warmup AND ok AND ($phase IS NULL OR phase = $phase)""",
        run=run_id,
        phase=phase,
    )
    out: dict[str, float | None] = {"prompt_tokens": None, "output_tokens": None}
    if len(df):
        for k in out:
            value = df[k].iloc[0]
            out[k] = None if pd.isna(value) else float(value)
    return out


# -- samples for the estimators -------------------------------------------------------------------------
def latency_samples(
    cat: Catalog,
    run_id: str,
    metric: str,
    phase: str | None = None,
    *,
    class_name: str | None = None,
    failed_ms: float | None = None,
) -> dict[str, np.ndarray]:
    """The samples of ``metric`` per phase (or of one phase), in time order, as numpy arrays (ms).

    Latencies are over successful requests, warm-up left out.  Requests are ordered by send time and
    then id, chunks by arrival time, then request and position, so that ties (several chunks under one
    read's stamp) come out in the same order every time.  ``class_name`` keeps one user class's
    requests.  With ``failed_ms``, a failed request (not a cancelled one: the client chose that) counts
    as a sample of that value, for SLO checks where a failure is a miss; per-request metrics only.
    The arrays are read-only: they are kept on the catalog (:meth:`Catalog.keep`) for the next analysis.
    """
    _check_metric(metric)
    key = ("latency_samples", run_id, metric, phase, class_name, failed_ms)
    hit = cat.kept(key)
    if hit is not None:
        return dict(hit)
    where = (
        "r.run_id = $run AND NOT r.warmup AND ($phase IS NULL OR r.phase = $phase) "
        "AND ($cls IS NULL OR r.class_name = $cls)"
    )
    params: dict[str, Any] = {"run": run_id, "phase": phase, "cls": class_name}
    if metric == "itl_ms":
        sql = (
            f"SELECT r.phase_index AS p, c.itl_ms AS v FROM chunks c JOIN requests r USING (run_id, request_id) "
            f"WHERE {where} AND r.ok AND c.itl_ms IS NOT NULL ORDER BY c.arrival_ns, c.request_id, c.chunk_index"
        )
    elif metric == "itl_token_ms":
        sql = f"SELECT p, v FROM ({_TOKEN_GAPS.format(where=where)}) ORDER BY arrival_ns, request_id, chunk_index"
    elif failed_ms is not None:
        sql = (
            f"SELECT r.phase_index AS p, CASE WHEN r.ok THEN r.{metric} ELSE $failed END AS v "
            f"FROM requests r WHERE {where} AND coalesce(r.error_kind, '') <> 'cancelled' "
            f"AND (NOT r.ok OR r.{metric} IS NOT NULL) ORDER BY r.sent_ns NULLS LAST, r.request_id"
        )
        params["failed"] = float(failed_ms)
    else:
        sql = (
            f"SELECT r.phase_index AS p, r.{metric} AS v FROM requests r WHERE {where} AND r.ok "
            f"AND r.{metric} IS NOT NULL ORDER BY r.sent_ns, r.request_id"
        )
    # numpy columns, the phase as its index: no Python object per sample (a run can hold 10^8 chunks)
    cols = cat.con.execute(sql, params).fetchnumpy()
    idx, v = np.asarray(cols["p"]), np.asarray(cols["v"], dtype=float)
    names = dict(
        cat.con.execute(
            "SELECT DISTINCT phase_index, phase FROM requests WHERE run_id = $run", {"run": run_id}
        ).fetchall()
    )
    present = np.flatnonzero(np.bincount(idx)) if len(idx) else np.array([], dtype=np.int64)
    by_name: dict[str, list[int]] = {}
    for i in sorted(present, key=lambda i: int(np.argmax(idx == i))):  # in the order their samples start
        by_name.setdefault(str(names[int(i)]), []).append(int(i))
    out: dict[str, np.ndarray] = {}
    for name, members in by_name.items():
        out[name] = v if len(present) == len(members) else v[np.isin(idx, members)]
        out[name].flags.writeable = False
    cat.keep(key, out, sum(a.nbytes for a in out.values()))
    return dict(out)


def latency_clusters(cat: Catalog, run_id: str, metric: str, phase: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every non-warm-up sample of ``metric`` with the index of the request it belongs to.

    Returns ``(values, request_index)``, both in request send order (chunks of a request together,
    in arrival order); ``request_index`` counts 0, 1, ... over the requests that have samples.
    For per-request metrics each request is its own one-sample cluster.
    """
    _check_metric(metric)
    where = "r.run_id = $run AND r.ok AND NOT r.warmup AND ($phase IS NULL OR r.phase = $phase)"
    if metric == "itl_ms":
        sql = (
            f"SELECT c.itl_ms AS v, dense_rank() OVER (ORDER BY r.sent_ns, r.request_id) - 1 AS k "
            f"FROM chunks c JOIN requests r USING (run_id, request_id) WHERE {where} AND c.itl_ms IS NOT NULL "
            "ORDER BY r.sent_ns, r.request_id, c.chunk_index"
        )
    elif metric == "itl_token_ms":
        sql = (
            "SELECT v, dense_rank() OVER (ORDER BY sent_ns, request_id) - 1 AS k "
            f"FROM ({_TOKEN_GAPS.format(where=where)}) ORDER BY sent_ns, request_id, chunk_index"
        )
    else:
        sql = (
            f"SELECT r.{metric} AS v, row_number() OVER (ORDER BY r.sent_ns, r.request_id) - 1 AS k "
            f"FROM requests r WHERE {where} AND r.{metric} IS NOT NULL ORDER BY r.sent_ns, r.request_id"
        )
    df = _df(cat, sql, run=run_id, phase=phase)
    return df["v"].to_numpy(dtype=float), df["k"].to_numpy(dtype=np.int64)


def request_spans(cat: Catalog, run_id: str) -> pd.DataFrame:
    """Every non-warm-up request's phase, outcome and times (ns), by intended send: what attribution reads."""
    return _df(
        cat,
        """SELECT phase, phase_index, ok, coalesce(error_kind, '') AS error_kind, intended_ns, sent_ns,
                           headers_ns, first_token_ns, last_token_ns, end_ns, schedule_lag_ms
                       FROM requests WHERE run_id = $run AND NOT warmup ORDER BY intended_ns, request_id""",
        run=run_id,
    )


def export_requests(cat: Catalog, run_id: str, phase: str | None = None) -> pd.DataFrame:
    """Every non-warm-up request of a run (or one phase) in send order, with what another tool's result file
    holds: ``request_id``, ``ok``, ``sent_ns``, ``end_ns``, ``ttft_ms``, ``e2e_ms``, ``tpot_ms``,
    ``prompt_tokens`` (the server's count, else the target), ``output_tokens``, ``error_message``."""
    return _df(
        cat,
        """SELECT request_id, ok, sent_ns, end_ns, ttft_ms, e2e_ms, tpot_ms,
                  coalesce(prompt_tokens, prompt_tokens_target) AS prompt_tokens, output_tokens,
                  coalesce(error_message, '') AS error_message
           FROM requests WHERE run_id = $run AND NOT warmup AND ($phase IS NULL OR phase = $phase)
           ORDER BY sent_ns, request_id""",
        run=run_id,
        phase=phase,
    )


def export_gaps(cat: Catalog, run_id: str, phase: str | None = None) -> dict[int, list[float]]:
    """Each successful non-warm-up request's gaps between content chunks (ms), in arrival order."""
    df = _df(
        cat,
        """SELECT c.request_id, list(c.itl_ms ORDER BY c.chunk_index) AS gaps
           FROM chunks c JOIN requests r USING (run_id, request_id)
           WHERE c.run_id = $run AND r.ok AND NOT r.warmup AND c.itl_ms IS NOT NULL
                 AND ($phase IS NULL OR r.phase = $phase)
           GROUP BY c.request_id""",
        run=run_id,
        phase=phase,
    )
    return {int(r): [float(x) for x in g] for r, g in zip(df["request_id"], df["gaps"])}


def chunk_sizes(cat: Catalog, run_id: str) -> pd.DataFrame:
    """Per non-warm-up phase, over successful requests: ``tokens_per_chunk`` (output tokens over content
    chunks), ``itl_p50_ms`` (median mean gap between a request's chunks) and ``tpot_p50_ms`` (median time per
    output token after the first)."""
    return _df(
        cat,
        """SELECT phase, sum(output_tokens) / nullif(sum(n_chunks), 0) AS tokens_per_chunk,
                  median(itl_mean_ms) AS itl_p50_ms, median(tpot_ms) AS tpot_p50_ms
           FROM requests WHERE run_id = $run AND NOT warmup AND ok
           GROUP BY phase ORDER BY min(phase_index)""",
        run=run_id,
    )


def share_lags(cat: Catalog, run_id: str, shares: int) -> pd.DataFrame:
    """Per share of a run split over ``shares`` workers (``request_id % shares``), over non-warm-up requests:
    ``requests``, ``errors``, ``schedule_lag_p50_ms`` and ``schedule_lag_p99_ms``."""
    return _df(
        cat,
        """SELECT request_id % $n AS share, count(*) AS requests, count(*) FILTER (WHERE NOT ok) AS errors,
                  quantile_cont(schedule_lag_ms, 0.5) AS schedule_lag_p50_ms,
                  quantile_cont(schedule_lag_ms, 0.99) AS schedule_lag_p99_ms
           FROM requests WHERE run_id = $run AND NOT warmup GROUP BY 1 ORDER BY 1""",
        run=run_id,
        n=shares,
    )


def server_timings(cat: Catalog, run_id: str) -> pd.DataFrame:
    """The engine's cumulative per-request time histograms, one row per scrape and part: ``t_ns``, ``part``
    (``queue``, ``prefill``, ``decode``, ``ttft``, ``inference``, ``e2e``; see
    :data:`perfkit.query.telemetry.SERVER_TIMINGS`), ``sum_s`` (seconds) and ``count`` (requests), summed over
    labels and endpoints.  Empty when the server exposed none of them."""
    names = sorted(SERVER_TIMINGS)
    return _df(
        cat,
        """SELECT t_ns, part, sum(value) FILTER (WHERE name = base || '_sum') AS sum_s,
                  sum(value) FILTER (WHERE name = base || '_count') AS count
           FROM (SELECT t_ns, value, name, regexp_replace(name, '_(sum|count)$', '') AS base
                 FROM server_metrics WHERE run_id = $run AND le IS NULL AND (name LIKE '%_sum' OR name LIKE '%_count'))
           JOIN (SELECT unnest($names) AS base, unnest($parts) AS part) USING (base)
           GROUP BY t_ns, part ORDER BY t_ns, part""",
        run=run_id,
        names=names,
        parts=[SERVER_TIMINGS[n] for n in names],
    )


def admission_counters(cat: Catalog, run_id: str) -> pd.DataFrame:
    """The server's cumulative count of requests refused at admission at each scrape, by reason: ``t_ns``,
    ``reason`` and ``rejections``, summed over endpoints and other labels.  Empty when the server exposes none
    (vLLM does, as ``vllm:admission_rejections_total``)."""
    return _df(
        cat,
        """SELECT t_ns, coalesce(json_extract_string(labels, '$.reason'), '') AS reason, sum(value) AS rejections
           FROM server_metrics WHERE run_id = $run AND common_name = 'admission_rejections'
           GROUP BY t_ns, reason ORDER BY reason, t_ns""",
        run=run_id,
    )


def prefix_cache_counters(cat: Catalog, run_id: str) -> pd.DataFrame:
    """The server's cumulative prefix-cache counters at each scrape: ``t_ns``, ``queries`` and ``hits`` (prompt
    tokens looked up and found), summed over labels and endpoints.  Empty when the server exposes none."""
    return _df(
        cat,
        """SELECT t_ns, sum(value) FILTER (WHERE common_name = 'prefix_cache_queries') AS queries,
                  sum(value) FILTER (WHERE common_name = 'prefix_cache_hits') AS hits
           FROM server_metrics WHERE run_id = $run AND common_name IN ('prefix_cache_queries', 'prefix_cache_hits')
           GROUP BY t_ns HAVING count(*) > 0 ORDER BY t_ns""",
        run=run_id,
    )


def server_buckets(cat: Catalog, run_id: str) -> pd.DataFrame:
    """The engine's cumulative per-request time histograms bucket by bucket: ``t_ns``, ``part`` (as in
    :func:`server_timings`), ``le`` (the bucket's upper bound, s) and ``count`` (requests at or below it since the
    server started), summed over labels and endpoints."""
    names = sorted(SERVER_TIMINGS)
    return _df(
        cat,
        """SELECT t_ns, part, le, sum(value) AS count
           FROM (SELECT t_ns, value, le, regexp_replace(name, '_bucket$', '') AS base
                 FROM server_metrics WHERE run_id = $run AND le IS NOT NULL AND name LIKE '%_bucket')
           JOIN (SELECT unnest($names) AS base, unnest($parts) AS part) USING (base)
           GROUP BY t_ns, part, le ORDER BY t_ns, part, le""",
        run=run_id,
        names=names,
        parts=[SERVER_TIMINGS[n] for n in names],
    )


def telemetry_long(cat: Catalog, run_id: str, metrics: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """The run's readings of ``metrics`` from the ``telemetry`` view (``t_ns``, ``metric``, ``value``)."""
    return _df(
        cat,
        "SELECT t_ns, metric, value FROM telemetry WHERE run_id = $run AND list_contains($names, metric) "
        "AND value IS NOT NULL ORDER BY t_ns",
        run=run_id,
        names=list(metrics),
    )


def stability_samples(cat: Catalog, run_id: str, metric: str) -> pd.DataFrame:
    """Successful non-warm-up requests' ``metric`` (> 0) with their send time (``phase``, ``t_s``, ``v``)."""
    _check_metric(metric)
    return _df(
        cat,
        f"""SELECT phase, (sent_ns - (SELECT min(sent_ns) FROM requests WHERE run_id = $run)) / 1e9 AS t_s,
                            {metric} AS v FROM requests WHERE run_id = $run AND ok AND NOT warmup AND {metric} > 0
                        ORDER BY phase_index, sent_ns, request_id""",
        run=run_id,
    )


def token_series(cat: Catalog, run_id: str, phase: str, bin_s: float) -> np.ndarray:
    """Output tokens of one phase's successful requests per ``bin_s`` bin from its first send."""
    df = _df(
        cat,
        """
        WITH r AS (SELECT request_id, sent_ns, end_ns FROM requests WHERE run_id = $run AND phase = $phase AND ok),
        span AS (SELECT min(sent_ns) AS t0 FROM r)
        SELECT (c.arrival_ns - span.t0) // $width AS b, sum(coalesce(c.tokens, 1)) AS tokens
        FROM chunks c JOIN r USING (request_id), span WHERE c.run_id = $run GROUP BY b ORDER BY b""",
        run=run_id,
        phase=phase,
        width=int(bin_s * 1e9),
    )
    if df.empty:
        return np.array([])
    full = np.zeros(int(df["b"].max()) + 1)
    full[df["b"].to_numpy(int)] = df["tokens"].to_numpy(float)
    return full


# -- runs --------------------------------------------------------------------------------------------
def variant_runs(cat: Catalog) -> pd.DataFrame:
    """Runs that name a model variant (``run_id``, ``variant``, ``tags``, ``label``), oldest first."""
    return _df(cat, "SELECT run_id, variant, tags, label FROM runs WHERE variant IS NOT NULL ORDER BY run_id")


def variant_run_ids(cat: Catalog) -> set[str]:
    """The ids of the runs that name a model variant."""
    return set(variant_runs(cat)["run_id"])


# -- frames for figures ------------------------------------------------------------------------------
def ttft_points(cat: Catalog, run_id: str, t0_ns: int, max_points: int = 4000) -> pd.DataFrame:
    """At most ``max_points`` successful requests' TTFT (``t_s``, ``ttft_ms``, ``phase``), a seeded reservoir."""
    return (
        _df(
            cat,
            f"""SELECT (sent_ns - $t0) / 1e9 AS t_s, ttft_ms, phase FROM requests
                        WHERE run_id = $run AND ok USING SAMPLE {int(max_points)} ROWS (reservoir, 42)""",
            run=run_id,
            t0=t0_ns,
        )
        .sort_values(["t_s", "ttft_ms"], kind="stable")
        .reset_index(drop=True)
    )


def ttft_windows(cat: Catalog, run_id: str, t0_ns: int, window_s: float) -> pd.DataFrame:
    """TTFT per window of ``window_s`` s: ``t_s`` (the window's middle), ``p50`` with ``p50_lo``/``p50_hi`` (its
    approximate 95% interval from order statistics, requests within a window taken as independent; null below
    10 requests), ``p99`` (null below 100 requests, where it would be the largest sample or near it) and ``n``."""
    return _df(
        cat,
        """WITH w AS (
             SELECT floor((sent_ns - $t0) / 1e9 / $w) * $w + $w / 2 AS t_s, ttft_ms FROM requests
             WHERE run_id = $run AND ok AND ttft_ms IS NOT NULL),
           g AS (SELECT t_s, list_sort(list(ttft_ms)) AS xs, count(*) AS n, quantile_cont(ttft_ms, 0.5) AS p50,
                        quantile_cont(ttft_ms, 0.99) AS p99 FROM w GROUP BY 1)
           SELECT t_s, p50,
                  CASE WHEN n >= 10 THEN xs[greatest(1, CAST(floor(n / 2 - 0.98 * sqrt(n)) AS BIGINT))] END AS p50_lo,
                  CASE WHEN n >= 10 THEN xs[least(n, CAST(ceil(n / 2 + 0.98 * sqrt(n)) + 1 AS BIGINT))] END AS p50_hi,
                  CASE WHEN n >= 100 THEN p99 END AS p99, n
           FROM g ORDER BY 1""",
        run=run_id,
        t0=t0_ns,
        w=float(window_s),
    )


def cdf_frame(cat: Catalog, run_id: str, points: int = CDF_POINTS) -> pd.DataFrame:
    """Quantiles of TTFT, ITL (per chunk) and E2E on a grid of levels (``metric``, ``value_ms``, ``p``), warm-up
    left out."""
    grid = [(i + 0.5) / points for i in range(points)]
    return _df(
        cat,
        """
        WITH v AS (
          SELECT 'TTFT' AS metric, quantile_cont(ttft_ms, $ps) AS xs FROM requests
             WHERE run_id = $run AND ok AND NOT warmup
          UNION ALL SELECT 'E2E', quantile_cont(e2e_ms, $ps) FROM requests WHERE run_id = $run AND ok AND NOT warmup
          UNION ALL SELECT 'ITL', quantile_cont(c.itl_ms, $ps) FROM chunks c
             JOIN requests r USING (run_id, request_id)
             WHERE c.run_id = $run AND r.ok AND NOT r.warmup AND c.itl_ms IS NOT NULL)
        SELECT metric, unnest(xs) AS value_ms, unnest($ps) AS p FROM v WHERE xs IS NOT NULL
        ORDER BY metric, p""",
        run=run_id,
        ps=grid,
    )


def token_rate_frame(cat: Catalog, run_id: str, t0_ns: int, bin_s: float) -> pd.DataFrame:
    """Output tokens per second per bin (``t_s``, ``value``) from chunk arrivals."""
    return _df(
        cat,
        """SELECT floor((arrival_ns - $t0) / 1e9 / $b) * $b AS t_s, sum(coalesce(tokens, 1)) / $b AS value
                       FROM chunks WHERE run_id = $run GROUP BY 1 ORDER BY 1""",
        run=run_id,
        t0=t0_ns,
        b=float(bin_s),
    )


def request_rate_frame(cat: Catalog, run_id: str, t0_ns: int, bin_s: float) -> pd.DataFrame:
    """Completed and failed requests per second per bin (``t_s``, ``completed``, ``failed``), by end time."""
    return _df(
        cat,
        """SELECT floor((end_ns - $t0) / 1e9 / $b) * $b AS t_s, count(*) FILTER (WHERE ok) / $b AS completed,
                           count(*) FILTER (WHERE NOT ok) / $b AS failed
                       FROM requests WHERE run_id = $run GROUP BY 1 ORDER BY 1""",
        run=run_id,
        t0=t0_ns,
        b=float(bin_s),
    )


def telemetry_timeline(
    cat: Catalog, run_id: str, t0_ns: int, bin_s: float, metrics: tuple[str, ...] | list[str]
) -> tuple[pd.DataFrame, bool]:
    """Mean of each of ``metrics`` per bin (``t_s``, ``metric``, ``value``), and whether the GPU's counters
    were SIMULATED."""
    df = _df(
        cat,
        """SELECT floor((t_ns - $t0) / 1e9 / $b) * $b AS t_s, metric, avg(value) AS value
                     FROM telemetry WHERE run_id = $run AND list_contains($names, metric)
                     GROUP BY ALL ORDER BY metric, t_s""",
        run=run_id,
        t0=t0_ns,
        b=float(bin_s),
        names=list(metrics),
    )
    sources = _df(cat, "SELECT DISTINCT source FROM gpu_samples WHERE run_id = $run", run=run_id)["source"].tolist()
    return df, "sim" in sources


def variant_levels(cat: Catalog, run_ids: list[str]) -> pd.DataFrame:
    """Per run and non-warm-up phase of ``run_ids``: rate, users, requests, errors, span (ns), output tokens,
    TTFT p50/p90 and E2E p90 (ms, successful requests), and the GPU energy (J) and mean power (W) over it."""
    return _df(
        cat,
        """
WITH r AS (SELECT * FROM requests WHERE list_contains($runs, run_id) AND NOT warmup),
p AS (
  SELECT run_id, phase, min(phase_index) AS phase_index, any_value(target_rate_rps) AS rate_rps,
      count(DISTINCT user_id) AS users, count(*) AS requests, count(*) FILTER (WHERE NOT ok) AS errors,
      min(sent_ns) AS t0_ns, max(end_ns) AS t1_ns,
      sum(output_tokens) FILTER (WHERE ok) AS output_tokens, count(*) FILTER (WHERE ok) AS ok_requests,
      quantile_cont(ttft_ms, 0.5) FILTER (WHERE ok) AS ttft_p50_ms,
      quantile_cont(ttft_ms, 0.9) FILTER (WHERE ok) AS ttft_p90_ms,
      quantile_cont(e2e_ms, 0.9) FILTER (WHERE ok) AS e2e_p90_ms
  FROM r GROUP BY run_id, phase
),
e AS (
  SELECT p.run_id, p.phase, max(t.value) FILTER (WHERE t.metric = 'energy_j')
      - min(t.value) FILTER (WHERE t.metric = 'energy_j') AS energy_j,
      avg(t.value) FILTER (WHERE t.metric = 'power_w') AS power_w
  FROM p LEFT JOIN telemetry t ON t.run_id = p.run_id AND t.metric IN ('energy_j', 'power_w')
      AND t.t_ns BETWEEN p.t0_ns AND p.t1_ns
  GROUP BY p.run_id, p.phase
)
SELECT p.*, e.energy_j, e.power_w FROM p LEFT JOIN e USING (run_id, phase) ORDER BY run_id, phase_index""",
        runs=list(run_ids),
    )
