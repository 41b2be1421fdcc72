"""Property-based tests of the scenario loader: whatever it is given, a Scenario or a ConfigError that says where."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfkit.errors import ConfigError
from perfkit.workload.scenario import Scenario, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "scenarios").glob("*.yaml"))}

# values a person (or a bad template) might put anywhere
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["poisson", "gamma", "constant", "lognormal:100,0.5", "uniform:5,1", "10s", "-1", "", "1e309"]),
    st.lists(st.integers(-5, 100), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3), max_size=2),
)


def _paths(obj, prefix=()):
    """Every place in a nested structure: (path, value)."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _set(obj, path, value):
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


def _delete(obj, path):
    for part in path[:-1]:
        obj = obj[part]
    del obj[path[-1]]


def _check(data, source="mutated.yaml") -> None:
    try:
        sc = parse_scenario(data, source=source, base_dir=ROOT / "scenarios")
    except ConfigError as exc:
        assert str(exc).startswith(source), exc  # the message names the file (and then the place)
        return
    assert isinstance(sc, Scenario) and sc.phases
    for p in sc.phases:
        assert p.duration_s is None or (p.duration_s > 0 and math.isfinite(p.duration_s))
        assert p.requests is None or p.requests >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(EXAMPLES)), data=st.data())
def test_any_mutation_of_an_example_scenario_loads_or_is_refused_clearly(name, data):
    doc = copy.deepcopy(EXAMPLES[name])
    for _ in range(data.draw(st.integers(1, 3))):
        places = [p for p, _ in _paths(doc) if p]
        if not places:
            break
        path = data.draw(st.sampled_from(places))
        action = data.draw(st.sampled_from(["set", "set", "delete", "add"]))
        if action == "set":
            _set(doc, path, data.draw(odd_values))
        elif action == "delete" and isinstance(path[-1], str):
            _delete(doc, path)
        else:
            parent = doc
            for part in path[:-1]:
                parent = parent[part]
            if isinstance(parent, dict):
                parent[data.draw(st.text(min_size=1, max_size=8))] = data.draw(odd_values)
    _check(doc)


@settings(max_examples=200, deadline=None)
@given(
    doc=st.recursive(
        odd_values,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(
                st.sampled_from(
                    [
                        "name",
                        "phases",
                        "load",
                        "rate",
                        "users",
                        "duration_s",
                        "requests",
                        "seed",
                        "defaults",
                        "classes",
                        "sweep",
                        "trace",
                        "ramp",
                        "prompt_tokens",
                    ]
                ),
                inner,
                max_size=4,
            ),
        ),
        max_leaves=12,
    )
)
def test_arbitrary_structures_load_or_are_refused_clearly(doc):
    _check(doc)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_arbitrary_text_in_a_scenario_file_is_refused_clearly(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text, encoding="utf-8")
    try:
        load_scenario(p)
    except ConfigError as exc:
        assert str(exc).startswith(str(p)), exc


def test_a_sweep_of_absurd_length_is_refused_before_anything_is_built():
    import pytest

    raw = {"phases": [{"name": "s", "load": {"sweep": {"from": 1, "to": 5, "steps": 10**9, "step_duration_s": 1}}}]}
    with pytest.raises(ConfigError, match=r"sweep.steps: value 1000000000 is more than 1000 steps"):
        parse_scenario(raw, source="long.yaml")
