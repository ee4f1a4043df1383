"""An ``openai_http`` model's context as its endpoint's ``/models`` gives it (vLLM's
``max_model_len``, llama.cpp server's ``meta.n_ctx_train``), read by the availability
check: shown by ``routerllm models`` and used where routing steps a prompt too long
for a model up to one with a longer context. Real HTTP on 127.0.0.1 (the stub of
``test_openai_http``), answering as those servers do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from routerllm.config import load_config
from routerllm.exceptions import ContextLengthError
from routerllm.system import RouterLLM

from .conftest import cli_in_process, tiny_config_dict, write_config
from .test_openai_http import (
    Reply,
    completion_reply,
    error_reply,
    http_model_dict,
    json_reply,
    serving_stub,
)

# vLLM's refusal of a prompt over its max_model_len (HTTP 400)
VLLM_TOO_LONG = (
    "This model's maximum context length is 2048 tokens. However, you requested 3010 "
    "tokens (3000 in the messages, 10 in the completion). Please reduce the length of "
    "the messages or completion."
)


def vllm_entry(model_id: str, max_model_len: Any) -> dict[str, Any]:
    """A model of vLLM's /v1/models (its ``ModelCard``)."""
    return {"id": model_id, "object": "model", "owned_by": "vllm", "root": model_id,
            "parent": None, "max_model_len": max_model_len, "permission": []}  # fmt: skip


def llama_server_entry(model_id: str, n_ctx_train: int) -> dict[str, Any]:
    """A model of llama.cpp server's /v1/models (its ``meta``: ``model_meta()``)."""
    meta = {"vocab_type": 2, "n_vocab": 151936, "n_ctx_train": n_ctx_train, "n_embd": 896,
            "n_params": 494032768, "size": 391378944}  # fmt: skip
    return {"id": model_id, "object": "model", "owned_by": "llamacpp", "meta": meta}


def listing(*entries: dict[str, Any]) -> Reply:
    return json_reply(200, {"object": "list", "data": list(entries)})


def test_models_shows_the_context_an_endpoint_gives_where_it_is_shorter(tmp_path: Path) -> None:
    """vLLM serving with ``max_model_len`` 2048, the config saying 32768: ``routerllm
    models`` showed 32768 (prompts over 2048 tokens were routed there and refused with
    a 400). Each model's own entry counts; one the endpoint lists longer than configured
    runs at the configured; one whose entry gives none, or not a whole number, or that
    is not listed, reads nothing."""
    with serving_stub() as stub:
        stub.models_reply = listing(
            vllm_entry("qwen", 2048),
            vllm_entry("long", 131072),
            llama_server_entry("coder", 4096),
            vllm_entry("odd", "2048"),
            {"id": "plain", "object": "model"},
        )
        models = [
            http_model_dict(
                "vllm", stub.base_url, model_id="qwen", params_b=1.0, context_length=32768
            ),  # fmt: skip
            http_model_dict(
                "long", stub.base_url, model_id="long", params_b=2.0, context_length=8192
            ),  # fmt: skip
            http_model_dict(
                "llama", stub.base_url, model_id="coder", params_b=3.0, context_length=8192
            ),  # fmt: skip
            http_model_dict("odd", stub.base_url, model_id="odd", params_b=4.0),
            http_model_dict("plain", stub.base_url, model_id="plain", params_b=5.0),
            http_model_dict("unlisted", stub.base_url, model_id="other", params_b=6.0),
        ]
        cfg = str(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        table = cli_in_process("models", "--config", cfg)
        out = cli_in_process("models", "--config", cfg, "--json")
    assert table.returncode == 0 and out.returncode == 0, table.stderr + out.stderr
    lines = {line.split()[0]: line for line in table.stdout.splitlines()[2:8]}
    assert lines["vllm"].split()[5] == "2048", lines["vllm"]
    assert lines["vllm"].endswith(
        "  yes (runs at its endpoint's context of 2048 tokens, its /models' max_model_len, "
        "under the configured 32768)"
    ), lines["vllm"]
    assert lines["llama"].split()[5] == "4096", lines["llama"]
    assert lines["llama"].endswith(
        "  yes (runs at its endpoint's context of 4096 tokens, its /models' meta.n_ctx_train, "
        "under the configured 8192)"
    ), lines["llama"]
    for name in ("long", "odd", "plain"):
        assert lines[name].endswith("  yes"), lines[name]
    rows = {r["name"]: r for r in json.loads(out.stdout)["models"]}
    seen = {n: (r["context_length"], r["effective_context"], r["context_source"], r["endpoint_context"]) for n, r in rows.items()}  # fmt: skip
    assert seen == {
        "vllm": (
            32768,
            2048,
            "endpoint",
            {"tokens": 2048, "field": "max_model_len", "source": "/models"},
        ),
        "long": (
            8192,
            8192,
            "config",
            {"tokens": 131072, "field": "max_model_len", "source": "/models"},
        ),
        "llama": (
            8192,
            4096,
            "endpoint",
            {"tokens": 4096, "field": "meta.n_ctx_train", "source": "/models"},
        ),
        "odd": (4096, 4096, "config", None),
        "plain": (4096, 4096, "config", None),
        "unlisted": (4096, 4096, "config", None),
    }, seen


def two_endpoints(tmp_path: Path, short_url: str, long_url: str) -> RouterLLM:
    """A system routing to the smallest model: ``short`` (configured for 32768 tokens)
    and, larger, ``long`` (8192), each its own endpoint; carbon tracking off."""
    models = [
        http_model_dict("short", short_url, tier="light", params_b=1.0, context_length=32768),
        http_model_dict("long", long_url, tier="heavy", params_b=7.0, context_length=8192),
    ]
    data = tiny_config_dict(
        tmp_path, models=models, router={"name": "smallest"}, carbon={"enabled": False}
    )
    return RouterLLM(load_config(write_config(tmp_path, data)))


def test_a_prompt_over_an_endpoints_own_context_goes_to_a_model_with_a_longer_one(
    tmp_path: Path,
) -> None:
    """``short``'s endpoint serves it at 2048 tokens (vLLM's ``max_model_len``), under its
    configured 32768: a prompt it refuses as too long goes to ``long``, configured for
    8192. Until 2026-12-06 the step up compared configured contexts: no larger model's
    (8192) was longer than 32768, and the request failed with short's 400."""
    with serving_stub() as short, serving_stub() as long:
        short.models_reply = listing(vllm_entry("tiny", 2048))
        short.default_post = error_reply(400, VLLM_TOO_LONG)
        long.default_post = completion_reply("from long")
        with two_endpoints(tmp_path, short.base_url, long.base_url) as system:
            result = system.generate("word " * 3000)
        assert result.model == "long" and result.text == "from long", result.reason
        assert "too long for short's context of 2048 tokens: sent to long" in result.reason
        assert (len(short.posts), len(long.posts)) == (1, 1)


def test_a_larger_model_whose_endpoint_gives_no_longer_a_context_is_not_asked(
    tmp_path: Path,
) -> None:
    """``long``'s endpoint serves it at 2048 tokens too, under its configured 8192: it is
    not asked a prompt ``short`` refused at 2048 (it would refuse it as well), and the
    refusal says both contexts and where they come from."""
    with serving_stub() as short, serving_stub() as long:
        short.models_reply = listing(vllm_entry("tiny", 2048))
        short.default_post = error_reply(400, VLLM_TOO_LONG)
        long.models_reply = listing(vllm_entry("tiny", 2048))
        refused = pytest.raises(ContextLengthError, match="maximum context length is 2048")
        with two_endpoints(tmp_path, short.base_url, long.base_url) as system, refused as e:
            system.generate("word " * 3000)
        assert str(e.value).endswith(
            "; no larger model's context is longer (long: 2048 tokens, its endpoint's "
            "max_model_len, under the configured 8192)"
        ), str(e.value)
        assert (len(short.posts), len(long.posts)) == (1, 0)
