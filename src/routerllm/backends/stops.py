"""An answer's stop sequences: the text cut at the earliest, the text settled while it
streams (:class:`LiveText`), and stops that hold control-token text matched against the
answer's tokens written with their control tokens."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

log = logging.getLogger("routerllm.backends.base")  # its log lines, as before this module


def cut_at_stop(text: str, stop: tuple[str, ...] | list[str]) -> str:
    """``text`` up to (not including) the earliest of the ``stop`` sequences."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def settled_text(text: str, stops: Sequence[str]) -> str:
    """The start of an answer's ``text`` so far that the whole answer keeps, whatever is
    generated next: the text before the earliest of the ``stops`` it holds (the answer
    ends there), else the text less an end that may be the start of one of them (held
    back until it is known not to be: the answer would end before it)."""
    if (end := min((i for s in stops if s and (i := text.find(s)) >= 0), default=-1)) >= 0:
        return text[:end]
    cut = len(text)
    for stop in stops:  # the earliest start of a stop's beginning at the text's end
        for i in range(max(len(text) - len(stop) + 1, 0), cut):
            if stop.startswith(text[i:]):
                cut = i
                break
    return text[:cut]


class LiveText:
    """An answer's text handed to ``sink`` piece by piece as it is generated: only what
    the finished answer keeps (:func:`settled_text`), so that the pieces joined are
    always the start of the answer (its rest is the caller's to give, see
    ``GenerationRequest.on_text``). ``sent``: what ``sink`` has been given."""

    def __init__(self, sink: Callable[[str], None], stops: Sequence[str] = ()) -> None:
        self.sink, self.stops, self.sent = sink, tuple(stops), ""

    def show(self, text: str) -> None:
        """``text``, the answer so far: its newly settled part to ``sink``."""
        settled = settled_text(text, self.stops)
        # a text that no longer starts with what was sent (a decoding that changed its
        # mind) gives nothing more: what was sent cannot be taken back
        if len(settled) > len(self.sent) and settled.startswith(self.sent):
            piece, self.sent = settled[len(self.sent) :], settled
            self.sink(piece)

    def __call__(self, piece: str) -> None:
        """A new ``piece`` of the answer (another ``LiveText``'s, a backend's, say)."""
        self.show(self.sent + piece)

    def finish(self, text: str) -> None:
        """The whole answer ``text``: its part not yet given to ``sink``."""
        if not text.startswith(self.sent):  # a backend's bug: said, as it cannot be mended
            log.error("streamed text is not the start of the answer: %r", self.sent[:80])
        elif len(text) > len(self.sent):
            piece, self.sent = text[len(self.sent) :], text
            self.sink(piece)


def control_stops(
    stops: Sequence[str], tokenize: Callable[[str, bool], list[int]]
) -> tuple[str, ...]:
    """The ``stops`` that hold control-token text: one control token ("<|im_start|>",
    "</s>") or one mixed with text ("```<|im_end|>", "<|im_end|>\\n"). A backend writes
    an answer's control tokens as no text, so such a stop never matched its answer's
    text; it is matched against the answer written with its control tokens instead
    (:func:`holds_written_stop`, :func:`written_stop`). ``tokenize`` as
    ``template_tokens``'s."""
    return tuple(s for s in stops if s and tokenize(s, True) != tokenize(s, False))


def stop_tail(stops: Sequence[str]) -> int:
    """How many of an answer's last tokens can hold one of ``stops``: a stop of n
    characters spans at most 4n tokens (bytes)."""
    return 4 * max(len(stop) for stop in stops) + 8


def holds_written_stop(
    tokens: Sequence[int], stops: Sequence[str], detokenize: Callable[[list[int], bool], str]
) -> bool:
    """Whether the answer's last ``tokens``, written with their control tokens
    (``detokenize(tokens, True)``; ``False``: without them), hold one of ``stops``.
    Checked after each token, so only the last few (:func:`stop_tail`) are read: of an
    array (llama.cpp's, torch's), only they are turned into a list."""
    text = detokenize([int(t) for t in tokens[-stop_tail(stops) :]], True)
    return any(stop in text for stop in stops)


def written_stop(
    tokens: Sequence[int], stops: Sequence[str], detokenize: Callable[[list[int], bool], str]
) -> tuple[int, int] | None:
    """Where the earliest of ``stops`` starts in the answer's ``tokens`` written with their
    control tokens (``detokenize`` as :func:`holds_written_stop`'s), as ``(n, cut)``: the
    answer before it is the text of ``tokens[:n]`` less its last ``cut`` characters, the
    part of the n-th token's text from the stop on (a control token is no text in an
    answer). None where none of ``stops`` is there."""
    tokens = list(tokens)
    text = detokenize(tokens, True)
    at = min((i for stop in stops if (i := text.find(stop)) >= 0), default=-1)
    if at < 0:
        return None
    low, high = 0, len(tokens) - 1  # n: the last token whose text starts at or before ``at``
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if len(detokenize(tokens[:mid], True)) <= at else (low, mid - 1)
    before = at - len(detokenize(tokens[:low], True))
    piece = detokenize(tokens[: low + 1], False)[len(detokenize(tokens[:low], False)) :]
    return low + 1, max(len(piece) - before, 0)
