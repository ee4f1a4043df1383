"""The OpenAI-compatible server (``routerllm serve``): a real uvicorn server on
127.0.0.1 around a real ``RouterLLM`` on the tiny GGUF, called over real HTTP, by
urllib and by RouterLLM's own OpenAI-compatible backend (the server is a drop-in
OpenAI endpoint); the CLI command as a subprocess, stopped by Ctrl-C and SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import logging
import math
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.backends.interrupts import CANCELLED, Cancellation
from routerllm.backends.openai_http import OpenAIHTTPBackend
from routerllm.carbon.meter import CACHED
from routerllm.cli_args import MAX_NEW_TOKENS_RANGE
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import BudgetExceededError, PromptError, RequestLogError, RouterLLMError
from routerllm.server import app as server_app
from routerllm.server import bodies, protocol
from routerllm.server.serving import listen, server
from routerllm.system import RouterLLM

from .conftest import (
    GEMMA_TEMPLATE,
    benchmark_in_process,
    cli_in_process,
    corrupt_gguf,
    gguf_with_chat_template,
    tiny_config_dict,
    tiny_model,
    write_config,
)
from .test_openai_http import Reply, Stub, completion_reply, http_model_dict, serving_stub
from .test_openai_stream import DONE, delta, usage

HEADERS = {"Content-Type": "application/json"}
CHAT = "/v1/chat/completions"


def started(system: RouterLLM, api_key: str | None = None, max_waiting: int | None = None, sock: socket.socket | None = None) -> tuple[str, Any, threading.Thread]:  # fmt: skip
    """``system`` served on ``sock`` (by default a free port of 127.0.0.1) by a uvicorn
    server in a thread: the base URL, the server and its thread."""
    sock = sock or listen("127.0.0.1", 0)
    srv = server(system, api_key, max_waiting=max_waiting)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", srv, thread


@contextmanager
def running(system: RouterLLM, api_key: str | None = None) -> Iterator[str]:
    """``system`` served while the block runs; yields the server's base URL."""
    base, srv, thread = started(system, api_key)
    try:
        yield base
    finally:
        srv.should_exit = True
        thread.join(30)


def call(
    base: str,
    path: str,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, str]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, headers={**HEADERS, **(headers or {})}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def half_sent(base: str, start: bytes, length: int, expect: bool = False) -> socket.socket:
    """A connection that has sent a request's headers and the first bytes of its body
    (with ``expect``, none: it waits for the server's 100 Continue)."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = f"POST {CHAT} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    head += "Expect: 100-continue\r\n" if expect else ""
    sock.sendall(f"{head}Content-Length: {length}\r\n\r\n".encode() + start)
    return sock


def answer_on(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the answer read from ``sock`` until the server
    closes the connection (which it must, having left body bytes unread)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"\r\nconnection: close" in head.lower(), head
    return int(head.split()[1]), json.loads(body)


def held_until_told(seconds: float) -> bool:
    """Hold the generation of this thread (from a model's sampler) until the server tells
    its request to stop, at most ``seconds``: whether it was told."""
    told, deadline = Cancellation(), time.monotonic() + seconds
    while not told() and time.monotonic() < deadline:
        time.sleep(0.01)
    return told()


def asking(*messages: Any, **fields: Any) -> dict[str, Any]:
    """A chat body: ``messages`` as (role, content) pairs, by default one user's "x"."""
    turns = [{"role": r, "content": c} for r, c in messages or [("user", "x")]]
    return {"messages": turns, **fields}


def chat(base: str, content: str = "What is a Python list?", **fields: Any) -> dict[str, Any]:
    status, text = call(base, CHAT, asking(("user", content), model="auto", **fields))
    assert status == 200, text
    return dict(json.loads(text))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RouterLLM]]:
    tmp = tmp_path_factory.mktemp("served")
    config = load_config(write_config(tmp, tiny_config_dict(tmp)))
    with RouterLLM(config) as system, running(system) as base:
        yield base, system


# -- the API ------------------------------------------------------------------
def test_a_fault_writing_an_answer_is_an_openai_error_object(
    served: tuple[str, RouterLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug past generation, or in the models list, was a plain-text 500 that no
    OpenAI client reads as an error object."""
    from routerllm.server import protocol

    base, _ = served

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(protocol, "answer", broken)
    monkeypatch.setattr(protocol, "model_list", broken)
    for path, body in ((CHAT, asking()), ("/v1/models", None)):
        status, text = call(base, path, body)
        error = json.loads(text)["error"]
        assert status == 500 and error["type"] == "server_error", text
        assert "internal error (ValueError: a bug)" in error["message"]


def test_models_lists_auto_and_each_model_that_runs(served: tuple[str, RouterLLM]) -> None:
    base, _ = served
    status, text = call(base, "/v1/models")
    assert status == 200
    names = [m["id"] for m in json.loads(text)["data"]]
    assert names == ["auto", "tiny-light", "tiny-medium", "tiny-heavy"]
    assert call(base, "/v1/models/tiny-heavy")[0] == 200
    status, text = call(base, "/v1/models/gpt-4")
    assert status == 404 and "valid names: auto, tiny-heavy" in text
    status, text = call(base, "/v1/models/org/gpt-4")  # a hosted model's name may hold "/"
    assert status == 404 and "'org/gpt-4'" in text and "valid names: auto" in text


def test_a_routed_answer_is_measured_and_logged(served: tuple[str, RouterLLM]) -> None:
    base, system = served
    answer = chat(base, "Write a Python function that reverses a list.")
    facts = answer["routerllm"]
    assert answer["object"] == "chat.completion"
    assert answer["model"] == facts["model"] in ("tiny-light", "tiny-medium", "tiny-heavy")
    assert facts["router"] == "rules" and facts["reason"]
    message = answer["choices"][0]["message"]
    assert message["role"] == "assistant" and message["content"]
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert facts["energy_kwh"] > 0 and facts["co2_kg"] > 0
    assert set(facts["components"]) == {"router_inference", "model_loading", "llm_inference"}
    logged = {r.id: r for r in system.log.records(tag="server")}
    assert answer["id"] == f"chatcmpl-{facts['request_id']}"
    assert logged[facts["request_id"]].model == answer["model"]


def test_the_routers_confidence_is_the_stated_number(served: tuple[str, RouterLLM]) -> None:
    """The rules router states 0.9 for this prompt; the answer said 0.8999999999999999."""
    base, _ = served
    status, text = call(base, CHAT, asking(("user", "What is a Python list?"), model="auto"))
    assert status == 200, text
    assert json.loads(text)["routerllm"]["confidence"] == 0.9
    assert '"confidence":0.9,' in text


def test_a_conversation_of_many_tiny_turns_is_refused_before_a_model_reads_it(
    served: tuple[str, RouterLLM],
) -> None:
    # 104,001 empty turns (3.1 MB, under the body cap) held a worker for 25 s as each model
    # tokenized them, minutes to hours through a chat template (llama.cpp reads each
    # turn's markers as special tokens, in time quadratic in their number)
    base, _ = served
    turns = [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}] * 52_000
    body = {"model": "auto", "messages": [*turns, {"role": "user", "content": "hi"}]}
    start = time.perf_counter()
    status, text = call(base, CHAT, raw=json.dumps(body, separators=(",", ":")).encode())
    took = time.perf_counter() - start
    assert status == 400 and took < 2.5, (status, took, text[:200])
    assert "messages holds 104,001 messages: give at most 2,048" in text
    assert chat(base, "hi", max_tokens=2)["choices"]


def test_a_conversation_of_2048_messages_is_read_one_more_is_refused() -> None:
    turns = [("user", "a"), ("assistant", "b")] * 1023 + [("system", "s"), ("user", "hi")]
    call_ = protocol.chat_call(asking(*turns))
    assert len(call_.request.history) == 2046 and call_.request.prompt == "hi"
    with pytest.raises(PromptError, match="messages holds 2,049 messages: give at most 2,048"):
        protocol.chat_call(asking(("system", "s"), *turns))


def test_a_model_by_name_skips_routing(served: tuple[str, RouterLLM]) -> None:
    base, _ = served
    status, text = call(base, "/v1/completions", {"model": "tiny-heavy", "prompt": ["def f("]})
    assert status == 200, text
    answer = json.loads(text)
    assert answer["object"] == "text_completion" and answer["model"] == "tiny-heavy"
    assert answer["routerllm"]["router"] == "fixed" and answer["choices"][0]["text"]


def test_a_stream_carries_the_same_answer(served: tuple[str, RouterLLM]) -> None:
    base, _ = served
    plain = chat(base, "Name a sorting algorithm.", temperature=0)
    asked = asking(("user", "Name a sorting algorithm."), temperature=0, stream=True)
    status, text = call(base, CHAT, {**asked, "stream_options": {"include_usage": True}})
    assert status == 200
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    # the text comes piece by piece as it is generated (8 tokens), the same answer joined
    assert len([p for p in pieces if p]) > 1 and pieces[-1] is None
    assert "".join(p or "" for p in pieces) == plain["choices"][0]["message"]["content"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert not any(
        "role" in c["choices"][0]["delta"] for c in chunks[1:] if c["choices"]
    )  # first only
    assert len({(c["id"], c["model"]) for c in chunks}) == 1 and chunks[0]["model"] == plain["model"]  # fmt: skip
    assert chunks[-2]["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"]
    assert chunks[-2]["routerllm"]["request_id"] == chunks[0]["id"].removeprefix("chatcmpl-")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == plain["usage"]


def strict_json(text: str) -> Any:
    """``text`` parsed as JSON proper: ``NaN`` and ``Infinity`` are no JSON tokens."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} is not JSON: {text[:200]}")

    return json.loads(text, parse_constant=refuse)


def test_a_non_finite_figure_is_null_in_an_answer_and_in_a_stream(
    served: tuple[str, RouterLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NaN or infinite energy went out as the token ``NaN`` in a stream, which no JSON
    parser reads, and made the plain answer a 500 (Starlette refuses NaN)."""
    base, _ = served
    measured = server_app._Service.generate

    def nan_energy(self: Any, asked: protocol.Call, stop: threading.Event) -> Any:
        result, warning = measured(self, asked, stop)
        parts = {
            name: dataclasses.replace(m, energy_kwh=math.nan, co2_kg=math.inf, method="codecarbon:measured")
            for name, m in result.components.items()
        }  # fmt: skip
        return dataclasses.replace(result, components=parts), warning

    monkeypatch.setattr(server_app._Service, "generate", nan_energy)
    status, text = call(base, CHAT, asking(max_tokens=2))
    assert status == 200, text
    plain = strict_json(text)["routerllm"]
    status, text = call(base, CHAT, asking(max_tokens=2, stream=True))
    assert status == 200, text
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    streamed = [strict_json(e) for e in events[:-1]][-1]["routerllm"]
    for facts in (plain, streamed):
        assert facts["energy_kwh"] is None and facts["co2_kg"] is None
        assert facts["components"]["llm_inference"]["energy_kwh"] is None
        assert facts["components"]["llm_inference"]["co2_kg"] is None
        assert facts["components"]["llm_inference"]["duration_s"] >= 0


def test_stream_options_whose_include_usage_is_null_stream_without_usage(
    served: tuple[str, RouterLLM],
) -> None:
    """A null include_usage is unset, as every other null in a body is (a 400 until
    2026-12-05)."""
    base, _ = served
    asked = asking(stream=True, stream_options={"include_usage": None}, max_tokens=2)
    status, text = call(base, CHAT, asked)
    assert status == 200, text
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    chunks = [json.loads(e) for e in events[:-1]]
    assert events[-1] == "[DONE]" and chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in c for c in chunks)


def test_the_whole_conversation_reaches_the_model(served: tuple[str, RouterLLM]) -> None:
    base, _ = served
    alone = chat(base, "And in Rust?", temperature=0)
    conversation = asking(
        ("system", "Answer briefly."),
        ("user", "How do I reverse a list in Python?"),
        ("assistant", [{"type": "text", "text": "Use reversed()."}]),
        ("user", "And in Rust?"),
        temperature=0,
    )
    status, text = call(base, CHAT, conversation)
    assert status == 200, text
    answer = json.loads(text)
    assert answer["usage"]["prompt_tokens"] > alone["usage"]["prompt_tokens"] + 10
    # routed on the newest message alone, as the request without its history was
    assert answer["model"] == alone["model"]


def test_routerllm_is_a_client_of_its_own_server(served: tuple[str, RouterLLM], tmp_path: Path) -> None:  # fmt: skip
    base, _ = served
    data = tiny_config_dict(tmp_path)
    data["models"] = [
        {
            "name": "remote-router",
            "backend": "openai_http",
            "tier": "heavy",
            "params_b": 1.5,
            "model_id": "auto",
            "base_url": f"{base}/v1",
            "memory_gb": 0.1,
            "energy_per_token_kwh": 1e-7,
        }
    ]
    with RouterLLM(load_config(write_config(tmp_path, data))) as client:
        history = (("user", "hello"), ("assistant", "hi, how can I help?"))
        result = client.generate(GenerationRequest("Sort a list.", history=history))
    assert result.model == "remote-router" and result.text and result.completion_tokens > 0


def test_loading_a_model_does_not_wait_for_an_answer_from_a_server_in_the_same_process(
    served: tuple[str, RouterLLM], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A system whose remote model is served by a system in this process (both with
    CodeCarbon, whose blocks take turns): loading a local model evicts none but local
    ones, so it does not wait for the remote model's answer, which waits for its turn."""
    base, _ = served
    data = tiny_config_dict(tmp_path)
    data["models"] = [
        {"name": "remote", "backend": "openai_http", "tier": "heavy", "params_b": 1.5,
         "model_id": "tiny-light", "base_url": f"{base}/v1", "memory_gb": 0.1,
         "energy_per_token_kwh": 1e-7, "timeout_s": 5, "max_retries": 0},
        tiny_model("tiny-light", "light", 0.1, memory_gb=0.6),
        tiny_model("tiny-medium", "medium", 0.5, memory_gb=0.6),
    ]  # fmt: skip
    inside, go = threading.Event(), threading.Event()
    real = OpenAIHTTPBackend.generate

    def held(self: OpenAIHTTPBackend, req: GenerationRequest) -> Any:
        inside.set()
        go.wait(30)
        return real(self, req)

    monkeypatch.setattr(OpenAIHTTPBackend, "generate", held)
    answered: dict[str, str] = {}
    with RouterLLM(load_config(write_config(tmp_path, data))) as client:

        def ask(name: str) -> None:
            answered[name] = client.generate(GenerationRequest("def f(", max_new_tokens=4), model=name).model  # fmt: skip

        remote = threading.Thread(target=ask, args=("remote",))
        remote.start()
        assert inside.wait(30)
        ask("tiny-light")  # loaded after the remote model: it is the least recently used
        medium = threading.Thread(target=ask, args=("tiny-medium",))
        medium.start()  # over the budget with tiny-light: loading it evicts a model
        time.sleep(0.5)
        go.set()
        remote.join(30)
        medium.join(30)
    assert answered == {"remote": "remote", "tiny-light": "tiny-light", "tiny-medium": "tiny-medium"}  # fmt: skip


def test_the_official_openai_client_works_against_it(served: tuple[str, RouterLLM]) -> None:
    import openai

    base, _ = served
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    messages: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    answer = client.chat.completions.create(model="auto", messages=messages, max_tokens=6)
    assert answer.choices[0].message.content and answer.usage is not None
    assert (answer.model_extra or {})["routerllm"]["model"] == answer.model
    chunks = list(
        client.chat.completions.create(
            model="tiny-heavy",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    # the routing facts come with the finish reason, in the chunk's extra fields
    [finish] = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert (finish.model_extra or {})["routerllm"]["model"] == finish.model == "tiny-heavy"
    assert client.completions.create(model="auto", prompt="def f(", max_tokens=4).choices[0].text
    assert [m.id for m in client.models.list()][0] == "auto"
    assert client.models.retrieve("tiny-heavy").id == "tiny-heavy"
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=messages, max_tokens=2)  # fmt: skip
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/json"
    assert (raw.parse().model_extra or {})["routerllm"]["request_id"]
    with pytest.raises(openai.NotFoundError, match="valid names: auto"):
        client.chat.completions.create(model="gpt-9", messages=messages)
    with pytest.raises(openai.BadRequestError, match="does not support tool calls"):
        client.chat.completions.create(
            model="auto", messages=messages, tools=[{"type": "function", "function": {"name": "f"}}]
        )


def test_the_openai_clients_retries_do_not_run_again_what_waiting_cannot_mend(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The openai client retries a 429 or 5xx twice by default: an answer generated but not
    written (a bug) was generated three times, three rows and three times the energy, a
    failing model loaded three times. Such a refusal now says ``x-should-retry: false``,
    which the client obeys; the missing model's 503 too."""
    import openai

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(protocol, "answer", broken)
    quiet_config.models[1].gguf.path = str(Path(quiet_config.log.path).parent / "missing.gguf")  # type: ignore[union-attr]  # fmt: skip
    messages: Any = [{"role": "user", "content": "Hi"}]
    with RouterLLM(quiet_config) as system, running(system) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused")  # 2 retries by default
        assert client.max_retries == 2
        with pytest.raises(openai.InternalServerError, match="a bug") as bug:
            client.chat.completions.create(model="tiny-light", messages=messages, max_tokens=2)
        with pytest.raises(openai.APIStatusError, match="corrupt") as failing:
            client.completions.create(model="broken", prompt="x", max_tokens=2)
        with pytest.raises(openai.InternalServerError, match="not available") as missing:
            client.chat.completions.create(model="tiny-medium", messages=messages)
        rows = [(r.model, r.finish_reason) for r in system.log.records()]
    assert rows == [("tiny-light", "length"), ("broken", "error")]
    for refused, status in ((bug, 500), (failing, 502), (missing, 503)):
        assert refused.value.status_code == status
        assert refused.value.response.headers["x-should-retry"] == "false"


def test_a_budget_that_waiting_cannot_mend_is_a_429_the_openai_client_does_not_retry(
    tmp_path: Path,
) -> None:
    """A request over the per-request budget is refused at every try: the client's retries
    only delayed the refusal (by 0.5 s, then 1 s). One spent for the next hour keeps its
    ``Retry-After``, which the client honours."""
    import openai

    data = tiny_config_dict(tmp_path, budgets={"co2_kg": {"per_request": 1e-12}})
    messages: Any = [{"role": "user", "content": "Hi"}]
    with RouterLLM(load_config(write_config(tmp_path, data))) as system, running(system) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused")
        with pytest.raises(openai.RateLimitError, match=r"budgets\.co2_kg\.per_request") as refused:
            client.chat.completions.create(model="auto", messages=messages, max_tokens=2)
    headers = refused.value.response.headers
    assert headers["x-should-retry"] == "false" and "retry-after" not in headers
    assert refused.value.code == "budget_exceeded"


def test_a_budget_spent_for_longer_than_the_openai_client_waits_is_not_retried(
    tmp_path: Path,
) -> None:
    """An older openai client waits out a ``Retry-After`` of up to 60 s (3.57: 120 s);
    beyond, it ignored it and sent the request again at once, twice, each refused as the
    first (an hourly budget spent: minutes to wait). Such a 429 now says
    ``x-should-retry: false`` too, and keeps its ``Retry-After`` for the caller; one of
    60 s or less is left to the client's retry, which waits it out."""
    import openai

    from .test_budgets import record, seeded_log

    data = tiny_config_dict(tmp_path, budgets={"co2_kg": {"hourly": 0.05}})
    config = load_config(write_config(tmp_path, data))
    spent = datetime.now(timezone.utc) - timedelta(minutes=10)  # spent for 50 more minutes
    seeded_log(Path(config.log.path), [record("tiny-light", spent, co2_kg=0.06)]).close()
    messages: Any = [{"role": "user", "content": "Hi"}]
    with RouterLLM(config) as system, running(system) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused")
        with pytest.raises(openai.RateLimitError, match="hourly CO2 budget") as refused:
            client.chat.completions.create(model="auto", messages=messages, max_tokens=2)
        # refused once routed: its logged row's id, in the body's routerllm field (the
        # client's e.body is the error object alone)
        (row,) = [r for r in system.log.records() if r.finish_reason == "refused:budget"]
        assert refused.value.response.json()["routerllm"]["request_id"] == row.id
    headers = refused.value.response.headers
    assert protocol.RETRY_AFTER_HONOURED_S < int(headers["retry-after"]) <= 50 * 60
    assert headers["x-should-retry"] == "false" and refused.value.code == "budget_exceeded"
    spent_now = BudgetExceededError("hourly budget spent", retry_at="2026-12-05T12:00:00+00:00")
    for wait, mends in ((1, True), (60, True), (61, False), (3000, False)):
        assert protocol.retry_mends(spent_now, 429, wait) is mends, wait


def test_the_async_openai_client_takes_turns_and_a_cancelled_request_stops_its_model(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An audit with ``AsyncOpenAI`` (nothing was wrong): a wrong key is its
    ``AuthenticationError``; concurrent requests are all answered, one at a time; a
    streamed request cancelled while its answer is generated (a task cancelled, the
    client's own timeout) stops the model between two tokens, logged as cancelled."""
    import openai

    monkeypatch.setattr(server_app, "POLL_S", 0.05)
    messages: Any = [{"role": "user", "content": "Hi"}]
    with RouterLLM(quiet_config) as system:
        backend = system.manager.backend("tiny-light")
        backend.load()
        llm, generating, sampled = backend._llm, threading.Event(), []
        sample = llm.sample

        def paused(*args: Any, **kwargs: Any) -> Any:
            """At the cancelled request's 3rd token, wait until the server is told."""
            sampled.append(token := sample(*args, **kwargs))
            if generating.is_set() and len(sampled) == 3:
                held_until_told(30)
            return token

        monkeypatch.setattr(llm, "sample", paused)

        async def use(base: str) -> list[str]:
            wrong = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0)
            with pytest.raises(openai.AuthenticationError, match="missing or wrong API key"):
                await wrong.models.list()
            client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="k3y", max_retries=0)
            answers = await asyncio.gather(
                *(
                    client.chat.completions.create(model="auto", messages=messages, max_tokens=2)
                    for _ in range(3)
                )
            )
            generating.set()
            sampled.clear()
            ask = client.chat.completions.create(model="auto", messages=messages, max_tokens=300, stream=True)  # fmt: skip
            cancelled = asyncio.ensure_future(ask)
            while len(sampled) < 3:
                await asyncio.sleep(0.01)
            cancelled.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cancelled
            await client.close()
            return [a.model for a in answers]

        with running(system, api_key="k3y") as base:
            assert asyncio.run(use(base)) == ["tiny-light"] * 3
            deadline = time.monotonic() + 30
            while system.log.count() < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
        rows = [(r.finish_reason, r.completion_tokens) for r in system.log.records()]
    assert rows[:3] == [("length", 2)] * 3
    assert rows[3][0] == CANCELLED and rows[3][1] < 10


def test_requests_take_turns(served: tuple[str, RouterLLM]) -> None:
    base, system = served
    answers: list[dict[str, Any]] = []

    def ask(k: int) -> None:
        answers.append(chat(base, f"Explain topic {k} in one line.", max_tokens=24))

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 3
    ids = {a["routerllm"]["request_id"] for a in answers}
    spans = sorted(
        (
            datetime.fromisoformat(r.timestamp).timestamp() - r.latency_s,
            datetime.fromisoformat(r.timestamp).timestamp(),
        )  # fmt: skip
        for r in system.log.records(tag="server")
        if r.id in ids
    )
    # each request was measured alone: none starts before the one before it ended
    assert all(
        later[0] >= earlier[1] - 0.01 for earlier, later in zip(spans, spans[1:], strict=False)
    )


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (CHAT, b"{bad", 400, "not valid JSON"),
        (CHAT, b"null", 400, "must be a JSON object, got null"),
        (CHAT, b"[" * 100_000, 400, "nested too deeply"),
        (CHAT, [], 400, "must be a JSON object, got an array"),
        (CHAT, {"messages": []}, 400, "messages must be a non-empty array"),
        (CHAT, asking(("user", "")), 400, "prompt is empty"),
        (CHAT, asking(("user", "a\u0000b")), 400, "prompt holds a NUL character"),
        (CHAT, asking(("user", "\u200b")), 400, "prompt is empty: it holds no visible"),
        (CHAT, asking(("assistant", "x")), 400, "must be the user's"),
        (CHAT, asking(("robot", "x")), 400, "messages[0].role must be"),
        (CHAT, asking(("user", [{"type": "image_url"}])), 400, "supported, got 'image_url'"),
        # the audit of the server (2026-12-05): a part that is no object was "got 'a string'"
        (
            CHAT,
            asking(("user", ["hi"])),
            400,
            "messages[0].content: only text parts are supported, got a string",
        ),
        (CHAT, asking(("user", [{"text": "hi"}])), 400, "supported, got a part without a type"),
        (CHAT, asking(("user", None)), 400, "content must be a string"),
        (CHAT, asking(tools=[{"type": "function"}]), 400, "does not support tool calls"),
        (CHAT, asking(n=2), 400, "several choices (n must be 1)"),
        (CHAT, asking(n=True), 400, "n must be 1"),
        (CHAT, asking(temperature="hot"), 400, "temperature must be a number"),
        (CHAT, asking(temperature=5), 400, "0 <= temperature <= 2"),
        (CHAT, asking(max_tokens=0), 400, "max_tokens must be at least 1"),
        (CHAT, asking(max_completion_tokens=-1), 400, "max_completion_tokens must be at least 1"),
        # the audit of the server (2026-12-04): a wrong max_tokens beside max_completion_tokens
        # (which replaces it) was ignored
        (
            CHAT,
            asking(max_tokens=-1, max_completion_tokens=2),
            400,
            "max_tokens must be at least 1",
        ),
        (
            CHAT,
            asking(max_tokens="8", max_completion_tokens=2),
            400,
            "max_tokens must be a whole number, got a string '8'",
        ),
        (CHAT, asking(repetition_penalty=10**400), 400, "repetition_penalty"),
        (CHAT, asking(max_tokens=10**400), 400, "need 1 <= max_tokens <= 2,147,483,647"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 2**31}, 400, "max_tokens"),
        (CHAT, asking(stop=""), 400, "a stop sequence is empty"),
        (CHAT, asking(stop=["\n"] * 100_000), 400, "stop holds 100,000 sequences: give at most 16"),
        (CHAT, asking(stop="zq" * 500_000), 400, "a stop sequence is 1,000,000 characters long"),
        (CHAT, asking(stream="yes"), 400, "stream must be true or false"),
        (CHAT, asking(stream=0), 400, "stream must be true or false"),
        # the audit of malformed requests (2026-12-04): each a JSON error, none run
        (CHAT, asking(model=5), 400, "model must be a model's name or 'auto' to route, got 5"),
        (
            CHAT,
            {"messages": {"role": "user", "content": "x"}},
            400,
            "messages must be a non-empty array",
        ),  # fmt: skip
        (
            CHAT,
            b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}',
            400,
            "not valid JSON ('utf-8' codec can't decode byte 0xff",
        ),  # fmt: skip
        (CHAT, asking(stream=True, n=2), 400, "several choices (n must be 1)"),
        (CHAT, asking(stream=True, logprobs=True), 400, "does not support log probabilities"),
        (
            CHAT,
            asking(stream=True, stream_options={"include_usage": "yes"}),
            400,
            "stream_options must be an object like",
        ),  # fmt: skip
        (
            CHAT,
            asking(stream=True, stream_options={"include_usage": 0}),
            400,
            "stream_options must",
        ),
        (CHAT, asking(stream=True, stream_options=[]), 400, "stream_options must be an object"),
        (
            CHAT,
            asking(stream_options={"include_usage": True}),
            400,
            "only allowed when stream is true",
        ),  # fmt: skip
        (
            "/v1/completions",
            {"prompt": "x", "stream": False, "stream_options": {}},
            400,
            "stream_options is only",
        ),  # fmt: skip
        (CHAT, asking(("system", "\udfff"), ("user", "x")), 400, "system is not valid UTF-8"),
        (
            CHAT,
            asking(("user", "\ud800"), ("assistant", "y"), ("user", "x")),
            400,
            "history turn 1 is not valid UTF-8",
        ),  # fmt: skip
        (CHAT, asking(model="gpt-4"), 404, "unknown model 'gpt-4'; valid names: auto, tiny-heavy"),
        (CHAT, asking(model="m" * 10**6), 404, "unknown model 'mmm"),
        ("/v1/completions", {"prompt": ["a", "b"]}, 400, "send one prompt per request"),
        # token ids (as lm-eval's tokenized requests send them) were told "send one prompt"
        (
            "/v1/completions",
            {"prompt": [1, 2]},
            400,
            "got token ids (not supported here: send the prompt's text)",
        ),
        ("/v1/completions", {"prompt": [[1, 2]]}, 400, "prompt must be a string, got token ids"),
        ("/v1/completions", {"prompt": []}, 400, "prompt must be a string, got an empty array"),
        ("/v1/completions", {"prompt": "x", "echo": True}, 400, "does not support echo"),
        # logprobs 0 (the chosen tokens' log probabilities) was answered without them
        (
            "/v1/completions",
            {"prompt": "x", "logprobs": 0},
            400,
            "logprobs: RouterLLM's server does not support log probabilities",
        ),  # fmt: skip
        (CHAT, asking(logprobs=True), 400, "logprobs: RouterLLM's server does not support"),
        (CHAT, asking(top_logprobs=2), 400, "top_logprobs: RouterLLM's server does not support"),
        # vLLM's structured output was accepted as an unknown field, and the answer free text
        (
            CHAT,
            asking(guided_json={"type": "object"}),
            400,
            "guided_json: RouterLLM's server does not support",
        ),
        (
            "/v1/completions",
            {"prompt": "x", "n_predict": 2},
            400,
            "n_predict (llama-server's name): send max_tokens",
        ),
        # the openai client's web search and moderation were answered without either
        (
            CHAT,
            asking(web_search_options={}),
            400,
            "web_search_options: RouterLLM's server does not support web search",
        ),
        (
            CHAT,
            asking(moderation={"model": "omni-moderation-latest"}),
            400,
            "moderation: RouterLLM's server does not support moderation",
        ),
        # was "must be a string or an array of text parts, got an array"
        (
            CHAT,
            asking(("user", [])),
            400,
            "messages[0].content must be a string or an array of text parts, got an empty array",
        ),
        ("/v1/completions", {"prompt": "x" * 5_000_000}, 413, "request body is over"),
        (
            "/routerllm/feedback",
            {"request_id": "\ud800", "score": 1},
            400,
            "request_id is not valid UTF-8",
        ),
        ("/v1/embeddings", {"input": "x"}, 404, "POST /v1/embeddings: Not Found"),
        # a client whose base_url lacks /v1 was told only "Not Found"
        (
            "/chat/completions",
            asking(),
            404,
            "POST /chat/completions: Not Found; the API is under /v1: POST /v1/chat/completions "
            "(an OpenAI client's base_url ends in /v1)",
        ),
        ("/models", None, 404, "the API is under /v1: GET /v1/models"),
        ("/embeddings", {"input": "x"}, 404, "POST /embeddings: Not Found"),
        ("/routerllm/report?tag=", None, 400, "tag is empty"),
        ("/openapi.json", None, 404, "GET /openapi.json: Not Found"),
    ],
)
def test_a_bad_request_gets_an_openai_error_and_is_not_run(
    served: tuple[str, RouterLLM], path: str, body: Any, status: int, message: str
) -> None:
    base, system = served
    before = system.log.count()
    got, text = call(base, path, raw=body) if isinstance(body, bytes) else call(base, path, body)
    error = json.loads(text)["error"]
    assert got == status and message in error["message"], text
    assert len(error["message"]) < 1000
    assert error["type"] == "invalid_request_error"
    assert system.log.count() == before


def test_a_prompt_no_models_context_holds_is_openais_context_length_exceeded(
    served: tuple[str, RouterLLM],
) -> None:
    """OpenAI's code for it, which clients read to shorten the conversation and ask again."""
    base, system = served
    before = system.log.count()
    got, text = call(base, CHAT, asking(("user", "word " * 700), model="auto"))
    error = json.loads(text)["error"]
    assert got == 400 and "too long for model" in error["message"], text
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    # logged as failed, for what its routing spent (and, where the model it was sent to
    # loaded for it, not already loaded by an earlier test, that load); never as an
    # answer; the 400 names its row (until 2026-12-07 neither, where the model was warm)
    (added,) = list(system.log.records())[before:]
    assert added.finish_reason == "error" and added.id == json.loads(text)["routerllm"]["request_id"]  # fmt: skip


def test_the_report_reads_the_log(served: tuple[str, RouterLLM]) -> None:
    base, system = served
    chat(base)
    status, text = call(base, "/routerllm/report?tag=server")
    assert status == 200, text
    report = json.loads(text)
    assert report["totals"]["requests"] == len(list(system.log.records(tag="server"))) > 0
    assert report["by_component"]["llm_inference"]["energy_kwh"] > 0
    assert all(set(r) == {"kind", "message", "config_key", "evidence"} for r in report["recommendations"])  # fmt: skip
    status, text = call(base, "/routerllm/report?since=yesterday")
    assert status == 400 and "yesterday" in json.loads(text)["error"]["message"]
    # the audit of the server (2026-12-04): a since of 100,000 characters came back whole
    status, text = call(base, "/routerllm/report?since=" + "x" * 100_000)
    message = json.loads(text)["error"]["message"]
    assert status == 400 and message.startswith("since: 'xxx") and len(message) < 300, message[:300]
    # An offset's + sent unencoded arrives as a space: read as the + it was.
    for since, requests in (("2000-01-01T00:00:00+05:00", report["totals"]["requests"]),
                            ("2999-01-01T00:00+05:00", 0), ("2999-01-01+00:00:00+0530", 0)):  # fmt: skip
        status, text = call(base, f"/routerllm/report?since={since}&tag=server")
        assert status == 200, text
        assert json.loads(text)["totals"]["requests"] == requests


def test_the_report_reads_the_log_the_server_writes(tmp_path: Path) -> None:
    # A system given another log than log.path: its report reads that log (it read
    # log.path, and with no file there answered a 500).
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False})))  # fmt: skip
    own = tmp_path / "served.sqlite"
    with RouterLLM(config, request_log=own) as system, running(system) as base:
        chat(base)
        status, text = call(base, "/routerllm/report")
    assert status == 200, text
    report = json.loads(text)
    assert report["log"] == str(own) and report["totals"]["requests"] == 1
    # carbon tracking off: not measured (null), not a measured 0 g
    assert report["totals"]["co2_kg"] is None and report["equivalences"]["km_by_car"] is None
    assert not Path(config.log.path).exists()


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (CHAT, {"messages": []}, "messages"),
        (CHAT, asking(("user", "")), "messages"),
        (CHAT, asking(("robot", "x")), "messages"),
        (CHAT, asking(n=2), "n"),
        (CHAT, asking(temperature="hot"), "temperature"),
        (CHAT, asking(temperature=5), "temperature"),
        (CHAT, asking(top_p=0, temperature=5), "temperature"),
        (CHAT, asking(max_completion_tokens=-1), "max_completion_tokens"),
        (CHAT, asking(stop=""), "stop"),
        (CHAT, asking(stop="\ud800"), "stop"),
        (CHAT, asking(stop=[str(i) for i in range(17)]), "stop"),
        (CHAT, asking(("system", "\ud800"), ("user", "x")), "messages"),
        (CHAT, asking(("user", "\ud800"), ("assistant", "y"), ("user", "x")), "messages"),
        ("/routerllm/report?since=yesterday", None, "since"),
        ("/routerllm/report?tag=%20", None, "tag"),
        (CHAT, asking(stream="yes"), "stream"),
        (CHAT, asking(stream_options={"include_usage": True}), "stream_options"),
        (CHAT, asking(model=""), "model"),
        (CHAT, asking(model="gpt-4"), None),  # OpenAI's model_not_found names none either
        (CHAT, b"{bad", None),
        ("/v1/completions", {"prompt": " "}, "prompt"),
        ("/v1/completions", {"prompt": "x", "echo": True}, "echo"),
        ("/routerllm/feedback", {"request_id": "r", "score": 2}, "score"),
        ("/routerllm/feedback", {"request_id": 3, "score": 1}, "request_id"),
        ("/routerllm/feedback", {"request_id": "\udfff", "score": 1}, "request_id"),
        # an answer's id without its request_id was "got ''", naming no field
        ("/routerllm/feedback", {"request_id": "chatcmpl-", "score": 1}, "request_id"),
    ],
)
def test_an_error_names_the_field_at_fault_as_openai_does(
    served: tuple[str, RouterLLM], path: str, body: Any, param: str | None
) -> None:
    base, _ = served
    _, text = call(base, path, raw=body) if isinstance(body, bytes) else call(base, path, body)
    assert json.loads(text)["error"]["param"] == param, text


def test_a_body_that_does_not_come_is_refused_in_time(
    served: tuple[str, RouterLLM], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    base, system = served
    before = system.log.count()
    monkeypatch.setattr(bodies, "BODY_TIMEOUT_S", 1.5)
    with half_sent(base, b'{"messages": ', 100) as sock:
        status, body = answer_on(sock)
    assert status == 408 and "did not arrive within 1.5 s" in body["error"]["message"]
    with half_sent(base, b'{"messages": ', 100):  # and a client that leaves half-way
        pass
    limit = server_app.BODY_SLACK_BYTES + 12 * system.config.limits.max_prompt_chars
    with half_sent(base, b"", limit + 1, expect=True) as sock:  # refused before it is sent
        assert answer_on(sock)[0] == 413
    time.sleep(0.5)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert system.log.count() == before and chat(base)["choices"]


# -- failures and keys --------------------------------------------------------
@pytest.fixture
def quiet_config(tmp_path: Path, tiny_gguf: Path) -> AppConfig:
    """The tiny ladder without CodeCarbon (fast to start), plus a corrupt GGUF model."""
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    data["models"].append(
        tiny_model("broken", "heavy", 3.0, gguf=corrupt_gguf(tmp_path, tiny_gguf))
    )
    data["router"] = {"name": "smallest"}
    return load_config(write_config(tmp_path, data))


def test_a_failing_backend_is_a_502_and_the_server_goes_on(quiet_config: AppConfig) -> None:
    with RouterLLM(quiet_config) as system, running(system) as base:
        status, text = call(base, "/v1/completions", {"model": "broken", "prompt": "x"})
        error = json.loads(text)["error"]
        assert status == 502 and "corrupt" in error["message"] and error["code"] == "backend_error"
        assert chat(base)["model"] == "tiny-light"


def test_an_answer_the_log_cannot_take_is_still_returned(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RouterLLM(quiet_config) as system, running(system) as base:

        def full_disk(record: object) -> None:
            raise RequestLogError("database or disk is full")

        monkeypatch.setattr(system.log, "append", full_disk)
        answer = chat(base)
        assert answer["choices"][0]["message"]["content"]
        assert "could not record this answer" in answer["routerllm"]["warning"]


def test_a_conversation_the_models_chat_template_refuses_is_a_400(tmp_path: Path) -> None:
    gemma = gguf_with_chat_template(tmp_path / "gemma.gguf", GEMMA_TEMPLATE)
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    data["models"] = [tiny_model("gemma", "light", 0.1, gguf={"path": str(gemma)})]
    with RouterLLM(load_config(write_config(tmp_path, data))) as system, running(system) as base:  # fmt: skip
        named = []
        for refused, says in (
            (asking(("system", "Be brief."), ("user", "x")), "System role not supported"),
            (asking(("user", "x"), ("user", "y")), "roles must alternate"),
        ):
            status, text = call(base, CHAT, refused)
            error = json.loads(text)["error"]
            assert status == 400 and error["param"] == "messages", text
            assert "model 'gemma''s chat template refuses this conversation" in error["message"]
            assert says in error["message"]
            named.append(json.loads(text)["routerllm"]["request_id"])
        assert chat(base)["model"] == "gemma"  # the server goes on, the template applied
        # the first refusal loaded gemma: logged as failed, for that load and its routing;
        # the second, warm, spent no load: logged for its routing (until 2026-12-07 not
        # at all), each 400 naming its row
        rows = list(system.log.records())
        assert [r.finish_reason == "error" for r in rows] == [True, True, False]
        assert [r.id for r in rows[:2]] == named
        assert [r.components["model_loading"].duration_s > 0 for r in rows[:2]] == [True, False]


def test_an_api_key_guards_everything_but_health(quiet_config: AppConfig) -> None:
    with RouterLLM(quiet_config) as system, running(system, api_key="s3cret") as base:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            status, text = call(base, CHAT, body, headers=headers)
            assert status == 401 and json.loads(text)["error"]["code"] == "invalid_api_key"
        assert call(base, "/v1/models")[0] == 401
        assert call(base, "/routerllm/report")[0] == 401
        assert call(base, "/health")[0] == 200
        assert call(base, "/health", method="HEAD") == (200, "")
        # RFC 9110 (15.5.2): a 401 says how to authenticate (none did until 2026-12-05)
        host = base.removeprefix("http://")
        for method, path in (("POST", CHAT), ("GET", "/v1/models")):
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n"
            status, fields, _ = exchange(base, head + "Connection: close\r\n\r\n")
            assert (status, fields.get("www-authenticate")) == (401, "Bearer"), path
        key = {"Authorization": "Bearer s3cret"}
        assert call(base, CHAT, body, headers=key)[0] == 200
        assert call(base, "/v1/models", headers=key)[0] == 200
        assert system.log.count() == 1


def test_a_stopped_server_leaves_no_generating_thread_running(quiet_config: AppConfig) -> None:
    """A stopped server's generating thread ends with it: it was left waiting for work
    for ever (until the app was collected), one a server run in the process (2026-12-06)."""
    before = set(threading.enumerate())
    with RouterLLM(quiet_config) as system:
        with running(system) as base:
            assert call(base, CHAT, {"messages": [{"role": "user", "content": "hi"}]})[0] == 200
            generating = [t for t in set(threading.enumerate()) - before if t.name.startswith("routerllm-generate")]  # fmt: skip
            assert len(generating) == 1
        generating[0].join(5)
        assert not generating[0].is_alive()


def test_a_refusal_before_the_body_reaches_a_client_still_sending_a_large_one(
    tmp_path: Path,
) -> None:
    """A wrong key, an unknown path or method was answered before the body was read; to a
    client that sends Connection: close (urllib does), uvicorn then closed the connection
    on the bytes still coming, and the client saw a broken pipe or a reset, not the error."""
    data = tiny_config_dict(tmp_path, carbon={"enabled": False}, limits={"max_prompt_chars": 10**6})  # fmt: skip
    # more than the socket buffers hold, under the 413 limit (12 MiB and 1 MiB)
    large = {"messages": [{"role": "user", "content": "x" * 12_000_000}]}
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system, running(system, api_key="s3cret") as base:
        wrong = {"Authorization": "Bearer wrong"}
        for path, status in ((CHAT, 401), ("/routerllm/feedback", 401), ("/v1/embeddings", 404), ("/v1/models", 405)):  # fmt: skip
            got, text = call(base, path, large, headers=wrong)
            assert got == status and json.loads(text)["error"]["message"], text
        key = {"Authorization": "Bearer s3cret"}  # the server goes on
        assert call(base, CHAT, asking(max_tokens=1), headers=key)[0] == 200


def test_a_body_refused_for_its_key_or_path_is_read_without_being_kept(tmp_path: Path) -> None:
    """The body of a request refused for a wrong key, an unknown path or a method was
    read (for the refusal to reach a client still sending it) and kept, twice over, until
    the refusal: a client without the key made the server hold up to 2 x 12 times
    limits.max_prompt_chars bytes per connection. It is dropped as it is read."""
    import tracemalloc

    data = tiny_config_dict(tmp_path, carbon={"enabled": False}, limits={"max_prompt_chars": 10**6})  # fmt: skip
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 12_000_000}]}).encode()
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system, running(system, api_key="s3cret") as base:
        host, port = base.removeprefix("http://").split(":")
        for path, status in ((CHAT, 401), ("/routerllm/feedback", 401), ("/v1/nowhere", 404)):
            head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            head += f"Authorization: Bearer wrong\r\nContent-Length: {len(body)}\r\n\r\n"
            tracemalloc.start()
            try:
                with socket.create_connection((host, int(port)), timeout=60) as sock:
                    sock.sendall(head.encode())
                    sock.sendall(body)  # the server's copy, not this one, is traced
                    answer = b"".join(iter(lambda s=sock: s.recv(65536), b""))  # type: ignore[misc]
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
            assert peak < 6_000_000, f"{path}: {peak:,} bytes held for a refused body"


def test_a_get_sent_with_a_body_is_answered_once_the_body_is_read(tmp_path: Path) -> None:
    """The audit of the server (2026-12-04): a GET endpoint (the models, a model, the
    report, health) answered at once, the body of a careless client's GET unread; to a
    client still sending it and asking to close the connection (urllib does), uvicorn
    closed it on the bytes still coming, and the client saw a reset, not the answer. The
    body is read and dropped first, as for a 401; one over the 413 limit changes nothing:
    a GET's body is no prompt."""
    data = tiny_config_dict(tmp_path, carbon={"enabled": False}, limits={"max_prompt_chars": 1000})  # fmt: skip
    config = load_config(write_config(tmp_path, data))
    body = b"x" * 5_000_000  # more than the socket buffers hold; over the 413 limit (1 MiB)
    with RouterLLM(config) as system, running(system, api_key="s3cret") as base:
        key = {"Authorization": "Bearer s3cret"}
        for path, field in (("/v1/models", "data"), ("/v1/models/auto", "id"), ("/routerllm/report", "totals"), ("/health", "status")):  # fmt: skip
            status, text = call(base, path, raw=body, headers=key, method="GET")
            assert status == 200 and field in json.loads(text), (path, text[:200])
        status, text = call(base, "/v1/models", raw=body, headers={"Authorization": "Bearer x"}, method="GET")  # fmt: skip
        assert status == 401 and json.loads(text)["error"]["code"] == "invalid_api_key", text
        assert call(base, CHAT, asking(max_tokens=1), headers=key)[0] == 200  # the server goes on


def test_a_wrong_key_or_path_with_a_body_over_the_limit_is_a_401_or_404_not_a_413(
    tmp_path: Path,
) -> None:
    """Since the body was read before a 401, 404 or 405, one over the limit was answered
    413 "the request body is over N bytes (limits.max_prompt_chars: M)": a client without
    the key was told the server's limits, and to shrink a body that its key refused
    anyway. The refusal is the key's or the path's, the connection closed where the body
    was not all read."""
    data = tiny_config_dict(tmp_path, carbon={"enabled": False}, limits={"max_prompt_chars": 1000})  # fmt: skip
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system, running(system, api_key="s3cret") as base:
        limit = 12 * 1000 + server_app.BODY_SLACK_BYTES  # _Service.body_limit
        wrong = {"Authorization": "Bearer wrong"}
        over = b"x" * (limit + 1000)  # read to its end and dropped
        for path, status, code in ((CHAT, 401, "invalid_api_key"), ("/v1/nowhere", 404, None)):
            got, text = call(base, path, raw=over, headers=wrong)
            assert (got, json.loads(text)["error"]["code"]) == (status, code), text
        host, port = base.removeprefix("http://").split(":")
        for path, status in ((CHAT, 401), ("/v1/nowhere", 404)):  # too large to read at all
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer wrong\r\n"
                sock.sendall(f"{head}Content-Length: {limit * 100}\r\n\r\n".encode())
                assert answer_on(sock)[0] == status


def test_a_client_waiting_for_100_continue_gets_a_refusal_before_it_sends_its_body(
    quiet_config: AppConfig,
) -> None:
    """A wrong key's 401 (or an unknown path's 404, a method's 405) waited until the body
    was read and dropped; reading it made uvicorn send 100 Continue, and a client that
    asked for it (curl does for a large body) uploaded its whole body to be refused. The
    refusal now comes first, the connection closed; a right key still gets the 100."""
    with RouterLLM(quiet_config) as system, running(system, api_key="s3cret") as base:
        host, port = base.removeprefix("http://").split(":")
        body = json.dumps(asking(max_tokens=1)).encode()
        refused = (
            ("POST", CHAT, "wrong", 401, "invalid_api_key"),
            ("POST", "/routerllm/feedback", "", 401, "invalid_api_key"),
            ("POST", "/v1/nowhere", "s3cret", 404, None),
            ("PUT", CHAT, "s3cret", 405, None),
        )
        for method, path, key, status, code in refused:
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                head = (
                    f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                )
                head += "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode())  # no body
                first = sock.recv(65536)
                assert first.startswith(f"HTTP/1.1 {status} ".encode()), (path, first)
                assert answer_on_after(sock, first) == (status, code)
        assert_answered_after_continue(f"{host}:{port}", body, "100-continue")
        assert system.log.count() == 1


def assert_answered_after_continue(host: str, body: bytes, expect: str) -> None:
    """A request to ``host`` (with the key s3cret) that sends ``Expect: expect`` gets
    ``100 Continue``, then, once its ``body`` is sent, a 200."""
    name, port = host.split(":")
    with socket.create_connection((name, int(port)), timeout=30) as sock:
        head = f"POST {CHAT} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer s3cret\r\n"
        head += f"Content-Type: application/json\r\nExpect: {expect}\r\nConnection: close\r\n"
        sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode())
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def answer_on_after(sock: socket.socket, start: bytes) -> tuple[int, str | None]:
    """The status and error code of the answer that begins with ``start``, read from
    ``sock`` until the server closes the connection (which it must)."""
    data = start + b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"\r\nconnection: close" in head.lower(), head
    return int(head.split()[1]), json.loads(body)["error"]["code"]


def test_cors_is_off_by_default_and_lets_the_given_origins_call(quiet_config: AppConfig) -> None:
    """A web UI on another origin could not call the server: no CORS at all."""
    from starlette.testclient import TestClient

    page = "http://localhost:3000"
    preflight = {
        "Origin": page,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
    }
    with (
        RouterLLM(quiet_config) as system,
        TestClient(server_app.create_app(system, api_key="k")) as closed,
        # as given by hand: upper case, the default port; the page sends neither
        TestClient(server_app.create_app(system, "k", cors=["HTTP://LocalHost:3000"])) as client,
    ):
        answer = closed.options(CHAT, headers=preflight)
        assert answer.status_code == 405 and "access-control-allow-origin" not in answer.headers
        answer = client.options(CHAT, headers=preflight)  # no key: a preflight carries none
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == page
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert "x-stainless-os" in answer.headers["access-control-allow-headers"]
        answer = client.post(CHAT, json=asking(), headers={"Origin": page})
        assert answer.status_code == 401 and answer.headers["access-control-allow-origin"] == page
        answer = client.post(CHAT, json=asking(), headers={"Origin": page, "Authorization": "Bearer k"})  # fmt: skip
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == page
        other = client.options(CHAT, headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    assert server_app.cors_origins(["https://app.example.com:443", "*"]) == ["https://app.example.com", "*"]  # fmt: skip
    assert server_app.cors_origins(None) == []
    for wrong in ([3000], 3000, [None]):
        with pytest.raises(RouterLLMError, match="cors must be a list|a CORS origin is text"):
            server_app.cors_origins(wrong)  # type: ignore[arg-type]


def test_a_server_without_a_key_answers_no_host_name_a_rebinding_page_could_use(
    quiet_config: AppConfig,
) -> None:
    """DNS rebinding: a page on evil.example whose name then resolves to 127.0.0.1 is the
    same origin as the server (no CORS needed): it ran the models and read the answers,
    the report and the feedback of a server without a key. Without a key only an IP
    address or localhost is answered as Host; with one, any name is (the page has no key)."""
    port_of = lambda base: base.rsplit(":", 1)[1]  # noqa: E731
    with RouterLLM(quiet_config) as system, running(system) as base:
        port = port_of(base)
        for host in (f"evil.example:{port}", "evil.example", f"localhost.evil.example:{port}"):
            for path, body in ((CHAT, asking()), ("/v1/models", None), ("/routerllm/report", None)):  # fmt: skip
                status, text = call(base, path, body, headers={"Host": host})
                assert status == 403, (host, path, text)
                error = json.loads(text)["error"]
                assert error["code"] == "host_not_allowed" and "ROUTERLLM_API_KEY" in error["message"]  # fmt: skip
        assert system.log.count() == 0  # no model ran
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LocalHost", f"app.localhost:{port}", f"[::1]:{port}", "10.0.0.7"):  # fmt: skip
            assert call(base, "/v1/models", headers={"Host": host})[0] == 200, host
        assert call(base, "/health", headers={"Host": "evil.example"})[0] == 200
    with RouterLLM(quiet_config) as system, running(system, api_key="s3cret") as base:
        headers = {"Host": "api.example.com", "Authorization": "Bearer s3cret"}
        assert call(base, "/v1/models", headers=headers)[0] == 200


def test_a_server_listening_on_the_network_without_a_key_answers_host_names(
    quiet_config: AppConfig,
) -> None:
    """The host-name refusal guards a server on the loopback address alone: one its owner
    opened to the network without a key (`serve --host 0.0.0.0`, warned of) is called by
    the machine's name (http://gpu-box:8000), which it refused."""
    from fastapi.testclient import TestClient

    from routerllm.server.app import create_app
    from routerllm.server.serving import _loopback

    for host, loopback in (("127.0.0.1", True), ("0.0.0.0", False)):
        with contextlib.closing(listen(host, 0)) as sock:
            assert _loopback(sock) is loopback, host
    with RouterLLM(quiet_config) as system:
        for loopback, status in ((False, 200), (True, 403)):
            with TestClient(create_app(system, loopback=loopback), base_url="http://gpu-box:8000") as client:  # fmt: skip
                assert client.get("/v1/models").status_code == status


def held_generation(
    system: RouterLLM, monkeypatch: pytest.MonkeyPatch
) -> tuple[threading.Event, threading.Event]:
    """``system.generate`` made to wait: the first event is set once a request
    generates, and the real generation runs once the second is set."""
    generate, generating, go = system.generate, threading.Event(), threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        generating.set()
        go.wait(30)
        return generate(*args, **kwargs)

    monkeypatch.setattr(system, "generate", held)
    return generating, go


@pytest.mark.parametrize("force", [False, True], ids=["stop", "second-ctrl-c"])
def test_stopping_answers_the_request_in_progress_and_refuses_those_waiting(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch, force: bool
) -> None:
    with RouterLLM(quiet_config) as system:
        generating, go = held_generation(system, monkeypatch)
        base, srv, serving = started(system)
        answers: dict[str, tuple[int, str]] = {}

        def ask(name: str) -> None:
            answers[name] = call(base, CHAT, asking())

        first = threading.Thread(target=ask, args=("first",))
        first.start()
        assert generating.wait(30)
        second = threading.Thread(target=ask, args=("second",))
        second.start()
        # the second waits its turn: waited for, not slept on (a stop before it arrived
        # refuses its connection, not its request)
        service, deadline = srv.config.app.state.service, time.monotonic() + 30
        while service.waiting < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.waiting == 1
        srv.should_exit = True
        srv.force_exit = force  # a second Ctrl-C: the event loop cancels every task
        second.join(server_app.POLL_S + 1)
        assert "second" in answers  # refused without waiting for the generation
        go.set()
        for t in (first, second, serving):
            t.join(30)
        assert answers["first"][0] == 200, answers
        status, text = answers["second"]
        assert status == 503 and json.loads(text)["error"]["code"] == "server_stopping"
        assert system.log.count() == 1
        assert srv.config.app.state.service.unsent == 0  # the answer sent: a stop held no more


def test_max_waiting_refuses_a_request_beyond_the_cap_at_once(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests queued without limit behind the one generating (each holding its body
    and a connection); with max_waiting, one beyond the cap is a 503 at once."""
    with RouterLLM(quiet_config) as system:
        generating, go = held_generation(system, monkeypatch)
        base, srv, serving = started(system, max_waiting=1)
        service = srv.config.app.state.service
        answers: dict[str, tuple[int, str]] = {}

        def ask(name: str) -> None:
            answers[name] = call(base, CHAT, asking())

        threads = [threading.Thread(target=ask, args=(name,)) for name in ("first", "second")]
        threads[0].start()
        assert generating.wait(30)
        threads[1].start()
        deadline = time.monotonic() + 30
        while service.waiting < 1:  # the second waits its turn
            assert time.monotonic() < deadline
            time.sleep(0.01)
        request = urllib.request.Request(base + CHAT, json.dumps(asking()).encode(), HEADERS)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        error = json.loads(refused.value.read())["error"]
        assert refused.value.code == 503 and error["code"] == "server_busy", error
        assert "1 request(s) already wait their turn" in error["message"]
        # the openai client waits that long before it sends it again (it had no Retry-After)
        assert refused.value.headers["Retry-After"] == "1"  # no generation's time known yet
        go.set()
        for t in threads:
            t.join(60)
        assert [answers[n][0] for n in ("first", "second")] == [200, 200]
        assert 0 < service.generated_s < 30  # the second's: how long it was held, then ran
        service.generated_s = 0.2  # at least 1 s
        assert service.busy(1).headers["Retry-After"] == "1"
        service.generated_s = 7.2  # a generation's time, rounded up: one frees a place
        assert service.busy(1).headers["Retry-After"] == "8"
        service.generated_s = 3600.0  # at most 60 s: the openai client ignores a longer one
        assert service.busy(1).headers["Retry-After"] == "60"
        assert chat(base)["choices"]  # nobody waits now: answered
        srv.should_exit = True
        serving.join(30)
        # an open system (a closed one is refused first, whatever the options)
        with pytest.raises(RouterLLMError, match="--max-waiting must be a whole number >= 0"):
            server_app.create_app(system, max_waiting=True)  # type: ignore[arg-type]


def test_a_client_gone_while_waiting_is_seen_as_it_leaves(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that leaves while its request waits its turn (its own timeout) is no
    longer counted as waiting, at once: it held a place of --max-waiting until the
    generation before it ended (and, later, until the next look every POLL_S), and the
    request an openai client sends again as it leaves was refused 503 server_busy. Now
    it waits on its client's leaving as a generating request does: here POLL_S is 30 s,
    and the place is free at once."""
    monkeypatch.setattr(server_app, "POLL_S", 30.0)
    with RouterLLM(quiet_config) as system:
        generating, go = held_generation(system, monkeypatch)
        base, srv, serving = started(system, max_waiting=1)
        service = srv.config.app.state.service
        first = threading.Thread(target=call, args=(base, CHAT, asking()))
        first.start()
        assert generating.wait(30)
        body = json.dumps(asking()).encode()
        gone = half_sent(base, body, len(body))  # all of it: it waits its turn
        deadline = time.monotonic() + 30
        while service.waiting < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        gone.close()
        left = time.monotonic()
        while service.waiting > 0 and time.monotonic() < left + 10:
            time.sleep(0.01)
        took = time.monotonic() - left
        go.set()
        first.join(60)
        srv.should_exit = True
        serving.join(30)
        assert took < 2.0, f"{took:.2f} s from the client's leaving to its place's release"
        assert system.log.count() == 1  # the one gone was not answered


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_a_client_gone_while_its_answer_generates_stops_the_generation(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    """A client that left (its own timeout: the openai client then sends it again) while
    its answer was generated held the turn until the model reached max_tokens, everyone
    behind it waiting, energy spent on an answer nobody received. Now the generation
    stops between two tokens, is logged as cancelled for what it spent, is not cached, and
    the next request is served. (A stream's events come once the answer is whole: a client
    leaving a stream before its first event is the same case.)"""
    monkeypatch.setattr(server_app, "POLL_S", 0.05)
    quiet_config.cache.enabled = True
    with RouterLLM(quiet_config) as system:
        backend = system.manager.backend("tiny-light")  # the "smallest" router's
        backend.load()
        llm, sampled, generating = backend._llm, [], threading.Event()
        sample = llm.sample

        def paused(*args: Any, **kwargs: Any) -> Any:
            """The real model's token; at the first answer's 5th, wait for the server to
            see its client gone (tokens, not seconds: the tiny model is fast)."""
            token = sample(*args, **kwargs)
            sampled.append(token)
            if len(sampled) == 5:
                generating.set()
                held_until_told(30)
            return token

        monkeypatch.setattr(llm, "sample", paused)
        base, srv, serving = started(system)
        body = json.dumps(asking(max_tokens=300, stream=stream)).encode()
        gone = half_sent(base, body, len(body))
        assert generating.wait(30)
        gone.close()
        status, text = call(base, CHAT, asking(max_tokens=300))  # the same request, again
        srv.should_exit = True
        serving.join(30)
        assert status == 200, text
        rows = list(system.log.records())
        assert [r.finish_reason for r in rows] == [CANCELLED, "length"]
        assert rows[0].completion_tokens < 10 and rows[1].completion_tokens == 300
        # generated again, not answered from the cache: nothing of the first was kept
        assert rows[1].components["llm_inference"].method != CACHED
        assert json.loads(text)["usage"]["completion_tokens"] == 300
        assert srv.config.app.state.service.unsent == 0  # a stop is held for none (serve())


def test_a_client_gone_while_the_cascade_checks_its_answer_frees_the_turn_at_once(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that left while the cascade ran its answer on the request's examples (an
    answer that never returns) held the turn until the check's cascade.timeout_s, the next
    request waiting behind it (until 2026-12-06). Now the check's program is killed as the
    server sees the client gone, and the answer is logged as its model gave it, not
    escalated."""
    from routerllm.backends.llama_cpp import LlamaCppBackend
    from routerllm.eval.sandbox import run_program

    from .test_cascade import REQUEST

    monkeypatch.setattr(server_app, "POLL_S", 0.05)
    quiet_config.cascade.enabled = True
    quiet_config.cascade.timeout_s = 10.0
    assert run_program("pass").passed  # the sandbox's probe, once a process: not the check's
    generate, answered = LlamaCppBackend.generate, threading.Event()
    hangs = "```python\ndef add(a, b):\n    while True:\n        pass\n```"

    def first_answer_hangs(self: Any, request: Any) -> Any:
        completion = generate(self, request)
        if answered.is_set():
            return completion
        answered.set()
        return dataclasses.replace(completion, text=hangs)

    monkeypatch.setattr(LlamaCppBackend, "generate", first_answer_hangs)
    with RouterLLM(quiet_config) as system:
        base, srv, serving = started(system)
        body = json.dumps(asking(("user", REQUEST), max_tokens=8)).encode()
        gone = half_sent(base, body, len(body))
        assert answered.wait(30)
        time.sleep(0.5)  # its examples running in the sandbox
        gone.close()
        left = time.monotonic()
        status, text = call(base, CHAT, asking(max_tokens=3))  # no examples: not checked
        waited_s = time.monotonic() - left
        srv.should_exit = True
        serving.join(30)
        assert status == 200, text
        assert waited_s < 5, f"the next request waited {waited_s:.1f} s"
        rows = list(system.log.records())
        assert [(r.model, r.finish_reason) for r in rows] == [("tiny-light", "length")] * 2
        assert system.manager.loaded_models == ["tiny-light"]


def test_an_api_key_beyond_ascii_is_compared_as_utf8_without_spaces_around(
    quiet_config: AppConfig,
) -> None:
    with RouterLLM(quiet_config) as system, running(system, api_key=" clé ") as base:
        host, port = base.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.putrequest("GET", "/v1/models")
        connection.putheader("Authorization", "Bearer clé".encode())  # as curl sends it
        connection.endheaders()
        assert connection.getresponse().status == 200


@pytest.mark.parametrize("key", ["voilà", "ASÅ"])
def test_an_api_key_whose_utf8_ends_in_a_latin1_space_byte_is_let_in(
    quiet_config: AppConfig, key: str
) -> None:
    """The header's bytes arrive as latin-1 text: the last byte of "à" (C3 A0) reads as
    a no-break space and of "Å" (C3 85) as NEL, both of which str.strip() took off, so
    the right key (as curl or a routerllm client sends it) was refused with 401."""
    with RouterLLM(quiet_config) as system, running(system, api_key=key) as base:
        host, port = base.removeprefix("http://").split(":")
        for sent, status in ((key, 200), (key[:-1], 401)):
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            connection.putrequest("GET", "/v1/models")
            connection.putheader("Authorization", f"Bearer {sent} ".encode())
            connection.endheaders()
            assert connection.getresponse().status == status, sent
            connection.close()


def test_an_empty_api_key_is_refused_not_matched_by_a_bare_bearer_header(
    quiet_config: AppConfig,
) -> None:
    """An empty key (an unset variable read with a default of "") would let in any request
    that sends ``Authorization: Bearer`` with nothing after it."""
    with RouterLLM(quiet_config) as system:
        for key in ("", "  \n"):
            with pytest.raises(RouterLLMError, match="api_key is empty"):
                server_app.create_app(system, api_key=key)
        with pytest.raises(RouterLLMError, match=r"api_key must be text \(None: no key\), got bytes$"):  # fmt: skip
            server_app.create_app(system, api_key=b"s3cret")  # type: ignore[arg-type]


# -- the command --------------------------------------------------------------
def serve_command(
    config: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    entry: tuple[str, ...] = ("-m", "routerllm.cli"),
    stdout: int = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
    nofile: tuple[int, int] | None = None,
    stdin: int | None = None,
) -> subprocess.Popen[str]:
    """``routerllm serve`` on ``config`` and a free port, run by ``python *entry``, its
    stdout to ``stdout`` (a pipe read by the test, by default), its stderr to ``stderr``,
    its stdin from ``stdin`` (the test's, by default); ``nofile``: its (soft, hard)
    ``RLIMIT_NOFILE`` as it starts."""

    def started_as_from_a_shell() -> None:
        hangup_default()
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    return subprocess.Popen(
        [
            sys.executable,
            *entry,
            "serve",
            "--config",
            str(config),
            "--port",
            "0",
            *extra,
        ],  # fmt: skip
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=started_as_from_a_shell,
    )


def served_address(process: subprocess.Popen[str]) -> tuple[str, int]:
    """The (host, port) a ``serve_command(..., "--json")`` process says it listens on."""
    assert process.stdout is not None
    host, port = json.loads(process.stdout.readline())["url"][7:-3].split(":")
    return host, int(port)


def hangup_default() -> None:
    """SIGHUP at its default in a server the tests start, as a shell at a terminal starts
    one: a suite run under `nohup` hands its children SIGHUP ignored, which a server
    keeps (it outlives its terminal then), and the tests that send it SIGHUP waited."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_serve_answers_and_stops_cleanly(tmp_path: Path, stop: signal.Signals, code: int) -> None:
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    process = serve_command(config, "--json", env={"ROUTERLLM_API_KEY": "k"})
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["models"] == ["tiny-light", "tiny-medium", "tiny-heavy"]
        base = info["url"].removesuffix("/v1")
        status, text = call(base, CHAT, asking(), headers={"Authorization": "Bearer k"})
        assert status == 200, text
    finally:
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert "server stopped; every answered request is in the log" in stderr
    with RouterLLM(load_config(config)) as system:
        assert len(list(system.log.records(tag="server"))) == 1


def test_serve_whose_ready_line_has_no_reader_stops_quietly(tmp_path: Path) -> None:
    # `routerllm serve | true`: the ready line's BrokenPipeError was a traceback from the
    # thread that printed it, and the server went on serving, its line never read
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the server starts
    try:
        process = serve_command(config, stdout=write)
    finally:
        os.close(write)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 141 and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("stdout", ["closed", "terminal"])
def test_serve_logs_to_stderr_as_stderr_is_whatever_stdout_is(tmp_path: Path, stdout: str) -> None:
    # uvicorn coloured its log lines, on stderr, when stdout was a terminal: `serve
    # 2>server.log` wrote escape codes into the file; with stdout closed (`>&-`, as a
    # daemon may run it) it asked the missing stdout and ended in a traceback
    from .conftest import free_port

    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    port = free_port()
    terminal, out = os.openpty() if stdout == "terminal" else (None, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", "serve", "--config", str(config), "--port", str(port)],  # fmt: skip
        stdout=out, stderr=subprocess.PIPE, text=True,
        preexec_fn=(lambda: os.close(1)) if out is None else None,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                status, _ = call(f"http://127.0.0.1:{port}", "/v1/models", method="GET")
                break
            time.sleep(0.2)
        assert process.poll() is None and status == 200
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        for fd in (terminal, out):
            if fd is not None:
                os.close(fd)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert '"GET /v1/models HTTP/1.1" 200 OK' in stderr and "\x1b[" not in stderr, stderr


def test_serve_whose_terminal_hangs_up_stops_with_status_0(tmp_path: Path) -> None:
    """The terminal closed (an ssh session lost): SIGHUP, and stderr gone with it. The
    closing line's failed write was an error, then a traceback, status 1."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    terminal, out = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", "serve", "--config", str(config), "--port", "0", "--json"],  # fmt: skip
        stdout=out, stderr=out, preexec_fn=hangup_default,
    )  # fmt: skip
    os.close(out)
    try:
        said = b""
        while b'"url"' not in said:
            said += os.read(terminal, 4096)
    finally:
        os.close(terminal)  # the terminal is gone: writing to it fails (EIO)
        process.send_signal(signal.SIGHUP)
        process.wait(60)
    assert process.returncode == 0


def test_serve_whose_terminal_hangs_up_before_its_ready_line_stops_with_status_0(
    tmp_path: Path,
) -> None:
    """The terminal gone before the ready line is written (or while it is: the SIGHUP that
    follows a hangup may come after the write's EIO): the write's EIO stopped the server
    with 'error: the output could not be written to stdout', status 1. A hangup, not an
    error: it stops as SIGHUP does."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    terminal, out = os.openpty()
    os.close(terminal)  # hung up before the server starts: every write to it fails (EIO)
    try:
        process = serve_command(config, "--json", stdout=out)
    finally:
        os.close(out)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    assert "server stopped; every answered request is in the log" in stderr, stderr


def test_serve_started_with_sighup_ignored_outlives_its_terminal(tmp_path: Path) -> None:
    """`nohup routerllm serve &`: SIGHUP ignored, as nohup sets it, the server must outlive
    its terminal; serve put its own handler in, and a closing terminal stopped it."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", "serve", "--config", str(config), "--port", "0", "--json"],  # fmt: skip
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base = json.loads(process.stdout.readline())["url"].removesuffix("/v1")
        process.send_signal(signal.SIGHUP)
        time.sleep(1.5)  # a stop polls within a second
        assert process.poll() is None and call(base, "/health")[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 0


def test_serve_warns_when_no_available_model_is_within_the_cap(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path, carbon={"enabled": False}, budgets={"max_params_b": 0.5})
    for model in data["models"][:2]:  # the two within the cap cannot run here
        model["gguf"] = {"path": str(tmp_path / "missing.gguf")}
    process = serve_command(write_config(tmp_path, data), "--json")
    try:
        assert process.stdout is not None
        base = json.loads(process.stdout.readline())["url"].removesuffix("/v1")
        assert call(base, CHAT, asking(model="tiny-heavy"))[0] == 200
        status, text = call(base, CHAT, asking())
        assert status == 503 and "within the budgets' cap of 0.5B" in text, text
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert "warning: no available model is within the budgets' cap of 0.5B" in stderr, stderr
    assert "model 'auto' is refused until one is" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_stopping_refuses_a_request_still_arriving(tmp_path: Path, stop: signal.Signals) -> None:
    """SIGHUP (the terminal it ran in closed, ``kill -HUP``) stops the server as SIGTERM
    does: it ended the process at once, the request in progress cut, unanswered and unlogged."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    process = serve_command(config, "--json")
    try:
        assert process.stdout is not None
        base = json.loads(process.stdout.readline())["url"].removesuffix("/v1")
        with half_sent(base, b'{"messages": ', 100) as sock:
            time.sleep(0.3)
            stop_sent = time.monotonic()
            process.send_signal(stop)
            status, body = answer_on(sock)
        assert status == 503 and body["error"]["code"] == "server_stopping"
    finally:
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and time.monotonic() - stop_sent < 10, stderr
    assert "Traceback" not in stderr and "server stopped;" in stderr, stderr


@pytest.mark.parametrize("delay_s", [0.3, 1.0, 2.0])
def test_a_sigterm_while_starting_stops_quietly_and_the_ready_line_means_ready(
    tmp_path: Path, delay_s: float
) -> None:
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    process = serve_command(config, "--json")
    time.sleep(delay_s)  # some time while Python, the system or uvicorn start
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr and process.returncode in (0, -signal.SIGTERM), stderr
    if stdout:  # it said it was ready: then it was serving, and stopped as a server stops
        url = json.loads(stdout.splitlines()[0])["url"]
        assert url.startswith("http://127.0.0.1:") and process.returncode == 0


def refused_serve(
    monkeypatch: pytest.MonkeyPatch, config: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``routerllm serve`` on ``config`` and a free port, run in this process, for what
    it says of a mistake it refuses before serving (what a process adds, signals and
    descriptors, the tests above check): a serve that started instead fails the test,
    where it would have served here until killed."""
    from routerllm.server import serving

    def served(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("serve started: the mistake was not refused")

    monkeypatch.setattr(serving, "serve", served)
    return cli_in_process("serve", "--config", str(config), "--port", "0", *extra)


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (("--host", "no-such-host.invalid"), {}, "cannot listen on no-such-host.invalid"),
        ((), {"ROUTERLLM_API_KEY": " "}, "ROUTERLLM_API_KEY is empty"),
        (("--router", "psychic"), {}, "unknown router 'psychic'"),
        (("--cors-origin", "http://localhost:3000/"), {}, "is not an origin: give scheme://"),
    ],
)
def test_serve_refuses_a_mistake_in_one_line(
    tiny_config_path: Path,
    extra: tuple[str, ...],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    refused = refused_serve(monkeypatch, tiny_config_path, *extra)
    assert refused.returncode == 2 and refused.stdout == ""
    stderr = refused.stderr
    assert stderr.startswith("error: ") and message in stderr and stderr.count("\n") == 1, stderr


def test_serve_with_no_model_that_can_run_leaves_no_log_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start refused for its models created the request log (and the carbon folder)
    first: a server that never served left an empty log where the config points."""
    data = tiny_config_dict(tmp_path)
    for model in data["models"]:
        model["gguf"] = {"path": str(tmp_path / "missing.gguf")}
    config = write_config(tmp_path, data)
    refused = refused_serve(monkeypatch, config)
    stdout, stderr = refused.stdout, refused.stderr
    assert refused.returncode == 2 and stdout == "", stderr
    assert stderr.startswith("error: no configured model can run here (tiny-light: ")
    assert stderr.count("\n") == 1, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (("--host", "no-such-host.invalid"), "cannot listen on no-such-host.invalid"),
        (("--port", "busy"), "cannot listen on 127.0.0.1:"),
    ],
)
def test_serve_checks_the_address_before_the_system_is_set_up(
    tiny_config_path: Path, address: tuple[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad address was said only once the models and router had loaded (minutes for
    real models): here the router is unknown too, and the address is said first."""
    with listen("127.0.0.1", 0) as taken:
        port = str(taken.getsockname()[1])
        extra = [port if a == "busy" else a for a in address]
        refused = refused_serve(monkeypatch, tiny_config_path, *extra, "--router", "psychic")
    stderr = refused.stderr
    assert refused.returncode == 2 and message in stderr, stderr
    assert "psychic" not in stderr and stderr.count("\n") == 1, stderr


@pytest.mark.skipif(not socket.has_dualstack_ipv6(), reason="no IPv6 here")
def test_listening_on_every_ipv6_address_takes_ipv4_clients_too() -> None:
    """``serve --host ::`` (every address, as uvicorn's own --host :: listens on Linux)
    refused every IPv4 client: the socket was made IPv6-only. A given IPv6 address
    (::1) is still that address alone."""
    with listen("::", 0) as sock:
        port = sock.getsockname()[1]
        for client in ("127.0.0.1", "::1"):
            socket.create_connection((client, port), timeout=5).close()
    with listen("::1", 0) as sock, pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", sock.getsockname()[1]), timeout=5).close()


def test_a_busy_port_is_one_line(tiny_config_path: Path) -> None:
    sock = listen("127.0.0.1", 0)
    with sock:
        port = str(sock.getsockname()[1])
        process = serve_command(tiny_config_path, "--port", port)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in stderr, stderr


# -- reading the API's requests -------------------------------------------------
def test_logprobs_left_unset_is_accepted_for_chat_and_completions() -> None:
    """null or false (what clients send by default), and top_logprobs 0, ask for none."""
    for body in ({"logprobs": None}, {"logprobs": False}, {"logprobs": False, "top_logprobs": 0}):
        assert protocol.chat_call(asking(("user", "Hi"), **body)).request.prompt == "Hi"
        assert protocol.completion_call({"prompt": "Hi", **body}).request.prompt == "Hi"
    with pytest.raises(PromptError, match="^logprobs: .* does not support log probabilities$"):
        protocol.completion_call({"prompt": "Hi", "logprobs": 0})


def test_web_search_and_moderation_left_null_are_accepted() -> None:
    """null is unset, as in every body; any object (``{}`` too) asks for them: a 400."""
    body = asking(("user", "Hi"), web_search_options=None, moderation=None)
    assert protocol.chat_call(body).request.prompt == "Hi"
    for name in ("web_search_options", "moderation"):
        with pytest.raises(PromptError, match=f"^{name}: .* does not support") as refused:
            protocol.chat_call(asking(("user", "Hi"), **{name: {}}))
        assert refused.value.param == name


# vLLM's and llama-server's own fields that would change the answer, and a value of each
OTHER_SERVERS_FIELDS: dict[str, Any] = {
    "guided_json": {"type": "object"},
    "guided_regex": "[0-9]+",
    "guided_choice": ["yes", "no"],
    "guided_grammar": 'root ::= "x"',
    "structured_outputs": {"json": {"type": "object"}},
    "grammar": 'root ::= "x"',
    "json_schema": {"type": "object"},
    "n_predict": 4,
    "repeat_penalty": 1.1,
    "min_tokens": 5,
    "ignore_eos": True,
    "stop_token_ids": [2],
    "bad_words": ["no"],
    "allowed_token_ids": [5, 6],
    "use_beam_search": True,
    "include_stop_str_in_output": True,
    "prompt_logprobs": 0,
    "n_probs": 3,
}


@pytest.mark.parametrize(("name", "value"), OTHER_SERVERS_FIELDS.items())
def test_other_servers_fields_that_change_the_answer_are_refused_not_ignored(
    name: str, value: Any
) -> None:
    """A client written for vLLM or llama-server sends these (a schema or grammar the text
    must follow, a length, those servers' names for options honoured here): as unknown
    fields they were accepted and unused, and the answer, free text of the config's
    length, was not the one asked for (the audit of the server, 2026-12-05)."""
    for parse, body in ((protocol.chat_call, asking(("user", "Hi"))), (protocol.completion_call, {"prompt": "Hi"})):  # fmt: skip
        with pytest.raises(PromptError, match=f"^{name}: RouterLLM's server does not support ") as refused:  # fmt: skip
            parse({**body, name: value})
        assert refused.value.param == name


def test_other_servers_fields_left_unset_are_accepted() -> None:
    """null, false, 0 or an empty list asks for nothing (a client's defaults); a prompt's
    log probabilities are asked for by any number, 0 too (vLLM: the prompt's own tokens')."""
    unset = {"guided_json": None, "ignore_eos": False, "stop_token_ids": [], "min_tokens": 0}
    unset |= {"use_beam_search": False, "n_predict": None, "n_probs": 0, "prompt_logprobs": None}
    assert protocol.chat_call(asking(("user", "Hi"), **unset)).request.prompt == "Hi"
    assert protocol.completion_call({"prompt": "Hi", **unset}).request.prompt == "Hi"


def test_other_servers_names_for_options_honoured_here_say_the_name_to_send() -> None:
    for name, ours in (("n_predict", "max_tokens"), ("repeat_penalty", "repetition_penalty")):
        with pytest.raises(PromptError, match=f"send {ours}"):
            protocol.completion_call({"prompt": "Hi", name: OTHER_SERVERS_FIELDS[name]})


def test_chat_messages_become_system_history_and_prompt() -> None:
    c = protocol.chat_call(
        {
            "model": "tiny-heavy",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "developer", "content": "Use Python."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Sort"},
                        {"type": "text", "text": "a list"},
                    ],
                },  # fmt: skip
            ],
            "max_tokens": 7,
            "max_completion_tokens": 9,
            "stop": "\n\n",
            "seed": 3,
            "user": "u1",
        }
    )
    r = c.request
    assert (c.kind, c.model, c.stream) == ("chat", "tiny-heavy", False)
    assert r.prompt == "Sort\na list" and r.system == "Be brief.\n\nUse Python."
    assert r.history == (("user", "Hi"), ("assistant", "Hello"))
    assert r.max_new_tokens == 9 and r.stop == ["\n\n"] and not r.raw
    assert protocol.chat_call({"messages": [{"role": "user", "content": "x"}]}).model is None
    done = protocol.completion_call({"model": "auto", "prompt": "def f(", "stream": True})
    assert done.request.raw and done.stream and not done.include_usage and done.model is None


def test_a_requests_seed_is_honoured(served: tuple[str, RouterLLM]) -> None:
    """The API's seed was accepted and unused (the config's applied): every seed gave
    the same sampled answer. Now the same seed gives the same answer, another another."""
    base, _ = served

    def text(seed: int) -> str:
        answer = chat(base, "Tell a story.", temperature=2, max_tokens=8, seed=seed)
        return str(answer["choices"][0]["message"]["content"])

    assert text(1) == text(1)
    assert len({text(1), text(2), text(3)}) > 1
    # OpenAI's API takes any 64-bit seed: one beyond llama.cpp's 32 bits was a 400; now
    # its low 32 bits, -1 (2**32 - 1, llama.cpp's "random" seed) a fixed one too
    assert text(-1) == text(-1) == text(2**32 - 1) and text(2**32 + 1) == text(1)
    assert len({text(-(2**63)), text(2**63 - 1), text(-2)}) > 1
    for seed, kind in ((2**63, "9223372036854775808"), (-(2**63) - 1, "-9223372036854775809"), (1.5, "1.5"), ("7", "'7'"), (True, "True")):  # fmt: skip
        status, body = call(base, CHAT, asking(seed=seed))
        error = json.loads(body)["error"]
        assert status == 400 and error["param"] == "seed" and kind in error["message"], body
        assert "from -2**63 to 2**63 - 1" in error["message"] or "whole number" in error["message"]


def test_a_requests_top_k_and_min_p_are_honoured(served: tuple[str, RouterLLM]) -> None:
    """top_k and min_p, which vLLM and llama-server take beside OpenAI's fields, were
    accepted and unused (llama.cpp's own 40 and 0.05 applied). Kept to the likeliest
    token, a hot sampled answer is the greedy one, whatever its seed; vLLM's -1 is no
    filter, as 0 is."""
    base, _ = served

    def texts(**fields: Any) -> set[str]:
        return {
            chat(base, "Tell a story.", max_tokens=4, seed=seed, **fields)["choices"][0]["message"]["content"]
            for seed in (1, 2, 3)
        }  # fmt: skip

    [greedy] = texts(temperature=0)
    assert len(texts(temperature=2)) > 1
    assert texts(temperature=2, top_k=1) == texts(temperature=2, min_p=1) == {greedy}
    assert texts(temperature=2, top_k=-1) == texts(temperature=2, top_k=0) != {greedy}
    done = protocol.completion_call({"prompt": "def f(", "top_k": 5, "min_p": 0.25})
    assert (done.request.top_k, done.request.min_p) == (5, 0.25)
    for field, value, said in (
        ("top_k", 1.5, "top_k must be a whole number"),
        ("top_k", -2, "top_k must be a whole number >= 0 (0 or -1: no filter)"),
        ("min_p", "0.1", "min_p must be a number"),
        ("min_p", 2, "0 <= min_p <= 1"),
    ):
        status, body = call(base, CHAT, asking(**{field: value}))
        error = json.loads(body)["error"]
        assert status == 400 and error["param"] == field and said in error["message"], body


@pytest.mark.parametrize("tokens", ["0", "-1"])
def test_the_server_overhead_benchmark_refuses_a_max_tokens_below_one(
    tokens: str, tmp_path: Path
) -> None:
    """--max-tokens 0 loaded the model and started the server, then died with a
    PromptError traceback on the warm-up request."""
    out = benchmark_in_process("server_overhead", "--config", str(tmp_path / "none.yaml"), "--max-tokens", tokens)  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    said = f"error: argument --max-tokens: {tokens} is out of range: give {MAX_NEW_TOKENS_RANGE}"
    assert out.stderr.strip().splitlines()[-1].endswith(said)


def test_the_server_overhead_benchmark_refuses_a_model_that_cannot_run_here(
    tmp_path: Path,
) -> None:
    """A --model whose file was missing started the server, then died with a
    ModelUnavailableError traceback on the warm-up request."""
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    data["models"][0]["gguf"] = {"path": str(tmp_path / "missing.gguf")}
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = benchmark_in_process("server_overhead", "--config", str(write_config(tmp_path, data)),
                               "--model", data["models"][0]["name"], "--n", "2", tmpdir=scratch)  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-500:]
    assert list(scratch.iterdir()) == []  # its scratch log's folder removed (until 2026-12-05 left)
    assert out.stderr.strip() == (
        f"error: model 'tiny-light' is not available here: file not found: {tmp_path / 'missing.gguf'}"
    )


def test_a_wrong_method_is_a_405_that_names_the_methods_allowed(served: tuple[str, RouterLLM]) -> None:  # fmt: skip
    """A 405 came without the Allow header that HTTP requires, and its message said only
    "Method Not Allowed", not which method the path takes."""
    base, _ = served
    for method, path, allowed in (("GET", CHAT, "POST"), ("POST", "/health", "GET, HEAD")):
        request = urllib.request.Request(base + path, data=b"{}" if method == "POST" else None, method=method)  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=60)
        error = json.loads(caught.value.read())["error"]
        assert caught.value.code == 405 and caught.value.headers["Allow"] == allowed
        assert error["message"] == f"{method} {path}: Method Not Allowed; {path} takes {allowed}"
        assert error["type"] == "invalid_request_error"


class _Waiting:
    """A request still connected, as ``take_turn`` asks (a real client cannot be
    placed between two steps of the event loop)."""

    async def is_disconnected(self) -> bool:
        return False

    async def receive(self) -> dict[str, Any]:  # the client never leaves
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")


def test_max_waiting_holds_while_the_turn_passes_to_the_next(quiet_config: AppConfig) -> None:
    """Between the turn's release and the next waiter taking it, the turn is free but
    that waiter is still counted as waiting: requests arriving then were let in past
    --max-waiting (here two waited with a cap of one); now the cap holds."""
    with RouterLLM(quiet_config) as system:
        service = server_app.create_app(system, max_waiting=1).state.service

        async def run() -> None:
            assert await service.take_turn(_Waiting()) is None  # the one generating
            second = asyncio.create_task(service.take_turn(_Waiting()))
            for _ in range(10):  # it waits for the lock
                await asyncio.sleep(0)
            assert service.waiting == 1 and not second.done()
            # they arrive in the same step of the loop as the release, before the next wakes
            third = asyncio.create_task(service.take_turn(_Waiting()))
            fourth = asyncio.create_task(service.take_turn(_Waiting()))
            service.end_turn()
            assert await second is None  # it holds the turn
            for _ in range(10):
                await asyncio.sleep(0)
            assert not third.done() and service.waiting == 1
            assert fourth.done(), "a second request waits past --max-waiting 1"
            refused = json.loads(fourth.result().body)["error"]
            assert refused["code"] == "server_busy", refused
            assert "1 request(s) already wait their turn" in refused["message"]
            third.cancel()  # its client gone: it leaves the line
            await asyncio.gather(third, return_exceptions=True)
            service.end_turn()
            assert service.in_line == 0 and not service.turn.locked()

        asyncio.run(run())


class _ClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when the test moves it."""

    now = 0.0

    def time(self) -> float:
        return self.now


def test_requests_waiting_their_turn_keep_their_place_in_line(quiet_config: AppConfig) -> None:
    """Each request waiting its turn looks every POLL_S whether its client has gone;
    that look sent it to the back of the line, so requests were answered in no order
    (one that came first could be overtaken again and again); now they keep theirs."""
    with RouterLLM(quiet_config) as system:
        service = server_app.create_app(system).state.service
        loop = _ClockLoop()

        async def settle() -> None:
            for _ in range(20):
                await asyncio.sleep(0)

        async def run() -> None:
            assert await service.take_turn(_Waiting()) is None  # the one generating
            first = asyncio.create_task(service.take_turn(_Waiting()))
            await settle()
            loop.now = 0.5 * server_app.POLL_S
            second = asyncio.create_task(service.take_turn(_Waiting()))
            await settle()
            loop.now = 1.2 * server_app.POLL_S  # the first looks whether its client is there
            await settle()
            service.end_turn()
            await settle()
            assert first.done() and not second.done(), "the second overtook the first"
            assert first.result() is None and service.waiting == 1
            service.end_turn()
            assert await second is None
            service.end_turn()

        try:
            loop.run_until_complete(run())
        finally:
            loop.close()


def test_max_waiting_counts_the_one_taking_the_turn_once(quiet_config: AppConfig) -> None:
    """Once the next request has the turn, and before it stops counting itself as
    waiting, it was counted twice (generating and waiting): a request arriving then was
    refused with 503 server_busy with nobody else waiting; now it waits its turn."""
    with RouterLLM(quiet_config) as system:
        service = server_app.create_app(system, max_waiting=1).state.service

        async def run() -> None:
            assert await service.take_turn(_Waiting()) is None  # the one generating
            second = asyncio.create_task(service.take_turn(_Waiting()))
            for _ in range(10):
                await asyncio.sleep(0)
            service.end_turn()
            await asyncio.sleep(0)  # the second's acquire has the turn; it has not woken yet
            third = asyncio.create_task(service.take_turn(_Waiting()))
            for _ in range(10):
                await asyncio.sleep(0)
            assert not third.done(), json.loads(third.result().body)
            assert second.done() and second.result() is None and service.waiting == 1
            service.end_turn()
            assert await third is None
            service.end_turn()
            assert service.in_line == 0 and not service.turn.locked()

        asyncio.run(run())


def test_a_path_with_a_trailing_or_doubled_slash_is_served_as_the_path_without_it(
    served: tuple[str, RouterLLM],
) -> None:
    """Starlette answered ``POST /v1/chat/completions/`` (or ``/v1//chat/completions``,
    a base_url ending in "/" joined with "/chat/completions") with a 307 redirect and no
    body: urllib and curl, which follow no redirect of a POST, saw no OpenAI error; the
    openai client, which does, sent its body twice, to a URL built from the Host header.
    ``GET /v1/models/`` was "unknown model ''"."""
    base, _ = served
    body = asking(max_tokens=1)
    for path in (CHAT + "/", "/v1//chat/completions", "//v1/chat/completions//"):
        status, text = call(base, path, body)
        assert status == 200 and json.loads(text)["object"] == "chat.completion", (path, text)
    status, text = call(base, "/v1/completions/", {"prompt": "x", "max_tokens": 1})
    assert status == 200 and json.loads(text)["object"] == "text_completion", text
    status, text = call(base, "/v1/models/")
    assert status == 200 and json.loads(text)["data"][0]["id"] == "auto", text
    assert call(base, "/v1/models/auto/") == (200, call(base, "/v1/models/auto")[1])
    assert call(base, "/health/") == (200, '{"status":"ok"}')
    assert call(base, "/health/", method="HEAD") == (200, "")
    # what no endpoint takes, with the slashes or without, is still the JSON 404 or 405
    for path, status, message in (
        ("/v1/embeddings/", 404, "POST /v1/embeddings/: Not Found"),
        ("/chat/completions/", 404, "the API is under /v1: POST /v1/chat/completions (an OpenAI"),
    ):
        got, text = call(base, path, body)
        assert got == status and message in json.loads(text)["error"]["message"], text
    got, text = call(base, CHAT + "/")
    assert got == 405 and "GET /v1/chat/completions: Method Not Allowed" in text, text


def test_a_body_not_declared_as_json_is_a_415_and_is_not_run(
    served: tuple[str, RouterLLM],
) -> None:
    """A JSON body sent as text/plain, as a form or with no Content-Type was answered: a
    browser page on any origin sends those without a CORS preflight, so that any page
    open in a browser could make a local server without a key generate (as FastAPI's
    strict_content_type refuses them). A compressed body read as JSON was "not valid
    JSON ('utf-8' codec can't decode byte 0x8b ...)"."""
    import gzip

    base, system = served
    body = json.dumps(asking(max_tokens=1)).encode()
    text, form = {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    before = system.log.count()
    cases = [
        (CHAT, text, body, "Content-Type must be application/json, got 'text/plain'"),
        (CHAT, form, body, "got 'application/x-www-form-urlencoded'"),
        (
            "/v1/completions",
            {"Content-Type": "multipart/form-data; boundary=x"},
            body,
            "got 'multipart/form-data",
        ),  # fmt: skip
        (
            "/routerllm/feedback",
            text,
            b'{"request_id": "x", "score": 1}',
            "Content-Type must be",
        ),  # fmt: skip
        (
            CHAT,
            {},
            body,
            "no Content-Type: send the body as JSON with Content-Type: application/json",
        ),  # fmt: skip
        (
            CHAT,
            {**HEADERS, "Content-Encoding": "gzip"},
            gzip.compress(body),
            "Content-Encoding 'gzip' is not supported: send the body uncompressed",
        ),  # fmt: skip
    ]
    host, port = base.removeprefix("http://").split(":")
    for path, headers, data, message in cases:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)  # adds no type
        try:
            connection.request("POST", path, data, headers)
            answer = connection.getresponse()
            status, error = answer.status, json.loads(answer.read())["error"]
        finally:
            connection.close()
        assert status == 415 and message in error["message"], (headers, error)
        assert (error["type"], error["code"]) == ("invalid_request_error", "unsupported_media_type")  # fmt: skip
    assert system.log.count() == before
    for kind in ("application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"):  # fmt: skip
        headers = {"Content-Type": kind, "Content-Encoding": "identity"}
        assert call(base, CHAT, raw=body, headers=headers)[0] == 200, kind


def exchange(base: str, request: str) -> tuple[int, dict[str, str], bytes]:
    """``request`` (its head, then no body) sent on a new connection: the answer's status,
    headers (names in lower case) and every byte after them, read until the server closes
    the connection (``Connection: close``, or the server's own closing)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request.encode())
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines)
    return int(status.split()[1]), {k.lower(): v for k, v in fields.items()}, body


def test_head_is_answered_as_get_is_without_the_body(quiet_config: AppConfig) -> None:
    """HEAD was a 405 on every GET endpoint but /health: HTTP (RFC 9110) wants a
    general-purpose server to answer HEAD wherever it answers GET, with GET's status and
    headers and no body. A wrong key's 401 stays a 401."""
    with RouterLLM(quiet_config) as system, running(system, api_key="s3cret") as base:
        host = base.removeprefix("http://")
        paths = ("/health", "/v1/models", "/v1/models/auto", "/v1/models/nope", "/routerllm/report")  # fmt: skip
        for path in paths:
            for key in ("s3cret", "wrong"):
                head = f"{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                head += "Connection: close\r\n\r\n"
                status, fields, body = exchange(base, f"GET {head}")
                assert (status, fields["content-length"]) == (
                    200 if path == "/health" or key == "s3cret" and "nope" not in path
                    else 404 if key == "s3cret" else 401,
                    str(len(body)),
                ), (path, key, body)  # fmt: skip
                got = exchange(base, f"HEAD {head}")
                assert got[0] == status, (path, key, got)
                assert {k: got[1][k] for k in ("content-length", "content-type")} == {
                    k: fields[k] for k in ("content-length", "content-type")
                }
                assert got[2] == b"", (path, key)
        # a POST to a GET endpoint: the 405 names HEAD too
        status, fields, _ = exchange(base, f"POST /v1/models HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer s3cret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")  # fmt: skip
        assert (status, fields["allow"]) == (405, "GET, HEAD")
        assert system.log.count() == 0


def test_an_expectation_other_than_100_continue_is_a_417_and_the_body_is_not_run(
    quiet_config: AppConfig,
) -> None:
    """``Expect: foo`` was ignored: the body read and the request run as if the client had
    asked nothing. RFC 9110 lets a server refuse an expectation it cannot meet with 417:
    now an OpenAI error, sent at once to a client that waits for 100 Continue (it then
    sends no body), else once the body is read and dropped, as a 401's is (a refusal sent
    sooner was lost to a reset, for a client still sending a large body). Only
    100-continue (in any case) goes on."""
    quiet_config.limits.max_prompt_chars = 10**6  # a body larger than the socket buffers
    with RouterLLM(quiet_config) as system, running(system, api_key="s3cret") as base:
        host = base.removeprefix("http://")
        body = json.dumps(asking(max_tokens=1)).encode()
        large = {"messages": [{"role": "user", "content": "x" * 12_000_000}]}
        for path, key, expect, data in (
            (CHAT, "s3cret", "foo", body),
            (CHAT, "wrong", "foo=bar", body),
            ("/health", "", "foo", body),
            (CHAT, "s3cret", "100-continue, foo", b""),  # it waits: no body is sent
        ):
            head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            head += f"Content-Type: application/json\r\nExpect: {expect}\r\nConnection: close\r\n"  # fmt: skip
            request = f"{head}Content-Length: {len(body)}\r\n\r\n{data.decode()}"
            status, fields, answer = exchange(base, request)
            error = json.loads(answer)["error"]
            assert status == 417, (expect, answer)
            assert (error["type"], error["code"]) == ("invalid_request_error", "expectation_failed")  # fmt: skip
            assert error["message"] == (
                f"Expect: {expect!r} cannot be met: this server meets 100-continue alone; "
                "send the request without it"
            )
        for method in ("POST", "PUT"):
            status, text = call(base, CHAT, large, headers={"Expect": "foo"}, method=method)
            assert status == 417 and "Expect: 'foo' cannot be met" in text, (method, text)
        status, _, answer = exchange(base, f"HEAD /health HTTP/1.1\r\nHost: {host}\r\nExpect: foo\r\nConnection: close\r\n\r\n")  # fmt: skip
        assert (status, answer) == (417, b"")
        assert_answered_after_continue(host, body, "100-Continue")
        assert system.log.count() == 1


def test_a_request_with_both_content_length_and_transfer_encoding_is_a_400_that_closes(
    quiet_config: AppConfig,
) -> None:
    """The audit of the server (2026-12-04): h11 (uvicorn's HTTP where httptools is not
    installed) read a request with both Content-Length and Transfer-Encoding by the
    latter, ran it, and kept the connection open for the bytes after it: behind a proxy
    that reads the body by Content-Length, a request smuggled in them was answered (RFC
    9112 6.3: refuse such a request, or close the connection after it). Now a 400, not
    run, and the connection closed: what came after it is never read as a request."""
    with RouterLLM(quiet_config) as system, running(system) as base:
        host = base.removeprefix("http://")
        body = json.dumps(asking(max_tokens=1)).encode()
        chunked = f"{len(body):x}\r\n{body.decode()}\r\n0\r\n\r\n"
        smuggled = f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        for method, path in (("POST", CHAT), ("GET", "/health")):
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            head += f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n"
            status, fields, answer = exchange(base, head + chunked + smuggled)
            error = json.loads(answer)["error"]  # one answer: the smuggled GET was not read
            assert (status, fields["connection"]) == (400, "close"), answer
            assert error["code"] == "malformed_request", error
            assert "both Content-Length and Transfer-Encoding" in error["message"]
        assert call(base, CHAT, asking(max_tokens=1))[0] == 200  # the server goes on
        assert system.log.count() == 1


class _Complaints(logging.Handler):
    """What the server's log says at WARNING or above, or with a traceback, from every
    logger: uvicorn's own ("Exception in ASGI application") do not reach the root's."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING or record.exc_info:
            self.records.append(record)

    @contextmanager
    def watching(self) -> Iterator[None]:
        loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "asyncio")]  # fmt: skip
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeHandler(self)


def _leave(sock: socket.socket, reset: bool) -> None:
    """``sock`` closed: at once with a reset (``reset``), else as a client normally does."""
    if reset:  # SO_LINGER 0: the close sends RST, as a killed client's machine does
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def test_clients_gone_while_waiting_their_turn_are_dropped_quietly(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An audit (nothing was wrong): clients that leave while their requests wait their
    turn (under --max-waiting; a stream or not; closed or reset) are dropped without a
    warning or a traceback, free their places at once, lose no row (they never ran), and
    the request in progress and those after it are answered and logged."""
    monkeypatch.setattr(server_app, "POLL_S", 0.1)
    complaints = _Complaints()
    with RouterLLM(quiet_config) as system:
        generating, go = held_generation(system, monkeypatch)
        base, srv, serving = started(system, max_waiting=3)
        service = srv.config.app.state.service
        with complaints.watching():
            answers: list[tuple[int, str]] = []
            first = threading.Thread(target=lambda: answers.append(call(base, CHAT, asking())))
            first.start()
            assert generating.wait(30)
            leaving = []
            for stream, reset in ((False, False), (True, True), (True, False)):
                body = json.dumps(asking(stream=stream)).encode()
                leaving.append((half_sent(base, body, len(body)), reset))
            deadline = time.monotonic() + 30
            while service.waiting < 3:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            for sock, reset in leaving:
                _leave(sock, reset)
            while service.waiting or service.in_line > 1:  # their places are free
                assert time.monotonic() < deadline, "a client gone still counts as waiting"
                time.sleep(0.01)
            go.set()
            first.join(60)
            assert answers and answers[0][0] == 200, answers
            assert chat(base)["choices"]
            srv.should_exit = True
            serving.join(30)
        assert (service.in_line, service.waiting, service.turn.locked()) == (0, 0, False)
        assert system.log.count() == 2
    assert not complaints.records, [r.getMessage() for r in complaints.records]


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_client_gone_mid_stream_stops_the_generation_leaves_its_row_and_no_traceback(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch, reset: bool
) -> None:
    """A client that leaves a stream after its first piece of text stops the generation
    between two tokens (the text comes as it is generated: the answer is not whole yet);
    its row is in the request log as cancelled, for what it spent, the server's log has
    no warning or traceback for it, and the next request is served. The model waits at
    its 3rd token until the server has seen the client leave (the client, in this
    process, may leave before the 2nd: then it stops after the 1st)."""
    complaints = _Complaints()
    with RouterLLM(quiet_config) as system:
        backend = system.manager.backend("tiny-light")  # the "smallest" router's
        backend.load()
        llm, sampled, sample, logged = backend._llm, [], backend._llm.sample, threading.Event()

        def paused(*args: Any, **kwargs: Any) -> Any:
            sampled.append(token := sample(*args, **kwargs))
            if len(sampled) == 3 and not logged.is_set():
                held_until_told(30)
            return token

        monkeypatch.setattr(llm, "sample", paused)
        base, srv, serving = started(system)
        with complaints.watching():
            body = json.dumps(asking(max_tokens=50, stream=True)).encode()
            sock = half_sent(base, body, len(body))
            seen = b""
            while b"data: " not in seen:
                seen += sock.recv(65536)
            assert seen.startswith(b"HTTP/1.1 200 "), seen
            _leave(sock, reset)
            deadline = time.monotonic() + 30
            while system.log.count() < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            logged.set()
            assert chat(base, max_tokens=1)["choices"]
            srv.should_exit = True
            serving.join(30)
        rows = list(system.log.records())
        assert [r.finish_reason for r in rows] == [CANCELLED, "length"]
        assert rows[0].completion_tokens in (1, 2) and rows[1].completion_tokens == 1
        assert srv.config.app.state.service.unsent == 0  # a stop is held for none (serve())
    assert not complaints.records, [r.getMessage() for r in complaints.records]


@contextlib.contextmanager
def _left_remote_stream(
    tmp_path: Path, reply: Reply, marker: bytes | None
) -> Iterator[tuple[RouterLLM, Stub, str, float]]:
    """Through ``routerllm serve``, a streamed request to an ``openai_http`` model whose
    endpoint sends ``reply``, its client gone once ``marker`` came (None: a request not
    streamed, its client gone once the endpoint has it): the system, the endpoint's stub,
    the server's base URL and when the client left. Nothing is warned of or logged as a
    traceback meanwhile."""
    complaints = _Complaints()
    with serving_stub() as stub:
        stub.default_post = reply
        # with energy figures: else its generation's method is estimate:no-figures
        models = [http_model_dict("remote", stub.base_url, energy_per_token_kwh=1e-6)]
        data = tiny_config_dict(tmp_path, models=models, carbon={"enabled": False})
        config = load_config(write_config(tmp_path, data))
        with RouterLLM(config) as system, running(system) as base, complaints.watching():
            body = json.dumps(asking(model="remote", stream=marker is not None)).encode()
            sock = half_sent(base, body, len(body))
            seen, deadline = b"", time.monotonic() + 30
            while marker is not None and marker not in seen:
                seen += sock.recv(65536)
            while marker is None and not stub.posts and time.monotonic() < deadline:
                time.sleep(0.01)
            assert seen.startswith(b"HTTP/1.1 200 ") if marker else stub.posts, seen
            _leave(sock, reset=False)
            yield system, stub, base, time.monotonic()
    assert not complaints.records, [r.getMessage() for r in complaints.records]


def test_a_client_gone_mid_stream_closes_an_openai_http_models_upstream_stream(
    tmp_path: Path,
) -> None:
    """Through ``routerllm serve``, an ``openai_http`` model's streamed answer whose
    client leaves after its first event: the server stops reading the endpoint's stream
    and closes that connection at its next event (the endpoint then stops generating),
    long before the stream's end; the request is logged as cancelled, its usage (which
    comes last) not known: its tokens estimated from its text (0 until 2026-12-06), said
    so by the report; no warning or traceback."""
    pieces = [delta("", role=True), *(delta(f"w{i} ") for i in range(100))]
    events = (*pieces, delta(finish="stop"), usage(5, 100), DONE)
    reply = Reply(200, b"", events=events, gap_s=0.05)  # 5 s in all
    with _left_remote_stream(tmp_path, reply, b"data: ") as (system, stub, base, _):
        deadline = time.monotonic() + 30
        while not (system.log.count() and stub.left_after) and time.monotonic() < deadline:
            time.sleep(0.02)
        [left] = stub.left_after
        assert left is not None and 0 < left < len(pieces), left  # closed mid-stream
        [row] = list(system.log.records())
        assert (row.model, row.finish_reason) == ("remote", CANCELLED)
        assert row.completion_tokens > 0 and row.components["llm_inference"].method == "estimate:from-text"  # fmt: skip
        status, text = call(base, "/routerllm/report")
        assert status == 200 and json.loads(text)["estimated_usage"] == {"remote": 1}, text


def test_a_client_gone_while_an_openai_http_models_endpoint_is_silent_stops_it_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``routerllm serve``, an ``openai_http`` model's streamed answer whose
    client leaves while the endpoint sends nothing (paused 5 s after its first piece):
    the upstream connection is closed as the client leaves (the endpoint sees it gone
    while it pauses), not at its next event, and the request is logged as cancelled
    (seen at once: POLL_S, here 30 s, plays no part)."""
    monkeypatch.setattr(server_app, "POLL_S", 30.0)
    events = (delta("", role=True), delta("w0 "), delta("w1 "), delta(finish="stop"), usage(5, 2), DONE)  # fmt: skip
    reply = Reply(200, b"", events=events, pause_after=2)
    with _left_remote_stream(tmp_path, reply, b"w0 ") as (system, stub, _, left):
        deadline = left + 30
        while not system.log.count() and time.monotonic() < deadline:
            time.sleep(0.02)
        took = time.monotonic() - left
        while not stub.left_after and time.monotonic() < deadline:
            time.sleep(0.02)
        assert took < 1.5, f"{took:.2f} s from the client's leaving to its row"
        assert stub.left_after == [2] and stub.resumed == [False]
        [row] = list(system.log.records())
        # "w0 ", its text so far: 2 tokens estimated (its usage never came): 3 characters at
        # the high guess of 0.5 tokens a character (no counted answer logged), more than
        # its 1 piece
        assert (row.model, row.finish_reason, row.completion_tokens) == ("remote", CANCELLED, 2)


def test_a_client_gone_while_an_openai_http_models_unstreamed_answer_comes_stops_it_at_once(
    tmp_path: Path,
) -> None:
    """Through ``routerllm serve``, an ``openai_http`` model's unstreamed answer whose
    client leaves while the endpoint generates (5 s before its answer): the upstream
    connection is closed as the client leaves (the endpoint, answering, finds it gone)
    and the request logged as cancelled, its usage not known (until 2026-12-05 the call
    ran to the endpoint's answer, a worker thread waiting on it for nobody)."""
    reply = dataclasses.replace(completion_reply("whole", prompt_tokens=4, tokens=1), delay_s=5.0)
    with _left_remote_stream(tmp_path, reply, None) as (system, stub, _, left):
        deadline = left + 30
        while not system.log.count() and time.monotonic() < deadline:
            time.sleep(0.02)
        took = time.monotonic() - left
        stub.release.set()  # the endpoint answers now, and notes whether its client is there
        while not stub.gone_after_delay and time.monotonic() < deadline:
            time.sleep(0.02)
        assert took < 1.5, f"{took:.2f} s from the client's leaving to its row"
        assert stub.gone_after_delay == [True]
        [row] = list(system.log.records())
        assert (row.model, row.finish_reason, row.completion_tokens) == ("remote", CANCELLED, 0)


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_a_client_gone_while_no_text_comes_stops_the_generation_at_once(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    """A client that left while its model sent no text (a slow token; a stream after its
    first piece) was seen at the next piece or after POLL_S (1 s), its model generating
    meanwhile for nobody (until 2026-12-05, since streams were sent in the request's own
    task: Starlette's listener saw it at once). Now the server waits on the client's
    leaving as on the text: here POLL_S is 30 s, and the model's next token waits 8 s at
    most to be told to stop; it is told at once."""
    monkeypatch.setattr(server_app, "POLL_S", 30.0)
    with RouterLLM(quiet_config) as system:
        backend = system.manager.backend("tiny-light")  # the "smallest" router's
        backend.load()
        llm, sample, generate = backend._llm, backend._llm.sample, system.generate
        texted, pausing, told_in_pause = threading.Event(), threading.Event(), []

        def telling(request: GenerationRequest, *args: Any, **kwargs: Any) -> Any:
            on_text = request.on_text
            if on_text is not None:
                request = dataclasses.replace(request, on_text=lambda p: (on_text(p), texted.set()))  # fmt: skip
            return generate(request, *args, **kwargs)

        def paused(*args: Any, **kwargs: Any) -> Any:
            token = sample(*args, **kwargs)
            if (texted.is_set() or not stream) and not pausing.is_set():
                pausing.set()
                told_in_pause.append(held_until_told(8))
            return token

        monkeypatch.setattr(system, "generate", telling)
        monkeypatch.setattr(llm, "sample", paused)
        base, srv, serving = started(system)
        body = json.dumps(asking(max_tokens=300, stream=stream)).encode()
        sock = half_sent(base, body, len(body))
        seen = b""
        while stream and b"data: " not in seen:
            seen += sock.recv(65536)
        assert pausing.wait(30)
        _leave(sock, reset=False)
        left, deadline = time.monotonic(), time.monotonic() + 30
        while not system.log.count() and time.monotonic() < deadline:
            time.sleep(0.02)
        took = time.monotonic() - left
        srv.should_exit = True
        serving.join(30)
        [row] = list(system.log.records())
        assert told_in_pause == [True], f"told to stop only after {took:.2f} s"
        assert row.finish_reason == CANCELLED and took < 4, (row.finish_reason, took)


async def _other_tasks() -> int:
    return len(asyncio.all_tasks()) - 1  # this one's aside


def test_answers_and_clients_gone_leave_no_task_behind(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server waits on a client's leaving in a task beside its request's: once each
    request has ended (an answer, a stream, a stream whose client left after its first
    piece, a client gone while its answer generated), the server's event loop holds as
    many tasks as before, and the process as many threads. The unstreamed client leaves
    once its generation has begun, which waits to be told to stop (it left before its
    turn, dropped unanswered, and the test waited 30 s for its row until 2026-12-05)."""
    with RouterLLM(quiet_config) as system:
        generate, generating, told = system.generate, threading.Event(), []

        def held(request: GenerationRequest, *args: Any, **kwargs: Any) -> Any:
            if request.on_text is None and request.max_new_tokens == 300:  # the one leaving
                generating.set()
                stopping, deadline = Cancellation(), time.monotonic() + 30
                while not stopping() and time.monotonic() < deadline:
                    time.sleep(0.01)
                told.append(stopping.stopped)
            return generate(request, *args, **kwargs)

        monkeypatch.setattr(system, "generate", held)
        base, srv, serving = started(system)
        loop = srv.servers[0].get_loop()

        def tasks() -> int:
            return asyncio.run_coroutine_threadsafe(_other_tasks(), loop).result(30)

        assert chat(base, max_tokens=2)["choices"]  # the generation's thread started
        before, threads = tasks(), threading.active_count()
        for stream in (False, True):
            status, text = call(base, CHAT, asking(max_tokens=4, stream=stream))
            assert status == 200, text
            body = json.dumps(asking(max_tokens=300, stream=stream)).encode()
            sock = half_sent(base, body, len(body))
            seen = b""
            while stream and b"data: " not in seen:
                seen += sock.recv(65536)
            assert stream or generating.wait(30)
            _leave(sock, reset=False)
        deadline = time.monotonic() + 30
        while (tasks(), system.log.count()) != (before, 5) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tasks(), threading.active_count(), system.log.count()) == (before, threads, 5)
        assert told == [True]
        srv.should_exit = True
        serving.join(30)


async def _cancelled(qualnames: set[str]) -> int:
    """The loop's tasks running one of ``qualnames`` cancelled, as the event loop's close
    (a second Ctrl-C) cancels every task; how many."""
    chosen = [
        t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") in qualnames
    ]
    for task in chosen:
        task.cancel()
    return len(chosen)


@pytest.mark.parametrize("after", ["client-gone", "loop-closed"])
def test_a_generating_request_waits_without_spinning(
    quiet_config: AppConfig, monkeypatch: pytest.MonkeyPatch, after: str
) -> None:
    """While its answer generates, a request waits on the generation and its client's
    leaving in one task beside it, and looks every POLL_S; once the client has gone (the
    model not yet stopped: between two tokens), on the generation alone; once the
    event loop's close (a second Ctrl-C) cancelled both, every POLL_S again, the answer
    still sent. It never spins: a wait on the listening task once done or cancelled
    returned at once, over and over, for as long as the model ran."""
    monkeypatch.setattr(server_app, "POLL_S", 0.2)
    looks: list[str] = []

    def counted(name: str) -> Any:
        real = getattr(bodies.Departure, name)

        def look(self: bodies.Departure) -> Any:
            looks.append(name)
            return real(self)

        return look

    for name in ("waiter", "gone"):
        monkeypatch.setattr(bodies.Departure, name, counted(name))
    with RouterLLM(quiet_config) as system:
        generate, generating, go, seen = system.generate, threading.Event(), threading.Event(), []

        def held(request: GenerationRequest, *args: Any, **kwargs: Any) -> Any:
            if request.max_new_tokens == 300:
                generating.set()
                go.wait(30)  # the client gone, or the loop closed, by now
                start = len(looks)
                time.sleep(1.0)  # the model between two tokens
                seen.append(len(looks) - start)
            return generate(request, *args, **kwargs)

        monkeypatch.setattr(system, "generate", held)
        base, srv, serving = started(system)
        loop = srv.servers[0].get_loop()
        before = asyncio.run_coroutine_threadsafe(_other_tasks(), loop).result(30)
        answers: list[tuple[int, str]] = []
        if after == "client-gone":
            body = json.dumps(asking(max_tokens=300)).encode()
            sock = half_sent(base, body, len(body))
        else:
            client = threading.Thread(target=lambda: answers.append(call(base, CHAT, asking(max_tokens=300))))  # fmt: skip
            client.start()
        assert generating.wait(30)
        time.sleep(1.0)  # five looks while it generates
        during = asyncio.run_coroutine_threadsafe(_other_tasks(), loop).result(30)
        if after == "client-gone":
            _leave(sock, reset=False)
            deadline = time.monotonic() + 10
            while looks[-1:] != ["gone"] and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)
        else:
            tasks = {"_disconnect", "RequestResponseCycle.run_asgi"}
            assert asyncio.run_coroutine_threadsafe(_cancelled(tasks), loop).result(30) == 2
        go.set()
        if after == "loop-closed":
            client.join(60)
            assert [status for status, _ in answers] == [200], answers
        deadline = time.monotonic() + 30
        while not system.log.count() and time.monotonic() < deadline:
            time.sleep(0.02)
        srv.should_exit = True
        serving.join(30)
        [row] = list(system.log.records())
    assert during == before + 2  # the request's task and the one waiting on its client
    assert seen and seen[0] <= 12, f"{seen} looks in 1 s, POLL_S 0.2 s"
    assert (row.finish_reason == CANCELLED) == (after == "client-gone"), row.finish_reason


@pytest.mark.parametrize(
    "request_text",
    [
        "GARBAGE\r\n\r\n",  # not a request line
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
    ],
    ids=["request-line", "content-length", "header"],
)
def test_a_request_that_is_not_http_gets_the_apis_json_error(
    served: tuple[str, RouterLLM], request_text: str
) -> None:
    """uvicorn answered a request it could not read as HTTP in plain text ("Invalid HTTP
    request received."), which an OpenAI client cannot parse as an error."""
    base, _ = served
    status, headers, body = exchange(base, request_text)
    assert status == 400 and headers["content-type"] == "application/json"
    assert headers["connection"] == "close" and int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "malformed_request"
    assert error["message"].startswith("malformed HTTP request: ")
    assert call(base, "/health")[0] == 200  # and the server goes on serving


# The close held until the test closes the process's stdin: once the second signal has
# been seen (a 1.5 s sleep, waited out whatever the signal's turn, until 2026-12-07).
CLOSING_SLOWLY = """
import sys
from routerllm import cli
from routerllm.system import RouterLLM
close = RouterLLM.close
def slow_close(self):
    print("closing", flush=True)
    sys.stdin.read()
    close(self)
    print("closed", flush=True)
RouterLLM.close = slow_close
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("again", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_while_the_server_closes_lets_the_close_finish(
    tmp_path: Path, again: signal.Signals
) -> None:
    """Once serving had stopped, SIGTERM and SIGHUP were back to their defaults while
    the system closed (the learning router saved, the log closed): a service manager's
    second SIGTERM then ended the process part-way through its close (until
    2026-12-05). They are held until the close is done now, and said to be."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    process = serve_command(config, "--json", entry=("-c", CLOSING_SLOWLY), stdin=subprocess.PIPE)  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    said: list[str] = []
    try:
        json.loads(process.stdout.readline())  # serving
        process.send_signal(signal.SIGTERM)
        assert process.stdout.readline() == "closing\n"
        process.send_signal(again)
        while "stopping already" not in (line := process.stderr.readline()):
            assert line, "".join(said)  # the process ended, the signal not held
            said.append(line)
        said.append(line)
        stdout, rest = process.communicate(timeout=60)  # its stdin closed: the close goes on
        stderr = "".join(said) + rest
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert stdout == "closed\n"
    assert "stopping already: closing the system first" in stderr
    assert "Traceback" not in stderr


# The generation held until the test closes the process's stdin: once its Ctrl-Cs are
# pressed (a 3 s sleep, waited out after 2-4 presses, until 2026-12-07).
GENERATING_SLOWLY = """
import sys
from routerllm import cli
from routerllm.system import RouterLLM
generate = RouterLLM.generate
def slow_generate(self, *args, **kwargs):
    print("generating", flush=True)
    sys.stdin.read()
    return generate(self, *args, **kwargs)
RouterLLM.generate = slow_generate
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("presses", [2, 4])
def test_ctrl_c_pressed_again_and_again_still_answers_the_request_in_progress(
    tmp_path: Path, presses: int
) -> None:
    """A third Ctrl-C, once the second had stopped the server, came while the event loop
    closed and waited for the answer in progress: it stopped that wait, and the client's
    answer, generated and logged, was never sent (the connection closed without one;
    the openai client then sends it again, and it is generated again). Four presses
    make that third one as three did (a server process a case: three was not run too)."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    process = serve_command(config, "--json", entry=("-c", GENERATING_SLOWLY), stdin=subprocess.PIPE)  # fmt: skip
    assert process.stdout is not None
    answers: list[tuple[int, str]] = []
    try:
        base = json.loads(process.stdout.readline())["url"].removesuffix("/v1")
        client = threading.Thread(target=lambda: answers.append(call(base, CHAT, asking())))
        client.start()
        assert process.stdout.readline() == "generating\n"
        for _ in range(presses):
            process.send_signal(signal.SIGINT)
            time.sleep(0.5)
        _, stderr = process.communicate(timeout=60)  # its stdin closed: the answer generates
        client.join(60)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert [status for status, _ in answers] == [200], answers
    with RouterLLM(load_config(config)) as system:
        assert system.log.count() == 1


# Defines stopped_by_two_ctrl_cs() for the scripts below: the wait, in the generation's
# thread, until two Ctrl-Cs have stopped uvicorn.
STOPPED_BY_TWO_CTRL_CS = """
import signal, sys, time
from routerllm.server import serving

made, servers = serving.server, []
def kept(*args, **kwargs):
    servers.append(made(*args, **kwargs))
    return servers[-1]
serving.server = kept

def stopped_by_two_ctrl_cs():
    # uvicorn has stopped: serve()'s own handler is back, the event loop closing. On
    # Python 3.12 uvicorn's shutdown waits (asyncio.Server.wait_closed) until every
    # connection, this one too, has closed: it stops only once this answer is sent, and
    # its forced exit (the second Ctrl-C seen) is all there is to wait for
    while "interrupted" not in getattr(signal.getsignal(signal.SIGINT), "__qualname__", ""):
        if sys.version_info >= (3, 12) and servers[0].force_exit:
            return
        time.sleep(0.01)
"""

STOPPED_AS_ANSWERED = (
    STOPPED_BY_TWO_CTRL_CS
    + """
from routerllm import cli
from routerllm.server import app, protocol
from routerllm.system import RouterLLM

generate = RouterLLM.generate
def generate_once_stopped(self, *args, **kwargs):
    print("generating", flush=True)
    stopped_by_two_ctrl_cs()
    return generate(self, *args, **kwargs)
RouterLLM.generate = generate_once_stopped

if sys.argv.pop(1) == "generated":  # in the generation's thread, the turn's lock let go
    answered = app._Service.generate
    def generated(self, *args):
        result = answered(self, *args)
        signal.raise_signal(signal.SIGINT)
        return result
    app._Service.generate = generated
else:  # the stream's first event sent, the rest not
    events = protocol.events
    def sending(*args):
        first, *rest = events(*args)
        yield first
        signal.raise_signal(signal.SIGINT)
        yield from rest
    protocol.events = sending
sys.exit(cli.main(sys.argv[1:]))
"""
)


def answered_through_two_ctrl_cs(
    config: Path, body: dict[str, Any], ready: str, *entry: str
) -> str:
    """``routerllm serve`` on ``config``, run by ``python -c *entry``, asked ``body``; once
    the script prints ``ready`` (the answer under way), two Ctrl-Cs: the second as soon as
    uvicorn has seen the first. The answer's text, checked sent (200) by a server that
    stopped with status 130 and no traceback."""
    process = serve_command(config, "--json", entry=("-c", *entry))
    assert process.stdout is not None and process.stderr is not None
    answers: list[tuple[int, str]] = []
    try:
        base = json.loads(process.stdout.readline())["url"].removesuffix("/v1")
        client = threading.Thread(target=lambda: answers.append(call(base, CHAT, body)))
        client.start()
        assert process.stdout.readline() == f"{ready}\n"
        process.send_signal(signal.SIGINT)
        while "Shutting down" not in (line := process.stderr.readline()):
            assert line, "the server did not stop"  # the first Ctrl-C seen: the second forces
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        client.join(60)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert [status for status, _ in answers] == [200], answers
    return answers[0][1]


@pytest.mark.parametrize("instant", ["generated", "sending"])
def test_a_ctrl_c_between_the_answer_generated_and_sent_still_sends_it(
    tmp_path: Path, instant: str
) -> None:
    """Once two Ctrl-Cs had stopped the server, a third held off while the answer in
    progress generated, but not once it had: in the instant between the generation's end
    and the answer's last byte sent, it ended the event loop, and the answer, generated and
    logged, was never sent (the connection closed without one). Here the third comes from
    a hook in that instant: as the generation returns, or as a stream is sent."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    body = asking(stream=instant == "sending")
    answer = answered_through_two_ctrl_cs(config, body, "generating", STOPPED_AS_ANSWERED, instant)
    assert answer.rstrip().endswith("[DONE]" if body["stream"] else "}")
    with RouterLLM(load_config(config)) as system:
        assert system.log.count() == 1


STREAMING_WHILE_STOPPED = (
    STOPPED_BY_TWO_CTRL_CS
    + """
import dataclasses
from routerllm import cli
from routerllm.system import RouterLLM

generate = RouterLLM.generate
def generate_streamed_through_the_stop(self, request, *args, **kwargs):
    on_text, pieces = request.on_text, []
    def held(piece):
        pieces.append(piece)
        if len(pieces) == 1:  # one piece sent, the rest to come once two Ctrl-Cs stopped uvicorn
            print("streaming", flush=True)
            stopped_by_two_ctrl_cs()
            time.sleep(0.5)  # the event loop's close has cancelled the request's task by now
        on_text(piece)
    asked = dataclasses.replace(request, on_text=held) if on_text is not None else request
    return generate(self, asked, *args, **kwargs)
RouterLLM.generate = generate_streamed_through_the_stop
sys.exit(cli.main(sys.argv[1:]))
"""
)


def test_a_second_ctrl_c_mid_stream_still_streams_the_answer_to_its_end(tmp_path: Path) -> None:
    """A stream whose text comes as it is generated was cut by a second Ctrl-C: the event
    loop's close cancelled the request's task, Starlette's stream cancelled its events,
    the generation stopped half-way (logged as cancelled, though its client was still
    reading), the client got a truncated stream and the server's log a CancelledError
    traceback (until 2026-12-05). The answer in progress is finished and sent whole, as an
    unstreamed one is."""
    config = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    body = asking(stream=True, max_tokens=8)
    answer = answered_through_two_ctrl_cs(config, body, "streaming", STREAMING_WHILE_STOPPED)
    events = [line for line in answer.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert len(events) >= 4  # two pieces of text at least, the finish reason, [DONE]
    with RouterLLM(load_config(config)) as system:
        (record,) = system.log.records(tag="server")
    assert record.finish_reason != CANCELLED


def test_a_log_moved_while_serving_refuses_requests_with_a_503_not_a_500(tmp_path: Path) -> None:
    """logrotate moving the log while serving: every request after it was a 500
    'server_error', which this API keeps for a bug; the server itself is sound and says
    what to do (restart), so it is a 503 with its own code, not retried by the client."""
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    process = serve_command(write_config(tmp_path, data), "--json")
    try:
        base = "http://{}:{}".format(*served_address(process))
        assert call(base, CHAT, asking())[0] == 200
        log_path = Path(data["log"]["path"])
        log_path.rename(log_path.with_name("requests.1.sqlite"))
        request = urllib.request.Request(base + CHAT, json.dumps(asking()).encode(), {"Content-Type": "application/json"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        error = json.loads(refused.value.read())["error"]
        assert refused.value.code == 503 and error["code"] == "request_log_unavailable", error
        assert refused.value.headers["x-should-retry"] == "false"
        assert "was moved or deleted while this process had it open" in error["message"]
        assert "restart to start a new log at log.path" in error["message"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr


def test_a_full_request_log_is_said_once_then_counted_and_the_closing_line_counts_it(
    tmp_path: Path,
) -> None:
    """A log that refuses every row while serving (a full disk; here a trigger another
    process put in, real SQLite failing the insert): each answer goes back with a warning
    but is in no log. The server printed one ERROR line per request, an operator's journal
    filled with the same line: now the first in full, the repeats counted (at most once a
    minute), and a line once the log takes rows again. And the closing line said 'every
    answered request is in the log', the line an operator reads to know nothing was lost:
    now it counts them."""
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    process = serve_command(write_config(tmp_path, data), "--json")
    try:
        base = "http://{}:{}".format(*served_address(process))
        assert call(base, CHAT, asking())[0] == 200
        with contextlib.closing(sqlite3.connect(data["log"]["path"])) as db, db:
            db.execute("CREATE TRIGGER full BEFORE INSERT ON requests BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")  # fmt: skip
        for _ in range(5):
            status, text = call(base, CHAT, asking())
            assert status == 200 and "disk is full" in json.loads(text)["routerllm"]["warning"], text  # fmt: skip
        with contextlib.closing(sqlite3.connect(data["log"]["path"])) as db, db:
            db.execute("DROP TRIGGER full")
        assert call(base, CHAT, asking())[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) <= 2 and "answered, but the request log could not record it" in errors[0], stderr  # fmt: skip
    assert "database or disk is full" in errors[0], stderr
    repeats = [line for line in errors[1:] if "4 more answers could not be logged: " in line]
    assert len(repeats) == len(errors) - 1, stderr
    assert "the request log records answers again (5 answers could not be logged" in stderr, stderr  # fmt: skip
    assert "every answered request is in the log" not in stderr, stderr
    assert "server stopped; 5 requests could not be logged (the errors above say why); every other answered request is in the log" in stderr, stderr  # fmt: skip
