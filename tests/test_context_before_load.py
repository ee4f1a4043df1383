"""A prompt too long for a cold llama.cpp model's context, refused (or sent to a larger
model) before the model loads: counted by its GGUF's vocabulary alone, the count the
loaded model gives, against the context it will run with. Until 2026-12-07 the model
was loaded (evicting the models it needed room from) only to refuse the prompt. Real
tiny GGUFs through llama.cpp, a real request log, a real server on localhost."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.backends.llama_cpp import LlamaCppBackend
from routerllm.carbon.log_rows import RequestRecord
from routerllm.carbon.meter import Measurement
from routerllm.config import AppConfig, GGUFSource, load_config
from routerllm.exceptions import BudgetExceededError, ContextLengthError
from routerllm.manager import LLMManager
from routerllm.system import RouterLLM

from .conftest import (
    ZEPHYR_TEMPLATE,
    gguf_with_chat_template,
    packages_of_parts,
    tiny_config_dict,
    tiny_gguf_path,
    tiny_gguf_reader,
    tiny_model,
    tokenizer_calls,
    write_config,
)
from .test_server import CHAT, asking, call, running

PROMPT = "word " * 60  # over 48 tokens of the tiny model's vocabulary, well under 512


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The llama.cpp models loaded meanwhile, in order (each load real)."""
    loaded: list[str] = []
    real = LlamaCppBackend._load

    def counted(self: LlamaCppBackend) -> None:
        loaded.append(self.name)
        real(self)

    monkeypatch.setattr(LlamaCppBackend, "_load", counted)
    yield loaded


def _config(tmp_path: Path, **overrides: Any) -> AppConfig:
    """The tiny ladder, tiny-light's context 48 tokens, an hourly CO2 budget."""
    data = tiny_config_dict(tmp_path, **{"budgets": {"co2_kg": {"hourly": 1.0}}, **overrides})
    data["models"][0]["context_length"] = 48
    return load_config(write_config(tmp_path, data))


def _one_at_a_time(tmp_path: Path) -> AppConfig:
    """``_config``, its memory budget holding tiny-light or tiny-heavy, not both."""
    config = _config(tmp_path, manager={"memory_budget_gb": 0.6})
    config.model("tiny-light").memory_gb = 0.3
    config.model("tiny-heavy").memory_gb = 0.5
    return config


def _unloaded_refusal(record: RequestRecord, model: str, read: bool = False) -> None:
    """``record`` is ``model``'s refusal of a prompt it read no token of: failed, its
    routing spent, its loading component there: zero (nothing loaded), or, ``read``,
    the measured read of its vocabulary (or tokenizer) that its count made (since
    2026-12-07: it was logged as zero, spent all the same), which is no load
    (``model_loaded``)."""
    assert record.model_loaded is False
    assert (record.model, record.finish_reason) == (model, "error")
    assert record.prompt_tokens == record.completion_tokens == 0
    assert list(record.components) == ["router_inference", "model_loading"]
    loading = record.components["model_loading"]
    if read:
        assert loading.duration_s > 0 and loading.energy_kwh > 0 and loading.co2_kg > 0
    else:
        assert loading.duration_s == loading.energy_kwh == loading.co2_kg == 0
    assert record.load_error == ""


def measured_blocks(system: RouterLLM, monkeypatch: pytest.MonkeyPatch) -> list[Measurement]:
    """The blocks ``system``'s meter measures from now on, each as it ends (its real
    CodeCarbon measurement)."""
    blocks: list[Measurement] = []
    real = system.meter.measure

    @contextmanager
    def measure(component: str) -> Iterator[Any]:
        with real(component) as slot:
            yield slot
        blocks.append(slot.result)

    monkeypatch.setattr(system.meter, "measure", measure)
    return blocks


def _loads_of(blocks: list[Measurement]) -> list[Measurement]:
    return [b for b in blocks if b.component == "model_loading"]


@pytest.mark.parametrize("template", [None, ZEPHYR_TEMPLATE])
def test_a_named_cold_model_refuses_a_prompt_over_its_context_without_loading(
    tmp_path: Path, loads: list[str], monkeypatch: pytest.MonkeyPatch, template: str | None
) -> None:
    """The refusal is the loaded model's: the same error, words, count (its chat
    template's framing included, where its GGUF has one) and context; logged alike (its
    routing spent, no load billed: the budgets count the row's spending alone); the
    prompt tokenized once, for the prediction and the refusal both."""
    config = _config(tmp_path)
    if template is not None:
        chat = gguf_with_chat_template(tmp_path / "chat.gguf", template)
        config.model("tiny-light").gguf = GGUFSource(path=str(chat))
    with RouterLLM(config) as system:
        with tokenizer_calls(monkeypatch) as texts, pytest.raises(ContextLengthError) as cold:
            system.generate(PROMPT, model="tiny-light", tag="cold")
        assert sum(PROMPT.encode() in text for text in texts) == 1
        assert loads == [] and system.manager.loaded_models == []
        assert not system.manager.backend("tiny-light").loaded
        (cold_row,) = system.log.records(tag="cold")
        _unloaded_refusal(cold_row, "tiny-light", read=True)
        assert cold.value.request_id == cold_row.id
        price = config.carbon.electricity_price_usd_per_kwh
        assert cold_row.cost_usd == pytest.approx(cold_row.energy_kwh * price, rel=1e-9)
        assert cold_row.energy_kwh == pytest.approx(sum(m.energy_kwh for m in cold_row.components.values()), rel=1e-9)  # fmt: skip
        assert system.budget is not None
        assert system.budget.status()[0].spent == pytest.approx(cold_row.co2_kg, rel=1e-9)
        # the model loaded: its own count and check refuse the same prompt alike
        system.generate(GenerationRequest("hi", max_new_tokens=1), model="tiny-light")
        with pytest.raises(ContextLengthError) as warm:
            system.generate(PROMPT, model="tiny-light", tag="warm")
        assert loads == ["tiny-light"]
        (warm_row,) = system.log.records(tag="warm")
    _unloaded_refusal(warm_row, "tiny-light")
    assert str(cold.value) == str(warm.value)
    framed = " with the model's chat template" if template else ""
    assert re.match(rf"prompt is \d+ tokens{framed}, too long for model 'tiny-light' \(context 48 tokens\); ", str(cold.value))  # fmt: skip
    assert (cold.value.context, cold.value.param) == (warm.value.context, warm.value.param) == (48, "prompt")  # fmt: skip


def test_a_cold_refusal_logs_its_vocabularys_read_and_a_warm_one_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count that refuses a prompt for a cold model opened its GGUF's vocabulary:
    that read, measured by the request's meter (its one ``model_loading`` block), is
    the row's ``model_loading``, in its latency, energy, cost and the budgets (until
    2026-12-07 the row said 0 s and 0 kWh, the read spent all the same). The next
    refusal counts with the vocabulary open: no read, nothing metered, a zero loading."""
    config = _config(tmp_path)
    with RouterLLM(config) as system:
        blocks = measured_blocks(system, monkeypatch)
        with pytest.raises(ContextLengthError):
            system.generate(PROMPT, model="tiny-light", tag="cold")
        (read,) = _loads_of(blocks)
        (cold,) = system.log.records(tag="cold")
        assert system.budget is not None
        spent = system.budget.status()[0].spent
        blocks.clear()
        with pytest.raises(ContextLengthError):
            system.generate(PROMPT, model="tiny-light", tag="warm")
        assert _loads_of(blocks) == []
        (warm,) = system.log.records(tag="warm")
    _unloaded_refusal(cold, "tiny-light", read=True)
    assert cold.components["model_loading"] == read
    routing = cold.components["router_inference"]
    assert cold.latency_s == pytest.approx(routing.duration_s + read.duration_s, rel=1e-9)
    assert cold.energy_kwh == pytest.approx(routing.energy_kwh + read.energy_kwh, rel=1e-9)
    price = config.carbon.electricity_price_usd_per_kwh
    assert cold.cost_usd == pytest.approx(cold.energy_kwh * price, rel=1e-9)
    assert spent == pytest.approx(cold.co2_kg, rel=1e-9)
    _unloaded_refusal(warm, "tiny-light")


def test_a_cold_answer_logs_its_vocabularys_read_with_its_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold model's answer: its prediction's count read its vocabulary before the load;
    the row's ``model_loading`` is both measured blocks, the answering model's own. A warm
    answer (the model loaded, the count its own) meters no read and no load."""
    config = _config(tmp_path)
    asked = GenerationRequest("hi", max_new_tokens=1)
    with RouterLLM(config) as system:
        blocks = measured_blocks(system, monkeypatch)
        system.generate(asked, model="tiny-light", tag="cold")
        read, load = _loads_of(blocks)
        (cold,) = system.log.records(tag="cold")
        blocks.clear()
        system.generate(asked, model="tiny-light", tag="warm")
        assert _loads_of(blocks) == []
        (warm,) = system.log.records(tag="warm")
    loading = cold.components["model_loading"]
    assert loading.duration_s == pytest.approx(read.duration_s + load.duration_s, rel=1e-9)
    assert loading.energy_kwh == pytest.approx(read.energy_kwh + load.energy_kwh, rel=1e-9)
    assert read.duration_s > 0 and read.energy_kwh > 0
    assert cold.escalated == {} and cold.own("model_loading") == loading
    assert cold.latency_s == pytest.approx(sum(m.duration_s for m in cold.components.values()), rel=1e-9)  # fmt: skip
    assert warm.components["model_loading"].duration_s == 0
    # the cold answer's model loaded (its read before), the warm one's did not
    assert (cold.model_loaded, warm.model_loaded) == (True, False)


def test_a_budgets_refusal_logs_the_reads_its_prediction_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused by a per-request budget once routed: its prediction counted the prompt by
    the cold model's vocabulary, read for it; the refused row (its routing alone until
    2026-12-07) has that read as its ``model_loading``."""
    config = _config(tmp_path, budgets={"co2_kg": {"per_request": 1e-12}})
    with RouterLLM(config) as system:
        blocks = measured_blocks(system, monkeypatch)
        with pytest.raises(BudgetExceededError):
            system.generate("hi", model="tiny-light", tag="refused")
        (read,) = _loads_of(blocks)
        (row,) = system.log.records(tag="refused")
    assert row.finish_reason == "refused:budget"
    assert list(row.components) == ["router_inference", "model_loading"]
    assert row.components["model_loading"] == read and read.energy_kwh > 0
    assert row.model_loaded is False  # a read, no load
    assert row.energy_kwh == pytest.approx(row.components["router_inference"].energy_kwh + read.energy_kwh, rel=1e-9)  # fmt: skip


def test_two_cold_requests_at_once_read_the_vocabulary_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests for the same cold model at once: one opens its vocabulary (its row
    has the read), the other waits for that opening and counts with it (no read of its
    own, a zero loading): the read is made and billed once (each opened it, and the
    second's wait for the first was measured as its read, before one opening at a time)."""
    import threading

    from routerllm.backends import llama_prompt

    real_open, opening = llama_prompt._open, threading.Event()

    def slow_open(name: str, path: Path, stamp: str) -> Any:
        opening.set()
        opening.wait()
        import time

        time.sleep(0.3)  # the other request comes to count meanwhile
        return real_open(name, path, stamp)

    monkeypatch.setattr(llama_prompt, "_open", slow_open)
    # carbon tracking off: no meter's turn makes the two requests take turns meanwhile
    config = _config(tmp_path, carbon={"enabled": False}, budgets={})
    with RouterLLM(config) as system:
        blocks = measured_blocks(system, monkeypatch)
        start = threading.Barrier(2)

        def ask(tag: str) -> None:
            start.wait()
            with pytest.raises(ContextLengthError):
                system.generate(PROMPT, model="tiny-light", tag=tag)

        threads = [threading.Thread(target=ask, args=(tag,)) for tag in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        (read,) = _loads_of(blocks)
        rows = [r for tag in ("a", "b") for r in system.log.records(tag=tag)]
    assert len(rows) == 2
    loadings = sorted((r.components["model_loading"] for r in rows), key=lambda m: m.duration_s)
    _unloaded_refusal(rows[0] if rows[0].components["model_loading"] == loadings[0] else rows[1], "tiny-light")  # fmt: skip
    assert loadings[1] == read


def test_a_routed_cold_model_steps_up_without_loading(tmp_path: Path, loads: list[str]) -> None:
    """The router chose tiny-light, whose context does not hold the prompt: tiny-medium
    answers, tiny-light never loaded, the step up said as the loaded model's refusal
    says it, and no load of tiny-light's in the row (its refused models' part zero)."""
    config = _config(tmp_path)
    config.router.name = "smallest"
    with RouterLLM(config) as system:
        result = system.generate(PROMPT, tag="cold")
        assert loads == ["tiny-medium"] and system.manager.loaded_models == ["tiny-medium"]
        assert result.model == "tiny-medium"
        (record,) = system.log.records(tag="cold")
        refused = record.escalated["model_loading"]  # tiny-light's vocabulary's read
        assert refused.duration_s > 0 and refused.energy_kwh > 0
        own = record.own("model_loading")
        assert own is not None and own.duration_s > 0  # tiny-medium's own load
        assert result.cost_usd == pytest.approx(result.energy_kwh * config.carbon.electricity_price_usd_per_kwh, rel=1e-9)  # fmt: skip
        system.generate(GenerationRequest("hi", max_new_tokens=1), model="tiny-light")
        warm = system.generate(PROMPT, tag="warm")  # tiny-light loaded: its own check
    said = "; the prompt is too long for tiny-light's context of 48 tokens: sent to tiny-medium"
    assert said in result.reason and warm.reason == result.reason


def test_the_model_the_user_had_loaded_is_not_evicted_for_a_refusal(
    tmp_path: Path, loads: list[str]
) -> None:
    """The memory budget holds tiny-heavy or tiny-light: a prompt too long for
    tiny-light's context, named to it, left tiny-heavy loaded (it was evicted for
    tiny-light's load until 2026-12-07)."""
    config = _one_at_a_time(tmp_path)
    with RouterLLM(config) as system:
        manager = system.manager
        both = manager.local_gb("tiny-light") + manager.local_gb("tiny-heavy")
        assert manager.local_gb("tiny-heavy") <= manager.budget_gb < both
        system.generate(GenerationRequest("hi", max_new_tokens=1), model="tiny-heavy")
        with pytest.raises(ContextLengthError, match="too long for model 'tiny-light'"):
            system.generate(PROMPT, model="tiny-light")
        assert manager.loaded_models == ["tiny-heavy"] and loads == ["tiny-heavy"]
        _unloaded_refusal(list(system.log.records())[-1], "tiny-light", read=True)


def test_the_server_answers_a_cold_models_refusal_as_a_loaded_ones(
    tmp_path: Path, loads: list[str]
) -> None:
    """OpenAI's 400 ``context_length_exceeded``, the same message as once the model is
    loaded, naming its row; the warm model stays loaded."""
    config = _one_at_a_time(tmp_path)
    too_long = asking(("user", PROMPT), model="tiny-light", max_tokens=1)
    with RouterLLM(config) as system, running(system) as base:
        status, text = call(base, CHAT, asking(model="tiny-heavy", max_tokens=1))
        assert status == 200, text
        cold_status, cold = call(base, CHAT, too_long)
        assert system.manager.loaded_models == ["tiny-heavy"] and loads == ["tiny-heavy"]
        row = list(system.log.records())[-1]
        _unloaded_refusal(row, "tiny-light", read=True)
        assert json.loads(cold)["routerllm"]["request_id"] == row.id
        status, text = call(base, CHAT, asking(model="tiny-light", max_tokens=1))
        assert status == 200, text
        warm_status, warm = call(base, CHAT, too_long)
    assert cold_status == warm_status == 400, cold
    cold_error, warm_error = json.loads(cold)["error"], json.loads(warm)["error"]
    assert cold_error == warm_error
    assert cold_error["code"] == "context_length_exceeded" and cold_error["param"] == "messages"
    assert "too long for model 'tiny-light' (context 48 tokens)" in cold_error["message"]


@pytest.fixture
def split_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., tuple[list[str], str]]]:
    """Makes part packages of a GGUF (``packages_of_parts``), the model cache in
    ``tmp_path``; each forgotten by ``sys.modules`` once the test ends."""
    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))
    made: list[Iterator[tuple[list[str], str]]] = []

    def make(gguf: Path, first: int | None = None) -> tuple[list[str], str]:
        made.append(packages_of_parts(tmp_path, gguf, monkeypatch, first))
        return next(made[-1])

    yield make
    for parts in made:
        next(parts, None)


def _split_light(tmp_path: Path, parts: tuple[list[str], str]) -> AppConfig:
    """A config of tiny-light alone, a split model of ``parts`` (``gguf.parts``), its
    context 48 tokens."""
    names, sha = parts
    light = tiny_model("tiny-light", "light", 0.1, gguf={"parts": names, "sha256": sha}, context_length=48)  # fmt: skip
    return load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=[light])))


@pytest.mark.parametrize("template", [None, ZEPHYR_TEMPLATE])
def test_a_split_model_not_yet_assembled_refuses_without_assembling_or_loading(
    tmp_path: Path, loads: list[str], split_parts: Callable[..., Any], template: str | None
) -> None:
    """A split model whose parts are not yet assembled (the local ladder's Qwen models at
    their first request) counts by its first part's key-values alone (its GGUF's whole
    header: vocabulary, chat template), written as a GGUF of no tensors into the model
    cache: the prompt is refused with no assembly, no load and no load billed, in the
    words, count and context of the assembled model loaded. Until 2026-12-07 the parts
    were assembled and the model loaded only to refuse it."""
    cache = tmp_path / "cache"
    gguf = tiny_gguf_path() if template is None else gguf_with_chat_template(tmp_path / "chat.gguf", template)  # fmt: skip
    config = _split_light(tmp_path, split_parts(gguf))
    with RouterLLM(config) as system:
        with pytest.raises(ContextLengthError) as cold:
            system.generate(PROMPT, model="tiny-light")
        assert loads == [] and not system.manager.backend("tiny-light").loaded
        assert not (cache / "models" / "tiny-light.gguf").exists()  # not assembled
        # the energy prediction's count too (an estimate until 2026-12-07)
        counted = system.manager.prompt_tokens_now("tiny-light", GenerationRequest(PROMPT))
        assert f"prompt is {counted} tokens" in str(cold.value)
        # the model assembled and loaded: its own count and check refuse it alike
        system.generate(GenerationRequest("hi", max_new_tokens=1), model="tiny-light")
        assert loads == ["tiny-light"] and (cache / "models" / "tiny-light.gguf").is_file()
        with pytest.raises(ContextLengthError) as warm:
            system.generate(PROMPT, model="tiny-light")
        first, _, _ = system.log.records()
    _unloaded_refusal(first, "tiny-light", read=True)  # its key-values written and read
    assert str(cold.value) == str(warm.value)
    framed = " with the model's chat template" if template else ""
    assert re.match(rf"prompt is \d+ tokens{framed}, too long for model 'tiny-light' \(context 48 tokens\); ", str(cold.value))  # fmt: skip
    assert cold.value.context == warm.value.context == 48


def test_the_first_parts_vocabulary_is_its_own_and_made_again_once_it_changes(
    tmp_path: Path, split_parts: Callable[..., Any]
) -> None:
    """The GGUF of key-values holds the first part's key-values, as they are, and no
    tensor (the first part here ends where they end, before the tensors' list); made
    once, and again once the first part is replaced (upgraded part packages: here the
    same model given a chat template, counted with it then)."""
    import gguf

    from routerllm.gguf_header import key_values_end
    from routerllm.model_files import vocab_file

    ends = key_values_end(tiny_gguf_path())
    assert ends is not None
    names, sha = split_parts(tiny_gguf_path(), first=ends[0])
    config = _split_light(tmp_path, (names, sha))
    source = config.model("tiny-light").gguf
    assert source is not None
    vocab = vocab_file(source, "tiny-light")
    assert vocab == tmp_path / "cache" / "models" / "vocab" / "tiny-light.gguf"
    made, whole = gguf.GGUFReader(vocab), tiny_gguf_reader()
    assert len(made.tensors) == 0 and len(whole.tensors) > 0
    assert {k: f.contents() for k, f in made.fields.items() if not k.startswith("GGUF.")} == {
        k: f.contents() for k, f in whole.fields.items() if not k.startswith("GGUF.")
    }
    stamp = vocab.stat().st_mtime_ns
    assert vocab_file(source, "tiny-light") == vocab and vocab.stat().st_mtime_ns == stamp
    manager = LLMManager(config)
    try:
        plain = manager.refusal_before_load("tiny-light", GenerationRequest(PROMPT))
        # its first part replaced by the first third of the GGUF with a chat template
        chat = gguf_with_chat_template(tmp_path / "chat.gguf", ZEPHYR_TEMPLATE).read_bytes()
        first = Path(importlib.import_module(names[0]).get_part_path())
        first.write_bytes(chat[: len(chat) // 3])
        templated = manager.refusal_before_load("tiny-light", GenerationRequest(PROMPT))
    finally:
        manager.close()
    assert plain is not None and templated is not None
    assert "with the model's chat template" not in str(plain)
    assert "with the model's chat template" in str(templated)
    assert vocab_file(source, "tiny-light") == vocab and vocab.stat().st_mtime_ns != stamp


def test_a_split_model_whose_first_part_ends_within_its_key_values_is_loaded_and_refuses(
    tmp_path: Path, loads: list[str], split_parts: Callable[..., Any]
) -> None:
    """A first part too short to hold its GGUF's key-values (the tiny GGUF's end 723,708
    bytes in) gives no count: the model is assembled, loaded and refuses the prompt by
    its own check, as before; assembled, the next cold request is refused without
    loading."""
    config = _split_light(tmp_path, split_parts(tiny_gguf_path(), first=500_000))
    with RouterLLM(config) as system:
        manager = system.manager
        assert manager.refusal_before_load("tiny-light", GenerationRequest(PROMPT)) is None
        assert not (tmp_path / "cache" / "models" / "vocab" / "tiny-light.gguf").exists()
        with pytest.raises(ContextLengthError, match=r"too long for model 'tiny-light' \(context 48 tokens\)") as loaded:  # fmt: skip
            system.generate(PROMPT, model="tiny-light")
        assert loads == ["tiny-light"]
        manager.unload("tiny-light")
        with pytest.raises(ContextLengthError) as cold:
            system.generate(PROMPT, model="tiny-light")
        assert loads == ["tiny-light"] and str(cold.value) == str(loaded.value)
        first, second = system.log.records()
    assert first.components["model_loading"].duration_s > 0  # its load (and assembly), paid for
    # a load, then a refusal: the row of a cold refusal's shape (no generation), but the
    # model loaded (the report counts it, as the next refusal's read it does not)
    assert first.model_loaded is True and first.load_error == ""
    assert "llm_inference" not in first.components
    _unloaded_refusal(second, "tiny-light", read=True)  # the assembled file's vocabulary
