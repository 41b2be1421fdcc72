"""Every figure of perfkit's HTML reports as a PNG, drawn by a real browser at the size a reader sees it.

    python tools/figure_shots.py REPORT.html [REPORT2.html ...] --out DIR

Each inline ``<svg>`` of each report (run, comparison, trade-off and notebook reports all inline their
figures) is written to its own page and screenshotted by headless Chromium at its own width and height,
as ``DIR/<report stem>-<k>.png``, for a person to look at before a release (issue 24: legible labels, no
overlaps, units on axes, intervals where a figure shows an estimate).  Prints one line per figure.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def size(svg: str) -> tuple[int, int]:
    w = re.search(r'\bwidth="([\d.]+)', svg)
    h = re.search(r'\bheight="([\d.]+)', svg)
    return (int(float(w.group(1))) if w else 800), (int(float(h.group(1))) if h else 500)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("no Chromium found (Debian: apt-get install chromium)")
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for report in a.reports:
            for k, svg in enumerate(SVG.findall(report.read_text(encoding="utf-8"))):
                w, h = size(svg)
                page = Path(tmp) / f"{report.stem}-{k}.html"
                page.write_text(f"<!doctype html><body style='margin:0;background:#fff'>{svg}</body>", encoding="utf-8")
                shot = a.out / f"{report.stem}-{k}.png"
                subprocess.run(
                    [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                     f"--window-size={w},{h}", f"--screenshot={shot}", page.as_uri()],
                    capture_output=True, timeout=120, check=False,
                )  # fmt: skip
                print(f"{shot}  {w}x{h}")


if __name__ == "__main__":
    main()
