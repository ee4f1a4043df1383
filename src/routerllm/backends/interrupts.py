"""Ctrl-C (and SIGTERM) while llama.cpp calls back into Python; a generation whose
caller has gone.

A Python function that C code calls through ctypes (llama.cpp's log callback
while a model loads, the prompt-state callback while it computes,
``backends/llama_state.py``) is often the only Python code that runs, so Ctrl-C's
``KeyboardInterrupt`` is raised there; ctypes prints and drops it, and the C
code goes on as if nothing was pressed. :func:`deferred_interrupts` records
Ctrl-C for a block instead and raises it where Python can: when the block's
check is called (between two tokens), and at the end of the block at the latest.
Where :func:`sigterm_as_interrupt` makes SIGTERM raise :class:`Terminated` (a
``KeyboardInterrupt``: the commands stop on it as on Ctrl-C), it is deferred alike.

A generation that nobody waits for any more (the server's client has gone) is stopped
between two tokens: the thread that runs it enters :func:`cancellable` with an event
that another thread sets, and a backend looks at a :class:`Cancellation` between
tokens; the generation ends with what it wrote so far, finish reason ``CANCELLED``.
Work that stops otherwise (the cascade's check, a program in the sandbox) is handed the
block's event itself, :func:`stop_event`, which holds in any thread it is passed to.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

CANCELLED = "cancelled"
"""The finish reason of a generation stopped half-way because its caller had gone."""

_scope = threading.local()  # each thread's stop event, set by cancellable()


class Terminated(KeyboardInterrupt):
    """SIGTERM, under :func:`sigterm_as_interrupt`: a ``KeyboardInterrupt``, so that what
    stops cleanly on Ctrl-C (a command's line saying what it kept, the unloading of a
    model half-loaded, a sandbox's processes killed) stops so on SIGTERM too."""


class _RaiseTerminated:
    """:func:`sigterm_as_interrupt`'s SIGTERM handler: raises ``Terminated`` once; a
    later SIGTERM would cut short the stopping the first started (a request being
    logged), so it is only recorded."""

    def __init__(self) -> None:
        self.received = False

    def __call__(self, signum: int, frame: object) -> None:
        if not self.received:
            self.received = True
            raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[Callable[[], bool]]:
    """During the block, SIGTERM raises :class:`Terminated` (once), deferred as Ctrl-C is
    by :func:`deferred_interrupts`; the yielded function says whether one came (a
    ``KeyboardInterrupt`` raised from it may have been raised again as another, as
    training's ``TrainingInterrupted``). Only in the main thread, where Python handles
    signals; the handler before it is restored at the end."""
    handler = _RaiseTerminated()
    if threading.current_thread() is not threading.main_thread():
        yield lambda: handler.received
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield lambda: handler.received
    finally:  # None: a handler set outside Python, which cannot be put back; the default
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[Callable[[], None]]:
    """Ctrl-C during the block is recorded, then raised once as ``KeyboardInterrupt``:
    by the yielded check, or when the block ends; so is SIGTERM, as ``Terminated``
    (first, where both came), under :func:`sigterm_as_interrupt`; where the block ends in
    another exception, that one is the raised interrupt's context (:func:`failure_of`
    gives it). Only in the main
    thread (the only one where Python handles signals) and while SIGINT has Python's
    default handler (a program that set its own keeps it); elsewhere the block runs as
    without this."""
    interrupted: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    terminate = signal.getsignal(signal.SIGTERM) if main else None

    def check() -> None:
        if interrupted:
            signals = set(interrupted)
            interrupted.clear()  # raised once
            if signal.SIGTERM in signals and isinstance(terminate, _RaiseTerminated):
                terminate(signal.SIGTERM, None)  # Terminated, unless one was raised before
            if signal.SIGINT in signals:
                raise KeyboardInterrupt

    defer = main and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if defer:
        signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    if isinstance(terminate, _RaiseTerminated):
        signal.signal(signal.SIGTERM, lambda signum, frame: interrupted.append(signum))
    try:
        try:
            yield check
        finally:
            if defer:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            if isinstance(terminate, _RaiseTerminated):
                signal.signal(signal.SIGTERM, terminate)
    except BaseException as failure:
        try:
            check()  # a block that failed otherwise after Ctrl-C: Ctrl-C, the failure its context
        except KeyboardInterrupt as interrupt:
            setattr(interrupt, _FAILURE, failure)  # noqa: B010 - read by failure_of
            raise
        raise
    check()


_FAILURE = "_routerllm_failed_with"


def failure_of(interrupt: BaseException) -> Exception | None:
    """The error a :func:`deferred_interrupts` block ended in where ``interrupt`` (or the
    one it was raised from) came during that block: what was kept is then what that
    error left (a save that failed half-way), which the interrupt alone does not tell."""
    for raised in (interrupt, interrupt.__cause__):
        failure = getattr(raised, _FAILURE, None)
        if isinstance(failure, Exception):
            return failure
    return None


@contextlib.contextmanager
def cancellable(stop: threading.Event) -> Iterator[None]:
    """A generation run in this thread during the block stops between two tokens once
    ``stop`` is set (by another thread), and ends with finish reason ``CANCELLED``;
    llama.cpp's and transformers' backends look between tokens; an ``openai_http``
    model's call, streamed or not, has its connection closed at once, even while the
    endpoint sends nothing or the connection is being made (which stops the endpoint's
    generation), and is not asked again after a failed attempt."""
    outer = getattr(_scope, "stop", None)
    _scope.stop = stop
    try:
        yield
    finally:
        _scope.stop = outer


class _EitherStop(threading.Event):
    """Set by its own ``set()`` or by the enclosing block's event ``outer``."""

    POLL_S = 0.05  # how often a wait looks at ``outer``, which cannot wake it

    def __init__(self, outer: threading.Event | None) -> None:
        super().__init__()
        self.outer = outer

    def is_set(self) -> bool:
        return super().is_set() or (self.outer is not None and self.outer.is_set())

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return False
            super().wait(self.POLL_S if left is None else min(left, self.POLL_S))
        return True


@contextlib.contextmanager
def also_cancellable() -> Iterator[threading.Event]:
    """A :func:`cancellable` block whose generation stops once the yielded event is set
    (a caller's ``on_text`` that raised), or where the enclosing block's is (the server's
    client gone)."""
    stop = _EitherStop(stop_event())
    with cancellable(stop):
        yield stop


def stop_event() -> threading.Event | None:
    """The event of this thread's :func:`cancellable` block (None outside one), for work
    that is stopped otherwise than between tokens: the cascade passes it to the sandbox,
    which kills the program checking an answer once it is set (in whatever thread that
    runs)."""
    return getattr(_scope, "stop", None)


class Cancellation:
    """Made where a generation starts, called between its tokens: whether the
    :func:`cancellable` block it runs in (if any, ``active``) was told to stop;
    ``stopped`` once it said so."""

    def __init__(self) -> None:
        self._stop = stop_event()
        self.stopped = False

    @property
    def active(self) -> bool:
        return self._stop is not None

    def __call__(self) -> bool:
        if not self.stopped and self._stop is not None and self._stop.is_set():
            self.stopped = True
        return self.stopped

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``, or less where told to stop meanwhile: whether it was (a
        backoff before asking again ends there, for nobody waits for the answer)."""
        if self._stop is None:
            time.sleep(seconds)
            return False
        self._stop.wait(seconds)
        return self()


def cancelled() -> bool:
    """Whether this thread's :func:`cancellable` block (if any) was told to stop."""
    return Cancellation()()


@contextlib.contextmanager
def ctrl_c_stops_the_answer() -> Iterator[Callable[[], bool]]:
    """During an answer (``route``'s, ``demo --interactive``'s), a first Ctrl-C stops its
    generation between two tokens: the answer so far is shown and logged as cancelled
    (finish reason ``CANCELLED``, its energy counted); a second one, before it stops (a
    load, which runs to its end), raises ``KeyboardInterrupt`` as usual. The yielded
    function says whether the first came: one that came once the answer was whole (its
    cascade's check killed, its escalation not made) leaves the model's finish reason.
    Only in the main thread, where Python handles signals."""

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    stop = threading.Event()

    def first(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C is the usual one

    previous = signal.signal(signal.SIGINT, first) or signal.SIG_DFL  # None: set outside Python
    try:
        with cancellable(stop):
            yield stop.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def between_tokens(*checks: Callable[[], None]) -> Any:
    """llama-cpp-python stopping criteria that run ``checks`` between two tokens (each
    raises what ends the generation: a deferred Ctrl-C, an error kept from a callback)
    and never stop the generation otherwise."""
    from llama_cpp import StoppingCriteriaList

    def check(_ids: Any, _logits: Any) -> bool:
        for raise_if_due in checks:
            raise_if_due()
        return False

    return StoppingCriteriaList([check])
