"""Work run on a thread of its own whose stack is as large as asked: C code that recurses
once per item of its input (llama.cpp's pre-tokenizer for Qwen2.5's vocabulary, once a
character) needs more than the 8 MB a thread has by default, and overflowing it kills
the process (SIGSEGV), not a Python error. The stack is virtual memory: only the pages
touched are committed, and it is freed when the thread ends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from routerllm.backends.interrupts import deferred_interrupts
from routerllm.exceptions import BackendError

T = TypeVar("T")

#: Held while the process's size for new threads' stacks is ours (set, a thread started,
#: put back): two callers at once would start a thread with the other's size.
_SIZING = threading.Lock()

_PAGE = 4096


def with_stack(call: Callable[[], T], size: int) -> T:
    """``call()`` on a new thread with a stack of ``size`` bytes (rounded up to a page),
    waited for; what it raises is raised here, and a ``BackendError`` where the system
    will not start such a thread (an address-space limit, ``ulimit -v``). Ctrl-C meanwhile is raised once it has
    returned (:func:`deferred_interrupts`), as it was while ``call`` ran in C on the
    caller's thread: the work goes on with what it reads (a model) until it ends."""
    done: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(call())
        except BaseException as e:  # raised again in the caller's thread
            failed.append(e)

    thread = threading.Thread(target=run, name="routerllm-deep-stack", daemon=True)
    # deferred from before the start: Ctrl-C once it runs must wait for its end
    with deferred_interrupts():
        with _SIZING:
            previous = threading.stack_size(-(-size // _PAGE) * _PAGE)
            try:
                thread.start()
            except RuntimeError as e:  # the system's: its memory limit, its threads
                raise BackendError(
                    f"could not start a thread with a stack of {size >> 20} MiB to tokenize "
                    f"the prompt ({e}): shorten the prompt, or raise the process's limits "
                    f"(ulimit -v, threads)"
                ) from None
            finally:
                threading.stack_size(previous)
        thread.join()
    if failed:
        raise failed[0]
    return done[0]
