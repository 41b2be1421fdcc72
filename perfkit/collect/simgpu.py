"""SIMULATED GPU counters, read from perfkit's simulator (``GET /sim/gpu``).

The simulator computes them from its engine's state (:mod:`perfkit.sim.gpu`);
this source only fetches them and writes them into ``gpu_samples`` with
``source = 'sim'``, so they can never be mistaken for a real GPU's.
"""

from __future__ import annotations

import json
from typing import Any

from perfkit.clock import now_ns
from perfkit.net.get import get, server_root

__all__ = ["SimGpuSource", "probe_sim_gpu"]


def probe_sim_gpu(base_url: str, timeout_s: float = 2.0) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The simulated devices at ``base_url`` (or None and why: the endpoint is not perfkit's simulator)."""
    url = server_root(base_url) + "/sim/gpu"
    res = get(url, timeout_s)
    if res.status != 200:
        return None, f"{url}: {res.error or f'HTTP {res.status}'} (is the endpoint perfkit's simulator?)"
    try:
        doc = json.loads(res.body)
        devices = [{k: d[k] for k in ("index", "name", "uuid")} for d in doc["devices"]]
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"{url}: unexpected answer ({exc})"
    return devices, None


class SimGpuSource:
    """Fetch the simulator's GPU counters; rows for ``gpu_samples`` with ``source='sim'``."""

    def __init__(self, base_url: str, timeout_s: float = 2.0) -> None:
        self.url = server_root(base_url) + "/sim/gpu"
        self.timeout_s = timeout_s

    def read(self, t_ns: int) -> list[dict[str, Any]]:
        res = get(self.url, self.timeout_s)
        t = (t_ns + now_ns()) // 2
        if res.status != 200:
            raise RuntimeError(f"{self.url}: {res.error or f'HTTP {res.status}'}")
        doc = json.loads(res.body)
        return [
            {
                "t_ns": t,
                "gpu": int(d["index"]),
                "metric": m,
                "value": None if v is None else float(v),
                "detail": None,
                "source": "sim",
            }
            for d in doc["devices"]
            for m, v in d["metrics"].items()
        ]
