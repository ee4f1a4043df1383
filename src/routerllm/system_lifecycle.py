"""When a ``RouterLLM`` may be used: open until ``close()``, in the process that made it,
with the calls that use its models or its log counted per thread so that ``close()``
(a server's shutdown, another thread's, a signal handler's) waits for them to be logged
before it releases anything. ``RouterLLM`` (``system.py``) inherits it and says what
it releases (``_release``)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from routerllm.exceptions import RouterLLMError

if TYPE_CHECKING:
    from typing_extensions import Self


class SystemLifecycle:
    """Open, closed, or inherited by a forked process; the calls in flight, per thread."""

    def _start_lifecycle(self) -> None:
        """Open from now, in this process, with no call in flight (the constructor's last
        step before it learns, so that a failed start leaves nothing to close)."""
        self._closed = False  # refuses requests from now
        self._pid = os.getpid()  # a process forked from this one may not use it
        self._released = False  # its models, meter and log, once the last request is done
        # the calls that use the models or the log, per thread; close() waits for them
        self._in_flight: Counter[int] = Counter()
        self._release_after = False  # set by a close() called within a request of its thread
        self._calls_done = threading.Condition()

    def close(self) -> None:
        """Unload the models, stop the carbon tracker and close the request log, once the
        requests other threads are running have finished and been logged; later requests
        are refused with a clear error. Closing again does nothing once closed (a close()
        that was interrupted while it waited is finished by the next one; one called
        meanwhile in another thread returns once the system is closed). Called within a
        request of its own thread (a signal handler's), it returns at once: that request
        ends, and is logged, first; then the system is released. In a process forked from
        the one that made it, it releases nothing: all it holds is that process's."""
        if self._forked():
            self._closed = True
            return
        with self._calls_done:  # a second close() meanwhile returns once this one has closed
            self._closed = True
            if self._in_flight[threading.get_ident()]:  # it would wait for itself forever
                self._release_after = True
                return
            self._calls_done.wait_for(lambda: not self._in_flight)
            self._release()

    def __reduce__(self) -> Any:
        """Refused: a one-line ``RouterLLMError`` (a system holds this process's models)."""
        # a multiprocessing pool (spawn, forkserver) pickles what it sends: the error was
        # pickle's "cannot pickle '_thread.lock' object"
        raise RouterLLMError(
            "a RouterLLM cannot be pickled or sent to another process (its models, log and "
            "carbon tracker are this process's); create one in each process, e.g. in a "
            "multiprocessing pool's initializer"
        )

    def __enter__(self) -> Self:
        """The system, open (a closed one, its ``with`` block ended, is refused here)."""
        self.check_open()  # else its block ran, refused only at its first request
        return self

    def __exit__(self, *exc: object) -> None:
        """``close()``, once the requests other threads are running are logged."""
        self.close()

    def _forked(self) -> bool:
        return os.getpid() != self._pid

    def _check_process(self) -> None:
        if self._forked():
            # llama.cpp's threads are not in the child: a generation there waited forever
            raise RouterLLMError(
                f"this RouterLLM was made in process {self._pid}, and a process forked from "
                f"it cannot use it (its models' threads, its log's connection and its carbon "
                f"tracker are that process's); create a RouterLLM in each process, e.g. in a "
                f"multiprocessing pool's initializer"
            )

    def check_open(self) -> None:
        """A one-line ``RouterLLMError`` where the system is closed, or was made in another
        process (a fork's parent), as ``RequestLog.check_open`` for a log."""
        self._check_process()
        if self._closed:
            raise RouterLLMError("this RouterLLM is closed; create a new one")

    @contextlib.contextmanager
    def _open_call(self) -> Iterator[None]:
        """A call that uses the models or the log: refused once closed, and waited for
        by close(), which another thread (a server's shutdown) may call meanwhile."""
        me = threading.get_ident()
        self._check_process()  # before the lock, which a thread of the parent may have held
        with self._calls_done:
            self.check_open()
            self._in_flight[me] += 1
        try:
            yield
        finally:
            with self._calls_done:
                self._in_flight[me] -= 1
                if not self._in_flight[me]:
                    del self._in_flight[me]
                self._calls_done.notify_all()
                if self._release_after and not self._in_flight:  # the close() it deferred
                    self._release()

    def _release(self) -> None:
        """Unload, stop and close what the system holds, once (``_calls_done`` held)."""
        raise NotImplementedError
