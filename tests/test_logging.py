"""perfkit logs through the standard library: silent as a library, each failed request's reason with -v."""

from __future__ import annotations

import pytest
from conftest import perfkit_cmd


def test_the_library_has_only_a_null_handler():
    import subprocess
    import sys

    code = "import logging, perfkit; print([type(h).__name__ for h in logging.getLogger('perfkit').handlers])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['NullHandler']", out.stdout + out.stderr


@pytest.mark.slow
async def test_dash_v_shows_each_failed_requests_reason_and_the_default_does_not(sim, tmp_path):
    import asyncio

    from perfkit.chaos import ChaosProxy, FaultOptions, parse_fault

    async def cli(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            *perfkit_cmd(*args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        return err.decode()

    async with ChaosProxy(sim.url, [parse_fault("http_503:0.5")], FaultOptions(seed=3)) as proxy:
        base = ["run", "--endpoint", proxy.url, "--requests", "12", "--concurrency", "2", "--output-tokens", "4"]
        base += ["--gpu", "off", "--quiet", "--no-server-metrics"]
        quiet = await cli(*base, "--data-dir", str(tmp_path / "a"))
        loud = await cli(*base, "--data-dir", str(tmp_path / "b"), "-v")
    assert "failed:" not in quiet
    lines = [ln for ln in loud.splitlines() if "failed:" in ln]
    assert lines and all("perfkit: INFO perfkit.client: request" in ln for ln in lines), loud[-2000:]
    assert all("http_status" in ln and "503" in ln for ln in lines), lines
