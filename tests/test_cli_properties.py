"""No command line ends in a traceback: generated arguments, with files where directories go, missing runs,
bad values and closed ports, each gets a clear error (exit 2 or 3) or runs (exit 0 or 1)."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_query import hand_made, write_run

from perfkit.cli import main


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-props")
    data = root / "data"
    write_run(data, "r1", hand_made())
    write_run(data, "r2", hand_made())
    afile = root / "a-file"
    afile.write_text("not a directory")
    return {"data": str(data), "file": str(afile), "missing": str(root / "missing"), "root": str(root)}


RUNS = st.sampled_from(["latest", "r1", "r", "nope", "", "../x", "x'; DROP TABLE requests; --", "r1,r2", "-1"])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
JUNK = st.one_of(TEXT, st.sampled_from(["--", "-", "--rate", "nan", "inf", "-5", "0", "1e309", "{", "[]", "null"]))


def _commands(places: dict[str, str]) -> st.SearchStrategy[list[str]]:
    d = st.sampled_from([places["data"], places["file"], places["missing"]])
    out = st.sampled_from([places["file"], places["missing"], places["root"] + "/out"])
    slo = st.sampled_from(["chat", "rag", "ttft_p99<=200ms", "ttft_p99<=", "bogus", "itl_p50<=-1ms", ""])
    endpoint = st.sampled_from(["http://127.0.0.1:9", "ftp://host", "not a url", "", "http://[::1"])
    num = st.one_of(st.integers(-3, 4).map(str), JUNK)
    forms = [
        st.tuples(st.just(["runs", "--data-dir"]), d.map(lambda x: [x])),
        st.tuples(st.just(["summary"]), RUNS.map(lambda r: [r]), st.just(["--data-dir"]), d.map(lambda x: [x])),
        st.tuples(
            st.just(["export"]),
            RUNS.map(lambda r: [r]),
            st.just(["--data-dir"]),
            d.map(lambda x: [x]),
            st.sampled_from([[], ["--format", "json"], ["--format", "xml"], ["--phase", "main"], ["--phase", "zz"]]),
        ),
        st.tuples(
            st.just(["compare"]),
            RUNS.map(lambda r: [r]),
            RUNS.map(lambda r: [r]),
            st.just(["--data-dir"]),
            d.map(lambda x: [x]),
        ),
        st.tuples(
            st.just(["slo"]),
            RUNS.map(lambda r: [r]),
            st.just(["--slo"]),
            slo.map(lambda x: [x]),
            st.just(["--data-dir"]),
            d.map(lambda x: [x]),
        ),
        st.tuples(st.just(["bottleneck"]), RUNS.map(lambda r: [r]), st.just(["--data-dir"]), d.map(lambda x: [x])),
        st.tuples(
            st.just(["query"]),
            d.map(lambda x: [x]),
            st.sampled_from(["SELECT 1", "SELEC", "SELECT * FROM nope", "", "DROP TABLE requests"]).map(lambda q: [q]),
        ),
        st.tuples(st.just(["check"]), d.map(lambda x: [x])),
        st.tuples(st.just(["rollup"]), RUNS.map(lambda r: [r]), st.just(["--data-dir"]), d.map(lambda x: [x])),
        st.tuples(
            st.just(["report"]),
            st.sampled_from(["nope", "", "../x"]).map(lambda r: [r]),
            st.just(["--data-dir"]),
            d.map(lambda x: [x]),
            st.just(["--out"]),
            out.map(lambda x: [x]),
        ),
        st.tuples(
            st.just(["run", "--endpoint"]),
            endpoint.map(lambda e: [e]),
            st.just(["--requests"]),
            num.map(lambda n: [n]),
            st.just(["--data-dir"]),
            d.map(lambda x: [x]),
            st.sampled_from(
                [
                    [],
                    ["--rate", "-1"],
                    ["--prompt-tokens", "zipf:2"],
                    ["--gpu", "off"],
                    ["--max-concurrency", "0"],
                    ["--extra-body", "{"],
                    ["--dataset", "csv"],
                ]
            ),
        ),
        st.tuples(st.sampled_from([["schema"], ["--version"], ["nonsense"], []]), st.lists(JUNK, max_size=2)),
        st.tuples(st.sampled_from([["runs"], ["summary"], ["slo"], ["export"], ["query"]]), st.lists(JUNK, max_size=3)),
    ]
    return st.one_of(forms).map(lambda parts: [x for part in parts for x in part])


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_no_generated_command_line_ends_in_a_traceback(places, data):
    argv = data.draw(_commands(places))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors exit 2, --help and --version 0
            code = exc.code if isinstance(exc.code, int) else 2
    assert "Traceback" not in err.getvalue(), (argv, err.getvalue()[-2000:])
    assert code in (0, 1, 2, 3), (argv, code, err.getvalue()[-2000:])
