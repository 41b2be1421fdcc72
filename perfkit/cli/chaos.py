"""``perfkit chaos``: a proxy that injects faults in front of any endpoint."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_fault_flags, fault_options, run_async
from perfkit.errors import ConfigError

NAME = "chaos"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    ch = sub.add_parser(
        NAME,
        help="a proxy that injects faults in front of any endpoint",
        description="Serve --upstream on --listen with faults injected into completion requests: "
        "resets, HTTP 429/500/503, malformed, truncated or stalled streams, a missing "
        "[DONE], slow drips, gigantic chunks, a wrong content type, refused "
        "connections and restarts. Ctrl-C stops it and prints what it injected.",
    )
    ch.add_argument("--listen", type=int, required=True, metavar="PORT", help="port to listen on (0 picks a free one)")
    ch.add_argument(
        "--upstream", required=True, metavar="URL", help="base URL of the real server, e.g. http://127.0.0.1:8000"
    )
    ch.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ch.add_argument("--log", metavar="FILE", help="append one JSON line per injected fault to this file")
    ch.add_argument(
        "--from-first-request",
        action="store_true",
        help="count fault times from the first completion request, not from the start of the proxy",
    )
    add_fault_flags(ch, "the upstream")
    return ch


def run(a: argparse.Namespace) -> int:
    from perfkit.chaos import ChaosProxy, faults_from_args, print_summary, serve_chaos

    proxy = ChaosProxy(
        a.upstream,
        faults_from_args(a.fault),
        fault_options(a),
        host=a.host,
        port=a.listen,
        log_path=a.log,
        from_first_request=a.from_first_request,
    )
    try:
        info = run_async(serve_chaos(proxy))
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {a.host}:{a.listen}: {exc.strerror or exc}; pick another --listen port"
        ) from None
    print_summary(info)
    return 0
