"""A client that keeps its connection open and stops reading its answer: the server
closes the connection once the client has taken none of the answer's waiting bytes for
``WRITE_TIMEOUT_S``; a generation still running stops as for a client that left (logged
``cancelled``), and the server can stop. A client reading slowly (its window reopened
within the deadline) is not cut. A real uvicorn server on 127.0.0.1 whose connections
have small kernel send buffers, raw socket clients with small receive buffers, around the
tiny GGUF and the stub OpenAI endpoint."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from routerllm.config import load_config
from routerllm.server import serving
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, write_config
from .test_openai_http import Reply, completion_reply, http_model_dict, serving_stub
from .test_openai_stream import DONE, delta, usage
from .test_server import CHAT, asking, call, started

SMALL_BUFFER = 4096  # bytes: the kernel's buffers fill after a few kB of answer


@contextlib.contextmanager
def stall_prone(system: RouterLLM, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, Any, threading.Thread]]:  # fmt: skip
    """``system`` served with a write deadline of 1 s, its connections' kernel send
    buffers small (accepted sockets inherit the listener's): the port, server and thread."""
    monkeypatch.setattr(serving, "WRITE_TIMEOUT_S", 1.0)
    sock = serving.listen("127.0.0.1", 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    _, srv, thread = started(system, sock=sock)
    try:
        yield sock.getsockname()[1], srv, thread
    finally:
        srv.should_exit = True
        srv.force_exit = True  # a connection still held must not keep the next test waiting
        thread.join(30)


def asked(port: int, body: dict[str, Any]) -> socket.socket:
    """A connection with a small receive buffer that has sent ``body`` and reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)  # before connect: its window
    sock.connect(("127.0.0.1", port))
    data = json.dumps(body).encode()
    head = f"POST {CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"  # fmt: skip
    sock.sendall(head.encode() + data)
    return sock


def logged(path: Path, seconds: float) -> tuple[str, int, float | None]:
    """The finish reason, completion tokens and energy of the first request logged with
    more than 2 tokens, waited for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            with contextlib.closing(sqlite3.connect(path)) as db:
                rows = db.execute("SELECT finish_reason, completion_tokens, energy_kwh FROM requests WHERE completion_tokens > 2").fetchall()  # fmt: skip
            if rows:
                return rows[0]
        time.sleep(0.1)
    raise AssertionError(f"nothing logged within {seconds} s")


def test_a_stream_its_client_stops_reading_stops_its_generation_and_frees_the_turn(
    system: RouterLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tiny GGUF streams up to 400 tokens (20 ms each at least: 8 s) to a client that
    reads none: once the buffers are full (some 60 tokens) and 1 s has passed, the
    connection is closed and the generation stops between two tokens, logged ``cancelled``
    with what it spent. Before, it ran to its 400 tokens holding the turn, and the
    connection stayed open for ever, the answer's events held in memory."""
    path = Path(system.config.log.path)
    with stall_prone(system, monkeypatch) as (port, srv, _):
        base = f"http://127.0.0.1:{port}"
        assert call(base, CHAT, asking(model="tiny-light", max_tokens=2))[0] == 200  # loaded
        llm = system.manager.backend("tiny-light")._llm
        sample = llm.sample

        def paced(*args: Any, **kwargs: Any) -> Any:
            time.sleep(0.02)  # past the deadline on the fastest machine too
            return sample(*args, **kwargs)

        monkeypatch.setattr(llm, "sample", paced)
        body = asking(("user", "Tell me a long story."), model="tiny-light", temperature=1.0, max_tokens=400, stream=True)  # fmt: skip
        with contextlib.closing(asked(port, body)):
            reason, tokens, energy = logged(path, 60)
            assert (reason, tokens < 400) == ("cancelled", True), (reason, tokens)
            assert energy is not None and energy > 0  # measured for what it spent
            status, text = call(base, CHAT, asking(model="tiny-light", max_tokens=2))
            assert status == 200, text  # the turn passed on
            deadline = time.monotonic() + 10
            while srv.server_state.connections and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not srv.server_state.connections  # closed by the server, not by the client


def test_an_unstreamed_answer_its_client_never_reads_does_not_hold_the_servers_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 500 kB answer from an ``openai_http`` model, asked without streaming by a client
    that reads none of it: logged as answered; its bytes the kernel could not take are
    dropped after 1 s and the connection closed. Before, the connection was held for
    ever, and a stop (SIGTERM) waited on it for ever: "Waiting for connections to close"."""
    reply = completion_reply("word " * 100_000, tokens=100_000)
    with (
        remote_served(tmp_path, reply, monkeypatch) as (system, port, srv, thread),
        contextlib.closing(asked(port, asking(model="remote"))),
    ):
        assert logged(Path(system.config.log.path), 10)[:2] == ("stop", 100_000)
        time.sleep(0.5)  # past its writing: the answer is in the buffers
        srv.should_exit = True
        thread.join(10)
        assert not thread.is_alive(), "the server's stop waited on a client that reads nothing"


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_reading_slowly_gets_all_of_its_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    """A client taking 8 kB every 0.3 s, slower than the answer comes but never 1 s
    without taking a byte, is not cut: the whole 60 kB answer reaches it (streamed, to
    [DONE]; unstreamed, the one write of it taken bit by bit, never all at once in 1 s)."""
    pieces = [delta("word " * 1000) for _ in range(12)]
    reply = long_stream(pieces) if stream else completion_reply("word " * 12_000, tokens=12_000)
    with (
        remote_served(tmp_path, reply, monkeypatch) as (_, port, _, _),
        contextlib.closing(asked(port, asking(model="remote", stream=stream))) as sock,
    ):
        sock.settimeout(10)
        said = b""
        while not (said.endswith(b"\r\n0\r\n\r\n") if stream else whole(said)):
            chunk = sock.recv(8192)
            assert chunk, f"closed after {len(said)} bytes"
            said += chunk
            time.sleep(0.3)
    assert said.count(b"word") == 12_000
    assert (b"data: [DONE]" in said) == stream


def whole(said: bytes) -> bool:
    """Whether ``said`` holds an answer's head and its whole ``Content-Length`` body."""
    head, _, body = said.partition(b"\r\n\r\n")
    lengths = [line.partition(b":")[2] for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]  # fmt: skip
    return bool(lengths) and len(body) >= int(lengths[0])


def long_stream(pieces: list[bytes]) -> Reply:
    return Reply(200, b"", events=(delta("", role=True), *pieces, delta(finish="stop"), usage(5, 12_000), DONE))  # fmt: skip


@contextlib.contextmanager
def remote_served(tmp_path: Path, reply: Reply, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RouterLLM, int, Any, threading.Thread]]:  # fmt: skip
    """A system whose model ``remote`` is the stub endpoint answering ``reply``, served as
    ``stall_prone`` serves it: the system, port, server and thread."""
    with serving_stub() as stub:
        stub.default_post = reply
        data = tiny_config_dict(tmp_path, carbon={"enabled": False})
        data["models"].append(http_model_dict("remote", stub.base_url))
        with (
            RouterLLM(load_config(write_config(tmp_path, data))) as system,
            stall_prone(system, monkeypatch) as (port, srv, thread),
        ):
            yield system, port, srv, thread
