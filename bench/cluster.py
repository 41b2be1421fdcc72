"""Load from several workers: local processes (``--workers``) against Ray actors on three nodes.  Prints figures.

One Poisson schedule (``--rate`` req/s for ``--duration-s``, seed 3) is sent at the ground-truth server
(``perfkit.sim.exact``: TTFT 50 ms, then a chunk every 10 ms, 16 chunks) by 1, 2 and 3 workers, first as
``--workers N`` processes on this host, then as ``--cluster ray --workers N`` actors on a three-node Ray cluster
started here (Ray's cluster utilities, one CPU each, on loopback 127.0.0.2), all in one sitting.  For each it
prints:

* the requests sent against those scheduled, the achieved rate against the requested one;
* schedule lag (sent minus intended) p50 and p99, ms: how late the workers were to their own schedule;
* TTFT error p50 and p99, ms: perfkit's TTFT minus the server's own (first chunk written minus request
  received), request by request;
* for Ray, the largest clock-offset uncertainty of the nodes, us.

    python bench/cluster.py [--rate 120] [--duration-s 20] [--levels 1,2,3]

The last line reads ``ray3 lag_p99_ms=... ttft_err_p99_ms=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

import numpy as np

import perfkit
from perfkit.client import Endpoint, PhaseSpec
from perfkit.client.endpoint import request_uuid
from perfkit.record import TelemetrySpec, record_run
from perfkit.sim.exact import ExactServerProcess

TTFT_MS, ITL_MS, TOKENS, SEED = 50.0, 10.0, 16, 3


def measure(url: str, tmp: Path, rate: float, duration_s: float, workers: int, cluster: str | None) -> dict:
    phase = PhaseSpec(
        "main", duration_s=duration_s, rate=rate, arrival="poisson", prompt_tokens=16, output_tokens=TOKENS
    )
    spec = TelemetrySpec(gpu="off", server_metrics=False)
    res = asyncio.run(
        record_run(
            Endpoint(url, model="exact"),
            [phase],
            tmp,
            seed=SEED,
            telemetry=spec,
            workers=workers,
            cluster=cluster,
            drain_timeout_s=30,
        )
    )
    with perfkit.open(tmp) as cat:
        reqs = cat.sql(
            "SELECT request_id, intended_ns, sent_ns, first_token_ns, ok FROM requests WHERE run_id = $r",
            params={"r": res.run_id},
        ).df()
        fid = cat.fidelity(res.run_id).df().iloc[0].to_dict()
    return {"run_id": res.run_id, "reqs": reqs, "fid": fid, "nodes": res.manifest.get("nodes") or []}


def scheduled(rate: float, duration_s: float) -> int:
    spec = PhaseSpec("main", duration_s=duration_s, rate=rate, arrival="poisson")
    n = 0
    for off in spec.arrivals().offsets_ns(np.random.default_rng([SEED, 0, 1])):
        if off >= duration_s * 1e9:
            break
        n += 1
    return n


def ttft_errors(run_id: str, reqs, truth) -> np.ndarray:
    index = {tag: i for i, tag in enumerate(truth.tags)}
    out = []
    for r in reqs.itertuples():
        i = index.get(request_uuid(run_id, r.request_id))
        if i is None or not r.ok:
            continue
        w = truth.chunks(i)
        if len(w):
            out.append((r.first_token_ns - r.sent_ns - (w[0] - truth.recv_ns[i])) / 1e6)
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=120.0)
    ap.add_argument("--duration-s", type=float, default=20.0)
    ap.add_argument("--levels", default="1,2,3")
    a = ap.parse_args()
    levels = [int(x) for x in a.levels.split(",")]
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.2", "include_dashboard": False}
    )
    for _ in range(2):
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.2")
    cluster.wait_for_nodes()
    os.environ["RAY_ADDRESS"] = cluster.address
    n_sched = scheduled(a.rate, a.duration_s)
    print(f"{os.cpu_count()} CPUs; Poisson {a.rate:g} req/s for {a.duration_s:g} s: {n_sched} requests scheduled")
    print(
        f"{'mode':<10} {'sent':>6} {'achieved/s':>10} {'lag p50':>8} {'lag p99':>8} {'TTFT err p50':>12} "
        f"{'TTFT err p99':>12} {'offset ± (us)':>13}"
    )
    last = ""
    try:
        with ExactServerProcess(TTFT_MS, ITL_MS, TOKENS) as server:
            for mode in os.environ.get("PK_MODES", "workers,ray").split(","):
                for k in levels:
                    with tempfile.TemporaryDirectory() as tmp:
                        got = measure(server.url, Path(tmp), a.rate, a.duration_s, k, "ray" if mode == "ray" else None)
                        truth = server.dump(Path(tmp) / "truth.npz")
                    reqs, fid = got["reqs"], got["fid"]
                    lag = ((reqs["sent_ns"] - reqs["intended_ns"]) / 1e6).to_numpy()
                    err = ttft_errors(got["run_id"], reqs, truth)
                    unc = max((n["offset_uncertainty_ns"] for n in got["nodes"]), default=None)
                    name = f"{mode}{k}"
                    lag50, lag99, err50, err99 = (
                        np.percentile(x, q) for x, q in ((lag, 50), (lag, 99), (err, 50), (err, 99))
                    )
                    print(
                        f"{name:<10} {len(reqs):>6} {fid['achieved_rate_rps']:>10.1f} {lag50:>8.2f} {lag99:>8.2f} "
                        f"{err50:>+12.2f} {err99:>+12.2f} {(f'{unc / 1e3:.0f}' if unc is not None else '-'):>13}",
                        flush=True,
                    )
                    last = (
                        f"{name} lag_p99_ms={np.percentile(lag, 99):.2f} ttft_err_p99_ms={np.percentile(err, 99):.2f}"
                    )
    finally:
        import ray

        ray.shutdown()  # this process is the runs' driver: leave the cluster before it is taken down
        cluster.shutdown()
    print(last)


if __name__ == "__main__":
    main()
