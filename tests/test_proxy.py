"""A proxy named by the environment (HTTP_PROXY, NO_PROXY): the load goes through it, or direct where NO_PROXY
says, and the proxy's credentials reach the proxy and nothing perfkit writes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import perfkit_cmd


class ForwardProxy:
    """A plain-HTTP forward proxy on 127.0.0.1, in a thread: each connection is piped to the host its first
    request names (absolute-form, as clients send to a proxy); it counts requests by method and keeps the
    Proxy-Authorization headers it saw."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.auth: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def _note(self, data: bytes) -> None:
        for line in data.split(b"\r\n"):
            head = line.split(b" ", 1)[0]
            if head in (b"GET", b"POST") and b" http://" in line:
                key = head.decode()
                self.requests[key] = self.requests.get(key, 0) + 1
            if line.lower().startswith(b"proxy-authorization:"):
                self.auth.append(line.split(b":", 1)[1].strip().decode())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ", 2)[1].decode()  # http://host:port/path
        host, _, port = target.split("/", 3)[2].partition(":")
        self._note(head)
        up_r, up_w = await asyncio.open_connection(host, int(port or 80))
        up_w.write(head)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, note: bool) -> None:
            try:
                while data := await src.read(65536):
                    if note:
                        self._note(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_w, True), pipe(up_r, writer, False))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def proxy():
    p = ForwardProxy()
    yield p
    p.close()


def _env(**proxy_vars: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    return {**env, **proxy_vars}


def _run(sim, data: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    args = ("--endpoint", sim.url, "--requests", "8", "--concurrency", "2", "--output-tokens", "8", "--gpu", "off")
    return subprocess.run(
        perfkit_cmd("run", *args, "--data-dir", str(data), "--run-id", "p", *extra),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_the_load_goes_through_the_proxy_the_environment_names(sim, proxy, tmp_path):
    url = f"http://alice:s3cret-proxy-pw@127.0.0.1:{proxy.port}"
    out = _run(sim, tmp_path, _env(HTTP_PROXY=url))
    assert out.returncode == 0, out.stderr[-3000:]
    assert proxy.requests.get("POST") == 8, proxy.requests  # every request of the run, through the proxy
    assert f"through the proxy http://***@127.0.0.1:{proxy.port}" in out.stderr, out.stderr
    # the credentials reach the proxy, and nothing perfkit prints or writes
    assert base64.b64encode(b"alice:s3cret-proxy-pw").decode() in " ".join(proxy.auth), proxy.auth
    manifest = json.loads(next((tmp_path / "runs").rglob("manifest.json")).read_text())
    assert manifest["client"]["transport"]["kind"] == "aiohttp"
    assert manifest["client"]["transport"]["proxy"] == f"http://***@127.0.0.1:{proxy.port}"
    written = "".join(p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file())
    assert "s3cret-proxy-pw" not in out.stdout + out.stderr + written


def test_no_proxy_goes_direct_and_the_fast_client_is_not_sent_through_a_proxy_quietly(sim, proxy, tmp_path):
    url = f"http://127.0.0.1:{proxy.port}"
    direct = _run(sim, tmp_path / "direct", _env(HTTP_PROXY=url, NO_PROXY="127.0.0.1"))
    assert direct.returncode == 0 and "proxy" not in direct.stderr, direct.stderr[-3000:]
    assert proxy.requests.get("POST", 0) == 0, proxy.requests
    fast = _run(sim, tmp_path / "fast", _env(HTTP_PROXY=url), "--transport", "fast")
    assert fast.returncode == 2 and "Traceback" not in fast.stderr, fast.stderr[-3000:]
    assert "--transport fast goes to the server directly" in fast.stderr and "NO_PROXY" in fast.stderr
    assert proxy.requests.get("POST", 0) == 0, proxy.requests
