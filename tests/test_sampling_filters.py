"""The sampling filters ``top_k`` and ``min_p`` (``generation`` in the config, and each
request's own): None leaves each backend's own default; a value set is applied the
same way by llama.cpp and transformers, on the real tiny models.

Until 2026-12-05 neither could be set: llama-cpp-python sampled with its own top_k 40
and min_p 0.05, transformers with top_k 50 (or the model's generation_config.json
value) and no min_p, so one config sampled differently on the two local backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routerllm.backends import GenerationRequest, create_backend
from routerllm.backends.base import Backend
from routerllm.backends.hf import HFBackend, tempered_min_p
from routerllm.cli import main
from routerllm.config import GenerationConfig, ModelConfig, load_config
from routerllm.exceptions import ConfigError, PromptError

from .conftest import random_llama_gguf, tiny_config_dict, tiny_model, write_config
from .test_hf_backend import PROMPT, build_tiny_model

SEEDS = range(3)
SAMPLED = GenerationConfig(max_new_tokens=6, temperature=1.0, seed=0)


def llama_backend(generation: GenerationConfig = SAMPLED) -> Backend:
    cfg = ModelConfig.model_validate(tiny_model("tiny", "light", 0.001))
    return create_backend(cfg, generation, n_threads=1)


def hf_backend(model_id: Path, generation: GenerationConfig = SAMPLED) -> HFBackend:
    cfg = ModelConfig(
        name="tiny-hf", backend="hf", tier="light", params_b=0.001, model_id=str(model_id),
        memory_gb=0.1, context_length=64,
    )  # fmt: skip
    return HFBackend(cfg, generation, n_threads=1)


def answers(backend: Backend, prompt: str, **options: object) -> set[str]:
    """The answers to ``prompt`` sampled with each of ``SEEDS``."""
    return {backend.generate(GenerationRequest(prompt, seed=s, **options)).text for s in SEEDS}  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ["llama_cpp", "hf"])
def test_top_k_1_or_min_p_1_samples_the_greedy_answer_on_both_local_backends(
    engine: str, tmp_path: Path
) -> None:
    """The tiny GGUF through llama.cpp, and through transformers (dequantised) a small
    llama GGUF of 1,000 of its tokens (with the tiny GGUF's 32,000 that case alone took
    23.1 s of CPU, with these 17.6 s, load 8, 2026-12-07): sampled at temperature 1 its answers
    differ from the greedy one; kept to the likeliest token (top_k 1, or min_p 1: no
    token less likely than the likeliest), each sampled answer is the greedy one,
    whether the request or the config sets the filter."""
    prompt = "def add(a, b):"
    if engine == "llama_cpp":
        backend: Backend = llama_backend()
    else:
        small = random_llama_gguf(tmp_path / "m.gguf", width=64, ffn=128, blocks=1, vocab=1000)
        backend = hf_backend(small)
    greedy = backend.generate(GenerationRequest(prompt, temperature=0.0)).text
    assert answers(backend, prompt) != {greedy}  # sampling is sampling here
    assert answers(backend, prompt, top_k=1) == {greedy}
    assert answers(backend, prompt, min_p=1.0) == {greedy}
    backend.generation = SAMPLED.model_copy(update={"top_k": 1})  # the config's
    assert answers(backend, prompt) == {greedy}
    # 0 is no filter: the request's 0 lifts the config's top_k 1
    assert answers(backend, prompt, top_k=0) != {greedy}
    backend.unload()


def test_an_explicit_top_k_replaces_the_models_generation_config_on_transformers(
    tmp_path: Path,
) -> None:
    """transformers samples with the top_k of the model's generation_config.json (Qwen's
    20): left unset it still applies (the backend's own default), a top_k set replaces
    it, 0 lifts it. Here the model's own is 1: only unset is greedy."""
    folder = build_tiny_model(tmp_path / "tiny")
    (folder / "generation_config.json").write_text(json.dumps({"top_k": 1, "do_sample": True}))
    backend = hf_backend(folder)
    greedy = backend.generate(GenerationRequest(PROMPT, temperature=0.0)).text
    assert answers(backend, PROMPT) == {greedy}
    assert answers(backend, PROMPT, top_k=0) != {greedy}
    assert answers(backend, PROMPT, top_k=50) != {greedy}
    backend.unload()


def test_min_p_is_of_the_untempered_distribution_on_transformers_as_on_llama_cpp() -> None:
    """llama.cpp filters by min_p before it applies the temperature, transformers after:
    p/p_max >= min_p before is (p/p_max) ** (1/T) >= min_p ** (1/T) after, so the same
    tokens are kept where transformers is given min_p ** (1/T)."""
    assert tempered_min_p(0.25, 1.0) == 0.25
    assert tempered_min_p(0.25, 0.5) == pytest.approx(0.0625)
    assert tempered_min_p(0.25, 2.0) == pytest.approx(0.5)
    assert tempered_min_p(0.0, 0.3) == 0.0 and tempered_min_p(1.0, 0.3) == 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"top_k": -1}, "bad sampling options: top_k -1"),
        ({"top_k": 2**31}, "bad sampling options: top_k 2147483648"),
        ({"min_p": 1.5}, "bad sampling options: min_p 1.5"),
        ({"min_p": -0.1}, "bad sampling options: min_p -0.1"),
        ({"min_p": float("nan")}, "bad sampling options: min_p nan"),
        ({"top_k": 1.5}, "bad request options: top_k 1.5"),
        ({"top_k": True}, "bad request options: top_k True"),
        ({"min_p": "0.1"}, "bad request options: min_p '0.1'"),
    ],
)
def test_a_bad_top_k_or_min_p_in_a_request_is_refused(options: dict[str, object], message: str) -> None:  # fmt: skip
    with pytest.raises(PromptError, match=message.replace("(", r"\(")) as e:
        GenerationRequest("x", **options)  # type: ignore[arg-type]
    assert e.value.param == next(iter(options)) and "\n" not in str(e.value)


def test_a_good_top_k_or_min_p_in_a_request_is_kept() -> None:
    request = GenerationRequest("x", top_k=0, min_p=0.0)
    assert (request.top_k, request.min_p) == (0, 0.0)
    assert GenerationRequest("x", top_k=40, min_p=1).min_p == 1


@pytest.mark.parametrize(
    ("setting", "found"),
    [
        ({"top_k": -1}, "generation.top_k: Input should be greater than or equal to 0"),
        ({"top_k": 1.5}, "generation.top_k: Input should be a valid integer"),
        ({"top_k": 2**31}, "generation.top_k: Input should be less than or equal to 2147483647"),
        ({"min_p": 1.5}, "generation.min_p: Input should be less than or equal to 1"),
        ({"min_p": "high"}, "generation.min_p: Input should be a valid number"),
    ],
)
def test_a_bad_top_k_or_min_p_in_the_config_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: dict[str, object], found: str
) -> None:
    data = tiny_config_dict(tmp_path, generation={"max_new_tokens": 8, **setting})
    path = write_config(tmp_path, data)
    with pytest.raises(ConfigError, match=found):
        load_config(path)
    assert main(["models", "--config", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and found in err[0], err


def test_unset_top_k_and_min_p_leave_each_backends_own() -> None:
    """The config's defaults change nothing: llama-cpp-python's top_k 40 and min_p 0.05,
    transformers' generation_config values, as before."""
    config = load_config("local")
    assert (config.generation.top_k, config.generation.min_p) == (None, None)
