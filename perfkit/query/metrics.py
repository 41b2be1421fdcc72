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

__all__ = ["SUMMARY_COLUMNS", "summary_sql"]

_Q = (0.5, 0.9, 0.99)


def _lat(col: str, src: str = "") -> str:
    name = col.removesuffix("_ms")
    expr = f"{src}{col}"
    parts = [f"avg({expr}) AS {name}_mean_ms"]
    qs = f"quantile_cont({expr}, [{', '.join(map(str, _Q))}])"
    for i, q in enumerate(_Q, start=1):
        parts.append(f"{qs}[{i}] AS {name}_p{int(q * 100)}_ms")
    return ",\n      ".join(parts)


SUMMARY_COLUMNS = (
    "run_id", "phase", "requests", "errors", "error_rate", "duration_s", "request_throughput_rps",
    "output_token_throughput_tps", "ttft_mean_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms",
    "itl_mean_ms", "itl_p50_ms", "itl_p90_ms", "itl_p99_ms", "tpot_mean_ms", "e2e_mean_ms", "e2e_p50_ms",
    "e2e_p90_ms", "e2e_p99_ms",
)


def summary_sql(where: str = "TRUE", by_phase: bool = True) -> str:
    """The summary query: one row per run (and phase), columns :data:`SUMMARY_COLUMNS`.

    Parameters
    ----------
    where : str
        A SQL predicate on the ``requests`` view selecting the rows to summarise.
    by_phase : bool
        One row per run and phase (True) or per run (False, phase shown as ``'all'``).
    """
    keys = "run_id, phase" if by_phase else "run_id"
    phase_sel = "phase" if by_phase else "'all' AS phase"
    order = "min(phase_index)" if by_phase else "0"
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
      {_lat("ttft_ms")} ,
      avg(tpot_ms) FILTER (WHERE ok) AS tpot_mean_ms,
      {_lat("e2e_ms")}
  FROM (SELECT * REPLACE (CASE WHEN ok THEN ttft_ms END AS ttft_ms, CASE WHEN ok THEN e2e_ms END AS e2e_ms)
        FROM r)
  GROUP BY {keys}
),
itl AS (
  SELECT r.run_id{', r.phase' if by_phase else ''},
      {_lat("itl_ms", "c.")}
  FROM chunks c JOIN r ON c.run_id = r.run_id AND c.request_id = r.request_id
  WHERE r.ok AND c.itl_ms IS NOT NULL
  GROUP BY r.run_id{', r.phase' if by_phase else ''}
)
SELECT {", ".join(f"agg.{c}" if c in ("run_id", "phase") else c for c in SUMMARY_COLUMNS)}
FROM agg LEFT JOIN itl ON agg.run_id = itl.run_id{' AND agg.phase = itl.phase' if by_phase else ''}
ORDER BY agg.run_id, _order
"""
