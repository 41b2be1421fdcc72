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
        new_markdown_cell("# Tail latency: what drives it\n\nQuantile regression of each request's TTFT on what the "
                          "server was doing while it ran (sequences running, KV-cache use) and on the request "
                          "itself (prompt length), at the median and in the tail. Requests that ran close together "
                          "share a queue, so the intervals are *cluster-robust*, with clusters of consecutive "
                          "requests; the predicted quantiles never cross. Beyond the data (p99.9 from a few "
                          "hundred requests) a generalised Pareto tail takes over from the empirical quantile."),
        new_code_cell(PARAMS_RUN, metadata={"tags": ["parameters"]}),
        new_code_cell(SETUP.format(min_runs=1)),
        new_markdown_cell("## One row per request, with what it saw\n\nCounters averaged over each request's "
                          "lifetime (an interval join on the one clock)."),
        new_code_cell("rt = cat.request_telemetry(run, ['running', 'kv_usage']).df()\n"
                      "rt = rt[rt.ok & ~rt.warmup & rt.ttft_ms.gt(0)].dropna(subset=['running']).sort_values('sent_ns')\n"
                      "print(f'{len(rt)} requests')\n"
                      "rt[['phase', 'ttft_ms', 'prompt_tokens', 'running', 'kv_usage']].describe().round(2)"),
        new_markdown_cell("## The fit\n\n`log(TTFT)` so coefficients read as relative effects: `exp(coef) − 1` "
                          "per unit. Clusters are blocks of 20 consecutive requests."),
        new_code_cell("import numpy as np\n"
                      "from perfkit.analysis import quantile_regression\n\n"
                      "qs = (0.5, 0.9) if len(rt) < 1000 else (0.5, 0.9, 0.99)  # p99 needs ~1,000 rows to fit\n"
                      "fit = quantile_regression(rt, 'np.log(ttft_ms) ~ running + prompt_tokens', qs, block=20, "
                      "order='sent_ns')\n"
                      "print(f'{fit.n} requests in {fit.n_clusters} clusters')\n"
                      "fit.table().round(4)"),
        new_markdown_cell("## Predicted TTFT quantiles as the batch fills\n\nAt the median prompt length, for "
                          "0 to the largest number of running sequences seen; intervals at 95%."),
        new_code_cell("import altair as alt\nimport pandas as pd\n\n"
                      "grid = pd.DataFrame({'running': np.linspace(0, rt.running.max(), 25),\n"
                      "                     'prompt_tokens': rt.prompt_tokens.median()})\n"
                      "pred = fit.predict(grid).merge(grid.reset_index(names='row'), on='row')\n"
                      "pred[['estimate', 'lo', 'hi']] = np.exp(pred[['estimate', 'lo', 'hi']])\n"
                      "pred['quantile'] = 'p' + (100 * pred.q).map('{:g}'.format)\n"
                      "base = alt.Chart(pred).encode(x=alt.X('running:Q', title='sequences running'),\n"
                      "                              color=alt.Color('quantile:N', title=None))\n"
                      "(base.mark_area(opacity=0.2).encode(y=alt.Y('lo:Q', title='TTFT (ms)', "
                      "scale=alt.Scale(type='log')), y2='hi:Q')\n"
                      " + base.mark_line().encode(y='estimate:Q')).properties(width=560, height=260,\n"
                      "    title='Predicted TTFT quantiles against batch occupancy (95% intervals)')"),
        new_markdown_cell("## Beyond the data: a Pareto tail\n\nThe run's p99.9 TTFT from a generalised Pareto "
                          "fit to the worst 10% of requests, with a block-bootstrap interval, beside the empirical "
                          "value (which, with fewer than 1,000 requests, is simply the maximum)."),
        new_code_cell("from perfkit.analysis import pot_quantile\n\n"
                      "try:\n"
                      "    tail = pot_quantile(rt.ttft_ms.to_numpy(), 0.999)\n"
                      "    print(f'TTFT p99.9: {tail.estimate:.1f} ms [{tail.lo:.1f}, {tail.hi:.1f}] from a Pareto tail '\n"
                      "          f'(xi = {tail.xi:.2f}, {tail.n_exceed} requests above {tail.threshold:.1f} ms); '\n"
                      "          f'empirical {np.quantile(rt.ttft_ms, 0.999):.1f} ms, maximum {rt.ttft_ms.max():.1f} ms')\n"
                      "except ValueError as exc:\n"
                      "    print('no tail fit:', exc)"),
        new_markdown_cell("Caveats: a regression on one run describes that run's load path, and load, KV use and "
                          "queue length move together, so coefficients are associations, not causes; a sweep "
                          "across runs (cluster by `run_id`) separates them better. The Pareto tail's 95% "
                          "intervals covered 90–92.5% in simulation: read them as slightly narrow."),
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
        new_markdown_cell("## Capacity: where latency turns\n\nThe saturation knee needs a sweep: five or more "
                          "load levels (for example `perfkit run scenarios/sweep.yaml`). For the newest such run "
                          "in the folder, a continuous two-segment fit of log TTFT p50 against the achieved rate "
                          "gives the load where latency stops being flat, with a bootstrap interval. The maximum "
                          "sustainable load under an SLO with a confidence bound is **not built yet** (issue 6)."),
        new_code_cell("import numpy as np\n"
                      "from perfkit.analysis import knee\n\n"
                      "def sweep_levels(r):\n"
                      "    f = cat.fidelity(r).df().merge(cat.summary(r).df()[['phase', 'ttft_p50_ms']], on='phase')\n"
                      "    return f[f.target_rate_rps.notna() & f.ttft_p50_ms.gt(0)]\n\n"
                      "sweeps = [r for r in reversed(ids) if len(sweep_levels(r)) >= 5]\n"
                      "if not sweeps:\n"
                      "    print('no run here sweeps 5 or more load levels: make one with '\n"
                      "          '`perfkit run scenarios/sweep.yaml --endpoint URL`, then rerun this cell')\n"
                      "else:\n"
                      "    lv = sweep_levels(sweeps[0])\n"
                      "    k = knee(lv.achieved_rate_rps, np.log(lv.ttft_p50_ms))\n"
                      "    print(f'run {sweeps[0]}: TTFT p50 turns at {k.x0:.1f} req/s [{k.x0_lo:.1f}, {k.x0_hi:.1f}] '\n"
                      "          f'(95% interval; log slope {k.slope_before:.3f} before, {k.slope_after:.3f} after)')\n"
                      "    display(lv[['phase', 'achieved_rate_rps', 'ttft_p50_ms']].round(2))"),
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
