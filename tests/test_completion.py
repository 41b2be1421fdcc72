"""Shell completion made from the parser: a real bash completes commands and options, a real zsh loads it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import perfkit_cmd


def script(shell: str) -> str:
    out = subprocess.run(perfkit_cmd("completion", shell), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_bash_completes_commands_and_each_commands_options(tmp_path):
    path = tmp_path / "perfkit.bash"
    path.write_text(script("bash"))

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        body = (
            f"source {path}\n"
            "fn=$(complete -p perfkit | sed -E 's/.*-F ([^ ]+) .*/\\1/')\n"
            f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n"
            '"$fn" perfkit "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
            'printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        out = subprocess.run(["bash", "-c", body], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert {"report", "run", "runs"} <= set(complete("perfkit", "r"))
    assert "import" in complete("perfkit", "im")
    assert {"--no-pdf", "--no-figures"} <= set(complete("perfkit", "report", "--no"))
    assert {"vllm-bench", "guidellm", "aiperf"} <= set(complete("perfkit", "import", ""))


@pytest.mark.skipif(
    shutil.which("zsh") is None and os.environ.get("PERFKIT_REQUIRE_ZSH") != "1", reason="no zsh on this machine"
)
def test_zsh_loads_the_script_as_perfkits_completion(tmp_path):
    fdir = tmp_path / "functions"
    fdir.mkdir()
    (fdir / "_perfkit").write_text(script("zsh"))
    assert subprocess.run(["zsh", "-n", str(fdir / "_perfkit")], capture_output=True, timeout=60).returncode == 0
    body = (
        f"fpath=({fdir} $fpath); autoload -U compinit; compinit -u -d {tmp_path / 'zcompdump'}; print $_comps[perfkit]"
    )
    out = subprocess.run(["zsh", "-f", "-c", body], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "_perfkit", (out.stdout, out.stderr)


def test_an_unknown_shell_is_a_usage_error():
    out = subprocess.run([sys.executable, "-m", "perfkit.cli", "completion", "fish"], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice" in out.stderr
