"""Fault injection: the faults (:mod:`perfkit.chaos.faults`) and the proxy that makes them (:mod:`perfkit.chaos.proxy`).

``perfkit chaos --listen PORT --upstream URL --fault KIND[:P][@START[+DUR]]``
puts the proxy in front of any real endpoint; ``perfkit sim --fault ...`` puts
the same proxy in front of the simulator, in its process.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from perfkit.chaos.faults import FAULTS, REQUEST_FAULTS, WINDOW_FAULTS, Fault, FaultOptions, parse_fault
from perfkit.chaos.proxy import ChaosProxy

__all__ = [
    "ChaosProxy", "FAULTS", "Fault", "FaultOptions", "REQUEST_FAULTS", "WINDOW_FAULTS", "parse_fault", "serve_chaos",
]

READY_PREFIX = "perfkit-chaos listening on "


async def serve_chaos(proxy: ChaosProxy, *, ready: Callable[[ChaosProxy], None] | None = None,
                      until: Awaitable[object] | None = None) -> dict[str, object]:
    """Run ``proxy`` until SIGTERM/SIGINT (or ``until`` completes); return what it did.

    Prints ``perfkit-chaos listening on URL`` once bound, so a parent process
    can pass port 0 and read the real port.
    """
    await proxy.start()
    if ready is not None:
        ready(proxy)
    else:
        print(f"{READY_PREFIX}{proxy.url} -> {proxy.describe()['upstream']}; faults: "
              f"{', '.join(map(str, proxy.faults)) or 'none'}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waits = [asyncio.ensure_future(stop.wait())]
    if until is not None:
        waits.append(asyncio.ensure_future(until))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    await proxy.stop()
    return proxy.describe()


def _print_summary(info: dict[str, object], file: object = sys.stderr) -> None:
    print(f"perfkit chaos: {info['requests']} completion requests, injected {info['injected'] or 'nothing'}",
          file=file, flush=True)  # type: ignore[arg-type]


def faults_from_args(specs: Sequence[str] | None) -> list[Fault]:
    """Parse repeated ``--fault`` values."""
    return [parse_fault(s) for s in specs or []]
