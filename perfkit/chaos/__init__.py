"""Fault injection: the faults (:mod:`perfkit.chaos.faults`) and the proxy that makes them (:mod:`perfkit.chaos.proxy`).

``perfkit chaos --listen PORT --upstream URL --fault KIND[:P][@START[+DUR]]``
puts the proxy in front of any real endpoint; ``perfkit sim --fault ...`` puts
the same proxy in front of the simulator, in its process.  The proxy and its
server load on first use (PEP 562), so the fault definitions are cheap to import.
"""

from __future__ import annotations

import typing
from importlib import import_module
from typing import Any

from perfkit.chaos.faults import FAULTS, REQUEST_FAULTS, WINDOW_FAULTS, Fault, FaultOptions, parse_fault

if typing.TYPE_CHECKING:
    from perfkit.chaos.proxy import ChaosProxy
    from perfkit.chaos.serve import READY_PREFIX, faults_from_args, print_summary, serve_chaos

__all__ = [
    "FAULTS",
    "READY_PREFIX",
    "REQUEST_FAULTS",
    "WINDOW_FAULTS",
    "ChaosProxy",
    "Fault",
    "FaultOptions",
    "faults_from_args",
    "parse_fault",
    "print_summary",
    "serve_chaos",
]

_LAZY = {
    "ChaosProxy": "perfkit.chaos.proxy",
    "READY_PREFIX": "perfkit.chaos.serve",
    "faults_from_args": "perfkit.chaos.serve",
    "print_summary": "perfkit.chaos.serve",
    "serve_chaos": "perfkit.chaos.serve",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perfkit.chaos' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
