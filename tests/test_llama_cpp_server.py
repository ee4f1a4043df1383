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

from .conftest import cli_in_process, route_lines, tiny_config_dict, tiny_gguf_path, write_config
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


def test_route_and_report_say_a_generation_without_energy_figures_is_not_known(
    tmp_path: Path, upstream: str
) -> None:
    """A model of the server configured as the README's entries are, with no
    energy_per_token_kwh: its generation's energy cannot be metered here nor computed.
    Until 2026-12-06 it was logged as an ``estimate:per-token`` of 0 kWh: ``route`` said
    ``llm_inference: 3.12 s 0 Wh 0 g`` and the report's totals counted the generation as
    free (a 3 s answer's share of the energy 0.00%) without a word."""
    cfg = str(remote_config(tmp_path, upstream))
    done = cli_in_process("route", "--config", cfg, "--model", "short", "--max-new-tokens", "4", "Hi")  # fmt: skip
    assert done.returncode == 0, done.stderr
    head, _, parts = route_lines(done.stdout)[-3:]
    assert "short" in head and "in / 4 out tokens" in head, head
    assert "(and the generation's, not known)  cost $" in head, head  # its routing's
    assert "llm_inference: " in parts and "energy not known (no energy figures)" in parts, parts
    assert "estimate:no-figures" not in parts  # said in words, as no-usage is
    report = cli_in_process("report", "--config", cfg)
    assert report.returncode == 0, report.stderr
    assert (
        "not in the totals: the generation energy and CO2 of 1 request (short 1), whose "
        "model has no energy_per_token_kwh or co2_per_token_kg"
    ) in report.stdout, report.stdout
    assert json.loads(cli_in_process("report", "--config", cfg, "--json").stdout)["no_energy_figures"] == {"short": 1}  # fmt: skip


def test_serve_in_front_streams_the_servers_answer(tmp_path: Path, upstream: str) -> None:
    """``routerllm serve`` in front of the server: a streamed chat is asked of it
    streamed (its SSE), its text passed on as it comes, ending at its finish reason
    (``length`` at max_tokens). Its stream carries no usage, though it accepts
    ``stream_options.include_usage``: the answer's tokens are estimated from its text
    (the model has no energy figures: its method says both, estimate:no-figures:from-text)."""
    from .test_server import CHAT, call, running

    cfg = remote_config(tmp_path, upstream, carbon={"enabled": False})
    body = {"model": "long", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
    with RouterLLM(load_config(cfg)) as system, running(system) as base:
        status, text = call(base, CHAT, {**body, "stream": True, "stream_options": {"include_usage": True}})  # fmt: skip
        whole_status, whole = call(base, CHAT, {**body, "temperature": 0})
    assert status == 200, text
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    pieces = [c["delta"].get("content", "") for e in events for c in e["choices"]]
    assert len([p for p in pieces if p]) >= 2, pieces  # streamed, not one piece at the end
    finish = [c["finish_reason"] for e in events for c in e["choices"] if c["finish_reason"]]
    assert finish == ["length"] and text.rstrip().endswith("data: [DONE]")
    [said] = [e["routerllm"] for e in events if "routerllm" in e]
    assert said["methods"]["llm_inference"] == "estimate:no-figures:from-text"
    # estimated: "Hi" from its characters, the answer's 5 tokens from its characters or
    # its 5 pieces (one a token), whichever are more: never fewer than it wrote
    usage = events[-1]["usage"]
    assert usage["prompt_tokens"] >= 1 and usage["completion_tokens"] >= 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # unstreamed, its usage is read: 5 tokens written
    assert whole_status == 200, whole
    assert json.loads(whole)["usage"]["completion_tokens"] == 5
