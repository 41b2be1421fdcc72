"""The protocol-level HTTP client: framing and SSE parsed in ``data_received``, however the bytes are cut."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from perfkit.client.fasthttp import FastTransport, _Conn
from perfkit.rows import RequestRecord

_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _event(k: int) -> bytes:
    return (
        b'data: {"choices":[{"index":0,"text":" t%d","finish_reason":null}],'
        b'"usage":{"prompt_tokens":3,"completion_tokens":%d}}\n\n' % (k, k)
    )


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


# one event per HTTP chunk (the fast path), a keep-alive comment, an event split over two HTTP chunks,
# two events in one HTTP chunk, [DONE], the last chunk
_BODY = [_chunk(_event(k)) for k in range(1, 6)] + [
    _chunk(b": ping\n\n"),
    _chunk(_event(6)[:20]),
    _chunk(_event(6)[20:]),
    _chunk(_event(7) + _event(8)),
    _chunk(b"data: [DONE]\n\n"),
    b"0\r\n\r\n",
]


class _Transport(asyncio.Transport):
    def write(self, data: bytes) -> None:  # the request goes nowhere: the test plays the server
        pass

    def abort(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def _replay(reads: list[bytes]) -> RequestRecord:
    async def go() -> RequestRecord:
        client = FastTransport()
        conn = _Conn(client, ("http", "h", 1))
        conn.connection_made(_Transport())
        rec = RequestRecord(0, "p", 0, False, None, 0, 1, 8)
        fut = asyncio.get_running_loop().create_future()
        conn.start(rec, b"", fut, 60.0)
        for r in reads:
            conn.data_received(r)
        assert fut.done()
        return rec

    return asyncio.run(go())


def _summary(rec: RequestRecord) -> tuple:
    return rec.error_kind, len(rec.chunk_ns), rec.chunk_chars, rec.chunk_tokens, rec.output_tokens_usage, rec.status


def test_one_read_per_http_chunk_gives_every_token():
    rec = _replay([_HEAD, *_BODY])
    assert _summary(rec) == (None, 8, [3] * 8, [1] * 8, 8, 200)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, len(_HEAD) + sum(map(len, _BODY)) - 1), max_size=12))
def test_any_cutting_of_the_bytes_gives_the_same_record(cuts):
    raw = _HEAD + b"".join(_BODY)
    cuts = sorted(set(cuts))
    reads = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    assert _summary(_replay(reads)) == (None, 8, [3] * 8, [1] * 8, 8, 200)


def test_a_stream_cut_inside_a_chunk_is_truncated_data_not_a_crash():
    raw = _HEAD + b"".join(_BODY[:3]) + _BODY[3][:10]

    async def go() -> RequestRecord:
        conn = _Conn(FastTransport(), ("http", "h", 1))
        conn.connection_made(_Transport())
        rec = RequestRecord(0, "p", 0, False, None, 0, 1, 8)
        fut = asyncio.get_running_loop().create_future()
        conn.start(rec, b"", fut, 60.0)
        conn.data_received(raw)
        conn.connection_lost(None)
        assert fut.done()
        return rec

    rec = asyncio.run(go())
    assert rec.error_kind == "connection_reset" and len(rec.chunk_ns) == 3


def test_chunk_extensions_are_read_and_a_negative_size_is_an_error():
    with_ext = [b"%x;name=value\r\n%s\r\n" % (len(e), e) for e in (_event(k) for k in range(1, 9))]
    rec = _replay([_HEAD, b"".join(with_ext) + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"])
    assert _summary(rec) == (None, 8, [3] * 8, [1] * 8, 8, 200)
    rec = _replay([_HEAD, _chunk(_event(1)) + b"-5\r\nhello\r\n"])
    assert rec.error_kind == "connection_reset" and "bad chunk size" in rec.error_message and len(rec.chunk_ns) == 1
