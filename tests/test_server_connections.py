"""The server's connections as a client on the network may hold them: one that sends
no request, or dribbles its headers (a slowloris), is closed once ``HEADERS_TIMEOUT_S``
has passed, not held open for ever; a request whose headers came in time is not cut.
A real uvicorn server on 127.0.0.1 around the tiny GGUF, over raw sockets."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

import pytest

from routerllm.server import serving
from routerllm.system import RouterLLM

from .test_server import started

HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
BODY = json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": 2}).encode()


@pytest.fixture
def address(system: RouterLLM, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    """A server on a free port whose clients have 1 s to send a request's headers."""
    monkeypatch.setattr(serving, "HEADERS_TIMEOUT_S", 1.0)
    base, srv, thread = started(system)
    host, port = base.removeprefix("http://").split(":")
    try:
        yield host, int(port)
    finally:
        srv.should_exit = True
        thread.join(30)


def closed_within(sock: socket.socket, seconds: float, dribble: bytes = b"") -> tuple[float, bytes]:
    """How long the server took to close ``sock`` (a byte of ``dribble`` sent every
    0.2 s meanwhile) and what it sent; fails where it is still open after ``seconds``."""
    start, said, sent = time.monotonic(), b"", 0
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        if sent < len(dribble):
            with contextlib.suppress(OSError):  # closed by the server meanwhile
                sock.sendall(dribble[sent : sent + 1])
            sent += 1
        try:
            while chunk := sock.recv(65536):
                said += chunk
        except TimeoutError:
            continue
        except ConnectionResetError:
            pass
        return time.monotonic() - start, said
    raise AssertionError(f"still open after {seconds} s; got {said!r}")


def test_a_connection_that_sends_nothing_is_closed(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as sock:
        took, said = closed_within(sock, 5)
    assert said == b"" and 0.9 < took < 3


def test_headers_dribbled_a_byte_at_a_time_are_refused_in_time(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as sock:
        sock.sendall(HEAD)
        took, said = closed_within(sock, 5, b"X-Slow: " + b"a" * 1000)
    head, _, body = said.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower(), said
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert 0.9 < took < 3


def test_a_kept_alive_connection_dribbling_its_next_request_is_closed(
    address: tuple[str, int],
) -> None:
    with socket.create_connection(address) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        answer = b""
        while not answer.endswith(b'{"status":"ok"}'):
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # uvicorn's 5 s keep-alive ends at a byte
        took, said = closed_within(sock, 8, b"X-Slow: " + b"a" * 1000)
    assert said.startswith(b"HTTP/1.1 408 ") and took < 3


def test_a_request_whose_headers_came_in_time_is_answered_however_long_it_takes(
    address: tuple[str, int],
) -> None:
    """Its body comes after the headers' time (within the body's own, 30 s): answered."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(
            HEAD + b"Content-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(BODY)
        )
        time.sleep(2)
        sock.sendall(BODY)
        said = b""
        while chunk := sock.recv(65536):
            said += chunk
    assert said.startswith(b"HTTP/1.1 200 "), said[:300]
    assert json.loads(said.partition(b"\r\n\r\n")[2])["choices"]
