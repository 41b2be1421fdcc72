"""API keys: read from the environment only, and kept out of everything perfkit writes.

A key reaches perfkit through ``$PERFKIT_API_KEY`` or ``$OPENAI_API_KEY`` (or
the variable an :class:`perfkit.client.Endpoint` names) and leaves it only in
the ``Authorization`` header.  Every key read is registered here, and
:func:`redact` replaces it wherever text is about to be written: error
messages stored in Parquet (a server may echo the key it refused), manifests,
messages printed by the command line.  A URL's ``user:password@`` part is
dropped in the same places.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "redact", "register_secret"]

REDACTED = "***"
_SECRETS: set[str] = set()
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def register_secret(value: str | None) -> None:
    """Remember ``value`` (an API key) so that :func:`redact` removes it; short values are ignored."""
    if value and len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str | None) -> str | None:
    """``text`` with every registered secret and every URL's ``user:password@`` replaced."""
    if not text:
        return text
    for s in _SECRETS:
        if s in text:
            text = text.replace(s, REDACTED)
    if "@" in text:
        text = _USERINFO.sub(lambda m: m["scheme"] + REDACTED + "@", text)
    return text
