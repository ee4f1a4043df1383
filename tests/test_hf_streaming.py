"""A transformers model's answer streamed as it is generated (``GenerationRequest.on_text``),
on the tiny Llama of ``test_hf_backend`` (real transformers, greedy): its pieces come
between two forward passes, and joined they are the start of the answer the same request
gets unstreamed (its rest is the caller's to give), whatever stops, multi-byte characters
or spaces the tokenizer cleans up."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from routerllm.backends.base import Completion, GenerationRequest
from routerllm.backends.hf import HFBackend
from routerllm.backends.hf_streaming import DECODE_SPAN, LiveDecoding, cleans_spaces, lasting_text
from routerllm.backends.stops import LiveText

from .test_hf_backend import PROMPT, build_tiny_model, make_backend

ASKED = GenerationRequest(PROMPT, max_new_tokens=12)
# the tiny model's greedy answer to ASKED, for reading the tests below
ANSWER = "w156 w42 w194 w142 w126 w30 short w134 w79 w167 w112 an"


@contextmanager
def forward_passes(backend: HFBackend) -> Iterator[list[int]]:
    """The model's forward passes so far, counted as it runs (``[n]``)."""
    passes = [0]

    def count(*_: object) -> None:
        passes[0] += 1

    handle = backend._model.register_forward_hook(count)
    try:
        yield passes
    finally:
        handle.remove()


def streamed(backend: HFBackend, request: GenerationRequest) -> tuple[Completion, list[tuple[str, int]]]:  # fmt: skip
    """The answer to ``request`` streamed: each piece, and the forward passes before it."""
    backend.load()
    seen: list[tuple[str, int]] = []
    with forward_passes(backend) as passes:
        answer = backend.generate(
            dataclasses.replace(request, on_text=lambda p: seen.append((p, passes[0])))
        )
    return answer, seen


def joined(seen: list[tuple[str, int]]) -> str:
    return "".join(piece for piece, _ in seen)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> HFBackend:
    return make_backend(build_tiny_model(tmp_path_factory.mktemp("tiny")), max_new_tokens=12)


def test_pieces_come_while_the_model_generates_and_join_to_its_answer(tiny: HFBackend) -> None:
    """Each token's text comes before the next token is computed (the first after the
    first forward pass), not whole at the end; joined, the answer unstreamed."""
    plain = tiny.generate(ASKED)
    assert plain.text == ANSWER and plain.finish_reason == "length"
    for request in (ASKED, dataclasses.replace(ASKED, raw=True)):  # raw: " w156 ...", spaced
        answer, seen = streamed(tiny, request)
        assert answer == dataclasses.replace(plain, text=answer.text, latency_s=answer.latency_s)
        assert answer.text == tiny.generate(request).text
        # each token's text after its forward pass, before the next one's
        assert [n for _, n in seen] == list(range(1, 13)) and joined(seen) == answer.text
        assert seen[0] == (answer.text.split(" w42")[0], 1)


def test_the_non_streamed_answer_decodes_once(
    tiny: HFBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No text is decoded while an answer nobody streams is generated: its cost unchanged."""
    tiny.load()
    decodes: list[int] = []
    decode = tiny._tokenizer.decode
    monkeypatch.setattr(tiny._tokenizer, "decode", lambda *a, **k: decodes.append(1) or decode(*a, **k))  # fmt: skip
    assert tiny.generate(ASKED).text == ANSWER and len(decodes) == 1
    streamed(tiny, ASKED)
    assert len(decodes) > 6


def test_a_stop_is_held_back_until_the_text_is_known_not_to_be_it(tiny: HFBackend) -> None:
    """A stop the answer holds cuts it: no piece holds it or any text past it, and the
    generation ends there. Text that may begin a stop ("w142" of "w142 w9") comes only
    once the next token shows it does not."""
    answer, seen = streamed(tiny, dataclasses.replace(ASKED, stop=["w30"]))
    assert (answer.text, answer.finish_reason) == ("w156 w42 w194 w142 w126 ", "stop")
    assert answer.text.startswith(joined(seen)) and len(seen) >= 4
    # w30, the 6th token, ended the generation: the text before it came then
    assert answer.completion_tokens == 6 and seen[-1] == (" ", 6)
    answer, seen = streamed(tiny, dataclasses.replace(ASKED, stop=["w142 w9"]))
    assert answer.text == ANSWER and ANSWER.startswith(joined(seen))
    # "w142" is held back after the 4th pass: "w142 w9" could follow
    assert next(n for p, n in seen if "w142" in p) >= 5


def test_a_stop_with_control_token_text_gives_the_answer_whole_at_the_end(
    tmp_path: Path,
) -> None:
    """The answer is cut where its text written with control tokens holds the stop ("w15"
    of "w156", as "w156<|im_start|>" holds "6 <|im_start|>"): nothing is streamed, the
    text comes whole at the end (the caller's to give), as llama.cpp's does."""
    backend = make_backend(build_tiny_model(tmp_path, controls={"w42": "<|im_start|>"}))
    answer, seen = streamed(backend, dataclasses.replace(ASKED, stop=["6 <|im_start|>"]))
    assert (answer.text, answer.finish_reason, seen) == ("w15", "stop", [])


def test_routerllm_gives_on_text_a_transformers_models_whole_answer(
    tmp_path: Path, tiny: HFBackend
) -> None:
    """Through ``RouterLLM.generate``: pieces while the model generates, then the rest,
    joined the answer it returns and logs."""
    from routerllm.config import load_config
    from routerllm.system import RouterLLM

    from .conftest import tiny_config_dict, write_config

    model = {"name": "tiny-hf", "backend": "hf", "tier": "light", "params_b": 0.001,
             "model_id": tiny.config.model_id, "memory_gb": 0.1, "context_length": 128}  # fmt: skip
    data = tiny_config_dict(tmp_path, carbon={"enabled": False}, models=[model])
    pieces: list[str] = []
    with RouterLLM(load_config(write_config(tmp_path, data))) as system:
        asked = dataclasses.replace(ASKED, on_text=pieces.append)
        result = system.generate(asked, model="tiny-hf")
    assert result.text == ANSWER and "".join(pieces) == ANSWER and len(pieces) > 6


def test_a_character_of_several_tokens_comes_whole(tmp_path: Path) -> None:
    """ "€" is three byte tokens (a SentencePiece tokenizer's byte fallback): the text of
    the first two, a replacement character each, is not sent; "€" is, once whole."""
    bytes_of_euro = {"\u2581w156": "<0xE2>", "\u2581w42": "<0x82>", "\u2581w194": "<0xAC>"}
    backend = make_backend(
        build_tiny_model(tmp_path, sentencepiece=True, renamed=bytes_of_euro), max_new_tokens=12
    )
    for request in (ASKED, dataclasses.replace(ASKED, raw=True)):
        answer, seen = streamed(backend, request)
        assert answer.text == "€ w142 w126 w30 short w134 w79 w167 w112 an"
        assert joined(seen) == answer.text and seen[0] == ("€", 3)
        assert not any("\ufffd" in p for p, _ in seen)


def test_spaces_the_tokenizer_cleans_up_are_not_sent_before_they_are_known(
    tmp_path: Path,
) -> None:
    """A tokenizer with ``clean_up_tokenization_spaces`` writes "w156 '" as it is, then
    "w156 ' w194" as "w156'w194": a later token took back a space. The last two words
    are held back (:func:`lasting_text`), the rest of the text sent as it comes."""
    backend = make_backend(
        build_tiny_model(tmp_path, renamed={"w42": "'"}, clean_up=True), max_new_tokens=12
    )
    # raw, " w156" first: no text before its space is sent until the 5th token
    for request, passes in ((ASKED, [1, 3, *range(6, 13)]), (dataclasses.replace(ASKED, raw=True), list(range(5, 13)))):  # fmt: skip
        answer, seen = streamed(backend, request)
        assert answer.text.lstrip().startswith("w156'w194 w142")
        assert joined(seen) == answer.text.removesuffix(" w112 an")
        assert [n for _, n in seen] == passes


@pytest.mark.parametrize(
    ("text", "cleans", "kept"),
    [
        ("w156 \ufffd\ufffd", False, "w156 "),  # two bytes of a character, its last to come
        ("a \ufffdb\ufffd", False, "a \ufffdb"),  # a byte no character takes: it stays
        ("do n '", True, "do"),  # "do n ' t" reads "don't"
        ("w156 '", True, "w156"),  # "w156 ' w194" reads "w156'w194"
        (" n", True, ""),  # " n't" reads "n't"
        ("a b c  ", True, "a"),
        ("w156", True, "w156"),  # no space before it to take back
        ("do n '", False, "do n '"),
    ],
)
def test_the_lasting_text_leaves_out_what_a_later_token_may_change(
    text: str, cleans: bool, kept: str
) -> None:
    assert lasting_text(text, cleans) == kept


def test_a_long_answer_is_decoded_less_often_as_it_grows() -> None:
    """Each token up to 2 * DECODE_SPAN - 1 (511) tokens, then once n // DECODE_SPAN tokens
    have come: 513, 515, ... 767 (128), 770, 773, ... 1022 (85), not 1024 (2 since 1022).
    Counted on a stand-in for the answer's ids (its decoding is what is counted)."""
    decoded: list[int] = []

    class Ids:  # the shape of generate's input_ids: (1, n)
        def __init__(self, n: int) -> None:
            self.shape = (1, n)

    check = LiveDecoding(LiveText(lambda _: None), lambda ids: decoded.append(ids.shape[-1]) or "", False, 10)  # fmt: skip
    for n in range(11, 10 + 4 * DECODE_SPAN + 1):
        assert check(Ids(n)) is False
    answer = [n - 10 for n in decoded]
    assert answer[: 2 * DECODE_SPAN - 1] == list(range(1, 2 * DECODE_SPAN))
    assert DECODE_SPAN == 256 and len(answer) == 511 + 128 + 85
    assert answer[509:514] == [510, 511, 513, 515, 517] and answer[-3:] == [1016, 1019, 1022]


@pytest.mark.parametrize("cleanup", [True, False])
def test_a_wordpiece_decoder_that_cleans_up_spaces_is_seen(cleanup: bool) -> None:
    """WordPiece's decoder cleans up spaces itself (" ." read ".") though the tokenizer's
    ``clean_up_tokenization_spaces`` is off: its text is held back as such."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "do": 1, "n": 2, "'": 3, "t": 4, ".": 5}
    tokens = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokens.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokens.decoder = decoders.WordPiece(cleanup=cleanup)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokens, clean_up_tokenization_spaces=False)
    assert tokenizer.decode(tokenizer.encode("do n ' t .")) == (
        "do n ' t." if cleanup else "do n ' t ."
    )
    assert cleans_spaces(tokenizer) is cleanup
