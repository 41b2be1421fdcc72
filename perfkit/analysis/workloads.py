"""Do two runs measure the same workload?  The check behind ``compare``: a difference in latency between a
64-token completion run and a 128-token chat run is the workload's, not the deployment's.

:func:`workload_differences` sets the two runs' manifests and data side by side: the model and API, whether
answers were held to an exact length, each compared phase's prompt and output lengths (as asked and as
served: the mean lengths the server reported may not differ by more than :data:`LENGTH_TOLERANCE`) and its
load (open or closed loop, rate or users, arrival process, ramps).  Each difference has a kind, so that a
deliberate one (two models on one workload) can be allowed while the rest are still checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perfkit.query.catalog import Catalog
from perfkit.query.frames import token_means

__all__ = ["KINDS", "LENGTH_TOLERANCE", "WorkloadDifference", "WorkloadMismatchError", "workload_differences"]

KINDS = ("model", "api", "sampling", "prompt", "output", "load")
"""The kinds of difference, in the order they are reported."""

LENGTH_TOLERANCE = 0.10
"""Largest relative difference of the mean prompt or output length (tokens) two runs may have."""

_LOAD_KEYS = ("mode", "rate", "concurrency", "arrival", "burstiness", "think_time_s", "ramp_users_s", "turns")


class WorkloadMismatchError(ValueError):
    """Two runs to be compared measured different workloads."""


@dataclass(frozen=True)
class WorkloadDifference:
    """One way two runs' workloads differ: its ``kind`` (one of :data:`KINDS`), what differs, and each side."""

    kind: str
    what: str
    a: Any
    b: Any

    def __str__(self) -> str:
        return f"{self.what}: {self.a} vs {self.b}"


def _phases(manifest: dict[str, Any], phase: str | None) -> list[dict[str, Any]]:
    specs = [p for p in manifest.get("phases") or [] if not p.get("warmup")]
    return [p for p in specs if p.get("name") == phase] if phase is not None else specs


def _load(p: dict[str, Any]) -> dict[str, Any]:
    d = {k: p.get(k) for k in _LOAD_KEYS}
    d["profile"] = "ramp or spikes" if p.get("profile") else None
    if d["mode"] == "closed":
        d.pop("rate")
    else:
        d.pop("concurrency")
    return d


def workload_differences(cat: Catalog, run_a: str, run_b: str, *, phase: str | None = None) -> list[WorkloadDifference]:
    """How run B's workload differs from run A's (empty: the same workload, as far as perfkit can tell).

    Parameters
    ----------
    cat : Catalog
    run_a, run_b : str
    phase : str, optional
        Compare this phase of each run only (as ``compare --phase``); default every non-warm-up phase.
    """
    a, b = cat.require_run(run_a), cat.require_run(run_b)
    ma, mb = cat.manifest(a), cat.manifest(b)
    ea, eb = ma.get("endpoint") or {}, mb.get("endpoint") or {}
    out: list[WorkloadDifference] = []
    if ea.get("model") != eb.get("model"):
        out.append(WorkloadDifference("model", "model", ea.get("model"), eb.get("model")))
    if ea.get("api") != eb.get("api"):
        out.append(WorkloadDifference("api", "API", ea.get("api"), eb.get("api")))
    # a run imported from another tool's file may not know a setting (None): what it does not know is not a
    # difference; the lengths as served below are still checked
    ia, ib = "imported" in ma, "imported" in mb

    def unknown(va: Any, vb: Any) -> bool:
        return (va is None and ia) or (vb is None and ib)

    if not unknown(ea.get("ignore_eos"), eb.get("ignore_eos")) and bool(ea.get("ignore_eos", True)) != bool(
        eb.get("ignore_eos", True)
    ):
        name = {True: "exact lengths (ignore_eos)", False: "the model stops on its own"}
        out.append(
            WorkloadDifference(
                "sampling",
                "answer length",
                name[bool(ea.get("ignore_eos", True))],
                name[bool(eb.get("ignore_eos", True))],
            )
        )
    pa, pb = _phases(ma, phase), _phases(mb, phase)
    if len(pa) != len(pb):
        out.append(
            WorkloadDifference(
                "load", "phases", ", ".join(p["name"] for p in pa) or "none", ", ".join(p["name"] for p in pb) or "none"
            )
        )
    for x, y in zip(pa, pb):
        label = x["name"] if x["name"] == y["name"] else f"{x['name']}/{y['name']}"
        for kind, key in (("prompt", "prompt_tokens"), ("output", "output_tokens")):
            if not unknown(x.get(key), y.get(key)) and str(x.get(key)) != str(y.get(key)):
                out.append(
                    WorkloadDifference(kind, f"phase {label}: {key.replace('_', ' ')} asked", x.get(key), y.get(key))
                )
        la, lb = _load(x), _load(y)
        for key in la:
            if not unknown(la.get(key), lb.get(key)) and la.get(key) != lb.get(key):
                out.append(
                    WorkloadDifference("load", f"phase {label}: {key.replace('_', ' ')}", la.get(key), lb.get(key))
                )
    # as served: what the server reported, whatever was asked
    sa, sb = token_means(cat, a, phase), token_means(cat, b, phase)
    for kind, key in (("prompt", "prompt_tokens"), ("output", "output_tokens")):
        va, vb = sa.get(key), sb.get(key)
        if va and vb and abs(vb / va - 1) > LENGTH_TOLERANCE:
            out.append(WorkloadDifference(kind, f"mean {key.replace('_', ' ')} served", f"{va:.0f}", f"{vb:.0f}"))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out, key=lambda d: order[d.kind])


def check_workloads(
    cat: Catalog, run_a: str, run_b: str, *, phase: str | None = None, allow: tuple[str, ...] = ()
) -> list[WorkloadDifference]:
    """:func:`workload_differences`, raising :class:`WorkloadMismatchError` on any of a kind not in ``allow``
    (``("all",)`` allows every kind); returns the allowed differences, to be shown beside the result."""
    bad = [k for k in allow if k not in KINDS and k != "all"]
    if bad:
        raise ValueError(f"unknown kind of workload difference {bad[0]!r}; kinds: {', '.join(KINDS)} or all")
    diffs = workload_differences(cat, run_a, run_b, phase=phase)
    refused = [d for d in diffs if d.kind not in allow and "all" not in allow]
    if refused:
        kinds = ",".join(dict.fromkeys(d.kind for d in refused))
        raise WorkloadMismatchError(
            f"runs {cat.require_run(run_a)} and {cat.require_run(run_b)} measured different workloads, so a "
            f"latency difference between them would be the workload's: "
            + "; ".join(map(str, refused))
            + f". Compare runs of one workload, or allow these differences on purpose (--allow-different {kinds})"
        )
    return diffs
