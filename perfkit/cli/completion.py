"""``perfkit completion``: a shell completion script, generated from the parser itself (shtab)."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "completion"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="print a bash or zsh completion script for perfkit",
        description="Completion of every command and option, made from perfkit's own parser. Install it with one "
        "command: bash: perfkit completion bash > ~/.local/share/bash-completion/completions/perfkit ; zsh: "
        'perfkit completion zsh > "${fpath[1]}/_perfkit" (then start a new shell).',
    )
    p.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")
    return p


def run(a: argparse.Namespace) -> int:
    import shtab

    from perfkit.cli import build_parser

    print(shtab.complete(build_parser(), shell=a.shell))
    return 0
