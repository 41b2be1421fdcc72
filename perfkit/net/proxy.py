"""The proxy the environment names for a URL, as curl, requests and aiohttp read it.

``HTTP_PROXY``, ``HTTPS_PROXY`` and ``ALL_PROXY`` (either case) name a proxy per scheme; ``NO_PROXY`` lists
hosts, domains and ``*`` that go direct.  The load of a run goes through the proxy with the aiohttp client
(the fast client speaks to the server directly); the side channels (``/v1/models``, ``/metrics``) go through it
with the standard library, which reads the same variables.  Credentials in a proxy URL are never printed or
written: :func:`describe_proxy` drops them.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit

from perfkit.secrets import redact

__all__ = ["describe_proxy", "env_proxy"]


def env_proxy(url: str) -> str | None:
    """The proxy URL the environment names for ``url``, or None when there is none or ``NO_PROXY`` covers its
    host."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not proxies:
        return None
    host = parts.hostname or ""
    if host and urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return None
    return proxies.get(parts.scheme) or proxies.get("all") or None


def describe_proxy(proxy: str) -> str:
    """``proxy`` fit to print and record: its ``user:password@`` part replaced."""
    return redact(proxy) or ""
