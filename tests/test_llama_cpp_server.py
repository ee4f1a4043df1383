"""``openai_http`` models served by a real local OpenAI-compatible server:
llama-cpp-python's own (``python -m llama_cpp.server``, its ``[server]`` extra), as a
user of Ollama, LM Studio or llama.cpp runs one beside RouterLLM. One server process for
the module, its multi-model config file serving the tiny test GGUF under two names at
two contexts (``short``: 128 tokens, ``long``: 512), 1 thread each; skipped where the
extra's packages are missing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from routerllm.config import load_config
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, tiny_gguf_path, write_config
from .test_openai_http import http_model_dict

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed")

#: the contexts (n_ctx) the upstream serves each name at
CONTEXTS = {"short": 128, "long": 512}
#: over short's context, within long's: the tiny GGUF reads "word" as one token
LONG_PROMPT = "word " * 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``llama_cpp.server`` on 127.0.0.1: its base URL, ``/v1`` included."""
    folder = tmp_path_factory.mktemp("upstream")
    port = _free_port()
    models = [
        {"model": str(tiny_gguf_path()), "model_alias": name, "n_ctx": n_ctx, "n_threads": 1}
        for name, n_ctx in CONTEXTS.items()
    ]
    settings = folder / "upstream.json"
    settings.write_text(json.dumps({"host": "127.0.0.1", "port": port, "models": models}))
    log = (folder / "upstream.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--config_file", str(settings)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (folder / "upstream.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "llama_cpp.server did not start in 60 s"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def remote_config(tmp_path: Path, base: str, **overrides: Any) -> Path:
    """Two models of ``upstream`` as the README's "Model entries" has a user write them:
    no API key, no context_length (the default 4096), no prices, no energy figures."""
    models = [
        http_model_dict("short", base, model_id="short", tier="light", params_b=0.1),
        http_model_dict("long", base, model_id="long", tier="heavy", params_b=1.0),
    ]
    for model in models:
        del model["memory_gb"]  # an openai_http model's memory is its endpoint's
    data = tiny_config_dict(tmp_path, models=models, router={"name": "smallest"}, **overrides)
    return write_config(tmp_path, data)


def test_a_prompt_over_the_servers_context_goes_to_the_model_it_serves_longer(
    tmp_path: Path, upstream: str
) -> None:
    """llama-cpp-python's server lists no context in its /v1/models and refuses a prompt
    over its n_ctx with OpenAI's 400 ("This model's maximum context length is 128
    tokens. However, you requested ..."). Until 2026-12-06 the 128 it states was not
    read: ``short`` was held to its configured 4096, no larger model's was longer, and
    the request failed ("no larger model's context is longer (long: 4096 tokens)")."""
    cfg = remote_config(tmp_path, upstream, carbon={"enabled": False})
    with RouterLLM(load_config(cfg)) as system:
        result = system.generate(LONG_PROMPT)
    assert result.model == "long", result.reason
    assert "too long for short's context of 128 tokens: sent to long" in result.reason
    assert result.prompt_tokens > CONTEXTS["short"]
