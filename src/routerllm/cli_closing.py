"""Ctrl-C (and SIGTERM) once a command's work is done, while its process closes.

A command that has printed its output and saved its files still takes a while to end:
the interpreter joins threads, runs the ``atexit`` hooks (CodeCarbon's, logging's) and
then tears its modules down, which took 0.9-2.2 s after ``route`` (2 busy cores,
2026-12-07). Ctrl-C there was a traceback from the thread or hook it hit (``Exception
ignored in: <module 'threading'>``, status 0), or, once Python had put SIGINT's default
action back for its last steps, a death by signal that said nothing; and a press between
the command's return and ``main``'s was said with the command's own line, which speaks of
work not done ("the gate was not saved"). From the command's return on (``start``), a
press is recorded instead; ``main`` then says, in one line, that the command had
finished and nothing was lost, and exits with 130 (143 for SIGTERM).

Run as the process's command (``main()`` reading ``sys.argv``), the process ends itself
(``end_process``): threads joined and ``atexit`` hooks run as the interpreter would, the
output flushed, then ``os._exit``, so that no step is left where a press could not be
said; the teardown of modules it skips frees nothing a process ending needs to free.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from typing import Any, NoReturn

from routerllm.cli import EXIT_INTERRUPTED, EXIT_TERMINATED

#: The line of a command stopped once its work was done.
FINISHED_THEN_INTERRUPTED = (
    "interrupted as it closed, after the command had finished: nothing was lost (its "
    "output is whole and what it saved is kept)"
)


class ClosingPresses:
    """Ctrl-C (and SIGTERM, but under ``serve``, whose SIGTERM is a graceful stop of its
    own) recorded, not raised, from ``start()`` on, until ``stop()`` puts the handlers
    before back; an ignored one stays ignored. Only in the main thread, where Python
    handles signals. A second press while the process ends (``end_process``) ends it at
    once: a closing step that hangs (a thread that never ends) can still be stopped."""

    def __init__(self) -> None:
        self.signals = [signal.SIGINT, signal.SIGTERM]
        self.pressed: list[int] = []
        self._previous: dict[int, Any] = {}
        self._ending: int | None = None  # the status end_process exits with

    def start(self) -> None:
        """Record presses from now. Called again, it records those a handler set since
        took (``sigterm_as_interrupt`` putting its own back as its block ends), and
        ``stop`` puts that one back."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.signals:
            current = signal.getsignal(signum)
            # ignored (a job started in the background without job control): left so
            if current not in (self._record, signal.SIG_IGN):
                self._previous[signum] = signal.signal(signum, self._record)

    def stop(self) -> None:
        for signum, before in self._previous.items():  # None: set outside Python
            signal.signal(signum, signal.SIG_DFL if before is None else before)
        self._previous.clear()

    def raised(self, error: KeyboardInterrupt) -> None:
        """A press raised as ``start`` was called (its handler ran before the call did),
        recorded as one after it; ``start``'s work done."""
        from routerllm.backends.interrupts import Terminated

        self.pressed.append(signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT)
        self.start()

    def without_sigterm(self) -> None:
        """SIGTERM left to the command (``serve``: a graceful stop, status 0)."""
        self.signals = [signal.SIGINT]

    def _record(self, signum: int, frame: object) -> None:
        self.pressed.append(signum)
        if self._ending is not None and len(self.pressed) > 1:
            with contextlib.suppress(Exception):
                if sys.stdout is not None:
                    sys.stdout.flush()
            os._exit(self.status(self._ending))

    def _status(self, status: int) -> int:
        if not self.pressed or status != 0:
            # a command that failed, or was interrupted, said so in its own line already
            return status
        return EXIT_INTERRUPTED if self.pressed[0] == signal.SIGINT else EXIT_TERMINATED

    def status(self, status: int) -> int:
        """The status to exit with, the command's ``status`` once done: where a press came
        after a command that finished (0), its line is said and the status is 130 (143)."""
        said = self._status(status)
        if said != status:
            _say(FINISHED_THEN_INTERRUPTED)
        return said

    def end_process(self, status: int) -> NoReturn:
        """End the process as the interpreter would (non-daemon threads joined, the
        ``atexit`` hooks run, the output flushed), with a press meanwhile recorded, and
        exit with the command's ``status``, or 130 (143) after one such press."""
        self.start()
        self._ending = status
        with contextlib.suppress(Exception):
            # the interpreter's own first step: joins the non-daemon threads, after
            # telling an executor's workers to end (concurrent.futures' exit hook)
            shutdown = getattr(threading, "_shutdown", None)
            if shutdown is not None:
                shutdown()
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.flush()
        # a press from here on waits, blocked, and is read below: none goes unsaid
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, list(self._previous))
            self.pressed += sorted(set(self._previous) & signal.sigpending())
        status = self.status(status)
        os._exit(status)


def _say(line: str) -> None:
    """``line`` on stderr, written at once (in a signal handler too): nothing to lose where
    stderr is closed."""
    with contextlib.suppress(Exception):
        if sys.stderr is not None:
            sys.stderr.flush()
        os.write(2, (line + "\n").encode())
