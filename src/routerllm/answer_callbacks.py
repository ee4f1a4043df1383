"""The caller's ``on_text`` and ``on_answer`` as a ``RouterLLM`` answers a request: the
answer's model and request id said once, before its first piece of text; the text given
as it is generated, or what is left of it once the answer is whole; what the caller's
functions raise kept, to raise once the answer so far is logged (``CallerRaised``); and a
request made from within one of them refused (``check_not_in_callback``).
``routerllm/answering.py`` gives them each answer's text."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from routerllm.backends.base import LiveText
from routerllm.exceptions import RouterLLMError

if TYPE_CHECKING:
    from routerllm.routed_result import RoutedResult

# Set while this thread runs a caller's on_text or on_answer: a request made there would
# run inside the one being answered, entering llama.cpp mid-generation (on the same model
# the process crashed) and CodeCarbon mid-measurement (one task at a time: not measured)
_in_callback = threading.local()


def check_not_in_callback() -> None:
    """A ``RouterLLMError`` where this thread is in a caller's ``on_text`` or ``on_answer``."""
    if getattr(_in_callback, "depth", 0):
        raise RouterLLMError(
            "a request cannot be made from within the on_text or on_answer of a request "
            "this thread is answering (llama.cpp and CodeCarbon would be entered again "
            "mid-request); make it once that generate has returned"
        )


class CallerRaised(Exception):
    """What the caller's ``on_text`` or ``on_answer`` raised (``failure``), its answer
    logged (``result``, kept to refuse its feedback by name): ``RouterLLM`` raises
    ``failure`` itself for one request, a ``BatchError`` caused by it in a batch, never
    this."""

    def __init__(self, failure: Exception, result: RoutedResult) -> None:
        super().__init__(str(failure))
        self.failure, self.result = failure, result


def ignore_text(piece: str) -> None:
    """The ``on_text`` of a caller that gave only ``on_answer``."""


class Shown(LiveText):
    """The caller's ``on_text`` and ``on_answer`` (``GenerationRequest``'s): the answer's
    model and request id said once, before its first piece of text."""

    def __init__(self, on_text: Callable[[str], None], on_answer: Callable[[str, str], None] | None) -> None:  # fmt: skip
        super().__init__(self._give)
        self.on_text, self.on_answer = on_text, on_answer
        self.head: tuple[str, str] | None = None  # (model, request id), once said
        # what the caller's functions raised, to raise once the answer so far is logged
        self.failure: Exception | None = None
        self.stop: threading.Event | None = None  # its generation's (``also_cancellable``)

    def _give(self, piece: str) -> None:
        if self.head is None:
            raise RuntimeError("a piece of text came before its model was known")
        if self.failure is not None:  # the caller stopped reading: nothing more
            return
        _in_callback.depth = getattr(_in_callback, "depth", 0) + 1
        try:
            if self.on_answer is not None:
                on_answer, self.on_answer = self.on_answer, None
                on_answer(*self.head)
            self.on_text(piece)
        except Exception as e:  # raised through llama.cpp, the answer was logged nowhere
            self.failure = e
            if self.stop is not None:  # stopped between two tokens, logged as cancelled
                self.stop.set()
        finally:
            _in_callback.depth -= 1

    def raise_failure(self, result: RoutedResult) -> None:
        """``CallerRaised``, where the caller's ``on_text`` or ``on_answer`` raised as
        ``result`` was given."""
        if self.failure is not None:
            raise CallerRaised(self.failure, result)

    class Piece:
        """A backend's ``on_text``: its pieces, said as ``model``'s (set before it runs)."""

        def __init__(self, shown: Shown, request_id: str) -> None:
            self.shown, self.request_id, self.model = shown, request_id, ""

        def __call__(self, piece: str) -> None:
            self.shown.head = self.shown.head or (self.model, self.request_id)
            self.shown(piece)

    def to(self, request_id: str) -> Shown.Piece:
        """The ``on_text`` of the backends that generate the answer logged as ``request_id``."""
        return Shown.Piece(self, request_id)

    def given(self, model: str, request_id: str, text: str) -> bool:
        """The whole answer ``text``: its part not yet given, before the answer is logged;
        whether the caller's functions raised (then its row takes the routing share of
        its batch's requests after it, which do not run)."""
        self.head = self.head or (model, request_id)
        self.finish(text)
        return self.failure is not None
