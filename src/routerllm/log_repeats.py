"""Warnings that a loop would repeat, said once with their count.

A step run once per cross-validation fold (a router trained, then calibrated) warns
once per fold: five folds, five times the same line on stderr. Within
:func:`warnings_once`, RouterLLM's warnings are held back and said at the end of the
block, each once, with how many times it came.
"""

from __future__ import annotations

import contextlib
import logging
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
