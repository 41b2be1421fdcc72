"""What every importer builds: the requests another tool recorded, as perfkit's rows, and what its file lacks.

An importer reads one result file into an :class:`ImportedRun`: one :class:`~perfkit.rows.RequestRecord` per
request, times in ns on one clock, plus the tool's name, version and metric definitions and the list of what
perfkit would have recorded that the file does not hold.  :func:`write_imported` writes it as a perfkit run
(Parquet through the :class:`~perfkit.store.writer.ParquetSink`, a manifest, the rollup), so every analysis
reads it as it reads a run perfkit made.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perfkit.errors import ConfigError
from perfkit.rows import RequestRecord
from perfkit.store.manifest import write_manifest
from perfkit.store.rollup import build_rollup
from perfkit.store.writer import ParquetSink

__all__ = ["PHASE", "ImportedRun", "read_json", "read_lines", "request", "write_imported"]

PHASE = "benchmark"
"""The one phase of an imported run (the tools' files hold one load level each)."""


@dataclass
class ImportedRun:
    """A result file of another tool, read.

    Attributes
    ----------
    tool, version : str
        The tool that wrote the file, and its version where the file says.
    records : list of RequestRecord
        Every request, in send order, times in ns.
    endpoint : dict
        ``base_url``, ``model``, ``api`` (``completions`` or ``chat``), ``ignore_eos`` (None: not recorded).
    phase : dict
        The load as the tool ran it: ``mode`` (open/closed), ``rate``, ``concurrency``, ``arrival``,
        ``burstiness``, and ``prompt_tokens`` / ``output_tokens`` as asked (None where the file does not say).
    started_utc : str, optional
        When the benchmark started (ISO 8601).
    definitions : dict
        Where the tool's metrics are defined differently from perfkit's, metric -> words.
    missing : list of str
        What perfkit records that the file does not hold (the analyses that need it say so).
    reconstructed : list of str
        What was derived rather than read (so that a reader knows which times are exact).
    """

    tool: str
    version: str | None
    records: list[RequestRecord]
    endpoint: dict[str, Any]
    phase: dict[str, Any]
    started_utc: str | None = None
    definitions: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    reconstructed: list[str] = field(default_factory=list)
    label: str | None = None


def _open(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


def read_json(path: Path, tool: str) -> Any:
    """A JSON file (gzip allowed), with an error that names the tool and the file when it is not JSON."""
    try:
        return json.loads(_open(path))
    except ValueError as exc:
        raise ConfigError(f"{path} is not a {tool} result file: it is not JSON ({exc})") from None


def read_lines(path: Path, tool: str) -> list[Any]:
    """A JSON-lines file (gzip allowed), one object a line."""
    out = []
    for k, line in enumerate(_open(path).splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError as exc:
                raise ConfigError(f"{path} line {k} is not JSON, so this is not a {tool} export ({exc})") from None
    return out


def request(
    i: int,
    sent_ns: int,
    *,
    intended_ns: int | None = None,
    chunk_ns: list[int] | None = None,
    first_token_ns: int | None = None,
    last_token_ns: int | None = None,
    end_ns: int | None = None,
    prompt_tokens: int | None = None,
    output_tokens: int | None = None,
    error: str | None = None,
) -> RequestRecord:
    """One imported request as perfkit's row: its chunks where the tool kept them, else first and last token."""
    out_target = int(output_tokens or 0)
    r = RequestRecord(i, PHASE, 0, False, None, int(intended_ns if intended_ns is not None else sent_ns), 0, out_target)
    r.sent_ns, r.end_ns, r.status = int(sent_ns), end_ns, 200 if not error else None
    r.prompt_tokens = prompt_tokens
    if chunk_ns:
        r.chunk_ns = [int(c) for c in chunk_ns]
        r.chunk_tokens, r.chunk_chars = [None] * len(chunk_ns), [0] * len(chunk_ns)
        r.first_token_ns, r.last_token_ns = r.chunk_ns[0], r.chunk_ns[-1]
    else:
        r.first_token_ns, r.last_token_ns = first_token_ns, last_token_ns
    if error:
        r.fail("imported_error", error)
    else:
        r.output_tokens_usage = output_tokens
        r.finish_reason = "length"
    return r


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def write_imported(
    data_dir: str | Path, run_id: str, run: ImportedRun, source: Path, *, tags: dict[str, str] | None = None
) -> None:
    """Write ``run`` as perfkit run ``run_id`` under ``data_dir``: requests and chunks, a manifest that names the
    tool, its definitions and what is missing, and the latency rollup."""
    if not run.records:
        raise ConfigError(f"{source} holds no request: nothing to import")
    sink = ParquetSink(data_dir, run_id, flush_interval_s=0.2)
    try:
        sink.put("requests", run.records)
    finally:
        sink.close()
    sent = [r.sent_ns for r in run.records if r.sent_ns is not None]
    ends = [r.end_ns or r.sent_ns for r in run.records if r.sent_ns is not None]
    duration_s = (max(ends) - min(sent)) / 1e9 if sent else 0.0
    phase = {
        "name": PHASE,
        "warmup": False,
        "duration_s": duration_s,
        "requests": len(run.records),
        "mode": run.phase.get("mode"),
        "rate": _finite(run.phase.get("rate")),
        "concurrency": run.phase.get("concurrency"),
        "arrival": run.phase.get("arrival"),
        "burstiness": run.phase.get("burstiness"),
        "prompt_tokens": run.phase.get("prompt_tokens"),
        "output_tokens": run.phase.get("output_tokens"),
        "think_time_s": 0.0,
        "ramp_users_s": 0.0,
        "turns": None,  # as perfkit's own phases: turns belong to a class
        "profile": None,
    }
    now = datetime.now(UTC).isoformat()
    ok = sum(1 for r in run.records if r.error_kind is None)
    manifest = {
        "status": "complete",
        "label": run.label or f"imported from {run.tool}",
        "started_utc": run.started_utc or now,
        "finished_utc": run.started_utc or now,
        "endpoint": {"api_key_set": False, **run.endpoint},
        "phases": [phase],
        "tags": {"source": run.tool, **(tags or {})},
        "simulated": None,
        "seed": None,
        "counts": {"requests": len(run.records), "ok": ok, "failed": len(run.records) - ok},
        "imported": {
            "tool": run.tool,
            "version": run.version,
            "file": str(source),
            "imported_utc": now,
            "definitions": run.definitions,
            "missing": run.missing,
            "reconstructed": run.reconstructed,
        },
    }
    write_manifest(data_dir, run_id, manifest)
    build_rollup(data_dir, run_id)
