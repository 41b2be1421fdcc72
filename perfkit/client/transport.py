"""The seam between the load runner and the wire: one protocol for "send this request, fill this record".

The runner builds a :class:`Request` (URL, headers, body) and hands it, with the
:class:`~perfkit.rows.RequestRecord` it belongs to, to a :class:`Transport`.  The transport sends it,
reads the streamed answer and writes everything it learns into the record: the times, the status,
every content chunk, and any failure as an ``error_kind`` (never an exception: a misbehaving endpoint
is data).  Only cancellation propagates, after it is recorded.

Two transports implement it: :class:`~perfkit.client.fasthttp.FastTransport` (the default: bare
asyncio protocols, every chunk parsed and stamped as its bytes arrive) and
:class:`~perfkit.client.aiohttp_transport.AiohttpTransport` (aiohttp's stream reader).  A test passes
a transport of its own; the run's manifest records :meth:`Transport.describe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from perfkit.rows import RequestRecord

__all__ = ["Request", "Transport"]


@dataclass(frozen=True, slots=True)
class Request:
    """One streamed request, ready to send.

    Attributes
    ----------
    url : str
        Full URL of the completions endpoint.
    headers : dict of str to str
        Every header to send (``Content-Type``, ``Authorization``, ...); the transport adds framing headers.
    body : bytes
        The JSON body.
    """

    url: str
    headers: dict[str, str]
    body: bytes


class Transport(Protocol):
    """Sends requests and fills their records (see the module docstring)."""

    async def send(self, request: Request, record: RequestRecord) -> RequestRecord:
        """Send ``request``; fill ``record`` (``sent_ns`` .. ``end_ns``, status, chunks, error); never raise
        for the endpoint's behaviour, only re-raise cancellation once it is recorded."""
        ...

    async def close(self) -> None:
        """Close every connection."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the manifest records of this transport: its kind, how it times chunks, its settings."""
        ...
