"""An answer's text as llama-cpp-python writes it, kept up to date token by token."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence


class AnswerText:
    """The text of an answer's tokens so far, exactly as llama-cpp-python writes the
    whole answer (``Llama.detokenize(answer)`` decoded as UTF-8, undecodable bytes left
    out), at the cost of the new tokens only: written anew after each token, a 1024-token
    answer took 1.49 s of SmolLM2's detokenizing on 2 cores (quadratic in its length).

    llama-cpp-python's ``detokenize`` joins each token's piece as llama.cpp writes the
    token alone (``llama_token_to_piece``, no leading space stripped, whatever the
    vocabulary: byte-level BPE or SentencePiece), its ``prev_tokens`` unread, then drops
    the first byte where the answer starts with the BOS token and that byte is a space:
    so the answer's bytes are its tokens' pieces joined, that space aside. A character
    whose bytes span tokens (an emoji, a CJK character) is held until it is whole, as
    decoding the whole answer leaves an unfinished one out. ``detokenize``: the model's
    (``Llama.detokenize``), ``bos``: its BOS token."""

    def __init__(self, detokenize: Callable[[list[int]], bytes], bos: int) -> None:
        self._detokenize, self._bos = detokenize, bos
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        self._read = 0  # the answer's tokens read so far
        self._lead = False  # the answer starts with BOS and has written no byte yet
        self.text = ""

    def update(self, answer: Sequence[int]) -> str:
        """The text of ``answer``, the tokens of the one given before and any after."""
        for token in answer[self._read :]:
            piece = self._detokenize([int(token)])
            if self._read == 0:
                self._lead = int(token) == self._bos
            if self._lead and piece:
                piece, self._lead = piece.removeprefix(b" "), False
            self.text += self._decoder.decode(piece)
            self._read += 1
        return self.text
