"""Warnings that a loop would repeat, said once with their count.

A step run once per cross-validation fold (a router trained, then calibrated) warns
once per fold: five folds, five times the same line on stderr. Within
:func:`warnings_once`, RouterLLM's warnings are held back and said at the end of the
block, each once, with how many times it came. A fault each request meets while it
lasts (the request log's disk full while serving) is said by :class:`RepeatedFault`:
its first in full, its repeats counted, its end once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

PACKAGE = "routerllm"


class _Holder(logging.Filter):
    """Keeps back each warning (or worse) that passes its logger's level: the first
    record of each message template, and how many times each came."""

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[tuple[str, int, str], logging.LogRecord] = {}
        self.count: dict[tuple[str, int, str], int] = {}
        self.texts: dict[tuple[str, int, str], set[str]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        self.first.setdefault(key, record)
        self.count[key] = self.count.get(key, 0) + 1
        self.texts.setdefault(key, set()).add(record.getMessage())
        return False


def _package_loggers() -> list[logging.Logger]:
    """RouterLLM's loggers as they are now (a module imports its own when first used)."""
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == PACKAGE]
    return [logging.getLogger(n) for n in [PACKAGE, *names]]


@contextlib.contextmanager
def warnings_once(where: str) -> Iterator[None]:
    """RouterLLM's warnings in the block, said at its end: each message once, with
    ``[N times <where>]`` where it came N > 1 times (and ``the first shown`` where its
    figures differed). ``where`` says what repeated (``in the folds of router 'knn'``).
    Only the loggers of modules already imported are held: those of the code the block
    runs, imported before it loops."""
    holder = _Holder()
    loggers = list(dict.fromkeys(_package_loggers()))
    for logger in loggers:
        logger.addFilter(holder)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(holder)
        for key, record in holder.first.items():
            n = holder.count[key]
            if n > 1:
                shown = "" if len(holder.texts[key]) == 1 else ", the first shown"
                record.msg, record.args = f"{record.getMessage()} [{n} times {where}{shown}]", None
            logging.getLogger(record.name).handle(record)


#: How often a fault that goes on is said again (with the count of its repeats since).
REPEAT_EVERY_S = 60.0
_clock = time.monotonic  # what the repeats are counted by (a test sets it)


class RepeatedFault:
    """A fault each request meets while it lasts (the request log's disk full while a
    server answers): ``failed`` says its first in full (``first % reason``), then counts
    its repeats and says them at most once per ``REPEAT_EVERY_S`` (``"N more {what}: reason"``);
    ``worked`` says, once, that it is over. A line per request filled an operator's
    journal with the same line (until 2026-12-06). A new reason is said in full. Its
    first and its repeats are said at ``level`` (an error: a row lost to the log)."""

    def __init__(
        self, logger: logging.Logger, first: str, what: str, over: str, level: int = logging.ERROR
    ) -> None:
        self.logger, self.first, self.what, self.over = logger, first, what, over
        self.level = level
        self._lock = threading.Lock()  # the server's generating and logging threads
        self._reason: str | None = None  # the fault now, None while there is none
        self._total = 0  # its failures since its first
        self._unsaid = 0  # its repeats not yet said
        self._said_at = 0.0  # _clock() when it was last said

    def failed(self, reason: str) -> None:
        """One more failure, for ``reason``: said in full where it is new, else counted."""
        with self._lock:
            if reason == self._reason:
                self._total += 1
                self._unsaid += 1
                if _clock() - self._said_at >= REPEAT_EVERY_S:
                    self._say_repeats()
                return
            self._say_repeats()  # those of another reason, before this one's first
            self._reason, self._total, self._said_at = reason, self._total + 1, _clock()
            self.logger.log(self.level, self.first, reason)

    def worked(self, *_: object) -> None:
        """It worked: where it had failed, the repeats not yet said, then that it is over
        (a request log's observer: called with the row it took)."""
        with self._lock:
            if self._reason is None:
                return
            self._say_repeats()
            self.logger.warning(self.over, self._total)
            self._reason, self._total = None, 0

    def _say_repeats(self) -> None:
        if self._unsaid:
            self.logger.log(self.level, "%d more %s: %s", self._unsaid, self.what, self._reason)
            self._unsaid, self._said_at = 0, _clock()
