"""Where the time goes, and what limits each phase: a latency decomposition and a named bottleneck.

For each phase of a run this gives

* a **decomposition** of the mean request.  Where the server exposes per-request time histograms
  (vLLM's queue, prefill and decode; SGLang's queue, first token and whole request; TGI's queue,
  inference and whole request: :data:`perfkit.query.telemetry.SERVER_TIMINGS`), the parts are the
  engine's own queue, prefill and decode, and what the client saw beyond the engine's time is its own
  part, ``outside_server`` (the client, the network, the API server or a proxy in front of the
  engine), so that no part is a remainder that hides another.  Without them, the parts come from the
  stream: connection (send to response headers), queue (the server's ``waiting`` gauge by Little's
  law: mean queue length over arrival rate), prefill (what is left of the first-token wait), decode
  (first to last token) and the end of the stream.  ``parts`` names the ones that add up to the
  end-to-end time; the client's schedule lag comes before the send and is outside it;
* a **Little's-law check**: the server's mean ``running + waiting`` against arrival rate × mean
  end-to-end time on the client's clock.  A ratio far from 1 means requests spend time somewhere the
  server does not count (the client, a proxy) or the phase is not steady;
* a **verdict** with its evidence and a confidence.  The rules, in order (the first that holds names
  the phase):

  ============================  ====================================================================
  ``client-bound``              the client moved the measurements (the run summary's rule,
                                :func:`perfkit.query.metrics.fidelity_sql`): its reads waited in
                                their sockets, its closed-loop turnaround was late, it sent fewer
                                requests than scheduled, or it sent late (schedule lag p99 > 10 ms
                                and ≥ 10 % of the mean time to first token: a late send of 10 ms
                                does not limit a request that queues for a second).  A late event
                                loop alone is a note where the kernel stamped the reads
  ``front-end-bound``           requests spent half or more of their time before or beside the
                                engine (the time outside the server's own histograms, or else the
                                wait for response headers) and the server counted fewer than half
                                of the requests the client had in flight (Little's-law ratio < 0.5):
                                a saturated API server, proxy or connection pool
  ``error-bound``               5 % or more of the requests failed (cancelled ones, which the client
                                gave up on, do not count)
  ``power/thermal-throttled``   a GPU throttle reason was active in 30 % or more of the seconds, or
                                the SM clock ran below 85 % of the run's usual clock
  ``KV-capacity-bound``         the server preempted (more than 0.2 preemptions/s) or its KV cache was
                                full (usage ≥ 95 %) in 30 % or more of the seconds
  ``queue-bound``               requests queued (mean waiting ≥ 1) and the queue is half or more of the
                                time to first token
  ``prefill-compute-bound``     the wait for the first token (beyond the queue) is longer than decoding
  ``decode-bound``              otherwise: the time goes to generating tokens
  ============================  ====================================================================

  The confidence is the share of bootstrap replicates (the phase's seconds resampled in blocks of 3)
  that reach the same verdict: how firmly the evidence, not the rule, decides.

Evidence the run did not record (no ``/metrics``, no GPU counters) cannot support a verdict: the
rules that need it are skipped and the evidence says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfkit.analysis.percentiles import circular_block_indices
from perfkit.analysis.serverview import histogram_means
from perfkit.query.catalog import Catalog, check_run_id
from perfkit.query.frames import request_spans, server_timings, telemetry_long
from perfkit.query.metrics import LAG_P99_LIMIT_MS, client_findings, client_note

__all__ = ["VERDICTS", "PhaseAttribution", "attribute", "attribution_table"]

VERDICTS = (
    "client-bound",
    "front-end-bound",
    "error-bound",
    "power/thermal-throttled",
    "KV-capacity-bound",
    "queue-bound",
    "prefill-compute-bound",
    "decode-bound",
)

ERROR_RATE = 0.05
CLIENT_SHARE = 0.1
THROTTLED_SHARE = 0.3
CLOCK_RATIO = 0.85
PREEMPT_PER_S = 0.2
KV_FULL = 0.95
KV_FULL_SHARE = 0.3
QUEUE_MIN = 1.0
QUEUE_SHARE = 0.5
FRONT_END_SHARE = 0.5
LITTLE_LOW = 0.5

_TELEMETRY = (
    "waiting",
    "running",
    "kv_usage",
    "preemptions_per_s",
    "sm_clock_mhz",
    "throttle_thermal",
    "throttle_power",
    "throttle_hw_slowdown",
    "gpu_util_pct",
)


@dataclass
class PhaseAttribution:
    """One phase's decomposition (ms), Little's-law check, verdict, evidence and confidence."""

    phase: str
    verdict: str
    confidence: float
    evidence: dict[str, Any]
    breakdown: dict[str, float]
    little: dict[str, float]
    reasons: list[str] = field(default_factory=list)
    parts: tuple[str, ...] = ("connect", "queue", "prefill", "decode", "stream_end")

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "verdict": self.verdict,
            "confidence": self.confidence,
            "why": "; ".join(self.reasons),
            "parts": " + ".join(self.parts),
            **{f"{k}_ms": v for k, v in self.breakdown.items()},
            **self.little,
            **self.evidence,
        }


def _requests(cat: Catalog, rid: str) -> pd.DataFrame:
    return request_spans(cat, rid)


def _telemetry(cat: Catalog, rid: str) -> pd.DataFrame:
    return telemetry_long(cat, rid, _TELEMETRY)


def _bins(req: pd.DataFrame, tel: pd.DataFrame, start: int, end: int, bin_s: float) -> pd.DataFrame:
    """Per-second evidence of one phase window [start, end) ns."""
    width = int(bin_s * 1e9)
    n = max(1, math.ceil((end - start) / width))
    idx = np.arange(n)
    out = pd.DataFrame(index=idx)
    t = ((req["intended_ns"] - start) // width).clip(0, n - 1)
    g = req.assign(b=t.to_numpy()).groupby("b")
    out["requests"] = g.size()
    # a request the client gave up on (end of run, a user's cancellation) is not the server's failure
    failed = ~req["ok"].astype(bool) & (req["error_kind"] != "cancelled")
    out["errors"] = failed.groupby(t).sum().astype(float)
    ok = req[req["ok"].astype(bool)].assign(b=t[req["ok"].astype(bool)].to_numpy())
    parts = {
        "connect": ("headers_ns", "sent_ns"),
        "first_token_wait": ("first_token_ns", "headers_ns"),
        "decode": ("last_token_ns", "first_token_ns"),
        "ttft": ("first_token_ns", "sent_ns"),
        "e2e": ("end_ns", "sent_ns"),
    }
    for name, (a, z) in parts.items():
        out[f"sum_{name}"] = ((ok[a] - ok[z]) / 1e6).groupby(ok["b"]).sum()
    out["n_ok"] = ok.groupby("b").size()
    out["sum_lag"] = req["schedule_lag_ms"].fillna(0).groupby(t).sum()
    inside = tel[(tel["t_ns"] >= start) & (tel["t_ns"] < end)]
    if not inside.empty:
        tb = (inside["t_ns"] - start) // width
        agg = inside.assign(b=tb.to_numpy()).pivot_table(index="b", columns="metric", values="value", aggfunc="mean")
        out = out.join(agg)
    fill = {"requests": 0, "errors": 0, "n_ok": 0, "sum_lag": 0.0, **{f"sum_{k}": 0.0 for k in parts}}
    return out.fillna(fill)


def _decide(ev: dict[str, Any]) -> tuple[str, list[str]]:
    """The first rule that holds (see the module docstring), and why."""
    why: list[str] = []
    late = ev["schedule_lag_p99_ms"] > LAG_P99_LIMIT_MS and ev["schedule_lag_p99_ms"] >= CLIENT_SHARE * ev["ttft_ms"]
    if late or ev.get("client_other"):
        why = list(ev.get("client_other") or [])
        if late:
            share = ev["schedule_lag_p99_ms"] / ev["ttft_ms"] if ev["ttft_ms"] else math.inf
            why.insert(
                0,
                f"schedule lag p99 {ev['schedule_lag_p99_ms']:.1f} ms (limit {LAG_P99_LIMIT_MS:g}), "
                f"{share:.0%} of the mean time to first token",
            )
        return "client-bound", why
    little = ev.get("little_ratio")
    beside = max(ev.get("outside_share") or 0.0, ev.get("connect_share") or 0.0)
    if little is not None and little < LITTLE_LOW and beside >= FRONT_END_SHARE:
        where = "outside the server's own timing" if ev.get("outside_share") is not None else "waiting for headers"
        return "front-end-bound", [
            f"{beside:.0%} of each request {where}; the server counted {little:.2f} of the requests the "
            f"client had in flight (Little's law; limit {LITTLE_LOW:g}): they wait in front of the engine"
        ]
    if ev["error_rate"] >= ERROR_RATE:
        return "error-bound", [f"{100 * ev['error_rate']:.1f}% of requests failed (≥ {100 * ERROR_RATE:.0f}%)"]
    if ev.get("throttled_share") is not None and (
        ev["throttled_share"] >= THROTTLED_SHARE or (ev.get("clock_ratio") or 1) < CLOCK_RATIO
    ):
        return "power/thermal-throttled", [
            f"throttle reason active {100 * ev['throttled_share']:.0f}% of the "
            f"seconds, SM clock at {100 * (ev.get('clock_ratio') or 1):.0f}% of usual"
        ]
    if ev.get("preemptions_per_s") is not None and (
        ev["preemptions_per_s"] > PREEMPT_PER_S or (ev.get("kv_full_share") or 0) >= KV_FULL_SHARE
    ):
        return "KV-capacity-bound", [
            f"{ev['preemptions_per_s']:.2f} preemptions/s, KV cache ≥ 95% full "
            f"{100 * (ev.get('kv_full_share') or 0):.0f}% of the seconds"
        ]
    if ev.get("waiting") is not None and ev["waiting"] >= QUEUE_MIN and ev["queue_share"] >= QUEUE_SHARE:
        return "queue-bound", [
            f"{ev['waiting']:.1f} requests waiting on average; queue "
            f"{100 * ev['queue_share']:.0f}% of the time to first token"
        ]
    if ev["prefill_ms"] > ev["decode_ms"]:
        why.append(f"first-token wait beyond the queue {ev['prefill_ms']:.0f} ms > decoding {ev['decode_ms']:.0f} ms")
        return "prefill-compute-bound", why
    return "decode-bound", [
        f"decoding {ev['decode_ms']:.0f} ms of {ev['e2e_ms']:.0f} ms end to end; no queue, "
        "preemption, throttle or client lag"
    ]


def _finite(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


def _mean(x: np.ndarray) -> float:
    """The mean of the readings that exist (NaN where none does)."""
    f = _finite(x)
    return float(f.mean()) if len(f) else math.nan


def _evidence(
    b: Mapping[str, np.ndarray],
    lag_p99: float,
    bin_s: float,
    clock_ref: float | None,
    client_other: list[str],
    server: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Phase evidence from per-second bins ``b`` (columns as arrays: request sums, telemetry means), the
    schedule lag p99 (ms), the client's other evidence that it moved the measurements (in words) and the
    server's own mean times per part (ms, :func:`_server_means`).  Arrays, not a frame: the bootstrap calls
    this a few hundred times a phase."""
    server = server or {}
    req = float(np.nansum(b["requests"]))
    n_ok = float(np.nansum(b["n_ok"]))
    means = {
        k: float(np.nansum(b[f"sum_{k}"]) / n_ok) if n_ok else 0.0
        for k in ("connect", "first_token_wait", "decode", "ttft", "e2e")
    }
    rate = req / (len(b["requests"]) * bin_s)
    ev: dict[str, Any] = {
        "error_rate": float(np.nansum(b["errors"]) / req) if req else 0.0,
        "schedule_lag_p99_ms": lag_p99,
        "schedule_lag_mean_ms": float(np.nansum(b["sum_lag"]) / req) if req else 0.0,
        "client_other": client_other,
    }
    flags = [b[c] for c in ("throttle_thermal", "throttle_power", "throttle_hw_slowdown") if c in b]
    if flags and any(np.isfinite(f).any() for f in flags):
        ev["throttled_share"] = float((np.nan_to_num(np.vstack(flags)).max(axis=0) > 0.5).mean())
        clock = _finite(b["sm_clock_mhz"]) if "sm_clock_mhz" in b else np.empty(0)
        if len(clock) and clock_ref:
            ev["clock_ratio"] = float(np.median(clock) / clock_ref)
    if "preemptions_per_s" in b and np.isfinite(b["preemptions_per_s"]).any():
        ev["preemptions_per_s"] = _mean(b["preemptions_per_s"])
        ev["kv_full_share"] = float((np.nan_to_num(b["kv_usage"]) >= KV_FULL).mean()) if "kv_usage" in b else math.nan
    if "waiting" in b and np.isfinite(b["waiting"]).any():
        ev["waiting"] = _mean(b["waiting"])
        queue_ms = 1000 * ev["waiting"] / rate if rate > 0 else 0.0
    else:
        queue_ms = 0.0
    wait = means["first_token_wait"]
    if server:
        ev["queue_ms"] = server.get("queue", 0.0)
        if "prefill" in server:
            ev["prefill_ms"] = server["prefill"]
        elif "ttft" in server:
            ev["prefill_ms"] = max(server["ttft"] - ev["queue_ms"], 0.0)
        ev["decode_ms"] = server.get("decode", means["decode"])
        if "e2e" in server and "ttft" in server and "decode" not in server:
            ev["decode_ms"] = max(server["e2e"] - server["ttft"], 0.0)
        if "prefill_ms" not in ev:  # TGI: the engine's whole time less its queue and the stream's decoding
            inside = server.get("inference", server.get("e2e", 0.0) - ev["queue_ms"])
            ev["prefill_ms"] = max(inside - ev["decode_ms"], 0.0)
        engine = server.get("e2e", ev["queue_ms"] + ev["prefill_ms"] + ev["decode_ms"])
        ev["outside_ms"] = means["e2e"] - engine
        ev["outside_share"] = max(ev["outside_ms"], 0.0) / means["e2e"] if means["e2e"] > 0 else 0.0
    else:
        ev["queue_ms"] = min(queue_ms, wait)
        ev["prefill_ms"] = max(wait - ev["queue_ms"], 0.0)
        ev["decode_ms"] = means["decode"]
    ev["queue_share"] = ev["queue_ms"] / means["ttft"] if means["ttft"] > 0 else 0.0
    ev["connect_share"] = means["connect"] / means["e2e"] if means["e2e"] > 0 else 0.0
    if "running" in b and "waiting" in b and np.isfinite(b["running"]).any() and np.isfinite(b["waiting"]).any():
        lam_w = rate * means["e2e"] / 1000
        if lam_w > 0:
            ev["little_ratio"] = _mean(b["running"] + b["waiting"]) / lam_w
    ev["e2e_ms"] = means["e2e"]
    ev["ttft_ms"] = means["ttft"]
    return ev


def _server_means(timings: pd.DataFrame, start: int, end: int) -> dict[str, float]:
    """The server's own mean times per part (ms) over a phase, where they can split its requests (a queue, a
    prefill or a whole request); else none."""
    out = histogram_means(timings, start, end)
    return out if ({"queue", "prefill", "e2e"} & set(out)) else {}


def attribute(
    cat: Catalog, run_id: str, *, bin_s: float = 1.0, n_boot: int = 200, seed: int = 0
) -> list[PhaseAttribution]:
    """The decomposition, Little's-law check and bottleneck verdict of each non-warm-up phase of a run.

    Parameters
    ----------
    cat : Catalog
    run_id : str
    bin_s : float
        Width of the evidence bins, s.
    n_boot : int
        Bootstrap replicates for the confidence.
    seed : int
    """
    run_id = cat.require_run(run_id)
    rid = check_run_id(run_id)
    req = _requests(cat, rid)
    tel = _telemetry(cat, rid)
    timings = server_timings(cat, rid)
    clocks = tel.loc[tel["metric"] == "sm_clock_mhz", "value"]
    clock_ref = float(np.quantile(clocks, 0.95)) if len(clocks) else None
    order = req.groupby("phase", sort=False)["phase_index"].min().sort_values()
    starts = req.groupby("phase")["intended_ns"].min()
    rng = np.random.default_rng(seed)
    fidelity = {str(rec["phase"]): rec for rec in cat.fidelity(run_id).df().to_dict("records")}
    out = []
    phases = list(order.index)
    for i, phase in enumerate(phases):
        r = req[req["phase"] == phase]
        start = int(starts[phase])
        end = int(starts[phases[i + 1]]) if i + 1 < len(phases) else int(r["end_ns"].max())
        ok = r[r["ok"].astype(bool)]
        rate = len(r) / max((end - start) / 1e9, 1e-9)

        def ms(a: str, z: str, ok: pd.DataFrame = ok) -> float:
            return float(((ok[a] - ok[z]) / 1e6).mean()) if len(ok) else 0.0

        means = {
            "schedule_lag": float(r["schedule_lag_ms"].mean()) if len(r) else 0.0,
            "connect": ms("headers_ns", "sent_ns"),
            "decode": ms("last_token_ns", "first_token_ns"),
            "stream_end": ms("end_ns", "last_token_ns"),
            "e2e": ms("end_ns", "sent_ns"),
        }
        b = _bins(r, tel, start, end, bin_s)
        width = int(bin_s * 1e9)
        lag_bin = ((r["intended_ns"] - start) // width).clip(0, len(b) - 1).to_numpy()
        lag_vals = r["schedule_lag_ms"].to_numpy(float)
        by_bin = [lag_vals[(lag_bin == k) & np.isfinite(lag_vals)] for k in range(len(b))]
        all_lag = lag_vals[np.isfinite(lag_vals)]
        lag_p99 = float(np.quantile(all_lag, 0.99)) if len(all_lag) else 0.0
        fid = fidelity.get(str(phase), {})
        other = [words for kind, words in client_findings(fid) if kind != "schedule"]
        server = _server_means(timings, start, end)
        cols = {c: b[c].to_numpy(dtype=float) for c in b.columns}
        ev = _evidence(cols, lag_p99, bin_s, clock_ref, other, server)
        verdict, why = _decide(ev)
        note = client_note(fid)
        # confidence: resample the phase's seconds in blocks (with their requests), recompute evidence and verdict
        agree = 0
        reps = circular_block_indices(len(b), min(3, len(b)), rng, n_boot) if n_boot else np.empty((0, 0), int)
        for row in reps:
            lags = np.concatenate([by_bin[k] for k in row])
            agree += (
                _decide(
                    _evidence(
                        {c: v[row] for c, v in cols.items()},
                        float(np.quantile(lags, 0.99)) if len(lags) else 0.0,
                        bin_s,
                        clock_ref,
                        other,
                        server,
                    )
                )[0]
                == verdict
            )
        conf = agree / n_boot if n_boot else math.nan
        breakdown = {
            "schedule_lag": means["schedule_lag"],
            "connect": means["connect"],
            "queue": ev["queue_ms"],
            "prefill": ev["prefill_ms"],
            "decode": ev["decode_ms"],
            "stream_end": means["stream_end"],
            "e2e": means["e2e"],
        }
        parts: tuple[str, ...] = ("connect", "queue", "prefill", "decode", "stream_end")
        if server:
            breakdown["outside_server"] = ev["outside_ms"]
            parts = ("queue", "prefill", "decode", "outside_server")
        little: dict[str, float] = {"arrival_rate_rps": rate}
        if {"running", "waiting"} <= set(b.columns) and b[["running", "waiting"]].notna().any().all():
            l_server = float((b["running"] + b["waiting"]).mean())
            lam_w = rate * means["e2e"] / 1000
            little.update(L_server=l_server, lambda_W=lam_w, little_ratio=l_server / lam_w if lam_w else math.nan)
        evidence = {
            k: v
            for k, v in ev.items()
            if k
            not in (
                "queue_ms",
                "prefill_ms",
                "decode_ms",
                "e2e_ms",
                "ttft_ms",
                "schedule_lag_mean_ms",
                "client_other",
                "outside_ms",
                "little_ratio",
            )
        }
        evidence["timing_source"] = "server histograms" if server else "client stream and Little's law"
        for k in ("loop_lag_ms", "read_delay_ms", "turnaround_p99_ms"):
            v = fid.get(k)
            if v is not None and v == v:
                evidence[f"client_{k}"] = float(v)
        if note:
            evidence["client_note"] = note
        out.append(PhaseAttribution(str(phase), verdict, conf, evidence, breakdown, little, why, parts))
    return out


def attribution_table(cat: Catalog, run_id: str, **kw: Any) -> pd.DataFrame:
    """:func:`attribute` as a frame: one row per phase, verdict, confidence, why, decomposition (ms), evidence."""
    return pd.DataFrame([a.to_dict() for a in attribute(cat, run_id, **kw)])
