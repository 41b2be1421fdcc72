"""Write the notebooks in ``notebooks/`` (without outputs) from the cells below.

The notebooks are the product's face; their logic lives in ``perfkit``, so each one is prose and
short calls.  Edit here and run ``python3 tools/make_notebooks.py``; the test suite executes what
this writes (tests/test_notebooks.py), and checks that the committed notebooks match it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parent.parent / "notebooks"

PARAMS_RUN = '''# parameters (papermill: -p data_dir=... -p run_id=...)
data_dir = None  # None: ../data beside notebooks/, where the demo's runs are made if there are none
run_id = "latest"'''

SETUP = '''import perfkit.notebook as nb

nb.setup()  # figures as inline SVG in perfkit's theme: no JavaScript, no CDN, they survive export
cat = nb.open_data(data_dir, min_runs={min_runs})
run = cat.require_run(run_id)
m = cat.manifest(run)
print(f"run {{run}}: {{m.get('label') or 'no label'}}; status {{m['status']}}; {{len(m['phases'])}} phases")'''


def nb_01() -> list:
    return [
        new_markdown_cell("# Explore a run\n\nWhat a run asked of the endpoint, what it got back, and how sure we "
                          "can be of each number. Every table and figure here comes from `perfkit` over the run's "
                          "Parquet files (DuckDB); run it on the demo data (made if missing) or on any run with "
                          "`perfkit report --notebook notebooks/01_explore_a_run.ipynb -p run_id=RUN_ID`."),
        new_code_cell(PARAMS_RUN, metadata={"tags": ["parameters"]}),
        new_code_cell(SETUP.format(min_runs=1)),
        new_markdown_cell("## Did the client do what was asked?\n\nRequested is the phase's nominal rate, "
                          "scheduled what this realisation of the arrival process asked for, achieved what was "
                          "sent. A large schedule lag means the client, not the server, set the pace; latencies "
                          "*from the intended send* show what users arriving on schedule saw."),
        new_code_cell("cat.fidelity(run).df()"),
        new_markdown_cell("## Latency per phase\n\nOver successful requests, warm-up excluded. TTFT: time to first "
                          "token; ITL: gap between streamed chunks; TPOT: (last − first token) / (tokens − 1); E2E: "
                          "the whole request."),
        new_code_cell("cat.summary(run).df()"),
        new_markdown_cell("## How sure are these percentiles?\n\nConsecutive requests are correlated (they share "
                          "the server's queue), so a phase holds fewer *effectively independent* samples than "
                          "requests. The intervals use that effective size; a percentile without enough of them "
                          "is marked not estimable rather than printed with false precision."),
        new_code_cell("from perfkit.analysis import percentile_table\n\n"
                      "pt = percentile_table(cat, run)\n"
                      "pt[['phase', 'metric', 'q', 'estimate', 'lo', 'hi', 'n', 'n_eff', 'estimable']]"),
        new_markdown_cell("## Over time\n\nEach request's TTFT with windowed p50 and p99; the phases are shaded."),
        new_code_cell("from perfkit.report import cdf_chart, latency_over_time_chart, telemetry_chart, "
                      "throughput_chart\n\nlatency_over_time_chart(cat, run)"),
        new_code_cell("cdf_chart(cat, run)"),
        new_code_cell("throughput_chart(cat, run)"),
        new_markdown_cell("## Beside the requests: GPU, server and host\n\nRecorded on the requests' clock. On the "
                          "simulator the GPU counters are SIMULATED and labelled so."),
        new_code_cell("tele = telemetry_chart(cat, run)\n"
                      "tele if tele is not None else print('this run recorded no telemetry')"),
        new_markdown_cell("## Your own questions, in SQL\n\nThe views `requests`, `chunks`, `runs` and the "
                          "telemetry tables hold every run in the folder (`perfkit schema` lists the columns)."),
        new_code_cell('cat.sql(f"""\n'
                      "    SELECT phase, count(*) AS requests, round(median(ttft_ms), 1) AS ttft_p50_ms,\n"
                      "           round(quantile_cont(ttft_ms, 0.9), 1) AS ttft_p90_ms,\n"
                      "           round(avg(output_tokens), 1) AS output_tokens\n"
                      f"    FROM requests WHERE run_id = '{{run}}' AND ok GROUP BY phase ORDER BY min(sent_ns)\n"
                      '""").df()'),
        new_markdown_cell("## What to be careful about\n\nThe warnings the report prints for this run."),
        new_code_cell("from perfkit.report.run_report import run_warnings\n\n"
                      "for w in run_warnings(m, cat.summary(run).df(), cat.fidelity(run).df()):\n"
                      "    print('-', w.replace('**', ''))"),
    ]


def nb_02() -> list:
    return [
        new_markdown_cell("# Stability and changepoints\n\nIs the deployment stable under load, and when did it "
                          "change? First the steady state of each phase (warm-up cut by MSER-5, then drift and "
                          "variation of windowed percentiles); then the changes found in 1-s windows of latency and "
                          "of the counters, each with a p-value, a location interval and a size interval. On the "
                          "simulator the injected events are the ground truth the changes are checked against."),
        new_code_cell(PARAMS_RUN, metadata={"tags": ["parameters"]}),
        new_code_cell(SETUP.format(min_runs=1)),
        new_markdown_cell("## Steady state per phase"),
        new_code_cell("from perfkit.analysis import stability_table\n\nstability_table(cat, run)"),
        new_markdown_cell("## Changes in every series\n\nA change is reported when its Holm-adjusted p-value is "
                          "below 0.05 and it is at least 5%; `ratio` is after / before (medians of the segments), "
                          "with its 95% interval."),
        new_code_cell("from perfkit.analysis import change_table\n\nchanges = change_table(cat, run)\nchanges"),
        new_markdown_cell("## Median TTFT, and the ground truth\n\nThe detected changes (red: location and its "
                          "interval) over the windowed series; grey spans are events the simulator injected."),
        new_code_cell("from perfkit.analysis import detect_changes, injected_events, run_series\n"
                      "from perfkit.report.charts import changes_chart\n\n"
                      "truth = injected_events(cat, run)\n"
                      "res = detect_changes(cat, run, 'ttft_p50_ms')\n"
                      "changes_chart(run_series(cat, run, 'ttft_p50_ms'), res.changes, 'TTFT p50 (ms)',\n"
                      "              truth=list(zip(truth.start_s, truth.end_s)))"),
        new_markdown_cell("## How the answer depends on the penalty\n\nThe penalty follows a stated rule "
                          "(3 σ² τ log n on the long-run noise); the path shows which changes persist over a "
                          "hundredfold range of penalties, and which appear only when it is low."),
        new_code_cell("res.penalty_path().groupby('n_changes', as_index=False).agg(\n"
                      "    penalty_from=('penalty', 'min'), penalty_to=('penalty', 'max'))"),
        new_markdown_cell("## Found against injected\n\nFor each injected event, the nearest change in TTFT p50 "
                          "and in the SM clock (on a real endpoint there is no ground truth and this says so)."),
        new_code_cell("if truth.empty:\n"
                      "    print('no injected events: this run was not on the simulator, or had none')\n"
                      "else:\n"
                      "    for series in ('ttft_p50_ms', 'sm_clock_mhz'):\n"
                      "        try:\n"
                      "            found = detect_changes(cat, run, series).changes\n"
                      "        except ValueError as exc:\n"
                      "            print(series, ':', exc)\n"
                      "            continue\n"
                      "        for ev in truth.itertuples():\n"
                      "            near = min(found, key=lambda c: abs(c.t - ev.start_s), default=None)\n"
                      "            print(f'{series}: {ev.kind} injected at {ev.start_s:.1f} s; ' + (\n"
                      "                'no change found' if near is None else\n"
                      "                f'change found at {near.t:.0f} s [{near.t_lo:.0f}, {near.t_hi:.0f}], '\n"
                      "                f'x{near.ratio:.2f} [{near.ratio_lo:.2f}, {near.ratio_hi:.2f}]'))"),
    ]


def nb_03() -> list:
    return [
        new_markdown_cell("# Tail latency: what drives it\n\n**Not built yet.** The analysis this notebook is "
                          "for (quantile regression of TTFT, ITL and E2E at several quantiles on load and request "
                          "factors, non-crossing, with intervals clustered by run or time block, and a "
                          "peaks-over-threshold fallback beyond the data) is issue 6 and has not landed. Nothing "
                          "below fits a model. What it shows is the descriptive evidence the regression will be "
                          "fitted on: tail percentiles with intervals per load level, and rank correlations of "
                          "each request's TTFT with what the server and GPU were doing while it ran."),
        new_code_cell(PARAMS_RUN, metadata={"tags": ["parameters"]}),
        new_code_cell(SETUP.format(min_runs=1)),
        new_markdown_cell("## Tail percentiles per load level\n\nEach phase is one load level (its achieved "
                          "rate); p90 and p99 with 95% intervals, or not estimable when the phase holds too few "
                          "effectively independent requests."),
        new_code_cell("from perfkit.analysis import percentile_table\n\n"
                      "pt = percentile_table(cat, run, metrics=('ttft_ms', 'e2e_ms'), qs=(0.5, 0.9, 0.99))\n"
                      "rates = cat.fidelity(run).df()[['phase', 'achieved_rate_rps']]\n"
                      "pt.merge(rates, on='phase')[['phase', 'achieved_rate_rps', 'metric', 'q', 'estimate', "
                      "'lo', 'hi', 'n_eff', 'estimable']]"),
        new_markdown_cell("## What each request saw while it ran\n\nCounters averaged over each request's "
                          "lifetime (an interval join on the one clock), and Spearman's rank correlation of TTFT "
                          "with each. Correlation is not attribution: load, KV use and queue length move "
                          "together."),
        new_code_cell("rt = cat.request_telemetry(run, ['running', 'waiting', 'kv_usage', 'sm_clock_mhz', "
                      "'power_w']).df()\n"
                      "rt = rt[rt.ok & ~rt.warmup]\n"
                      "cols = [c for c in ('prompt_tokens', 'running', 'waiting', 'kv_usage', 'sm_clock_mhz', "
                      "'power_w') if c in rt and rt[c].notna().sum() > 10]\n"
                      "rt[['ttft_ms', *cols]].corr(method='spearman')[['ttft_ms']].drop('ttft_ms').round(2)"),
        new_code_cell("import altair as alt\n\n"
                      "alt.Chart(rt.dropna(subset=['running'])).mark_circle(size=14, opacity=0.5).encode(\n"
                      "    x=alt.X('running:Q', title='sequences running while the request ran (mean)'),\n"
                      "    y=alt.Y('ttft_ms:Q', title='TTFT (ms)', scale=alt.Scale(type='log')),\n"
                      "    color=alt.Color('phase:N'),\n"
                      ").properties(width=560, height=260, title='TTFT against batch occupancy')"),
    ]


def nb_04() -> list:
    return [
        new_markdown_cell("# Where is the bottleneck?\n\n**The named verdict is not built yet.** Bottleneck "
                          "attribution (a per-request latency decomposition and a verdict per phase: client-, "
                          "queue-, prefill-, decode-, KV-capacity-bound, throttled or error-bound, with its "
                          "confidence) is issue 6 and has not landed. This notebook lays out the evidence such a "
                          "verdict rests on, phase by phase, and checks one law every queue obeys."),
        new_code_cell(PARAMS_RUN, metadata={"tags": ["parameters"]}),
        new_code_cell(SETUP.format(min_runs=1)),
        new_markdown_cell("## The evidence per phase\n\nMedians over 1-s windows: latency, GPU clock and "
                          "utilisation, KV-cache use, running and waiting sequences, and the client's own CPU "
                          "and event-loop lag (a busy client measures itself)."),
        new_code_cell("tl = cat.timeline(run, bin_s=1.0).df().dropna(subset=['phase'])\n"
                      "cols = [c for c in ('ttft_p50_ms', 'itl_p50_ms', 'sm_clock_mhz', 'gpu_util_pct', "
                      "'kv_usage', 'running', 'waiting', 'client_cpu_pct', 'client_loop_lag_max_ms') if c in tl]\n"
                      "evidence = tl.groupby('phase', sort=False)[cols].median().round(2)\n"
                      "evidence"),
        new_markdown_cell("## Is the client keeping up?\n\nIf the client fell behind its schedule, the phase "
                          "measured the client: no server verdict can be drawn from it."),
        new_code_cell("fid = cat.fidelity(run).df()\n"
                      "fid[['phase', 'target_rate_rps', 'achieved_rate_rps', 'schedule_lag_p99_ms', "
                      "'client_behind']]"),
        new_markdown_cell("## Little's law\n\nIn a steady phase the mean number of requests in the server equals "
                          "the arrival rate times the mean time in it (L = λW). The left side comes from the "
                          "server's own metrics (running + waiting), the right from the client's clock; a large "
                          "gap means requests wait somewhere the server does not count (the client, the network, "
                          "a proxy), or the phase is not steady."),
        new_code_cell("summ = cat.summary(run).df().set_index('phase')\n"
                      "if {'running', 'waiting'} <= set(tl.columns) and tl[['running', 'waiting']].notna().any().all():\n"
                      "    inside = (tl.running + tl.waiting).groupby(tl.phase, sort=False).mean()\n"
                      "    rate = fid.set_index('phase').achieved_rate_rps\n"
                      "    little = (rate * summ.e2e_mean_ms / 1000).rename('lambda_W')\n"
                      "    check = inside.rename('L_server').to_frame().join(little)\n"
                      "    check['ratio'] = check.L_server / check.lambda_W\n"
                      "    display(check.round(2))\n"
                      "else:\n"
                      "    print('the server exported no running/waiting gauges: Little\\'s law cannot be "
                      "checked here')"),
        new_markdown_cell("## Over time"),
        new_code_cell("from perfkit.report import telemetry_chart\n\n"
                      "tele = telemetry_chart(cat, run)\n"
                      "tele if tele is not None else print('this run recorded no telemetry')"),
    ]


def nb_05() -> list:
    return [
        new_markdown_cell("# Compression trade-offs\n\n**Not built yet.** Which model variant (fp16, int8, int4, "
                          "pruned, distilled) gives the best quality for its latency and cost is issue 6: perfkit "
                          "does not yet read evaluation results (CSV/JSON, lm-evaluation-harness), the simulator "
                          "has no variants, and there is no Pareto analysis. This notebook draws no curve rather "
                          "than a made-up one. It lists what the data folder already holds for such a study: each "
                          "run's model, its throughput and its tail latency."),
        new_code_cell(PARAMS_RUN, metadata={"tags": ["parameters"]}),
        new_code_cell(SETUP.format(min_runs=1)),
        new_markdown_cell("## Runs in this folder, by model"),
        new_code_cell("runs = cat.run_ids()\n"
                      "whole = cat.summary(runs, by_phase=False).df()\n"
                      "whole['model'] = [(cat.manifest(r).get('endpoint') or {}).get('model') for r in whole.run_id]\n"
                      "whole[['run_id', 'model', 'requests', 'output_token_throughput_tps', 'ttft_p50_ms', "
                      "'ttft_p99_ms', 'tpot_mean_ms']]"),
    ]


def nb_06() -> list:
    return [
        new_markdown_cell("# Compare runs, and capacity\n\nDid the candidate get slower than the baseline? Each "
                          "percentile is compared with a bootstrap that keeps the runs' autocorrelation (blocks of "
                          "consecutive requests), false alarms are controlled across the whole table (Holm), and "
                          "a change must exceed 5% to count. With the demo's two seeds of the same configuration, "
                          "the right answer is *no significant change*."),
        new_code_cell("# parameters (papermill: -p baseline=RUN_A -p candidate=RUN_B)\n"
                      "data_dir = None\n"
                      "baseline = None  # None: the second newest run\n"
                      "candidate = None  # None: the newest run", metadata={"tags": ["parameters"]}),
        new_code_cell("import perfkit.notebook as nb\n\n"
                      "nb.setup()\n"
                      "cat = nb.open_data(data_dir, min_runs=2)\n"
                      "ids = cat.run_ids()\n"
                      "a = cat.require_run(baseline or ids[-2])\n"
                      "b = cat.require_run(candidate or ids[-1])\n"
                      "print(f'baseline {a} ({cat.manifest(a).get(\"label\")}), candidate {b} "
                      "({cat.manifest(b).get(\"label\")})')"),
        new_markdown_cell("## The comparison"),
        new_code_cell("from perfkit.analysis import compare_runs\n\n"
                      "res = compare_runs(cat, a, b)\n"
                      "print('verdict:', res.verdict)\n"
                      "res.table[['metric', 'q', 'a', 'b', 'rel_change', 'rel_lo', 'rel_hi', 'p_adjusted', "
                      "'verdict']]"),
        new_code_cell("from perfkit.report import compare_cdf_chart\n\ncompare_cdf_chart(cat, [a, b])"),
        new_markdown_cell("## SLO attainment per phase\n\nThe share of each class's requests that met every "
                          "objective of its SLO, and the goodput, in both runs."),
        new_code_cell("cat.slo([a, b]).df()[['run_id', 'phase', 'class_name', 'requests', 'slo_attainment', "
                      "'goodput_rps']]"),
        new_markdown_cell("## Capacity: not built yet\n\nThe maximum sustainable load under an SLO with a "
                          "confidence bound, from a sweep, the saturation knee and a Universal Scalability Law fit "
                          "are issue 6 and have not landed; no capacity number is printed here until they do."),
    ]


NOTEBOOKS = {
    "01_explore_a_run": nb_01, "02_stability_and_changepoints": nb_02, "03_tail_latency_regression": nb_03,
    "04_bottleneck_investigation": nb_04, "05_compression_tradeoffs": nb_05,
    "06_compare_runs_and_capacity": nb_06,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for k, cell in enumerate(nb.cells):  # stable ids, so regenerating changes nothing
        cell["id"] = f"{name[:2]}-{k:02d}"
    return nb


def main() -> int:
    for name in NOTEBOOKS:
        nbformat.write(build(name), OUT / f"{name}.ipynb")
        print(OUT / f"{name}.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
