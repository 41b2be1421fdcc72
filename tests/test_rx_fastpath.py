"""The reading thread's fast path: whole one-event chunks go from its queue into the record in C.

Streams go over a real socket to a ``_Conn`` on a threaded :class:`StampedTransport`, written in
pieces a moment apart so that they come as separate reads, and the record must be the one the
Python parser makes of the same bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest
from hypothesis import given, settings
from test_rx_compiled import _feed, _streams

from perfkit.client.fasthttp import FastTransport, _Conn
from perfkit.net import StampedTransport, compiled_module
from perfkit.rows import RequestRecord

needs_thread = pytest.mark.skipif(compiled_module() is None, reason="the reading thread needs perfkit.net._rx")

_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _event(k: int) -> bytes:
    p = (
        b'data: {"choices":[{"index":0,"text":" t%d","finish_reason":null}],"usage":{"prompt_tokens":3,'
        b'"completion_tokens":%d}}\n\n' % (k, k)
    )
    return b"%x\r\n%s\r\n" % (len(p), p)


async def _stream_over_socket(pieces: list[bytes], gap_s: float) -> tuple[RequestRecord, _Conn, int]:
    """Write ``pieces`` ``gap_s`` apart to a threaded transport's socket; the record, the connection,
    and how many times its protocol was called with bytes."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    conn = _Conn(FastTransport(), ("http", "h", 1))
    calls = 0
    plain = conn.data_stamped

    def counted(data: bytes, t: int) -> None:
        nonlocal calls
        calls += 1
        plain(data, t)

    conn.data_stamped = counted  # type: ignore[method-assign]
    tr = StampedTransport(loop, ours, conn, threaded=True)
    assert tr.threaded
    rec = RequestRecord(1, "p", 0, False, None, 0, 16, 128)
    rec.text_parts = []
    fut = loop.create_future()
    conn._reset_exchange(rec, fut)
    try:
        for piece in pieces:
            if conn.rec is None:  # the exchange is over (as the reference feed stops there too)
                break
            try:
                theirs.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):  # ended, and the client hung up: no more to say
                break
            await asyncio.sleep(gap_s)
        await asyncio.wait_for(fut, 5)
        await asyncio.sleep(0.01)  # the end of the framing, after [DONE]
    finally:
        tr.abort()
        theirs.close()
        await asyncio.sleep(0)
    return rec, conn, calls


@pytest.fixture(scope="module")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _without_times(rec: RequestRecord) -> dict:
    return {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec) if not f.name.endswith("_ns")}


@needs_thread
def test_whole_chunks_reach_the_record_without_the_protocol_each_with_its_own_stamp():
    n = 40
    pieces = [_HEAD + _event(1)] + [_event(k) for k in range(2, n + 1)] + [b"e\r\ndata: [DONE]\n\n\r\n", b"0\r\n\r\n"]
    rec, conn, calls = asyncio.run(_stream_over_socket(pieces, 0.002))
    assert rec.error_kind is None and rec.text_parts == [f" t{k}" for k in range(1, n + 1)]
    assert rec.chunk_tokens == [1] * n and rec.output_tokens_usage == n
    stamps = rec.chunk_ns
    assert len(stamps) == n and all(b - a > 1_000_000 for a, b in zip(stamps, stamps[1:]))  # one read each
    assert conn.last_ns >= stamps[-1]  # the stall timer sees the fast path's reads
    # the head's read, [DONE]'s and the end's reached the protocol; the 39 chunks between did not
    assert calls <= 4, calls
    assert rec.end_ns is not None and conn.rec is None  # finished and released


@needs_thread
@settings(max_examples=120, deadline=None)
@given(stream=_streams())
def test_the_fast_path_records_what_the_python_parser_records(stream, monkeypatch_session):
    wire, cuts = stream
    bounds = [0, *cuts, len(wire)]
    pieces = [wire[a:b] for a, b in zip(bounds, bounds[1:])]
    rec, conn, _ = asyncio.run(_stream_over_socket(pieces, 0.001))
    ref_fields, ref_state = _feed(wire, cuts, False, monkeypatch_session)
    got = _without_times(rec)
    assert got == {k: v for k, v in ref_fields.items() if not k.endswith("_ns")}
    assert (conn.rec is None, conn.done) == (ref_state[0], ref_state[2])
