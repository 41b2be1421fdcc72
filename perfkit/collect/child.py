"""``python -m perfkit.collect.child``: one sampler in its own process (see :class:`~perfkit.collect.base.ProcessSampler`).

Protocol: one JSON line on stdin (the spec), ``ready`` on stdout after the
first reading, then sampling until stdin closes; finally one JSON line
``{"stats": ..., "describe": ...}`` on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from perfkit.collect.base import Sampler, TableBuffer
from perfkit.collect.prometheus import PrometheusSource
from perfkit.store.schema import TABLES

KINDS: dict[str, Any] = {"prometheus": PrometheusSource}


def main() -> int:
    spec = json.loads(sys.stdin.readline())
    source = KINDS[spec["kind"]](**spec["args"])
    directory = Path(spec["directory"])
    buf = TableBuffer(directory.parent.parent, spec["table"], directory.name.removeprefix("run_id="),
                      TABLES[spec["table"]], spec["prefix"])
    sampler = Sampler(spec["name"], source, spec["interval_s"], buf, spec["flush_interval_s"]).start()
    deadline = time.monotonic() + 10
    while sampler.stats.readings == 0 and time.monotonic() < deadline:
        time.sleep(0.002)
    print("ready", flush=True)
    while sys.stdin.readline():  # returns "" at EOF: the parent closed our stdin, or died
        pass
    stats = sampler.stop()
    describe = getattr(source, "describe", None)
    print(json.dumps({"stats": stats, "describe": describe() if describe else None}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
