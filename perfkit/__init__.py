"""perfkit: drive production-like traffic at LLM endpoints, record every token, analyse it honestly.

The data flows one way: ``workload`` → ``client`` / ``collect`` → ``store`` →
``query`` → ``analysis`` → ``report``; ``sim`` is the simulated endpoint.

>>> import perfkit
>>> cat = perfkit.open("data")          # doctest: +SKIP
>>> cat.summary().pl()                  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import metadata

from perfkit.errors import (
    ConfigError,
    DataError,
    EndpointError,
    PerfkitError,
    RunNotFoundError,
)
from perfkit.query.catalog import Catalog
from perfkit.query.catalog import open_catalog as open  # noqa: A001 - the public name is perfkit.open

try:
    __version__ = metadata.version("perfkit")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Catalog",
    "ConfigError",
    "DataError",
    "EndpointError",
    "PerfkitError",
    "RunNotFoundError",
    "__version__",
    "open",
]
