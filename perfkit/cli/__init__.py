"""The ``perfkit`` command line: one module per command, and the exit statuses a CI gate can tell apart.

Each command module (``perfkit.cli.run``, ``perfkit.cli.report``, ...) has ``NAME``,
``add_parser(subparsers)`` and ``run(args) -> int``; this module builds the parser from them and maps
what a command raises to an exit status (:class:`perfkit.errors.ExitCode`): 0 ok, 1 a check that failed,
2 usage, 3 the run could not be done, 70 an internal error.  Nothing heavy is imported until a command
runs, so ``perfkit --help`` and ``perfkit --version`` are quick.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import import_module
from types import ModuleType

from perfkit.errors import ExitCode, PerfkitError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = (
    "sim",
    "chaos",
    "run",
    "probe",
    "demo",
    "runs",
    "summary",
    "query",
    "export",
    "import",
    "report",
    "compare",
    "slo",
    "tradeoff",
    "bottleneck",
    "check",
    "rollup",
    "merge",
    "schema",
    "completion",
)
"""The commands, in the order ``perfkit --help`` lists them (each a module of this package)."""

_MODULES = {"import": "import_"}
"""Commands whose module is named otherwise (``import`` is a Python keyword)."""

DESCRIPTION = "Drive production-like traffic at LLM endpoints, record every token, analyse it honestly."


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("perfkit")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class _Version(argparse.Action):
    """``--version``, read only when asked for (the package metadata costs a few ms)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kw: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show perfkit's version and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"perfkit {_version()}")
        parser.exit()


def command_modules() -> dict[str, ModuleType]:
    """Each command's module, by name."""
    return {name: import_module(f"perfkit.cli.{_MODULES.get(name, name)}") for name in COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="perfkit", description=DESCRIPTION)
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules().values():
        sp = module.add_parser(sub)
        sp.set_defaults(func=module.run)
        out = sp.add_argument_group("logging")
        out.add_argument(
            "-v", "--verbose", action="count", default=0, help="say more on stderr: -v each failed request, -vv all"
        )
        out.add_argument(
            "--log-level",
            choices=("debug", "info", "warning", "error"),
            help="the level of perfkit's log on stderr (default warning; -v is info)",
        )
    return p


def setup_logging(verbose: int = 0, level: str | None = None) -> None:
    """perfkit's log on stderr: rich lines on a terminal, plain ``perfkit: LEVEL logger: message`` lines
    elsewhere, secrets redacted.  The library itself only has a ``NullHandler``."""
    import logging

    from perfkit.secrets import redact

    chosen = (level or ("debug" if verbose >= 2 else "info" if verbose == 1 else "warning")).upper()
    root = logging.getLogger("perfkit")
    root.setLevel(chosen)

    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg, record.args = redact(record.getMessage()) or "", None
            return True

    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, markup=False, rich_tracebacks=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("perfkit: %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redact())
    root.handlers = [h for h in root.handlers if isinstance(h, logging.NullHandler)] + [handler]
    root.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    from perfkit.secrets import redact

    setup_logging(args.verbose, args.log_level)
    try:
        return int(args.func(args) or 0)
    except PerfkitError as exc:
        print(f"perfkit {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print(f"perfkit {args.command}: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except asyncio.CancelledError:  # SIGTERM cancels the command's task (see common.run_async)
        print(f"perfkit {args.command}: terminated", file=sys.stderr)
        return int(ExitCode.TERMINATED)
    except BrokenPipeError:  # `perfkit query ... | head`
        return int(ExitCode.OK)
    except Exception:  # a bug: show it, but never with a key in it
        import traceback

        print(redact(traceback.format_exc()), file=sys.stderr)
        print(f"perfkit {args.command}: internal error (a bug; please report it with the lines above)", file=sys.stderr)
        return int(ExitCode.INTERNAL)
