"""Read workload inputs from files: arrival traces and prompt datasets.

Traces are CSV or JSONL with a timestamp and token lengths per request.
Columns are found by name, case-insensitively:

* time: ``TIMESTAMP`` (the public Azure LLM inference traces, e.g.
  ``2023-11-16 18:15:46.6805900``), ``timestamp``, ``time``, ``arrival_s``
  (seconds, a number), or ``arrival_ms`` (milliseconds);
* prompt tokens: ``ContextTokens``, ``prompt_tokens``, ``input_tokens``;
* output tokens: ``GeneratedTokens``, ``output_tokens``, ``max_tokens``.

Offsets count from the first request and are multiplied by ``time_scale``
(0.5 replays twice as fast).

Datasets are JSONL or CSV with a ``prompt`` (or ``text``) column and an
optional ``output_tokens``, or ShareGPT-format JSON/JSONL: conversations of
``{"from": "human"|"gpt", "value": ...}`` turns; an answer's length in
tokens is taken as its word count.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from perfkit.errors import ConfigError
from perfkit.workload.arrivals import TraceArrivals
from perfkit.workload.content import DatasetEntry

__all__ = ["load_dataset", "load_trace"]

_TIME = ("timestamp", "time", "arrival_s", "arrival_ms")
_PROMPT = ("contexttokens", "prompt_tokens", "input_tokens")
_OUTPUT = ("generatedtokens", "output_tokens", "max_tokens")


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(f"file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".csv":
            return list(csv.DictReader(text.splitlines()))
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            return data if isinstance(data, list) else [data]
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (ValueError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot parse ({exc}); expected CSV, JSON or JSON lines") from None


def _col(row: dict[str, Any], names: tuple[str, ...]) -> str | None:
    lower = {k.lower().strip(): k for k in row}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def _seconds(value: Any, column: str) -> float:
    if column.lower() == "arrival_ms":
        return float(value) / 1e3
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    s = str(value).strip().replace("T", " ")
    if "." in s:  # Azure traces carry 7 fractional digits; datetime takes 6
        head, frac = s.split(".", 1)
        digits = "".join(ch for ch in frac if ch.isdigit())
        s = f"{head}.{digits[:6]}"
    return datetime.fromisoformat(s).timestamp()


def load_trace(path: str | Path, time_scale: float = 1.0) -> TraceArrivals:
    """Read a trace file into arrivals with per-request lengths (see the module docstring)."""
    p = Path(path)
    rows = _rows(p)
    if not rows:
        raise ConfigError(f"{p}: the trace has no rows")
    if not time_scale > 0:
        raise ConfigError(f"{p}: time_scale must be > 0, got {time_scale}")
    tcol, icol, ocol = _col(rows[0], _TIME), _col(rows[0], _PROMPT), _col(rows[0], _OUTPUT)
    missing = [
        what
        for what, c in (
            ("a time column " + "/".join(_TIME), tcol),
            ("a prompt-length column " + "/".join(_PROMPT), icol),
            ("an output-length column " + "/".join(_OUTPUT), ocol),
        )
        if c is None
    ]
    if missing:
        raise ConfigError(f"{p}: the trace lacks {'; '.join(missing)} (columns found: {list(rows[0])})")
    assert tcol and icol and ocol
    try:
        items = sorted((_seconds(r[tcol], tcol), int(float(r[icol])), int(float(r[ocol]))) for r in rows)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: a row has a value that is not a time or a token count ({exc})") from None
    t0 = items[0][0]
    return TraceArrivals(
        tuple(int(round((t - t0) * time_scale * 1e9)) for t, _, _ in items),
        tuple(max(0, i) for _, i, _ in items),
        tuple(max(1, o) for _, _, o in items),
    )


def load_dataset(path: str | Path) -> tuple[DatasetEntry, ...]:
    """Read prompts (JSONL/CSV) or ShareGPT conversations (see the module docstring)."""
    p = Path(path)
    out: list[DatasetEntry] = []
    for i, row in enumerate(_rows(p)):
        if not isinstance(row, dict):
            raise ConfigError(f"{p}: entry {i} is not an object")
        conv = row.get("conversations") or row.get("conversation")
        if isinstance(conv, list):
            users: list[str] = []
            answers: list[int | None] = []
            for turn in conv:
                who = str(turn.get("from", turn.get("role", ""))).lower()
                text = str(turn.get("value", turn.get("content", "")))
                if who in ("human", "user"):
                    users.append(text)
                elif who in ("gpt", "assistant", "chatgpt") and len(answers) < len(users):
                    answers.append(len(text.split()) or None)
            if users:
                out.append(DatasetEntry(tuple(users), tuple(answers)))
            continue
        key = _col(row, ("prompt", "text"))
        if key is None:
            raise ConfigError(f"{p}: entry {i} has neither a 'prompt'/'text' field nor ShareGPT 'conversations'")
        n_out = row.get(_col(row, ("output_tokens", "max_tokens")) or "")
        out.append(DatasetEntry((str(row[key]),), (int(float(n_out)),) if n_out not in (None, "") else ()))
    if not out:
        raise ConfigError(f"{p}: the dataset holds no usable entry")
    return tuple(out)
