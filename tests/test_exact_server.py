"""The ground-truth streaming server (perfkit.sim.exact) sends what it says it sends.

Read with a plain blocking socket and a hand-written HTTP/1.1 chunked decoder, so that nothing of
perfkit's client stands between the server and the check.
"""

from __future__ import annotations

import json
import socket
import time
from array import array
from urllib.parse import urlsplit

import pytest

from perfkit.sim import exact
from perfkit.sim.exact import ExactServerProcess


def _stream(url: str, path: str, body: dict) -> list[dict | str]:
    """POST ``body`` and return the events of the answer: parsed JSON objects, then ``"[DONE]"``."""
    u = urlsplit(url)
    raw = json.dumps(body).encode()
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(
            b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), len(raw), raw)
        )
        f = s.makefile("rb")
        status = f.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        headers = {}
        while (line := f.readline()) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        assert headers["transfer-encoding"] == "chunked"
        body_bytes = b""
        while True:
            size = int(f.readline().strip(), 16)
            if size == 0:
                break
            body_bytes += f.read(size)
            assert f.read(2) == b"\r\n"
    events: list[dict | str] = []
    for block in body_bytes.split(b"\n\n"):
        if block.startswith(b"data: "):
            data = block[6:].decode()
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


@pytest.fixture(scope="module")
def server():
    with ExactServerProcess(ttft_ms=0.0, itl_ms=0.0, tokens=8) as srv:
        yield srv


@pytest.mark.parametrize("chat", [False, True])
def test_every_chunk_carries_its_token_its_running_usage_and_the_last_its_finish(server, chat):
    path = "/v1/chat/completions" if chat else "/v1/completions"
    body = {"model": "exact", "max_tokens": 5, "stream": True}
    body.update({"messages": [{"role": "user", "content": "x" * 40}]} if chat else {"prompt": "x" * 40})
    for _ in range(2):  # the second answer of this shape comes from the chunks the server made once
        events = _stream(server.url, path, body)
        assert events[-1] == "[DONE]"
        chunks = events[:-1]
        assert len(chunks) == 5
        for k, ev in enumerate(chunks, start=1):
            choice = ev["choices"][0]
            assert (choice["delta"]["content"] if chat else choice["text"]) == f" t{k}"
            assert ev["usage"] == {"prompt_tokens": 10, "completion_tokens": k, "total_tokens": 10 + k}
            assert choice["finish_reason"] == ("length" if k == 5 else None)


def test_an_answer_longer_than_the_server_keeps_made_is_streamed_whole_and_right(server):
    n = exact._CACHE_TOKENS + 3
    events = _stream(
        server.url, "/v1/completions", {"model": "exact", "prompt": "abcd", "max_tokens": n, "stream": True}
    )
    chunks = events[:-1]
    assert len(chunks) == n and events[-1] == "[DONE]"
    assert [c["choices"][0]["text"] for c in chunks[-2:]] == [f" t{n - 1}", f" t{n}"]
    assert chunks[-1]["usage"]["completion_tokens"] == n and chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-2]["choices"][0]["finish_reason"] is None


def test_the_log_has_a_write_time_and_a_due_time_for_every_chunk_sent_back_to_back(server, tmp_path):
    server.dump(tmp_path / "before.npz")  # what the other tests sent
    for n in (3, 7):
        events = _stream(
            server.url, "/v1/completions", {"model": "exact", "prompt": "abcd", "max_tokens": n, "stream": True}
        )
        assert len(events) == n + 1
    log = server.dump(tmp_path / "log.npz")
    assert list(log.offsets) == [0, 3, 10] and len(log.write_ns) == len(log.due_ns) == 10
    for i in range(2):
        writes, dues = log.chunks(i), log.due_ns[log.offsets[i] : log.offsets[i + 1]]
        assert (dues == log.recv_ns[i]).all()  # no TTFT, no gap: every chunk is due when the request came
        assert writes[0] >= dues[0] and (writes[1:] >= writes[:-1]).all()


@pytest.mark.skipif(exact._SEND_EACH is None, reason="perfkit.client._rx is not built")
def test_the_compiled_burst_stops_at_the_first_send_the_kernel_does_not_take_whole():
    a, b = socket.socketpair()
    a.setblocking(False)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    payloads = [bytes([65 + k % 26]) * (100 + k) for k in range(2000)]  # far more than the buffers hold
    stamps = array("q", bytes(8 * 2000))
    k, sent = exact._SEND_EACH(a.fileno(), payloads, 0, 2000, stamps)
    assert 0 < k < 2000 and 0 <= sent < len(payloads[k])
    written = list(stamps[: k + 1])
    assert all(x > 0 for x in written) and written == sorted(written) and stamps[k + 1] == 0
    want = b"".join(payloads[:k]) + payloads[k][:sent]
    got = bytearray()
    b.settimeout(5)
    while len(got) < len(want):
        got += b.recv(65536)
    assert bytes(got) == want
    with pytest.raises(ValueError, match="fewer slots"):
        exact._SEND_EACH(a.fileno(), payloads, 0, 10, array("q", bytes(8 * 9)))
    with pytest.raises(TypeError, match="bytes"):
        exact._SEND_EACH(a.fileno(), [b"x", "y"], 0, 2, stamps)
    a.close()
    b.close()


def test_bursts_the_client_is_slow_to_read_arrive_whole_and_in_order(server, tmp_path):
    # six answers asked for at once (pipelined) and read only after a while: once the kernel's buffers
    # are full, a burst's sends stop part-way and the transport writes the rest as room comes
    u = urlsplit(server.url)
    n, answers = exact._CACHE_TOKENS, 6
    raw = json.dumps({"model": "exact", "prompt": "abcd", "max_tokens": n, "stream": True}).encode()
    server.dump(tmp_path / "before.npz")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((u.hostname, u.port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(raw), raw) * answers)
    time.sleep(0.5)
    s.settimeout(30)
    body = bytearray()
    while body.count(b"\r\n0\r\n\r\n") < answers:
        got = s.recv(1 << 20)
        assert got, "the server closed before the end"
        body += got
    s.close()
    texts = [json.loads(line[6:])["choices"][0]["text"] for line in body.split(b"\n") if line.startswith(b"data: {")]
    assert texts == [f" t{k}" for k in range(1, n + 1)] * answers
    log = server.dump(tmp_path / "log.npz")
    assert list(log.offsets) == [n * i for i in range(answers + 1)]
    assert (log.write_ns[1:] >= log.write_ns[:-1]).all()
