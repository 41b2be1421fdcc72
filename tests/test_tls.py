"""HTTPS with the default client: a local TLS server whose certificate a throwaway CA signed."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading

import pytest
from aiohttp import web
from conftest import perfkit_cmd

import perfkit
from perfkit.sim.config import SimConfig
from perfkit.sim.server import make_app

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    """The simulator behind TLS on 127.0.0.1 (certificate for localhost and 127.0.0.1), and the CA's PEM file."""
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner: list[web.AppRunner] = []

    async def serve() -> None:
        r = web.AppRunner(make_app(SimConfig(seed=0)))
        await r.setup()
        await web.TCPSite(r, "127.0.0.1", port, ssl_context=ctx).start()
        runner.append(r)
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(serve()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(20)
    yield f"https://localhost:{port}", pem
    asyncio.run_coroutine_threadsafe(runner[0].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)


def _run(url: str, data, *extra: str) -> subprocess.CompletedProcess:
    cmd = ("run", "--endpoint", url, "--requests", "6", "--concurrency", "2", "--output-tokens", "8")
    return subprocess.run(
        perfkit_cmd(*cmd, "--gpu", "off", "--no-server-metrics", "--data-dir", str(data), *extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_https_run_with_the_test_ca_has_no_errors_and_without_it_says_why(tls_sim, tmp_path):
    url, pem = tls_sim
    out = _run(url, tmp_path / "ok", "--ca-bundle", str(pem))
    assert out.returncode == 0, out.stderr[-2000:]
    with perfkit.open(tmp_path / "ok") as cat:
        rid = cat.run_ids()[-1]
        ok = cat.sql("SELECT count(*) FILTER (WHERE ok), count(*) FROM requests WHERE run_id = $r", {"r": rid})
        assert ok.fetchall() == [(6, 6)]
        assert cat.manifest(rid)["client"]["transport"]["tls"]["verify"] is True
    out = _run(url, tmp_path / "no")
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "certificate" in out.stderr and "--ca-bundle" in out.stderr, out.stderr[-2000:]
