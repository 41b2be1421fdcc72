"""The compiled read path (``perfkit.net._rx``, configured by ``perfkit.client.events``) gives the records the
Python path gives, byte for byte.

Streams of every shape a server sends (the common chunk, role-only and empty chunks, finish and usage
chunks, reasoning, errors, malformed JSON, comments, CRLF line ends, events split across HTTP chunks or
sharing one) are framed, cut into reads at arbitrary places and fed to two connections, one with the
compiled path and one without; the records must agree in every field.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from array import array

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfkit import net
from perfkit.client import events, fasthttp
from perfkit.client.fasthttp import FastTransport, _Conn, one_event_py
from perfkit.net import ReadPath
from perfkit.rows import RequestRecord

_rx = net.compiled_module()
if (
    _rx is None and os.environ.get("PERFKIT_REQUIRE_COMPILED") == "1"
):  # CI builds it: a silent skip would hide a broken build
    raise RuntimeError(
        "perfkit.net._rx is not importable but PERFKIT_REQUIRE_COMPILED=1: the C build failed "
        "(pip install -v -e . shows why) or PERFKIT_NO_EXTENSIONS was set at install"
    )
needs_rx = pytest.mark.skipif(
    _rx is None,
    reason="perfkit.net._rx is not built (no C compiler, not Linux) or PERFKIT_NO_EXTENSIONS was set at install",
)
if _rx is not None:
    events.configure_compiled(_rx)

_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _chunk(text: str, finish: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
        }
    )


_EVENTS = st.one_of(
    st.text(min_size=1, max_size=12).map(_chunk),  # the common chunk, any text (escapes, non-ASCII)
    st.just(orjson.dumps({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})),
    st.just(orjson.dumps({"choices": [{"index": 0, "delta": {"content": None}, "finish_reason": None}]})),
    st.just(_chunk("end", "stop")),
    st.just(
        orjson.dumps(
            {
                "choices": [{"index": 0, "delta": {"content": "x"}}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3},
            }
        )
    ),
    st.just(orjson.dumps({"choices": [{"index": 0, "delta": {"reasoning_content": "hm", "content": "a"}}]})),
    st.just(orjson.dumps({"choices": [{"index": 0, "text": "legacy"}]})),
    st.just(
        orjson.dumps({"choices": [{"index": 0, "delta": {"content": "a"}}, {"index": 1, "delta": {"content": "b"}}]})
    ),
    st.just(orjson.dumps({"error": {"message": "overloaded"}})),
    st.just(orjson.dumps({"error": None, "usage": None, "choices": [{"delta": {"content": "ok"}}]})),
    # continuous usage stats (vLLM) on the common chunk and on completions, and their odd cases
    st.builds(
        lambda text, k, fin, chat: orjson.dumps(
            {
                "choices": [
                    {"index": 0, "delta": {"content": text}, "finish_reason": fin}
                    if chat
                    else {"index": 0, "text": text, "finish_reason": fin}
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": k, "total_tokens": 5 + k},
            }
        ),
        st.text(max_size=4),
        st.integers(0, 40),
        st.sampled_from([None, "length", ""]),
        st.booleans(),
    ),
    st.just(
        orjson.dumps(
            {"choices": [{"delta": {"content": "a"}}], "usage": {"prompt_tokens": None, "completion_tokens": None}}
        )
    ),
    st.just(orjson.dumps({"choices": [{"delta": {"content": "a"}}], "usage": {"completion_tokens": 2.0}})),
    st.just(orjson.dumps({"choices": [{"delta": {"content": "a"}}], "usage": {"completion_tokens": True}})),
    st.just(orjson.dumps({"choices": [{"delta": {"content": "a"}}], "usage": [1]})),
    st.just(orjson.dumps({"choices": [{"delta": {"content": "a"}, "finish_reason": 5}]})),
    st.just(orjson.dumps({"choices": [{"delta": None, "text": "b"}]})),
    st.just(b"[1, 2]"),
    st.just(b"{not json"),
    st.just(b""),
)


@st.composite
def _streams(draw) -> tuple[bytes, list[int]]:
    events = draw(st.lists(_EVENTS, max_size=12)) + draw(st.sampled_from([[b"[DONE]"], []]))
    body = b""
    for ev in events:
        form = draw(st.sampled_from(["plain", "plain", "plain", "crlf", "comment", "two-lines"]))
        if form == "crlf":
            body += b"data: " + ev + b"\r\n\r\n"
        elif form == "comment":
            body += b": keep-alive\n\ndata: " + ev + b"\n\n"
        elif form == "two-lines" and len(ev) > 2:
            body += b"data: " + ev[:2] + b"\ndata: " + ev[2:] + b"\n\n"
        else:
            body += b"data: " + ev + b"\n\n"
    # HTTP chunks: mostly one event each, sometimes cut elsewhere
    pieces, rest = [], body
    while rest:
        if draw(st.booleans()):
            end = rest.find(b"\n\n") + 2 or len(rest)
        else:
            end = draw(st.integers(1, len(rest)))
        pieces.append(rest[:end])
        rest = rest[end:]
    wire = _HEAD + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    cuts = sorted(set(draw(st.lists(st.integers(1, len(wire) - 1), max_size=8))))
    return wire, cuts


def _feed(wire: bytes, cuts: list[int], compiled: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, tuple]:
    monkeypatch.setattr(fasthttp, "now_ns", lambda: 123)  # the times the parser takes itself (the end)
    conn = _Conn(FastTransport(read_path=ReadPath(compiled=compiled)), ("http", "h", 1))
    rec = RequestRecord(1, "p", 0, False, None, 0, 16, 128)
    rec.text_parts = []
    conn._reset_exchange(rec, None)
    bounds = [0, *cuts, len(wire)]
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        if conn.rec is None:
            break
        conn.data_stamped(wire[a:b], 1_000 + k)
    fields = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec)}
    return fields, (conn.rec is None, conn.closed, conn.done)


@needs_rx
@settings(max_examples=300, deadline=None)
@given(stream=_streams())
def test_compiled_and_python_paths_record_the_same(stream, monkeypatch_session):
    wire, cuts = stream
    c = _feed(wire, cuts, True, monkeypatch_session)
    p = _feed(wire, cuts, False, monkeypatch_session)
    assert c == p


@pytest.fixture(scope="module")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@needs_rx
def test_the_common_stream_is_taken_whole_by_the_compiled_path():
    rec = RequestRecord(1, "p", 0, False, None, 0, 16, 128)
    events = [b"data: " + _chunk(f"t{i}") + b"\n\n" for i in range(3)] + [b"data: [DONE]\n\n"]
    data = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    pos, done = _rx.take_events(data, rec, 77, [0])
    assert done and data[pos:] == b"0\r\n\r\n"  # stopped after [DONE], before the last chunk
    assert rec.chunk_ns == [77, 77, 77] and rec.chunk_chars == [2, 2, 2] and rec.chunk_tokens == [None] * 3
    assert rec.first_token_ns == rec.last_token_ns == 77
    # a chunk cut short, or one holding two events, is left to the general parser
    assert _rx.take_events(data[:20], rec, 1, [0]) == (0, False)
    two = b"data: a\n\ndata: b\n\n"
    assert _rx.take_events(b"%x\r\n%s\r\n" % (len(two), two), rec, 1, [0]) == (0, False)


@needs_rx
def test_chunks_with_continuous_usage_and_completions_are_taken_in_c_and_parsed_once():
    calls: list[str] = []

    def handle(*a):  # what the compiled path hands to Python: counted, then done as usual
        calls.append("handle")
        return events.handle_event(*a)

    def apply(*a):
        calls.append("apply")
        return events.apply_event(*a)

    usage = [
        orjson.dumps(
            {
                "choices": [{"index": 0, "delta": {"content": f" t{k}"}, "finish_reason": None}],
                "usage": {"prompt_tokens": 9, "completion_tokens": k, "total_tokens": 9 + k},
            }
        )
        for k in (1, 2, 4)
    ]
    legacy = orjson.dumps(
        {
            "choices": [{"index": 0, "text": "x", "finish_reason": "length"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 5},
        }
    )
    odd = orjson.dumps({"choices": [{"delta": {"content": "a"}}, {"delta": {"content": "b"}}]})
    sse = [b"data: " + e + b"\n\n" for e in [*usage, legacy, odd]]
    data = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in sse)
    rec = RequestRecord(1, "p", 0, False, None, 0, 16, 128)
    tokens = [0]
    try:
        _rx.configure(events.loads, handle, apply, dict(events.COMPILED_NAMES))
        assert _rx.take_events(data, rec, 5, tokens) == (len(data), False)
    finally:
        _rx.configure(events.loads, events.handle_event, events.apply_event, dict(events.COMPILED_NAMES))
    assert calls == ["apply"]  # only the two-choice chunk went to Python, parsed once
    assert rec.chunk_tokens == [1, 1, 2, 1, None] and tokens == [5]
    assert rec.prompt_tokens == 9 and rec.output_tokens_usage == 5 and rec.finish_reason == "length"
    assert rec.chunk_chars == [3, 3, 3, 1, 2]


def test_the_python_one_event_test_accepts_what_the_general_parser_would_take_alone():
    ev = b"data: " + _chunk("x") + b"\n\n"
    framed = b"%x\r\n%s\r\n" % (len(ev), ev)
    assert one_event_py(framed) == ev[6:-2]
    assert one_event_py(b"0x" + framed) is None and one_event_py(framed[:-1]) is None
    assert one_event_py(b"%x\r\n%s\r\n" % (len(ev) + 1, ev + b"x")) is None


@needs_rx
def test_compiled_read_gives_the_kernel_stamp_on_the_monotonic_clock_and_counts_the_wait():
    from perfkit.clock import now_ns

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    cli = socket.create_connection(srv.getsockname())
    peer, _ = srv.accept()
    try:
        cli.setblocking(False)
        assert _rx.recv_stamped(cli.fileno(), None) is None  # nothing yet: None, not an exception
        assert net.enable_rx_stamps(cli)
        d = net.ReadDelays()
        t0 = now_ns()
        peer.sendall(b"hello")
        t1 = now_ns()
        time.sleep(0.02)
        with pytest.raises(BufferError):  # a histogram it cannot write is refused before anything is read
            _rx.recv_stamped(cli.fileno(), b"read-only")
        data, t = _rx.recv_stamped(cli.fileno(), d.counts)
        assert data == b"hello"
        assert t0 - 200_000 <= t <= t1 + 200_000  # when it arrived, not 20 ms later when it was read
        n, p99, mx = d.take()
        assert n == 1 and 19.0 <= mx < 200 and p99 == mx
        peer.close()
        time.sleep(0.01)
        assert _rx.recv_stamped(cli.fileno(), None)[0] == b""  # the end of the stream
        with pytest.raises(OSError):
            _rx.recv_stamped(10_000, None)  # not an open descriptor
    finally:
        cli.close()
        srv.close()


def _take_until(reader, pred, timeout_s: float = 5.0, hist: array | None = None) -> list:
    got: list = []
    deadline = time.monotonic() + timeout_s
    while not pred(got) and time.monotonic() < deadline:
        time.sleep(0.002)
        got += reader.take(hist)
    return got


@needs_rx
@pytest.mark.flaky(reruns=2)  # a 10-ms gap between two sends, timed by the reads: a loaded machine can shave it
def test_the_reading_thread_queues_reads_in_order_then_the_end_or_the_error_last():
    reader = _rx.Reader(gap_ns=100_000)
    try:
        a, pa = socket.socketpair()
        b, pb = socket.socketpair()
        for s in (a, b):
            s.setblocking(False)
        ka, kb = reader.add(a.fileno()), reader.add(b.fileno())
        assert ka != kb and ka & 0xFFFFFFFF == a.fileno()
        t0 = time.perf_counter_ns()
        pa.send(b"one")
        time.sleep(0.01)
        pa.send(b"two")
        pa.close()  # the end of a's stream
        got = _take_until(reader, lambda g: sum(k == ka and d == b"" for k, _, d in g) == 1)
        recs = [(k, d) for k, _, d in got if k == ka]
        assert recs == [(ka, b"one"), (ka, b"two"), (ka, b"")]  # one read each, the end last
        stamps = [t for k, t, _ in got if k == ka]
        assert t0 <= stamps[0] and 9e6 < stamps[1] - stamps[0] < 50e6  # each its own arrival time
        assert reader.remove(ka) is False  # already dropped at its end
        # b, read all along: its data, then its end
        pb.send(b"x")
        pb.close()
        got = _take_until(reader, lambda g: any(k == kb and d == b"" for k, _, d in g))
        assert [d for k, _, d in got if k == kb] == [b"x", b""]
        a.close()
        b.close()
    finally:
        reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.fileno()


@needs_rx
def test_the_reading_thread_reports_a_reset_as_its_errno_and_forgets_a_removed_socket():
    reader = _rx.Reader(gap_ns=100_000)
    try:
        lsock = socket.create_server(("127.0.0.1", 0))
        c1 = socket.create_connection(lsock.getsockname())
        p1, _ = lsock.accept()
        c2 = socket.create_connection(lsock.getsockname())
        p2, _ = lsock.accept()
        lsock.close()
        for s in (c1, c2):
            s.setblocking(False)
        k1, k2 = reader.add(c1.fileno()), reader.add(c2.fileno())
        assert reader.remove(k2) is True  # from here the thread leaves c2 alone ...
        p2.send(b"unread")
        p1.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        p1.close()  # linger 0: a reset
        got = _take_until(reader, lambda g: any(k == k1 for k, _, _ in g))
        time.sleep(0.02)
        got += reader.take(None)
        import errno

        assert [(k, d) for k, _, d in got] == [(k1, errno.ECONNRESET)]
        assert c2.recv(100) == b"unread"  # ... and its bytes are still in it
        for s in (c1, c2, p2):
            s.close()
    finally:
        reader.close()


@needs_rx
def test_the_reading_thread_keeps_its_rounds_a_gap_apart_under_a_flood_and_reads_a_lone_chunk_at_once():
    gap_ms, flood_s = 50, 0.4
    reader = _rx.Reader(gap_ns=gap_ms * 1_000_000)
    lsock = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(lsock.getsockname())
    pa, _ = lsock.accept()
    lsock.close()
    pa.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    a.setblocking(False)
    assert net.enable_rx_stamps(a)  # so that each read's wait is counted
    try:
        key = reader.add(a.fileno())
        sent = 0
        t_end = time.monotonic() + flood_s
        while time.monotonic() < t_end:  # a byte every ~0.2 ms: the socket is hardly ever empty for long
            pa.send(b"x")
            sent += 1
            time.sleep(0.0002)
        got = _take_until(reader, lambda g: sum(len(d) for _, _, d in g) >= sent)
        assert sum(len(d) for _, _, d in got) == sent and {k for k, _, _ in got} == {key}
        # one read a round, and rounds no closer than the gap: not one read per byte
        assert len(got) <= flood_s * 1000 / gap_ms + 3, (len(got), sent)
        time.sleep(0.15)  # quiet: the thread waits in epoll, and the next chunk is read as it comes
        hist = array("q", bytes(8 * 1002))
        reader.take(hist)
        pa.send(b"lone")
        got = _take_until(reader, lambda g: len(g) == 1, hist=hist)
        time.sleep(0.01)
        got += reader.take(hist)
        assert [d for _, _, d in got] == [b"lone"]
        waited = [i for i in range(1001) if hist[i]]
        assert sum(hist[:1001]) == 1 and waited[0] < 200, waited  # read within 20 ms, not held for a round
    finally:
        reader.close()
        a.close()
        pa.close()


@needs_rx
def test_the_reading_thread_refuses_bad_settings():
    with pytest.raises(ValueError, match="gap_ns"):
        _rx.Reader(gap_ns=-1)
    with pytest.raises(ValueError, match="realtime"):
        _rx.Reader(gap_ns=0, realtime=True)
    r = _rx.Reader()
    with pytest.raises(ValueError, match="file descriptor"):
        r.add(-3)
    with pytest.raises(OSError):
        r.add(10_000)  # not open
    with pytest.raises(BufferError):
        r.take(b"read-only")
    r.close()
    r.close()  # twice is fine
