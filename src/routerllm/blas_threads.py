"""One BLAS thread while a ``RouterLLM`` is open: the thread policy of routing.

A routing decision's matrix work is small (one prompt's embedding against a router's
weights or stored prompts), and OpenBLAS splits it over every core. On cores that
llama.cpp is generating on, the decision then waited for a second BLAS thread to be
scheduled: the quality router on ``minilm-static`` decided in 4.2-15.9 ms (p50, four
runs) instead of 0.5-0.8 ms with one thread, and batches of 64 were faster on one
thread too (``benchmarks/busy_routing.py``, README "Decision latency"). So an open ``RouterLLM``
(the CLI's requests, ``routerllm serve``) holds numpy's BLAS libraries at one thread,
process-wide: OpenBLAS has one thread count for the whole process, which a server's
worker threads, routing in turn, all share. The last one closed gives the libraries
back the thread counts they had, so training and batched evaluation
(``routerllm train``, ``eval-routing``, ``test``) in a process with no open system
keep theirs. llama.cpp's threads are the config's ``manager.n_threads``; the MiniLM
encoders' (torch, onnxruntime) are set when they load (``encoders/hf.py``,
``encoders/minilm.py``) and are not changed here; the sandbox's test processes start
with one BLAS thread each (``eval/sandbox_packages.py``).

Fitting a router (``one_thread``: each ``OutcomeRouter.fit``, and the quality router's
logistic regressions, entered after scikit-learn and scipy are loaded) runs every
loaded BLAS and OpenMP library on one thread too, open system or not: its matrices are
small as well, and two OpenBLAS threads on two cores made ``routerllm train --router
moe`` take 4-8 times the CPU of one (README "Training threads"). That covers a library
loaded after a system opened (scipy's OpenBLAS, with scikit-learn), which the hold
above does not. A thread count the user set (``USER_THREAD_VARIABLES``) wins: the
fitting then runs as the libraries were started.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

_lock = threading.Lock()
_holders = 0  # open systems holding the limit
#: Each library limited, by its file: threadpoolctl's controller of it and the count it had
_saved: dict[str, tuple[Any, int | None]] = {}


#: The environment variables that set a BLAS or OpenMP library's thread count: where the
#: user set one, fitting keeps the counts the libraries started with
USER_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Every BLAS and OpenMP library loaded now at one thread for the ``with`` block, then
    the counts they had; nothing where the user set a count (``USER_THREAD_VARIABLES``)
    or threadpoolctl is not installed. A library loaded inside the block is not limited:
    enter it after the imports of the work it covers."""
    if any(os.environ.get(name, "").strip() for name in USER_THREAD_VARIABLES):
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


def hold_one_thread(holder: object) -> Callable[[], None]:
    """Limit the BLAS libraries loaded (numpy's) to one thread while ``holder`` lives;
    call what it returns to let go (once; it is called when ``holder`` is collected,
    where that was never done). The last to let go gives the libraries the thread
    counts they had. Without threadpoolctl (the ``learn`` extra) nothing is done: the
    rules router, all a core install runs, does no matrix work."""
    global _holders
    with _lock:
        _holders += 1
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            pass
        else:
            for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
                # one loaded since (scipy's, with scikit-learn) is given its count back too
                _saved.setdefault(lib.filepath, (lib, lib.num_threads))
                _set_threads(lib, 1)  # for each holder: a count set since is not kept
    return weakref.finalize(holder, _release)


def _release() -> None:
    global _holders
    with _lock:
        _holders -= 1
        if _holders == 0:
            for lib, threads in _saved.values():
                if threads is not None:  # None: the library could not say it
                    _set_threads(lib, threads)
            _saved.clear()


def _set_threads(lib: Any, threads: int) -> None:
    # threadpoolctl (3.6+) lets one Python thread set OpenBLAS's process-wide count, the
    # first that set it while it lives, and silently ignores the others: a system opened
    # in one thread and closed in another (a server's shutdown) left the count at 1, and
    # one opened after a thread that lives on had set it was not limited. The count is
    # the process's: it is set whichever thread asks, and no thread is left controlling.
    clear = getattr(lib, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    lib.set_num_threads(threads)
    if clear is not None:
        clear(force=True)
