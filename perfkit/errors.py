"""Exceptions raised by perfkit.

perfkit raises only for misuse (bad configuration, bad input files, a data
directory it cannot read).  A misbehaving *endpoint* never raises: its
failures are recorded per request as data (see ``perfkit.store.schema``).

The tree::

    PerfkitError
    ├── ConfigError          a scenario, simulator config or CLI value is invalid
    ├── EndpointError        the endpoint cannot be used at all (unreachable, no models)
    └── DataError            a data directory or Parquet file cannot be read
        └── RunNotFoundError a run id that is not in the data directory
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "DataWarning", "EndpointError", "PerfkitError", "RunNotFoundError"]


class PerfkitError(Exception):
    """Base class of every error perfkit raises on purpose."""


class ConfigError(PerfkitError, ValueError):
    """A configuration value is invalid; the message names it and what is allowed."""


class EndpointError(PerfkitError):
    """The endpoint cannot be used at all (before any request is recorded)."""


class DataError(PerfkitError):
    """A data directory or one of its files cannot be read."""


class DataWarning(UserWarning):
    """Something in a data directory was left out of a query (an unreadable part); the message says what."""


class RunNotFoundError(DataError, KeyError):
    """A run id that the data directory does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
