"""``perfkit sim``: serve the simulated OpenAI-compatible LLM endpoint."""

from __future__ import annotations

import argparse
from typing import Any

from perfkit.cli.common import add_fault_flags, fault_options
from perfkit.errors import ConfigError

NAME = "sim"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser(
        NAME,
        help="serve the simulated OpenAI-compatible LLM endpoint",
        description="Serve the simulated LLM endpoint until Ctrl-C: /v1/models, /v1/completions, "
        "/v1/chat/completions (streamed or not), /metrics with vLLM's names, /sim/log, "
        "/sim/events, /sim/gpu.",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    s.add_argument("--config", metavar="FILE", help="YAML or JSON simulator config (engine parameters, events)")
    s.add_argument("--seed", type=int, help="override the config's seed")
    s.add_argument(
        "--variant",
        choices=("fp16", "int8", "int4"),
        help="simulate this precision of the model: faster, more KV cache, a little less quality",
    )
    s.add_argument("--log", metavar="FILE", help="append one JSON line per finished request to this file")
    s.add_argument(
        "--reject-field",
        action="append",
        default=[],
        metavar="NAME",
        help="answer requests carrying this body field with HTTP 400, as hosted APIs answer fields they do not "
        "know (repeatable; e.g. ignore_eos, or stream_options.continuous_usage_stats for a key inside an object)",
    )
    s.add_argument(
        "--max-num-queued-reqs",
        type=int,
        metavar="N",
        help="refuse requests beyond N in flight with HTTP 503 and count them in vllm:admission_rejections_total, "
        "as vLLM's option of that name does (default: no limit)",
    )
    add_fault_flags(s, "the simulated endpoint (served behind the fault proxy of `perfkit chaos`)")
    return s


def run(a: argparse.Namespace) -> int:
    import dataclasses

    from perfkit.chaos import faults_from_args
    from perfkit.sim.config import SimConfig, load_sim_config
    from perfkit.sim.process import serve

    cfg = load_sim_config(a.config) if a.config else SimConfig()
    if a.variant:
        from perfkit.sim.variants import variant_config

        cfg = variant_config(a.variant, cfg)
    if a.seed is not None:
        cfg = dataclasses.replace(cfg, seed=a.seed)
    if a.reject_field:
        cfg = dataclasses.replace(cfg, reject_fields=(*cfg.reject_fields, *a.reject_field))
    if a.max_num_queued_reqs is not None:
        cfg = dataclasses.replace(cfg, max_num_queued_reqs=a.max_num_queued_reqs)
    if not 0 <= a.port <= 65535:
        raise ConfigError(f"--port {a.port} is not a port number (0-65535; 0 picks a free one)")
    try:
        serve(cfg, a.host, a.port, a.log, faults_from_args(a.fault), fault_options(a))
    except OSError as exc:
        raise ConfigError(
            f"cannot serve on {a.host}:{a.port}: {exc.strerror or exc}; pick another --port (0 picks a free one)"
        ) from None
    return 0
