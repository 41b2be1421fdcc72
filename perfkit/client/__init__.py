"""How to send: endpoints, the transports that stream requests, the SSE parser and the load runner."""

from perfkit.client.aiohttp_transport import AiohttpTransport
from perfkit.client.endpoint import Endpoint, check_model, discover_model, list_models
from perfkit.client.fasthttp import FastTransport
from perfkit.client.runner import LoadRunner, PhaseSpec, RunProgress
from perfkit.client.sse import SSEEvent, SSEParser
from perfkit.client.transport import Request, Transport
from perfkit.rows import ErrorKind, RequestRecord

__all__ = [
    "AiohttpTransport",
    "Endpoint",
    "ErrorKind",
    "FastTransport",
    "LoadRunner",
    "PhaseSpec",
    "Request",
    "RequestRecord",
    "RunProgress",
    "SSEEvent",
    "SSEParser",
    "Transport",
    "check_model",
    "discover_model",
    "list_models",
]
