"""The server's counters are read where the analyses need them: at each phase boundary and after the last request.

With a scrape interval longer than the whole run, the only scrapes are the first (before traffic), one at
the start of each later phase (asked of the scraper process as the phase starts) and the final one after
the last request: the server's view of each phase is bounded by scrapes at its edges, not up to an interval
away from them.
"""

from __future__ import annotations

import asyncio

import numpy as np

import perfkit
from perfkit.client import Endpoint, PhaseSpec
from perfkit.record import TelemetrySpec, record_run


def test_a_scrape_at_each_phase_boundary_and_after_the_last_request(sim, tmp_path):
    phases = [
        PhaseSpec(name, duration_s=1.5, rate=8, arrival="constant", prompt_tokens=16, output_tokens=4)
        for name in ("one", "two", "three")
    ]
    spec = TelemetrySpec(gpu="off", host=False, metrics_interval_s=60)
    res = asyncio.run(record_run(Endpoint(sim.url), phases, tmp_path, telemetry=spec, notify=lambda _m: None))
    with perfkit.open(tmp_path) as cat:
        scrapes = np.array(
            [
                t
                for (t,) in cat.sql(
                    "SELECT DISTINCT t_ns FROM server_metrics WHERE run_id = $r ORDER BY 1", {"r": res.run_id}
                ).fetchall()
            ]  # fmt: skip
        )
        last_end = cat.sql("SELECT max(end_ns) FROM requests WHERE run_id = $r", {"r": res.run_id}).fetchall()[0][0]
    wins = res.manifest["phase_windows"]
    assert len(scrapes) == 4, scrapes  # the first, two boundaries, the final: none from the 60-s interval
    for w in wins[1:]:
        after = scrapes[scrapes >= w["start_ns"]]
        assert len(after) and after[0] - w["start_ns"] < 300e6, (w, scrapes)  # within 0.3 s of the boundary
    assert scrapes[-1] >= last_end  # the final scrape follows the last request
