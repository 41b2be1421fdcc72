"""Shared fixtures: a simulated endpoint in its own process, temporary data directories."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from perfkit.sim import SimConfig, SimProcess

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items) -> None:
    """Give each end-to-end (``slow``) test one more try when it fails.

    These tests measure real timing over real sockets on the machine that runs them, and some assert
    statistical properties (an interval covers, a comparison does not flag). On a shared VM the CPU stolen
    from the simulator or the client differs from one run to the next, so a rare failure of one of them says
    more about the machine than about the code. A second failure in a row still fails the suite, and every
    retry is listed in the summary (``RERUN``). Tests of pure functions get no retry.
    """
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=1))


@pytest.fixture(scope="session")
def sim() -> SimProcess:
    """One simulator for read-only use (no events), shared by the session."""
    with SimProcess(SimConfig(seed=1)) as s:
        yield s


@pytest.fixture
def fresh_sim():
    """A factory of simulators with their own config; each is stopped after the test."""
    started: list[SimProcess] = []

    def make(**kw) -> SimProcess:
        s = SimProcess(SimConfig(**kw)).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
async def loop_guard():
    """Fail the test if one callback blocks its event loop for more than 100 ms.

    asyncio's debug mode reports slow callbacks through the ``asyncio``
    logger; this collects those reports and fails at teardown.
    """
    import logging

    slow: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if "took" in msg and "seconds" in msg:
                slow.append(msg)

    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.1
    handler = Catch()
    log = logging.getLogger("asyncio")
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    yield
    log.removeHandler(handler)
    loop.set_debug(False)
    assert not slow, f"event loop blocked: {slow}"


def perfkit_cmd(*args: str) -> list[str]:
    """The command line of the installed CLI, run with this interpreter."""
    return [sys.executable, "-m", "perfkit.cli", *args]
