"""Does the bottleneck verdict name the limit a simulator scenario was built to have?

Prints figures; not a test.  For each preset of :mod:`perfkit.bottlenecks` (queue-bound at 40 req/s, a
KV cache too small for the load, the GPU clock throttled to a third, a client whose event loop is blocked
40 ms in every 100, 6,000-token prompts, 30 % of requests answered 503, and a healthy control) and each seed,
one run against ``perfkit sim`` over real
sockets; :func:`perfkit.analysis.attribute` names the load phase's bottleneck.  The table counts truth
(rows) against verdict (columns).

    python bench/attribution.py [--seeds 8] [--duration 10]

The last line reads ``accuracy=…`` (share of runs whose verdict is the preset's).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pandas as pd

import perfkit
from perfkit.analysis.attribution import attribute
from perfkit.bottlenecks import BOTTLENECK_PRESETS, run_preset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10.0, help="load phase, s")
    a = ap.parse_args()
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for seed in range(a.seeds):
            for name in BOTTLENECK_PRESETS:
                rid = run_preset(name, d, seed=seed, duration_s=a.duration)
                with perfkit.open(d) as cat:
                    res = [p for p in attribute(cat, rid) if p.phase == "load"][0]
                rows.append({"truth": name, "verdict": res.verdict, "confidence": res.confidence, "seed": seed})
                print(
                    f"seed {seed} {name:>24}: {res.verdict:<24} confidence {res.confidence:.2f}  "
                    f"({'; '.join(res.reasons)})",
                    flush=True,
                )
    df = pd.DataFrame(rows)
    table = pd.crosstab(df["truth"], df["verdict"]).reindex(index=list(BOTTLENECK_PRESETS), fill_value=0)
    with pd.option_context("display.width", 200):
        print(table.to_string())
    right = df["truth"] == df["verdict"]
    print(
        f"mean confidence when right {df.loc[right, 'confidence'].mean():.2f}, when wrong "
        f"{df.loc[~right, 'confidence'].mean() if (~right).any() else float('nan'):.2f}; "
        f"{len(df)} runs in {time.perf_counter() - t0:.0f} s"
    )
    print(f"accuracy={right.mean():.3f}")


if __name__ == "__main__":
    main()
