"""SQL for derived metrics over the ``requests`` and ``chunks`` views.

Percentiles are ``quantile_cont`` (linear interpolation between order
statistics, numpy's default "linear" / Hyndman–Fan type 7).  Latency
statistics use successful requests only (a failed request's partial timings
are not a latency); the error rate uses every request.  Throughput divides
successful requests (and their output tokens) by the span from the first
send to the last end of the group's requests.  Warm-up requests are left out
unless asked for.
"""

from __future__ import annotations

__all__ = [
    "FIDELITY_COLUMNS",
    "SLO_COLUMNS",
    "SUMMARY_COLUMNS",
    "chunk_warning",
    "client_evidence",
    "client_findings",
    "client_note",
    "endpoint_sql",
    "fidelity_sql",
    "node_behind",
    "slo_sql",
    "summary_sql",
]

# the client fell behind its schedule when its p99 lag or its rate shortfall passes these
LAG_P99_LIMIT_MS = 10.0
RATE_SHORTFALL = 0.05
# in closed loop, the next request of a user left this much later than usual after the previous ended (p99)
TURNAROUND_LIMIT_MS = 10.0
# the event loop was late or busy for most of the phase: evidence only where the loop times the reads
LOOP_LAG_LIMIT_MS = 10.0
LOOP_CPU_LIMIT_PCT = 90.0
READ_DELAY_LIMIT_MS = 10.0
# ... and past this share of the median time between chunks: a read that waits longer than that gap takes
# two chunks of a stream at once, and its one stamp makes the first chunk late by up to the gap
READ_DELAY_GAP_SHARE = 0.5

_Q = (0.5, 0.9, 0.99)


def _lat(col: str, src: str = "") -> str:
    name = col.removesuffix("_ms")
    expr = f"{src}{col}"
    parts = [f"avg({expr}) AS {name}_mean_ms"]
    qs = f"quantile_cont({expr}, [{', '.join(map(str, _Q))}])"
    for i, q in enumerate(_Q, start=1):
        parts.append(f"{qs}[{i}] AS {name}_p{int(q * 100)}_ms")
    return ",\n      ".join(parts)


def _pcts(col: str, qs: tuple[float, ...], name: str | None = None, where: str = "ok") -> str:
    """``quantile_cont`` columns ``NAME_pXX_ms`` of ``col`` over the rows matching ``where``."""
    name = name or col.removesuffix("_ms")
    return ",\n    ".join(f"quantile_cont({col}, {q}) FILTER (WHERE {where}) AS {name}_p{int(q * 100)}_ms" for q in qs)


SUMMARY_COLUMNS = (
    "run_id",
    "phase",
    "requests",
    "errors",
    "error_rate",
    "duration_s",
    "request_throughput_rps",
    "output_token_throughput_tps",
    "ttft_mean_ms",
    "ttft_p50_ms",
    "ttft_p90_ms",
    "ttft_p99_ms",
    "itl_mean_ms",
    "itl_p50_ms",
    "itl_p90_ms",
    "itl_p99_ms",
    "tpot_mean_ms",
    "e2e_mean_ms",
    "e2e_p50_ms",
    "e2e_p90_ms",
    "e2e_p99_ms",
)


def summary_sql(where: str = "TRUE", by_phase: bool = True, latency_from: str | None = None) -> str:
    """The summary query: one row per run (and phase), columns :data:`SUMMARY_COLUMNS`.

    Parameters
    ----------
    where : str
        A SQL predicate on the ``requests`` view selecting the rows to summarise.
    by_phase : bool
        One row per run and phase (True) or per run (False, phase shown as ``'all'``).
    latency_from : str, optional
        A view or registered relation with one row per ``(run_id, phase)`` holding the latency
        columns (``ttft_*``, ``itl_*``, ``e2e_*`` means and percentiles) to use instead of
        computing them from every sample: a run's rollup (:mod:`perfkit.store.rollup`).
    """
    keys = "run_id, phase" if by_phase else "run_id"
    phase_sel = "phase" if by_phase else "'all' AS phase"
    order = "min(phase_index)" if by_phase else "0"
    if latency_from is None:
        lat_ttft, lat_e2e = _lat("ttft_ms") + ",\n      ", ",\n      " + _lat("e2e_ms")
        itl = (
            f"SELECT r.run_id{', r.phase' if by_phase else ''}, {_lat('itl_ms', 'c.')} "
            "FROM chunks c JOIN r ON c.run_id = r.run_id AND c.request_id = r.request_id "
            f"WHERE r.ok AND c.itl_ms IS NOT NULL GROUP BY r.run_id{', r.phase' if by_phase else ''}"
        )
    else:
        lat_ttft, lat_e2e, itl = "", "", f"SELECT * FROM {latency_from}"
    return f"""
WITH r AS (SELECT * FROM requests WHERE {where}),
agg AS (
  SELECT run_id, {phase_sel}, {order} AS _order,
      count(*) AS requests,
      count(*) FILTER (WHERE NOT ok) AS errors,
      count(*) FILTER (WHERE NOT ok) / count(*) AS error_rate,
      (max(end_ns) - min(sent_ns)) / 1e9 AS duration_s,
      count(*) FILTER (WHERE ok) / ((max(end_ns) - min(sent_ns)) / 1e9) AS request_throughput_rps,
      coalesce(sum(output_tokens) FILTER (WHERE ok), 0) / ((max(end_ns) - min(sent_ns)) / 1e9)
          AS output_token_throughput_tps,
      {lat_ttft}avg(tpot_ms) FILTER (WHERE ok) AS tpot_mean_ms{lat_e2e}
  FROM (SELECT * REPLACE (CASE WHEN ok THEN ttft_ms END AS ttft_ms, CASE WHEN ok THEN e2e_ms END AS e2e_ms)
        FROM r)
  GROUP BY {keys}
),
itl AS ({itl})
SELECT {", ".join(f"agg.{c}" if c in ("run_id", "phase") else c for c in SUMMARY_COLUMNS)}
FROM agg LEFT JOIN itl ON agg.run_id = itl.run_id{" AND agg.phase = itl.phase" if by_phase else ""}
ORDER BY agg.run_id, _order
"""


FIDELITY_COLUMNS = (
    "run_id",
    "phase",
    "requests",
    "target_rate_rps",
    "scheduled_rate_rps",
    "achieved_rate_rps",
    "schedule_lag_p50_ms",
    "schedule_lag_p99_ms",
    "ttft_p99_ms",
    "ttft_from_intended_p99_ms",
    "e2e_p99_ms",
    "e2e_from_intended_p99_ms",
    "loop_lag_ms",
    "loop_cpu_pct",
    "client_cpu_pct",
    "read_delay_ms",
    "read_delay_max_ms",
    "read_delay_limit_ms",
    "turnaround_p99_ms",
    "rx_stamps",
    "client_behind",
    "client_bound",
)


def fidelity_sql(where: str = "TRUE") -> str:
    """Schedule fidelity per run and phase: requested vs achieved rate, lag, latency from the intended send,
    and whether the client moved the measurements (``client_bound``).

    ``target_rate_rps`` is the nominal mean rate the phase asked for;
    ``scheduled_rate_rps`` is (sessions − 1) / (last − first *intended* send):
    the rate this realisation of the arrival process asked for, which differs
    from the nominal one by sampling noise (a lot, for bursty processes);
    ``achieved_rate_rps`` is the same over the *actual* sends.  All three are
    null in closed loop.  ``client_behind`` is true when the p99 schedule lag
    exceeds 10 ms or the achieved rate falls more than 5 % short of the
    scheduled one: the latencies then measure the client as well as the server.
    In closed loop, ``turnaround_p99_ms`` is the send path's delay: the p99 over
    a user's requests of the time from the previous request's end to the next
    send, less the smallest such time of the phase and user class (which holds
    the think time); a late turnaround offers the server less load than asked.

    From the client's own telemetry over the phase's span (null without it):
    ``loop_lag_ms`` is the median, over the sampling intervals, of the latest
    wake-up of the event-loop probe (half the intervals had a later one);
    ``loop_cpu_pct`` the mean CPU of the event loop's thread and
    ``client_cpu_pct`` of the whole client process (percent of one core);
    where reads carry kernel receive stamps (``rx_stamps`` is ``kernel``),
    ``read_delay_ms`` is the 75th percentile over the intervals of the p99 wait
    of received bytes in their sockets before they were read, by the reading
    thread or the loop (a quarter of the intervals had a longer one),
    ``read_delay_max_ms`` the longest wait, and ``read_delay_limit_ms`` half
    the median time between a request's chunks (TPOT), at most 10 ms: a read
    that waits longer than that gap takes two chunks of a stream at once under
    one stamp, and reads waiting half of it at p99 leave the slowest hundredth
    near it.

    ``client_bound`` holds only on evidence that moved the measurements: the
    client fell behind its schedule, its closed-loop turnaround was late by more
    than 10 ms at p99, or its reads waited past ``read_delay_limit_ms``.  A late
    or busy event loop (lag over 10 ms in most intervals, its thread busy over
    90 %) is such evidence only where the loop itself timed the reads (no kernel
    stamps); where the kernel stamped them, the loop's lag reached the
    measurements only through the sends and the reads, which are measured, and
    it is a note (:func:`client_note`).  Needs the ``telemetry`` and ``runs``
    views (a :class:`Catalog`).
    """
    return f"""
WITH r AS (SELECT * FROM requests WHERE {where}),
f AS (
  SELECT run_id, phase, min(phase_index) AS _order, count(*) AS requests,
      any_value(target_rate_rps) AS target_rate_rps,
      CASE WHEN any_value(target_rate_rps) IS NOT NULL AND count(*) FILTER (WHERE turn = 0) > 1 THEN
          (count(*) FILTER (WHERE turn = 0) - 1)
          / ((max(intended_ns) FILTER (WHERE turn = 0) - min(intended_ns) FILTER (WHERE turn = 0)) / 1e9) END
          AS scheduled_rate_rps,
      CASE WHEN any_value(target_rate_rps) IS NOT NULL AND count(*) FILTER (WHERE turn = 0) > 1 THEN
          (count(*) FILTER (WHERE turn = 0) - 1)
          / ((max(sent_ns) FILTER (WHERE turn = 0) - min(sent_ns) FILTER (WHERE turn = 0)) / 1e9) END
          AS achieved_rate_rps,
      {_pcts("schedule_lag_ms", (0.5, 0.99), where="TRUE")},
      {_pcts("ttft_ms", (0.99,))}, {_pcts("ttft_from_intended_ms", (0.99,))},
      {_pcts("e2e_ms", (0.99,))}, {_pcts("e2e_from_intended_ms", (0.99,))},
      least({READ_DELAY_LIMIT_MS}, {READ_DELAY_GAP_SHARE} * coalesce(quantile_cont(tpot_ms, 0.5) FILTER (WHERE ok),
                                                                      {READ_DELAY_LIMIT_MS / READ_DELAY_GAP_SHARE}))
          AS read_delay_limit_ms
      , min(sent_ns) AS _t0, max(coalesce(end_ns, sent_ns)) AS _t1
  FROM r GROUP BY run_id, phase
),
gaps AS (
  SELECT run_id, phase, class_name,
      (sent_ns - lag(end_ns) OVER (PARTITION BY run_id, phase, user_id ORDER BY intended_ns, request_id)) / 1e6
          AS gap_ms
  FROM r WHERE user_id IS NOT NULL AND target_rate_rps IS NULL
),
turn AS (
  SELECT run_id, phase, max(excess_ms) AS turnaround_p99_ms FROM (
      SELECT run_id, phase, class_name, quantile_cont(gap_ms, 0.99) - min(gap_ms) AS excess_ms
      FROM gaps WHERE gap_ms IS NOT NULL GROUP BY run_id, phase, class_name HAVING count(*) >= 20)
  GROUP BY run_id, phase
),
tel AS (
  SELECT f.run_id, f.phase,
      quantile_cont(t.value, 0.5) FILTER (WHERE t.metric = 'client_loop_lag_max_ms') AS loop_lag_ms,
      avg(t.value ORDER BY t.t_ns) FILTER (WHERE t.metric = 'client_loop_cpu_pct') AS loop_cpu_pct,
      avg(t.value ORDER BY t.t_ns) FILTER (WHERE t.metric = 'client_cpu_pct') AS client_cpu_pct,
      quantile_cont(t.value, 0.75) FILTER (WHERE t.metric = 'client_read_delay_p99_ms') AS read_delay_ms,
      max(t.value) FILTER (WHERE t.metric = 'client_read_delay_max_ms') AS read_delay_max_ms
  FROM f JOIN telemetry t ON t.run_id = f.run_id AND t.channel = 'host' AND t.t_ns BETWEEN f._t0 AND f._t1
  GROUP BY f.run_id, f.phase
),
g AS (
  SELECT f.* EXCLUDE (_t0, _t1, read_delay_limit_ms), tel.loop_lag_ms, tel.loop_cpu_pct, tel.client_cpu_pct,
      tel.read_delay_ms, tel.read_delay_max_ms, f.read_delay_limit_ms, turn.turnaround_p99_ms,
      (SELECT any_value(runs.rx_stamps) FROM runs WHERE runs.run_id = f.run_id) AS rx_stamps,
      coalesce(schedule_lag_p99_ms > {LAG_P99_LIMIT_MS}, FALSE)
      OR coalesce(achieved_rate_rps < (1 - {RATE_SHORTFALL}) * scheduled_rate_rps, FALSE) AS client_behind
  FROM f LEFT JOIN tel USING (run_id, phase) LEFT JOIN turn USING (run_id, phase)
)
SELECT * EXCLUDE (_order),
    client_behind
    OR coalesce(turnaround_p99_ms > {TURNAROUND_LIMIT_MS}, FALSE)
    OR coalesce(read_delay_ms > read_delay_limit_ms, FALSE)
    OR (coalesce(rx_stamps, 'read') <> 'kernel'
        AND (coalesce(loop_lag_ms > {LOOP_LAG_LIMIT_MS}, FALSE)
             OR coalesce(loop_cpu_pct > {LOOP_CPU_LIMIT_PCT}, FALSE)))
        AS client_bound
FROM g ORDER BY run_id, _order
"""


# a phase whose chunks carry more tokens than this on average has chunk gaps that are not token gaps
TOKENS_PER_CHUNK_LIMIT = 1.2


def chunk_warning(rec: dict) -> str:
    """Words for a phase of :func:`perfkit.query.frames.chunk_sizes` whose chunks carry several tokens (empty
    when they carry about one): its ITL is per chunk, and the per-token figure is the TPOT."""
    tpc = _num(rec, "tokens_per_chunk")
    if tpc is None or tpc <= TOKENS_PER_CHUNK_LIMIT:
        return ""
    itl, tpot = _num(rec, "itl_p50_ms"), _num(rec, "tpot_p50_ms")
    per = f" (median gap between chunks {itl:.1f} ms, per token {tpot:.1f} ms)" if itl and tpot else ""
    return (
        f"phase {rec['phase']}: chunks carried {tpc:.1f} tokens on average{per}; the ITL columns are gaps between "
        "chunks: the time per token is the per-token ITL (itl_token_ms, on which ITL objectives are judged) or TPOT"
    )


def _num(rec: dict, k: str) -> float | None:
    v = rec.get(k)
    return None if v is None or v != v else float(v)


def _loop_findings(rec: dict) -> list[str]:
    out = []
    loop, cpu = _num(rec, "loop_lag_ms"), _num(rec, "loop_cpu_pct")
    if loop is not None and loop > LOOP_LAG_LIMIT_MS:
        out.append(f"event loop late by {loop:.1f} ms in half its intervals (limit {LOOP_LAG_LIMIT_MS:g})")
    if cpu is not None and cpu > LOOP_CPU_LIMIT_PCT:
        out.append(f"event-loop thread busy {cpu:.0f} % of the time (limit {LOOP_CPU_LIMIT_PCT:g})")
    return out


def _kernel_stamped(rec: dict) -> bool:
    return rec.get("rx_stamps") == "kernel"


def client_findings(rec: dict) -> list[tuple[str, str]]:
    """The evidence that a phase of :func:`fidelity_sql` is client-bound, as ``(kind, words)`` pairs.

    ``kind`` is ``schedule`` (late sends), ``rate`` (fewer sends than scheduled), ``turnaround`` (closed
    loop's late next request), ``reads`` (bytes waiting in their sockets) or ``loop`` (a late or busy loop
    that timed the reads).  Empty when the phase is not client-bound.
    """
    if not rec.get("client_bound"):
        return []
    out = []
    lag, ach, sch = _num(rec, "schedule_lag_p99_ms"), _num(rec, "achieved_rate_rps"), _num(rec, "scheduled_rate_rps")
    if lag is not None and lag > LAG_P99_LIMIT_MS:
        out.append(("schedule", f"schedule lag p99 {lag:.1f} ms (limit {LAG_P99_LIMIT_MS:g})"))
    if ach is not None and sch and ach < (1 - RATE_SHORTFALL) * sch:
        out.append(("rate", f"sent {ach:.1f} of {sch:.1f} scheduled req/s"))
    turn = _num(rec, "turnaround_p99_ms")
    if turn is not None and turn > TURNAROUND_LIMIT_MS:
        out.append(
            (
                "turnaround",
                f"the next request of a user left {turn:.1f} ms later than usual after the previous ended, at "
                f"p99 (limit {TURNAROUND_LIMIT_MS:g}), so the server saw less load than asked",
            )
        )
    wait, limit = _num(rec, "read_delay_ms"), _num(rec, "read_delay_limit_ms")
    limit = READ_DELAY_LIMIT_MS if limit is None else limit
    if wait is not None and wait > limit:
        out.append(
            (
                "reads",
                f"received bytes waited {wait:.1f} ms in their sockets at p99 in a quarter of its intervals "
                f"(limit {limit:.1f}: half the median time between chunks, at most {READ_DELAY_LIMIT_MS:g}), "
                f"so chunks of a stream shared reads and stamps",
            )
        )
    if not _kernel_stamped(rec):
        out += [("loop", f"{f}, and the loop timed the reads") for f in _loop_findings(rec)]
    return out


def node_behind(rec: dict) -> str:
    """Why a node of a split run fell behind (its share's schedule lag or its event loop), or ``""``.

    ``rec`` is a row of :meth:`perfkit.query.catalog.Catalog.nodes`.
    """
    out = []
    lag, loop = _num(rec, "schedule_lag_p99_ms"), _num(rec, "loop_lag_max_ms")
    if lag is not None and lag > LAG_P99_LIMIT_MS:
        out.append(f"schedule lag p99 {lag:.1f} ms (limit {LAG_P99_LIMIT_MS:g})")
    if loop is not None and loop > 10 * LOOP_LAG_LIMIT_MS:
        out.append(f"event loop late by up to {loop:.0f} ms")
    return "; ".join(out)


def client_evidence(rec: dict) -> str:
    """Why a phase of :func:`fidelity_sql` is client-bound, in words (empty when it is not)."""
    return "; ".join(words for _, words in client_findings(rec))


def client_note(rec: dict) -> str:
    """A late or busy event loop that did not move the measurements of a phase of :func:`fidelity_sql`, in
    words (empty when there is none): the kernel stamped the reads and the sends and reads stayed timely."""
    if rec.get("client_bound") or not _kernel_stamped(rec):
        return ""
    found = _loop_findings(rec)
    if not found:
        return ""
    wait = _num(rec, "read_delay_ms")
    timely = f"reads waited {wait:.1f} ms at p99" if wait is not None else "reads were stamped by the kernel"
    return (
        "; ".join(found)
        + f", but {timely} and the sends kept their schedule, so the latencies are the server's (a note, not a "
        "verdict)"
    )


SLO_COLUMNS = (
    "run_id",
    "phase",
    "class_name",
    "requests",
    "errors",
    "wrong_answers",
    "semantic_error_rate",
    "slo_attainment",
    "goodput_rps",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "tpot_p50_ms",
    "tpot_p99_ms",
    "e2e_p99_ms",
)


def slo_sql(where: str = "TRUE") -> str:
    """Per run, phase and user class: SLO attainment (share of requests meeting the class's SLO, failures
    counting as misses), goodput (SLO-meeting requests per second over the group's span; null for a class without
    an SLO) and latencies."""
    return f"""
WITH r AS (SELECT * FROM requests WHERE {where})
SELECT run_id, phase, class_name, count(*) AS requests, count(*) FILTER (WHERE NOT ok) AS errors,
    count(*) FILTER (WHERE check_ok = FALSE) AS wrong_answers,
    count(*) FILTER (WHERE check_ok = FALSE) / nullif(count(check_ok), 0) AS semantic_error_rate,
    avg(CASE WHEN slo_ok THEN 1.0 WHEN slo_ok IS NOT NULL THEN 0.0 END) AS slo_attainment,
    CASE WHEN count(slo_ok) > 0  -- a class without an SLO has no goodput (null), not a goodput of 0
         THEN count(*) FILTER (WHERE slo_ok) / ((max(end_ns) - min(sent_ns)) / 1e9) END AS goodput_rps,
    {_pcts("ttft_ms", (0.5, 0.99))}, {_pcts("tpot_ms", (0.5, 0.99))}, {_pcts("e2e_ms", (0.99,))}
FROM r GROUP BY run_id, phase, class_name
ORDER BY run_id, min(phase_index), class_name
"""


def endpoint_sql(where: str = "TRUE") -> str:
    """Per run, phase and endpoint (replica): its share of the requests, errors and latencies."""
    return f"""
WITH r AS (SELECT * FROM requests WHERE {where})
SELECT run_id, phase, endpoint, count(*) AS requests,
    count(*) / sum(count(*)) OVER (PARTITION BY run_id, phase) AS share,
    count(*) FILTER (WHERE NOT ok) AS errors,
    {_pcts("ttft_ms", (0.5, 0.99))}, {_pcts("tpot_ms", (0.5,))}, {_pcts("e2e_ms", (0.99,))}
FROM r GROUP BY run_id, phase, endpoint
ORDER BY run_id, min(phase_index), endpoint
"""
