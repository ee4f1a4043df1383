"""Ctrl-C while C code calls back into Python (``backends/interrupts.py``), shown with
libc's qsort calling a Python comparison, as llama.cpp calls its callbacks; the scope
that stops a generation whose caller has gone."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import threading

import pytest

from routerllm.backends.interrupts import Cancellation, cancellable, deferred_interrupts

COMPARE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))


def _sort_pressing_ctrl_c(sent: signal.Signals = signal.SIGINT) -> tuple[list[int], int]:
    """Sort with a comparison that sends SIGINT (or ``sent``) to this process on its
    first call; return the values and how many comparisons the C code made."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    calls: list[int] = []

    def compare(a, b):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            signal.raise_signal(sent)
        return a[0] - b[0]

    values = (ctypes.c_int * 5)(5, 3, 4, 1, 2)
    libc.qsort(values, len(values), ctypes.sizeof(ctypes.c_int), COMPARE(compare))
    return list(values), len(calls)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ctrl_c_in_a_callback_is_dropped_by_ctypes_without_it() -> None:
    """The problem: the interrupt is lost and the C code goes on to the end. (The
    interrupted comparison returns 0, so the order depends on libc's qsort.)"""
    values, comparisons = _sort_pressing_ctrl_c()
    assert sorted(values) == [1, 2, 3, 4, 5] and comparisons > 1


def test_ctrl_c_in_a_callback_is_raised_after_the_c_call() -> None:
    with pytest.raises(KeyboardInterrupt), deferred_interrupts():
        assert _sort_pressing_ctrl_c()[0] == [1, 2, 3, 4, 5]  # finished, then raised
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_check_raises_it_at_once() -> None:
    with deferred_interrupts() as interrupted:
        interrupted()  # nothing pressed yet
        _sort_pressing_ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            interrupted()
    # raised once: caught in the block, it is not raised again when the block ends


def test_outside_the_main_thread_and_under_a_programs_own_handler_nothing_changes() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        with deferred_interrupts():
            signal.raise_signal(signal.SIGINT)
        assert seen == [signal.SIGINT]  # the program's handler ran, nothing was deferred
    finally:
        signal.signal(signal.SIGINT, previous)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with deferred_interrupts() as interrupted:
                interrupted()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert not errors and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_as_ctrl_c_is_deferred_as_ctrl_c_is_and_raised_once() -> None:
    """``routerllm`` commands stop on SIGTERM as on Ctrl-C (``sigterm_as_interrupt``): in
    a callback of C code, ctypes dropped its exception too, and the process went on."""
    from routerllm.backends.interrupts import Terminated, sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt() as terminated:
        assert not terminated()
        with pytest.raises(Terminated), deferred_interrupts():
            assert _sort_pressing_ctrl_c(signal.SIGTERM)[0] == [1, 2, 3, 4, 5]
        assert terminated() and issubclass(Terminated, KeyboardInterrupt)
        with deferred_interrupts():  # raised once: a second SIGTERM stops nothing more
            _sort_pressing_ctrl_c(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before
    with sigterm_as_interrupt(), pytest.raises(Terminated):  # outside C code: at once
        signal.raise_signal(signal.SIGTERM)
        pytest.fail("SIGTERM was not raised")
    with sigterm_as_interrupt(), pytest.raises(Terminated), deferred_interrupts():
        _sort_pressing_ctrl_c(signal.SIGINT)  # both in C code: the stronger is raised
        _sort_pressing_ctrl_c(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_cancellable_block_tells_its_own_threads_generations_to_stop() -> None:
    """The server's worker thread runs a generation in ``cancellable``; the server's event
    loop, another thread, sets the event when the client has gone."""
    assert not Cancellation().active and not Cancellation()()  # outside a block: never
    stop, other = threading.Event(), threading.Event()
    with cancellable(stop):
        check = Cancellation()
        assert check.active and not check() and not check.stopped
        elsewhere: list[Cancellation] = []
        thread = threading.Thread(target=lambda: elsewhere.append(Cancellation()))
        thread.start()
        thread.join()
        assert not elsewhere[0].active  # another thread's generation is not this one's
        with cancellable(other):  # an inner block's event, then the outer's again
            assert not Cancellation()()
            other.set()
            assert Cancellation()()
        setter = threading.Thread(target=stop.set)
        setter.start()
        setter.join()
        assert check() and check.stopped
        stop.clear()
        assert check()  # once stopped, stopped: llama-cpp-python asks again at the end
    assert not Cancellation().active


def test_ctrl_c_in_a_block_that_fails_otherwise_is_raised_not_lost() -> None:
    """A block ending in another error (a generation whose decode failed) after Ctrl-C was
    pressed in C code raised only that error: the caller (a run that goes on past a
    failed request) never saw the Ctrl-C."""
    with pytest.raises(KeyboardInterrupt) as raised, deferred_interrupts():
        _sort_pressing_ctrl_c()
        raise ValueError("llama_decode returned 1")
    assert isinstance(raised.value.__context__, ValueError)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(ValueError), deferred_interrupts():  # nothing pressed: the error
        raise ValueError("llama_decode returned 1")
