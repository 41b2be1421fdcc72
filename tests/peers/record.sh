#!/usr/bin/env bash
# Record the other tools' result files that tests/test_import.py reads, each by running the tool itself (installed
# from PyPI) against perfkit's simulator.  One workload for all: /v1/completions, 2,048-word prompts, 64 tokens
# an answer held exact (ignore_eos), Poisson arrivals at 5 req/s, 200 requests.  perfkit's own run of the same
# workload is made by the test.  On a 2-core machine the tools share the CPU with the simulator, so each is run
# with one worker process (GuideLLM starts 10 by default; with them its run measured a simulator slowed by
# 30% at the median), and prompts are long enough that a client's fixed overhead of 1-2 ms in TTFT stays under
# compare's 5% threshold of a change worth reporting.
#
#   GL=/path/to/venv-with-guidellm AP=/path/to/venv-with-aiperf VL=/path/to/venv-with-vllm bash tests/peers/record.sh
#
# Versions used for the committed files (2026-12-03, Python 3.11, Linux x86_64, no GPU): guidellm 0.8.1,
# aiperf 0.13.0, vllm 0.34.0 (installed with --no-deps beside torch and transformers; `vllm bench serve` needs
# none of the engine).  No model hub is reachable, so each tool is given a word-level tokenizer written by
# tests/peers/make_tokenizer.py, which counts tokens as the simulator does (whitespace words).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/fixtures"
PORT="${PORT:-8123}"
URL="http://127.0.0.1:$PORT"
TOK="$(mktemp -d)/tokenizer"
WORK="$(mktemp -d)"
"$GL/bin/python" "$HERE/make_tokenizer.py" "$TOK"
perfkit sim --port "$PORT" --seed 1 > "$WORK/sim.log" 2>&1 &
SIM=$!
trap 'kill $SIM' EXIT
for _ in $(seq 50); do curl -fs "$URL/v1/models" > /dev/null && break; sleep 0.2; done

# vLLM `bench serve`: per-request TTFT, ITL lists, latencies, start times (--save-detailed)
"$VL/bin/vllm" bench serve --backend openai --base-url "$URL" --model perfkit-sim-7b --tokenizer "$TOK" \
    --dataset-name random --random-input-len 2048 --random-output-len 64 --num-prompts 200 --request-rate 5 \
    --ignore-eos --seed 0 --save-result --save-detailed --result-dir "$WORK" --result-filename vllm.json
gzip -9c "$WORK/vllm.json" > "$OUT/vllm_bench_serve.json.gz"

# GuideLLM: the benchmarks JSON with every request's timings
GUIDELLM__MAX_WORKER_PROCESSES=1 "$GL/bin/guidellm" run \
    --backend "kind=openai_http,target=$URL,model=perfkit-sim-7b,request_format=/v1/completions" \
    --profile kind=poisson,rate=5 --constraint kind=max_requests,count=200 \
    --data kind=synthetic_text,prompt_tokens=2048,output_tokens=64 --tokenizer "kind=hf_auto,model=$TOK" \
    --output "kind=json,path=$WORK/guidellm.json" --disable-console-interactive
gzip -9c "$WORK/guidellm.json" > "$OUT/guidellm_benchmarks.json.gz"

# AIPerf: the per-record export (profile_export.jsonl) and its summary with the run's configuration
"$AP/bin/aiperf" profile --model perfkit-sim-7b --url "$URL" --endpoint-type completions --streaming \
    --request-rate 5 --arrival-pattern poisson --request-count 200 --isl 2048 --osl 64 --max-workers 1 \
    --extra-inputs ignore_eos:true --tokenizer "$TOK" --artifact-dir "$WORK/aiperf" --export-level records \
    --no-gpu-telemetry --no-server-metrics --random-seed 0
gzip -9c "$WORK/aiperf/profile_export.jsonl" > "$OUT/aiperf_profile_export.jsonl.gz"
gzip -9c "$WORK/aiperf/profile_export_aiperf.json" > "$OUT/aiperf_profile_export_aiperf.json.gz"
ls -l "$OUT"
