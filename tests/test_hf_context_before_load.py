"""A prompt too long for a cold transformers model's context, refused (or sent to a
larger model) before its weights load: counted by its tokenizer alone, framed by its
chat template as the loaded model frames it, against its config's context (its
``max_position_embeddings``, at most the configured ``context_length``). Until
2026-12-07 the weights were loaded (evicting the models they needed room from) only to
refuse the prompt. Tiny real transformers models saved offline, a real request log, a
real server on localhost."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.backends.hf import HFBackend
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import ContextLengthError
from routerllm.manager import LLMManager
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, tiny_model, write_config
from .test_context_before_load import _loads_of, _unloaded_refusal, measured_blocks
from .test_hf_backend import CHAT_TEMPLATE, VOCAB, build_gpt2, build_tiny_model
from .test_server import CHAT, asking, call, running

#: 40 words of the tiny tokenizer (a token each): over a context of 20 tokens, and of
#: the tiny GPT-2's own 32; under the tiny Llama's 128.
PROMPT = " ".join(VOCAB[10:50])


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-chat"), CHAT_TEMPLATE)


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The models whose weights were loaded meanwhile, in order (each load real)."""
    loaded: list[str] = []
    real = HFBackend.load

    def counted(self: HFBackend) -> None:
        if not self.loaded:
            loaded.append(self.name)
        real(self)

    monkeypatch.setattr(HFBackend, "load", counted)
    yield loaded


@pytest.fixture
def tokenizer_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The folders transformers read a tokenizer from meanwhile."""
    from transformers import AutoTokenizer

    read: list[str] = []
    real = AutoTokenizer.from_pretrained

    def counted(model_id: str, *args: Any, **kwargs: Any) -> Any:
        read.append(str(model_id))
        return real(model_id, *args, **kwargs)

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", counted)
    yield read


def hf_model(name: str, tier: str, path: Path, context: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "backend": "hf", "tier": tier, "params_b": 0.001, "model_id": str(path),
            "memory_gb": 0.1, "context_length": context, **extra}  # fmt: skip


def _config(tmp_path: Path, *models: dict[str, Any], **overrides: Any) -> AppConfig:
    data = tiny_config_dict(tmp_path, budgets={"co2_kg": {"hourly": 1.0}}, **overrides)
    data["models"] = list(models)
    return load_config(write_config(tmp_path, data))


@pytest.mark.parametrize(
    ("template", "context", "said"),
    [
        (False, 20, "context 20 tokens"),
        (True, 20, "context 20 tokens"),
        (False, 4096, "context 128 tokens, the model's own, under its configured context_length"),
    ],
)
def test_a_named_cold_hf_model_refuses_a_prompt_over_its_context_without_loading(
    tmp_path: Path,
    plain_dir: Path,
    chat_dir: Path,
    loads: list[str],
    tokenizer_reads: list[str],
    template: bool,
    context: int,
    said: str,
) -> None:
    """The refusal is the loaded model's: the same error, words, count (its chat
    template's framing included, where its tokenizer has one) and context (its own,
    where the configured one is longer); logged alike, no load billed. The tokenizer the
    count read is the one the load takes: read once."""
    folder = chat_dir if template else plain_dir
    prompt = PROMPT if context == 20 else " ".join(VOCAB[10:150])  # 140 tokens
    config = _config(tmp_path, hf_model("tiny-hf", "light", folder, context))
    with RouterLLM(config) as system:
        with pytest.raises(ContextLengthError) as cold:
            system.generate(prompt, model="tiny-hf", tag="cold")
        assert loads == [] and not system.manager.backend("tiny-hf").loaded
        (cold_row,) = system.log.records(tag="cold")
        _unloaded_refusal(cold_row, "tiny-hf", read=True)  # its tokenizer's and config's read
        assert cold.value.request_id == cold_row.id
        assert system.budget is not None
        assert system.budget.status()[0].spent == pytest.approx(cold_row.co2_kg, rel=1e-9)
        # the model loaded: its own count and check refuse the same prompt alike
        system.generate(GenerationRequest("hello", max_new_tokens=1), model="tiny-hf")
        assert loads == ["tiny-hf"] and tokenizer_reads == [str(folder)]
        with pytest.raises(ContextLengthError) as warm:
            system.generate(prompt, model="tiny-hf", tag="warm")
        (warm_row,) = system.log.records(tag="warm")
    _unloaded_refusal(warm_row, "tiny-hf")
    assert str(cold.value) == str(warm.value)
    assert f"too long for model 'tiny-hf' ({said}); " in str(cold.value)
    assert cold.value.context == warm.value.context == min(context, 128)


def test_a_cold_hf_models_rows_carry_its_tokenizers_read_once(
    tmp_path: Path, plain_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first cold refusal read the tokenizer and config (measured: its row's
    ``model_loading``); the second counts with them kept: nothing read nor metered, a zero
    loading. A cold answer after it: its load alone (the tokenizer taken over, not read
    again, nor billed twice)."""
    config = _config(tmp_path, hf_model("tiny-hf", "light", plain_dir, 20))
    with RouterLLM(config) as system:
        blocks = measured_blocks(system, monkeypatch)
        for tag in ("first", "again"):
            with pytest.raises(ContextLengthError):
                system.generate(PROMPT, model="tiny-hf", tag=tag)
        (read,) = _loads_of(blocks)
        (first,) = system.log.records(tag="first")
        (again,) = system.log.records(tag="again")
        blocks.clear()
        system.generate(GenerationRequest("hello", max_new_tokens=1), model="tiny-hf", tag="answered")  # fmt: skip
        (load,) = _loads_of(blocks)
        (answered,) = system.log.records(tag="answered")
    _unloaded_refusal(first, "tiny-hf", read=True)
    assert first.components["model_loading"] == read
    _unloaded_refusal(again, "tiny-hf")
    assert answered.components["model_loading"] == load


def test_a_cold_hf_answer_logs_its_tokenizers_read_with_its_load(
    tmp_path: Path, plain_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold model's answer whose prompt fits: the count before the load read its
    tokenizer and config (measured), then the load: the row's ``model_loading`` is both."""
    config = _config(tmp_path, hf_model("tiny-hf", "light", plain_dir, 128))
    with RouterLLM(config) as system:
        blocks = measured_blocks(system, monkeypatch)
        system.generate(GenerationRequest(PROMPT, max_new_tokens=1), model="tiny-hf", tag="cold")
        read, load = _loads_of(blocks)
        (row,) = system.log.records(tag="cold")
    loading = row.components["model_loading"]
    assert read.duration_s > 0 and read.energy_kwh > 0
    assert loading.duration_s == pytest.approx(read.duration_s + load.duration_s, rel=1e-9)
    assert loading.energy_kwh == pytest.approx(read.energy_kwh + load.energy_kwh, rel=1e-9)


def test_the_count_frames_the_prompt_with_the_chat_template_as_the_loaded_model(
    tmp_path: Path, plain_dir: Path, chat_dir: Path, loads: list[str]
) -> None:
    """18 words fit a context of 20 as plain text, not framed by the chat template
    ("<s>user ... assistant": 3 tokens more); the count is of the files there now:
    the tokenizer replaced by one with the template (its files' stamp changed), the
    prompt is refused before loading, as the loaded model refuses it."""
    folder = tmp_path / "model"
    shutil.copytree(plain_dir, folder)
    prompt = " ".join(VOCAB[10:28])
    config = _config(tmp_path, hf_model("tiny-hf", "light", folder, 20))
    with RouterLLM(config) as system:
        manager = system.manager
        assert manager.refusal_before_load("tiny-hf", GenerationRequest(prompt)) is None
        shutil.copytree(chat_dir, folder, dirs_exist_ok=True)  # the same weights
        cold = manager.refusal_before_load("tiny-hf", GenerationRequest(prompt))
        assert loads == []
        system.generate(GenerationRequest("hello", max_new_tokens=1), model="tiny-hf")
        with pytest.raises(ContextLengthError) as warm:
            system.generate(prompt, model="tiny-hf")
        assert loads == ["tiny-hf"]
    assert cold is not None and str(cold) == str(warm.value)
    assert str(cold).startswith("prompt is 21 tokens, too long for model 'tiny-hf' (context 20 tokens)")  # fmt: skip


def test_a_routed_cold_hf_model_steps_up_without_loading(
    tmp_path: Path, plain_dir: Path, loads: list[str]
) -> None:
    """The router chose the tiny GPT-2, whose own context (32 positions, under its
    configured 4096) does not hold the prompt: the larger model answers, the GPT-2
    never loaded, no load of it in the row."""
    gpt = hf_model("gpt", "light", build_gpt2(plain_dir, tmp_path / "gpt2"), 4096)
    long = hf_model("long", "heavy", plain_dir, 128, params_b=0.002)
    config = _config(tmp_path, gpt, long, router={"name": "smallest"})
    with RouterLLM(config) as system:
        result = system.generate(PROMPT, tag="cold")
        assert loads == ["long"] and system.manager.loaded_models == ["long"]
        (record,) = system.log.records(tag="cold")
    assert result.model == "long"
    assert "too long for gpt's context of 32 tokens: sent to long" in result.reason
    refused = record.escalated["model_loading"]  # the GPT-2's tokenizer's and config's read
    assert refused.duration_s > 0 and refused.energy_kwh > 0


def test_the_server_answers_a_cold_hf_models_refusal_as_a_loaded_ones(
    tmp_path: Path, plain_dir: Path, loads: list[str]
) -> None:
    """OpenAI's 400 ``context_length_exceeded``, the same message as once the model is
    loaded; the warm model the memory budget holds instead stays loaded."""
    light = hf_model("tiny-hf", "light", plain_dir, 20, memory_gb=0.3)
    heavy = tiny_model("tiny-heavy", "heavy", 1.5, memory_gb=0.5)
    config = _config(tmp_path, light, heavy, manager={"memory_budget_gb": 0.6})
    too_long = asking(("user", PROMPT), model="tiny-hf", max_tokens=1)
    with RouterLLM(config) as system, running(system) as base:
        status, text = call(base, CHAT, asking(model="tiny-heavy", max_tokens=1))
        assert status == 200, text
        cold_status, cold = call(base, CHAT, too_long)
        assert system.manager.loaded_models == ["tiny-heavy"] and loads == []
        _unloaded_refusal(list(system.log.records())[-1], "tiny-hf", read=True)
        status, text = call(base, CHAT, asking(("user", "hello"), model="tiny-hf", max_tokens=1))
        assert status == 200, text
        warm_status, warm = call(base, CHAT, too_long)
    assert cold_status == warm_status == 400, cold
    cold_error, warm_error = json.loads(cold)["error"], json.loads(warm)["error"]
    assert cold_error == warm_error
    assert cold_error["code"] == "context_length_exceeded" and cold_error["param"] == "messages"
    assert "prompt is 40 tokens, too long for model 'tiny-hf' (context 20 tokens)" in cold_error["message"]  # fmt: skip


def test_a_gguf_file_as_model_id_is_not_counted_before_it_loads(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers reads a GGUF's whole metadata for its config (seconds, and again at
    the load): no count before the load, no tokenizer read for one (the loaded model
    checks the prompt, as before)."""
    from routerllm.backends import hf_prompt

    read: list[str] = []
    monkeypatch.setattr(hf_prompt, "read_tokenizer", lambda model_id, gguf: read.append(model_id))  # fmt: skip
    config = _config(tmp_path, hf_model("gguf", "light", tiny_gguf, 32))
    manager = LLMManager(config)
    try:
        assert manager.refusal_before_load("gguf", GenerationRequest(PROMPT)) is None
        assert read == [] and not manager.backend("gguf").loaded
    finally:
        manager.close()
