"""Kill ``perfkit run`` at random moments and read back what it left: no run may be unreadable.

Prints figures; not a test (``tests/test_crash_safety.py`` runs a short loop).  One ``perfkit sim``
serves every round.  Each round starts ``perfkit run`` (Poisson arrivals, telemetry on) into one shared
data directory and, at a random moment (from just after the process starts, during its imports, to
well into the traffic), sends it SIGKILL, SIGTERM or SIGINT.  After it has gone, the round checks:

- every Parquet part of the run reads back (pyarrow), and DuckDB reads the whole data directory through
  ``perfkit.open`` (the catalog);
- the manifest reads and its status says what happened: ``interrupted`` after SIGTERM/SIGINT,
  ``incomplete`` (``running`` written by a process that is gone) after SIGKILL;
- ``perfkit check`` finds nothing it cannot repair;
- the loss window of a SIGKILL: from the kill to the end of the last request on disk (the writer
  flushes every second, so this should stay near one second while traffic flows).

    python bench/kill_loop.py [--rounds 50] [--max-delay 6] [--seed 0]

The last line reads ``rounds=… unreadable=… loss_window_p50_s=… loss_window_max_s=…``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

import perfkit
from perfkit.clock import now_ns
from perfkit.sim import SimConfig, SimProcess
from perfkit.store.check import check_data
from perfkit.store.manifest import effective_status

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}


def one_round(i: int, sim_url: str, data: Path, rng: np.random.Generator, max_delay: float) -> dict[str, object]:
    """One run killed once; what could be read back."""
    rid = f"kill-{i:03d}"
    sig_name = str(rng.choice(list(SIGNALS)))
    delay = float(rng.uniform(0.05, max_delay))
    cmd = [
        sys.executable,
        "-m",
        "perfkit.cli",
        "run",
        "--endpoint",
        sim_url,
        "--model",
        "perfkit-sim-7b",
        "--rate",
        "30",
        "--duration",
        "60",
        "--prompt-tokens",
        "64",
        "--output-tokens",
        "48",
        "--read-timeout",
        "5",
        "--data-dir",
        str(data),
        "--run-id",
        rid,
        "--gpu",
        "sim",
        "--seed",
        str(i),
    ]
    # as from a terminal: a shell starts background jobs with SIGINT ignored, and a process that inherits
    # that disposition (this script run with `&`) would rightly ignore Ctrl-C until it installs its own handler
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(delay)
    kill_ns = now_ns()
    proc.send_signal(SIGNALS[sig_name])
    problems: list[str] = []
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        problems.append(f"did not exit within 60 s of {sig_name}")
    parts = sorted(data.glob(f"*/run_id={rid}/*.parquet"))
    rows = 0
    last_end = None
    for p in parts:
        try:
            t = pq.read_table(p)
        except Exception as exc:
            problems.append(f"{p.name}: {exc}")
            continue
        if p.parent.parent.name == "requests":
            rows += t.num_rows
            ends = [e for e in t.column("end_ns").to_pylist() if e is not None]
            if ends:
                last_end = max(ends + ([last_end] if last_end else []))
    manifest = data / "runs" / f"run_id={rid}" / "manifest.json"
    status = "no manifest"
    if manifest.exists():
        try:
            status = effective_status(json.loads(manifest.read_text()))
        except ValueError as exc:
            problems.append(f"manifest: {exc}")
    started = manifest.exists()
    if parts and not started:
        problems.append(f"{len(parts)} parts on disk but no manifest")
    expected = {"SIGKILL": "incomplete", "SIGTERM": "interrupted", "SIGINT": "interrupted"}[sig_name]
    if started and status != expected:  # a 60 s run killed within seconds: "complete" means the signal was lost
        problems.append(f"manifest status {status!r} after {sig_name} (expected {expected!r})")
    noisy = "Traceback" in err
    if noisy and started:  # before the run starts, a Ctrl-C during Python's imports prints one: not a data matter
        problems.append("traceback on stderr: " + err.strip().splitlines()[-1])
    loss = (kill_ns - last_end) / 1e9 if sig_name == "SIGKILL" and last_end is not None else None
    return {
        "round": i,
        "signal": sig_name,
        "delay_s": delay,
        "exit": proc.returncode,
        "started": started,
        "status": status,
        "parts": len(parts),
        "requests": rows,
        "loss_window_s": loss,
        "problems": problems,
        "traceback_before_start": noisy and not started,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--max-delay", type=float, default=6.0, help="latest kill, s after the process starts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", help="keep the runs here (default: a temporary directory)")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, SimProcess(SimConfig(seed=1)) as sim:
        data = Path(a.data_dir or tmp)
        data.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(a.rounds):
            r = one_round(i, sim.url, data, rng, a.max_delay)
            rows.append(r)
            loss = f"{r['loss_window_s']:.2f} s" if r["loss_window_s"] is not None else "–"
            print(
                f"round {i:>3} {r['signal']:<7} at {r['delay_s']:4.2f} s  exit {r['exit']:>4}  {r['status']:<12} "
                f"parts {r['parts']:>3}  requests {r['requests']:>4}  loss window {loss}"
                + (f"  PROBLEMS {r['problems']}" if r["problems"] else ""),
                flush=True,
            )
        report = check_data(data)
        with perfkit.open(data) as cat:  # the catalog reads every run back through DuckDB
            n_db = cat.scalar("SELECT count(*) FROM requests")
            by_status = cat.sql("SELECT status, count(*) FROM runs GROUP BY 1 ORDER BY 1").fetchall()
    unreadable = sum(1 for r in rows if r["problems"]) + len(report.unreadable)
    loss = np.array([r["loss_window_s"] for r in rows if r["loss_window_s"] is not None], dtype=float)
    early = sum(1 for r in rows if r["traceback_before_start"])
    print(f"{early} rounds stopped during start-up printed Python's KeyboardInterrupt traceback (no run yet)")
    print(
        f"{time.perf_counter() - t0:.0f} s; DuckDB reads {n_db} requests over {len(rows)} runs; "
        f"statuses {dict(by_status)}; perfkit check: {report.summary()}"
    )
    p50 = f"{np.median(loss):.2f}" if len(loss) else "nan"
    mx = f"{loss.max():.2f}" if len(loss) else "nan"
    print(f"rounds={len(rows)} unreadable={unreadable} loss_window_p50_s={p50} loss_window_max_s={mx}")


if __name__ == "__main__":
    main()
