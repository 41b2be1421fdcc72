"""The compiled half of the socket layer, ``perfkit.net._rx``, where it was built.

Built at install where a C compiler is found (``setup.py``); everything it does is also done in
Python, more slowly, so a missing build costs speed, not function.  This module is the one place that
imports it: the rest of perfkit asks :func:`compiled_module` and names its functions.

The module holds:

``recv_stamped(fd, hist)``
    One ``recvmsg`` with the kernel's receive stamp (:mod:`perfkit.net.stamps` has the Python one).
``Reader``
    The reading thread (:mod:`perfkit.net.transport`).
``take_events(data, rec, t, tokens)`` and ``configure(loads, handle_event, apply_event, names)``
    Whole HTTP chunks of one SSE event each, applied to a record; what the events mean comes from
    :mod:`perfkit.client.events` through ``configure``.
``send_each(fd, payloads, start, stop, stamps)``
    A burst of sends with a clock reading before each (the ground-truth server's).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["compiled_module", "send_each_available"]

_MODULE: ModuleType | None = None
_TRIED = False


def compiled_module() -> ModuleType | None:
    """``perfkit.net._rx`` where it was built, else None (loaded once)."""
    global _MODULE, _TRIED
    if not _TRIED:
        _TRIED = True
        try:
            _MODULE = importlib.import_module("perfkit.net._rx")
        except ImportError:
            _MODULE = None
    return _MODULE


def send_each_available() -> bool:
    """Whether the compiled burst of sends (``send_each``) is there."""
    return compiled_module() is not None
