"""Blocking HTTP(S) GETs for side channels and discovery, made in threads (never on the event loop).

The load itself goes through a transport of :mod:`perfkit.client`; a scrape a second, or the one
look at ``/v1/models`` before a run, does not need an event loop, and keeping it in its own thread
keeps its parsing cost off the loop that timestamps the requests.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

__all__ = ["HttpResult", "get", "server_root"]


class HttpResult:
    """Status and body of one GET (status 0 when no response arrived, with ``error`` saying why)."""

    __slots__ = ("body", "content_type", "error", "status")

    def __init__(self, status: int, body: str = "", content_type: str = "", error: str | None = None) -> None:
        self.status, self.body, self.content_type, self.error = status, body, content_type, error


def server_root(base_url: str) -> str:
    """``http://h:8000/v1`` -> ``http://h:8000``: where ``/metrics`` lives on vLLM, SGLang, TGI, llama.cpp."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    path = path[: -len("/v1")] if path.endswith("/v1") else path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def get(
    url: str,
    timeout_s: float,
    headers: dict[str, str] | None = None,
    max_bytes: int = 32 * 2**20,
    context: ssl.SSLContext | None = None,
) -> HttpResult:
    """GET ``url``; never raises for the server's behaviour (refused, timeout, HTTP error, huge body).

    ``context`` verifies an HTTPS server (default: the system's trust store).
    """
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=context) as r:
            body = r.read(max_bytes + 1)
            if len(body) > max_bytes:
                return HttpResult(r.status, "", "", f"body larger than {max_bytes} bytes")
            return HttpResult(r.status, body.decode("utf-8", "replace"), r.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        return HttpResult(exc.code, "", "", f"HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpResult(0, "", "", f"{type(exc).__name__}: {reason}")
