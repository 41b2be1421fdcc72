"""Check a data directory, and repair what a crash or a bad copy left: ``perfkit check DATA_DIR [--repair]``.

perfkit never leaves a torn Parquet file under its final name: each part is
written to a hidden ``.NAME.parquet.tmp`` and renamed into place.  A process
killed in the middle leaves that temporary file behind, which readers ignore
and :func:`check_data` removes on repair.  A file damaged afterwards (a disk
error, a truncated copy, an edit) is found by reading its footer (and, with
``deep``, every page); on repair it is moved to ``DATA_DIR/_quarantine/``
under the same relative path, never deleted, so the rest of the directory
reads and nothing is destroyed.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from perfkit.errors import RunNotFoundError
from perfkit.store.manifest import effective_status
from perfkit.store.schema import SCHEMA_VERSION, TABLES

__all__ = ["CheckReport", "check_data", "parquet_footer_ok"]

QUARANTINE = "_quarantine"


def parquet_footer_ok(path: Path) -> bool:
    """Cheap test of a Parquet file: long enough, and ``PAR1`` at both ends (one small read at each end)."""
    try:
        size = path.stat().st_size
        if size < 12:
            return False
        with path.open("rb") as f:
            head = f.read(4)
            f.seek(size - 4)
            return head == b"PAR1" and f.read(4) == b"PAR1"
    except OSError:
        return False


@dataclass
class CheckReport:
    """What :func:`check_data` found (and, with ``repair``, did).

    Attributes
    ----------
    parts : int
        Parquet parts examined.
    unreadable : list of (Path, str)
        Parts that cannot be read, with the reason.
    stale_tmp : list of Path
        Temporary files of writers that are gone (a killed run's last, unfinished part).
    bad_manifests : list of (Path, str)
        Manifests that cannot be read.
    newer_schema : list of str
        Runs written with a schema newer than this perfkit's.
    statuses : Counter
        Runs by effective status (``complete``, ``interrupted``, ``incomplete``, ...).
    schema_versions : Counter
        Runs by schema version.
    quarantined, removed : list of Path
        What the repair moved to ``_quarantine/`` and deleted.
    """

    parts: int = 0
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    stale_tmp: list[Path] = field(default_factory=list)
    bad_manifests: list[tuple[Path, str]] = field(default_factory=list)
    newer_schema: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    schema_versions: Counter[int] = field(default_factory=Counter)
    quarantined: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        """Problems still there: unreadable parts not set aside, unreadable manifests, newer schemas."""
        return sum(p.exists() for p, _ in self.unreadable) + len(self.bad_manifests) + len(self.newer_schema)

    @property
    def ok(self) -> bool:
        """True when every part and manifest reads (left-over temporary files are harmless)."""
        return not (self.unreadable or self.bad_manifests or self.newer_schema)

    def summary(self) -> str:
        """One line."""
        runs = sum(self.statuses.values())
        s = (
            f"{runs} runs ({', '.join(f'{k} {v}' for k, v in sorted(self.statuses.items())) or 'none'}), "
            f"{self.parts} Parquet parts, {len(self.unreadable)} unreadable, {len(self.stale_tmp)} left-over "
            f"temporary files, {len(self.bad_manifests)} unreadable manifests"
        )
        if self.quarantined or self.removed:
            s += f"; repaired: {len(self.quarantined)} moved to {QUARANTINE}/, {len(self.removed)} removed"
        return s

    def lines(self) -> list[str]:
        """The summary, then one line per problem with what to do about it."""
        out = [self.summary()]
        if len(self.schema_versions) > 1:
            out.append(
                f"schema versions: {dict(sorted(self.schema_versions.items()))} (read together, columns "
                "matched by name; a column missing from older runs reads as null)"
            )
        for p, why in self.unreadable:
            done = " (moved to quarantine)" if not p.exists() else " - `perfkit check --repair` moves it aside"
            out.append(f"unreadable part {p}: {why}{done}")
        for p, why in self.bad_manifests:
            out.append(f"unreadable manifest {p}: {why} - the run's Parquet still reads; fix or delete the file")
        for rid in self.newer_schema:
            out.append(f"run {rid} was written by a newer perfkit (schema > {SCHEMA_VERSION}); upgrade perfkit")
        for p in self.stale_tmp:
            done = " (removed)" if not p.exists() else " - harmless; `--repair` removes it"
            out.append(f"left-over temporary file {p}{done}")
        return out


def check_data(data_dir: str | Path, *, repair: bool = False, deep: bool = False) -> CheckReport:
    """Examine every run in ``data_dir``; with ``repair``, set aside what cannot be read.

    Parameters
    ----------
    data_dir : str or Path
    repair : bool
        Move unreadable parts to ``DATA_DIR/_quarantine/`` (same relative path) and delete the
        temporary files of writers that are gone.  A live run's files are left alone.
    deep : bool
        Read every part whole (every page decoded), not just its footer.

    Raises
    ------
    DataError
        When ``data_dir`` is not a directory.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise RunNotFoundError(f"data directory {str(root)!r} does not exist")
    rep = CheckReport()
    live: set[str] = set()
    for path in sorted(root.glob("runs/run_id=*/manifest.json")):
        rid = path.parent.name.removeprefix("run_id=")
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            rep.bad_manifests.append((path, str(exc)))
            continue
        status = effective_status(m)
        rep.statuses[status] += 1
        version = int(m.get("schema_version", 0) or 0)
        rep.schema_versions[version] += 1
        if version > SCHEMA_VERSION:
            rep.newer_schema.append(rid)
        if status == "running":
            live.add(rid)
    for table in (*TABLES, "rollups"):  # a rollup is rebuilt by `perfkit rollup` once set aside
        for part in sorted((root / table).glob("run_id=*/*")):
            rid = part.parent.name.removeprefix("run_id=")
            if part.name.startswith(".") and part.name.endswith(".tmp"):
                if rid not in live:
                    rep.stale_tmp.append(part)
                continue
            if part.suffix != ".parquet":
                continue
            rep.parts += 1
            why = None
            if not parquet_footer_ok(part):
                why = "not a whole Parquet file (no PAR1 footer): truncated or overwritten"
            else:
                try:
                    pq.read_table(part) if deep else pq.read_metadata(part)
                except Exception as exc:
                    why = f"{type(exc).__name__}: {exc}"[:300]
            if why is not None:
                rep.unreadable.append((part, why))
    if repair:
        for part, _ in rep.unreadable:
            if part.parent.name.removeprefix("run_id=") in live:
                continue
            dest = root / QUARANTINE / part.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(part), dest)
            rep.quarantined.append(dest)
        for tmp in rep.stale_tmp:
            tmp.unlink(missing_ok=True)
            rep.removed.append(tmp)
    return rep
