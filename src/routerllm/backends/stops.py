"""An answer's stop sequences: the text cut at the earliest, the text settled while it
streams (:class:`LiveText`), and stops that hold control-token text matched against the
answer's tokens written with their control tokens."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

log = logging.getLogger("routerllm.backends.base")  # its log lines, as before this module


def cut_at_stop(text: str, stop: tuple[str, ...] | list[str]) -> str:
    """``text`` up to (not including) the earliest of the ``stop`` sequences."""
    return text[: at if (at := _stop_at(text, stop)) >= 0 else len(text)]


def _stop_at(text: str, stops: Sequence[str]) -> int:
    """Where the earliest of ``stops`` starts in ``text``; -1: none is there."""
    at = -1
    for stop in stops:
        if stop and (i := text.find(stop)) >= 0 and (at < 0 or i < at):
            at = i
    return at


def _held_from(text: str, stops: Sequence[str]) -> int:
    """Where the end of ``text`` that may be the start of one of ``stops`` begins (the
    earliest such start; ``len(text)``: none). Only a stop's first character can begin
    one, so only those places are tried."""
    cut = len(text)
    for stop in stops:
        if not stop:
            continue
        i = text.find(stop[0], max(len(text) - len(stop) + 1, 0), cut)
        while i >= 0 and not stop.startswith(text[i:]):
            i = text.find(stop[0], i + 1, cut)
        cut = i if i >= 0 else cut
    return cut


def settled_text(text: str, stops: Sequence[str]) -> str:
    """The start of an answer's ``text`` so far that the whole answer keeps, whatever is
    generated next: the text before the earliest of the ``stops`` it holds (the answer
    ends there), else the text less an end that may be the start of one of them (held
    back until it is known not to be: the answer would end before it)."""
    end = _stop_at(text, stops)
    return text[: end if end >= 0 else _held_from(text, stops)]


class LiveText:
    """An answer's text handed to ``sink`` piece by piece as it is generated: only what
    the finished answer keeps (:func:`settled_text`), so that the pieces joined are
    always the start of the answer (its rest is the caller's to give, see
    ``GenerationRequest.on_text``). ``sent``: what ``sink`` has been given.

    Each call costs what the text gained, not the text so far: only the end held back
    before (shorter than the longest stop) is read again with it. The text so far
    settled anew after each token cost a 4096-token answer 41 ms of CPU on 2 cores,
    quadratic in its length; given as pieces, 5 ms (1.3 µs a token, as for 1024). A
    text given whole is compared with the last one; one that does not continue it (a
    decoding that changed its mind) is settled anew, whole."""

    def __init__(self, sink: Callable[[str], None], stops: Sequence[str] = ()) -> None:
        self.sink, self.stops = sink, tuple(stops)
        self._sent: list[str] = []  # the pieces given to ``sink`` (joined when read)
        self._sent_length = 0
        self._restart()

    def _restart(self) -> None:
        """No text so far (what was sent stays sent)."""
        self._text: list[str] = []  # the text so far, in pieces (joined when read)
        self._length = 0
        self._settled = 0  # the length of its start that settled_text keeps
        self._held = ""  # the rest, where it holds no stop (shorter than the longest)
        self._stopped = False  # it holds a stop: nothing more settles
        # whether what was sent is the start of the text (None: not known before the
        # text is as long; only text that continues what was sent is given)
        self._agrees: bool | None = True if not self._sent_length else None

    @property
    def sent(self) -> str:
        """What ``sink`` has been given, joined."""
        if len(self._sent) > 1:
            self._sent = ["".join(self._sent)]
        return self._sent[0] if self._sent else ""

    def _whole(self) -> str:
        """The text so far, joined."""
        if len(self._text) > 1:
            self._text = ["".join(self._text)]
        return self._text[0] if self._text else ""

    def show(self, text: str) -> None:
        """``text``, the answer so far: its newly settled part to ``sink``."""
        if len(text) >= self._length and text.startswith(self._whole()):
            self._add(text[self._length :])
        else:  # what was sent cannot be taken back: only text that continues it is given
            self._restart()
            self._add(text)
        self._text = [text]

    def __call__(self, piece: str) -> None:
        """A new ``piece`` of the answer (another ``LiveText``'s, a backend's, say): the
        text so far continued."""
        self._add(piece)

    def _add(self, piece: str) -> None:
        """The text so far continued by ``piece``: its newly settled part to ``sink``.
        A stop in the text or a start of one at its end can only begin in what was held
        back or in ``piece``, and what settles only grows until a stop is in the text."""
        self._text.append(piece)
        self._length += len(piece)
        if self._stopped or not piece:
            return
        start, window = self._settled, self._held + piece  # the text from ``start`` on
        cut = _stop_at(window, self.stops)
        self._stopped = cut >= 0
        cut = cut if self._stopped else _held_from(window, self.stops)
        self._settled, self._held = start + cut, "" if self._stopped else window[cut:]
        if self._settled > self._sent_length and self._agreed():
            piece = window[self._sent_length - start : cut]
            self._sent.append(piece)
            self._sent_length = self._settled
            self.sink(piece)

    def _agreed(self) -> bool:
        """Whether what was sent is the start of the text (as long as it, at least)."""
        if self._agrees is None:
            self._agrees = self._whole().startswith(self.sent)
        return self._agrees

    def finish(self, text: str) -> None:
        """The whole answer ``text``: its part not yet given to ``sink``."""
        sent = self.sent
        if not text.startswith(sent):  # a backend's bug: said, as it cannot be mended
            log.error("streamed text is not the start of the answer: %r", sent[:80])
        elif len(text) > len(sent):
            self._sent, self._sent_length = [text], len(text)
            self._agrees = self._agrees and None  # the text so far may not start so
            self.sink(text[len(sent) :])


def control_stops(
    stops: Sequence[str],
    tokenize: Callable[[str, bool], list[int]],
    may_hold: Callable[[str], bool] | None = None,
) -> tuple[str, ...]:
    """The ``stops`` that hold control-token text: one control token ("<|im_start|>",
    "</s>") or one mixed with text ("```<|im_end|>", "<|im_end|>\\n"). A backend writes
    an answer's control tokens as no text, so such a stop never matched its answer's
    text; it is matched against the answer written with its control tokens instead
    (:func:`holds_written_stop`, :func:`written_stop`). ``tokenize`` as
    ``template_tokens``'s; ``may_hold(text)``: False only where ``text`` holds no
    control token's text, so that its two tokenizations cannot differ and are skipped
    (a long text's cost twice over); None: every text is tokenized twice."""
    return tuple(
        s
        for s in stops
        if s and (may_hold is None or may_hold(s)) and tokenize(s, True) != tokenize(s, False)
    )


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
