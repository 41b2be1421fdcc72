"""A server that refuses perfkit's non-standard fields: the run's first request finds out, and the run goes on.

The simulator set to answer ``ignore_eos`` with HTTP 400 (as the OpenAI API answers fields it does not know)
stands for such a server: with the preflight the run has no error, the manifest names what was dropped and
the endpoint's settings say so; without it every request fails, recorded as data; against the ordinary
simulator no preflight request is sent at all.
"""

from __future__ import annotations

import asyncio

import perfkit
from perfkit.client import Endpoint, PhaseSpec
from perfkit.record import TelemetrySpec, record_run
from perfkit.record.probe import preflight

PHASE = [PhaseSpec("main", requests=6, concurrency=2, prompt_tokens=16, output_tokens=8)]
TELE = TelemetrySpec(gpu="off", host=False)


def _run(url: str, d, **kw):
    notes: list[str] = []
    res = asyncio.run(record_run(Endpoint(url), PHASE, d, telemetry=TELE, notify=notes.append, **kw))
    with perfkit.open(d) as cat:
        errors = cat.sql("SELECT count(*) FILTER (WHERE NOT ok) FROM requests WHERE run_id = $r",
                         {"r": res.run_id}).fetchall()[0][0]  # fmt: skip
    return res, errors, notes


def test_a_refused_field_is_dropped_before_the_run_and_named(fresh_sim, tmp_path):
    sim = fresh_sim(reject_fields=("ignore_eos",))
    res, errors, notes = _run(sim.url, tmp_path / "a")
    m = res.manifest
    assert errors == 0 and res.progress.done == 6
    assert m["preflight"]["dropped"] == ["ignore_eos/min_tokens"] and m["preflight"]["requests"] == 2
    assert m["endpoint"]["ignore_eos"] is False and m["endpoint"]["continuous_usage"] is True
    assert any("refused ignore_eos/min_tokens" in n for n in notes)
    res, errors, _ = _run(sim.url, tmp_path / "b", preflight=False)
    assert errors == 6 and res.manifest["preflight"] == {"skipped": "turned off (--no-preflight)"}


def test_both_fields_refused_are_both_dropped(fresh_sim):
    from perfkit.client.fasthttp import FastTransport

    sim = fresh_sim(reject_fields=("ignore_eos", "stream_options.continuous_usage_stats"))

    async def go():
        t = FastTransport()
        try:
            return await preflight(Endpoint(sim.url, model="perfkit-sim-7b"), t)
        finally:
            await t.close()

    accepted, note = asyncio.run(go())
    assert not accepted.ignore_eos and not accepted.continuous_usage
    assert note["dropped"] == ["ignore_eos/min_tokens", "continuous usage"] and note["requests"] == 4


def test_the_ordinary_simulator_gets_no_preflight_request(sim, tmp_path):
    res, errors, notes = _run(sim.url, tmp_path)
    assert errors == 0 and "simulator" in res.manifest["preflight"]["skipped"] and not notes
