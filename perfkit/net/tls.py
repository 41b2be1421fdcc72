"""How HTTPS servers are verified: a small value that can cross process boundaries, and the context it makes.

An :class:`ssl.SSLContext` cannot be pickled, so runs spread over worker processes carry
:class:`TlsOptions` and each process makes its own context from it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from perfkit.errors import ConfigError

__all__ = ["TlsOptions"]


@dataclass(frozen=True)
class TlsOptions:
    """Verification of HTTPS endpoints.

    Parameters
    ----------
    ca_bundle : str, optional
        A PEM file of certificate authorities to trust instead of the system's (a private CA, a
        throwaway test CA).
    insecure : bool
        Skip verification of the server's certificate and name (never the default; recorded in the
        manifest).
    """

    ca_bundle: str | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        if self.ca_bundle is not None and not Path(self.ca_bundle).is_file():
            raise ConfigError(f"--ca-bundle {self.ca_bundle!r} is not a file; give a PEM file of CA certificates")

    @cached_property
    def context(self) -> ssl.SSLContext:
        """The client context (made once per process).

        Raises
        ------
        ConfigError
            When the CA bundle cannot be read as PEM certificates.
        """
        try:
            ctx = ssl.create_default_context(cafile=self.ca_bundle)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"--ca-bundle {self.ca_bundle!r} cannot be read as PEM certificates: {exc}") from None
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def describe(self) -> dict[str, Any]:
        """What the manifest records (the bundle's path, not its content)."""
        return {"ca_bundle": self.ca_bundle, "verify": not self.insecure}

    def __getstate__(self) -> dict[str, Any]:  # the cached context stays behind
        return {"ca_bundle": self.ca_bundle, "insecure": self.insecure}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "ca_bundle", state["ca_bundle"])
        object.__setattr__(self, "insecure", state["insecure"])
