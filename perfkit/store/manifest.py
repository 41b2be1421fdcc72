"""Run manifests: what was run, with what, where, and how it ended.

The manifest is JSON at ``DATA_DIR/runs/run_id=RUN/manifest.json``.  It is
written when a run starts (``status: "running"``) and rewritten atomically when
it ends (``"complete"``, or ``"failed"`` with the error).  A manifest still
saying ``running`` whose process is gone belongs to a run that was killed:
:func:`effective_status` reports it as ``incomplete``.

No secret is ever written: the endpoint is recorded without credentials, and
of the API key only the name of the variable it came from.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from perfkit.clock import ClockAnchor
from perfkit.secrets import redact
from perfkit.store.schema import SCHEMA_VERSION

__all__ = [
    "effective_status",
    "environment_info",
    "manifest_path",
    "new_run_id",
    "read_manifest",
    "redact_url",
    "write_manifest",
]

_PACKAGES = ("aiohttp", "duckdb", "pyarrow", "polars", "pandas", "numpy", "altair", "vl-convert-python", "uvloop")


def new_run_id(anchor: ClockAnchor | None = None) -> str:
    """A sortable, unique run id: ``YYYYmmddTHHMMSSZ-xxxxxx``."""
    when = datetime.fromtimestamp(anchor.wall_ns / 1e9, tz=UTC) if anchor else datetime.now(UTC)
    return f"{when:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def manifest_path(data_dir: str | Path, run_id: str) -> Path:
    return Path(data_dir) / "runs" / f"run_id={run_id}" / "manifest.json"


def redact_url(url: str) -> str:
    """Drop any user:password and query string from a URL."""
    p = urlsplit(url)
    host = p.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if p.port:
        netloc += f":{p.port}"
    return urlunsplit((p.scheme, netloc, p.path, "", ""))


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment_info() -> dict[str, Any]:
    """Versions of perfkit, Python and key packages, and a description of the host."""
    versions: dict[str, str | None] = {}
    for name in ("perfkit", *_PACKAGES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import psutil

        mem = psutil.virtual_memory().total
    except Exception:
        mem = None
    return {
        "versions": versions,
        "python": sys.version.split()[0],
        "git_commit": _git_commit(),
        "host": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "memory_bytes": mem,
        },
    }


def write_manifest(data_dir: str | Path, run_id: str, manifest: dict[str, Any]) -> Path:
    """Write (or rewrite) a run's manifest atomically, with API keys and URL credentials redacted."""
    path = manifest_path(data_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".manifest.json.tmp")
    body = {"run_id": run_id, "schema_version": SCHEMA_VERSION, **manifest}
    tmp.write_text(redact(json.dumps(body, indent=2, sort_keys=True, default=str)) or "")
    os.replace(tmp, path)
    return path


def read_manifest(data_dir: str | Path, run_id: str) -> dict[str, Any]:
    """Read a run's manifest, or an empty dict when the run has none."""
    path = manifest_path(data_dir, run_id)
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(manifest: dict[str, Any]) -> str:
    """``running`` only if the writing process still lives on this host; else ``incomplete``."""
    status = manifest.get("status", "unknown")
    if status != "running":
        return status
    host = (manifest.get("environment") or {}).get("host", {}).get("hostname")
    pid = manifest.get("pid")
    if host == socket.gethostname() and isinstance(pid, int) and _alive(pid):
        return "running"
    return "incomplete"
