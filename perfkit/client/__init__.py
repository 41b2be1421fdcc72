"""How to send: the streaming OpenAI-compatible client, the SSE parser and the load runner."""

from perfkit.client.openai import Endpoint, discover_model, make_session, send
from perfkit.client.records import ErrorKind, RequestRecord
from perfkit.client.runner import LoadRunner, PhaseSpec, RunProgress
from perfkit.client.sse import SSEEvent, SSEParser

__all__ = [
    "Endpoint",
    "ErrorKind",
    "LoadRunner",
    "PhaseSpec",
    "RequestRecord",
    "RunProgress",
    "SSEEvent",
    "SSEParser",
    "discover_model",
    "make_session",
    "send",
]
