"""The server's prefix cache between runs: salted prompts keep a second run from reading the first's from it, the
summary prints the hit rate, and compare warns when two runs' hit rates differ (issue 23)."""

from __future__ import annotations

import subprocess

import pytest
from conftest import perfkit_cmd

import perfkit
from perfkit.analysis import prefix_cache_table
from perfkit.sim.engine import PrefixCache


def test_the_simulators_prefix_cache_counts_leading_blocks_seen_before():
    pc = PrefixCache(block=4, capacity=100)
    words = [f"w{i}" for i in range(10)]
    assert pc.lookup(words) == 0
    assert pc.lookup(words) == 8  # two whole blocks of four; the last two words make no block
    assert pc.lookup(["x", *words]) == 0  # a different first word: nothing after it is a prefix seen before
    assert (pc.queries, pc.hits) == (31, 8)


@pytest.mark.slow
def test_two_default_runs_do_not_share_the_cache_and_runs_of_the_same_prompts_are_flagged(fresh_sim, tmp_path):
    sim = fresh_sim(seed=5)
    d = ["--data-dir", str(tmp_path)]

    def run(rid: str, *extra: str) -> str:
        args = ["run", "--endpoint", sim.url, "--rate", "10", "--duration", "3", "--output-tokens", "8", *d]
        out = subprocess.run(
            perfkit_cmd(*args, "--run-id", rid, "--gpu", "off", *extra), capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    run("a1")
    second = run("a2")
    assert "server prefix cache, prompt tokens found in it: main" in second
    run("b1", "--same-prompts")
    run("b2", "--same-prompts")
    with perfkit.open(tmp_path) as cat:
        rate = {r: float(prefix_cache_table(cat, r)["hit_rate"].iloc[0]) for r in ("a1", "a2", "b1", "b2")}
    assert rate["a2"] <= rate["a1"] + 0.01, rate  # salted per run: nothing carried over
    assert rate["b2"] > 0.9, rate  # the same prompts again: read from the cache
    cmp_ = subprocess.run(perfkit_cmd("compare", "b1", "b2", *d), capture_output=True, text=True)
    assert "warning: the server's prefix cache held" in cmp_.stdout, cmp_.stdout[-1500:]
    quiet = subprocess.run(perfkit_cmd("compare", "a1", "a2", *d), capture_output=True, text=True)
    assert "prefix cache" not in quiet.stdout
