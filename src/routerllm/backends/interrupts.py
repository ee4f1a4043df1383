"""Ctrl-C while llama.cpp calls back into Python.

A Python function that C code calls through ctypes (llama.cpp's log callback
while a model loads, the prompt-state callback while it computes,
``backends/llama_state.py``) is often the only Python code that runs, so Ctrl-C's
``KeyboardInterrupt`` is raised there; ctypes prints and drops it, and the C
code goes on as if nothing was pressed. :func:`deferred_interrupts` records
Ctrl-C for a block instead and raises it where Python can: when the block's
check is called (between two tokens), and at the end of the block at the latest.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[Callable[[], None]]:
    """Ctrl-C during the block is recorded, then raised once as ``KeyboardInterrupt``:
    by the yielded check, or when the block ends. Only in the main thread (the only
    one where Python handles signals) and while SIGINT has Python's default handler
    (a program that set its own keeps it); elsewhere the block runs as without this."""
    interrupted: list[int] = []

    def check() -> None:
        if interrupted:
            interrupted.clear()  # raised once
            raise KeyboardInterrupt

    defer = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if defer:
        signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        yield check
    finally:
        if defer:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    check()
