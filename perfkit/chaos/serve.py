"""Serving the fault proxy until a signal, and what the command line needs around it."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

from perfkit.chaos.faults import Fault, parse_fault
from perfkit.chaos.proxy import ChaosProxy

__all__ = ["READY_PREFIX", "faults_from_args", "print_summary", "serve_chaos"]

READY_PREFIX = "perfkit-chaos listening on "


async def serve_chaos(
    proxy: ChaosProxy, *, ready: Callable[[ChaosProxy], None] | None = None, until: Awaitable[object] | None = None
) -> dict[str, object]:
    """Run ``proxy`` until SIGTERM/SIGINT (or ``until`` completes); return what it did.

    Prints ``perfkit-chaos listening on URL`` once bound, so a parent process
    can pass port 0 and read the real port.
    """
    await proxy.start()
    if ready is not None:
        ready(proxy)
    else:
        print(
            f"{READY_PREFIX}{proxy.url} -> {proxy.describe()['upstream']}; faults: "
            f"{', '.join(map(str, proxy.faults)) or 'none'}",
            flush=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waits: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
    if until is not None:
        waits.append(asyncio.ensure_future(until))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    await proxy.stop()
    return proxy.describe()


def print_summary(info: dict[str, object], file: TextIO = sys.stderr) -> None:
    """One line saying what the proxy did (to stderr by default)."""
    print(
        f"perfkit chaos: {info['requests']} completion requests, injected {info['injected'] or 'nothing'}",
        file=file,
        flush=True,
    )


def faults_from_args(specs: Sequence[str] | None) -> list[Fault]:
    """Parse repeated ``--fault`` values."""
    return [parse_fault(s) for s in specs or []]
