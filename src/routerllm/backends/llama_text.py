"""An answer's bytes and text as llama-cpp-python writes them, kept up to date token by
token."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence


class AnswerBytes:
    """The bytes ``Llama.detokenize(answer)`` gives for an answer's tokens so far, at the
    cost of the new tokens only (written anew after each token, it is quadratic in the
    answer's length).

    llama-cpp-python's ``detokenize`` joins each token's piece as llama.cpp writes the
    token alone (``llama_token_to_piece``, no leading space stripped, whatever the
    vocabulary: byte-level BPE or SentencePiece; a piece longer than its 32-byte buffer
    as none), its ``prev_tokens`` unread, then drops the first byte where the answer
    starts with the BOS token and that byte is a space: so the answer's bytes are its
    tokens' pieces joined, that space aside. ``bos``: the model's BOS token (-1: none)."""

    def __init__(self, bos: int) -> None:
        self._bos = bos
        self._bos_piece: bytes | None = None  # BOS's piece, its leading space kept
        self._lead = False  # the answer starts with BOS and has written no byte yet
        self.tokens: list[int] = []  # the answer's tokens read so far
        self.written = bytearray()

    def extended_by(self, answer: Sequence[int]) -> bool:
        """Whether ``answer`` starts with the tokens read so far."""
        return len(answer) >= len(self.tokens) and answer[: len(self.tokens)] == self.tokens

    def update(self, answer: Sequence[int], detokenize: Callable[[list[int]], bytes]) -> bytes:
        """The bytes that ``answer``, the tokens read before and any after, adds to those
        written so far; ``detokenize``: the model's (``Llama.detokenize``), with the
        ``special`` the answer is written with."""
        start = len(self.written)
        for token in answer[len(self.tokens) :]:
            token = int(token)
            piece = detokenize([token]) if token != self._bos else self._raw_bos(detokenize)
            if not self.tokens:
                self._lead = token == self._bos
            if self._lead and piece:
                piece, self._lead = piece.removeprefix(b" "), False
            self.written += piece
            self.tokens.append(token)
        return bytes(self.written[start:])

    def _raw_bos(self, detokenize: Callable[[list[int]], bytes]) -> bytes:
        """BOS's piece as ``detokenize`` joins it after the first token: alone, BOS's
        leading space (if any) is dropped; after another BOS, it is not."""
        if self._bos_piece is None:
            alone = detokenize([self._bos])
            self._bos_piece = detokenize([self._bos, self._bos])[len(alone) :]
        return self._bos_piece


class AnswerText:
    """The text that an answer's tokens add as they come, exactly as llama-cpp-python
    writes the whole answer (``Llama.detokenize(answer)`` decoded as UTF-8, undecodable
    bytes left out), at the cost of the new tokens only: written anew after each token,
    a 1024-token answer took 1.49 s of SmolLM2's detokenizing on 2 cores. A character
    whose bytes span tokens (an emoji, a CJK character) is held until it is whole, as
    decoding the whole answer leaves an unfinished one out. ``written``: the answer's
    bytes, those llama-cpp-python's completion writes anyway where it is handed them
    (``SamplingLlama.answer_bytes``): read, not written again; ``detokenize``: the
    model's (``Llama.detokenize``), for those of its tokens not written yet."""

    def __init__(self, detokenize: Callable[[list[int]], bytes], written: AnswerBytes) -> None:
        self._detokenize, self._bytes = detokenize, written
        self._read = 0  # the bytes decoded so far
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")

    def update(self, answer: Sequence[int]) -> str:
        """The text that ``answer``, the tokens of the one given before and any after, adds
        to the text of the one given before."""
        self._bytes.update(answer, self._detokenize)
        written, start = self._bytes.written, self._read
        self._read = len(written)
        return self._decoder.decode(written[start:])
