"""The cascade's step up past a larger model whose context cannot hold the prompt, for
``openai_http`` models as for local GGUFs: the context its endpoint gives (vLLM's and
llama.cpp server's ``/models``, TGI's ``/info``) or, where none is learned, the
``context_length`` configured for it; where neither is (a hosted API, the default), it
is asked. The small model is the real tiny GGUF; the endpoints are real HTTP servers on
127.0.0.1 (the stub of ``test_openai_http``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from routerllm.config import load_config
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, tiny_model, write_config
from .test_endpoint_context import listing, llama_server_entry, vllm_entry
from .test_endpoint_info import tgi_entry, tgi_info
from .test_openai_http import (
    STUB_ASKED,
    Stub,
    completion_reply,
    http_model_dict,
    json_reply,
    serving_stub,
)

#: STUB_REQUEST as tiny-light reads it, in tokens (its chat template's)
PROMPT_TOKENS = 55
FAILED = "tiny-light's answer failed 1 of the request's 1 examples"
ANSWER = "def add(a, b):\n    return a + b"


def serve_as(stub: Stub, server: str, context: int) -> str:
    """``stub`` answering as ``server`` does, serving model ``tiny`` at ``context``
    tokens; the field that gives it."""
    if server == "vllm":
        stub.models_reply = listing(vllm_entry("tiny", context))
        return "max_model_len"
    if server == "llama-server":
        stub.models_reply = listing(llama_server_entry("tiny", context))
        return "meta.n_ctx_train"
    stub.models_reply = listing(tgi_entry("tiny"))
    stub.info_reply = json_reply(200, tgi_info(max_input_tokens=context - 1, max_total_tokens=context))  # fmt: skip
    return "max_total_tokens"


def _cascade(tmp_path: Path, short: Stub, long: Stub, **short_options: Any) -> RouterLLM:
    """tiny-light (the real GGUF), whose failed answers the cascade takes to ``short``
    (1B), then ``long`` (7B), each its own endpoint; carbon tracking off."""
    models = [
        tiny_model("tiny-light", "light", 0.1),
        http_model_dict("short", short.base_url, params_b=1.0, **short_options),
        http_model_dict("long", long.base_url, params_b=7.0),
    ]
    # an answer that passes the request's example: the cascade stops at the model asked
    short.default_post = long.default_post = completion_reply(ANSWER)
    data = tiny_config_dict(tmp_path, models=models, cascade={"enabled": True}, carbon={"enabled": False})  # fmt: skip
    return RouterLLM(load_config(write_config(tmp_path, data)))


@pytest.mark.parametrize("server", ["vllm", "llama-server", "tgi"])
def test_the_step_up_passes_an_endpoint_whose_context_cannot_hold_the_prompt(
    tmp_path: Path, server: str
) -> None:
    """``short``'s endpoint serves it at 40 tokens, under its configured 4096: the
    prompt, 55 tokens as tiny-light read it, goes past it to ``long``, in the words a
    local GGUF's context gets. Until 2026-12-06 the split read no remote model's
    context: ``short`` was asked (and refused it)."""
    with serving_stub() as short, serving_stub() as long:
        field = serve_as(short, server, 40)
        with _cascade(tmp_path, short, long) as system:
            result = system.generate(STUB_ASKED, model="tiny-light")
        assert result.model == "long", result.reason
        assert (
            f"{FAILED}, escalated to long (past short: the prompt, {PROMPT_TOKENS} tokens as "
            f"tiny-light read it, leaves no room for an answer in its context of 40 tokens, "
            f"its endpoint's {field}, under the configured 4096)"
        ) in result.reason, result.reason
        assert (len(short.posts), len(long.posts)) == (0, 1)


def test_no_step_up_where_no_endpoints_context_holds_the_prompt(tmp_path: Path) -> None:
    """Both endpoints serve at most 55 tokens (a context of the prompt's length leaves
    no room for an answer): the answer in hand is kept, their contexts said."""
    with serving_stub() as short, serving_stub() as long:
        serve_as(short, "vllm", 30)
        serve_as(long, "tgi", PROMPT_TOKENS)
        with _cascade(tmp_path, short, long) as system:
            result = system.generate(STUB_ASKED, model="tiny-light")
        assert result.model == "tiny-light", result.reason
        assert result.reason.endswith(
            f"{FAILED}, not escalated to short nor long: the prompt, {PROMPT_TOKENS} tokens "
            "as tiny-light read it, leaves no room for an answer in their contexts (short: "
            "30 tokens, its endpoint's max_model_len, under the configured 4096; long: "
            f"{PROMPT_TOKENS} tokens, its endpoint's max_total_tokens, under the configured 4096)"
        ), result.reason
        assert (len(short.posts), len(long.posts)) == (0, 0)


def test_an_endpoint_without_a_context_is_held_to_its_configured_one(tmp_path: Path) -> None:
    """A hosted API gives no context (its /models none, no /info): the ``context_length``
    configured for it (17) counts, as a local model's does."""
    with serving_stub() as short, serving_stub() as long:
        with _cascade(tmp_path, short, long, context_length=17) as system:
            result = system.generate(STUB_ASKED, model="tiny-light")
        assert result.model == "long", result.reason
        assert (
            f"(past short: the prompt, {PROMPT_TOKENS} tokens as tiny-light read it, leaves no "
            "room for an answer in its context of 17 tokens)"
        ) in result.reason, result.reason
        assert (len(short.posts), len(long.posts)) == (0, 1)


@pytest.mark.parametrize("listed", [None, 100_000])
def test_an_endpoint_whose_context_is_not_known_short_is_asked(
    tmp_path: Path, listed: int | None
) -> None:
    """A hosted API without ``context_length`` configured (the 4096 default says nothing
    of it), or an endpoint serving more than that: nothing says the prompt is too long
    for ``short``, which is asked; a prompt over the default 4096 tokens too (asked of
    the split itself: tiny-light's own context is shorter)."""
    with serving_stub() as short, serving_stub() as long:
        if listed is not None:
            serve_as(short, "vllm", listed)
        with _cascade(tmp_path, short, long) as system:
            result = system.generate(STUB_ASKED, model="tiny-light")
            assert system._split_by_context(["short", "long"], 10_000) == ([], ["short", "long"])  # fmt: skip
        assert result.model == "short", result.reason
        assert f"{FAILED}, escalated to short" in result.reason and "past" not in result.reason
        assert (len(short.posts), len(long.posts)) == (1, 0)
