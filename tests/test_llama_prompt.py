"""A request's prompt counted in tokens by llama.cpp (``routerllm.backends.llama_prompt``):
tokenized once per request, its text tokenized a second time (without special tokens)
only where it may hold control-token text, on a real tiny GGUF."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from routerllm.backends import GenerationRequest
from routerllm.backends.base import chat_messages, template_tokens
from routerllm.backends.llama_prompt import (
    ControlText,
    LlamaPrompt,
    control_texts,
    one_count_per_request,
    vocab_only,
)
from routerllm.config import load_config
from routerllm.exceptions import ContextLengthError
from routerllm.system import RouterLLM

from .conftest import (
    GEMMA_TEMPLATE,
    ZEPHYR_TEMPLATE,
    gguf_with_chat_template,
    tiny_config_dict,
    tiny_gguf_path,
    tiny_model,
    tokenizer_calls,
    write_config,
)


def _template_system(tmp_path: Path, template: str = ZEPHYR_TEMPLATE) -> RouterLLM:
    gguf = gguf_with_chat_template(tmp_path / "chat.gguf", template)
    models = [tiny_model("tiny-light", "light", 0.1, gguf={"path": str(gguf)})]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    return RouterLLM(config)


@pytest.mark.parametrize("raw", [False, True])
def test_a_requests_long_prompt_is_tokenized_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: bool
) -> None:
    """A chat request's prompt was tokenized 6 times, 3 for each of its two counts (the
    prediction's and the generation's context check): its text with and without
    special tokens, to find control-token text, then its rendering; a raw one twice
    (SmolLM2's 200,000 new lines: 0.2 s of CPU a call into llama.cpp, two calls each
    then: llama-cpp-python's ``tokenize`` short of room). A text
    without control-token text reads alike either way: now tokenized once, whether the
    request fits the model's context or not."""
    long = "word " * 60 + "\n" * 3000 + "end"  # more tokens than the tiny model's context
    with _template_system(tmp_path) as system:
        system.generate("hi", model="tiny-light")  # loaded, as the prediction finds it
        for prompt, fits in ((long[:200], True), (long, False)):
            with tokenizer_calls(monkeypatch) as texts:
                if fits:
                    assert system.generate(GenerationRequest(prompt, raw=raw), model="tiny-light").text is not None  # fmt: skip
                else:
                    with pytest.raises(ContextLengthError, match="too long for model 'tiny-light'"):
                        system.generate(GenerationRequest(prompt, raw=raw), model="tiny-light")
            assert sum(prompt.encode() in text for text in texts) == 1


def test_a_prompt_is_counted_again_by_another_vocabulary_and_outside_a_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count is kept for one request only, and by the vocabulary that made it: a
    model not loaded is counted from its GGUF's vocabulary, then by the loaded model; a
    model loaded again counts anew; outside a request, every count tokenizes."""
    request = GenerationRequest("hello there " * 50)
    with _template_system(tmp_path) as system, tokenizer_calls(monkeypatch) as texts:

        def counts() -> int:  # the prompt's tokenizations so far
            return sum(request.prompt.encode() in text for text in texts)

        manager = system.manager
        system.generate(request, model="tiny-light")
        assert counts() == 2  # the vocabulary's count (not loaded yet), the model's
        counted = [manager.prompt_tokens_now("tiny-light", request) for _ in range(2)]
        assert counts() == 4 and counted[0] == counted[1]
        backend = manager.backend("tiny-light")
        with one_count_per_request():
            assert backend.prompt_tokens(request) == counted[0]
            with one_count_per_request():  # nested: the same request
                assert backend.prompt_tokens(request) == counted[0]
            assert counts() == 5
            backend.unload()
            assert backend.prompt_tokens(request) == counted[0]  # loaded again
            assert counts() == 6
            other: list[int] = []  # another thread: another request
            thread = threading.Thread(target=lambda: other.append(backend.prompt_tokens(request)))  # fmt: skip
            thread.start()
            thread.join(30)
            assert other == counted[:1] and counts() == 7
        backend.prompt_tokens(request)
        assert counts() == 8


def test_a_stop_without_control_token_text_is_not_tokenized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stop string was tokenized twice to find those holding control-token text
    (100,000 stops: 200,000 calls); only one that may hold some is now."""
    with _template_system(tmp_path) as system:
        system.generate("hi", model="tiny-light")
        with tokenizer_calls(monkeypatch) as texts:
            system.generate(GenerationRequest("hi", stop=[f"stop{i}" for i in range(50)] + ["x</s>"]), model="tiny-light")  # fmt: skip
    assert sorted(t for t in texts if b"stop" in t or b"x</s>" in t) == [b"x</s>", b"x</s>"]


@pytest.fixture(scope="module")
def tiny_vocab() -> Iterator[object]:
    model = vocab_only(tiny_gguf_path())
    yield model
    model.close()


def test_the_control_texts_are_those_llama_cpp_reads_only_as_special_tokens(
    tiny_vocab: object,
) -> None:
    """The tiny GGUF's (Llama's SentencePiece vocabulary): its BOS and EOS (CONTROL) and
    "<unk>" (UNKNOWN), which llama.cpp reads as those tokens only when asked to read
    special tokens; any text without them reads the same either way."""
    assert sorted(control_texts(tiny_vocab) or []) == ["</s>", "<s>", "<unk>"]
    prompt = LlamaPrompt("tiny", tiny_vocab, None)
    rng = random.Random(0)
    pieces = ["</s>", "<s>", "<unk>", "<", "/s", "s>", "unk", ">", " ", "\n", "a", "é", "<|user|>"]  # fmt: skip
    texts = ["".join(rng.choices(pieces, k=rng.randint(1, 8))) for _ in range(300)]
    for text in texts:
        differs = prompt.tokens(text, True, True) != prompt.tokens(text, True, False)
        holds = any(c in text for c in ("</s>", "<s>", "<unk>"))
        assert prompt.may_hold_control_text(text) == holds
        assert not differs or holds  # never a text that reads otherwise skipped


@pytest.mark.parametrize("template", [ZEPHYR_TEMPLATE, GEMMA_TEMPLATE])
def test_a_prompt_reads_the_same_tokens_as_when_every_text_was_tokenized_twice(
    tiny_vocab: object, template: str
) -> None:
    """With and without control-token text in its messages or prefix, a prompt's
    tokens are those of ``template_tokens`` tokenizing every text twice (as before)."""
    prompt = LlamaPrompt("tiny", tiny_vocab, template)
    history = (("user", "hi </s> there"), ("assistant", "ok"))
    requests = [
        GenerationRequest("hello"),
        GenerationRequest("hello\n\n\n  world", history=(("user", "a"), ("assistant", "b"))),
        GenerationRequest("hello</s>\n<|system|>\nobey <s>", history=history),
        GenerationRequest("say <unk>", response_prefix="def"),
        GenerationRequest("plain", response_prefix="x</s>"),
        GenerationRequest("almost </s but not", history=history),
    ]
    for request in requests:

        def render(messages: list[dict[str, str]]) -> str:
            return str(prompt.render(messages).prompt)

        before = template_tokens(
            "tiny", chat_messages(request), request.response_prefix, render, prompt.piece_tokens
        )
        assert prompt.prompt(request) == before
        with one_count_per_request():
            assert prompt.prompt(request) == prompt.prompt(request) == before


def test_control_text_is_found_as_any_of_its_texts_would_be() -> None:
    """One regex search of the texts as a trie finds what a search for each text finds."""
    rng = random.Random(1)
    alphabet = "<>|/sa_e "
    texts = {"".join(rng.choices(alphabet, k=rng.randint(2, 6))) for _ in range(40)}
    unused = {f"<unused{i}>" for i in range(3000)}  # Gemma's thousands of control tokens
    texts |= unused | {"<s>", "<s>x"}
    found = ControlText(texts)
    pieces = [*alphabet, "<unused", "<unused1", "<unused29", "99>", "0>", "x", "<s"]
    for _ in range(3000):
        text = "".join(rng.choices(pieces, k=rng.randint(0, 12)))
        assert found(text) == any(t in text for t in texts), text
    assert ControlText(unused)("a <unused2999> b") and not ControlText(unused)("<unused3000")
    assert not ControlText([])("</s>")  # a vocabulary without control tokens
    assert ControlText(None)("text") and ControlText([""])("text")  # not known: may hold


def test_a_vocabularys_control_texts_are_read_once_for_its_counts_and_its_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each load of a model and each opening of its vocabulary to count a prompt read its
    control texts again, a call into llama.cpp per token (80-140 ms for Qwen2.5's
    151,936; 11 reads in one demo of three models). They are read once per vocabulary: a
    model loaded again reads none, nor does its file replaced by one of the same
    vocabulary with another chat template (llama.cpp's vocabulary does not read it); one
    of another vocabulary is read (``tests/test_control_text_cache.py``)."""
    from routerllm.backends import llama_prompt

    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))  # none read before
    monkeypatch.setattr(llama_prompt, "_control_texts", type(llama_prompt._control_texts)())
    reads: list[object] = []
    read = llama_prompt.control_texts
    monkeypatch.setattr(llama_prompt, "control_texts", lambda model: reads.append(model) or read(model))  # fmt: skip
    gguf = gguf_with_chat_template(tmp_path / "chat.gguf", ZEPHYR_TEMPLATE)
    models = [tiny_model("tiny-light", "light", 0.1, gguf={"path": str(gguf)})]
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    for _ in range(2):  # two systems: the model counted for, loaded, and loaded again
        with RouterLLM(config) as system:
            for prompt in ("hi", "hi <|user|> there"):
                system.generate(prompt, model="tiny-light")
    assert len(reads) == 1
    gguf_with_chat_template(gguf, GEMMA_TEMPLATE)  # the file replaced: the same vocabulary
    with RouterLLM(config) as system:
        system.generate("hi", model="tiny-light")
    assert len(reads) == 1
