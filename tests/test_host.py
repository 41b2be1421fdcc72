"""Host sampling: process-tree CPU, event-loop lag."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from perfkit.clock import now_ns
from perfkit.collect.host import HostSource, LoopLagMonitor, _ProcTree


def test_tree_cpu_does_not_jump_when_a_child_starts_or_exits():
    # a child that burned a second of CPU before we first saw it must not count that second
    # in our interval, and its exit must not make the tree's CPU negative
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass\ntime.sleep(0.6)",
        ]
    )
    time.sleep(1.3)  # the child has used ~1 s of CPU and now sleeps
    tree = _ProcTree(os.getpid(), refresh=1)
    first = dict(tree.read(now_ns()))
    time.sleep(0.2)
    cpu = dict(tree.read(now_ns()))["cpu_pct"]
    assert 0 <= cpu < 60, cpu
    child.wait()
    time.sleep(0.2)
    after = dict(tree.read(now_ns()))
    assert 0 <= after["cpu_pct"] < 60 and after["processes"] == first["processes"] - 1, after


async def test_loop_lag_sees_a_blocked_loop():
    mon = LoopLagMonitor(tick_s=0.01).start()
    await asyncio.sleep(0.1)
    mon.take()
    time.sleep(0.08)  # block the loop on purpose
    await asyncio.sleep(0.05)
    lag_max, _, n = mon.take()
    mon.stop()
    assert lag_max >= 60 and n >= 1


def test_host_rows_name_their_scope_and_units():
    src = HostSource(server_pid=os.getppid())
    src.read(now_ns())
    time.sleep(0.05)
    rows = src.read(now_ns())
    scopes = {(r["scope"], r["metric"]) for r in rows}
    assert {
        ("client", "cpu_pct"),
        ("client", "rss_bytes"),
        ("server", "rss_bytes"),
        ("system", "cpu_pct"),
        ("system", "mem_available_bytes"),
    } <= scopes
    assert all(r["pid"] is None for r in rows if r["scope"] == "system")
