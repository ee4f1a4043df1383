"""What the README's "OpenAI-compatible server" promises a client, where no other test
would notice it lost (found by a sweep of hand-made mutants of the server, 2026-12-06):
the real app (``create_app``) around a real ``RouterLLM`` on the tiny GGUF, called
through Starlette's test client, and the real request parser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from routerllm.config import load_config
from routerllm.exceptions import PromptError
from routerllm.server import protocol
from routerllm.server.app import create_app
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, write_config
from .test_server import CHAT, asking


@pytest.fixture(scope="module")
def app_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterLLM]:
    """The tiny ladder without CodeCarbon, its request cache on."""
    tmp = tmp_path_factory.mktemp("contract")
    data = tiny_config_dict(tmp, carbon={"enabled": False}, cache={"enabled": True})
    with RouterLLM(load_config(write_config(tmp, data))) as system:
        yield system


@pytest.fixture(scope="module")
def client(app_system: RouterLLM) -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(create_app(app_system), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def stream_chunks(text: str) -> list[dict[str, Any]]:
    """A stream's chunks, its ``[DONE]`` checked and left out."""
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    assert events[-1] == "[DONE]", events[-3:]
    return [json.loads(e) for e in events[:-1]]


def test_a_seed_reaches_the_model_as_its_low_32_bits() -> None:
    """0 to 2**32 - 1 are themselves, -1 is 2**32 - 1, any other 64-bit seed its low 32 bits."""
    for seed, given in ((0, 0), (2**31, 2**31), (2**32 - 1, 2**32 - 1), (-1, 2**32 - 1), (2**32 + 5, 5), (-(2**63), 0), (2**63 - 1, 2**32 - 1)):  # fmt: skip
        assert protocol.chat_call(asking(seed=seed)).request.seed == given, seed
        assert protocol.completion_call({"prompt": "x", "seed": seed}).request.seed == given, seed


def test_sixteen_stop_sequences_of_a_thousand_characters_are_taken_and_no_more() -> None:
    """The limits are "at most 16 sequences of at most 1,000 characters"."""
    stops = [f"{i:02d}" + "z" * 998 for i in range(16)]
    assert protocol.chat_call(asking(stop=stops)).request.stop == stops
    for refused, says in (
        ([*stops, "y"], "stop holds 17 sequences: give at most 16"),
        (["z" * 1001], "a stop sequence is 1,001 characters long: the limit is 1,000"),
    ):
        with pytest.raises(PromptError, match=says) as error:
            protocol.chat_call(asking(stop=refused))
        assert error.value.param == "stop"


@pytest.mark.parametrize(
    "message",
    [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },  # fmt: skip
        {"role": "assistant", "content": "", "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ],
    ids=["tool_calls", "function_call", "tool"],
)
def test_a_conversation_holding_tool_calls_is_refused_not_run(
    client: Any, app_system: RouterLLM, message: dict[str, Any]
) -> None:
    """Tool and function calls are refused, not ignored: an assistant's tool calls in the
    history too, which would otherwise reach the model as an empty turn."""
    before = app_system.log.count()
    body = {"messages": [{"role": "user", "content": "What is 6 x 7?"}, message, {"role": "user", "content": "And?"}]}  # fmt: skip
    answer = client.post(CHAT, json=body)
    error = answer.json()["error"]
    assert answer.status_code == 400 and "does not support tool calls" in error["message"], error
    assert error["param"] == "messages" and error["type"] == "invalid_request_error"
    assert app_system.log.count() == before


def test_every_stream_says_whose_the_answer_is_in_its_first_chunk(client: Any) -> None:
    """A stream's first chunk carries the role, where the answer comes token by token, whole
    from the request cache, or empty (cut at a stop sequence before its first character:
    no piece of text came, and its events were made at the end)."""
    asked = asking(("user", "Name a sorting algorithm."), model="tiny-light", temperature=0, max_tokens=4)  # fmt: skip
    plain = client.post(CHAT, json=asked).json()["choices"][0]["message"]["content"]
    streams = {}
    for name, fields in (("generated", {"seed": 7}), ("cached", {"seed": 7}), ("empty", {"stop": plain[0]})):  # fmt: skip
        streams[name] = stream_chunks(client.post(CHAT, json={**asked, **fields, "stream": True}).text)  # fmt: skip
    facts = {name: chunks[-1]["routerllm"] for name, chunks in streams.items()}
    assert facts["cached"]["cached_from"] == facts["generated"]["request_id"]
    for name, chunks in streams.items():
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant", name
        assert not any("role" in c["choices"][0]["delta"] for c in chunks[1:]), name
    text = lambda chunks: "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)  # noqa: E731
    assert text(streams["cached"]) == text(streams["generated"]) == plain
    assert (
        text(streams["empty"]) == ""
        and streams["empty"][-1]["choices"][0]["finish_reason"] == "stop"
    )


def test_a_completions_id_names_its_request_for_feedback() -> None:
    """The answer's own id names the request it answered: a chat's ``chatcmpl-<id>`` and
    a completion's ``cmpl-<id>``."""
    for sent in ("abc", "chatcmpl-abc", "cmpl-abc"):
        assert protocol.feedback_call({"request_id": sent, "score": 0}) == ("abc", 0.0)


GUARDED = [
    ("POST", CHAT, asking(max_tokens=1)),
    ("POST", "/v1/completions", {"prompt": "def f(", "max_tokens": 1}),
    ("GET", "/v1/models", None),
    ("HEAD", "/v1/models", None),
    ("GET", "/v1/models/tiny-light", None),
    ("HEAD", "/v1/models/auto", None),
    ("GET", "/routerllm/report", None),
    ("POST", "/routerllm/feedback", {"request_id": "x", "score": 1}),
]


def test_the_api_key_guards_every_endpoint_but_health(app_system: RouterLLM) -> None:
    """Every endpoint but ``/health`` wants the key, each method of each; the scheme's
    case does not matter (RFC 9110: ``bearer`` is ``Bearer``)."""
    from starlette.testclient import TestClient

    before = app_system.log.count()
    with TestClient(create_app(app_system, api_key="s3cret")) as keyed:
        for method, path, body in GUARDED:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                answer = keyed.request(method, path, json=body, headers=headers)
                assert (answer.status_code, answer.headers.get("www-authenticate")) == (401, "Bearer"), (method, path)  # fmt: skip
                if method != "HEAD":
                    assert answer.json()["error"]["code"] == "invalid_api_key", (method, path)
        assert app_system.log.count() == before  # nothing ran
        assert keyed.get("/health").status_code == 200
        for scheme in ("Bearer", "bearer", "BEARER"):
            answer = keyed.get("/v1/models/auto", headers={"Authorization": f"{scheme} s3cret"})
            assert answer.status_code == 200, scheme


def test_a_model_that_cannot_run_here_is_a_503_when_retrieved(tmp_path: Path) -> None:
    """``GET /v1/models`` lists the models that can run here; ``GET /v1/models/{name}`` of
    a configured one that cannot (its file missing) is a 503, as asking it would be: not a
    200 that tells a client to use it."""
    import openai
    from starlette.testclient import TestClient

    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    data["models"][1]["gguf"] = {"path": str(tmp_path / "missing.gguf")}
    config = load_config(write_config(tmp_path, data))
    with (
        RouterLLM(config) as system,
        TestClient(create_app(system), base_url="http://127.0.0.1:8000") as client,
    ):
        names = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert names == ["auto", "tiny-light", "tiny-heavy"]
        assert client.get("/v1/models/tiny-light").json()["id"] == "tiny-light"
        answer = client.get("/v1/models/tiny-medium")
        error = answer.json()["error"]
        assert answer.status_code == 503 and error["code"] == "model_unavailable", error
        assert "missing.gguf" in error["message"]
        assert answer.headers["x-should-retry"] == "false"
        with pytest.raises(openai.InternalServerError, match="not available here"):
            openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="x", http_client=client, max_retries=0).models.retrieve("tiny-medium")  # fmt: skip


def test_a_page_allowed_by_cors_may_read_how_long_to_wait(app_system: RouterLLM) -> None:
    """A browser hides a response's headers from the page's script unless the server
    exposes them: the openai client in a page reads a 503's or 429's ``Retry-After``."""
    from starlette.testclient import TestClient

    page = "http://localhost:3000"
    with TestClient(create_app(app_system, "k", cors=[page])) as client:
        answer = client.get("/v1/models", headers={"Origin": page})
        assert answer.status_code == 401 and answer.headers["access-control-allow-origin"] == page
        exposed = answer.headers["access-control-expose-headers"].lower().split(",")
        assert "retry-after" in [h.strip() for h in exposed]
