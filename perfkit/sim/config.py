"""Configuration of the simulated endpoint: engine parameters and scheduled events.

A config file is YAML or JSON with the fields of :class:`SimConfig`; ``events``
is a list of mappings, each with a ``kind`` and a window ``start_s``/``end_s``
in seconds after the simulator's epoch (its start, or the moment events were
posted to ``/sim/events``)::

    max_num_seqs: 64
    kv_capacity_tokens: 32768
    events:
      - {kind: slowdown, start_s: 30, end_s: 45, factor: 3.0}
      - {kind: error_burst, start_s: 50, end_s: 55, rate: 0.5, status: 503}
      - {kind: stall, start_s: 60, end_s: 62}
      - {kind: throttle, start_s: 70, end_s: 85, factor: 3.0}
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfkit.errors import ConfigError

__all__ = ["EVENT_KINDS", "SimConfig", "SimEvent", "load_sim_config"]

EVENT_KINDS = ("slowdown", "throttle", "error_burst", "stall")


@dataclass(frozen=True, slots=True)
class SimEvent:
    """A scheduled perturbation of the simulated engine.

    Parameters
    ----------
    kind : {"slowdown", "throttle", "error_burst", "stall"}
        ``slowdown`` multiplies every step's duration by ``factor``;
        ``throttle`` does the same because the simulated GPU's SM clock drops
        to 1/``factor`` of its maximum (thermal/hardware slowdown), which the
        simulated GPU counters show;
        ``error_burst`` answers a fraction ``rate`` of arriving requests with
        HTTP ``status`` (or, with ``status: 0``, an error object inside the
        stream after the first token); ``stall`` stops the step loop, so no
        token is produced, for the whole window.
    start_s, end_s : float
        The window, in seconds after the epoch.
    """

    kind: str
    start_s: float
    end_s: float
    factor: float = 1.0
    rate: float = 1.0
    status: int = 500

    def __post_init__(self) -> None:
        where = f"event {self.kind!r} [{self.start_s}, {self.end_s})"
        if self.kind not in EVENT_KINDS:
            raise ConfigError(f"event kind {self.kind!r} is not one of {', '.join(EVENT_KINDS)}")
        if not self.end_s > self.start_s >= 0:
            raise ConfigError(f"{where}: need 0 <= start_s < end_s (seconds)")
        if self.kind == "slowdown" and not self.factor > 0:
            raise ConfigError(f"{where}: factor must be > 0, got {self.factor}")
        if self.kind == "throttle" and not self.factor >= 1:
            raise ConfigError(f"{where}: factor must be >= 1 (the clock drops to 1/factor), got {self.factor}")
        if self.kind == "error_burst" and not 0 < self.rate <= 1:
            raise ConfigError(f"{where}: rate must be in (0, 1], got {self.rate}")
        if self.kind == "error_burst" and self.status not in (0, 429, 500, 502, 503, 504):
            raise ConfigError(f"{where}: status must be 0 (in-stream) or one of 429, 500, 502, 503, 504")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Parameters of the simulated serving engine.

    The step-time model (ms) is
    ``step_base_ms + prefill_ms_per_token * prefill_tokens
    + decode_ms_per_seq * decode_seqs + attn_ms_per_kv_token * kv_tokens``,
    multiplied by any active slowdown factor.  The defaults give a decode step
    of about 8 ms for one sequence and a saturation knee near 20 requests/s for
    256-token prompts and 128-token outputs.

    Parameters
    ----------
    model : str
        The model name served at ``/v1/models``.
    max_num_seqs : int
        Maximum sequences in a batch.
    max_batched_tokens : int
        Token budget of one step (decode tokens + prefill chunk), tokens.
    kv_capacity_tokens : int
        KV-cache capacity, tokens.
    kv_block_tokens : int
        KV-cache block size, tokens; allocations are rounded up to blocks.
    step_base_ms, prefill_ms_per_token, decode_ms_per_seq, attn_ms_per_kv_token : float
        Coefficients of the step-time model, ms.
    stream_interval : int
        Tokens per streamed chunk.
    natural_output_median, natural_output_sigma : float
        Lognormal law of the length (tokens) at which a request "hits EOS"
        when neither ``ignore_eos`` nor ``min_tokens`` forces a length.
    max_model_len : int
        Longest prompt + output accepted, tokens; longer requests get HTTP 400.
    probe_wrong_rate, probe_wrong_rate_full : float
        Probability that a probe (a request carrying ``X-Perfkit-Expected``) is
        answered wrongly with an empty batch, and with a full one (``max_num_seqs``
        running); linear in between, so quality degrades under load.
    seed : int
        Seed of every random draw (natural lengths, error bursts).
    variant : str, optional
        Name of the model variant this engine stands for (``fp16``, ``int8``, ``int4``...; set by
        :func:`perfkit.sim.variants.variant_config`); recorded in manifests so runs can be grouped by it.
    quality, quality_stderr : float, optional
        The variant's quality score on ``quality_task`` and its standard error: a stated,
        SIMULATED figure (the simulator cannot evaluate a model), so that trade-off analyses have
        a quality axis to read from the manifest.
    frontend_ms : float
        API-server time per request before the engine sees it (parsing, tokenising), served one request
        at a time, ms: a front end that saturates at 1000 / ``frontend_ms`` req/s.  0 (the default): none.
    max_num_queued_reqs : int
        Requests in flight (waiting or running) beyond which new ones are refused with HTTP 503 and counted in
        ``vllm:admission_rejections_total{reason="max_num_queued_reqs"}``, as vLLM's ``--max-num-queued-reqs``
        does.  0 (the default): no limit.
    reject_fields : tuple of str
        Request body fields answered with HTTP 400, as the OpenAI API answers fields it does not know
        (``ignore_eos``, ``min_tokens``; ``stream_options.continuous_usage_stats`` names a key inside an object):
        a server whose quirks a run's preflight must find.
    quality_task : str
        What ``quality`` measures.
    events : tuple of SimEvent
        Scheduled perturbations.
    """

    model: str = "perfkit-sim-7b"
    max_num_seqs: int = 64
    max_batched_tokens: int = 4096
    kv_capacity_tokens: int = 32768
    kv_block_tokens: int = 16
    step_base_ms: float = 7.5
    prefill_ms_per_token: float = 0.02
    decode_ms_per_seq: float = 0.12
    attn_ms_per_kv_token: float = 0.00008
    stream_interval: int = 1
    natural_output_median: float = 200.0
    natural_output_sigma: float = 0.6
    max_model_len: int = 16384
    probe_wrong_rate: float = 0.02
    probe_wrong_rate_full: float = 0.3
    seed: int = 0
    variant: str | None = None
    quality: float | None = None
    quality_stderr: float | None = None
    quality_task: str = "simulated accuracy"
    frontend_ms: float = 0.0
    max_num_queued_reqs: int = 0
    reject_fields: tuple[str, ...] = ()
    events: tuple[SimEvent, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reject_fields", tuple(self.reject_fields))  # a JSON list, read back
        positive = (
            "max_num_seqs",
            "max_batched_tokens",
            "kv_capacity_tokens",
            "kv_block_tokens",
            "stream_interval",
            "max_model_len",
            "step_base_ms",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"sim config: {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("prefill_ms_per_token", "decode_ms_per_seq", "attn_ms_per_kv_token", "frontend_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"sim config: {name} must be >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.max_num_queued_reqs, int) or self.max_num_queued_reqs < 0:
            raise ConfigError(
                f"sim config: max_num_queued_reqs must be an integer >= 0, got {self.max_num_queued_reqs!r}"
            )
        for name in ("probe_wrong_rate", "probe_wrong_rate_full"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"sim config: {name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.kv_capacity_tokens < self.kv_block_tokens:
            raise ConfigError("sim config: kv_capacity_tokens must hold at least one block")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "sim config") -> SimConfig:
        """Build from a mapping, naming any unknown or invalid field and the source."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of fields, got {type(data).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {unknown}; allowed: {sorted(known)}")
        kwargs = dict(data)
        raw_events = kwargs.pop("events", None) or []
        events = []
        for i, ev in enumerate(raw_events):
            if not isinstance(ev, dict) or "kind" not in ev:
                raise ConfigError(f"{source}: events[{i}] must be a mapping with a 'kind'")
            try:
                events.append(SimEvent(**ev))
            except TypeError as exc:
                allowed = [f.name for f in dataclasses.fields(SimEvent)]
                raise ConfigError(f"{source}: events[{i}]: {exc}; allowed fields: {allowed}") from None
            except ConfigError as exc:
                raise ConfigError(f"{source}: events[{i}]: {exc}") from None
        try:
            return cls(**kwargs, events=tuple(events))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (used in manifests and ``/sim/config``)."""
        return dataclasses.asdict(self)


def load_sim_config(path: str | Path) -> SimConfig:
    """Read a YAML or JSON simulator config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sim config file {str(p)!r} does not exist")
    text = p.read_text()
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as exc:
        raise ConfigError(f"{p}: cannot parse: {exc}") from None
    return SimConfig.from_dict(data, source=str(p))
