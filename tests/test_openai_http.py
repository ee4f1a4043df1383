"""The OpenAI-compatible HTTP backend against real servers on 127.0.0.1.

Two kinds of server, both real sockets and real HTTP, nothing mocked:

* llama-cpp-python's own OpenAI-compatible server, started as a subprocess on
  the tiny GGUF (gibberish output, but real token counts and real errors);
* a small standard-library stub whose answers each test scripts, to drive
  the retry and error paths (503s, 500s, 401/404, context errors, bad shapes,
  truncated bodies, timeouts, API keys).
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import json
import logging
import os
import re
import select
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends import openai_http
from routerllm.backends.base import GenerationRequest, create_backend
from routerllm.backends.openai_http import OpenAIHTTPBackend
from routerllm.carbon.meter import grid_intensity_g_per_kwh
from routerllm.config import GenerationConfig, ModelConfig, load_config
from routerllm.exceptions import (
    BackendError,
    EndpointOverloadedError,
    EndpointUnreachableError,
    ModelUnavailableError,
    PromptError,
    RateLimitedError,
    RouterLLMError,
)
from routerllm.system import RouterLLM

from .conftest import (
    cli_in_process,
    free_port,
    tiny_config_dict,
    tiny_gguf_path,
    tiny_model,
    write_config,
)

HOST = "127.0.0.1"
MAX_NEW_TOKENS = 8
SERVER_START_TIMEOUT_S = 60.0


def http_model_dict(name: str, base_url: str, **extra: Any) -> dict[str, Any]:
    """A config entry for an `openai_http` model."""
    return {
        "name": name,
        "backend": "openai_http",
        "tier": "heavy",
        "params_b": 1.0,
        "model_id": "tiny",
        "base_url": base_url,
        "memory_gb": 1.0,
        **extra,
    }


def http_backend(
    base_url: str,
    *,
    max_retries: int = 3,
    timeout_s: float = 10.0,
    api_key_env: str | None = None,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> OpenAIHTTPBackend:
    """A backend with fast backoff, so that retry tests take milliseconds."""
    config = ModelConfig(
        **http_model_dict(
            "remote",
            base_url,
            max_retries=max_retries,
            timeout_s=timeout_s,
            api_key_env=api_key_env,
        )
    )
    backend = OpenAIHTTPBackend(
        config, GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0)
    )
    backend.backoff_base_s = 0.01
    return backend


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == openai_http.__name__ and "retrying" in r.getMessage()
    ]


# ---------------------------------------------------------------------------
# A real OpenAI-compatible server: llama-cpp-python's, on the tiny GGUF
# ---------------------------------------------------------------------------


def _log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no server log)"


def _wait_until_ready(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"llama_cpp.server exited with code {proc.returncode} before it was ready:\n"
                f"{_log_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail(
        f"llama_cpp.server not ready within {SERVER_START_TIMEOUT_S:.0f}s:\n{_log_tail(log_path)}"
    )


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a running llama_cpp.server."""
    port = free_port()
    base_url = f"http://{HOST}:{port}/v1"
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(tiny_gguf_path()),
        "--host",
        HOST,
        "--port",
        str(port),
        "--n_ctx",
        "512",
        # one thread for the answer and the prompt, as the tests' own llama.cpp: the
        # server's defaults (half the cores, and every core for the prompt) spin at
        # llama.cpp's barriers while the tests share the cores
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
    ]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(proc, base_url, log_path)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


STUB_REQUEST = 'def add(a, b):\n    """Add two numbers.\n    >>> add(2, 3)\n    5\n    """\n'
"""A function stub whose example tiny-light's answer fails: the cascade escalates it."""
#: STUB_REQUEST with 2 tokens for tiny-light's answer: too few for any to pass its example.
#: A stub's code style asks 512, and tiny-light wrote 458 of them before the step tested.
STUB_ASKED = GenerationRequest(STUB_REQUEST, max_new_tokens=2)


def _cascade_to_remote(stub: Stub, tmp_path: Path, **remote: Any) -> RouterLLM:
    """A system whose cascade escalates tiny-light's answers to the ``stub`` endpoint's
    model ``remote`` (its options ``remote``), carbon tracking off."""
    models = [tiny_model("tiny-light", "light", 0.1), http_model_dict("remote", stub.base_url, **remote)]  # fmt: skip
    data = tiny_config_dict(
        tmp_path, models=models, cascade={"enabled": True}, carbon={"enabled": False}
    )
    return RouterLLM(load_config(write_config(tmp_path, data)))


def test_real_server_is_available(llama_server: str) -> None:
    assert http_backend(llama_server).availability() is None


def test_real_server_generates(llama_server: str) -> None:
    backend = http_backend(llama_server)
    assert not backend.loaded
    completion = backend.generate(GenerationRequest(prompt="def add(a, b):"))
    assert backend.loaded
    assert isinstance(completion.text, str)
    assert completion.model == "remote"
    assert completion.prompt_tokens > 0
    assert 0 < completion.completion_tokens <= MAX_NEW_TOKENS
    assert completion.latency_s > 0
    assert completion.finish_reason in ("length", "stop")
    backend.unload()
    assert not backend.loaded


def test_the_real_server_streams_its_answer(llama_server: str) -> None:
    """Asked with ``"stream": true``: llama.cpp's server sends no usage chunk, so the
    answer's tokens are not reported (as its unstreamed answers report them)."""
    pieces: list[str] = []
    backend = http_backend(llama_server)
    completion = backend.generate(GenerationRequest("def add(a, b):", on_text=pieces.append))
    assert len(pieces) > 1 and "".join(pieces) == completion.text
    assert completion.finish_reason in ("stop", "length")
    assert not completion.usage_known


def test_real_server_respects_request_max_new_tokens(llama_server: str) -> None:
    backend = create_backend(
        ModelConfig(**http_model_dict("via-registry", llama_server)),
        GenerationConfig(max_new_tokens=64, temperature=0.0),
    )
    assert isinstance(backend, OpenAIHTTPBackend)
    completion = backend.generate(
        GenerationRequest(prompt="Write a story.", max_new_tokens=3, system="Be brief.")
    )
    assert completion.model == "via-registry"
    assert 0 < completion.completion_tokens <= 3


def test_real_server_context_overflow_is_a_prompt_error(llama_server: str) -> None:
    backend = http_backend(llama_server)
    with pytest.raises(PromptError, match="maximum context length is 512"):
        backend.generate(GenerationRequest(prompt="hello world " * 600))


def test_real_server_raw_request_is_a_plain_completion(llama_server: str) -> None:
    backend = http_backend(llama_server)
    raw = backend.generate(GenerationRequest(prompt="def add(a, b):", raw=True))
    chat = backend.generate(GenerationRequest(prompt="def add(a, b):"))
    assert 0 < raw.completion_tokens <= MAX_NEW_TOKENS
    # /completions sends the text as is; the chat endpoint wraps it in a template.
    assert raw.prompt_tokens < chat.prompt_tokens


def test_prefilled_request_is_refused_clearly(llama_server: str) -> None:
    with pytest.raises(BackendError, match="cannot start the answer with a given prefix"):
        http_backend(llama_server).generate(
            GenerationRequest(prompt="Add two numbers.", response_prefix="def add(a, b):")
        )


def test_real_server_wrong_path_is_a_backend_error(llama_server: str) -> None:
    # Without /v1 the server answers 404 {"detail": "Not Found"}: not retried.
    root = llama_server.removesuffix("/v1")
    backend = http_backend(root)
    with pytest.raises(BackendError, match=r"HTTP 404.*Not Found") as err:
        backend.generate(GenerationRequest(prompt="hi"))
    assert f"does base_url need /v1 ({root}/v1)?" in str(err.value)
    # its /models is not found either, but /v1/models is: the model is not available
    assert backend.availability() == (
        f"endpoint {root} answers 404 for /models, but {root}/v1/models is found: "
        f"set base_url to {root}/v1"
    )


@dataclass(frozen=True)
class Figures:
    co2_per_token_kg: float | None
    energy_per_token_kwh: float | None
    carbon_enabled: bool


@pytest.mark.parametrize(
    "figures",
    [
        Figures(co2_per_token_kg=2e-6, energy_per_token_kwh=3e-7, carbon_enabled=True),
        Figures(co2_per_token_kg=None, energy_per_token_kwh=3e-7, carbon_enabled=False),
        Figures(co2_per_token_kg=2e-6, energy_per_token_kwh=None, carbon_enabled=False),
    ],
    ids=["co2-and-energy", "energy-only", "co2-only"],
)
def test_system_estimates_http_model_per_token(
    llama_server: str, tmp_path: Path, figures: Figures
) -> None:
    extra = {
        k: v
        for k, v in (
            ("co2_per_token_kg", figures.co2_per_token_kg),
            ("energy_per_token_kwh", figures.energy_per_token_kwh),
        )
        if v is not None
    }
    country = "FRA"
    data = tiny_config_dict(
        tmp_path,
        models=[
            tiny_model("tiny-light", "light", 0.1),
            http_model_dict("remote-tiny", llama_server, **extra),
        ],
        carbon={
            "enabled": figures.carbon_enabled,
            "country_iso_code": country,
            "output_dir": str(tmp_path / "carbon"),
        },
    )
    config = load_config(write_config(tmp_path, data))
    intensity_kg_per_kwh = grid_intensity_g_per_kwh(country) / 1000.0
    assert intensity_kg_per_kwh > 0

    system = RouterLLM(config)
    try:
        result = system.generate("def fib(n):", model="remote-tiny")
    finally:
        system.close()

    assert result.model == "remote-tiny"
    assert result.prompt_tokens > 0
    n = result.completion_tokens
    assert 0 < n <= MAX_NEW_TOKENS
    inference = result.components["llm_inference"]
    assert inference.method == "estimate:per-token"
    assert inference.duration_s > 0
    if figures.energy_per_token_kwh is not None:
        expected_energy = n * figures.energy_per_token_kwh
    else:
        assert figures.co2_per_token_kg is not None
        expected_energy = n * figures.co2_per_token_kg / intensity_kg_per_kwh
    if figures.co2_per_token_kg is not None:
        expected_co2 = n * figures.co2_per_token_kg
    else:
        expected_co2 = expected_energy * intensity_kg_per_kwh
    assert inference.energy_kwh == pytest.approx(expected_energy, rel=1e-9)
    assert inference.co2_kg == pytest.approx(expected_co2, rel=1e-9)
    assert inference.energy_kwh > 0 and inference.co2_kg > 0
    # The per-token estimate is part of the request's totals.
    assert result.co2_kg >= inference.co2_kg
    assert result.energy_kwh >= inference.energy_kwh


# ---------------------------------------------------------------------------
# A scripted standard-library stub, for retries and errors
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_length: int | None = None  # announce more than `body` to truncate it
    delay_s: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    trickle_s: float = 0.0  # send the body (or `raw`) a byte at a time, this far apart
    raw: bytes | None = None  # sent as is instead of an HTTP answer, then the connection closed
    reset: bool = False  # the connection closed with a TCP reset (RST), not a FIN
    chunked: bool = False  # the body sent with Transfer-Encoding: chunked, in 7-byte chunks
    chunk_bytes: int = 7  # or in chunks of this many bytes
    # a server-sent event stream (Transfer-Encoding: chunked), each event one chunk sent
    # ``gap_s`` after the one before; after ``pause_after`` events the stub waits (5 s at
    # most) for the stub's ``resume``, or the client's leaving, and notes whether resume
    # came; ``cut``: the connection closes after the events, without the chunked body's
    # end. The stub stops sending once the client has closed the connection, and notes
    # after how many events it found it gone (``Stub.left_after``)
    events: tuple[bytes, ...] = ()
    gap_s: float = 0.0
    pause_after: int | None = None
    cut: bool = False


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode("utf-8"))


def error_reply(status: int, message: str) -> Reply:
    return json_reply(status, {"error": {"message": message, "type": "test_error"}})


#: OpenAI's 429 for an account out of credit, as its API sends it (no Retry-After).
OUT_OF_QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}


def completion_reply(text: str = "stub answer", prompt_tokens: int = 5, tokens: int = 2) -> Reply:
    return json_reply(
        200,
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "model": "tiny",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": tokens,
                "total_tokens": prompt_tokens + tokens,
            },
        },
    )


@dataclass
class Stub:
    """What the stub answers (a script, then a default) and what it saw."""

    base_url: str = ""
    script: deque[Reply] = field(default_factory=deque)
    default_post: Reply = field(default_factory=completion_reply)
    models_reply: Reply = field(default_factory=lambda: json_reply(200, {"data": []}))
    # TGI's GET /info, at the server's root (above /v1); None: not found, as elsewhere
    info_reply: Reply | None = None
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    resume: threading.Event = field(default_factory=threading.Event)
    resumed: list[bool] = field(default_factory=list)  # each pause: whether resume came
    # each stream: the events sent before the client was found gone, None: sent to its end
    left_after: list[int | None] = field(default_factory=list)
    # each reply sent after its ``delay_s``: whether the client had closed by then
    gone_after_delay: list[bool] = field(default_factory=list)

    def answer(self, seen: Seen) -> Reply:
        with self.lock:
            self.seen.append(seen)
            if seen.method == "GET" and seen.path == "/v1/models":
                return self.models_reply
            if seen.method == "POST" and seen.path == "/v1/chat/completions":
                return self.script.popleft() if self.script else self.default_post
            if seen.method == "GET" and seen.path == "/info" and self.info_reply is not None:
                return self.info_reply
            return error_reply(404, f"no route {seen.method} {seen.path}")

    def requests(self, method: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method]

    @property
    def posts(self) -> list[Seen]:
        return self.requests("POST")


class _StubHTTPServer(ThreadingHTTPServer):
    stub: Stub


class _StubHandler(BaseHTTPRequestHandler):
    server: _StubHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass  # keep pytest output clean

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        # asked as a proxy is, the whole URL: the stub answers for the host it names
        path = urllib.parse.urlsplit(self.path).path if "://" in self.path else self.path
        reply = self.server.stub.answer(Seen(method, path, headers, body))
        if reply.delay_s:
            self.server.stub.release.wait(reply.delay_s)
            self.server.stub.gone_after_delay.append(_client_gone(self.connection))
        if reply.events:
            self._stream(reply)
            return
        if reply.raw is not None:
            try:
                for piece in _pieces(reply.raw, reply.trickle_s):
                    self.wfile.write(piece)
                    self.wfile.flush()
                    if reply.trickle_s and self.server.stub.release.wait(reply.trickle_s):
                        break
            except OSError:
                pass  # the client gave up (timeout test)
            if reply.reset:  # linger 0: close() sends RST, as a crashed process's kernel does
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                os.close(self.connection.detach())  # now: the server's shutdown() sends a FIN
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            if all(name.lower() != "content-type" for name, _ in reply.headers):
                self.send_header("Content-Type", "application/json")
            announced = (
                reply.content_length if reply.content_length is not None else len(reply.body)
            )
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(announced))
            self.send_header("Connection", "close")
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            pieces = _pieces(reply.body, reply.trickle_s)
            if reply.chunked:
                body = reply.body
                n = reply.chunk_bytes
                pieces = [b"%x\r\n%s\r\n" % (len(body[i : i + n]), body[i : i + n]) for i in range(0, len(body), n)]  # fmt: skip
                pieces.append(b"0\r\n\r\n")
            for piece in pieces:
                self.wfile.write(piece)
                self.wfile.flush()
                if reply.trickle_s and self.server.stub.release.wait(reply.trickle_s):
                    break
        except OSError:
            pass  # the client gave up (timeout test)
        self.close_connection = True

    def _stream(self, reply: Reply) -> None:
        stub = self.server.stub
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            left = None
            for i, event in enumerate(reply.events):
                if i and reply.gap_s and stub.release.wait(reply.gap_s):
                    break
                if i == reply.pause_after:
                    deadline = time.monotonic() + 5.0
                    while not stub.resume.wait(0.01) and time.monotonic() < deadline:
                        if _client_gone(self.connection):
                            break
                    stub.resumed.append(stub.resume.is_set())
                if _client_gone(self.connection):
                    left = i
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
            stub.left_after.append(left)
            if left is None and not reply.cut:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            stub.left_after.append(-1)  # the client gone as it was written to: when, not known
        self.close_connection = True


def _client_gone(conn: socket.socket) -> bool:
    """Whether the client has closed (or reset) its connection: having sent its whole
    request, it has nothing more to send, so a connection readable at once is at its end."""
    if not select.select([conn], [], [], 0)[0]:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:  # reset
        return True


def _pieces(data: bytes, trickle_s: float) -> list[bytes]:
    """``data`` as sent: a byte at a time where it trickles, else whole."""
    return [data[i : i + 1] for i in range(len(data))] if trickle_s else [data]


@pytest.fixture
def stub() -> Iterator[Stub]:
    with serving_stub() as state:
        yield state


@contextlib.contextmanager
def serving_stub(port: int = 0, tls: ssl.SSLContext | None = None) -> Iterator[Stub]:
    """A stub served on ``port`` (0: a free one) while the block runs, over TLS with
    ``tls`` where given (its ``base_url`` still says http://)."""
    server = _StubHTTPServer((HOST, port), _StubHandler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    state = Stub()
    server.stub = state
    state.base_url = f"http://{HOST}:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_stub_success_sends_the_openai_request(stub: Stub) -> None:
    stub.default_post = completion_reply("hello there", prompt_tokens=7, tokens=3)
    backend = http_backend(stub.base_url)
    completion = backend.generate(
        GenerationRequest(prompt="Say hi", system="You are terse.", stop=["\n\n"])
    )
    assert completion.text == "hello there"
    assert (completion.prompt_tokens, completion.completion_tokens) == (7, 3)
    assert completion.finish_reason == "stop"
    assert completion.model == "remote"
    [post] = stub.posts
    assert post.headers["content-type"] == "application/json"
    assert "authorization" not in post.headers
    body = post.json()
    assert body["model"] == "tiny"
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hi"},
    ]
    assert body["max_tokens"] == MAX_NEW_TOKENS
    assert body["temperature"] == 0.0
    assert body["stop"] == ["\n\n"]
    assert body["seed"] == 0
    # unset, the sampling filters are the endpoint's own: OpenAI's API refuses a top_k
    # ("Unrecognized request argument supplied: top_k", a 400)
    assert "top_k" not in body and "min_p" not in body


def test_top_k_and_min_p_are_sent_where_set(stub: Stub) -> None:
    """vLLM and llama-server take top_k and min_p beside the API's own fields: the
    request's, else the config's, are sent."""
    stub.default_post = completion_reply("hi")
    backend = http_backend(stub.base_url)
    backend.generate(GenerationRequest(prompt="Say hi", top_k=20, min_p=0.05))
    backend.generation = GenerationConfig(temperature=0.7, top_k=0, min_p=0.1)
    backend.generate(GenerationRequest(prompt="Say hi"))
    backend.generate(GenerationRequest(prompt="Say hi", top_k=3))
    sent = [post.json() for post in stub.posts]
    assert [(b["top_k"], b["min_p"]) for b in sent] == [(20, 0.05), (0, 0.1), (3, 0.1)]


def test_a_requests_repetition_penalty_is_sent_the_configs_default_is_not(stub: Stub) -> None:
    """A client's repetition_penalty reaches the endpoint (vLLM takes it; OpenAI's API
    answers a 400 naming it) rather than being dropped; the config's, 1.1 in every shipped
    config, is not sent, as OpenAI's API would refuse every request for it, nor 1.0 (no
    penalty, what an endpoint does without the field), which the code styles ask."""
    stub.default_post = completion_reply("hi")
    backend = http_backend(stub.base_url)
    backend.generation = GenerationConfig(repetition_penalty=1.1)
    backend.generate(GenerationRequest(prompt="Say hi", repetition_penalty=1.3))
    backend.generate(GenerationRequest(prompt="Say hi"))
    backend.generate(GenerationRequest(prompt="Say hi", repetition_penalty=1.0))
    first, *others = (post.json() for post in stub.posts)
    assert first["repetition_penalty"] == 1.3
    assert ["repetition_penalty" in body for body in others] == [False, False]


@pytest.mark.parametrize("status", [503, 429])
def test_retries_transient_errors_then_succeeds(
    stub: Stub, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=openai_http.__name__)
    stub.script.extend([error_reply(status, "busy"), error_reply(status, "busy")])
    stub.default_post = completion_reply("third time lucky", tokens=4)
    completion = http_backend(stub.base_url, max_retries=3).generate(GenerationRequest("hi"))
    assert completion.text == "third time lucky"
    assert completion.completion_tokens == 4
    assert len(stub.posts) == 3
    warnings = retry_warnings(caplog)
    assert len(warnings) == 2
    assert all(f"HTTP {status}" in w for w in warnings)


@pytest.mark.parametrize("status", [520, 522, 524, 529])
def test_a_proxys_or_hosted_apis_other_5xx_is_retried_too(stub: Stub, status: int) -> None:
    """Cloudflare's 520-524 (in front of hosted APIs: the origin's answer lost, timed out)
    and Anthropic's 529 (overloaded) are as passing as a 502 or 503: until 2026-12-06
    only 500, 502, 503 and 504 were retried, so one of these failed the request at once."""
    stub.script.append(error_reply(status, "try again"))
    completion = http_backend(stub.base_url, max_retries=1).generate(GenerationRequest("hi"))
    assert completion.text == "stub answer" and len(stub.posts) == 2


def test_an_overload_529_outlasting_the_retries_is_an_overload_and_501_is_not_retried(
    stub: Stub,
) -> None:
    stub.default_post = error_reply(529, "Overloaded")
    with pytest.raises(EndpointOverloadedError, match="HTTP 529 .*Overloaded"):
        http_backend(stub.base_url, max_retries=1).generate(GenerationRequest("hi"))
    assert len(stub.posts) == 2
    stub.default_post = error_reply(501, "chat is not implemented")  # asked again: the same
    with pytest.raises(BackendError, match="HTTP 501") as err:
        http_backend(stub.base_url, max_retries=3).generate(GenerationRequest("hi"))
    assert not isinstance(err.value, RateLimitedError) and len(stub.posts) == 3


def test_persistent_500_gives_up_after_max_retries(stub: Stub) -> None:
    stub.default_post = error_reply(500, "GPU on fire")
    backend = http_backend(stub.base_url, max_retries=2)
    with pytest.raises(BackendError, match="HTTP 500") as err:
        backend.generate(GenerationRequest("hi"))
    assert "GPU on fire" in str(err.value)
    assert "'remote'" in str(err.value)
    assert len(stub.posts) == 3


def test_a_remote_models_failures_are_logged_as_failed_requests(stub: Stub, tmp_path: Path) -> None:
    """A remote model whose endpoint fails (HTTP 500) is a failed request, as a local
    model's backend error is: logged with finish reason "error", 0 tokens, and the wait
    (its generation, estimated per token: 0 kWh), and counted as failed by the report.
    Until 2026-12-03 only its first failure was (its connection counted as a load);
    every later one was in no row, and the report said none failed."""
    from routerllm.carbon.report import logged_report

    stub.default_post = error_reply(500, "GPU on fire")
    models = [http_model_dict("remote", stub.base_url, max_retries=0)]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    with RouterLLM(config) as system:
        for _ in range(2):
            with pytest.raises(BackendError, match="HTTP 500 .*GPU on fire"):
                system.generate("hi", model="remote", tag="t")
        records = list(system.log.records())
    assert [(r.model, r.finish_reason, r.completion_tokens, r.tag) for r in records] == [
        ("remote", "error", 0, "t")
    ] * 2
    generation = records[1].components["llm_inference"]
    # the remote has no per-token figures: its 0 kWh is not known (until 2026-12-06 an
    # estimate:per-token, read as a generation that spent nothing)
    assert generation.method == "estimate:no-figures" and generation.energy_kwh == 0
    assert generation.duration_s > 0  # the wait for the endpoint's error
    rep = logged_report(config)
    assert (rep.totals.requests, rep.totals.failed) == (2, 2)


def test_a_failed_remote_escalation_keeps_the_answering_models_own_method(
    stub: Stub, tmp_path: Path
) -> None:
    """A cascade whose larger, remote model fails keeps tiny-light's answer; its row's
    generation is tiny-light's (method "none": carbon tracking off) and the remote's failed
    call (estimate:no-figures, as it has no per-token figures; estimate:per-token where it
    has). The failed part's method was appended after the kept answer's own
    ("none+estimate:per-token"), so ``own`` read the joined label: the
    predictor learned 0 kWh from a request logged with carbon tracking off."""
    from routerllm.carbon.predictor import UNMEASURED, measured

    stub.default_post = error_reply(500, "GPU on fire")
    with _cascade_to_remote(stub, tmp_path, max_retries=0) as system:
        result = system.generate(STUB_ASKED, model="tiny-light")
        assert result.model == "tiny-light" and "escalated to remote, which failed" in result.reason  # fmt: skip
        (row,) = system.log.records()
        assert row.escalated["llm_inference"].method == "estimate:no-figures"
        own = row.own("llm_inference")
        assert own is not None and own.method == "none"
        assert not measured(row)
        assert system.log.latest("tiny-light", 10, UNMEASURED) == []


def test_an_answer_the_endpoint_says_failed_is_a_failed_request(stub: Stub, tmp_path: Path) -> None:
    """An endpoint that ends its answer with finish reason "error" (OpenRouter's and some
    proxies' generation that failed partway, its partial text with it) gave no answer: a
    BackendError quoting the endpoint's message, logged as a failed request, not cached,
    and a 502 from the server, streamed or not. Until 2026-12-04 the partial text was
    returned as an answer, and the server sent it with finish_reason "stop"."""
    from starlette.testclient import TestClient

    from routerllm.server.app import create_app

    stub.default_post = json_reply(200, {
        "choices": [{"message": {"content": "def add(a, b):\n    return a"}, "finish_reason": "error",
                     "error": {"code": 502, "message": "upstream provider disconnected"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7},
    })  # fmt: skip
    data = tiny_config_dict(
        tmp_path, models=[http_model_dict("remote", stub.base_url)], cache={"enabled": True}
    )
    with (
        RouterLLM(load_config(write_config(tmp_path, data))) as system,
        TestClient(
            create_app(system), base_url="http://localhost"
        ) as client,  # no key: a local Host
    ):
        with pytest.raises(BackendError, match="finish_reason 'error'.*7 tokens.*disconnected"):
            system.generate("hi", model="remote")
        for stream in (False, True):
            body = {"model": "remote", "messages": [{"role": "user", "content": "hi"}], "stream": stream}  # fmt: skip
            answer = client.post("/v1/chat/completions", json=body)
            error = answer.json()["error"]
            assert answer.status_code == 502 and error["code"] == "backend_error", error
            assert "upstream provider disconnected" in error["message"]
        stub.default_post = completion_reply("def add(a, b):\n    return a + b")
        again = system.generate("hi", model="remote")
        assert again.cached_from == "" and again.text.endswith("a + b")
        assert len(stub.posts) == 4
        assert [r.finish_reason for r in system.log.records()] == ["error"] * 3 + ["stop"]
        assert system.generate("hi", model="remote").cached_from == again.request_id


def test_a_failed_answer_the_endpoint_billed_is_paid_for_but_no_answer(
    stub: Stub, tmp_path: Path
) -> None:
    """An endpoint that ends its answer with finish reason "error" and says what the
    generation used (its ``usage``: the provider bills those tokens) gives a failed
    request logged with those tokens, their energy (its per-token figures) and their price
    (the model's token prices), which the cost budgets count; still no answer: the
    comparison with the largest model and the per-token rate leave it out. Until
    2026-12-04 the failed row said 0 tokens, 0 kWh and $0: the budgets and the report
    under-counted what the user paid."""
    from routerllm.carbon.report import logged_report

    stub.default_post = json_reply(200, {
        "choices": [{"message": {"content": "def add(a, b):"}, "finish_reason": "error"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7},
    })  # fmt: skip
    prices = {"cost_per_1m_input_usd": 1.0, "cost_per_1m_output_usd": 2.0, "energy_per_token_kwh": 1e-6}  # fmt: skip
    models = [http_model_dict("remote", stub.base_url, max_retries=0, **prices)]
    budgets = {"cost_usd": {"daily": 1.0}}
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models, budgets=budgets)))  # fmt: skip
    paid = (5 * 1.0 + 7 * 2.0) / 1e6
    with RouterLLM(config) as system:
        with pytest.raises(BackendError, match="finish_reason 'error'"):
            system.generate("hi", model="remote")
        (row,) = system.log.records()
        assert (row.finish_reason, row.prompt_tokens, row.completion_tokens) == ("error", 5, 7)
        assert row.cost_usd == pytest.approx(paid)
        assert row.components["llm_inference"].energy_kwh == pytest.approx(7e-6)
        assert system.budget is not None
        daily = next(s for s in system.budget.status() if s.window == "daily")
        assert daily.spent == pytest.approx(paid)
        stub.default_post = completion_reply("done", prompt_tokens=5, tokens=2)
        answer = system.generate("hi", model="remote")
    rep = logged_report(config)
    assert (rep.totals.failed, rep.totals.completion_tokens) == (1, 7 + 2)
    assert rep.totals.cost_usd == pytest.approx(paid + answer.cost_usd)
    vs = rep.versus_largest
    assert vs is not None and vs["method"].endswith("; 1 request that failed (no answer, their loads) left out")  # fmt: skip


def test_errors_sent_with_http_200_pay_for_the_tokens_their_usage_billed(
    stub: Stub, tmp_path: Path
) -> None:
    """OpenRouter's error sent with HTTP 200 once the model began may carry the ``usage``
    its provider bills. Each attempt that failed so is paid for: the failed row logs the
    tokens of both attempts, their energy and their price. Until 2026-12-04 it logged 0
    tokens, 0 kWh and $0; one without usage still logs 0."""
    error = {"error": {"code": 502, "message": "Provider returned error"}}
    stub.default_post = json_reply(200, {**error, "usage": {"prompt_tokens": 5, "completion_tokens": 7}})  # fmt: skip
    prices = {"cost_per_1m_input_usd": 1.0, "cost_per_1m_output_usd": 2.0, "energy_per_token_kwh": 1e-6}  # fmt: skip
    models = [http_model_dict("remote", stub.base_url, max_retries=1, **prices)]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    with RouterLLM(config) as system:
        system.manager.backend("remote").backoff_base_s = 0.01  # type: ignore[attr-defined]
        with pytest.raises(BackendError, match="HTTP 502 .*Provider returned error"):
            system.generate("hi", model="remote")
        assert len(stub.posts) == 2
        stub.default_post = json_reply(200, error)
        with pytest.raises(BackendError, match="HTTP 502"):
            system.generate("hi", model="remote")
        billed, unbilled = system.log.records()
    assert (billed.finish_reason, billed.prompt_tokens, billed.completion_tokens) == (
        "error",
        10,
        14,
    )
    assert billed.cost_usd == pytest.approx((10 * 1.0 + 14 * 2.0) / 1e6)
    assert billed.components["llm_inference"].energy_kwh == pytest.approx(14e-6)
    assert (unbilled.prompt_tokens, unbilled.completion_tokens, unbilled.cost_usd) == (0, 0, 0)


def test_an_answer_after_a_billed_failed_attempt_pays_for_that_attempt_too(
    stub: Stub, tmp_path: Path
) -> None:
    """An error sent with HTTP 200 whose ``usage`` says what its provider billed, then an
    answer on the retry: the request's cost is both attempts' tokens at the model's token
    prices; its token counts are the answer's own (the length figures read them). Until
    2026-12-04 the failed attempt's tokens were dropped: its cost under-counted the bill."""
    error = {"error": {"code": 502, "message": "Provider returned error"}}
    stub.script.append(json_reply(200, {**error, "usage": {"prompt_tokens": 5, "completion_tokens": 7}}))  # fmt: skip
    stub.default_post = completion_reply("done", prompt_tokens=5, tokens=2)
    prices = {"cost_per_1m_input_usd": 1.0, "cost_per_1m_output_usd": 2.0, "energy_per_token_kwh": 1e-6}  # fmt: skip
    models = [http_model_dict("remote", stub.base_url, max_retries=1, **prices)]
    budgets = {"cost_usd": {"daily": 1.0}}
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models, budgets=budgets)))  # fmt: skip
    paid = ((5 + 5) * 1.0 + (7 + 2) * 2.0) / 1e6
    with RouterLLM(config) as system:
        system.manager.backend("remote").backoff_base_s = 0.01  # type: ignore[attr-defined]
        result = system.generate("hi", model="remote")
        assert len(stub.posts) == 2 and result.text == "done"
        assert (result.prompt_tokens, result.completion_tokens) == (5, 2)
        assert result.cost_usd == pytest.approx(paid)
        (row,) = system.log.records()
        assert (row.prompt_tokens, row.completion_tokens, row.cost_usd) == (5, 2, pytest.approx(paid))  # fmt: skip
        assert system.budget is not None
        daily = next(s for s in system.budget.status() if s.window == "daily")
        assert daily.spent == pytest.approx(paid)
        # a retry whose answer ends with finish reason "error": both attempts' tokens
        stub.script.append(json_reply(200, {**error, "usage": {"prompt_tokens": 5, "completion_tokens": 7}}))  # fmt: skip
        stub.default_post = json_reply(200, {
            "choices": [{"message": {"content": "def"}, "finish_reason": "error"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1},
        })  # fmt: skip
        with pytest.raises(BackendError, match="finish_reason 'error'"):
            system.generate("hi again", model="remote")
        failed = list(system.log.records())[-1]
    assert (failed.finish_reason, failed.prompt_tokens, failed.completion_tokens) == ("error", 10, 8)  # fmt: skip
    assert failed.cost_usd == pytest.approx((10 * 1.0 + 8 * 2.0) / 1e6)


def test_an_answer_after_a_billed_failed_attempt_counts_that_attempts_energy_too(
    stub: Stub, tmp_path: Path
) -> None:
    """As a request whose attempts all failed logs the energy of the tokens they were
    billed, one answered on a retry counts it too, and a model priced by its energy (no
    token prices) pays for it. Until 2026-12-04 its energy and CO2 were the answer's
    alone, and such a model's cost left the failed attempt out."""
    error = {"error": {"code": 502, "message": "Provider returned error"}}
    stub.script.append(json_reply(200, {**error, "usage": {"prompt_tokens": 5, "completion_tokens": 7}}))  # fmt: skip
    stub.default_post = completion_reply("done", prompt_tokens=5, tokens=2)
    models = [http_model_dict("remote", stub.base_url, max_retries=1, energy_per_token_kwh=1e-6)]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    price = config.carbon.electricity_price_usd_per_kwh
    with RouterLLM(config) as system:
        system.manager.backend("remote").backoff_base_s = 0.01  # type: ignore[attr-defined]
        result = system.generate("hi", model="remote")
        assert len(stub.posts) == 2 and result.text == "done"
        assert (result.prompt_tokens, result.completion_tokens) == (5, 2)
        inference = result.components["llm_inference"]
        assert inference.energy_kwh == pytest.approx((7 + 2) * 1e-6)
        assert result.cost_usd >= (7 + 2) * 1e-6 * price
        (row,) = system.log.records()
        assert row.components["llm_inference"].energy_kwh == pytest.approx((7 + 2) * 1e-6)


def test_a_cascade_pays_for_the_tokens_its_failed_remote_step_was_billed(
    stub: Stub, tmp_path: Path
) -> None:
    """A cascade whose remote larger model's answer ends with finish reason "error" keeps
    tiny-light's answer, and its row pays for the tokens the endpoint billed (their price,
    and their energy in the escalated part): until 2026-12-04 that step cost $0 and 0 kWh."""
    stub.default_post = json_reply(200, {
        "choices": [{"message": {"content": "    return a"}, "finish_reason": "error"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7},
    })  # fmt: skip
    prices = {"cost_per_1m_input_usd": 1.0, "cost_per_1m_output_usd": 2.0, "energy_per_token_kwh": 1e-6}  # fmt: skip
    with _cascade_to_remote(stub, tmp_path, **prices) as system:
        result = system.generate(STUB_ASKED, model="tiny-light")
        assert result.model == "tiny-light" and "escalated to remote, which failed" in result.reason  # fmt: skip
        (row,) = system.log.records()
    assert result.cost_usd == row.cost_usd == pytest.approx((5 * 1.0 + 7 * 2.0) / 1e6)
    assert row.escalated["llm_inference"].energy_kwh == pytest.approx(7e-6)
    assert (row.prompt_tokens, row.completion_tokens) == (result.prompt_tokens, result.completion_tokens)  # fmt: skip


def test_a_failed_answer_without_usage_does_not_claim_0_tokens(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    """An answer ended with finish reason "error" and no ``usage`` does not say how long
    the failed generation was: the error said "failed after 0 tokens" (its partial text in
    hand), and nothing warned that the tokens billed for it are logged as 0, as an
    answer without usage warns."""
    stub.default_post = json_reply(200, {
        "choices": [{"message": {"content": "def add(a, b):"}, "finish_reason": "error"}],
    })  # fmt: skip
    backend = http_backend(stub.base_url, max_retries=0)
    with caplog.at_level(logging.WARNING), pytest.raises(BackendError) as err:
        backend.generate(GenerationRequest("hi"))
    assert "after 0 tokens" not in str(err.value)
    assert "(its generation failed); the partial answer is not used" in str(err.value)
    assert any("no token usage" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("usage", "unknown"),
    [
        (None, "gives no token usage"),
        ({"prompt_tokens": 7}, "gives no usage.completion_tokens"),
        ({"prompt_tokens": 7, "completion_tokens": None}, "gives no usage.completion_tokens"),
        ({"prompt_tokens": None, "completion_tokens": 4}, "gives no usage.prompt_tokens"),
        ({"prompt_tokens": 7, "completion_tokens": 0}, "says 0 completion tokens"),
        ({"prompt_tokens": "a", "completion_tokens": 4}, "gives usage.prompt_tokens 'a', no token count"),  # fmt: skip
        ({"prompt_tokens": -5, "completion_tokens": 4}, "gives usage.prompt_tokens -5, no token count"),  # fmt: skip
        ({"prompt_tokens": 7, "completion_tokens": 10**12}, "usage.completion_tokens 1000000000000, no token count"),  # fmt: skip
        ({"prompt_tokens": 7, "completion_tokens": 2.5}, "usage.completion_tokens 2.5, no token count"),  # fmt: skip
        ([7, 4], "gives a usage that is not an object"),
    ],
    ids=[
        "none", "no-completion-count", "null-completion-count", "null-prompt-count", "zero",
        "text-count", "negative", "absurd", "fraction", "list",
    ],
)  # fmt: skip
def test_an_answer_of_unknown_usage_is_counted_by_an_estimate_not_as_free(
    stub: Stub, tmp_path: Path, caplog: pytest.LogCaptureFixture, usage: Any, unknown: str
) -> None:
    """An answer whose endpoint does not say how many tokens it generated (no usage, a
    count missing, null or no count, 0 tokens for a text) is kept, and logged with its
    tokens estimated from characters (a count the endpoint did give kept), priced and
    figured from them, its generation's method ``estimate:from-text``, which the report
    counts in its totals and says; the per-token rate and the comparison with the largest
    model leave it out. Until 2026-12-06 it was logged at 0 tokens, $0 and 0 kWh
    (``estimate:no-usage``): a hosted API's bill that no cost budget saw."""
    from routerllm.carbon.predictor import UNMEASURED
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    answer: dict[str, Any] = {"choices": [{"message": {"content": "a real answer"}}]}
    if usage is not None:
        answer["usage"] = usage
    stub.script.append(completion_reply("counted", prompt_tokens=5, tokens=2))
    stub.default_post = json_reply(200, answer)
    figures = {"cost_per_1m_input_usd": 1.0, "cost_per_1m_output_usd": 2.0, "energy_per_token_kwh": 1e-6}  # fmt: skip
    models = [http_model_dict("remote", stub.base_url, **figures)]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    with RouterLLM(config) as system:
        counted = system.generate("hi", model="remote")
        with caplog.at_level(logging.WARNING):
            result = system.generate("hi again", model="remote")
        rows = list(system.log.records())
    assert counted.components["llm_inference"].method == "estimate:per-token"
    assert result.text == "a real answer"
    [warning] = [r.getMessage() for r in caplog.records if r.name == openai_http.__name__]
    assert unknown in warning and "remote" in warning and "estimated" in warning
    # no logged model has 3 requests: prompts at about 4 characters a token, "hi again" 8
    # characters (2 tokens) unless the usage gave its prompt's 7; the answer at the high
    # guess of 0.5 tokens a character (1 counted answer teaches none): "a real answer" 13
    # (ceil: 7 tokens) unless the usage gave its completion's 4
    given = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    prompt = given if isinstance(given, int) and given > 0 else 2
    out = usage.get("completion_tokens") if isinstance(usage, dict) else None
    out = out if isinstance(out, int) and 0 < out < 10**7 else 7
    assert (rows[1].prompt_tokens, rows[1].completion_tokens) == (prompt, out)
    assert rows[1].cost_usd == result.cost_usd == pytest.approx((prompt * 1.0 + out * 2.0) / 1e6)
    generation = result.components["llm_inference"]
    assert generation.energy_kwh == pytest.approx(out * 1e-6)  # its tokens at 1e-6 kWh
    assert generation.method == rows[1].components["llm_inference"].method == "estimate:from-text"
    assert generation.method in UNMEASURED  # the predictor learns no rate from it
    rep = logged_report(config)
    assert "estimate:from-text" in rep.methods
    assert rep.totals.cost_usd == pytest.approx(rows[0].cost_usd + rows[1].cost_usd)
    assert rep.estimated_usage == {"remote": 1} == rep.as_dict()["estimated_usage"]
    assert rep.unknown_usage == {} and not any("not in the totals" in x for x in report_lines(rep))
    assert (
        "estimated: the tokens of 1 request (remote 1), whose endpoint reported no token "
        "usage, from their prompt's and text's characters (a streamed text's pieces where "
        "more); their cost, and their generation energy and CO2 where their model has "
        "energy figures, in the totals, from those"
    ) in report_lines(rep)
    vs = rep.versus_largest
    assert vs is not None and "; 1 request logged without energy left out" in vs["method"]


def test_an_answer_without_usage_is_counted_at_its_models_own_logged_tokens_a_character(
    stub: Stub, tmp_path: Path
) -> None:
    """An answer without usage is counted at the completion tokens a character of its
    model's logged answers whose tokens were counted (kept in the log across a restart),
    not at its prompt's: answers (code) read more tokens a character than prompts, and a
    money budget was under-charged (SmolLM2's HumanEval answers at 0.85x)."""
    # three counted answers of 40 characters in 30 tokens each: 0.75 tokens a character
    for _ in range(3):
        stub.script.append(completion_reply("x" * 40, prompt_tokens=20, tokens=30))
    stub.default_post = json_reply(200, {"choices": [{"message": {"content": "y" * 100}}]})
    prices = {"cost_per_1m_input_usd": 1.0, "cost_per_1m_output_usd": 2.0, "energy_per_token_kwh": 1e-6}  # fmt: skip
    models = [http_model_dict("remote", stub.base_url, **prices)]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    with RouterLLM(config) as system:
        for k in range(3):  # prompts of 20 to 60 characters read 20 tokens: 0 a character
            system.generate("p" * (20 + 20 * k), model="remote")
    with RouterLLM(config) as system:  # a restart: learned again from the log
        result = system.generate("q" * 40, model="remote")
        uncounted = list(system.log.records())[-1]
    assert result.components["llm_inference"].method == "estimate:from-text"
    # 100 characters at 0.75 tokens a character (the prompts' line reads 0 a character:
    # counted at 4 characters a token it was 25; the high guess, 0.5 a character, is 50)
    assert result.completion_tokens == uncounted.completion_tokens == 75
    assert uncounted.completion_chars == 100
    assert result.cost_usd == pytest.approx((20 * 1.0 + 75 * 2.0) / 1e6)


def test_route_says_an_answers_tokens_were_not_reported(stub: Stub, tmp_path: Path) -> None:
    """`routerllm route` said "0 in / 0 out tokens" and 0 kWh of an answer whose
    endpoint gave no usage, as though it were free; its tokens are now estimated, and
    said so."""
    stub.default_post = json_reply(200, {"choices": [{"message": {"content": "an answer"}}]})
    models = [http_model_dict("remote", stub.base_url, energy_per_token_kwh=1e-6)]
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, models=models))
    proc = cli_in_process("route", "hi", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    # "hi": 1 token at about 4 characters a token; "an answer": 9 characters at the high
    # guess of 0.5 tokens a character, 5 tokens
    assert "1 in / 5 out tokens (estimated: not reported by the endpoint)" in proc.stdout
    assert "carbon method: codecarbon:load-estimate, estimate:from-text" in proc.stdout
    # its time is the stub's answer: a few ms (3.21e-03 s, not 0.00 s) or 0.01 s on a busy machine
    assert re.search(r"llm_inference: (\d+\.\d\d|\d\.\d\de-\d\d) s \S+ [mµ]?Wh", proc.stdout), proc.stdout  # fmt: skip
    assert "not known" not in proc.stdout
    assert "0 in / 0 out" not in proc.stdout
    assert "remote: the answer gives no token usage" in proc.stderr


def test_max_retries_zero_makes_one_attempt(stub: Stub) -> None:
    stub.default_post = error_reply(503, "overloaded")
    with pytest.raises(BackendError, match="HTTP 503"):
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert len(stub.posts) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [(404, "The model `tiny` does not exist"), (401, "Incorrect API key provided")],
)
def test_client_errors_fail_immediately(stub: Stub, status: int, message: str) -> None:
    stub.default_post = error_reply(status, message)
    backend = http_backend(stub.base_url, max_retries=3)
    with pytest.raises(BackendError, match=f"HTTP {status}") as err:
        backend.generate(GenerationRequest("hi"))
    assert message in str(err.value)
    assert len(stub.posts) == 1


def test_error_body_that_is_not_json_is_quoted(stub: Stub) -> None:
    stub.default_post = Reply(403, b"forbidden by proxy")
    with pytest.raises(BackendError, match="HTTP 403.*forbidden by proxy"):
        http_backend(stub.base_url).generate(GenerationRequest("hi"))
    assert len(stub.posts) == 1


def test_context_overflow_400_is_a_prompt_error(stub: Stub) -> None:
    message = "This model's maximum context length is 4096 tokens, you requested 9000"
    stub.default_post = error_reply(400, message)
    with pytest.raises(PromptError, match="maximum context length") as err:
        http_backend(stub.base_url).generate(GenerationRequest("very long prompt"))
    assert "'remote'" in str(err.value)
    assert len(stub.posts) == 1


@pytest.mark.parametrize("status", [400, 422])
def test_a_refused_request_is_a_prompt_error_naming_the_field(
    stub: Stub, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """An upstream 400 (422 from TGI) is the request's fault, not a failing backend: the
    server answers its client 400 with the upstream's message and field, not 502; the
    operator sees it in the log (a config setting may be what is refused)."""
    stub.default_post = json_reply(
        status,
        {"error": {"message": "max_tokens is too large: 99999", "param": "max_tokens"}},
    )
    with pytest.raises(PromptError, match=f"HTTP {status} .*max_tokens is too large") as err:
        http_backend(stub.base_url).generate(GenerationRequest("hi"))
    assert err.value.param == "max_tokens" and "'remote'" in str(err.value)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [str(err.value)]
    assert len(stub.posts) == 1
    stub.default_post = error_reply(400, "temperature must be between 0 and 2")
    with pytest.raises(PromptError, match="temperature must be") as err:
        http_backend(stub.base_url).generate(GenerationRequest("hi"))
    assert err.value.param is None


def test_a_refused_option_on_a_function_stub_is_not_blamed_on_its_code_style(
    stub: Stub, tmp_path: Path
) -> None:
    """The stub hint (asked in a code style; send it as written) is for a prompt too long
    as styled, not for an option the endpoint refuses."""
    data = tiny_config_dict(
        tmp_path, models=[http_model_dict("remote", stub.base_url, max_retries=0)],
        carbon={"enabled": False},
    )  # fmt: skip
    function_stub = 'def add(a: int, b: int) -> int:\n    """Add two numbers."""\n'
    stub.default_post = json_reply(
        400, {"error": {"message": "max_tokens is too large: 99999", "param": "max_tokens"}}
    )
    with (
        RouterLLM(load_config(write_config(tmp_path, data))) as system,
        pytest.raises(PromptError, match="max_tokens is too large") as err,
    ):
        system.generate(GenerationRequest(function_stub, max_new_tokens=99999))
    assert err.value.param == "max_tokens" and "function stub" not in str(err.value)


def test_the_server_answers_an_upstream_400_with_a_400_and_a_401_with_a_502(
    stub: Stub, tmp_path: Path
) -> None:
    from starlette.testclient import TestClient

    from routerllm.server.app import create_app

    data = tiny_config_dict(
        tmp_path,
        models=[http_model_dict("remote", stub.base_url, max_retries=0)],
        carbon={"enabled": False},
    )
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 99999}
    with (
        RouterLLM(load_config(write_config(tmp_path, data))) as system,
        TestClient(
            create_app(system), base_url="http://localhost"
        ) as client,  # no key: a local Host
    ):
        stub.default_post = json_reply(
            400, {"error": {"message": "max_tokens is too large: 99999", "param": "max_tokens"}}
        )
        answer = client.post("/v1/chat/completions", json=body)
        error = answer.json()["error"]
        assert answer.status_code == 400 and error["type"] == "invalid_request_error", error
        assert error["param"] == "max_tokens" and "max_tokens is too large" in error["message"]
        stub.default_post = error_reply(401, "Incorrect API key provided")
        answer = client.post("/v1/chat/completions", json=body)
        error = answer.json()["error"]
        assert answer.status_code == 502 and error["code"] == "backend_error", error
        assert "Incorrect API key provided" in error["message"]


@pytest.mark.parametrize(
    ("payload", "cause"),
    [
        ({"id": "no-choices"}, "no 'choices'"),
        ({"choices": []}, "'choices' is empty"),
        ({"choices": [{"message": None}]}, "choices[0] has no 'message'"),
        ({"choices": [{"text": "legacy completions shape"}]}, "choices[0] has no 'message'"),
        ([1, 2, 3], "an array, not an object"),
        ({"choices": [{"message": {"content": 4}}]}, "the answer's text is a number"),
    ],
    ids=["no-choices", "empty-choices", "null-message", "legacy-shape", "list", "text-number"],
)  # fmt: skip
def test_unexpected_response_shape(stub: Stub, payload: Any, cause: str) -> None:
    """The error names the model and what is wrong: until 2026-12-04 it named neither,
    and quoted 200 characters of the answer."""
    # a long answer: what is wrong is said before the answer is quoted
    if isinstance(payload, dict):
        payload = {"id": "chatcmpl-" + "x" * 300, **payload}
    stub.default_post = json_reply(200, payload)
    with pytest.raises(BackendError, match="unexpected response shape") as err:
        http_backend(stub.base_url).generate(GenerationRequest("hi"))
    assert "model 'remote'" in str(err.value)
    assert f"({cause}" in str(err.value)
    assert len(stub.posts) == 1


def test_an_error_sent_with_http_200_is_handled_as_its_status(stub: Stub) -> None:
    """OpenRouter sends an error that comes once the model began with HTTP 200, the
    status as its ``code``. Until 2026-12-04 it was an "unexpected response shape",
    never retried, and a rate limit was not a RateLimitedError (the server's 502)."""

    def error_200(code: int, message: str) -> Reply:
        return json_reply(200, {"error": {"code": code, "message": message}})

    stub.script.append(error_200(502, "Provider returned error"))
    completion = http_backend(stub.base_url, max_retries=1).generate(GenerationRequest("hi"))
    assert completion.text == "stub answer" and len(stub.posts) == 2
    stub.default_post = error_200(429, "Rate limit exceeded: free-models-per-min")
    with pytest.raises(RateLimitedError, match="HTTP 429 .*free-models-per-min"):
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    stub.default_post = error_200(400, "max_tokens is too large")
    with pytest.raises(PromptError, match="max_tokens is too large"):
        http_backend(stub.base_url).generate(GenerationRequest("hi"))
    assert len(stub.posts) == 4


def test_null_content_and_missing_usage_are_tolerated(stub: Stub) -> None:
    stub.default_post = json_reply(
        200, {"choices": [{"message": {"role": "assistant", "content": None}}]}
    )
    completion = http_backend(stub.base_url).generate(GenerationRequest("hi"))
    assert completion.text == ""
    assert (completion.prompt_tokens, completion.completion_tokens) == (0, 0)
    assert completion.finish_reason is None


def test_a_refusal_is_the_answer(stub: Stub) -> None:
    # OpenAI sends a refusal as `refusal`, with `content` null: it was an empty answer
    refusal = "I'm sorry, I can't help with that."
    stub.default_post = json_reply(200, {
        "choices": [{"message": {"role": "assistant", "content": None, "refusal": refusal},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9},
    })  # fmt: skip
    completion = http_backend(stub.base_url).generate(GenerationRequest("hi"))
    assert (completion.text, completion.completion_tokens) == (refusal, 9)


def test_half_a_surrogate_pair_in_an_answer_becomes_a_replacement_character(
    stub: Stub, tmp_path: Path
) -> None:
    # JSON's "\ud83d" alone (an emoji cut in half) is no text: the log and the JSON
    # answer refused it (UnicodeEncodeError), and the paid answer was lost
    stub.default_post = Reply(
        200,
        b'{"choices": [{"message": {"content": "smile \\ud83d"}, "finish_reason": "\\udfff"}],'
        b' "usage": {"prompt_tokens": 3, "completion_tokens": 2}}',
    )
    data = tiny_config_dict(tmp_path, models=[http_model_dict("remote", stub.base_url)])
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        result = system.generate("hi", model="remote")
        assert (result.text, result.finish_reason) == ("smile \ufffd", "\ufffd")
        assert system.log.count() == 1


def test_a_function_stub_is_asked_in_chat_of_a_served_model_named_like_a_ladder_one(
    stub: Stub, tmp_path: Path
) -> None:
    # qwen2.5-coder-1.5b's own style prefills the answer, which the OpenAI API cannot:
    # every stub sent to it behind a llama.cpp or vLLM server failed (BackendError)
    stub.default_post = completion_reply("```python\ndef add(a, b):\n    return a + b\n```")
    model = http_model_dict("qwen2.5-coder-1.5b", stub.base_url)
    data = tiny_config_dict(tmp_path, models=[model])
    stub_prompt = 'def add(a, b):\n    """Add two numbers."""\n'
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        result = system.generate(stub_prompt)
    assert "asked to complete the function add" in result.reason
    assert "return a + b" in result.text
    [post] = stub.posts
    assert "Complete the following Python function" in post.json()["messages"][-1]["content"]


def test_unreachable_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=openai_http.__name__)
    port = free_port()  # nothing listens there
    backend = http_backend(f"http://{HOST}:{port}/v1", max_retries=2)
    reason = backend.availability()
    assert reason is not None
    assert "unreachable" in reason
    assert f"{HOST}:{port}" in reason
    with pytest.raises(BackendError, match="cannot reach") as err:
        backend.generate(GenerationRequest("hi"))
    assert "after 3 attempts" in str(err.value)
    assert len(retry_warnings(caplog)) == 2


HEAVY = "Implement a thread-safe LRU cache in Python with a distributed lock, and explain it"
"""A prompt the rules router sends to the heavy tier."""


def test_an_endpoint_that_stops_answering_is_routed_around_until_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint found unreachable (its connection refused once the retries are spent)
    is unavailable from then: the request that found it so gets the error, the next are
    routed to the other models, and the check a minute later finds it back. Until
    2026-12-04 only an endpoint down at the start was routed around: one that went down
    later kept every request routed to it failing, until a restart."""
    from routerllm import manager as manager_module

    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    with serving_stub() as up:
        port = int(up.base_url.split(":")[2].split("/")[0])
        models = [tiny_model("tiny-light", "light", 0.1), http_model_dict("remote", up.base_url, max_retries=1)]  # fmt: skip
        config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        system = RouterLLM(config)
        assert system.generate(HEAVY).model == "remote"
    with system:
        with pytest.raises(BackendError, match="cannot reach .* after 2 attempts"):
            system.generate(HEAVY)
        result = system.generate(HEAVY)
        assert (result.model, result.reason.endswith("remote unavailable")) == ("tiny-light", True)  # fmt: skip
        assert [r.finish_reason for r in system.log.records()][-2] == "error"
        clock[0] += manager_module.RECHECK_S
        with serving_stub(port) as back:
            assert system.generate(HEAVY).model == "remote"
            assert len(back.posts) == 1


def test_the_request_that_finds_the_only_endpoint_down_gets_its_error_and_is_logged(
    tmp_path: Path,
) -> None:
    """A config of remote models alone, each endpoint down: the request that found the
    last one unreachable looked for a larger model among the available ones (none left)
    before logging its failure, so until 2026-12-06 it raised "no configured model can
    run here" (the server's 503) in place of the endpoint's error, and was not logged."""
    with serving_stub() as up:
        models = [http_model_dict("remote", up.base_url, max_retries=0)]
        config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        system = RouterLLM(config)
        assert system.generate("hi").model == "remote"
    with system:
        with pytest.raises(EndpointUnreachableError, match="cannot reach .* after 1 attempt"):
            system.generate("hi")
        assert [r.finish_reason for r in system.log.records()] == ["stop", "error"]
        with pytest.raises(ModelUnavailableError, match="no configured model can run here"):
            system.generate("hi")  # the next: none left to route to


@pytest.mark.parametrize(
    "refusal",
    [error_reply(401, "Incorrect API key provided"), json_reply(429, OUT_OF_QUOTA)],
    ids=["key-refused", "quota-spent"],
)
def test_an_endpoint_that_refuses_the_key_or_the_account_is_routed_around(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: Reply
) -> None:
    """A key revoked (401) or an account out of credit (429 insufficient_quota) refuses
    every request alike: until 2026-12-06 the model stayed routed to, and every routed
    request failed (the server's 502) while another model could answer. Now it is
    unavailable until the next check, as an unreachable endpoint is: the request that
    found it so gets the error, the next go to the other models, a request naming it is
    refused saying why, and the check a minute later finds it back."""
    from routerllm import manager as manager_module

    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    with serving_stub() as up:
        models = [tiny_model("tiny-light", "light", 0.1), http_model_dict("remote", up.base_url)]  # fmt: skip
        config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        with RouterLLM(config) as system:
            assert system.generate(HEAVY).model == "remote"
            up.default_post = refusal
            with pytest.raises(BackendError, match=r"HTTP (401|429)"):
                system.generate(HEAVY)
            result = system.generate(HEAVY)
            assert (result.model, result.reason.endswith("remote unavailable")) == ("tiny-light", True)  # fmt: skip
            with pytest.raises(ModelUnavailableError, match=r"model 'remote' is not available here: .*HTTP (401|429)"):  # fmt: skip
                system.generate(HEAVY, model="remote")
            assert len(up.posts) == 2  # neither of the last two asked it
            up.default_post = completion_reply()  # the key or the account mended
            clock[0] += manager_module.RECHECK_S
            assert system.generate(HEAVY).model == "remote"


def test_timeout_is_retried_then_reported(stub: Stub) -> None:
    stub.default_post = Reply(200, completion_reply().body, delay_s=5.0)
    backend = http_backend(stub.base_url, max_retries=1, timeout_s=0.3)
    start = time.perf_counter()
    with pytest.raises(BackendError, match="cannot reach.*after 2 attempts"):
        backend.generate(GenerationRequest("hi"))
    assert time.perf_counter() - start < 4.0
    assert len(stub.posts) == 2


def test_truncated_response_is_a_backend_error(stub: Stub) -> None:
    """A body cut short of its Content-Length (http.client.IncompleteRead, which is
    not an OSError) is retried and then reported as a BackendError."""
    body = completion_reply().body
    stub.default_post = Reply(200, body[:10], content_length=len(body))
    stub.models_reply = Reply(200, b'{"data": [', content_length=100)
    backend = http_backend(stub.base_url, max_retries=1)
    reason = backend.availability()
    assert reason is not None and "unreachable" in reason
    with pytest.raises(BackendError, match="after 2 attempts"):
        backend.generate(GenerationRequest("hi"))
    assert len(stub.posts) == 2


def test_availability_of_a_live_stub(stub: Stub) -> None:
    backend = http_backend(stub.base_url)
    assert backend.availability() is None
    # A server without /models still answers: available.
    stub.models_reply = error_reply(404, "not implemented")
    assert backend.availability() is None
    # each check: its /models, then TGI's /info (not found here), as /models gave no context
    assert [s.path for s in stub.requests("GET")] == ["/v1/models", "/info"] * 2
    assert stub.posts == []
    stub.models_reply = Reply(200, b"<html>a proxy page</html>")
    reason = backend.availability()
    assert reason is not None and "answered, but its answer is not JSON" in reason


def test_api_key_env(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    var = "ROUTERLLM_TEST_OPENAI_HTTP_KEY"
    monkeypatch.delenv(var, raising=False)
    backend = http_backend(stub.base_url, api_key_env=var)

    reason = backend.availability()
    assert reason is not None
    assert var in reason
    assert stub.seen == []  # the missing key is reported without a request

    monkeypatch.setenv(var, "sk-test-123")
    assert backend.availability() is None
    completion = backend.generate(GenerationRequest("hi"))
    assert completion.text == "stub answer"
    # /info too (its host's, above /v1), asked as /models gave no context: a protected
    # endpoint (Hugging Face's Inference Endpoints) answers it only with the key
    [get, info] = stub.requests("GET")
    [post] = stub.posts
    assert info.path == "/info" and info.headers["authorization"] == "Bearer sk-test-123"
    assert get.headers["authorization"] == "Bearer sk-test-123"
    assert post.headers["authorization"] == "Bearer sk-test-123"


def test_a_missing_or_empty_api_key_is_said_so_before_any_request(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until 2026-12-04 an empty key was "not set", and an answer asked of the backend
    itself was sent without a key, for the endpoint's 401."""
    var = "ROUTERLLM_TEST_OPENAI_HTTP_KEY"
    monkeypatch.delenv(var, raising=False)
    backend = http_backend(stub.base_url, api_key_env=var)
    with pytest.raises(BackendError, match=f"model 'remote': environment variable {var} \\(API key\\) is not set"):  # fmt: skip
        backend.generate(GenerationRequest("hi"))
    monkeypatch.setenv(var, " \n")
    assert backend.availability() == f"environment variable {var} (API key) is empty"
    with pytest.raises(BackendError, match=f"environment variable {var} \\(API key\\) is empty"):
        backend.generate(GenerationRequest("hi"))
    assert stub.seen == []


def test_an_api_key_read_with_its_new_line_is_sent_without_it_and_never_shown(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the header refused "Bearer sk-test-123\n", and http.client's error quoted the key,
    # which the model's reason (a 503 body from routerllm serve) then showed to anyone
    var = "ROUTERLLM_TEST_OPENAI_HTTP_KEY"
    monkeypatch.setenv(var, "sk-test-123\r\n")
    backend = http_backend(stub.base_url, api_key_env=var, max_retries=0)
    assert backend.availability() is None
    assert backend.generate(GenerationRequest("hi")).text == "stub answer"
    assert stub.posts[0].headers["authorization"] == "Bearer sk-test-123"
    monkeypatch.setenv(var, "sk-test\n-123")
    reason = backend.availability()
    assert reason is not None and var in reason and "new line" in reason and "123" not in reason
    with pytest.raises(BackendError, match="control character") as err:
        backend.generate(GenerationRequest("hi"))
    assert "123" not in str(err.value) and len(stub.posts) == 1


def test_an_api_key_beyond_ascii_is_sent_as_utf8(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A key beyond latin-1 (a typographic quote pasted with it) made the model
    "unreachable ('latin-1' codec can't encode...)", retried and never sent; one
    within latin-1 went as latin-1, which RouterLLM's own server (UTF-8) refused.
    Now the key goes as its UTF-8 bytes: a wrong one is the endpoint's 401."""
    var = "ROUTERLLM_TEST_OPENAI_HTTP_KEY"
    backend = http_backend(stub.base_url, api_key_env=var, max_retries=0)
    for key in ("clé", "sk-test-123’"):
        monkeypatch.setenv(var, key)
        assert backend.availability() is None
        assert backend.generate(GenerationRequest("hi")).text == "stub answer"
        sent = stub.posts[-1].headers["authorization"].encode("latin-1")  # the bytes that came
        assert sent == f"Bearer {key}".encode()
    stub.models_reply = error_reply(401, "Incorrect API key provided")
    assert f"refused the API key in {var} (HTTP 401)" in (backend.availability() or "")


def test_refused_api_key_is_reported_by_availability(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    var = "ROUTERLLM_TEST_OPENAI_HTTP_KEY"
    monkeypatch.setenv(var, "sk-wrong")
    stub.models_reply = error_reply(401, "Incorrect API key provided")
    reason = http_backend(stub.base_url, api_key_env=var).availability()
    assert reason is not None
    assert "refused the API key" in reason and "HTTP 401" in reason


def test_no_authorization_header_without_api_key_env(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    http_backend(stub.base_url).generate(GenerationRequest("hi"))
    [post] = stub.posts
    assert "authorization" not in post.headers


def test_the_proxy_the_environment_names_is_read_at_each_request_and_no_proxy_honoured(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """http_proxy (or HTTP_PROXY; https_proxy for an https:// base_url) set once the
    module was imported, as a notebook or a wrapper sets it, is used: until 2026-12-05
    the proxies were read once, at import, so it was not, though no_proxy was read at
    each request."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    behind = f"http://{HOST}:{free_port()}/v1"  # nothing listens there: only the proxy reaches it
    backend = http_backend(behind, max_retries=0)
    monkeypatch.setenv("http_proxy", stub.base_url.removesuffix("/v1"))
    assert backend.generate(GenerationRequest("hi")).text == "stub answer"
    assert stub.posts[-1].headers["host"] == behind.removeprefix("http://").removesuffix("/v1")
    monkeypatch.setenv("no_proxy", HOST)
    with pytest.raises(EndpointUnreachableError, match="Connection refused"):
        backend.generate(GenerationRequest("hi"))
    assert len(stub.posts) == 1


def test_base_url_trailing_slash_is_ignored(stub: Stub) -> None:
    http_backend(stub.base_url + "/").generate(GenerationRequest("hi"))
    [post] = stub.posts
    assert post.path == "/v1/chat/completions"


def test_a_hidden_state_of_the_prompt_is_refused_before_any_call() -> None:
    backend = http_backend("http://127.0.0.1:9/v1")  # nothing listens there
    with pytest.raises(BackendError, match="does not return the model's hidden state"):
        backend.generate(GenerationRequest("hi", prompt_state=True))


# -- a server that answers, but wrongly: one line, no retry, nothing lost ------------
@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, b"<html>\r\n<body>maintenance</body>\r\n</html>"), "its answer is not JSON"),
        (Reply(200, b"[" * 100_000 + b"]" * 100_000), "its answer is not JSON"),
        (Reply(200, b"\xff\xfe{}"), "its answer is not JSON"),
        (json_reply(200, {"choices": [{"message": {"content": 0}}]}), "unexpected response shape"),
        (json_reply(200, {"choices": [{"message": {"content": "x"}, "finish_reason": {"a": 1}}]}),
         "unexpected response shape"),
    ],
    ids=["html", "nested", "not-utf8", "numeric-content", "dict-finish-reason"],
)  # fmt: skip
def test_a_malformed_answer_is_one_line_and_not_asked_again(
    stub: Stub, reply: Reply, message: str
) -> None:
    stub.default_post = reply
    with pytest.raises(BackendError, match=message) as err:
        http_backend(stub.base_url, max_retries=2).generate(GenerationRequest("hi"))
    assert "\n" not in str(err.value) and len(stub.posts) == 1


@pytest.mark.parametrize(
    "count",
    [b"1e30", b"Infinity", b"true", b"5.7", b"-1", b'"5"'],
    ids=["huge", "infinite", "bool", "fractional", "negative", "text"],
)
def test_an_answer_whose_usage_count_is_no_count_is_kept_its_usage_unknown(
    stub: Stub, count: bytes
) -> None:
    """Until 2026-12-04 the answer was lost to its bookkeeping: a BackendError."""
    stub.default_post = Reply(
        200,
        b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 3, '
        b'"completion_tokens": ' + count + b"}}",
    )
    completion = http_backend(stub.base_url, max_retries=2).generate(GenerationRequest("hi"))
    assert (completion.text, completion.prompt_tokens, completion.completion_tokens) == ("x", 3, 0)
    assert not completion.usage_known and len(stub.posts) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307])
def test_a_redirect_is_not_followed_and_the_key_stays_home(
    stub: Stub, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 302 would turn the POST into a GET, and send the API key to the new host."""
    monkeypatch.setenv("STUB_KEY", "sekret")
    elsewhere = f"http://localhost:{stub.base_url.rsplit(':', 1)[1].split('/')[0]}/stolen"
    stub.default_post = Reply(status, b"", headers=(("Location", elsewhere),))
    backend = http_backend(stub.base_url, api_key_env="STUB_KEY")
    with pytest.raises(
        BackendError, match=f"HTTP {status}.*a redirect to {elsewhere}, not followed"
    ):
        backend.generate(GenerationRequest("hi"))
    assert len(stub.posts) == 1 and stub.requests("GET") == []


def test_a_redirect_to_another_base_url_says_to_set_it_and_makes_the_model_unavailable(
    stub: Stub,
) -> None:
    """http:// redirected to https:// (or to another host), the path kept: every request
    would be, so the probe says the model is unavailable and the error what to set."""
    moved = "https://api.example.org/v1"
    stub.models_reply = Reply(301, b"", headers=(("Location", f"{moved}/models"),))
    stub.default_post = Reply(308, b"", headers=(("Location", f"{moved}/chat/completions"),))
    backend = http_backend(stub.base_url)
    assert backend.availability() == (
        f"endpoint {stub.base_url} answers /models with a redirect (HTTP 301) to "
        f"{moved}/models, which is not followed: set base_url to {moved}"
    )
    with pytest.raises(BackendError) as err:
        backend.generate(GenerationRequest("hi"))
    assert str(err.value).endswith(
        f"a redirect to {moved}/chat/completions, not followed; set base_url to {moved}"
    )
    # a redirect elsewhere (a login page) says nothing to set, and a /models of its own
    # does not make the model unavailable: its chat path may be served
    stub.models_reply = Reply(302, b"", headers=(("Location", "/login"),))
    assert backend.availability() is None
    assert len(stub.posts) == 1


def test_an_error_page_is_quoted_on_one_line_and_a_cut_one_retried(stub: Stub) -> None:
    stub.default_post = Reply(
        502, b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n</html>"
    )
    with pytest.raises(BackendError, match="HTTP 502 .*<html> <head><title>502 Bad Gateway") as err:
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert "\n" not in str(err.value)
    stub.default_post = Reply(500, b'{"error": {"mess', content_length=526)
    with pytest.raises(BackendError, match="HTTP 500"):
        http_backend(stub.base_url, max_retries=1).generate(GenerationRequest("hi"))
    assert len(stub.posts) == 3  # the first call's one, and this one's two


def test_a_servers_control_characters_are_shown_escaped(stub: Stub) -> None:
    """A server's text quoted in an error (its message, its param, its status line) has
    its control characters shown as escapes: until 2026-12-04 a terminal escape sequence
    in an error page reached the user's terminal (cleared it, retitled it) and the log."""
    stub.default_post = error_reply(500, "\x1b[2J\x1b[31mupstream\x1b[0m \x07failed\x00 \u202eevil")
    with pytest.raises(BackendError) as err:
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert r"HTTP 500 for model 'remote': \x1b[2J\x1b[31mupstream\x1b[0m \x07failed\x00 \u202eevil" in str(err.value)  # fmt: skip
    stub.default_post = json_reply(400, {"error": {"message": "bad \x1b]0;title\x07", "param": "t\x1b"}})  # fmt: skip
    with pytest.raises(PromptError) as refused:
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert r"bad \x1b]0;title\x07" in str(refused.value) and refused.value.param == r"t\x1b"
    for error in (err.value, refused.value):
        assert not any(c < " " or c == "\x7f" or c == "\u202e" for c in str(error)), error


def test_a_transport_fault_says_what_happened(stub: Stub) -> None:
    """What went wrong, said plainly: until 2026-12-04 an answer that is not HTTP (a TLS
    server's bytes, garbage) was quoted raw, control characters and all, a timeout was
    "timed out" without its limit, and an answer cut short "IncompleteRead(...)"."""
    stub.default_post = Reply(0, b"", raw=b"\x16\x03\x01\x02\x00garbage, not HTTP\r\n\r\n")
    with pytest.raises(BackendError, match=r"model 'remote' after 1 attempt \(") as err:
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert r"not an HTTP answer (it began '\x16\x03\x01\x02\x00garbage, not HTTP" in str(err.value)
    assert not any(c < " " for c in str(err.value))
    body = completion_reply().body
    stub.default_post = Reply(200, body[:10], content_length=len(body))
    with pytest.raises(BackendError) as err:
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert f"(the connection closed mid-answer: 10 of {len(body)} bytes came)" in str(err.value)
    stub.default_post = Reply(200, body, delay_s=5.0)
    with pytest.raises(BackendError) as err:
        http_backend(stub.base_url, max_retries=0, timeout_s=0.3).generate(GenerationRequest("hi"))
    assert "(no answer within timeout_s, 0.3 s)" in str(err.value)


def test_a_connection_not_made_within_timeout_s_is_an_unreachable_endpoint() -> None:
    """A connect the endpoint never answers (its accept queue full: its SYNs dropped)
    ends at ``timeout_s``, said as no answer within it, the endpoint unreachable: the
    watch, which shuts the connecting socket at that limit, ends it as a timeout, not as
    the reset the shutdown makes of it."""
    listener = socket.create_server((HOST, 0), backlog=0)
    filler = socket.create_connection(listener.getsockname())  # the queue's one place
    start = time.monotonic()
    try:
        backend = http_backend(f"http://{HOST}:{listener.getsockname()[1]}/v1", max_retries=0, timeout_s=0.5)  # fmt: skip
        with pytest.raises(EndpointUnreachableError) as err:
            backend.generate(GenerationRequest("hi"))
    finally:
        filler.close()
        listener.close()
    assert "after 1 attempt (no answer within timeout_s, 0.5 s)" in str(err.value)
    assert time.monotonic() - start < 2.0


def test_retry_after_is_honoured_within_the_cap(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=openai_http.__name__)
    stub.script.extend([
        Reply(429, b"{}", headers=(("Retry-After", "0.3"),)),
        Reply(503, b"{}", headers=(("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),)),
    ])  # fmt: skip
    start = time.perf_counter()
    completion = http_backend(stub.base_url, max_retries=2).generate(GenerationRequest("hi"))
    assert completion.text == "stub answer" and time.perf_counter() - start >= 0.3
    assert [w.split("retrying in ")[1] for w in retry_warnings(caplog)] == ["0.3s", "0.0s"]


@pytest.mark.parametrize(
    ("status", "error"), [(429, RateLimitedError), (503, EndpointOverloadedError)]
)
def test_a_retry_after_longer_than_a_retry_waits_is_not_waited_out_in_vain(
    stub: Stub, status: int, error: type[RateLimitedError]
) -> None:
    """A hosted API's 429 (a quota) or 503 asking to wait an hour: until 2026-12-06 each
    retry waited 30 s (the cap) and was refused again, a request held 90 s by the default
    3 retries for nothing, and the error gave 30 s as the wait, so a client asked again
    30 s later, refused again. Now it fails at once, giving the endpoint's own wait."""
    stub.default_post = Reply(status, b'{"error": {"message": "quota"}}', headers=(("Retry-After", "3600"),))  # fmt: skip
    start = time.perf_counter()
    with pytest.raises(error, match=r"HTTP \d+ .*quota.*asks to wait 3600 s") as err:
        http_backend(stub.base_url, max_retries=3).generate(GenerationRequest("hi"))
    assert time.perf_counter() - start < 5 and len(stub.posts) == 1
    assert err.value.retry_after_s == 3600


def test_a_quota_spent_is_not_retried_nor_told_to_clients_as_a_rate_limit(
    stub: Stub, tmp_path: Path
) -> None:
    """OpenAI's 429 ``insufficient_quota`` (the account's credit or plan, no Retry-After):
    until 2026-12-06 it was asked again 3 times, then was a RateLimitedError, which the
    server answered 429 ``rate_limit_exceeded`` without ``x-should-retry: false``, so
    the openai client asked twice more, each again 4 times: 12 calls for a billing
    problem. Now it is not retried, a BackendError saying so (the server's 502)."""
    from .test_server import running

    stub.default_post = json_reply(429, OUT_OF_QUOTA)
    with pytest.raises(BackendError, match=r"HTTP 429 .*exceeded your current quota.*no retry mends") as err:  # fmt: skip
        http_backend(stub.base_url, max_retries=3).generate(GenerationRequest("hi"))
    assert not isinstance(err.value, RateLimitedError) and len(stub.posts) == 1

    data = tiny_config_dict(
        tmp_path, models=[http_model_dict("remote", stub.base_url)],
        carbon={"enabled": False}, router={"name": "smallest"},
    )  # fmt: skip
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    with RouterLLM(load_config(write_config(tmp_path, data))) as system, running(system) as base:  # fmt: skip
        ask = urllib.request.Request(base + "/v1/chat/completions", data=body.encode(), headers={"Content-Type": "application/json"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(ask, timeout=30)
        assert refused.value.code == 502 and refused.value.headers.get("x-should-retry") == "false"
        assert "exceeded your current quota" in json.loads(refused.value.read())["error"]["message"]
    assert len(stub.posts) == 2


def test_a_retry_after_date_is_the_wait_until_then(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    """Retry-After as an HTTP date (RFC 9110 allows it) is the wait until that date, as
    one in seconds is: until 2026-12-04 it was ignored, the retries came after the short
    backoff, and the RateLimitedError (the server's 429) gave no wait at all."""
    caplog.set_level(logging.WARNING, logger=openai_http.__name__)
    ahead = email.utils.formatdate(time.time() + 20, usegmt=True)
    stub.default_post = Reply(429, b'{"error": {"message": "slow down"}}', headers=(("Retry-After", ahead),))  # fmt: skip
    with pytest.raises(RateLimitedError) as err:
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert err.value.retry_after_s is not None and 15 < err.value.retry_after_s <= 20
    far = email.utils.formatdate(time.time() + 3600, usegmt=True)
    stub.default_post = Reply(503, b"{}", headers=(("Retry-After", far),))
    with pytest.raises(EndpointOverloadedError) as err:
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert err.value.retry_after_s is not None and 3590 < err.value.retry_after_s <= 3600
    stub.default_post = Reply(429, b"{}", headers=(("Retry-After", "1e400"),))  # endless
    with pytest.raises(RateLimitedError) as err:
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert err.value.retry_after_s == 86_400  # a day, the longest taken as said


def test_a_rate_limit_outlasting_the_retries_is_a_429_with_retry_after(
    stub: Stub, tmp_path: Path
) -> None:
    """An endpoint's 429, its retries spent, was the server's 502 backend_error: a
    client took the remote model for broken and did not back off. Now the server
    answers 429 with the endpoint's Retry-After (until 2026-12-06 capped at 30 s, as the
    retries' waits are: a client told 30 s of an hour's wait was refused again)."""
    from .test_server import running

    stub.default_post = Reply(429, b'{"error": {"message": "slow down"}}', headers=(("Retry-After", "0.2"),))  # fmt: skip
    with pytest.raises(RateLimitedError, match="HTTP 429 .*slow down") as err:
        http_backend(stub.base_url, max_retries=1).generate(GenerationRequest("hi"))
    assert err.value.retry_after_s == 0.2 and len(stub.posts) == 2
    stub.default_post = Reply(429, b"{}", headers=(("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),))  # fmt: skip
    with pytest.raises(RateLimitedError) as err:
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert err.value.retry_after_s == 0.0  # a date gone by: ask again now
    stub.default_post = completion_reply()

    data = tiny_config_dict(
        tmp_path, models=[http_model_dict("remote", stub.base_url, max_retries=0)],
        carbon={"enabled": False}, router={"name": "smallest"},
    )  # fmt: skip
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    with RouterLLM(load_config(write_config(tmp_path, data))) as system, running(system) as base:  # fmt: skip
        for retry_after, sent in (("7", "7"), ("3600", "3600"), (None, None)):
            stub.script.append(
                Reply(
                    429,
                    b'{"error": {"message": "slow down"}}',
                    headers=(("Retry-After", retry_after),) if retry_after else (),
                )  # fmt: skip
            )
            ask = urllib.request.Request(base + "/v1/chat/completions", data=body.encode(), headers={"Content-Type": "application/json"})  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(ask, timeout=30)
            error = json.loads(refused.value.read())["error"]
            assert refused.value.code == 429 and error["code"] == "rate_limit_exceeded"
            assert "slow down" in error["message"]
            assert refused.value.headers.get("Retry-After") == sent
            # an hour is more than an openai client waits out: told not to retry at once
            should_retry = refused.value.headers.get("x-should-retry")
            assert should_retry == ("false" if retry_after == "3600" else None)
        with urllib.request.urlopen(ask, timeout=30) as answer:  # the limit lifted
            assert json.loads(answer.read())["choices"][0]["message"]["content"] == "stub answer"


def test_an_overload_outlasting_the_retries_is_a_503_with_retry_after(
    stub: Stub, tmp_path: Path
) -> None:
    """An endpoint's 503 (overloaded), its retries spent, was the server's 502
    backend_error without the endpoint's Retry-After: a client took the remote model
    for broken. Now the backend raises EndpointOverloadedError (a RateLimitedError:
    the caller may ask again later) and the server answers 503 with the Retry-After."""
    from .test_server import call, running

    overloaded = b'{"error": {"message": "overloaded"}}'
    stub.default_post = Reply(503, overloaded, headers=(("Retry-After", "0.2"),))
    with pytest.raises(EndpointOverloadedError, match="HTTP 503 .*overloaded") as err:
        http_backend(stub.base_url, max_retries=1).generate(GenerationRequest("hi"))
    assert isinstance(err.value, RateLimitedError) and err.value.retry_after_s == 0.2
    assert len(stub.posts) == 2
    stub.default_post = error_reply(500, "GPU on fire")  # other 5xx: still a failing backend
    with pytest.raises(BackendError) as failed:
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert not isinstance(failed.value, RateLimitedError)

    data = tiny_config_dict(
        tmp_path, models=[http_model_dict("remote", stub.base_url, max_retries=0)],
        carbon={"enabled": False}, router={"name": "smallest"},
    )  # fmt: skip
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    with RouterLLM(load_config(write_config(tmp_path, data))) as system, running(system) as base:  # fmt: skip
        stub.default_post = Reply(503, overloaded, headers=(("Retry-After", "7"),))
        ask = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(ask, timeout=30)
        error = json.loads(refused.value.read())["error"]
        assert refused.value.code == 503 and error["code"] == "backend_overloaded"
        assert "overloaded" in error["message"]
        assert refused.value.headers.get("Retry-After") == "7"
        stub.default_post = error_reply(500, "GPU on fire")
        status, text = call(base, "/v1/chat/completions", body)
        assert status == 502 and json.loads(text)["error"]["code"] == "backend_error"


def test_the_time_limit_covers_the_whole_answer(stub: Stub) -> None:
    """A body trickling in a byte at a time never trips a per-read timeout."""
    stub.default_post = Reply(200, completion_reply().body, trickle_s=0.05)
    start = time.perf_counter()
    with pytest.raises(BackendError, match="no whole answer within 0.5 s"):
        http_backend(stub.base_url, max_retries=0, timeout_s=0.5).generate(GenerationRequest("hi"))
    assert time.perf_counter() - start < 1.5


def test_the_time_limit_covers_an_error_answer_too(stub: Stub) -> None:
    """A 401 whose page trickled in held the request (and the server's turn) until the
    whole page came, whatever timeout_s said; now what came by the limit is quoted."""
    page = b'{"error": {"message": "Incorrect API key provided' + b"." * 400 + b'"}}'
    stub.default_post = Reply(401, page, trickle_s=0.02)  # 9 s for the whole page
    start = time.perf_counter()
    # a limit of 2 s, not 0.5: the 26 bytes asked for take 0.5 s to trickle in, and a
    # loaded machine sent as few as 4 by a 0.5 s limit (1 run in 8 failed)
    with pytest.raises(BackendError, match='HTTP 401 .*"error": {"message": "Inc'):
        http_backend(stub.base_url, max_retries=0, timeout_s=2.0).generate(GenerationRequest("hi"))
    assert time.perf_counter() - start < 5.0  # cut at the limit, long before the 9 s
    stub.default_post = Reply(401, b"x" * (40 * 2**20))  # a huge one: not read to its end
    with pytest.raises(BackendError, match="HTTP 401 .*xxx"):
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))


@pytest.mark.parametrize(
    ("raw", "error", "said"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 400, BackendError, "(no whole answer within 0.5 s)"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 20, EndpointUnreachableError, "(no answer within timeout_s, 0.5 s)"),
    ],
    ids=["headers-trickling", "endless-100-continue"],
)  # fmt: skip
def test_the_time_limit_covers_the_status_line_and_headers_too(
    stub: Stub, raw: bytes, error: type[BackendError], said: str
) -> None:
    """A server (or a proxy) that trickles its headers, or sends "100 Continue" after
    "100 Continue", a byte within each socket wait, held the request, and a probe of
    the endpoint, as long as it went on: until 2026-12-05 timeout_s did not limit them.
    Headers begun are an answer begun; no status line but 1xx is no answer."""
    stub.default_post = stub.models_reply = Reply(0, b"", raw=raw, trickle_s=0.02)
    backend = http_backend(stub.base_url, max_retries=0, timeout_s=0.5)
    start = time.perf_counter()
    with pytest.raises(error) as err:
        backend.generate(GenerationRequest("hi"))
    assert said in str(err.value)
    assert error is EndpointUnreachableError or not isinstance(err.value, EndpointUnreachableError)
    assert time.perf_counter() - start < 1.5
    backend.probe_timeout_s = 0.5
    start = time.perf_counter()
    assert f"endpoint {stub.base_url} unreachable (" in str(backend.availability())
    assert time.perf_counter() - start < 1.5


def test_the_time_limit_cuts_a_compressed_body_without_a_length_as_a_timeout(
    stub: Stub,
) -> None:
    """A gzip body the server ends by closing (no Content-Length, not chunked), cut by
    the time limit part-way, is a timeout, not "its answer's gzip data ends before its
    end", a broken answer never asked again."""
    body = gzip.compress(json.dumps({"choices": [{"text": os.urandom(600).hex()}]}).encode())
    raw = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + body
    stub.default_post = Reply(0, b"", raw=raw, trickle_s=0.005)
    backend = http_backend(stub.base_url, max_retries=0, timeout_s=1.0)
    start = time.perf_counter()
    with pytest.raises(BackendError, match=r"\(no whole answer within 1 s\)"):
        backend.generate(GenerationRequest("hi"))
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    ("silence", "retries", "said"),
    [
        (
            Reply(200, completion_reply().body, delay_s=5.0),
            1,
            "after 2 attempts (no answer within timeout_s, 0.3 s)",
        ),  # fmt: skip
        (Reply(0, b"", raw=b""), 0, "closed connection without response"),
    ],
    ids=["never-answers", "hangs-up"],
)
def test_an_endpoint_that_gives_no_answer_is_routed_around_until_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, silence: Reply, retries: int, said: str
) -> None:
    """An endpoint that takes the connection and then sends nothing (a wedged server, a
    dead upstream behind its proxy), or closes it (a crashed server behind its proxy),
    its retries spent, is unavailable for a minute as a refused one is: until
    2026-12-05 it stayed routed to, so that every request routed there failed."""
    from routerllm import manager as manager_module

    clock = [1000.0]
    monkeypatch.setattr(manager_module, "_clock", lambda: clock[0])
    with serving_stub() as stub:
        remote = http_model_dict("remote", stub.base_url, max_retries=retries, timeout_s=0.3)
        models = [tiny_model("tiny-light", "light", 0.1), remote]
        config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        with RouterLLM(config) as system:
            stub.default_post = silence
            with pytest.raises(EndpointUnreachableError) as err:
                system.generate(HEAVY)
            assert said in str(err.value) and stub.base_url in str(err.value)
            assert len(stub.posts) == retries + 1
            result = system.generate(HEAVY)
            assert (result.model, result.reason.endswith("remote unavailable")) == ("tiny-light", True)  # fmt: skip
            assert len(stub.posts) == retries + 1
            stub.default_post = completion_reply()
            clock[0] += manager_module.RECHECK_S
            assert system.generate(HEAVY).model == "remote"


def test_an_answer_cut_short_or_trickling_is_no_unreachable_endpoint(stub: Stub) -> None:
    """Only an endpoint that sent nothing is unreachable: one whose answer began is up."""
    stub.default_post = Reply(200, completion_reply().body, trickle_s=0.05)
    with pytest.raises(BackendError) as err:
        http_backend(stub.base_url, max_retries=0, timeout_s=0.3).generate(GenerationRequest("hi"))
    assert not isinstance(err.value, EndpointUnreachableError)


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (Reply(0, b"", raw=b""), "Remote end closed connection without response"),
        (Reply(0, b"", raw=b"", reset=True), "Connection reset by peer"),
        (Reply(0, b"", raw=b"HTTP/1.1 20"), "not an HTTP answer (it began 'HTTP/1.1 20')"),
        (Reply(0, b"", raw=b"\x16\x03\x01\x02\x00garbage\r\n\r\n"), r"not an HTTP answer (it began '\x16"),
    ],
    ids=["closed", "reset", "half-a-status-line", "not-http"],
)  # fmt: skip
def test_an_endpoint_that_hangs_up_without_answering_is_unreachable(
    stub: Stub, reply: Reply, said: str
) -> None:
    """Nothing that is an HTTP answer came (the connection closed or reset before a whole
    status line, or what came is no HTTP): no answer began, as with a server that sends
    nothing, so the endpoint is unreachable. Until 2026-12-05 it was a failed answer and
    the endpoint stayed routed to, every request there failing."""
    stub.default_post = reply
    with pytest.raises(EndpointUnreachableError) as err:
        http_backend(stub.base_url, max_retries=1).generate(GenerationRequest("hi"))
    assert f"cannot reach {stub.base_url} for model 'remote' after 2 attempts (" in str(err.value)
    assert said in str(err.value) and len(stub.posts) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, completion_reply().body[:10], content_length=200),
        Reply(0, b"", raw=b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n{\"choices\"", reset=True),
        Reply(0, b"", raw=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"choic\r\n"),
    ],
    ids=["cut-mid-body", "reset-mid-body", "cut-mid-chunked-stream"],
)  # fmt: skip
def test_an_answer_that_began_and_was_cut_is_a_failed_answer_of_a_reachable_endpoint(
    stub: Stub, reply: Reply
) -> None:
    """Once the status line came, the endpoint is up: an answer cut mid-body (a proxy's
    limit on one long answer, the server killed mid-generation) is retried, then a
    BackendError, and the endpoint stays routed to, as an HTTP error's is."""
    stub.default_post = reply
    with pytest.raises(BackendError) as err:
        http_backend(stub.base_url, max_retries=1).generate(GenerationRequest("hi"))
    assert not isinstance(err.value, EndpointUnreachableError)
    assert "after 2 attempts" in str(err.value) and len(stub.posts) == 2


def test_an_api_key_the_server_echoes_is_never_shown(
    stub: Stub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxy's error page may quote the key it refused ("invalid token sk-..."): the
    server's text is quoted in errors and logs, and until 2026-12-05 the key with it."""
    caplog.set_level(logging.WARNING, logger=openai_http.__name__)
    key = "sk-proj-Zq81cV2xR7"
    monkeypatch.setenv("STUB_KEY", key)
    backend = http_backend(stub.base_url, max_retries=1, api_key_env="STUB_KEY")
    echoes = [
        error_reply(401, f"invalid token {key} for Bearer {key}"),
        error_reply(400, f"bad seed for key {key}"),
        Reply(0, b"", raw=f"garbage {key}\r\n\r\n".encode()),
        json_reply(200, {"id": key, "choices": []}),
        json_reply(200, {"choices": [{"message": {"content": "x"}, "finish_reason": "error",
                                      "error": {"message": f"upstream refused {key}"}}]}),
        json_reply(200, {"choices": [{"message": {"content": "x"}}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": key}}),
    ]  # fmt: skip
    shown = []
    for echo in echoes:
        stub.script.extend([echo, echo])
        try:
            backend.generate(GenerationRequest("hi"))
        except RouterLLMError as e:
            shown.append(str(e))
        stub.script.clear()
    shown += [r.getMessage() for r in caplog.records]
    assert len(shown) >= len(echoes) and all(key not in text for text in shown), shown
    assert any("invalid token <API key> for Bearer <API key>" in text for text in shown)


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (Reply(200, b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\ndata: {"error": '
               b'{"message": "overloaded"}}\n\n', headers=(("Content-Type", "text/event-stream"),),
               trickle_s=0.001),
         "sent as text/event-stream"),
        (Reply(200, gzip.compress(b"<html>a proxy page</html>"), headers=(("Content-Encoding", "gzip"),)),
         "sent as application/json, gzip: Expecting value"),
    ],
    ids=["event-stream", "gzip"],
)  # fmt: skip
def test_an_answer_not_json_says_what_was_sent_instead(stub: Stub, reply: Reply, said: str) -> None:
    """A stream nobody asked for (a proxy that streams every answer, its events split at
    any byte) or a compressed answer: until 2026-12-05 only the JSON parser's complaint
    ("Expecting value: line 1 column 1") said what came."""
    stub.default_post = reply
    with pytest.raises(BackendError, match="its answer is not JSON") as err:
        http_backend(stub.base_url, max_retries=2).generate(GenerationRequest("hi"))
    assert said in str(err.value) and "model 'remote'" in str(err.value)
    assert len(stub.posts) == 1


def _deflated(data: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(wbits=wbits)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("coding", "body", "chunked"),
    [
        ("gzip", gzip.compress(completion_reply("squeezed").body), False),
        ("x-gzip", gzip.compress(completion_reply("squeezed").body), False),
        ("deflate", _deflated(completion_reply("squeezed").body, zlib.MAX_WBITS), False),
        ("deflate", _deflated(completion_reply("squeezed").body, -zlib.MAX_WBITS), False),
        ("GZIP", gzip.compress(completion_reply("squeezed").body), True),
        ("deflate", _deflated(completion_reply("squeezed").body, zlib.MAX_WBITS), True),
        ("identity", completion_reply("squeezed").body, False),
    ],
    ids=["gzip", "x-gzip", "deflate", "raw-deflate", "gzip-chunked", "deflate-chunked", "identity"],
)
def test_a_compressed_answer_is_decoded(
    stub: Stub, coding: str, body: bytes, chunked: bool
) -> None:
    """A proxy may compress every answer, asked or not (RouterLLM asks for none: its
    ``Accept-Encoding`` is ``identity``): gzip and deflate (zlib's, or raw as some servers
    send it) are decoded, a whole answer's and a chunked one's as it comes. Until
    2026-12-05 such an answer was "not JSON"."""
    stub.default_post = Reply(200, body, headers=(("Content-Encoding", coding),), chunked=chunked)
    completion = http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert (completion.text, completion.completion_tokens) == ("squeezed", 2)
    assert stub.posts[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_a_deflated_answer_in_one_byte_chunks_is_decoded(stub: Stub, wbits: int) -> None:
    """Deflate's kind (zlib's or raw) is told by the body's first two bytes, which may come
    in two chunks: until 2026-12-05 a zlib-format answer whose first chunk was one byte was
    taken for raw deflate and refused as "not valid deflate"."""
    body = _deflated(completion_reply("squeezed").body, wbits)
    headers = (("Content-Encoding", "deflate"),)
    stub.default_post = Reply(200, body, headers=headers, chunked=True, chunk_bytes=1)
    completion = http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    assert (completion.text, completion.completion_tokens) == ("squeezed", 2)


def test_a_compressed_answer_over_the_cap_decoded_is_refused_unread(stub: Stub) -> None:
    """The 32 MiB cap is on the answer decoded: a gzip bomb (40 KiB that inflate to 40 MiB)
    is refused once 32 MiB came out, not inflated whole in memory, and not asked again."""
    bomb = gzip.compress(b" " * (40 * 2**20), compresslevel=9)
    assert len(bomb) < 2**20
    for chunked in (False, True):
        stub.default_post = Reply(
            200, bomb, headers=(("Content-Encoding", "gzip"),), chunked=chunked
        )
        with pytest.raises(BackendError) as err:
            http_backend(stub.base_url, max_retries=2).generate(GenerationRequest("hi"))
        assert "its answer is over 32 MiB decoded (gzip)" in str(err.value)
    assert len(stub.posts) == 2


@pytest.mark.parametrize(
    ("coding", "said"),
    [
        ("br", "its answer is compressed as 'br' (Content-Encoding), which is not decoded "
               "here (only gzip and deflate are): have the server or proxy send it as gzip or uncompressed"),
        ("zstd", "compressed as 'zstd' (Content-Encoding)"),
        ("gzip, br", "compressed as 'gzip, br' (Content-Encoding)"),
        ("gzip", "its answer is not valid gzip (Error -3"),
        ("deflate", "its answer is not valid deflate (Error -3"),
    ],
    ids=["br", "zstd", "two-codings", "not-gzip", "not-deflate"],
)  # fmt: skip
def test_an_answer_in_a_coding_not_decoded_is_refused_by_name(
    stub: Stub, coding: str, said: str
) -> None:
    stub.default_post = Reply(200, b"\xff\xfe not what it says it is" * 10, headers=(("Content-Encoding", coding),))  # fmt: skip
    with pytest.raises(BackendError) as err:
        http_backend(stub.base_url, max_retries=2).generate(GenerationRequest("hi"))
    assert said in str(err.value) and "model 'remote'" in str(err.value)
    assert "\n" not in str(err.value) and len(stub.posts) == 1


def test_a_compressed_gzip_answer_cut_short_is_a_failed_answer(stub: Stub) -> None:
    """A gzip stream that ends before its end (the proxy's body whole, its content not)."""
    squeezed = gzip.compress(completion_reply().body)
    stub.default_post = Reply(200, squeezed[:20], headers=(("Content-Encoding", "gzip"),))
    with pytest.raises(BackendError, match="its answer's gzip data ends before its end"):
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))


def test_a_compressed_error_page_is_quoted_decoded(stub: Stub) -> None:
    page = gzip.compress(b'{"error": {"message": "upstream timed out"}}')
    stub.default_post = Reply(500, page, headers=(("Content-Encoding", "gzip"),))
    with pytest.raises(BackendError, match="HTTP 500 for model 'remote': upstream timed out"):
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    sent_as_200 = b'{"error": {"message": "provider down", "code": 502}}'
    stub.default_post = Reply(200, gzip.compress(sent_as_200), headers=(("Content-Encoding", "gzip"),))  # fmt: skip
    with pytest.raises(BackendError, match="HTTP 502 for model 'remote': provider down"):
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))
    stub.default_post = Reply(502, b"\x00\x01", headers=(("Content-Encoding", "br"),))
    with pytest.raises(BackendError, match=r"HTTP 502 for model 'remote': an error page compressed as 'br', not decoded"):  # fmt: skip
        http_backend(stub.base_url, max_retries=0).generate(GenerationRequest("hi"))


# ---------------------------------------------------------------------------
# A user's mistakes pointing a model at an endpoint: one line that says what to do
# ---------------------------------------------------------------------------


def test_a_base_url_without_v1_is_said_so_where_the_path_is_not_found(stub: Stub) -> None:
    root = stub.base_url.removesuffix("/v1")
    backend = http_backend(root)
    with pytest.raises(BackendError) as err:
        backend.generate(GenerationRequest("hi"))
    assert str(err.value) == (
        f"{root}/chat/completions answered HTTP 404 for model 'remote': no route POST "
        f"/chat/completions; the path is not found there: does base_url need /v1 ({root}/v1)?"
    )
    assert len(stub.posts) == 1  # not asked again
    assert backend.availability() == (
        f"endpoint {root} answers 404 for /models, but {root}/v1/models is found: "
        f"set base_url to {root}/v1"
    )


def test_a_path_not_found_under_a_versioned_base_url_says_to_check_it(stub: Stub) -> None:
    # /v1 is there: another path is wrong (a hosted API's /openai/v1, say)
    backend = http_backend(stub.base_url + "/v1")
    with pytest.raises(BackendError, match=r"the path is not found there: check base_url$"):
        backend.generate(GenerationRequest("hi"))
    assert backend.availability() is None  # the server answers; not all serve /models


MODEL_NOT_FOUND = {
    "vllm": {
        "error": {
            "message": "The model `x` does not exist.",
            "type": "NotFoundError",
            "param": None,
            "code": 404,
        }
    },  # fmt: skip
    "ollama": {"error": 'model "x" not found, try pulling it first'},
    "openai": {
        "error": {
            "message": "The model `x` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    },  # fmt: skip
}


@pytest.mark.parametrize("server", sorted(MODEL_NOT_FOUND))
def test_a_model_the_endpoint_does_not_serve_is_said_in_its_own_words(
    stub: Stub, server: str
) -> None:
    payload = MODEL_NOT_FOUND[server]
    stub.script.append(json_reply(404, payload))
    with pytest.raises(BackendError) as err:
        http_backend(stub.base_url).generate(GenerationRequest("hi"))
    said = payload["error"] if server == "ollama" else payload["error"]["message"]  # type: ignore[index]
    # no hint about the path: the path was found, the model was not
    assert str(err.value).endswith(f"answered HTTP 404 for model 'remote': {said}")
    assert len(stub.posts) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_request_without_an_api_key_says_to_set_api_key_env(
    stub: Stub, status: int
) -> None:
    stub.script.append(error_reply(status, "Incorrect API key provided"))
    stub.models_reply = error_reply(status, "Incorrect API key provided")
    backend = http_backend(stub.base_url)
    with pytest.raises(BackendError) as err:
        backend.generate(GenerationRequest("hi"))
    assert str(err.value).endswith(
        f"answered HTTP {status} for model 'remote': Incorrect API key provided; no API key "
        f"was sent: set api_key_env to the environment variable that holds it"
    )
    assert len(stub.posts) == 1
    assert backend.availability() == (
        f"endpoint {stub.base_url} asks for an API key (HTTP {status}), and none is sent: "
        f"set api_key_env to the environment variable that holds it"
    )


def test_a_refused_api_key_names_its_variable(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    var = "ROUTERLLM_TEST_OPENAI_HTTP_KEY"
    monkeypatch.setenv(var, "sk-wrong")
    stub.script.append(error_reply(401, "Incorrect API key provided: sk-wrong"))
    stub.models_reply = error_reply(401, "Incorrect API key provided")
    backend = http_backend(stub.base_url, api_key_env=var)
    with pytest.raises(BackendError) as err:
        backend.generate(GenerationRequest("hi"))
    assert str(err.value).endswith(
        f"Incorrect API key provided: <API key>; check the API key in {var}"
    )
    assert backend.availability() == (
        f"endpoint {stub.base_url} refused the API key in {var} (HTTP 401)"
    )


def test_https_to_a_plain_http_server_is_said_so_and_not_retried(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=openai_http.__name__)
    url = stub.base_url.replace("http://", "https://")
    backend = http_backend(url)
    with pytest.raises(EndpointUnreachableError) as err:
        backend.generate(GenerationRequest("hi"))
    assert "after 1 attempt (" in str(err.value)
    assert str(err.value).endswith("; is the server plain HTTP? then base_url starts with http://)")
    assert retry_warnings(caplog) == []
    reason = backend.availability()
    assert reason is not None and reason.endswith("base_url starts with http://)")


@contextlib.contextmanager
def serving_tls_stub(tmp_path: Path, host: str = "IP:127.0.0.1") -> Iterator[tuple[Stub, Path]]:
    """A stub served over TLS with a self-signed certificate for ``host`` (made by the
    openssl command, as a vLLM box behind its own certificate has one), and that
    certificate's file."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", f"subjectAltName={host}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving_stub(tls=context) as state:
        yield state, cert


def test_a_certificate_not_trusted_is_said_so_with_what_to_do_and_not_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A self-signed certificate (a team's own vLLM box): until 2026-12-06 asked 4 times,
    then `... ([SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed
    certificate (_ssl.c:1000))`, with nothing said of what to do."""
    caplog.set_level(logging.WARNING, logger=openai_http.__name__)
    with serving_tls_stub(tmp_path) as (stub, cert):
        url = stub.base_url.replace("http://", "https://")
        backend = http_backend(url)
        with pytest.raises(EndpointUnreachableError) as err:
            backend.generate(GenerationRequest("hi"))
        assert "after 1 attempt (" in str(err.value) and retry_warnings(caplog) == []
        assert str(err.value).endswith(
            "; the server's TLS certificate is not trusted here: put the certificate of "
            "the authority that signed it (or its own, self-signed) in a file that "
            "SSL_CERT_FILE names)"
        )
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # as said: then it answers
        assert backend.generate(GenerationRequest("hi")).text == "stub answer"
    with serving_tls_stub(tmp_path, host="DNS:localhost") as (stub, cert):
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted, but not 127.0.0.1's
        with pytest.raises(EndpointUnreachableError) as err:
            http_backend(stub.base_url.replace("http://", "https://")).generate(GenerationRequest("hi"))  # fmt: skip
        assert "after 1 attempt (" in str(err.value) and retry_warnings(caplog) == []
        assert str(err.value).endswith(
            "; the server's TLS certificate is for another host: give base_url the host name "
            "it is for)"
        )
        assert http_backend(stub.base_url.replace("http://127.0.0.1", "https://localhost")).generate(GenerationRequest("hi")).text == "stub answer"  # fmt: skip


def test_a_host_name_not_found_is_said_so_and_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=openai_http.__name__)
    backend = http_backend("http://no-such-host.invalid:8000/v1")  # .invalid never resolves
    with pytest.raises(EndpointUnreachableError) as err:
        backend.generate(GenerationRequest("hi"))
    assert "after 1 attempt (" in str(err.value)
    assert str(err.value).endswith("; host name not found: check base_url's host)")
    assert retry_warnings(caplog) == []
    reason = backend.availability()
    assert reason is not None and reason.endswith("check base_url's host)")


def test_availability_says_the_probes_own_time_limit(stub: Stub) -> None:
    stub.models_reply = Reply(200, b"{}", delay_s=30.0)
    backend = http_backend(stub.base_url, timeout_s=60.0)
    backend.probe_timeout_s = 0.3
    start = time.monotonic()
    reason = backend.availability()
    assert time.monotonic() - start < 2.0
    assert reason == f"endpoint {stub.base_url} unreachable (no answer within 0.3 s)"


def test_an_answer_kept_after_a_failed_escalation_is_not_served_from_the_cache(
    stub: Stub, tmp_path: Path
) -> None:
    # the endpoint failed, and stays available: the same request, asked again, is escalated
    # again, not given the answer the cascade could only keep
    stub.default_post = error_reply(500, "GPU on fire")
    models = [tiny_model("tiny-light", "light", 0.1), http_model_dict("remote", stub.base_url, max_retries=0)]  # fmt: skip
    data = tiny_config_dict(
        tmp_path,
        models=models,
        cascade={"enabled": True},
        carbon={"enabled": False},
        cache={"enabled": True},  # fmt: skip
    )
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        first = system.generate(STUB_ASKED, model="tiny-light")
        assert "escalated to remote, which failed" in first.reason
        stub.default_post = completion_reply("def add(a, b):\n    return a + b")  # back
        again = system.generate(STUB_ASKED, model="tiny-light")
    assert not again.cached_from and again.model == "remote", again.reason
