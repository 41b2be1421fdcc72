"""Exceptions raised by perfkit, and the exit status each gives the command line.

perfkit raises only for misuse (bad configuration, bad input files, a data
directory it cannot read) and for an endpoint that cannot be used at all.  A
misbehaving *endpoint* never raises mid-run: its failures are recorded per
request as data (see :mod:`perfkit.rows`).

The tree, with each class's exit status::

    PerfkitError                 2  misuse (the base)
    ├── ConfigError              2  a scenario, simulator config, CLI value or input file is invalid
    │   └── RunNotFoundError     2  a run id (or data directory) that is not there
    ├── DataError                1  a data directory or Parquet file is damaged or cannot be read
    └── EndpointError            3  the endpoint cannot be used at all (unreachable, no models)
        └── RunFailedError       3  every request of a run failed (its data is kept)

Exit statuses a CI gate can tell apart (:class:`ExitCode`): 0 ok; 1 a check that
failed (a regression, an SLO missed, damaged data); 2 usage; 3 the run could not
be done; 70 an internal error (a bug); 130 and 143 interrupted and terminated.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ConfigError",
    "DataError",
    "DataWarning",
    "EndpointError",
    "ExitCode",
    "PerfkitError",
    "RunFailedError",
    "RunNotFoundError",
]


class ExitCode(IntEnum):
    """The command line's exit statuses."""

    OK = 0
    CHECK_FAILED = 1  # a regression, an SLO missed, damaged data
    USAGE = 2  # a bad flag, value, file or run id
    RUN_FAILED = 3  # the endpoint could not be used, or every request failed
    INTERNAL = 70  # a bug (EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM


class PerfkitError(Exception):
    """Base class of every error perfkit raises on purpose."""

    exit_code: ExitCode = ExitCode.USAGE


class ConfigError(PerfkitError, ValueError):
    """A configuration value is invalid; the message names it and what is allowed."""


class EndpointError(PerfkitError):
    """The endpoint cannot be used at all (before any request is recorded)."""

    exit_code = ExitCode.RUN_FAILED


class RunFailedError(EndpointError):
    """A run was recorded, but every request in it failed; the message says why (its data is kept)."""


class DataError(PerfkitError):
    """A data directory or one of its files is damaged or cannot be read."""

    exit_code = ExitCode.CHECK_FAILED


class DataWarning(UserWarning):
    """Something in a data directory was left out of a query (an unreadable part); the message says what."""


class RunNotFoundError(ConfigError, KeyError):
    """A run id, or a data directory, that is not there."""

    exit_code = ExitCode.USAGE

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
