"""Other tools' results as perfkit runs: vLLM's ``bench serve``, GuideLLM and AIPerf.

perfkit's statistics (intervals on the effective sample, comparison with a verdict, changepoints, SLO brackets)
then apply to runs it did not record, and a perfkit run can be compared with another tool's run of the same
workload.  Each reader keeps what its file holds per request and writes down, in the manifest's
``imported`` entry, the tool, its version, where its metric definitions differ from perfkit's and what the
file does not hold (intended send times, chunk times), so that an analysis needing it says so.

    from perfkit.ingest import import_file
    run_id = import_file("vllm-bench", "result.json", "data")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from perfkit.errors import ConfigError
from perfkit.ingest.aiperf import read_aiperf
from perfkit.ingest.base import ImportedRun, write_imported
from perfkit.ingest.guidellm import read_guidellm
from perfkit.ingest.vllm_bench import read_vllm_bench

__all__ = ["FORMATS", "ImportedRun", "import_file", "read_aiperf", "read_guidellm", "read_vllm_bench"]

FORMATS: dict[str, Callable[[Path], ImportedRun]] = {
    "vllm-bench": read_vllm_bench,
    "guidellm": read_guidellm,
    "aiperf": read_aiperf,
}
"""Format name -> reader."""


def import_file(
    fmt: str,
    path: str | Path,
    data_dir: str | Path,
    *,
    run_id: str | None = None,
    label: str | None = None,
    tags: dict[str, str] | None = None,
    benchmark: int | None = None,
) -> str:
    """Read ``path`` as ``fmt`` (one of :data:`FORMATS`) and write it under ``data_dir``; returns the run id.

    The run id defaults to ``imported-<format>-<UTC time>``; an existing run is never overwritten.
    ``benchmark`` picks one benchmark of a GuideLLM file that holds several (a sweep's load levels).
    """
    reader = FORMATS.get(fmt)
    if reader is None:
        raise ConfigError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    src = Path(path)
    if not src.is_file():
        raise ConfigError(f"{src} is not a file; give the {fmt} result file to import")
    if benchmark is not None and fmt != "guidellm":
        raise ConfigError("--benchmark picks one benchmark of a GuideLLM file; other formats hold one run")
    run = read_guidellm(src, benchmark) if fmt == "guidellm" else reader(src)
    if label:
        run.label = label
    rid = run_id or f"imported-{fmt}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", rid):
        raise ConfigError(f"run id {rid!r} may hold letters, digits and _ . : - only")
    if (Path(data_dir) / "runs" / f"run_id={rid}").exists() or (Path(data_dir) / "requests" / f"run_id={rid}").exists():
        raise ConfigError(f"run {rid} already exists in {data_dir}; choose another --run-id")
    write_imported(data_dir, rid, run, src, tags=tags)
    return rid
