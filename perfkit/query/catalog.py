"""``perfkit.open(data_dir)``: DuckDB views over every run in a data directory."""

from __future__ import annotations

import collections
import itertools
import json
import re
import warnings
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from perfkit.errors import ConfigError, DataError, DataWarning, RunNotFoundError
from perfkit.query.metrics import endpoint_sql, fidelity_sql, slo_sql, summary_sql
from perfkit.query.rollup import check_histograms, latency_frame, rollup_for
from perfkit.query.telemetry import (
    DEFAULT_REQUEST_METRICS,
    DEFAULT_TIMELINE_METRICS,
    TELEMETRY_VIEW_SQL,
    request_telemetry_sql,
    timeline_sql,
    wide_sql,
)
from perfkit.store.check import parquet_footer_ok
from perfkit.store.manifest import effective_status
from perfkit.store.schema import TABLES

__all__ = ["VIEWS", "Catalog", "check_run_id", "open_catalog"]

VIEWS = ("requests", "chunks", "runs", "telemetry", "gpu_samples", "server_metrics", "host_samples")
"""The views a catalog makes over a data directory."""

_RUN_ID = re.compile(r"^[A-Za-z0-9._:-]+$")


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise ConfigError(f"run id {run_id!r} has characters other than letters, digits, '.', '_', ':' and '-'")
    return run_id


class Catalog:
    """Owns a DuckDB connection with views over a data directory.

    Views: ``requests`` and ``chunks`` (every run's Parquet, with ``run_id``
    from the Hive partition), the telemetry tables ``gpu_samples``,
    ``server_metrics`` and ``host_samples`` (long format), ``telemetry`` (the
    three in one long shape with engine-neutral names, see
    :mod:`perfkit.query.telemetry`) and ``runs`` (one row per manifest).

    Parameters
    ----------
    data_dir : str or Path

    Attributes
    ----------
    skipped : list of Path
        Parquet parts left out of the views because they cannot be read (a
        :class:`perfkit.errors.DataWarning` names them; ``perfkit check --repair`` moves them aside).

    Examples
    --------
    >>> import perfkit
    >>> with perfkit.open("data") as cat:  # doctest: +SKIP
    ...     cat.summary().pl()
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ConfigError(
                f"{str(self.data_dir)!r} is a file, not a data directory; give the directory that "
                "holds requests/, chunks/ and runs/"
            )
        if not self.data_dir.is_dir():
            raise RunNotFoundError(
                f"data directory {str(self.data_dir)!r} does not exist; make one with "
                f"`perfkit demo --data-dir {self.data_dir}` or `perfkit run ... --data-dir {self.data_dir}`"
            )
        self.con = duckdb.connect(":memory:")
        self._frames = itertools.count()
        self._request_runs: set[str] = set()
        self._kept: collections.OrderedDict[tuple[Any, ...], tuple[Any, int]] = collections.OrderedDict()
        self.refresh()

    # -- views -----------------------------------------------------------
    def refresh(self) -> Catalog:
        """(Re)create the views, picking up runs written since they were made (and forgetting kept results)."""
        self.skipped: list[Path] = []
        self._kept.clear()
        for name, schema in TABLES.items():
            folder = self.data_dir / name
            parts = list(folder.glob("run_id=*/*.parquet"))
            bad = [p for p in parts if not parquet_footer_ok(p)]
            if bad:  # leave out what cannot be read, loudly, rather than fail every query
                self.skipped += bad
                warnings.warn(
                    f"{len(bad)} unreadable Parquet part(s) of {name} left out (truncated or "
                    f"overwritten), e.g. {bad[0]}; `perfkit check {self.data_dir} --repair` moves them "
                    "aside",
                    DataWarning,
                    stacklevel=2,
                )
                parts = [p for p in parts if p not in set(bad)]
            if name == "requests":  # the runs with requests, from the folders' names (no Parquet opened)
                self._request_runs = {p.parent.name.partition("=")[2] for p in parts}
            if parts:
                glob = (
                    _lit(str(folder / "*" / "*.parquet"))
                    if not bad
                    else "[" + ", ".join(_lit(str(p)) for p in sorted(parts)) + "]"
                )
                self.con.execute(
                    f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({glob}, hive_partitioning=true, "
                    f"union_by_name=true, hive_types={{'run_id': VARCHAR}})"
                )
            else:
                empty = pa.Table.from_pylist([], schema=schema.append(pa.field("run_id", pa.string())))
                self.con.register(f"_empty_{name}", empty)
                self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _empty_{name}")
        self.con.register("_runs", self._runs_table())
        self.con.execute("CREATE OR REPLACE VIEW runs AS SELECT * FROM _runs")
        self.con.execute(f"CREATE OR REPLACE VIEW telemetry AS {TELEMETRY_VIEW_SQL}")
        return self

    def _runs_table(self) -> pa.Table:
        rows = []
        for path in sorted(self.data_dir.glob("runs/run_id=*/manifest.json")):
            try:
                m = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise DataError(f"manifest {path} cannot be read ({exc}); move it away or repair it") from None
            endpoint = m.get("endpoint") or {}
            tags = m.get("tags") or {}
            sim_cfg = (m.get("simulator") or {}).get("config") or {}
            transport = (m.get("client") or {}).get("transport") or {}
            rows.append(
                {
                    "run_id": path.parent.name.removeprefix("run_id="),
                    "status": effective_status(m),
                    "started_utc": m.get("started_utc"),
                    "finished_utc": m.get("finished_utc"),
                    "label": m.get("label"),
                    "endpoint": endpoint.get("base_url"),
                    "model": endpoint.get("model"),
                    "simulated": bool(m.get("simulator")),
                    "seed": m.get("seed"),
                    "gpu_source": ((m.get("telemetry") or {}).get("gpu") or {}).get("source"),
                    "requests": (m.get("counts") or {}).get("requests"),
                    "perfkit_version": ((m.get("environment") or {}).get("versions") or {}).get("perfkit"),
                    "variant": tags.get("variant") or sim_cfg.get("variant"),
                    "tags": json.dumps(tags, sort_keys=True),
                    "rx_stamps": transport.get("rx_stamps"),
                    "read_thread": transport.get("read_thread"),
                }
            )
        schema = pa.schema(
            [
                ("run_id", pa.string()),
                ("status", pa.string()),
                ("started_utc", pa.string()),
                ("finished_utc", pa.string()),
                ("label", pa.string()),
                ("endpoint", pa.string()),
                ("model", pa.string()),
                ("simulated", pa.bool_()),
                ("seed", pa.int64()),
                ("gpu_source", pa.string()),
                ("requests", pa.int64()),
                ("perfkit_version", pa.string()),
                ("variant", pa.string()),
                ("tags", pa.string()),
                ("rx_stamps", pa.string()),
                ("read_thread", pa.string()),
            ]
        )
        return pa.Table.from_pylist(rows, schema=schema)

    # -- queries -----------------------------------------------------------
    def sql(self, query: str, params: dict[str, Any] | None = None) -> duckdb.DuckDBPyRelation:
        """Run SQL against the views; returns a lazy DuckDB relation.

        ``params`` binds ``$name`` placeholders (a run id is bound, never spliced into the text).
        """
        return self.con.sql(query, params=params)

    def query_frame(self, query: str) -> pd.DataFrame | None:
        """A user's SQL as a pandas frame (None for a statement that returns no rows).

        Raises
        ------
        ValueError
            When DuckDB refuses the query, with its message and the names of the views.
        """
        try:
            rel = self.con.sql(query)
            return None if rel is None else rel.df()
        except duckdb.Error as exc:
            raise ValueError(f"query failed: {exc}. Views: {', '.join(VIEWS)} (see `perfkit schema`)") from None

    def scalar(self, query: str) -> Any:
        """The first column of the first row of a query (None when it returns no row)."""
        rows = self.con.sql(query).limit(1).fetchall()
        return rows[0][0] if rows else None

    def table(self, name: str, run_id: str | None = None) -> duckdb.DuckDBPyRelation:
        """One view (``requests``, ``chunks``, ``runs``), optionally for one run."""
        if name not in (*TABLES, "runs", "telemetry"):
            raise ConfigError(f"no table {name!r}; the tables are {', '.join([*TABLES, 'telemetry', 'runs'])}")
        if run_id is None:
            return self.con.sql(f"SELECT * FROM {name}")
        return self.con.sql(f"SELECT * FROM {name} WHERE run_id = $run", params={"run": check_run_id(run_id)})

    def run_ids(self) -> list[str]:
        """Every run id that has requests or a manifest, oldest first (by the manifest's start; a run named
        by hand sorts by when it ran, not by its name)."""
        started = dict(self.con.sql("SELECT run_id, min(started_utc) FROM runs GROUP BY 1").fetchall())
        ids = set(started) | self._request_runs
        return sorted(ids, key=lambda i: (started.get(i) is not None, started.get(i) or "", i))

    def require_run(self, run_id: str) -> str:
        """The run ``run_id`` names: ``latest`` the newest, a unique prefix the one it starts; else an error
        that lists the runs here (and says when the list is cut)."""
        ids = self.run_ids()
        if run_id == "latest":
            if not ids:
                raise RunNotFoundError(f"{self.data_dir} holds no run yet")
            return ids[-1]
        if run_id in ids:
            return run_id
        starts = [i for i in ids if i.startswith(run_id)] if run_id else []
        if len(starts) == 1:
            return starts[0]
        if len(starts) > 1:
            raise RunNotFoundError(
                f"run {run_id!r} is ambiguous in {self.data_dir}: {len(starts)} runs start with it "
                f"({', '.join(starts[-5:])}{', ...' if len(starts) > 5 else ''}); give more of the id"
            )
        if not ids:
            raise RunNotFoundError(f"run {run_id!r} is not in {self.data_dir}; it holds no run yet")
        shown = ", ".join(ids[-5:])
        more = f" (the newest 5 of {len(ids)}; `perfkit runs` lists them all)" if len(ids) > 5 else ""
        raise RunNotFoundError(f"run {run_id!r} is not in {self.data_dir}; runs here: {shown}{more}")

    def manifest(self, run_id: str) -> dict[str, Any]:
        from perfkit.store.manifest import read_manifest

        return read_manifest(self.data_dir, check_run_id(run_id))

    def summary(
        self,
        run_id: str | list[str] | None = None,
        *,
        by_phase: bool = True,
        include_warmup: bool = False,
        histograms: str = "auto",
    ) -> duckdb.DuckDBPyRelation:
        """Per run (and phase): count, error rate, throughput, TTFT / ITL / E2E mean and percentiles.

        Returns a DuckDB relation (``.df()`` for pandas, ``.pl()`` for Polars).
        Columns and definitions: :mod:`perfkit.query.metrics`.

        ``histograms`` (one run, warm-up left out): ``"auto"`` takes the latency columns of a
        run of millions of samples from its rollup (per-second log histograms, percentiles within
        one 0.54% bucket; :mod:`perfkit.query.rollup`), ``"always"`` from its rollup whatever its size,
        ``"never"`` from every sample.
        """
        check_histograms(histograms)
        where, params = self._where(run_id, include_warmup)
        path = None
        if isinstance(run_id, str) and not include_warmup:
            path = rollup_for(self.data_dir, check_run_id(run_id), histograms=histograms)
        if path is None or not isinstance(run_id, str):
            return self.con.sql(summary_sql(where, by_phase=by_phase), params=params)
        # relations are lazy: each summary gets its own frame, so one taken earlier still reads its run
        name = f"_rollup_latency_{next(self._frames)}"
        self.con.register(name, latency_frame(path, run_id, by_phase=by_phase))
        return self.con.sql(summary_sql(where, by_phase=by_phase, latency_from=name), params=params)

    def _where(self, run_id: str | list[str] | None, include_warmup: bool) -> tuple[str, dict[str, Any] | None]:
        """A predicate on the ``requests`` view and its bound parameters (the run ids are never spliced in)."""
        preds = [] if include_warmup else ["NOT warmup"]
        params = None
        if run_id is not None:
            ids = [run_id] if isinstance(run_id, str) else list(run_id)
            preds.append("list_contains($runs, run_id)")
            params = {"runs": [check_run_id(i) for i in ids]}
        return " AND ".join(preds) or "TRUE", params

    def fidelity(
        self, run_id: str | list[str] | None = None, *, include_warmup: bool = False
    ) -> duckdb.DuckDBPyRelation:
        """Schedule fidelity per run and phase (see :func:`perfkit.query.metrics.fidelity_sql`)."""
        where, params = self._where(run_id, include_warmup)
        return self.con.sql(fidelity_sql(where), params=params)

    def slo(self, run_id: str | list[str] | None = None, *, include_warmup: bool = False) -> duckdb.DuckDBPyRelation:
        """SLO attainment and goodput per run, phase and user class (see :func:`perfkit.query.metrics.slo_sql`)."""
        where, params = self._where(run_id, include_warmup)
        return self.con.sql(slo_sql(where), params=params)

    def endpoints(
        self, run_id: str | list[str] | None = None, *, include_warmup: bool = False
    ) -> duckdb.DuckDBPyRelation:
        """Per run, phase and endpoint: share of requests, errors, latencies (load-balancing studies)."""
        where, params = self._where(run_id, include_warmup)
        return self.con.sql(endpoint_sql(where), params=params)

    def nodes(self, run_id: str) -> pd.DataFrame:
        """Where each share of a split run ran and how it kept up (empty for a run of one host's processes).

        One row per node of the manifest (``--cluster`` or ``perfkit merge``): ``share``, ``host``,
        ``requests``, ``errors``, ``schedule_lag_p50_ms`` and ``schedule_lag_p99_ms`` (its share's
        non-warm-up requests), ``loop_lag_max_ms``, ``worker_cpu_pct`` (the worker process's mean CPU, % of
        one core, from its own host samples), ``offset_ms`` and ``offset_uncertainty_ms`` (its clock
        against the run's), ``lost`` (when it was lost, UTC, or None) and ``behind`` (why it fell behind, or
        ``""``; :func:`perfkit.query.metrics.node_behind`).
        """
        from perfkit.query.frames import share_lags
        from perfkit.query.metrics import node_behind

        m = self.manifest(run_id)
        nodes = m.get("nodes") or []
        if not nodes:
            return pd.DataFrame()
        workers = int((m.get("client") or {}).get("workers") or len(nodes))
        lags = share_lags(self, check_run_id(run_id), workers).set_index("share")
        lost = {x["share"]: x.get("lost_utc") or "missing" for x in m.get("lost_shares") or []}
        cpu = dict(
            self.con.execute(
                """SELECT pid, avg(value) FROM host_samples
                   WHERE run_id = $run AND scope = 'worker' AND metric = 'cpu_pct' GROUP BY pid""",
                {"run": check_run_id(run_id)},
            ).fetchall()
        )
        rows = []
        for n in nodes:
            w = int(n["share"])
            got = lags.loc[w].to_dict() if w in lags.index else {}
            unc = n.get("offset_uncertainty_ns")
            row = {
                "share": w,
                "host": n.get("host"),
                "node_ip": n.get("node_ip"),
                "requests": int(got.get("requests", 0)),
                "errors": int(got.get("errors", 0)),
                "schedule_lag_p50_ms": got.get("schedule_lag_p50_ms"),
                "schedule_lag_p99_ms": got.get("schedule_lag_p99_ms"),
                "loop_lag_max_ms": n.get("loop_lag_max_ms"),
                "worker_cpu_pct": cpu.get(n.get("pid")),
                "offset_ms": n.get("offset_ns", 0) / 1e6,
                "offset_uncertainty_ms": unc / 1e6 if unc is not None else None,
                "lost": lost.get(w),
            }
            row["behind"] = node_behind(row)
            rows.append(row)
        return pd.DataFrame(rows)

    def telemetry_wide(self, table: str, run_id: str | list[str] | None = None) -> duckdb.DuckDBPyRelation:
        """A telemetry table pivoted wide: one row per reading, one column per metric.

        ``table`` is ``gpu_samples``, ``server_metrics`` or ``host_samples``; see
        :func:`perfkit.query.telemetry.wide_sql` for the columns.
        """
        try:
            where, params = self._where(run_id, include_warmup=True)
            sql = wide_sql(table, where)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return self.con.sql(sql, params=params)

    def request_telemetry(
        self,
        run_id: str | list[str] | None = None,
        metrics: tuple[str, ...] | list[str] = DEFAULT_REQUEST_METRICS,
        *,
        include_warmup: bool = False,
    ) -> duckdb.DuckDBPyRelation:
        """Every request with the mean of ``metrics`` over its lifetime (interval join, ASOF fallback).

        For example the mean KV-cache use and GPU power while each request ran::

            cat.request_telemetry(run, ["kv_usage", "power_w"]).df()

        Metric names are those of the ``telemetry`` view (``SELECT DISTINCT metric FROM telemetry``).
        """
        try:
            where, params = self._where(run_id, include_warmup)
            sql = request_telemetry_sql(where, metrics)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return self.con.sql(sql, params=params)

    def timeline(
        self,
        run_id: str | list[str] | None = None,
        *,
        bin_s: float = 1.0,
        metrics: tuple[str, ...] | list[str] = DEFAULT_TIMELINE_METRICS,
        include_warmup: bool = True,
    ) -> duckdb.DuckDBPyRelation:
        """Per time bin of ``bin_s`` s: requests sent, TTFT/E2E percentiles and mean telemetry, on one clock."""
        try:
            where, params = self._where(run_id, include_warmup)
            sql = timeline_sql(where, bin_s, metrics)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return self.con.sql(sql, params=params)

    # -- results kept between analyses ------------------------------------------------------------
    KEEP_BYTES = 256 * 2**20

    def kept(self, key: tuple[Any, ...]) -> Any:
        """A result kept under ``key`` by :meth:`keep` since the last :meth:`refresh`, else None."""
        hit = self._kept.get(key)
        if hit is None:
            return None
        self._kept.move_to_end(key)
        return hit[0]

    def keep(self, key: tuple[Any, ...], value: Any, nbytes: int) -> None:
        """Keep ``value`` (``nbytes`` large) for :meth:`kept`, the least recently used going first beyond
        :attr:`KEEP_BYTES` in all.  Several analyses of one report read the same samples; this reads them once.
        Kept arrays should be read-only, so that no caller changes another's."""
        if nbytes > self.KEEP_BYTES // 4:
            return
        self._kept[key] = (value, nbytes)
        while sum(n for _, n in self._kept.values()) > self.KEEP_BYTES:
            self._kept.popitem(last=False)

    def close(self) -> None:
        self._kept.clear()
        self.con.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({str(self.data_dir)!r})"


def open_catalog(data_dir: str | Path = "data") -> Catalog:
    """Open a data directory: ``perfkit.open``."""
    return Catalog(data_dir)
