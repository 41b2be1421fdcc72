"""Incremental, crash-safe Parquet writing off the event loop: the run's :class:`~perfkit.rows.Sink` on disk.

:class:`ParquetSink` takes rows of any table from any thread (``put`` is a
lock-free queue append: safe on the event loop and on sampler threads) and a
background thread writes them about once a second as new Parquet part files,
one per table that received rows.  Each part is written to a hidden temporary
name and renamed into place, so a reader never sees a torn file and a killed
process loses at most the last second.  Memory holds at most one flush
interval of rows.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from perfkit.rows import INSTANT_COLUMNS, RequestRecord
from perfkit.secrets import redact
from perfkit.store.schema import CHUNKS, REQUESTS, TABLES, TELEMETRY_TABLES

__all__ = ["ParquetSink", "records_to_tables", "shift_instants", "write_part"]

_STOP = object()


def _ms(a: int | None, b: int | None) -> float | None:
    return (b - a) / 1e6 if a is not None and b is not None else None


def records_to_tables(records: Iterable[RequestRecord]) -> tuple[pa.Table, pa.Table]:
    """Convert records to the ``requests`` and ``chunks`` tables (see :mod:`perfkit.rows`).

    The chunk columns are built from each record's lists in C (nested lists
    flattened by Arrow, gaps by numpy): this runs on the writer thread, which
    shares the interpreter (and, on a pinned client, the core) with the event loop.
    """
    recs = list(records)
    req_cols: dict[str, list[Any]] = {f.name: [] for f in REQUESTS}
    for r in recs:
        n = len(r.chunk_ns)
        first, last = r.first_token_ns, r.last_token_ns
        span = _ms(first, last)
        row = {
            "request_id": r.request_id,
            "phase": r.phase,
            "phase_index": r.phase_index,
            "warmup": r.warmup,
            "user_id": r.user_id,
            "class_name": r.class_name,
            "session_id": r.session_id,
            "turn": r.turn,
            "endpoint": r.endpoint,
            "target_rate_rps": r.target_rate_rps,
            "intended_ns": r.intended_ns,
            "sent_ns": r.sent_ns,
            "headers_ns": r.headers_ns,
            "first_token_ns": first,
            "last_token_ns": last,
            "end_ns": r.end_ns,
            "schedule_lag_ms": _ms(r.intended_ns, r.sent_ns),
            "ttft_ms": r.ttft_ms,
            "e2e_ms": r.e2e_ms,
            "ttft_from_intended_ms": _ms(r.intended_ns, first),
            "e2e_from_intended_ms": _ms(r.intended_ns, r.end_ns),
            "tpot_ms": r.tpot_ms,
            "itl_mean_ms": span / (n - 1) if span is not None and n > 1 else None,
            "prompt_tokens_target": r.prompt_tokens_target,
            "prompt_tokens": r.prompt_tokens,
            "output_tokens_target": r.output_tokens_target,
            "output_tokens": r.output_tokens,
            "output_tokens_source": r.output_tokens_source,
            "n_chunks": n,
            "empty_chunks": r.empty_chunks,
            "malformed_chunks": r.malformed_chunks,
            "status": r.status,
            "ok": r.ok,
            "error_kind": r.error_kind,
            "error_message": redact(r.error_message),
            "finish_reason": r.finish_reason,
            "slo_ok": r.slo_ok,
            "check_ok": r.check_ok,
            "check_message": redact(r.check_message),
        }
        for k, v in row.items():
            req_cols[k].append(v)
    return pa.Table.from_pydict(req_cols, schema=REQUESTS), _chunk_table(recs)


def _chunk_table(recs: list[RequestRecord]) -> pa.Table:
    with_chunks = [r for r in recs if r.chunk_ns]
    if not with_chunks:
        return CHUNKS.empty_table()
    lengths = np.array([len(r.chunk_ns) for r in with_chunks], dtype=np.int64)
    total = int(lengths.sum())
    arrival = pa.array([r.chunk_ns for r in with_chunks], type=pa.list_(pa.int64())).flatten()
    t = arrival.to_numpy(zero_copy_only=False)
    starts = np.zeros(len(lengths), dtype=np.int64)
    starts[1:] = np.cumsum(lengths)[:-1]
    itl = np.empty(total, dtype=np.float64)
    itl[1:] = np.diff(t) / 1e6
    mask = np.zeros(total, dtype=bool)
    mask[starts] = True  # a request's first chunk has no gap
    cols = {
        "request_id": pa.array(np.repeat([r.request_id for r in with_chunks], lengths), type=pa.int64()),
        "chunk_index": pa.array(np.arange(total, dtype=np.int64) - np.repeat(starts, lengths), type=pa.int32()),
        "arrival_ns": arrival,
        "itl_ms": pa.array(itl, mask=mask, type=pa.float64()),
        "tokens": pa.array([r.chunk_tokens for r in with_chunks], type=pa.list_(pa.int32())).flatten(),
        "chars": pa.array([r.chunk_chars for r in with_chunks], type=pa.list_(pa.int32())).flatten(),
    }
    return pa.Table.from_pydict(cols, schema=CHUNKS)


def shift_instants(table: pa.Table, name: str, delta_ns: int) -> pa.Table:
    """``table`` (of the table ``name``) with every instant column moved by ``delta_ns``, ns.

    Moves a worker's rows onto another host's monotonic clock; durations (``*_ms``) are unchanged.
    """
    if not delta_ns:
        return table
    import pyarrow.compute as pc

    for col in INSTANT_COLUMNS.get(name, ()):
        i = table.schema.get_field_index(col)
        if i >= 0:
            table = table.set_column(i, table.schema.field(i), pc.add(table[col], pa.scalar(delta_ns, pa.int64())))
    return table


def write_part(table: pa.Table, directory: Path, seq: int, prefix: str = "part") -> Path:
    """Write ``table`` as ``directory/PREFIX-SEQ.parquet`` atomically (temp file, then rename).

    Writers sharing a directory use different prefixes (``part``, ``part-w1``, ``part-metrics-0``, ...).
    """
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{prefix}-{seq:06d}.parquet"
    tmp = directory / f".{prefix}-{seq:06d}.parquet.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, final)
    return final


def _warm_up() -> None:
    """Pay pyarrow's one-time set-up (about 0.2 s on first use) now, before traffic starts,
    rather than on the writer thread in the middle of a run, where it competes for the GIL."""
    probe = RequestRecord(0, "warm-up", 0, True, None, 0, 1, 1)
    probe.chunk_ns, probe.chunk_tokens, probe.chunk_chars = [1, 2], [1, 1], [1, 1]
    for table in records_to_tables([probe]):
        pq.write_table(table, pa.BufferOutputStream(), compression="zstd")


class ParquetSink:
    """Write the rows of one run under ``data_dir`` from a background thread (a :class:`~perfkit.rows.Sink`).

    Parameters
    ----------
    data_dir : str or Path
    run_id : str
    flush_interval_s : float
        Write a part at least this often while rows arrive, s (bounds what a kill loses).
    prefix : str
        File name prefix of the parts (writers sharing a run use different ones).

    Attributes
    ----------
    written : int
        Requests written so far.
    rows_written : dict of str to int
        Rows written so far per table (``requests`` counts records).
    error : BaseException or None
        The first write that failed; :meth:`close` raises it.  Rows of later flushes are still written.
    """

    def __init__(self, data_dir: str | Path, run_id: str, flush_interval_s: float = 1.0, prefix: str = "part") -> None:
        self.root = Path(data_dir)
        self.prefix = prefix
        self.run_id = run_id
        self.flush_interval_s = flush_interval_s
        self.rows_written: dict[str, int] = {}
        self.error: BaseException | None = None
        self._seq: dict[str, int] = {}
        self._q: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        _warm_up()
        self._thread = threading.Thread(target=self._loop, name=f"perfkit-writer-{run_id}", daemon=True)
        self._thread.start()

    @property
    def written(self) -> int:
        return self.rows_written.get("requests", 0)

    def put(self, table: str, rows: Sequence[Any]) -> None:
        """Queue rows of ``table`` (non-blocking, safe on the event loop and from any thread)."""
        if table != "requests" and table not in TELEMETRY_TABLES:
            raise ValueError(f"no table {table!r}; the tables are requests, {', '.join(TELEMETRY_TABLES)}")
        self._q.put((table, rows))

    def close(self, timeout_s: float = 60.0) -> None:
        """Flush what is queued and stop the thread; re-raise a write error if one happened."""
        if not self._closed:
            self._closed = True
            self._q.put(_STOP)
            self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        buf: dict[str, list[Any]] = {}
        name: str
        rows: Sequence[Any]
        next_flush = time.monotonic() + self.flush_interval_s
        stop = False
        while not stop:
            try:
                item = self._q.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                stop = True
            elif item is not None:
                name, rows = item  # type: ignore[misc]
                buf.setdefault(name, []).extend(rows)
            if stop or time.monotonic() >= next_flush:
                if stop:  # anything put before the stop marker was seen
                    while True:
                        try:
                            item = self._q.get_nowait()
                        except queue.Empty:
                            break
                        if item is not _STOP:
                            name, rows = item  # type: ignore[misc]
                            buf.setdefault(name, []).extend(rows)
                self._flush(buf)
                buf = {}
                next_flush = time.monotonic() + self.flush_interval_s

    def _flush(self, buf: dict[str, list[Any]]) -> None:
        for table, rows in buf.items():
            if not rows:
                continue
            try:
                self._write(table, rows)
                self.rows_written[table] = self.rows_written.get(table, 0) + len(rows)
            except BaseException as exc:
                if self.error is None:
                    self.error = exc

    def _write(self, table: str, rows: list[Any]) -> None:
        part = f"run_id={self.run_id}"
        seq = self._seq.get(table, 0)
        if table == "requests":
            requests, chunks = records_to_tables(rows)
            # chunks first: a request row never points at chunks that are not on disk
            if chunks.num_rows:
                write_part(chunks, self.root / "chunks" / part, seq, self.prefix)
            write_part(requests, self.root / "requests" / part, seq, self.prefix)
        else:
            write_part(pa.Table.from_pylist(rows, schema=TABLES[table]), self.root / table / part, seq, self.prefix)
        self._seq[table] = seq + 1
