"""An OpenAI-compatible endpoint: where requests go, what they carry, and which model it serves.

The API key is read from an environment variable at request time and exists
only in the ``Authorization`` header; it is never stored in a record, a
manifest or a log.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import json
import os
import ssl
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from perfkit.errors import ConfigError, EndpointError
from perfkit.net.get import get
from perfkit.secrets import register_secret

__all__ = [
    "API_KEY_ENV",
    "Endpoint",
    "check_model",
    "discover_model",
    "list_models",
    "normalize_base_url",
    "request_uuid",
]

API_KEY_ENV = ("PERFKIT_API_KEY", "OPENAI_API_KEY")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to send requests.

    Parameters
    ----------
    base_url : str
        The server's base URL, with or without the trailing ``/v1``.
    model : str
        Model name sent in every request.
    api : {"completions", "chat"}
    ignore_eos : bool
        Ask the server to produce exactly ``max_tokens`` (vLLM, SGLang).
    continuous_usage : bool
        Ask for ``usage`` in every chunk (vLLM's ``continuous_usage_stats``),
        which gives the tokens in each chunk.
    api_key_env : str, optional
        Environment variable holding the API key; by default the first set of
        ``PERFKIT_API_KEY`` and ``OPENAI_API_KEY``.
    extra_body : str
        A JSON object whose fields are merged into every request body (sampling parameters, ``stop``,
        ``response_format``, vendor fields); they override perfkit's own fields of the same name.  ""
        for none.
    request_id : bool
        Send each request's id as an ``X-Request-Id`` header, a UUID (:func:`request_uuid`), the one form
        every server accepts (llama-cpp-python's refuses anything else with HTTP 400); off for a server
        or proxy that wants none.
    """

    base_url: str
    model: str = ""
    api: str = "completions"
    ignore_eos: bool = True
    continuous_usage: bool = True
    api_key_env: str | None = None
    request_id: bool = True
    extra_body: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalize_base_url(self.base_url))
        if self.api not in ("completions", "chat"):
            raise ConfigError(f"api {self.api!r} is not one of completions, chat")
        if self.extra_body:
            _extra_fields(self.extra_body)  # refused here, not at the first request
        self.api_key()  # registered for redaction before anything can be written

    def api_key(self) -> str | None:
        """The key from the environment (see ``api_key_env``), registered with :func:`perfkit.secrets.redact`."""
        for name in (self.api_key_env,) if self.api_key_env else API_KEY_ENV:
            key = os.environ.get(name)
            if key:
                register_secret(key)
                return key
        return None

    @property
    def url(self) -> str:
        return self.base_url + ("/chat/completions" if self.api == "chat" else "/completions")

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        key = self.api_key()
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def payload(
        self, prompt: str, max_tokens: int, messages: list[dict[str, str]] | None = None, exact_length: bool = True
    ) -> bytes:
        """The JSON body of one streamed request (``messages`` for chat, else one user message).

        ``exact_length=False`` lets the model stop on its own (probes must end
        with their answer), whatever ``ignore_eos`` says.
        """
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.continuous_usage:
            body["stream_options"]["continuous_usage_stats"] = True
        if self.ignore_eos and exact_length:
            body["ignore_eos"] = True
            body["min_tokens"] = max_tokens
        if self.api == "chat":
            body["messages"] = messages if messages is not None else [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if self.extra_body:
            body.update(_extra_fields(self.extra_body))
        return json.dumps(body).encode()


@functools.lru_cache(maxsize=16)
def _extra_fields(text: str) -> dict[str, Any]:
    """``extra_body`` parsed once (every request's payload merges it; callers only read the result)."""
    try:
        extra = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"extra_body is not JSON: {exc}") from None
    if not isinstance(extra, dict):
        raise ConfigError("extra_body must be a JSON object of fields")
    return extra


_ID_NAMESPACE = uuid.UUID("6f1d5c1e-3a5b-4c1e-9a57-70657266b17d")


def request_uuid(run_id: str, request_id: int) -> str:
    """The ``X-Request-Id`` of a run's request: a UUID derived from the run id and request number (version 5), so
    a server's log can be joined to the run's rows by computing it again."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{run_id}-{request_id}"))


def normalize_base_url(url: str) -> str:
    """``http://h:8000``, ``http://h:8000/``, ``http://h:8000/v1/`` -> ``http://h:8000/v1``."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"endpoint {url!r} is not a URL ({exc}); use e.g. http://127.0.0.1:8000") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"endpoint {url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8000 "
            "(the server's base URL, with or without /v1)"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


async def list_models(
    endpoint: Endpoint, timeout_s: float = 10.0, context: ssl.SSLContext | None = None
) -> tuple[list[str] | None, str | None]:
    """The model ids ``/v1/models`` lists, or ``(None, why)`` when it could not be read (in a thread)."""
    url = endpoint.base_url + "/models"
    res = await asyncio.to_thread(get, url, timeout_s, endpoint.headers(), 4 * 2**20, context)
    if res.error and res.status == 0:
        return None, f"cannot reach {url}: {res.error}"
    if res.status != 200:
        return None, f"GET {url} answered HTTP {res.status}"
    try:
        data = json.loads(res.body)
    except ValueError:
        return None, f"GET {url} did not answer JSON"
    rows = data.get("data") if isinstance(data, dict) else None
    return [str(m.get("id")) for m in rows or () if isinstance(m, dict) and m.get("id") is not None], None


async def discover_model(endpoint: Endpoint, context: ssl.SSLContext | None = None) -> str:
    """The first model ``/v1/models`` lists.

    Raises
    ------
    EndpointError
        When the endpoint cannot be reached or lists no model.
    """
    models, why = await list_models(endpoint, context=context)
    if models is None:
        if why and "CERTIFICATE_VERIFY_FAILED" in why:
            hint = (
                "The server's TLS certificate is not signed by an authority this machine trusts: give its CA "
                "with --ca-bundle FILE.pem (or, knowingly, --insecure)"
            )
        elif why and why.startswith("cannot"):
            hint = "Is the server running? (`perfkit sim` starts a simulated one)"
        else:
            hint = "pass --model to skip discovery"
        raise EndpointError(f"{why}. {hint}")
    if not models:
        raise EndpointError(f"{endpoint.base_url}/models lists no model; pass --model")
    return models[0]


async def check_model(endpoint: Endpoint, context: ssl.SSLContext | None = None) -> None:
    """Refuse a model the endpoint does not list in ``/v1/models`` (skipped when it lists none or fails).

    Raises
    ------
    ConfigError
        Naming the model, the endpoint and the models it does serve (a usage mistake: exit status 2).
    """
    models, _ = await list_models(endpoint, context=context)
    if models and endpoint.model not in models:
        near = difflib.get_close_matches(endpoint.model, models, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(
            f"model {endpoint.model!r} is not served by {endpoint.base_url}{hint}; it lists "
            f"{', '.join(models[:10])}. Pass one of them with --model, or leave --model "
            "out to use the first"
        )
