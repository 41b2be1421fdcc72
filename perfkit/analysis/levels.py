"""Is this run a sweep?  The load levels that capacity analyses read, and a clear refusal when there are none.

A knee, a USL fit and the maximum load meeting SLOs are read off *steady phases of rising load*: one
open-loop rate per phase (or one number of closed-loop users), each held for the phase, rising from one
phase to the next, with nothing else changing.  A run that ramps, bursts, steps down again or ran under an
injected fault answers a different question, and a curve fitted to it is a number without a meaning.
:func:`load_levels` returns the levels of a run that is a sweep and raises :class:`NotASweepError`, naming
what does not fit and the scenario to run instead, for any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from perfkit.analysis.series import injected_events
from perfkit.query.catalog import Catalog
from perfkit.query.frames import send_spans

__all__ = ["SWEEP_SCENARIO", "LoadLevels", "NotASweepError", "load_levels"]

SWEEP_SCENARIO = {
    "rate": "scenarios/sweep.yaml (open-loop steps of rising rate: perfkit run scenarios/sweep.yaml --endpoint URL)",
    "users": "a closed-loop sweep of users, e.g. phases of 1, 2, 4, 8, 16 and 32 users (load: {users: N}) in a "
    "scenario file",
}
UNITS = {"rate": "req/s", "users": "users"}


class NotASweepError(ValueError):
    """The run's phases are not steady load levels of rising load, so a capacity analysis does not fit it."""


@dataclass(frozen=True)
class LoadLevels:
    """The load levels of a sweep.

    Attributes
    ----------
    run_id : str
    axis : {"rate", "users"}
        Open-loop request rate or closed-loop users.
    unit : str
        ``req/s`` or ``users``.
    frame : DataFrame
        One row per level in the order they ran: ``phase``, ``load`` (the requested rate or users) and
        ``achieved_rate_rps`` (what the client sent).
    ignored : list of str
        Phases of the run that are not levels on this axis (the sweep's closed-loop probes, warm-up).
    """

    run_id: str
    axis: str
    unit: str
    frame: pd.DataFrame
    ignored: list[str]

    def __len__(self) -> int:
        return len(self.frame)


def _spec_for(specs: list[dict[str, Any]], phase: str) -> dict[str, Any] | None:
    """The manifest's phase spec of a recorded phase (an automatic sweep step is recorded as ``group@rate``)."""
    for s in specs:
        if s.get("name") == phase:
            return s
    group = phase.split("@", 1)[0]
    return next((s for s in specs if s.get("group") == group and s.get("auto_rate")), None)


def load_levels(
    cat: Catalog, run_id: str, *, axis: str = "rate", minimum: int = 2, purpose: str = "this analysis"
) -> LoadLevels:
    """The run's load levels, or :class:`NotASweepError` saying why it has none.

    Parameters
    ----------
    cat : Catalog
    run_id : str
    axis : {"rate", "users"}
        Open-loop phases at a fixed rate (phases in closed loop are left aside, as a sweep's synchronous
        and throughput probes are), or closed-loop phases at a fixed number of users (open-loop phases
        left aside).
    minimum : int
        Levels the analysis needs (2 for the maximum load meeting SLOs, 4 for USL, 5 for a knee).
    purpose : str
        The analysis, for the message (``"a knee"``).

    Raises
    ------
    NotASweepError
        When a phase on the axis is not a steady level (a ramp, a spike, a replayed trace), a level ran
        under an injected event, the levels do not rise from phase to phase, or there are too few.
    """
    if axis not in UNITS:
        raise ValueError(f"axis must be 'rate' or 'users', got {axis!r}")
    rid = cat.require_run(run_id)
    manifest = cat.manifest(rid)
    specs = list(manifest.get("phases") or [])
    fid = cat.fidelity(rid).df()
    spans = send_spans(cat, rid)
    windows = {p: (a, b) for p, a, b in zip(spans["phase"], spans["start_s"], spans["end_s"], strict=True)}
    events = list(injected_events(cat, rid).itertuples(index=False, name=None))
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    ignored: list[str] = []
    for rec in fid.to_dict("records"):
        phase = str(rec["phase"])
        spec = _spec_for(specs, phase) or {}
        mode = spec.get("mode", "open" if pd.notna(rec.get("target_rate_rps")) else "closed")
        if (mode == "closed") != (axis == "users"):
            ignored.append(phase)
            continue
        if spec.get("profile"):
            problems.append(f"phase {phase!r} changes its rate as it runs (a ramp or spike), it is not one level")
            continue
        if mode == "trace":
            problems.append(f"phase {phase!r} replays a trace, it is not one level")
            continue
        if axis == "users" and spec.get("ramp_users_s"):
            problems.append(f"phase {phase!r} starts its users gradually, it is not one level")
            continue
        load = rec.get("target_rate_rps") if axis == "rate" else spec.get("concurrency")
        if load is None or pd.isna(load):
            ignored.append(phase)
            continue
        start, end = windows.get(phase, (None, None))
        for kind, e0, e1, factor in events:
            if start is not None and end is not None and e0 < end and e1 > start:
                what = f"an injected {kind}" + (f" (x{factor:g})" if factor and pd.notna(factor) else "")
                problems.append(f"phase {phase!r} ran under {what}")
        rows.append({"phase": phase, "load": float(load), "achieved_rate_rps": rec.get("achieved_rate_rps")})
    frame = pd.DataFrame(rows, columns=["phase", "load", "achieved_rate_rps"])
    unit = UNITS[axis]
    loads = list(frame["load"])
    if any(b <= a for a, b in zip(loads, loads[1:])):
        problems.append(f"its levels go {', '.join(f'{v:g}' for v in loads)} {unit}, not rising from phase to phase")
    if len(frame) < minimum:
        what = "open-loop rates" if axis == "rate" else "closed-loop user counts"
        problems.append(f"it has {len(frame)} steady {what} where {purpose} needs at least {minimum}")
    if problems:
        raise NotASweepError(
            f"run {rid} is not a sweep of load levels: {'; '.join(problems)}. {purpose[0].upper() + purpose[1:]} "
            f"is read off steady phases of rising load; run {SWEEP_SCENARIO[axis]}"
        )
    return LoadLevels(rid, axis, unit, frame, ignored)
