"""The SSE parser: splitting, line endings, comments, [DONE], and a property test."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from perfkit.client.sse import SSEEvent, SSEParser


def feed_all(parts: list[bytes]) -> tuple[list[SSEEvent], SSEParser]:
    p = SSEParser()
    out: list[SSEEvent] = []
    for part in parts:
        out += p.feed(part)
    return out, p


def test_single_event_and_done():
    events, p = feed_all([b'data: {"a": 1}\n\ndata: [DONE]\n\n'])
    assert [e.data for e in events] == ['{"a": 1}', "[DONE]"]
    assert p.close() == ([], False)


def test_event_split_across_reads_at_every_byte():
    raw = b'data: {"choices": [{"text": "hi"}]}\n\ndata: [DONE]\n\n'
    for cut in range(1, len(raw)):
        events, _ = feed_all([raw[:cut], raw[cut:]])
        assert [e.data for e in events] == ['{"choices": [{"text": "hi"}]}', "[DONE]"], cut


def test_crlf_and_cr_line_endings_even_when_split_between_cr_and_lf():
    raw = b"data: one\r\n\r\ndata: two\r\rdata: three\n\n"
    for cut in range(1, len(raw)):
        events, _ = feed_all([raw[:cut], raw[cut:]])
        assert [e.data for e in events] == ["one", "two", "three"], cut


def test_comments_and_keepalive_lines_are_counted_not_dispatched():
    events, p = feed_all([b": keep-alive\n\n:ping\ndata: x\n\n: another\n\n"])
    assert [e.data for e in events] == ["x"]
    assert p.comments == 3


def test_multiline_data_event_type_and_id():
    events, _ = feed_all([b"event: update\nid: 7\ndata: a\ndata: b\n\n"])
    assert events == [SSEEvent("a\nb", "update", "7")]


def test_field_without_space_and_without_colon():
    events, _ = feed_all([b"data:x\n\ndata\n\n"])
    # "data" alone is a data field with an empty value: an event with empty data is dispatched
    assert [e.data for e in events] == ["x", ""]


def test_blank_lines_without_data_dispatch_nothing():
    events, _ = feed_all([b"\n\n\n\nevent: x\n\n"])
    assert events == []


def test_truncated_stream_is_reported_by_close():
    _, p = feed_all([b'data: {"a": 1}\n\ndata: {"b"'])
    assert p.close() == ([], True)
    _, p = feed_all([b"data: complete-line\n"])  # line ended, event not dispatched
    assert p.close() == ([], True)


def test_invalid_utf8_does_not_raise():
    events, _ = feed_all([b"data: \xff\xfe\n\n"])
    assert len(events) == 1


lines = st.lists(
    st.text(alphabet=st.characters(blacklist_characters="\r\n\x00", codec="utf-8"), max_size=20), min_size=1, max_size=4
)


@given(st.lists(lines, min_size=1, max_size=6), st.data(), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_property_any_split_gives_the_same_events(payloads, data, eol):
    raw = b"".join(b"".join(b"data: " + ln.encode() + eol for ln in p) + eol for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    parts, prev = [], 0
    for c in cuts:
        parts.append(raw[prev:c])
        prev = c
    parts.append(raw[prev:])
    events, parser = feed_all(parts)
    tail, partial = parser.close()
    assert [e.data for e in events + tail] == ["\n".join(p) for p in payloads]
    assert partial is False


_PIECES = [
    b"data: a",
    b"data:b",
    b"\n",
    b"\n\n",
    b"\r",
    b"\r\n",
    b": keep-alive",
    b"event: x",
    b"event: message",
    b"id: 1",
    b'data: {"x":1}',
    b" ",
    b"data: [DONE]",
    b"data",
    b"retry: 5",
    "data: é".encode(),
]


@given(st.lists(st.sampled_from(_PIECES), max_size=16), st.lists(st.integers(0, 200), max_size=5))
def test_the_fast_data_path_gives_exactly_what_the_full_parser_gives(pieces, cuts):
    """``feed_data`` (the client's hot path) against ``feed``, on any stream cut anywhere."""
    raw = b"".join(pieces)
    cuts = sorted({min(c, len(raw)) for c in cuts})
    parts = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]

    def run(fast: bool) -> tuple[list[bytes], bool]:
        p, out = SSEParser(), []
        for part in parts:
            out += p.feed_data(part) if fast else [e.data.encode() for e in p.feed(part)]
        tail, partial = p.close()
        return out + [e.data.encode() for e in tail], partial

    assert run(True) == run(False)
