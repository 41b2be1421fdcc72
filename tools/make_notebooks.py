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

SETUP = """import perfkit.notebook as nb

nb.setup()  # figures as inline SVG in perfkit's theme: no JavaScript, no CDN, they survive export
cat = nb.open_data(data_dir, min_runs={min_runs})
run = cat.require_run(run_id)
m = cat.manifest(run)
print(f"run {{run}}: {{m.get('label') or 'no label'}}; status {{m['status']}}; {{len(m['phases'])}} phases")"""


def nb_01() -> list:
    return [
        new_markdown_cell(
            "# Explore a run\n\nWhat a run asked of the endpoint, what it got back, and how sure we "
            "can be of each number. Every table and figure here comes from `perfkit` over the run's "
            "Parquet files (DuckDB); run it on the demo data (made if missing) or on any run with "
            "`perfkit report --notebook notebooks/01_explore_a_run.ipynb -p run_id=RUN_ID`."
        ),
        new_code_cell(PARAMS_RUN, metadata={"tags": ["parameters"]}),
        new_code_cell(SETUP.format(min_runs=1)),
        new_markdown_cell(
            "## Did the client do what was asked?\n\nRequested is the phase's nominal rate, "
            "scheduled what this realisation of the arrival process asked for, achieved what was "
            "sent. A large schedule lag means the client, not the server, set the pace; latencies "
            "*from the intended send* show what users arriving on schedule saw."
        ),
        new_code_cell("cat.fidelity(run).df()"),
        new_markdown_cell(
            "## Latency per phase\n\nOver successful requests, warm-up excluded. TTFT: time to first "
            "token; ITL: gap between streamed chunks; TPOT: (last − first token) / (tokens − 1); E2E: "
            "the whole request."
        ),
        new_code_cell("cat.summary(run).df()"),
        new_markdown_cell(
            "## How sure are these percentiles?\n\nConsecutive requests are correlated (they share "
            "the server's queue), so a phase holds fewer *effectively independent* samples than "
            "requests. The intervals use that effective size; a percentile without enough of them "
            "is marked not estimable rather than printed with false precision."
        ),
        new_code_cell(
            "from perfkit.analysis import percentile_table\n\n"
            "pt = percentile_table(cat, run)\n"
            "pt[['phase', 'metric', 'q', 'estimate', 'lo', 'hi', 'n', 'n_eff', 'estimable']]"
        ),
        new_markdown_cell("## Over time\n\nEach request's TTFT with windowed p50 and p99; the phases are shaded."),
        new_code_cell(
            "from perfkit.report import cdf_figure, latency_figure, telemetry_figure, "
            "throughput_figure\n\nlatency_figure(cat, run)"
        ),
        new_code_cell("cdf_figure(cat, run)"),
        new_code_cell("throughput_figure(cat, run)"),
        new_markdown_cell(
            "## Beside the requests: GPU, server and host\n\nRecorded on the requests' clock. On the "
            "simulator the GPU counters are SIMULATED and labelled so."
        ),
        new_code_cell(
            "tele = telemetry_figure(cat, run)\ntele if tele is not None else print('this run recorded no telemetry')"
        ),
        new_markdown_cell(
            "## Your own questions, in SQL\n\nThe views `requests`, `chunks`, `runs` and the "
            "telemetry tables hold every run in the folder (`perfkit schema` lists the columns)."
        ),
        new_code_cell(
            'cat.sql(f"""\n'
            "    SELECT phase, count(*) AS requests, round(median(ttft_ms), 1) AS ttft_p50_ms,\n"
            "           round(quantile_cont(ttft_ms, 0.9), 1) AS ttft_p90_ms,\n"
            "           round(avg(output_tokens), 1) AS output_tokens\n"
            "    FROM requests WHERE run_id = '{run}' AND ok GROUP BY phase ORDER BY min(sent_ns)\n"
            '""").df()'
        ),
        new_markdown_cell("## What to be careful about\n\nThe warnings the report prints for this run."),
        new_code_cell(
            "from perfkit.report.run_report import run_warnings\n\n"
            "for w in run_warnings(m, cat.summary(run).df(), cat.fidelity(run).df()):\n"
            "    print('-', w.replace('**', ''))"
        ),
    ]


def nb_02() -> list:
    return [
        new_markdown_cell(
            "# Stability and changepoints\n\nIs the deployment stable under load, and when did it "
            "change? First the steady state of each phase (warm-up cut by MSER-5, then drift and "
            "variation of windowed percentiles); then the changes found in 1-s windows of latency and "
            "of the counters, each with a p-value, a location interval and a size interval. On the "
            "simulator the injected events are the ground truth the changes are checked against."
        ),
        new_code_cell(PARAMS_RUN, metadata={"tags": ["parameters"]}),
        new_code_cell(SETUP.format(min_runs=1)),
        new_markdown_cell("## Steady state per phase"),
        new_code_cell("from perfkit.analysis import stability_table\n\nstability_table(cat, run)"),
        new_markdown_cell(
            "## Changes in every series\n\nA change is reported when its Holm-adjusted p-value is "
            "below 0.05 and it is at least 5%; `ratio` is after / before (medians of the segments), "
            "with its 95% interval."
        ),
        new_code_cell("from perfkit.analysis import change_table\n\nchanges = change_table(cat, run)\nchanges"),
        new_markdown_cell(
            "## Median TTFT, and the ground truth\n\nThe detected changes (red: location and its "
            "interval) over the windowed series; grey spans are events the simulator injected."
        ),
        new_code_cell(
            "from perfkit.analysis import detect_changes, injected_events, run_series\n"
            "from perfkit.report.charts import changes_chart\n\n"
            "truth = injected_events(cat, run)\n"
            "try:\n"
            "    res = detect_changes(cat, run, 'ttft_p50_ms')\n"
            "except ValueError as exc:  # a run too short to split: the reason, and what would allow it\n"
            "    res = None\n"
            "    print(exc)\n"
            "if res is not None:\n"
            "    display(changes_chart(run_series(cat, run, 'ttft_p50_ms'), res.changes, 'TTFT p50 (ms)',\n"
            "                          truth=list(zip(truth.start_s, truth.end_s))))"
        ),
        new_markdown_cell(
            "## How the answer depends on the penalty\n\nThe penalty follows a stated rule "
            "(3 σ² τ log n on the long-run noise); the path shows which changes persist over a "
            "hundredfold range of penalties, and which appear only when it is low."
        ),
        new_code_cell(
            "if res is not None:\n"
            "    display(res.penalty_path().groupby('n_changes', as_index=False).agg(\n"
            "        penalty_from=('penalty', 'min'), penalty_to=('penalty', 'max')))"
        ),
        new_markdown_cell(
            "## Found against injected\n\nFor each injected event, the nearest change in TTFT p50 "
            "and in the SM clock (on a real endpoint there is no ground truth and this says so)."
        ),
        new_code_cell(
            "if truth.empty:\n"
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
            "                f'x{near.ratio:.2f} [{near.ratio_lo:.2f}, {near.ratio_hi:.2f}]'))"
        ),
    ]


def nb_03() -> list:
    return [
        new_markdown_cell(
            "# Tail latency: what drives it\n\nQuantile regression of each request's TTFT on what the "
            "server was doing while it ran (sequences running, KV-cache use) and on the request "
            "itself (prompt length), at the median and in the tail. Requests that ran close together "
            "share a queue, so the intervals are *cluster-robust*, with clusters of consecutive "
            "requests; the predicted quantiles never cross. Beyond the data (p99.9 from a few "
            "hundred requests) a generalised Pareto tail takes over from the empirical quantile."
        ),
        new_code_cell(PARAMS_RUN, metadata={"tags": ["parameters"]}),
        new_code_cell(SETUP.format(min_runs=1)),
        new_markdown_cell(
            "## One row per request, with what it saw\n\nCounters averaged over each request's "
            "lifetime (an interval join on the one clock)."
        ),
        new_code_cell(
            "rt = cat.request_telemetry(run, ['running', 'kv_usage']).df()\n"
            "rt = rt[rt.ok & ~rt.warmup & rt.ttft_ms.gt(0)].dropna(subset=['running']).sort_values('sent_ns')\n"
            "print(f'{len(rt)} requests')\n"
            "rt[['phase', 'ttft_ms', 'prompt_tokens', 'running', 'kv_usage']].describe().round(2)"
        ),
        new_markdown_cell(
            "## The fit\n\n`log(TTFT)` so coefficients read as relative effects: `exp(coef) − 1` "
            "per unit. Clusters are blocks of 20 consecutive requests."
        ),
        new_code_cell(
            "import numpy as np\n"
            "from perfkit.analysis import quantile_regression\n\n"
            "qs = (0.5, 0.9) if len(rt) < 1000 else (0.5, 0.9, 0.99)  # p99 needs ~1,000 rows to fit\n"
            "fit = quantile_regression(rt, 'np.log(ttft_ms) ~ running + prompt_tokens', qs, block=20, "
            "order='sent_ns')\n"
            "print(f'{fit.n} requests in {fit.n_clusters} clusters')\n"
            "fit.table().round(4)"
        ),
        new_markdown_cell(
            "## Predicted TTFT quantiles as the batch fills\n\nAt the median prompt length, for "
            "0 to the largest number of running sequences seen; intervals at 95%."
        ),
        new_code_cell(
            "import altair as alt\nimport pandas as pd\n\nfrom perfkit.report.charts import log_ticks\n\n"
            "grid = pd.DataFrame({'running': np.linspace(0, rt.running.max(), 25),\n"
            "                     'prompt_tokens': rt.prompt_tokens.median()})\n"
            "pred = fit.predict(grid).merge(grid.reset_index(names='row'), on='row')\n"
            "pred[['estimate', 'lo', 'hi']] = np.exp(pred[['estimate', 'lo', 'hi']])\n"
            "pred['quantile'] = 'p' + (100 * pred.q).map('{:g}'.format)\n"
            "ticks = log_ticks(pred.lo.min(), pred.hi.max())  # a log axis labelled at 1, 2, 5 x 10^k\n"
            "y_scale = alt.Scale(type='log', domain=[ticks[0], ticks[-1]], nice=False)\n"
            "base = alt.Chart(pred).encode(x=alt.X('running:Q', title='sequences running', "
            "scale=alt.Scale(nice=False)),\n"
            "                              color=alt.Color('quantile:N', title=None))\n"
            "(base.mark_area(opacity=0.2).encode(y=alt.Y('lo:Q', title='TTFT (ms)', "
            "scale=y_scale, axis=alt.Axis(values=ticks)), y2='hi:Q')\n"
            " + base.mark_line().encode(y='estimate:Q')).properties(width=560, height=260,\n"
            "    title='Predicted TTFT quantiles against batch occupancy (95% intervals)')"
        ),
        new_markdown_cell(
            "## Beyond the data: a Pareto tail\n\nThe run's p99.9 TTFT from a generalised Pareto "
            "fit to the worst 10% of requests, with a block-bootstrap interval, beside the empirical "
            "value (which, with fewer than 1,000 requests, is simply the maximum)."
        ),
        new_code_cell(
            "from perfkit.analysis import pot_quantile\n\n"
            "try:\n"
            "    tail = pot_quantile(rt.ttft_ms.to_numpy(), 0.999)\n"
            "    print(f'TTFT p99.9: {tail.estimate:.1f} ms [{tail.lo:.1f}, {tail.hi:.1f}] from a Pareto tail '\n"
            "          f'(xi = {tail.xi:.2f}, {tail.n_exceed} requests above {tail.threshold:.1f} ms); '\n"
            "          f'empirical {np.quantile(rt.ttft_ms, 0.999):.1f} ms, maximum {rt.ttft_ms.max():.1f} ms')\n"
            "except ValueError as exc:\n"
            "    print('no tail fit:', exc)"
        ),
        new_markdown_cell(
            "Caveats: a regression on one run describes that run's load path, and load, KV use and "
            "queue length move together, so coefficients are associations, not causes; a sweep "
            "across runs (cluster by `run_id`) separates them better. The Pareto tail's 95% "
            "intervals covered 90–92.5% in simulation: read them as slightly narrow."
        ),
    ]


def nb_04() -> list:
    return [
        new_markdown_cell(
            "# Where is the bottleneck?\n\nFor each phase: where the mean request's time went "
            "(sent late by the client, connection, server queue, prefill, decode), whether the "
            "server's own count of requests agrees with the client's clock (Little's law), and the "
            "named limit with its evidence and its confidence. The rules are stated in "
            "`perfkit.analysis.attribution`; on simulator scenarios built to have one known "
            "bottleneck each, `bench/attribution.py` scores them."
        ),
        new_code_cell(PARAMS_RUN, metadata={"tags": ["parameters"]}),
        new_code_cell(SETUP.format(min_runs=1)),
        new_markdown_cell(
            "## The verdict per phase\n\nThe first rule that holds names the phase: error-bound, "
            "client-bound, power/thermal-throttled, KV-capacity-bound, queue-bound, "
            "prefill-compute-bound, decode-bound. The confidence is the share of bootstrap replicates "
            "(the phase's seconds resampled in blocks) that reach the same verdict."
        ),
        new_code_cell(
            "from perfkit.analysis import attribute\n\n"
            "res = attribute(cat, run)\n"
            "for p in res:\n"
            "    print(f'{p.phase:>10}: {p.verdict:<24} confidence {p.confidence:.0%}  ({\"; \".join(p.reasons)})')"
        ),
        new_markdown_cell(
            "## Where the time went\n\nThe mean request of each phase, ms. The queue is not visible "
            "in a stream: it is the server's mean `waiting` gauge over the arrival rate (Little's "
            "law), and prefill is what remains of the wait for the first token."
        ),
        new_code_cell(
            "import pandas as pd\n\n"
            "parts = pd.DataFrame([{'phase': p.phase, **p.breakdown} for p in res]).set_index('phase')\n"
            "display(parts.round(1))\n"
            "import altair as alt\n"
            "long = parts.drop(columns='e2e').reset_index().melt('phase', var_name='part', value_name='ms')\n"
            "# a part below 0 (the server's mean a little above the client's, within their clocks' error) is drawn "
            "as 0\n"
            "long['ms'] = long.ms.clip(lower=0)\n"
            "alt.Chart(long).mark_bar().encode(y=alt.Y('phase:N', sort=list(parts.index)), x='ms:Q', "
            "color=alt.Color('part:N', sort=list(parts.columns))).properties(width=480, "
            "title='Mean request, by part (ms)')"
        ),
        new_markdown_cell(
            "## Little's law\n\nIn a steady phase the mean number of requests in the server equals "
            "the arrival rate times the mean time in it (L = λW). The left side comes from the "
            "server's own metrics (running + waiting), the right from the client's clock; a large "
            "gap means requests wait somewhere the server does not count (the client, the network, "
            "a proxy), or the phase is not steady."
        ),
        new_code_cell("pd.DataFrame([{'phase': p.phase, **p.little} for p in res]).round(2)"),
        new_markdown_cell(
            "## The evidence\n\nWhat each rule looked at, per phase; a column the run did not record "
            "(no `/metrics`, no GPU counters) is missing, and the rules that need it were skipped."
        ),
        new_code_cell("pd.DataFrame([{'phase': p.phase, **p.evidence} for p in res]).round(3)"),
        new_markdown_cell("## Over time"),
        new_code_cell(
            "from perfkit.report import telemetry_figure\n\n"
            "tele = telemetry_figure(cat, run)\n"
            "tele if tele is not None else print('this run recorded no telemetry')"
        ),
    ]


def nb_05() -> list:
    return [
        new_markdown_cell(
            "# Compression trade-offs\n\nWhich model variant (fp16, int8, int4, pruned, distilled) "
            "gives the best quality for its cost? Each variant's runs are tagged with its name "
            "(`perfkit run --tag variant=int8`). Its *SLO-feasible load* is the highest request rate "
            "at which every SLO holds, read from a rate sweep with a confidence bracket; cost per "
            "million output tokens follows from a $/GPU-hour price at that rate, and energy per token "
            "from the GPU's energy counter. Quality comes from evaluation results "
            "(lm-evaluation-harness JSON or a CSV). The Pareto frontier keeps the variants no other "
            "beats on every objective, with the bootstrap probability of each being on it.\n\n"
            "Out of the box this runs on the simulator's three variants, whose quality figures are "
            "**SIMULATED** (stated in their config, not measured on a model)."
        ),
        new_code_cell(
            "# parameters (papermill: -p data_dir=... -p quality_file=results.json ...)\n"
            "data_dir = None  # None: ../data beside notebooks/, where the simulated variants are measured "
            "if there are none\n"
            "slos = 'ttft_p90<=200ms,itl_p99<=50ms'\n"
            "gpu_hour_usd = 2.5\n"
            "quality_file = None  # None: the simulator's stated quality; else a CSV/JSON of variant, value, "
            "stderr",
            metadata={"tags": ["parameters"]},
        ),
        new_code_cell(
            "import perfkit.notebook as nb\n"
            "from perfkit.analysis import read_quality, tradeoff_levels, tradeoffs\n\n"
            "nb.setup()\n"
            "cat = nb.open_variants(data_dir)\n"
            "quality = read_quality(quality_file) if quality_file else None\n"
            "levels = tradeoff_levels(cat, slos=slos)\n"
            "levels[['variant', 'phase', 'output_tokens_per_s', 'ttft_p50_ms', 'ttft_p90_ms', "
            "'energy_j_per_token', 'slo_verdict']]"
        ),
        new_markdown_cell(
            "## Each variant at its SLO-feasible load\n\n`load` is the interpolated maximum "
            "sustainable rate (req/s) and `load_lo`–`load_hi` its 95% bracket: the highest level that "
            "met every SLO with confidence, and the lowest that missed one. The cost interval is the "
            "cost at the bracket's ends."
        ),
        new_code_cell(
            "tab = tradeoffs(cat, quality=quality, slos=slos, gpu_hour_usd=gpu_hour_usd)\n"
            "tab[['variant', 'load', 'load_lo', 'load_hi', 'output_tokens_per_s', 'cost_per_mtok_usd', "
            "'cost_per_mtok_usd_lo', 'cost_per_mtok_usd_hi', 'energy_j_per_token', 'quality', "
            "'quality_recovery_pct', 'on_front', 'p_front']]"
        ),
        new_markdown_cell(
            "## The trade-off curve\n\nFilled points are on the frontier of cost and quality; the "
            "dashed staircase bounds what the variants can reach."
        ),
        new_code_cell("from perfkit.report import tradeoff_chart\n\ntradeoff_chart(tab)"),
        new_markdown_cell(
            "## Three objectives\n\nAdding tail latency (TTFT p90 at the highest feasible level) as a "
            "third objective can bring a variant back onto the frontier."
        ),
        new_code_cell(
            "three = tradeoffs(cat, quality=quality, slos=slos, gpu_hour_usd=gpu_hour_usd, "
            "objectives=('cost', 'quality', 'latency'))\n"
            "three[['variant', 'cost_per_mtok_usd', 'quality', 'ttft_p90_ms', 'on_front', 'p_front']]"
        ),
    ]


def nb_06() -> list:
    return [
        new_markdown_cell(
            "# Compare runs, and capacity\n\nDid the candidate get slower than the baseline? Each "
            "percentile is compared with a bootstrap that keeps the runs' autocorrelation (blocks of "
            "consecutive requests), false alarms are controlled across the whole table (Holm), and "
            "a change must exceed 5% to count. With the demo's two seeds of the same configuration, "
            "the right answer is *no significant change*."
        ),
        new_code_cell(
            "# parameters (papermill: -p baseline=RUN_A -p candidate=RUN_B)\n"
            "data_dir = None\n"
            "baseline = None  # None: the second newest run\n"
            "candidate = None  # None: the newest run",
            metadata={"tags": ["parameters"]},
        ),
        new_code_cell(
            "import perfkit.notebook as nb\n\n"
            "nb.setup()\n"
            "cat = nb.open_data(data_dir, min_runs=2)\n"
            "ids = nb.plain_runs(cat)  # runs tagged with a model variant are for notebook 05\n"
            "a = cat.require_run(baseline or ids[-2])\n"
            "b = cat.require_run(candidate or ids[-1])\n"
            'print(f\'baseline {a} ({cat.manifest(a).get("label")}), candidate {b} '
            '({cat.manifest(b).get("label")})\')'
        ),
        new_markdown_cell("## The comparison"),
        new_code_cell(
            "from perfkit.analysis import compare_runs\n\n"
            "res = compare_runs(cat, a, b)\n"
            "print('verdict:', res.verdict)\n"
            "res.table[['metric', 'q', 'a', 'b', 'rel_change', 'rel_lo', 'rel_hi', 'p_adjusted', "
            "'verdict']]"
        ),
        new_code_cell("from perfkit.report import compare_cdf_figure\n\ncompare_cdf_figure(cat, [a, b])"),
        new_markdown_cell(
            "## SLO attainment per phase\n\nThe share of each class's requests that met every "
            "objective of its SLO, and the goodput, in both runs."
        ),
        new_code_cell(
            "cat.slo([a, b]).df()[['run_id', 'phase', 'class_name', 'requests', 'slo_attainment', 'goodput_rps']]"
        ),
        new_markdown_cell(
            "## Capacity: where latency turns\n\nThe saturation knee needs a sweep: five or more "
            "load levels (for example `perfkit run scenarios/sweep.yaml`). For the newest such run "
            "in the folder, a continuous two-segment fit of log TTFT p50 against the achieved rate "
            "gives the load where latency stops being flat, with a bootstrap interval; and the highest "
            "rate at which the chat SLOs hold (TTFT p99 ≤ 200 ms, ITL p99 ≤ 50 ms), with its confidence "
            "bracket: the highest level that met them with confidence and the lowest that missed one."
        ),
        new_code_cell(
            "from perfkit.analysis import NotASweepError, load_levels, max_sustainable_load, run_knee\n\n"
            "def is_sweep(r):\n"
            "    try:\n"
            "        load_levels(cat, r, minimum=5, purpose='a knee')\n"
            "        return True\n"
            "    except NotASweepError:\n"
            "        return False\n\n"
            "sweeps = [r for r in reversed(cat.run_ids()) if is_sweep(r)]\n"
            "if not sweeps:\n"
            "    try:  # says why the newest run is not one, and which scenario makes one\n"
            "        run_knee(cat, b)\n"
            "    except NotASweepError as exc:\n"
            "        print(f'no knee here: {exc}')\n"
            "else:\n"
            "    k = run_knee(cat, sweeps[0])\n"
            "    print(f'run {sweeps[0]}: TTFT p50 turns at {k}')\n"
            "    cap = max_sustainable_load(cat, sweeps[0], 'chat')\n"
            "    print(cap)\n"
            "    display(cap.levels[['load', 'phase', 'verdict', 'binding']])"
        ),
    ]


NOTEBOOKS = {
    "01_explore_a_run": nb_01,
    "02_stability_and_changepoints": nb_02,
    "03_tail_latency_regression": nb_03,
    "04_bottleneck_investigation": nb_04,
    "05_compression_tradeoffs": nb_05,
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
