"""A :class:`~perfkit.client.transport.Transport` on aiohttp: the general HTTP client, for comparison.

Every chunk goes through aiohttp's stream reader, a future and a task step (several times the CPU of
:class:`~perfkit.client.fasthttp.FastTransport` per chunk, and chunks timed when the reading task
wakes, not when their bytes arrived).  It speaks everything aiohttp does (compression, proxies from
the environment when asked).  Pool size and timeouts are all set explicitly: aiohttp's defaults
(100 connections, 300 s total) would silently cap a load test or cut long generations.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from perfkit.client.events import MAX_ERROR_BODY, handle_event, judge_end, status_error
from perfkit.client.sse import EventTooLarge, SSEParser
from perfkit.client.transport import Request
from perfkit.clock import now_ns
from perfkit.net.tls import TlsOptions
from perfkit.rows import ErrorKind, RequestRecord

__all__ = ["AiohttpTransport"]


class AiohttpTransport:
    """Streamed requests through one :class:`aiohttp.ClientSession`, made on first use.

    Parameters
    ----------
    pool_size : int
        Connection pool limit: at least the most requests a run holds in flight.
    connect_timeout_s, read_timeout_s : float
        Longest connect, and longest silence inside a response (a stall), s.  There is no total timeout.
    tls : TlsOptions, optional
        Verification of HTTPS servers (default: the system's trust store).
    trust_env : bool
        Take proxies from ``HTTP(S)_PROXY``/``NO_PROXY`` (aiohttp's ``trust_env``).
    proxy : str, optional
        The proxy that takes the load, as recorded in the manifest (no credentials:
        :func:`perfkit.net.proxy.describe_proxy`); the routing itself is ``trust_env``'s.
    """

    def __init__(
        self,
        pool_size: int = 256,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        *,
        tls: TlsOptions | None = None,
        trust_env: bool = False,
        proxy: str | None = None,
    ) -> None:
        self.pool_size = pool_size
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.tls = tls or TlsOptions()
        self.trust_env = trust_env
        self.proxy = proxy
        self._session: aiohttp.ClientSession | None = None

    def __reduce__(self) -> tuple[Any, ...]:  # a copy for another process: the settings, no session
        return (
            _rebuild,
            (self.pool_size, self.connect_timeout_s, self.read_timeout_s, self.tls, self.trust_env, self.proxy),
        )

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.pool_size,
                limit_per_host=0,
                ttl_dns_cache=300,
                keepalive_timeout=30,
                enable_cleanup_closed=True,
                ssl=self.tls.context,
            )
            timeout = aiohttp.ClientTimeout(
                total=None,
                connect=self.connect_timeout_s,
                sock_connect=self.connect_timeout_s,
                sock_read=self.read_timeout_s,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                read_bufsize=1 << 16,
                auto_decompress=True,
                trust_env=self.trust_env,
            )
        return self._session

    async def send(self, request: Request, record: RequestRecord) -> RequestRecord:
        """Send one streamed request and fill ``record`` (never raises but for cancellation)."""
        rec = record
        session = self._open()
        rec.sent_ns = now_ns()
        try:
            async with session.post(request.url, data=request.body, headers=request.headers) as resp:
                rec.headers_ns = now_ns()
                rec.status = resp.status
                if resp.status != 200:
                    raw = await resp.content.read(MAX_ERROR_BODY)
                    status_error(rec, raw, resp.status, resp.headers.get("Retry-After"))
                    return rec
                if "text/event-stream" not in resp.headers.get("Content-Type", ""):
                    rec.fail(ErrorKind.WRONG_CONTENT_TYPE, resp.headers.get("Content-Type", "(none)"))
                parser = SSEParser()
                state = [0]
                done = False
                async for data in resp.content.iter_any():
                    t = now_ns()
                    for payload in parser.feed_data(data):
                        if handle_event(rec, payload, t, state):
                            done = True
                    if done:
                        break
                tail, partial = parser.close()
                for ev in tail:
                    done = handle_event(rec, ev.data.encode(), now_ns(), state) or done
                judge_end(rec, partial, done)
        except EventTooLarge as exc:
            rec.fail(ErrorKind.OVERSIZED, str(exc))
        except asyncio.CancelledError:
            rec.fail(ErrorKind.CANCELLED, "cancelled by perfkit")
            raise
        except aiohttp.ConnectionTimeoutError as exc:
            rec.fail(ErrorKind.CONNECT_TIMEOUT, str(exc))
        except (TimeoutError, aiohttp.SocketTimeoutError) as exc:
            rec.fail(ErrorKind.READ_TIMEOUT, str(exc) or "no data within the read timeout")
        except aiohttp.ClientConnectorError as exc:
            rec.fail(ErrorKind.CONNECT, str(exc))
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientOSError,
            ConnectionResetError,
        ) as exc:
            rec.fail(ErrorKind.RESET, f"{type(exc).__name__}: {exc}")
        except aiohttp.ClientError as exc:
            rec.fail(ErrorKind.CLIENT, f"{type(exc).__name__}: {exc}")
        finally:
            rec.end_ns = now_ns()
        return rec

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "aiohttp",
            "pool_size": self.pool_size,
            "connect_timeout_s": self.connect_timeout_s,
            "read_timeout_s": self.read_timeout_s,
            "rx_stamps": "read",
            "read_thread": "off",
            "compiled_reads": False,
            "trust_env": self.trust_env,
            "proxy": self.proxy,
            "tls": self.tls.describe(),
        }


def _rebuild(
    pool_size: int,
    connect_timeout_s: float,
    read_timeout_s: float,
    tls: TlsOptions,
    trust_env: bool,
    proxy: str | None = None,
) -> AiohttpTransport:
    return AiohttpTransport(pool_size, connect_timeout_s, read_timeout_s, tls=tls, trust_env=trust_env, proxy=proxy)
