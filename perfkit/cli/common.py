"""What the commands share: running a coroutine with clean signal handling, notices, and the flag groups
several commands take (``--data-dir``, ``--out``, telemetry, faults, the client's transport).

Nothing here imports more than the standard library at module level: ``perfkit --help`` and
``perfkit --version`` stay quick, and each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from perfkit.errors import ConfigError

__all__ = [
    "add_client_flags",
    "add_data_dir",
    "add_fault_flags",
    "add_out",
    "add_telemetry_flags",
    "fault_options",
    "make_transport",
    "notice",
    "parse_tags",
    "add_json",
    "print_json",
    "run_async",
    "telemetry_spec",
]


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine; Ctrl-C and SIGTERM cancel it, so the run is closed cleanly (and its data kept).

    The signals are handled by the event loop itself: a ``KeyboardInterrupt`` raised by Python's own
    handler inside a loop callback can be swallowed by the loop (uvloop logs it and goes on). The first
    signal cancels the command; a second is ignored while what was recorded is written; a third exits at
    once. After Ctrl-C the command ends with ``KeyboardInterrupt`` (exit 130), after SIGTERM with
    ``CancelledError`` (exit 143).
    """
    got: list[int] = []

    def on_signal(sig: int, task: asyncio.Task[Any]) -> None:
        got.append(sig)
        if len(got) == 1:
            task.cancel()
        elif len(got) == 2:
            print(
                "perfkit: stopping; writing what was recorded (signal again to quit at once)",
                file=sys.stderr,
                flush=True,
            )
        else:
            os._exit(130 if sig == signal.SIGINT else 143)

    async def wrapper() -> Any:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal, sig, task)
        return await coro

    try:
        try:
            import uvloop
        except ImportError:
            return asyncio.run(wrapper())
        return uvloop.run(wrapper())
    except asyncio.CancelledError:
        if got and got[0] == signal.SIGINT:
            raise KeyboardInterrupt from None
        raise


def notice(msg: str) -> None:
    """One line for the user on stderr, with any secret redacted."""
    from perfkit.secrets import redact

    print(f"perfkit: {redact(msg)}", file=sys.stderr, flush=True)


def add_json(p: argparse.ArgumentParser | Any) -> None:
    """``--json``: the command's result as JSON on stdout instead of tables (progress and notes stay on stderr)."""
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout instead of tables")


def print_json(obj: Any) -> None:
    """``obj`` as JSON: frames as lists of records, NaN and infinities as null, numpy numbers as numbers."""
    import json
    import math

    import numpy as np
    import pandas as pd

    def clean(x: Any) -> Any:
        if isinstance(x, pd.DataFrame):
            return [clean(r) for r in x.to_dict("records")]
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, np.generic):
            x = x.item()
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if x is pd.NA or x is pd.NaT:
            return None
        return x

    print(json.dumps(clean(obj), indent=2, default=str))


def add_data_dir(p: argparse.ArgumentParser | Any, help: str | None = None) -> None:
    """``--data-dir``, spelled the same in every command (default ``data``)."""
    p.add_argument(
        "--data-dir", default="data", metavar="DIR", help=help or "data directory holding the runs (default data/)"
    )


def add_out(p: argparse.ArgumentParser | Any, *aliases: str, default: str = "reports", what: str = "reports") -> None:
    """``--out``, spelled the same in every command that writes files; ``aliases`` are older spellings."""
    p.add_argument("--out", *aliases, default=default, metavar="DIR", help=f"where {what} go (default {default}/)")


def parse_tags(items: list[str] | None) -> dict[str, str]:
    """``--tag KEY=VALUE`` values as a dict.

    Raises
    ------
    ConfigError
        For an item that does not read ``KEY=VALUE`` with a name of letters, digits, ``_`` or ``-``.
    """
    tags = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not key.strip().replace("_", "").replace("-", "").isalnum():
            raise ConfigError(
                f"--tag {item!r} must read KEY=VALUE with a name of letters, digits, '_' or '-', "
                "e.g. --tag variant=int8"
            )
        tags[key.strip()] = value.strip()
    return tags


# -- telemetry --------------------------------------------------------------------------------------
def add_telemetry_flags(p: argparse.ArgumentParser, gpu_default: str) -> None:
    g = p.add_argument_group("telemetry (recorded on the requests' clock)")
    g.add_argument(
        "--gpu",
        choices=("auto", "nvml", "sim", "off"),
        default=gpu_default,
        help=f"GPU counters: auto = NVML when a driver answers, else off (never simulated); nvml; "
        f"sim = the simulator's SIMULATED counters; off (default {gpu_default})",
    )
    g.add_argument(
        "--gpu-interval", type=float, default=0.1, metavar="S", help="GPU fast-tier interval, s (default 0.1)"
    )
    g.add_argument(
        "--metrics-interval",
        type=float,
        default=1.0,
        metavar="S",
        help="interval of server /metrics scrapes, s (default 1)",
    )
    g.add_argument("--metrics-url", metavar="URL", help="scrape this URL instead of ENDPOINT_ROOT/metrics")
    g.add_argument("--no-server-metrics", action="store_true", help="do not scrape the server's /metrics")
    g.add_argument(
        "--server-pid",
        type=int,
        metavar="PID",
        help="a local server's pid: its process tree's CPU and memory are sampled",
    )


def telemetry_spec(a: argparse.Namespace, **override: Any) -> Any:
    """The :class:`~perfkit.record.TelemetrySpec` the telemetry flags ask for."""
    from perfkit.record.telemetry import TelemetrySpec

    kw = {
        "gpu": a.gpu,
        "gpu_interval_s": a.gpu_interval,
        "server_metrics": not a.no_server_metrics,
        "metrics_interval_s": a.metrics_interval,
        "metrics_url": a.metrics_url,
        "server_pid": a.server_pid,
    }
    kw.update(override)
    return TelemetrySpec(**kw)


# -- faults -----------------------------------------------------------------------------------------
def add_fault_flags(p: argparse.ArgumentParser, target: str) -> None:
    from perfkit.chaos.faults import FAULTS, FaultOptions  # the definitions only: cheap

    d = FaultOptions()
    g = p.add_argument_group("faults", f"injected into {target}")
    g.add_argument(
        "--fault",
        action="append",
        metavar="KIND[:P][@START[+DUR]]",
        help="repeatable; e.g. reset:0.1, http_503:1@10+5, restart@20+3. Kinds: " + ", ".join(FAULTS),
    )
    g.add_argument(
        "--after-events",
        type=int,
        default=d.after_events,
        metavar="N",
        help=f"events passed through before a mid-stream fault (default {d.after_events})",
    )
    g.add_argument(
        "--stall-s", type=float, default=d.stall_s, metavar="S", help=f"silence of a stall, s (default {d.stall_s:g})"
    )
    g.add_argument(
        "--drip-ms",
        type=float,
        default=d.drip_ms,
        metavar="MS",
        help=f"pause between the {d.drip_bytes}-byte writes of a drip, ms (default {d.drip_ms:g})",
    )
    g.add_argument(
        "--giant-mb",
        type=float,
        default=d.giant_mb,
        metavar="MB",
        help=f"size of a giant chunk, MiB (default {d.giant_mb:g})",
    )
    g.add_argument(
        "--fault-seed", type=int, default=0, metavar="N", help="seed of the per-request fault draws (default 0)"
    )


def fault_options(a: argparse.Namespace) -> Any:
    """The :class:`~perfkit.chaos.FaultOptions` the fault flags ask for."""
    from perfkit.chaos import FaultOptions

    return FaultOptions(
        after_events=a.after_events, stall_s=a.stall_s, drip_ms=a.drip_ms, giant_mb=a.giant_mb, seed=a.fault_seed
    )


# -- the client -------------------------------------------------------------------------------------
def add_client_flags(p: argparse.ArgumentParser) -> None:
    """How requests are sent and their chunks timed: the transport, its read path, timeouts, TLS."""
    g = p.add_argument_group("client (how requests are sent and their chunks timed)")
    g.add_argument(
        "--transport",
        "--http",
        dest="transport",
        choices=("fast", "aiohttp"),
        default=None,
        help="fast: every chunk parsed and stamped as its bytes arrive (default); aiohttp: the general "
        "client, for comparison (several times the CPU per chunk), and the default where the environment names "
        "a proxy for the endpoint (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY; NO_PROXY to go direct)",
    )
    g.add_argument(
        "--rx-stamps",
        dest="rx_stamps",
        action="store_true",
        default=None,
        help="time chunks by the kernel's receive stamps where the platform has them (default)",
    )
    g.add_argument(
        "--no-rx-stamps",
        dest="rx_stamps",
        action="store_false",
        help="time chunks when they are read (alias: PERFKIT_RX_STAMPS=0)",
    )
    g.add_argument(
        "--read-thread",
        choices=("realtime", "normal", "off"),
        default=None,
        help="read sockets on a realtime thread (default, where permitted), an ordinary thread, or the "
        "event loop (alias: PERFKIT_RX_THREAD)",
    )
    g.add_argument(
        "--no-compiled-reads",
        dest="compiled_reads",
        action="store_false",
        default=None,
        help="read and parse in Python instead of the compiled path (alias: PERFKIT_NO_EXTENSIONS=1)",
    )
    g.add_argument(
        "--read-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="longest silence within a response, s (default 60)",
    )
    g.add_argument(
        "--connect-timeout", type=float, default=10.0, metavar="S", help="longest wait for a connection, s (default 10)"
    )
    g.add_argument(
        "--ca-bundle",
        metavar="PEM",
        default=None,
        help="trust the certificate authorities in this PEM file for https:// endpoints (a private or test CA)",
    )
    g.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify an https:// endpoint's certificate (recorded in the manifest; never the default)",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="client processes sharing the load, the schedule split exactly between them (default 1); "
        "more when a phase is flagged client-bound",
    )


def make_transport(a: argparse.Namespace, pool_size: int, urls: list[str] | tuple[str, ...] = ()) -> Any:
    """The :class:`~perfkit.client.transport.Transport` the client flags ask for, for endpoints ``urls``.

    Where the environment names a proxy for one of them, the aiohttp client goes through it (said once on
    stderr, without the proxy's credentials); ``--transport fast`` with such a proxy is refused, since the fast
    client would quietly go direct."""
    from perfkit.net import ReadPath
    from perfkit.net.proxy import describe_proxy, env_proxy
    from perfkit.net.tls import TlsOptions

    tls = TlsOptions(ca_bundle=a.ca_bundle, insecure=a.insecure)
    proxied = [(u, p) for u in urls if (p := env_proxy(u)) is not None]
    if proxied:
        url, proxy = proxied[0]
        if a.transport == "fast":
            raise ConfigError(
                f"the environment names the proxy {describe_proxy(proxy)} for {url}, and --transport fast goes to "
                "the server directly: drop --transport fast (perfkit then goes through the proxy with the aiohttp "
                "client), or add the host to NO_PROXY to go direct"
            )
        notice(
            f"{url} is reached through the proxy {describe_proxy(proxy)} (from the environment; NO_PROXY=HOST goes "
            "direct): the aiohttp client is used, and every time measured includes the proxy's"
        )
    if a.transport == "aiohttp" or proxied:
        from perfkit.client.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(
            pool_size,
            a.connect_timeout,
            a.read_timeout,
            tls=tls,
            trust_env=bool(proxied),
            proxy=describe_proxy(proxied[0][1]) if proxied else None,
        )
    from perfkit.client.fasthttp import FastTransport

    path = ReadPath.from_env(stamps=a.rx_stamps, thread=a.read_thread, compiled=a.compiled_reads)
    return FastTransport(a.connect_timeout, a.read_timeout, read_path=path, tls=tls)
