"""Requests a server refuses at admission (vLLM's --max-num-queued-reqs): recorded as data on the client's side,
mapped from the server's counter, and put side by side in the summary."""

from __future__ import annotations

import asyncio
import io

from rich.console import Console

import perfkit
from perfkit.analysis.serverview import admission_table
from perfkit.cli.tables import print_run
from perfkit.client import Endpoint, PhaseSpec
from perfkit.record import TelemetrySpec, record_run
from perfkit.sim.config import SimConfig
from perfkit.sim.process import SimProcess


def test_refusals_at_admission_are_counted_by_the_server_and_the_client_alike(tmp_path):
    phase = PhaseSpec("load", requests=40, concurrency=6, prompt_tokens=32, output_tokens=32)
    with SimProcess(SimConfig(seed=0, max_num_queued_reqs=2)) as sim:
        res = asyncio.run(
            record_run(
                Endpoint(sim.url),
                [phase],
                tmp_path,
                telemetry=TelemetrySpec(gpu="off", host=False, metrics_interval_s=0.5),
                notify=lambda _m: None,
            )
        )
    with perfkit.open(tmp_path) as cat:
        adm = admission_table(cat, res.run_id)
        errors = cat.sql(
            "SELECT count(*) FILTER (WHERE status = 503), count(*) FILTER (WHERE ok) FROM requests WHERE run_id = $r",
            {"r": res.run_id},
        ).fetchall()[0]
        rate = cat.sql(
            "SELECT sum(value) FROM telemetry WHERE run_id = $r AND metric = 'admission_rejections_per_s'",
            {"r": res.run_id},
        ).fetchall()[0][0]
        buf = io.StringIO()
        print_run(cat, res.run_id, Console(file=buf, width=200))
    n503, ok = errors
    assert n503 > 0 and ok > 0 and n503 + ok == 40, errors  # four of six in flight are refused at a time
    row = adm[adm["reason"] == "max_num_queued_reqs"].iloc[0]
    assert row["server_rejections"] == n503 == row["client_503"], adm  # the final scrape closes the count
    assert row["client_stream_errors"] == 0
    assert set(adm["reason"]) == {"max_num_queued_reqs", "max_num_queued_tokens"}
    assert adm[adm["reason"] == "max_num_queued_tokens"]["server_rejections"].iloc[0] == 0
    assert rate and rate > 0
    out = buf.getvalue()
    assert f"server refused requests at admission: load {n503:,} for max_num_queued_reqs" in out, out
    assert f"(the client recorded {n503:,} HTTP 503)" in out, out
