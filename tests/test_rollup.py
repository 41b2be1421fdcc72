"""The rollup (per-second log histograms) against every sample, on a synthetic run and on a recorded one."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import perfkit_cmd

import perfkit
from perfkit.analysis import percentile_table
from perfkit.analysis.histograms import HIST_NOTE, hist_percentile_cis, histogram_ess
from perfkit.analysis.percentiles import effective_sample_size
from perfkit.client import Endpoint, PhaseSpec
from perfkit.errors import ConfigError
from perfkit.query.rollup import HIST_MIN_SAMPLES, LatencyHistogram, hist_quantiles, read_rollup
from perfkit.record import record_run
from perfkit.store.rollup import BUCKETS_PER_OCTAVE, build_rollup, fresh_rollup, rollup_info, rollup_path
from perfkit.store.synthetic import write_synthetic_run
from perfkit.store.writer import write_part

RUN = "synthetic-rollup"
BUCKET = 2 ** (1 / BUCKETS_PER_OCTAVE) - 1  # 0.54%: no estimate is further than its bucket


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """300,000 requests x 8 chunks (2.4M inter-token latencies: past the threshold), with its rollup."""
    data = tmp_path_factory.mktemp("rollup") / "data"
    write_synthetic_run(data, RUN, 300_000, 8, rate_rps=500.0, seed=7, part_requests=100_000)
    build_rollup(data, RUN)
    return data


def _hist(x: np.ndarray, seconds: np.ndarray) -> LatencyHistogram:
    """A histogram built in numpy the way the rollup's SQL builds it (the SQL itself is tested below)."""
    return LatencyHistogram.from_samples(x, seconds)


def test_the_rollup_counts_every_sample_and_says_what_it_was_built_from(synthetic):
    info = rollup_info(rollup_path(synthetic, RUN))
    assert info["samples"] == {
        "ttft_ms": 300_000,
        "e2e_ms": 300_000,
        "itl_ms": 300_000 * 7,
        "itl_token_ms": 300_000 * 7,
    }
    assert [n for n, _ in info["sources"]["requests"]] == [
        "part-000000.parquet",
        "part-000001.parquet",
        "part-000002.parquet",
    ]
    assert fresh_rollup(synthetic, RUN) == rollup_path(synthetic, RUN)
    hs, phases = read_rollup(rollup_path(synthetic, RUN))
    assert phases == ["steady", "surge"]
    assert hs[("itl_ms", "steady")].n + hs[("itl_ms", "surge")].n == 2_100_000
    with perfkit.open(synthetic) as cat:
        exact_mean = cat.scalar(f"SELECT avg(itl_ms) FROM chunks WHERE run_id = '{RUN}'")
    pooled = LatencyHistogram.concat([hs[("itl_ms", "steady")], hs[("itl_ms", "surge")]])
    assert pooled.mean == pytest.approx(exact_mean, rel=1e-12)


def test_summary_from_the_rollup_matches_every_sample_within_a_bucket(synthetic):
    with perfkit.open(synthetic) as cat:
        for by_phase in (True, False):
            fast = cat.summary(RUN, by_phase=by_phase, histograms="always").df()
            slow = cat.summary(RUN, by_phase=by_phase, histograms="never").df()
            assert list(fast.columns) == list(slow.columns)
            assert fast["phase"].tolist() == slow["phase"].tolist() == (["steady", "surge"] if by_phase else ["all"])
            for col in fast.columns[2:]:
                if col.endswith(("_p50_ms", "_p90_ms", "_p99_ms")):
                    assert np.allclose(fast[col], slow[col], rtol=BUCKET, atol=0), col
                else:
                    assert np.allclose(fast[col], slow[col], rtol=1e-9), col


def test_percentile_intervals_from_the_rollup_agree_with_every_sample(synthetic):
    with perfkit.open(synthetic) as cat:
        fast = percentile_table(cat, RUN, histograms="always")
        slow = percentile_table(cat, RUN, histograms="never")
    m = pd.merge(fast, slow, on=["phase", "metric", "q"], suffixes=("", "_x"))
    assert len(m) == 18 and m["estimable"].all()
    # the same decision but near the threshold (a surge's E2E p99: 620 effectively independent of the 300
    # the rule needs against an upper bound twice the estimate), where the two estimates of tau may fall apart
    assert (m["estimable"] == m["estimable_x"]).sum() >= 17
    m = m[m["estimable_x"]]
    assert (m["note"] == HIST_NOTE).all() and m["note_x"].isna().all()
    assert ((m["estimate"] / m["estimate_x"] - 1).abs() <= BUCKET).all()
    assert (m["n"] == m["n_x"]).all()
    # the effective sample size from 1-s batches against the sample-level estimate (2^16+ batches)
    ratio = m["n_eff"] / m["n_eff_x"]
    assert ratio.between(0.6, 1.5).all(), m[["phase", "metric", "q", "n_eff", "n_eff_x"]]
    # bounds widened to their buckets: the interval is never much narrower than the exact one
    width, width_x = m["hi"] - m["lo"], m["hi_x"] - m["lo_x"]
    assert (width >= 0.75 * width_x).all()
    assert ((m["lo"] <= m["estimate"]) & (m["estimate"] <= m["hi"])).all()


def test_auto_reads_the_rollup_only_for_millions_of_samples_and_only_while_it_is_up_to_date(synthetic, tmp_path):
    assert 300_000 < HIST_MIN_SAMPLES <= 2_100_000
    with perfkit.open(synthetic) as cat:
        auto = percentile_table(cat, RUN)
    by_metric = auto.groupby("metric")["note"].apply(lambda s: set(s.fillna("-")))
    assert by_metric["itl_ms"] == {HIST_NOTE} and by_metric["ttft_ms"] == {"-"}
    # a part added after the rollup: stale, so the summaries read every sample again
    import shutil

    data = tmp_path / "copy"
    shutil.copytree(synthetic, data)
    extra = perfkit.open(data).sql(f"SELECT * EXCLUDE (run_id) FROM requests WHERE run_id = '{RUN}' LIMIT 10")
    write_part(extra.to_arrow_table(), data / "requests" / f"run_id={RUN}", 99, prefix="late")
    assert fresh_rollup(data, RUN) is None
    with perfkit.open(data) as cat:
        assert percentile_table(cat, RUN, metrics=("itl_ms",))["note"].isna().all()
    out = subprocess.run(perfkit_cmd("rollup", RUN, "--data-dir", str(data)), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ttft_ms 300,010" in out.stdout  # the 10 requests written late count now
    assert fresh_rollup(data, RUN) is not None
    with perfkit.open(data) as cat, pytest.raises(ConfigError, match="histograms='sometimes'"):
        cat.summary(RUN, histograms="sometimes")


def test_histogram_quantiles_are_within_a_bucket_of_numpy():
    rng = np.random.default_rng(0)
    x = rng.lognormal(3, 0.8, 200_000)
    h = _hist(x, np.arange(len(x)) // 1000)
    levels = np.array([0.001, 0.1, 0.5, 0.9, 0.99, 0.999])
    got = hist_quantiles(*h.merged(), levels)
    want = np.quantile(x, levels)
    assert np.all(np.abs(got / want - 1) <= BUCKET)


def test_effective_sample_size_from_seconds_tracks_the_sample_level_one():
    """Independent samples keep n_eff near n; an AR(1) load cuts it as the sample-level method does."""
    rng = np.random.default_rng(1)
    n, per_s = 400_000, 100
    sec = np.arange(n) // per_s
    iid = rng.lognormal(0, 0.5, n)
    est = float(np.quantile(iid, 0.9))
    h_eff, _ = histogram_ess(_hist(iid, sec), est)
    assert 0.4 * n <= h_eff <= n  # overlapping batch means over 4,000 seconds: a noisy estimate of tau = 1
    from scipy.signal import lfilter

    load = lfilter([1.0], [1.0, -0.999], rng.normal(0, 0.03, n))
    ar = np.exp(load + rng.normal(0, 0.3, n))
    est = float(np.quantile(ar, 0.9))
    h_eff, _ = histogram_ess(_hist(ar, sec), est)
    s_eff = effective_sample_size(ar, 0.9, at=est)
    assert s_eff < 0.1 * n
    assert 0.6 <= h_eff / s_eff <= 1.5
    [e] = hist_percentile_cis(_hist(ar, sec), (0.9,))
    assert e.lo <= np.quantile(ar, 0.9) <= e.hi


async def test_a_completed_run_gets_its_rollup_and_it_matches_the_samples(sim, data_dir):
    phases = [PhaseSpec("main", requests=60, concurrency=4, prompt_tokens=32, output_tokens=24)]
    res = await record_run(Endpoint(sim.url), phases, data_dir)
    path = fresh_rollup(data_dir, res.run_id)
    assert path is not None
    info = rollup_info(path)
    with perfkit.open(data_dir) as cat:
        n_itl = cat.scalar(
            f"SELECT count(*) FROM chunks c JOIN requests r USING (run_id, request_id) "
            f"WHERE run_id = '{res.run_id}' AND r.ok AND c.itl_ms IS NOT NULL"
        )
        n_ok = cat.scalar(f"SELECT count(*) FROM requests WHERE run_id = '{res.run_id}' AND ok")
        fast = cat.summary(res.run_id, histograms="always").df().iloc[0]
        slow = cat.summary(res.run_id, histograms="never").df().iloc[0]
    assert info["samples"] == {"ttft_ms": n_ok, "e2e_ms": n_ok, "itl_ms": n_itl, "itl_token_ms": n_itl}
    assert fast["itl_mean_ms"] == pytest.approx(slow["itl_mean_ms"], rel=1e-9)
    assert fast["ttft_p50_ms"] == pytest.approx(slow["ttft_p50_ms"], rel=0.02)  # 60 samples: order stats apart


async def test_the_rollup_counts_a_chunk_of_several_tokens_once_per_token(fresh_sim, data_dir):
    """Four tokens a chunk: the per-token ITL in the rollup has a sample per token, its gap over the chunk's
    tokens, and its percentiles and mean are the samples' to within a bucket."""
    from perfkit.analysis.intervals import metric_percentiles

    sim = fresh_sim(seed=0, stream_interval=4)
    phases = [PhaseSpec("main", requests=40, concurrency=4, prompt_tokens=32, output_tokens=41)]
    res = await record_run(Endpoint(sim.url), phases, data_dir)
    info = rollup_info(fresh_rollup(data_dir, res.run_id))
    with perfkit.open(data_dir) as cat:
        n_tok, mean = cat.sql(
            "SELECT sum(k), sum(c.itl_ms) / sum(k) FROM chunks c JOIN requests r USING (run_id, request_id), "
            "LATERAL (SELECT greatest(coalesce(c.tokens, 1), 1) AS k) "
            "WHERE run_id = $r AND r.ok AND c.itl_ms IS NOT NULL",
            {"r": res.run_id},
        ).fetchall()[0]
        fast = metric_percentiles(cat, res.run_id, "itl_token_ms", (0.5, 0.9), histograms="always")["main"]
        slow = metric_percentiles(cat, res.run_id, "itl_token_ms", (0.5, 0.9), histograms="never")["main"]
        hs, _ = read_rollup(fresh_rollup(data_dir, res.run_id), ("itl_token_ms",))
    assert info["samples"]["itl_token_ms"] == n_tok == 40 * 37  # 41 tokens: the first chunk's 4, then 37
    assert info["samples"]["itl_ms"] == 40 * 10  # in chunks of 4 (and the last of 1)
    h = hs[("itl_token_ms", "main")]
    assert h.sums.sum() / h.counts.sum() == pytest.approx(mean, rel=1e-9)
    for f, s in zip(fast, slow):
        assert f.estimate == pytest.approx(s.estimate, rel=2 * BUCKET), (f, s)


def test_per_second_percentiles_from_the_rollup_match_the_timeline(synthetic):
    from perfkit.analysis.series import detect_changes, run_series

    with perfkit.open(synthetic) as cat:
        for metric in ("ttft_p50_ms", "itl_p99_ms"):
            fast = run_series(cat, RUN, metric, histograms="always")
            slow = run_series(cat, RUN, metric, histograms="never")
            m = pd.merge(fast, slow, on="t_s", suffixes=("", "_x"))
            assert len(m) == len(fast) == len(slow) > 500
            assert ((m["value"] / m["value_x"] - 1).abs() <= BUCKET).all(), metric
        # the synthetic run turns 40% slower at 60% of its requests (360 s at 500 req/s)
        [change] = detect_changes(cat, RUN, "ttft_p50_ms").changes
        assert abs(change.t - 360) <= 5 and change.ratio == pytest.approx(1.4, rel=0.1)


def test_rollup_intervals_cover_a_known_quantile_of_an_autocorrelated_series():
    """40 seeded replicates with a known law: the rollup's 95% intervals cover p50 and p90 at about
    the nominal rate, where intervals that assume independent samples miss most of the time."""
    from scipy import stats
    from scipy.signal import lfilter

    from perfkit.analysis.percentiles import percentile_cis

    n, rate, phi, sd_load, sd_noise = 100_000, 250.0, 0.99, 0.4, 0.3
    truth = np.exp(stats.norm.ppf([0.5, 0.9]) * np.hypot(sd_load, sd_noise))
    sec = (np.arange(n) / rate).astype(np.int64)
    hist_hits, order_hits = np.zeros(2), np.zeros(2)
    for r in range(40):
        rng = np.random.default_rng([11, r])
        load, _ = lfilter(
            [1.0], [1.0, -phi], rng.normal(0, sd_load * np.sqrt(1 - phi**2), n), zi=[phi * rng.normal(0, sd_load)]
        )
        x = np.exp(load + rng.normal(0, sd_noise, n))
        for j, (h, o) in enumerate(
            zip(hist_percentile_cis(_hist(x, sec), (0.5, 0.9)), percentile_cis(x, (0.5, 0.9), method="order"))
        ):
            hist_hits[j] += h.lo <= truth[j] <= h.hi
            order_hits[j] += o.lo <= truth[j] <= o.hi
    assert (hist_hits >= 34).all(), hist_hits  # 95% of 40 is 38
    assert (order_hits <= 20).all(), order_hits


def test_the_rollup_sql_bins_exactly_as_numpy_does(synthetic):
    hs, _ = read_rollup(rollup_path(synthetic, RUN), ("ttft_ms",))
    with perfkit.open(synthetic) as cat:
        t0 = cat.scalar(f"SELECT min(sent_ns) FROM requests WHERE run_id = '{RUN}'")
        cols = cat.sql(
            f"SELECT ttft_ms, (sent_ns - {t0}) // 1000000000 AS s FROM requests "
            f"WHERE run_id = '{RUN}' AND phase = 'surge'"
        ).fetchnumpy()
    want = LatencyHistogram.from_samples(cols["ttft_ms"], cols["s"])
    got = hs[("ttft_ms", "surge")]
    assert got.n == want.n == 120_000

    def rows(h: LatencyHistogram) -> pd.DataFrame:  # the same (second, bucket) rows and counts, in any order
        df = pd.DataFrame({"s": h.seconds, "b": h.buckets, "c": h.counts, "sum": h.sums})
        return df.sort_values(["s", "b"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(rows(got), rows(want), check_dtype=False)


def test_a_summary_taken_earlier_keeps_its_own_rollup_figures(synthetic):
    """Relations are lazy: a second summary must not change what the first one reads."""
    with perfkit.open(synthetic) as cat:
        per_phase = cat.summary(RUN, histograms="always")
        pooled = cat.summary(RUN, by_phase=False, histograms="always").df()
        first = per_phase.df()
    assert first["phase"].tolist() == ["steady", "surge"] and first["ttft_p50_ms"].notna().all()
    assert pooled["ttft_p50_ms"].notna().all()
