"""Run the simulated endpoint in its own process: ``serve`` (in-process main) and ``SimProcess``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from perfkit.chaos.faults import Fault, FaultOptions
from perfkit.errors import EndpointError
from perfkit.sim.config import SimConfig, SimEvent
from perfkit.sim.server import make_app

__all__ = ["SimProcess", "serve"]

READY_PREFIX = "perfkit-sim listening on "


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(
    config: SimConfig,
    host: str,
    port: int,
    log_path: str | None,
    faults: Sequence[Fault] = (),
    fault_options: FaultOptions | None = None,
) -> None:
    app = make_app(config, log_path)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sim_host, sim_port = ("127.0.0.1", 0) if faults else (host, port)
    family = socket.AF_INET6 if ":" in sim_host else socket.AF_INET
    sock = socket.create_server((sim_host, sim_port), family=family, backlog=8192)
    site = web.SockSite(runner, sock, shutdown_timeout=1.0)
    await site.start()
    bound = sock.getsockname()[1]
    shown = f"[{sim_host}]" if family == socket.AF_INET6 else sim_host
    url = f"http://{shown}:{bound}"
    proxy = None
    if faults:  # the fault mode: the same proxy as `perfkit chaos`, in front of the engine, in this process
        from perfkit.chaos import ChaosProxy

        proxy = await ChaosProxy(url, faults, fault_options, host=host, port=port).start()
        url = proxy.url
    print(f"{READY_PREFIX}{url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if proxy is not None:
        await proxy.stop()
        print(
            f"perfkit sim: faults injected {dict(proxy.injected) or 'none'} over {proxy.requests} completion requests",
            file=sys.stderr,
            flush=True,
        )
    await runner.cleanup()


def serve(
    config: SimConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_path: str | None = None,
    faults: Sequence[Fault] = (),
    fault_options: FaultOptions | None = None,
) -> None:
    """Serve the simulated endpoint until SIGTERM or SIGINT (blocking).

    Prints ``perfkit-sim listening on http://HOST:PORT`` once the socket is
    bound, so a parent process can use ``port=0`` and read the real port.
    With ``faults``, the engine listens on a private loopback port and
    :class:`perfkit.chaos.ChaosProxy` serves ``HOST:PORT`` in front of it,
    injecting them (the simulator's fault mode).
    """
    _use_uvloop()
    asyncio.run(_serve(config, host, port, log_path, faults, fault_options))


class SimProcess:
    """A simulated endpoint in a child process, as a context manager.

    Parameters
    ----------
    config : SimConfig, optional
    host : str
        Loopback address to bind.
    log_path : str, optional
        JSONL log of every finished request (the simulator's ground truth).
    start_timeout_s : float
        How long to wait for the child to bind, s.
    faults : sequence of Fault or str, optional
        Faults to inject (the fault mode, ``perfkit sim --fault``); see :mod:`perfkit.chaos.faults`.

    Examples
    --------
    >>> with SimProcess() as sim:  # doctest: +SKIP
    ...     print(sim.url)
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        host: str = "127.0.0.1",
        log_path: str | None = None,
        start_timeout_s: float = 30.0,
        faults: Sequence[Fault | str] = (),
    ) -> None:
        self.config = config or SimConfig()
        self.faults = [str(f) for f in faults]
        self.host = host
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._cfg_file: str | None = None

    def start(self) -> SimProcess:
        fd, self._cfg_file = tempfile.mkstemp(prefix="perfkit-sim-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(self.config.to_dict(), f)
        cmd = [sys.executable, "-m", "perfkit.sim", "--host", self.host, "--port", "0", "--config", self._cfg_file]
        if self.log_path:
            cmd += ["--log", self.log_path]
        for fault in self.faults:
            cmd += ["--fault", fault]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._read_ready_line()
        self.url = line[len(READY_PREFIX) :].strip()
        return self

    def _read_ready_line(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self._proc.stdout, selectors.EVENT_READ)
        if sel.select(self.start_timeout_s):
            line = self._proc.stdout.readline()
            if line.startswith(READY_PREFIX):
                return line
        self.stop()
        err = self._proc.stderr.read() if self._proc.stderr else ""
        raise EndpointError(f"the simulator did not start within {self.start_timeout_s} s: {err[-2000:]}")

    def stop(self) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after 5 s)."""
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._cfg_file:
            Path(self._cfg_file).unlink(missing_ok=True)
            self._cfg_file = None

    @property
    def pid(self) -> int | None:
        """The simulator process's pid (None before start)."""
        return self._proc.pid if self._proc else None

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def request_log(self) -> list[dict[str, Any]]:
        """The simulator's per-request log (its own clock, ns)."""
        return self._get("/sim/log")

    def schedule_events(self, events: list[SimEvent]) -> int:
        """Replace the event schedule, counting from now; returns the epoch (ns)."""
        from dataclasses import asdict

        data = json.dumps([asdict(e) for e in events]).encode()
        req = urllib.request.Request(
            self.url + "/sim/events", data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return int(json.loads(r.read())["epoch_ns"])

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
