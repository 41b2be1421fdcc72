"""Scenario files: a run described as phases in order, in YAML (or JSON).

A scenario names its phases, each with a load shape and a duration or a
request count, the user classes that make the traffic, and their SLOs::

    name: baseline-to-recovery
    seed: 7
    classes:
      - {name: chat, weight: 3, prompt_tokens: "lognormal:200,0.5", output_tokens: 128,
         slo: {ttft_ms: 200, tpot_ms: 50}}
      - {name: rag, weight: 1, prompt_tokens: 1500, output_tokens: 256,
         slo: {ttft_ms: 300, tpot_ms: 100, e2e_ms: 3000}}
    phases:
      - {name: baseline, duration_s: 30, load: {rate: 4}}
      - {name: ramp, duration_s: 30, load: {ramp: {from: 4, to: 16}}}
      - {name: burst, duration_s: 20, load: {rate: 8, spikes: [{at_s: 5, duration_s: 4, factor: 4}]}}
      - {name: users, duration_s: 30, load: {users: 16, think_time_s: 0.5, ramp_s: 10}}
      - {name: replay, load: {trace: traces/sample.csv, time_scale: 0.5}}
      - {name: sweep, load: {sweep: {rates: [2, 8, 16], step_duration_s: 20,
                                     stop_when: {error_rate: 0.05, ttft_p99_ms: 2000}}}}

Every mistake is reported with the file, where in it, the field, the value
and what is allowed.  Relative paths (traces, datasets) are relative to the
scenario file.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from perfkit.errors import ConfigError
from perfkit.workload.arrivals import RateProfile
from perfkit.workload.checks import Probe
from perfkit.workload.content import IMPERFECT_KINDS, Slo, UserClass
from perfkit.workload.loaders import load_dataset, load_trace
from perfkit.workload.phase import PhaseSpec, StopRule

__all__ = ["Scenario", "load_scenario", "parse_scenario", "scenario_schema"]

_TOP = ("name", "description", "seed", "api", "defaults", "classes", "phases")
_PHASE = ("name", "duration_s", "requests", "warmup", "load", "classes", "prompt_tokens", "output_tokens")
_LOAD = (
    "users",
    "think_time_s",
    "ramp_s",
    "arrival",
    "rate",
    "burstiness",
    "ramp",
    "spikes",
    "trace",
    "time_scale",
    "max_in_flight",
    "sweep",
)
_CLASS = (
    "name",
    "weight",
    "prompt_tokens",
    "output_tokens",
    "turns",
    "think_time_s",
    "shared_prefix_tokens",
    "dataset",
    "imperfect",
    "cancel",
    "slo",
    "probes",
)
_SLO = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
_ARRIVALS = ("constant", "poisson", "gamma")
_RAMP = ("from", "to", "steps")
_SPIKE = ("at_s", "duration_s", "factor")
_SWEEP = ("rates", "from", "to", "steps", "step_duration_s", "arrival", "stop_when", "auto", "max_users")
_STOP = ("error_rate", "ttft_p99_ms", "min_completion")
_CANCEL = ("fraction", "after_s")


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario: its phases (ready for the runner) and what it was made from."""

    name: str
    phases: tuple[PhaseSpec, ...]
    seed: int = 0
    api: str | None = None
    description: str = ""
    source: str = ""
    raw: Any = None

    def scaled(self, k: float) -> Scenario:
        """The same scenario with every duration (and trace offset) multiplied by ``k``, for quick runs."""
        phases = []
        for p in self.phases:
            kw: dict[str, Any] = {"duration_s": p.duration_s * k if p.duration_s else None}
            if p.trace is not None:
                kw["trace"] = replace(p.trace, offsets=tuple(int(o * k) for o in p.trace.offsets))
            if p.profile is not None:
                kw["profile"] = RateProfile(tuple((t * k, r) for t, r in p.profile.points))
            kw["ramp_users_s"] = p.ramp_users_s * k
            phases.append(replace(p, **kw))
        return replace(self, phases=tuple(phases))


class _Ctx:
    """Where in which file a value sits, for error messages."""

    def __init__(self, source: str, path: str = "") -> None:
        self.source, self.path = source, path

    def at(self, part: str) -> _Ctx:
        return _Ctx(
            self.source, f"{self.path}.{part}" if self.path and not part.startswith("[") else f"{self.path}{part}"
        )

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.path or '(top level)'}: {message}")

    def mapping(self, obj: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise self.error(f"expected a mapping of {', '.join(allowed)}; got {type(obj).__name__} {obj!r}")
        for key in obj:
            if key not in allowed:
                near = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise self.at(str(key)).error(f"unknown field {key!r}{hint}; allowed: {', '.join(allowed)}")
        obj = {k: v for k, v in obj.items() if v is not None}  # YAML's empty value (`rate:`) means not given
        for key in required:
            if key not in obj:
                raise self.error(f"missing required field {key!r}")
        return obj

    def number(
        self,
        obj: dict[str, Any],
        key: str,
        *,
        minimum: float | None = None,
        strict: bool = False,
        integer: bool = False,
        default: Any = None,
    ) -> Any:
        if key not in obj or obj[key] is None:
            return default
        v = obj[key]
        kind = "an integer" if integer else "a number"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not float(v).is_integer()):
            raise self.at(key).error(f"value {v!r} is not {kind}")
        if minimum is not None and (v <= minimum if strict else v < minimum):
            raise self.at(key).error(f"value {v!r} must be {'>' if strict else '>='} {minimum:g}")
        return int(v) if integer else float(v)

    def wrap(self, exc: ConfigError) -> ConfigError:
        return self.error(str(exc))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (YAML, or JSON by suffix)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"scenario file {str(p)!r} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise ConfigError(f"{p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {exc}") from None
    return parse_scenario(data, source=str(p), base_dir=p.parent)


def parse_scenario(data: Any, source: str = "scenario", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario given as a mapping (see the module docstring)."""
    ctx = _Ctx(source)
    top = ctx.mapping(data, _TOP, required=("phases",))
    base = base_dir or Path(".")
    seed = ctx.number(top, "seed", integer=True, default=0)
    api = top.get("api")
    if api is not None and api not in ("completions", "chat"):
        raise ctx.at("api").error(f"value {api!r} is not one of completions, chat")
    defaults = ctx.at("defaults").mapping(top.get("defaults") or {}, tuple(k for k in _PHASE if k != "name"))
    classes = _classes(ctx.at("classes"), top.get("classes"), base) if top.get("classes") is not None else None
    phases_raw = top["phases"]
    if not isinstance(phases_raw, list) or not phases_raw:
        raise ctx.at("phases").error("expected a non-empty list of phases")
    phases: list[PhaseSpec] = []
    for i, raw in enumerate(phases_raw):
        pctx = ctx.at(f"phases[{i}]")
        merged = {**defaults, **pctx.mapping(raw, _PHASE, required=("name", "load"))}
        pctx = ctx.at(f"phases[{i}] ({merged['name']!r})")
        phases += _phase(pctx, merged, classes, base)
    names = [p.name for p in phases]
    dup = sorted(n for n, k in Counter(names).items() if k > 1)
    if dup:
        raise ctx.at("phases").error(f"phase names must be unique; repeated: {', '.join(dup)}")
    return Scenario(
        str(top.get("name") or Path(source).stem),
        tuple(phases),
        seed,
        api,
        str(top.get("description") or ""),
        source,
        data,
    )


def _phase(ctx: _Ctx, raw: dict[str, Any], classes: tuple[UserClass, ...] | None, base: Path) -> list[PhaseSpec]:
    load = ctx.at("load").mapping(raw["load"], _LOAD)
    lctx = ctx.at("load")
    own_classes = _classes(ctx.at("classes"), raw["classes"], base) if raw.get("classes") is not None else classes
    if own_classes is not None:  # a class without its own lengths takes the phase's (and the defaults')
        try:
            own_classes = tuple(
                replace(
                    c, **{k: raw[k] for k in ("prompt_tokens", "output_tokens") if k in raw and k not in c.explicit}
                )
                for c in own_classes
            )
        except ConfigError as exc:
            raise ctx.wrap(exc) from None
    common: dict[str, Any] = {
        "duration_s": ctx.number(raw, "duration_s", minimum=0, strict=True),
        "requests": ctx.number(raw, "requests", minimum=1, integer=True),
        "warmup": bool(raw.get("warmup", False)),
        "classes": own_classes,
        "prompt_tokens": raw.get("prompt_tokens", 256),
        "output_tokens": raw.get("output_tokens", 128),
        "max_in_flight": lctx.number(load, "max_in_flight", minimum=1, integer=True),
    }
    kinds = [k for k in ("users", "rate", "ramp", "trace", "sweep") if load.get(k) is not None]
    if len(kinds) != 1:
        raise lctx.error(
            "give exactly one of users (closed loop), rate, ramp, trace or sweep (open loop); "
            f"got {', '.join(kinds) or 'none'}"
        )
    try:
        if "sweep" in load:
            return _sweep(lctx.at("sweep"), str(raw["name"]), load["sweep"], common)
        return [PhaseSpec(str(raw["name"]), **common, **_load(lctx, load, raw, base))]
    except ConfigError as exc:
        if str(exc).startswith(ctx.source):
            raise
        raise ctx.wrap(exc) from None


def _load(ctx: _Ctx, load: dict[str, Any], raw: dict[str, Any], base: Path) -> dict[str, Any]:
    if "users" in load:
        return {
            "concurrency": ctx.number(load, "users", minimum=1, integer=True),
            "think_time_s": ctx.number(load, "think_time_s", minimum=0, default=0.0),
            "ramp_users_s": ctx.number(load, "ramp_s", minimum=0, default=0.0),
        }
    for key in ("think_time_s", "ramp_s"):
        if key in load:
            raise ctx.at(key).error(f"{key} applies to closed-loop users only (load.users)")
    arrival = load.get("arrival", "poisson")
    if arrival not in _ARRIVALS:
        raise ctx.at("arrival").error(f"value {arrival!r} is not one of {', '.join(_ARRIVALS)}")
    burst = ctx.number(load, "burstiness", minimum=0, strict=True, default=1.0)
    if "burstiness" in load and arrival != "gamma":
        raise ctx.at("burstiness").error("burstiness needs arrival: gamma")
    out: dict[str, Any] = {"arrival": arrival, "burstiness": burst}
    if "trace" in load:
        tpath = base / str(load["trace"])
        scale = ctx.number(load, "time_scale", minimum=0, strict=True, default=1.0)
        try:
            out["trace"] = load_trace(tpath, scale)
        except ConfigError as exc:
            raise ctx.at("trace").error(str(exc)) from None
        return out
    if "ramp" in load:
        r = ctx.at("ramp").mapping(load["ramp"], _RAMP, required=("from", "to"))
        rc = ctx.at("ramp")
        lo, hi = rc.number(r, "from", minimum=0), rc.number(r, "to", minimum=0)
        steps = rc.number(r, "steps", minimum=1, integer=True)
        dur = raw.get("duration_s")
        if not dur:
            raise ctx.error("a ramp needs the phase's duration_s")
        profile = RateProfile.steps(lo, hi, steps, dur) if steps else RateProfile.linear(lo, hi, dur)
    else:
        profile = RateProfile.constant(ctx.number(load, "rate", minimum=0, strict=True))
    if "spikes" in load:
        if not isinstance(load["spikes"], list):
            raise ctx.at("spikes").error("expected a list of {at_s, duration_s, factor}")
        spikes = []
        for j, sp in enumerate(load["spikes"]):
            sc = ctx.at(f"spikes[{j}]")
            sp = sc.mapping(sp, _SPIKE, required=_SPIKE)
            spikes.append(
                (
                    sc.number(sp, "at_s", minimum=0),
                    sc.number(sp, "duration_s", minimum=0, strict=True),
                    sc.number(sp, "factor", minimum=0, strict=True),
                )
            )
        profile = profile.with_spikes(spikes)
    out["profile"] = profile
    return out


_MAX_SWEEP_STEPS = 1000


def _sweep(ctx: _Ctx, name: str, raw: Any, common: dict[str, Any]) -> list[PhaseSpec]:
    sw = ctx.mapping(raw, _SWEEP, required=("step_duration_s",))
    auto = bool(sw.get("auto", False))
    if auto and ("rates" in sw or "from" in sw):
        raise ctx.error("an automatic sweep measures its own rates; drop rates/from/to")
    if auto:
        rates = []
    elif "rates" in sw:
        rates = sw["rates"]
        if (
            not isinstance(rates, list)
            or not rates
            or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in rates)
        ):
            raise ctx.at("rates").error(f"value {rates!r} must be a non-empty list of rates > 0 requests/s")
        if len(rates) > _MAX_SWEEP_STEPS:
            raise ctx.at("rates").error(f"{len(rates)} rates is more than {_MAX_SWEEP_STEPS} steps")
    else:
        lo = ctx.number(sw, "from", minimum=0, strict=True)
        hi = ctx.number(sw, "to", minimum=0, strict=True)
        n = ctx.number(sw, "steps", minimum=2, integer=True, default=5)
        if n > _MAX_SWEEP_STEPS:
            raise ctx.at("steps").error(
                f"value {n} is more than {_MAX_SWEEP_STEPS} steps; a sweep that long is "
                "a mistake (split it into several scenarios if it is not)"
            )
        if lo is None or hi is None:
            raise ctx.error("give rates: [...] or from, to (and steps)")
        rates = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    stop = None
    if sw.get("stop_when") is not None:
        st = ctx.at("stop_when").mapping(sw["stop_when"], _STOP)
        stop = StopRule(
            ctx.at("stop_when").number(st, "error_rate", minimum=0),
            ctx.at("stop_when").number(st, "ttft_p99_ms", minimum=0, strict=True),
            ctx.at("stop_when").number(st, "min_completion", minimum=0, strict=True),
        )
    arrival = sw.get("arrival", "poisson")
    if arrival not in _ARRIVALS:
        raise ctx.at("arrival").error(f"value {arrival!r} is not one of {', '.join(_ARRIVALS)}")
    step = ctx.number(sw, "step_duration_s", minimum=0, strict=True)
    base = {**common, "duration_s": step}
    if auto:  # synchronous, then maximum throughput, then rates in between (set when they start)
        n = ctx.number(sw, "steps", minimum=1, integer=True, default=5)
        if n > _MAX_SWEEP_STEPS:
            raise ctx.at("steps").error(f"value {n} is more than {_MAX_SWEEP_STEPS} steps")
        users = ctx.number(sw, "max_users", minimum=2, integer=True, default=64)
        head = [
            PhaseSpec(f"{name}-synchronous", concurrency=1, group=name, **{**base, "max_in_flight": None}),
            PhaseSpec(f"{name}-throughput", concurrency=users, group=name, **{**base, "max_in_flight": None}),
        ]
        return head + [
            PhaseSpec(
                f"{name}-step{i}", rate=1.0, arrival=arrival, group=name, stop_when=stop, auto_rate=(i, n), **base
            )
            for i in range(1, n + 1)
        ]
    return [
        PhaseSpec(f"{name}@{r:g}", rate=float(r), arrival=arrival, group=name, stop_when=stop, **base) for r in rates
    ]


def _probes(ctx: _Ctx, raw: Any, base: Path) -> tuple[Probe, ...]:
    """Probes inline (a list of {prompt, check}) or from a JSONL file of them."""
    if isinstance(raw, str):
        path = base / raw
        if not path.is_file():
            raise ctx.error(f"file {str(path)!r} does not exist")
        try:
            raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except ValueError as exc:
            raise ctx.error(f"{path}: not JSON lines ({exc})") from None
    if not isinstance(raw, list) or not raw:
        raise ctx.error("expected a non-empty list of {prompt, check} or a JSONL file of them")
    out = []
    for i, p in enumerate(raw):
        try:
            out.append(Probe.from_dict(p))
        except ConfigError as exc:
            raise ctx.at(f"[{i}]").error(str(exc)) from None
    return tuple(out)


def _classes(ctx: _Ctx, raw: Any, base: Path) -> tuple[UserClass, ...]:
    if not isinstance(raw, list) or not raw:
        raise ctx.error("expected a non-empty list of user classes")
    out = []
    for i, c in enumerate(raw):
        cc = ctx.at(f"[{i}]")
        c = cc.mapping(c, _CLASS, required=("name",))
        cc = ctx.at(f"[{i}] ({c['name']!r})")
        kw: dict[str, Any] = {"name": str(c["name"])}
        for key in ("prompt_tokens", "output_tokens"):
            if key in c:
                kw[key] = c[key]
        kw["weight"] = cc.number(c, "weight", minimum=0, strict=True, default=1.0)
        kw["turns"] = cc.number(c, "turns", minimum=1, integer=True, default=1)
        kw["think_time_s"] = cc.number(c, "think_time_s", minimum=0, default=0.0)
        kw["shared_prefix_tokens"] = cc.number(c, "shared_prefix_tokens", minimum=0, integer=True, default=0)
        if c.get("imperfect") is not None and c["imperfect"] not in IMPERFECT_KINDS:
            raise cc.at("imperfect").error(f"value {c['imperfect']!r} is not one of {', '.join(IMPERFECT_KINDS)}")
        kw["imperfect"] = c.get("imperfect")
        if c.get("cancel") is not None:
            can = cc.at("cancel").mapping(c["cancel"], _CANCEL, required=_CANCEL)
            kw["cancel_fraction"] = cc.at("cancel").number(can, "fraction", minimum=0)
            kw["cancel_after_s"] = cc.at("cancel").number(can, "after_s", minimum=0, strict=True)
            if kw["cancel_fraction"] > 1:
                raise cc.at("cancel.fraction").error(f"value {kw['cancel_fraction']!r} must be <= 1")
        if c.get("slo") is not None:
            sc = cc.at("slo")
            s = sc.mapping(c["slo"], _SLO)
            tpot = sc.number(s, "tpot_ms", minimum=0, strict=True)
            itl = sc.number(s, "itl_ms", minimum=0, strict=True)
            if tpot is not None and itl is not None:
                raise sc.error("give tpot_ms or its alias itl_ms, not both")
            try:
                kw["slo"] = Slo(
                    sc.number(s, "ttft_ms", minimum=0, strict=True),
                    tpot if tpot is not None else itl,
                    sc.number(s, "e2e_ms", minimum=0, strict=True),
                )
            except ConfigError as exc:
                raise sc.wrap(exc) from None
        if c.get("dataset") is not None:
            try:
                kw["dataset"] = load_dataset(base / str(c["dataset"]))
            except ConfigError as exc:
                raise cc.at("dataset").error(str(exc)) from None
        if c.get("probes") is not None:
            kw["probes"] = _probes(cc.at("probes"), c["probes"], base)
        kw["explicit"] = frozenset(k for k in ("prompt_tokens", "output_tokens") if k in c)
        try:
            out.append(UserClass(**kw))
        except ConfigError as exc:
            raise cc.wrap(exc) from None
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise ctx.error(f"class names must be unique, got {names}")
    return tuple(out)


# -- the published JSON Schema, made from the field lists above ------------------------------------------
def _num(minimum: float | None = None, *, integer: bool = False, strict: bool = False) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "integer" if integer else "number"}
    if minimum is not None:
        s["exclusiveMinimum" if strict else "minimum"] = minimum
    return s


def _lengths() -> dict[str, Any]:
    return {
        "description": "tokens: a number, or a distribution such as 'lognormal:256,0.5' or 'uniform:800,1600'",
        "type": ["integer", "string"],
    }


def _object(fields: tuple[str, ...], types: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object of exactly ``fields`` (an unknown field is an error, as in the loader)."""
    out: dict[str, Any] = {"type": "object", "additionalProperties": False}
    out["properties"] = {k: types[k] for k in fields}
    if required:
        out["required"] = list(required)
    return out


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, built from the loader's own field lists.

    It checks what a schema can: every field's name, type, range and allowed values, and the fields each
    object needs.  Rules that join fields (exactly one of ``users``, ``rate``, ``ramp``, ``trace`` or
    ``sweep``; ``burstiness`` only with ``arrival: gamma``; a ramp's phase needs ``duration_s``) stay in
    :func:`parse_scenario`, whose messages say where and why.  ``scenarios/scenario.schema.json`` is this,
    written out (``perfkit schema --scenario``); editors that read JSON Schema complete and check scenario
    files with it.
    """
    arrival = {"enum": list(_ARRIVALS)}
    slo = _object(_SLO, {k: _num(0, strict=True) for k in _SLO})
    cancel = _object(_CANCEL, {"fraction": {"type": "number", "minimum": 0, "maximum": 1}, "after_s": _num(0)}, _CANCEL)
    probes = {
        "description": "a JSONL file of {prompt, check}, or a list of them",
        "oneOf": [
            {"type": "string"},
            {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["prompt", "check"]}},
        ],
    }
    klass = _object(
        _CLASS,
        {
            "name": {"type": "string"},
            "weight": _num(0, strict=True),
            "prompt_tokens": _lengths(),
            "output_tokens": _lengths(),
            "turns": _num(1, integer=True),
            "think_time_s": _num(0),
            "shared_prefix_tokens": _num(0, integer=True),
            "dataset": {
                "type": "string",
                "description": "a ShareGPT-style JSON or JSONL file, relative to the scenario",
            },
            "imperfect": {"enum": [*IMPERFECT_KINDS, None]},
            "cancel": cancel,
            "slo": slo,
            "probes": probes,
        },
        ("name",),
    )
    stop = _object(_STOP, {"error_rate": _num(0), "ttft_p99_ms": _num(0, strict=True), "min_completion": _num(0)})
    sweep = _object(
        _SWEEP,
        {
            "rates": {"type": "array", "minItems": 1, "maxItems": _MAX_SWEEP_STEPS, "items": _num(0, strict=True)},
            "from": _num(0, strict=True),
            "to": _num(0, strict=True),
            "steps": _num(2, integer=True),
            "step_duration_s": _num(0, strict=True),
            "arrival": arrival,
            "stop_when": stop,
            "auto": {"type": "boolean"},
            "max_users": _num(1, integer=True),
        },
        ("step_duration_s",),
    )
    load = _object(
        _LOAD,
        {
            "users": _num(1, integer=True),
            "think_time_s": _num(0),
            "ramp_s": _num(0),
            "arrival": arrival,
            "rate": _num(0, strict=True),
            "burstiness": _num(0, strict=True),
            "ramp": _object(_RAMP, {"from": _num(0), "to": _num(0), "steps": _num(1, integer=True)}, ("from", "to")),
            "spikes": {
                "type": "array",
                "items": _object(
                    _SPIKE,
                    {"at_s": _num(0), "duration_s": _num(0, strict=True), "factor": _num(0, strict=True)},
                    _SPIKE,
                ),
            },
            "trace": {"type": "string", "description": "a trace file (JSONL or CSV), relative to the scenario"},
            "time_scale": _num(0, strict=True),
            "max_in_flight": _num(1, integer=True),
            "sweep": sweep,
        },
    )
    phase_types = {
        "name": {"type": "string"},
        "duration_s": _num(0, strict=True),
        "requests": _num(1, integer=True),
        "warmup": {"type": "boolean"},
        "load": load,
        "classes": {"type": "array", "minItems": 1, "items": klass},
        "prompt_tokens": _lengths(),
        "output_tokens": _lengths(),
    }
    phase = _object(_PHASE, phase_types, ("name",))
    defaults = _object(tuple(k for k in _PHASE if k != "name"), phase_types)
    top = _object(
        _TOP,
        {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "seed": {"type": "integer"},
            "api": {"enum": ["completions", "chat"]},
            "defaults": defaults,
            "classes": {"type": "array", "minItems": 1, "items": klass},
            "phases": {"type": "array", "minItems": 1, "items": phase},
        },
        ("phases",),
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "perfkit scenario",
        "description": "Phases of load against an endpoint (perfkit run SCENARIO). Made by "
        "perfkit.workload.scenario.scenario_schema() from the loader's own field lists; the loader also checks "
        "the rules that join fields (exactly one of users, rate, ramp, trace or sweep a phase, ...).",
        **top,
    }
