"""An ``openai_http`` model's context as Hugging Face TGI gives it: not in its ``/models``
but at ``GET /info`` at the server's root (``max_total_tokens``, prompt and answer, and
the longest prompt it takes, ``max_input_tokens``; ``max_input_length`` in older TGI),
asked by the availability check only where ``/models`` gives no context; a 404 or a
malformed answer there is no context learned, not an error. Real HTTP on 127.0.0.1
(the stub of ``test_openai_http``), answering as TGI does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.openai_answer import ListedContext
from routerllm.exceptions import ContextLengthError

from .conftest import cli_in_process, tiny_config_dict, write_config
from .test_endpoint_context import listing, two_endpoints, vllm_entry
from .test_openai_http import (
    Reply,
    completion_reply,
    http_backend,
    http_model_dict,
    json_reply,
    serving_stub,
)


def tgi_entry(model_id: str) -> dict[str, Any]:
    """The one model of TGI's /v1/models (its ``ModelInfo``): no context."""
    return {"id": model_id, "object": "model", "created": 1733443200, "owned_by": model_id}


def tgi_info(**limits: Any) -> dict[str, Any]:
    """TGI's GET /info (its ``Info``), with ``limits`` (``max_input_tokens``, ...)."""
    return {"model_id": "Qwen/Qwen2.5-1.5B-Instruct", "model_sha": None,
            "model_pipeline_tag": "text-generation", "max_concurrent_requests": 128,
            "max_best_of": 2, "max_stop_sequences": 4, "validation_workers": 2,
            "max_client_batch_size": 4, "router": "text-generation-router",
            "version": "3.0.1", "sha": None, "docker_label": None, **limits}  # fmt: skip


# TGI's refusal (422) of a prompt over its max_input_tokens, and of one whose answer
# (max_tokens) would not fit max_total_tokens: its validation errors, as it sends them
TGI_INPUT_TOO_LONG = "Input validation error: `inputs` must have less than 2047 tokens. Given: 3002"  # fmt: skip
TGI_TOTAL_TOO_LONG = (
    "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. "
    "Given: 1900 `inputs` tokens and 256 `max_new_tokens`"
)


def tgi_refusal(message: str) -> Reply:
    return json_reply(422, {"error": message, "error_type": "validation"})


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        # TGI's default: the prompt may take all but one token of max_total_tokens
        ({"max_input_tokens": 2047, "max_total_tokens": 2048}, (2048, "max_total_tokens")),
        # --max-input-tokens 1024 --max-total-tokens 4096: a prompt over 1024 is refused
        ({"max_input_tokens": 1024, "max_total_tokens": 4096}, (1024, "max_input_tokens")),
        ({"max_input_length": 1024, "max_total_tokens": 4096}, (1024, "max_input_length")),
        ({"max_total_tokens": 3000}, (3000, "max_total_tokens")),
        ({"max_input_tokens": 1500}, (1500, "max_input_tokens")),
    ],
)
def test_models_shows_the_context_tgis_info_gives(
    tmp_path: Path, limits: dict[str, Any], expected: tuple[int, str]
) -> None:
    """TGI's /v1/models gives no context; its /info does. Until 2026-12-06 it was not
    read: ``routerllm models`` showed the configured 32768, and a prompt over TGI's
    limits was sent to it and refused (422)."""
    with serving_stub() as stub:
        stub.models_reply = listing(tgi_entry("tgi"))
        stub.info_reply = json_reply(200, tgi_info(**limits))
        models = [http_model_dict("tgi", stub.base_url, model_id="tgi", context_length=32768)]
        cfg = str(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        table = cli_in_process("models", "--config", cfg)
        out = cli_in_process("models", "--config", cfg, "--json")
        asked = [s.path for s in stub.requests("GET")]
    assert table.returncode == 0 and out.returncode == 0, table.stderr + out.stderr
    tokens, field = expected
    (row,) = json.loads(out.stdout)["models"]
    seen = (row["effective_context"], row["context_source"], row["endpoint_context"])
    assert seen == (tokens, "endpoint", {"tokens": tokens, "field": field, "source": "/info"}), seen  # fmt: skip
    line = table.stdout.splitlines()[2]
    assert line.endswith(
        f"  yes (runs at its endpoint's context of {tokens} tokens, its /info's {field}, "
        "under the configured 32768)"
    ), line
    # each command: its /models, then its /info, once (the table's and the JSON's)
    assert asked == ["/v1/models", "/info"] * 2, asked


def test_info_is_asked_only_where_models_gives_no_context_and_kept() -> None:
    """vLLM's /models gives its context: /info is not asked (one request less). TGI's
    gives none: /info is asked once per availability check, its context kept until the
    next (no request per prompt routed)."""
    with serving_stub() as vllm, serving_stub() as tgi:
        vllm.models_reply = listing(vllm_entry("tiny", 2048))
        vllm.info_reply = json_reply(200, tgi_info(max_total_tokens=512))
        tgi.models_reply = listing(tgi_entry("tiny"))
        tgi.info_reply = json_reply(200, tgi_info(max_input_tokens=511, max_total_tokens=512))
        from_vllm, from_tgi = http_backend(vllm.base_url), http_backend(tgi.base_url)
        assert from_vllm.availability() is None and from_tgi.availability() is None
        for _ in range(3):
            assert from_vllm.endpoint_context() == ListedContext(2048, "max_model_len")
            assert from_tgi.endpoint_context() == ListedContext(512, "max_total_tokens", "/info")  # fmt: skip
        assert [s.path for s in vllm.requests("GET")] == ["/v1/models"]
        assert [s.path for s in tgi.requests("GET")] == ["/v1/models", "/info"]


@pytest.mark.parametrize(
    "info",
    [
        None,  # a hosted API: no /info (404)
        Reply(200, b"<html>TGI dashboard</html>", headers=(("Content-Type", "text/html"),)),
        json_reply(200, ["max_total_tokens", 2048]),
        json_reply(200, tgi_info(max_input_tokens="2047", max_total_tokens="2048")),
        json_reply(200, tgi_info(max_input_tokens=True, max_total_tokens=0)),
        json_reply(200, tgi_info(max_input_tokens=-1, max_total_tokens=2048.5)),
        json_reply(500, {"error": "GPU on fire"}),
        Reply(302, b"", headers=(("Location", "https://example.org/login"),)),
        Reply(200, b"", raw=b"not HTTP at all"),
    ],
)
def test_an_info_that_gives_no_context_is_no_error(info: Reply | None) -> None:
    """Where /info is not found, or answers with something other than TGI's limits (an
    HTML page, a list, numbers as text, no whole number over 0, an error, a redirect,
    not HTTP), no context is learned and the model stays available, asked once."""
    with serving_stub() as stub:
        stub.models_reply = listing(tgi_entry("tiny"))
        stub.info_reply = info
        backend = http_backend(stub.base_url)
        assert backend.availability() is None
        assert backend.endpoint_context() is None
        assert [s.path for s in stub.requests("GET")] == ["/v1/models", "/info"]


def test_info_is_read_where_the_server_has_no_models_listing() -> None:
    """A TGI from before its /v1/models (a 404 there): its /info is read all the same."""
    with serving_stub() as stub:
        stub.models_reply = json_reply(404, {"error": "Not Found"})
        stub.info_reply = json_reply(200, tgi_info(max_input_length=1000, max_total_tokens=1001))
        backend = http_backend(stub.base_url)
        assert backend.availability() is None
        assert backend.endpoint_context() == ListedContext(1001, "max_total_tokens", "/info")


@pytest.mark.parametrize(
    "refusal",
    [
        TGI_INPUT_TOO_LONG,
        TGI_TOTAL_TOO_LONG,
        # as TGI 0.x wrote them, without the backticks
        "Input validation error: inputs must have less than 2047 tokens. Given: 3002",
        "Input validation error: input tokens + max_new_tokens must be <= 2048. Given: 1900 input tokens and 256 max_new_tokens",  # fmt: skip
    ],
)
def test_a_prompt_tgi_refuses_as_too_long_goes_to_a_model_with_a_longer_context(
    tmp_path: Path, refusal: str
) -> None:
    """``short`` is served by TGI at 2048 tokens (its /info), under its configured 32768:
    a prompt it refuses with its 422 goes to ``long``. Until 2026-12-06 TGI's refusal,
    which does not say "context", was a PromptError like a wrong option's: the request
    failed, no larger model asked."""
    with serving_stub() as short, serving_stub() as long:
        short.models_reply = listing(tgi_entry("tiny"))
        short.info_reply = json_reply(200, tgi_info(max_input_tokens=2047, max_total_tokens=2048))
        short.default_post = tgi_refusal(refusal)
        long.default_post = completion_reply("from long")
        with two_endpoints(tmp_path, short.base_url, long.base_url) as system:
            result = system.generate("word " * 3000)
        assert result.model == "long" and result.text == "from long", result.reason
        assert "too long for short's context of 2048 tokens: sent to long" in result.reason
        assert (len(short.posts), len(long.posts)) == (1, 1)


def test_a_larger_tgi_whose_info_gives_no_longer_a_context_is_not_asked(
    tmp_path: Path,
) -> None:
    """``long``'s TGI serves 2048 tokens too, under its configured 8192: it is not asked a
    prompt ``short`` refused at 2048, and the error says its context and whence."""
    with serving_stub() as short, serving_stub() as long:
        for stub in (short, long):
            stub.models_reply = listing(tgi_entry("tiny"))
            stub.info_reply = json_reply(200, tgi_info(max_input_tokens=2047, max_total_tokens=2048))  # fmt: skip
        short.default_post = tgi_refusal(TGI_INPUT_TOO_LONG)
        refused = pytest.raises(ContextLengthError, match="must have less than 2047 tokens")
        with two_endpoints(tmp_path, short.base_url, long.base_url) as system, refused as e:
            system.generate("word " * 3000)
        assert str(e.value).endswith(
            "; no larger model's context is longer (long: 2048 tokens, its endpoint's "
            "max_total_tokens, under the configured 8192)"
        ), str(e.value)
        assert (len(short.posts), len(long.posts)) == (1, 0)


@pytest.mark.parametrize(
    ("refusal", "limit"), [(TGI_INPUT_TOO_LONG, 2047), (TGI_TOTAL_TOO_LONG, 2048)]
)
def test_a_tgi_refusal_without_its_info_goes_by_the_limit_it_states(
    tmp_path: Path, refusal: str, limit: int
) -> None:
    """``short``'s TGI behind a gateway that forwards only /v1 (its /info: 404), so its
    context is the configured 32768: a prompt it refuses as over its 2047/2048 tokens,
    which its 422 states, goes to ``long`` (8192). It was held to the configured 32768,
    and the request failed with "no larger model's context is longer"."""
    with serving_stub() as short, serving_stub() as long:
        short.models_reply = listing(tgi_entry("tiny"))
        short.default_post = tgi_refusal(refusal)
        long.default_post = completion_reply("from long")
        with two_endpoints(tmp_path, short.base_url, long.base_url) as system:
            result = system.generate("word " * 3000)
        assert result.model == "long" and result.text == "from long", result.reason
        assert f"too long for short's context of {limit} tokens: sent to long" in result.reason
        assert (len(short.posts), len(long.posts)) == (1, 1)
