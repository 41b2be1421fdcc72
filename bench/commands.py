"""How long each analysis command takes on the demo's runs.  Prints figures; not a test.

Makes (once, in ``--data-dir``, default a temporary folder) two demo runs and, with ``--variants``, the demo's
three variant sweeps, then times each command as a user runs it, in its own process (start-up included):
``report`` (HTML, PDF, figures), ``compare`` of the two runs, ``slo``, ``bottleneck``, ``summary``,
``tradeoff`` (with ``--variants``) and, with ``--notebooks``, each notebook executed and rendered.

    python bench/commands.py [--data-dir D] [--variants] [--notebooks] [--scale 1.0]

The last line reads ``report_s=… compare_s=… slo_s=… bottleneck_s=…``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _perfkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "perfkit.cli", *args]


def timed(cmd: list[str]) -> tuple[float, int, str]:
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    return time.perf_counter() - t, out.returncode, (out.stderr or out.stdout)[-300:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--variants", action="store_true", help="also the variant sweeps and `perfkit tradeoff`")
    ap.add_argument("--notebooks", action="store_true", help="also execute and render each notebook")
    ap.add_argument("--scale", type=float, default=1.0, help="the demo runs' --scale")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="perfkit-commands-")
    data = Path(a.data_dir or Path(tmp) / "data")
    out = Path(tmp) / "reports"
    rows: list[tuple[str, float, int, str]] = []
    existing = sorted(data.glob("runs/run_id=*")) if data.exists() else []
    if len(existing) < 2:
        for seed in (0, 1):
            cmd = ["demo", "--data-dir", str(data), "--reports-dir", str(out), "--seed", str(seed)]
            cmd += ["--scale", str(a.scale)] + (["--variants"] if a.variants and seed == 1 else [])
            rows.append(
                (f"demo (seed {seed}{', variants' if a.variants and seed == 1 else ''})", *timed(_perfkit(*cmd)))
            )
    import perfkit

    with perfkit.open(data) as cat:
        plain = list(cat.sql("SELECT run_id FROM runs WHERE variant IS NULL ORDER BY started_utc").df()["run_id"])
    a_run, b_run = plain[-2], plain[-1]
    d = ["--data-dir", str(data)]
    cmds = {
        "report": ["report", b_run, *d, "--out", str(out)],
        "compare": ["compare", a_run, b_run, *d],
        "slo": ["slo", b_run, *d],
        "bottleneck": ["bottleneck", b_run, *d],
        "summary": ["summary", b_run, *d],
    }
    if a.variants:
        cmds["tradeoff"] = ["tradeoff", *d, "--out", str(out)]
    for name, cmd in cmds.items():
        rows.append((name, *timed(_perfkit(*cmd))))
    if a.notebooks:
        for nb in sorted(Path(__file__).resolve().parents[1].glob("notebooks/*.ipynb")):
            cmd = ["report", "--notebook", str(nb), "-p", f"data_dir={data}", "--out", str(out / "nb"), "--no-pdf"]
            rows.append((f"notebook {nb.stem}", *timed(_perfkit(*cmd))))
    print(f"{os.cpu_count()} CPUs; demo runs at --scale {a.scale:g}; wall time of each command in its own process")
    print(f"{'command':<42} {'s':>7} {'exit':>5}")
    for name, s, code, tail in rows:
        print(f"{name:<42} {s:7.1f} {code:>5}" + ("" if code in (0, 1) else f"  {tail.strip()[-120:]}"))
    got = {name: s for name, s, _, _ in rows}
    print(" ".join(f"{k}_s={got[k]:.1f}" for k in ("report", "compare", "slo", "bottleneck", "tradeoff") if k in got))


if __name__ == "__main__":
    main()
