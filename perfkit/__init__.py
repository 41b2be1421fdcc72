"""perfkit: drive production-like traffic at LLM endpoints, record every token, analyse it honestly.

The data flows one way: ``workload`` → ``client`` / ``collect`` → ``store`` →
``query`` → ``analysis`` → ``report``; ``sim`` is the simulated endpoint, and
``record`` composes a run (docs/architecture.md).

>>> import perfkit
>>> cat = perfkit.open("data")          # doctest: +SKIP
>>> cat.summary().pl()                  # doctest: +SKIP

Importing :mod:`perfkit` is cheap: the names below are loaded on first use (PEP 562), so
``perfkit --version`` imports neither DuckDB nor pyarrow.
"""

from __future__ import annotations

import logging
import typing
from importlib import import_module
from typing import Any

if typing.TYPE_CHECKING:  # for type checkers and IDEs; at run time these load on first use
    from perfkit.errors import ConfigError, DataError, EndpointError, PerfkitError, RunFailedError, RunNotFoundError
    from perfkit.query.catalog import Catalog
    from perfkit.query.catalog import open_catalog as open
    from perfkit.query.scan import read_arrow, read_pandas, scan

__all__ = [
    "Catalog",
    "ConfigError",
    "DataError",
    "EndpointError",
    "PerfkitError",
    "RunFailedError",
    "RunNotFoundError",
    "__version__",
    "open",
    "read_arrow",
    "read_pandas",
    "scan",
]

# a library says what happens through logging and never configures it; the command line does (-v)
logging.getLogger("perfkit").addHandler(logging.NullHandler())

_LAZY: dict[str, tuple[str, str]] = {
    "Catalog": ("perfkit.query.catalog", "Catalog"),
    "open": ("perfkit.query.catalog", "open_catalog"),
    "scan": ("perfkit.query.scan", "scan"),
    "read_pandas": ("perfkit.query.scan", "read_pandas"),
    "read_arrow": ("perfkit.query.scan", "read_arrow"),
    "ConfigError": ("perfkit.errors", "ConfigError"),
    "DataError": ("perfkit.errors", "DataError"),
    "EndpointError": ("perfkit.errors", "EndpointError"),
    "PerfkitError": ("perfkit.errors", "PerfkitError"),
    "RunFailedError": ("perfkit.errors", "RunFailedError"),
    "RunNotFoundError": ("perfkit.errors", "RunNotFoundError"),
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib import metadata

        try:
            version = metadata.version("perfkit")
        except metadata.PackageNotFoundError:  # running from a source tree that is not installed
            version = "0.0.0+unknown"
        globals()["__version__"] = version
        return version
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'perfkit' has no attribute {name!r}")
    value = getattr(import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
