"""Join the shares of one run, recorded separately, into one run: ``perfkit merge DIR... --data-dir OUT``.

Each share (``perfkit run --partition W/N --start-at T``, :mod:`perfkit.record.shares`) is a run of its
own, on its own host's clock.  They started at one wall-clock instant, which each turned into its own
monotonic clock (``share.start_ns`` in its manifest), so moving every instant of share ``W`` by the
difference of the start instants puts all of them on share 0's clock: the intended send times come out
exactly as one process's schedule, and the hosts' timelines agree as well as their wall clocks did
(the manifest says so).

The shares are checked before anything is written: one group (same seed, phases, share count, start
instant, endpoint), each share once, none still running, and all of them present unless ``partial``.
``server_metrics`` and ``gpu_samples`` are taken from one share (every share scraped the same server);
requests, chunks and host samples from all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from perfkit.errors import ConfigError
from perfkit.store.manifest import effective_status, new_run_id, read_manifest, write_manifest
from perfkit.store.rollup import build_rollup
from perfkit.store.writer import shift_instants, write_part

__all__ = ["FoundShare", "find_shares", "merge_shares"]

_ONCE = ("server_metrics", "gpu_samples")  # the same server seen by every share: one share's copy
_ALL = ("chunks", "requests", "host_samples")  # chunks before requests, as a writer does
_ORDER = {"complete": 0, "interrupted": 1, "incomplete": 2, "failed": 3}


@dataclass(frozen=True)
class FoundShare:
    """A share's run: where it is and its manifest."""

    data_dir: Path
    run_id: str
    manifest: dict[str, Any]

    @property
    def index(self) -> int:
        return int(self.manifest["share"]["index"])


def find_shares(dirs: list[str | Path]) -> list[FoundShare]:
    """Every run recorded with ``--partition`` under the data directories ``dirs``."""
    found: list[FoundShare] = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise ConfigError(f"{d} is not a directory; give the data directories the shares wrote (--data-dir)")
        runs = d / "runs"
        for m in sorted(runs.glob("run_id=*/manifest.json")) if runs.is_dir() else []:
            run_id = m.parent.name.split("=", 1)[1]
            try:
                manifest = read_manifest(d, run_id)
            except ValueError as exc:
                raise ConfigError(f"{m} cannot be read ({exc}); `perfkit check {d}` says more") from None
            if manifest.get("share"):
                found.append(FoundShare(d, run_id, manifest))
    if not found:
        raise ConfigError(
            f"no share of a partitioned run under {', '.join(map(str, dirs))}: shares are recorded by "
            "perfkit run --partition W/N --start-at TIME"
        )
    return found


def _check(shares: list[FoundShare], partial: bool) -> int:
    groups = {s.manifest["share"]["group"] for s in shares}
    if len(groups) > 1:
        listing = "; ".join(f"{s.data_dir}/{s.run_id}: group {s.manifest['share']['group']}" for s in shares)
        raise ConfigError(
            "these shares do not belong to one run (different seed, phases, share count, start or endpoint): "
            f"{listing}. Merge one group at a time"
        )
    count = int(shares[0].manifest["share"]["count"])
    seen: dict[int, FoundShare] = {}
    for s in shares:
        if s.index in seen:
            raise ConfigError(
                f"share {s.index}/{count} is there twice: {seen[s.index].data_dir}/{seen[s.index].run_id} and "
                f"{s.data_dir}/{s.run_id}; leave one out"
            )
        seen[s.index] = s
        status = effective_status(s.manifest)
        if status == "running":
            raise ConfigError(f"share {s.index} ({s.run_id}) is still running; merge when it has finished")
    missing = sorted(set(range(count)) - set(seen))
    if missing and not partial:
        raise ConfigError(
            f"shares {', '.join(f'{m}/{count}' for m in missing)} are missing; give their data directories too, "
            "or --partial to merge the others and name the missing ones in the manifest"
        )
    return count


def merge_shares(
    shares: list[FoundShare],
    out_dir: str | Path,
    run_id: str | None = None,
    *,
    partial: bool = False,
    command: list[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Write the shares as one run under ``out_dir``; return its id and manifest.

    Parameters
    ----------
    shares : list of FoundShare
        From :func:`find_shares`.
    out_dir : str or Path
        The data directory of the merged run (made if missing).
    run_id : str, optional
        Default: a new id.
    partial : bool
        Merge although some shares are missing (they are named in ``lost_shares``).
    command : list of str, optional
        Kept in the manifest.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--data-dir {out} is a file; give a directory for the merged run (it is made if missing)")
    count = _check(shares, partial)
    shares = sorted(shares, key=lambda s: s.index)
    base = shares[0].manifest
    run_id = run_id or new_run_id()
    if (out / "runs" / f"run_id={run_id}").exists():
        raise ConfigError(f"run {run_id} already exists under {out}; give another --run-id")
    base_start = int(base["share"]["start_ns"])
    nodes: list[dict[str, Any]] = []
    counts: dict[str, Any] = {"requests": 0, "errors": 0, "errors_by_kind": {}, "output_tokens": 0, "written": 0}
    windows: dict[str, list[int | None]] = {}
    taken_once: dict[str, int] = {}
    for s in shares:
        m, shift = s.manifest, base_start - int(s.manifest["share"]["start_ns"])
        written = 0
        for table in _ALL + _ONCE:
            if table in _ONCE and taken_once.setdefault(table, s.index) != s.index:
                continue
            parts = sorted((s.data_dir / table / f"run_id={s.run_id}").glob("*.parquet"))
            if table in _ONCE and not parts:
                del taken_once[table]  # this share has none: the next one's
                continue
            for k, part in enumerate(parts):
                t = shift_instants(pq.read_table(part), table, shift)
                write_part(t, out / table / f"run_id={run_id}", k, f"part-w{s.index}")
                written += t.num_rows if table == "requests" else 0
        c = m.get("counts") or {}
        for key in ("requests", "errors", "output_tokens"):
            counts[key] += int(c.get(key) or 0)
        for kind, n in (c.get("errors_by_kind") or {}).items():
            counts["errors_by_kind"][kind] = counts["errors_by_kind"].get(kind, 0) + n
        counts["written"] += written
        for w in m.get("phase_windows") or []:
            lo, hi = w["start_ns"] + shift, (w["end_ns"] + shift if w.get("end_ns") is not None else None)
            old = windows.setdefault(w["phase"], [lo, hi])
            old[0] = min(old[0] or lo, lo)
            old[1] = hi if old[1] is None or hi is None else max(old[1], hi)
        host = (m.get("environment") or {}).get("host") or {}
        nodes.append(
            {
                "share": s.index,
                "host": host.get("hostname"),
                "cpus": host.get("cpu_count"),
                "run_id": s.run_id,
                "data_dir": str(s.data_dir),
                "status": effective_status(m),
                "started_utc": m.get("started_utc"),
                "offset_ns": -shift,
                "offset_from": "the common --start-at instant read on each host's wall clock",
                "requests": written,
            }
        )
    present = {s.index for s in shares}
    lost = [{"share": i, "error": "not given to perfkit merge (missing)"} for i in range(count) if i not in present]
    statuses = [n["status"] for n in nodes] + (["incomplete"] if lost else [])
    manifest = {
        k: v
        for k, v in base.items()
        if k not in ("run_id", "schema_version", "share", "counts", "phase_windows", "pid", "finished_utc")
    }
    manifest.update(
        status=max(statuses, key=lambda x: _ORDER.get(x, 3)),
        started_utc=min(str(s.manifest.get("started_utc")) for s in shares),
        finished_utc=max(str(s.manifest.get("finished_utc")) for s in shares),
        counts=counts,
        phase_windows=[{"phase": p, "start_ns": lo, "end_ns": hi} for p, (lo, hi) in windows.items()],
        nodes=nodes,
        lost_shares=lost,
        merged_from={
            "shares": count,
            "group": base["share"]["group"],
            "start_at_utc": base["share"]["start_at_utc"],
            "clock": "share 0's monotonic clock; each share moved by the difference of its start instant, so "
            "cross-host instants agree as well as the hosts' wall clocks did (NTP: about 1 ms)",
            "telemetry_from_share": taken_once,
        },
        command=command,
    )
    manifest.setdefault("client", {})["workers"] = count
    write_manifest(out, run_id, json.loads(json.dumps(manifest, default=str)))
    if counts["written"]:
        build_rollup(out, run_id)
    return run_id, manifest
