"""``perfkit probe``: what a server supports, found by asking it."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_client_flags, make_transport, run_async
from perfkit.errors import ExitCode

NAME = "probe"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="ask a server what it supports: models, streaming, usage per chunk, exact lengths, /metrics, TLS",
        description="A few small requests, recorded as a run records them: the models listed, one streamed "
        "completion with perfkit's default fields (and, if refused, which field the server rejects), usage in "
        "the stream and in every chunk, exact output length, tokens per chunk, /metrics and its engine, TLS.",
    )
    p.add_argument("endpoint", metavar="URL", help="the server's base URL, with or without /v1")
    p.add_argument("--model", default="", help="default: the first one /v1/models lists")
    p.add_argument("--api", choices=("completions", "chat"), default="completions")
    add_client_flags(p)
    return p


def run(a: argparse.Namespace) -> int:
    from perfkit.client.endpoint import Endpoint
    from perfkit.record.probe import probe

    endpoint = Endpoint(a.endpoint, model=a.model, api=a.api)
    transport = make_transport(a, 4, [a.endpoint])

    async def go() -> Any:
        try:
            tls = getattr(transport, "tls", None)
            return await probe(endpoint, transport, tls.context if tls is not None else None)
        finally:
            await transport.close()

    res = run_async(go())
    for line in res.lines():
        print(line)
    return ExitCode.OK if res.streaming else ExitCode.RUN_FAILED
