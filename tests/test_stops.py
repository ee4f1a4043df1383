"""The stop sequences with control-token text (base.py's helpers), shared by the llama.cpp
and transformers backends: matched against the answer written with its control tokens."""

from __future__ import annotations

from routerllm.backends.base import control_stops, cut_at_stop, holds_written_stop, written_stop

# a vocabulary of whole pieces: token i writes PIECES[i]; CONTROLS write no text in an answer
PIECES = ["Hi", " there", "\n", "```", "<|im_end|>", "<|im_start|>", "user"]
CONTROLS = {4, 5}


def detokenize(tokens: list[int], special: bool) -> str:
    return "".join(PIECES[t] for t in tokens if special or t not in CONTROLS)


def tokenize(text: str, special: bool) -> list[int]:
    """Greedy longest piece first; control-token text read as plain characters unless
    ``special`` (each character its own token, 100 + its code)."""
    tokens, i = [], 0
    while i < len(text):
        piece = next(
            (p for p in sorted(PIECES, key=len, reverse=True)
             if text.startswith(p, i) and (special or PIECES.index(p) not in CONTROLS)),
            None,
        )  # fmt: skip
        tokens.append(PIECES.index(piece) if piece else 100 + ord(text[i]))
        i += len(piece) if piece else 1
    return tokens


def test_the_text_is_cut_before_the_earliest_stop_even_at_its_start() -> None:
    assert cut_at_stop("\ndef f():\n    pass", ["pass", "\ndef"]) == ""
    assert cut_at_stop("ab\n\ncd", ["\n\n", "b"]) == "a"
    assert cut_at_stop("no stop", ["", "x"]) == "no stop"  # an empty stop is none


def test_control_stops_are_those_with_control_token_text() -> None:
    stops = ["<|im_end|>", "<|im_end|>\n", "```<|im_end|>", "```", "im_end|>", "\n"]
    assert control_stops(stops, tokenize) == ("<|im_end|>", "<|im_end|>\n", "```<|im_end|>")


def test_a_stop_that_cannot_hold_control_token_text_is_not_tokenized() -> None:
    """``may_hold`` False (no control token's text in it): its two tokenizations, which
    cannot differ, are skipped; the stops found are the same."""
    stops = ["<|im_end|>", "<|im_end|>\n", "```<|im_end|>", "```", "im_end|>", "\n"]
    asked: list[str] = []

    def counted(text: str, special: bool) -> list[int]:
        asked.append(text)
        return tokenize(text, special)

    def may_hold(text: str) -> bool:
        return "<|im_end|>" in text or "<|im_start|>" in text

    found = control_stops(stops, counted, may_hold)
    assert found == control_stops(stops, tokenize) and set(asked) == set(found)
    assert control_stops(stops, counted, lambda text: True) == found  # may hold: tokenized


def test_a_stop_mixing_a_control_token_and_text_is_found_in_the_written_answer() -> None:
    """Hi there```<|im_end|>\\n<|im_start|>user: the answer is cut where the earliest
    stop starts; ``cut`` characters of the last token kept go (a stop starting inside
    one), a control token's none (it is no text in an answer)."""
    answer = [0, 1, 3, 4, 2, 5, 6]
    assert written_stop(answer, ["```<|im_end|>"], detokenize) == (3, 3)  # "Hi there"
    assert written_stop(answer, ["<|im_end|>\n"], detokenize) == (4, 0)  # "Hi there```"
    assert written_stop(answer, ["e```<|im_end|>"], detokenize) == (2, 1)  # "Hi ther"
    assert written_stop(answer, ["\n<|im_start|>user", "<|im_end|>\n"], detokenize) == (4, 0)
    assert written_stop(answer, ["nd|>\n"], detokenize) == (4, 0)  # starts in a control token
    assert written_stop(answer, ["<|im_end|>user"], detokenize) is None
    assert written_stop([], ["<|im_end|>"], detokenize) is None
    text = detokenize(answer[:3], False)
    assert text[: len(text) - 3] == "Hi there"


def test_holds_written_stop_reads_the_answers_last_tokens_with_control_tokens() -> None:
    assert holds_written_stop([0, 3, 4], ["```<|im_end|>"], detokenize)
    assert not holds_written_stop([0, 3], ["```<|im_end|>"], detokenize)
    assert not holds_written_stop([0, 3, 2, 4], ["```<|im_end|>"], detokenize)
    # only the tail is read: a stop long ago was already found when it was written
    assert not holds_written_stop([3, 4, *[0] * 100], ["```<|im_end|>"], detokenize)


def test_a_stop_of_characters_written_byte_by_byte_is_found_in_the_answers_tail() -> None:
    """A byte-level vocabulary writes a character in up to 4 tokens: "😀" * 10 is 40
    byte tokens, so this stop of 20 characters spans 41 tokens, all read."""

    def written(tokens: list[int], special: bool) -> str:
        data = b"".join(
            bytes([t - 1000]) if t >= 1000 else PIECES[t].encode()
            for t in tokens
            if special or t not in CONTROLS
        )
        return data.decode("utf-8", "ignore")

    stop = "\U0001f600" * 10 + "<|im_end|>"
    answer = [0, *(1000 + b for b in ("\U0001f600" * 10).encode()), 4]
    assert holds_written_stop(answer, [stop], written)
