"""Progress of long runs (training, HumanEval generations) on stderr, the one place
every progress bar of RouterLLM is made.

Where stderr is a terminal (or a notebook) it is a tqdm bar, redrawn in place. Where
it is not (a CI log, ``2> run.log``, a pipe, ``nohup``) redraws would be written as
they are, a carriage return and a cursor-up escape each, thousands a run: there it is
a plain line with the same figures (done/total, elapsed, rate, time left) as it starts,
as each further tenth is done and at least once a minute (a step longer than that, a
model loading, too), as pip and huggingface_hub leave their bars out of logs.
``ROUTERLLM_PROGRESS`` forces either (``bars``, ``lines``) or none (``off``); ``auto``
(or unset) chooses as above."""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, TextIO

from routerllm.exceptions import RouterLLMError

ENV = "ROUTERLLM_PROGRESS"
#: The styles ``ROUTERLLM_PROGRESS`` takes (``auto``: bars at a terminal, lines elsewhere).
STYLES = ("auto", "bars", "lines", "off")
#: At least this often (seconds) a line is written while a run goes on.
LINE_INTERVAL_S = 60.0


class Progress(Protocol):
    """What the code that shows progress calls: a tqdm bar has each of these."""

    def update(self, n: int = 1) -> Any: ...
    def set_postfix(self, **figures: Any) -> Any: ...
    def close(self) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...


def progress_style() -> str:
    """The style ``$ROUTERLLM_PROGRESS`` asks for (``auto`` where unset or empty);
    an unknown one is a ``RouterLLMError`` that lists them."""
    style = os.environ.get(ENV, "").strip().lower() or "auto"
    if style not in STYLES:
        raise RouterLLMError(
            f"{ENV}={os.environ[ENV]!r} is not a progress style; use one of auto (bars where "
            f"stderr is a terminal, lines elsewhere), {', '.join(STYLES[1:])}"
        )
    return style


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    leave: bool = True,
    initial: int = 0,
    enabled: bool = True,
    postfix: Mapping[str, Any] | None = None,
) -> Progress:
    """A progress bar over ``iterable`` (or updated by hand up to ``total``), as
    ``ROUTERLLM_PROGRESS`` and stderr ask (see the module). ``leave=False``: an inner
    bar (an epoch's batches) that goes once done, and as lines says only the minute's
    line. ``postfix``: figures shown from the start (what is being loaded), as
    ``set_postfix`` gives later. ``enabled=False`` (``--json``): nothing is shown."""
    style = progress_style()
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = initial + len(iterable)  # type: ignore[arg-type]
    stream = sys.stderr
    if not enabled or style == "off" or stream is None:
        return _Silent(iterable)
    if style == "bars" or (style == "auto" and _interactive(stream)):
        try:
            from tqdm.auto import tqdm
        except ImportError:  # an optional dependency: lines need none
            pass
        else:
            bar: Progress = tqdm(
                iterable, desc=desc, total=total, unit=unit, leave=leave, initial=initial,
                postfix=dict(postfix or {}),
            )  # fmt: skip
            return bar
    return PlainProgress(
        iterable, desc=desc, total=total, unit=unit, leave=leave, initial=initial,
        stream=stream, postfix=postfix,
    )  # fmt: skip


def _interactive(stream: TextIO) -> bool:
    """A terminal, or a Jupyter notebook (whose stderr is no terminal, yet shows
    tqdm's widget)."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # a closed or file-like stream
        return False
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class _Silent:
    """No progress shown: the items pass through."""

    def __init__(self, iterable: Iterable[Any] | None) -> None:
        self._iterable = iterable if iterable is not None else ()

    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **figures: Any) -> None: ...
    def close(self) -> None: ...

    def __iter__(self) -> Iterator[Any]:
        return iter(self._iterable)


class PlainProgress:
    """Progress as plain lines, for a stderr that is a file or a pipe: one as it
    starts, one as each further tenth of ``total`` is done, one whenever ``interval``
    seconds have passed since the last (within a long step too: a thread says the
    current line), and the last figures as it closes (an interrupted run's: where it
    stopped). With ``leave=False`` only the interval's lines. Nothing is said once
    closed."""

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        desc: str,
        total: int | None = None,
        unit: str = "it",
        leave: bool = True,
        initial: int = 0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = LINE_INTERVAL_S,
        postfix: Mapping[str, Any] | None = None,
    ) -> None:
        self._iterable = iterable
        self.desc, self.total, self.unit, self.leave = desc, total, unit, leave
        self.n = self._initial = self._said = initial
        self._stream = stream if stream is not None else sys.stderr
        self._clock, self._interval = clock, interval
        self._started = self._last_line = clock()
        self._postfix: dict[str, Any] = dict(postfix or {})
        self._closed = False
        # the timer thread and the caller's both say lines and read the figures
        self._lock = threading.RLock()
        self._stop = threading.Event()
        if leave and total != 0:  # a run with nothing left to do says nothing
            self._say(self._started)
        # a weak reference: a bar dropped unclosed (an inner loop left by an error) is
        # collected, and its timer ends with it, woken as it is (not at its next line)
        stop = self._stop
        self._timer = threading.Thread(
            target=_say_each_interval, args=(weakref.ref(self, lambda _: stop.set()), stop, interval),
            name=f"routerllm progress: {desc}", daemon=True,
        )  # fmt: skip
        if math.isfinite(self._interval):  # not where the first line found stderr gone
            self._timer.start()

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self._iterable if self._iterable is not None else ():
                yield item
                self.update(1)
        finally:  # as tqdm: a bar iterated to its end (or left by an error) is closed
            self.close()

    def update(self, n: int = 1) -> None:
        with self._lock:
            tenth_before = self._tenth(self.n)
            self.n += n
            now = self._clock()
            further_tenth = self.leave and self._tenth(self.n) > tenth_before
            if further_tenth or now - self._last_line >= self._interval:
                self._say(now)

    def set_postfix(self, **figures: Any) -> None:
        with self._lock:
            self._postfix = figures

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.leave and self.n != self._said:
                self._say(self._clock())
        self._stop.set()
        if self._timer.is_alive() and self._timer is not threading.current_thread():
            self._timer.join(timeout=5)

    def _tick(self) -> float | None:
        """The timer's: the current line where ``interval`` has passed since the last;
        the seconds until the next is due, None once closed (or stderr gone)."""
        with self._lock:
            if self._closed or not math.isfinite(self._interval):
                return None
            now = self._clock()
            if now - self._last_line >= self._interval:
                self._say(now)
            # at least a tenth of the interval: with a clock not time's (a test's), no spin
            return min(
                max(self._interval - (now - self._last_line), self._interval / 10), self._interval
            )

    def _tenth(self, n: int) -> int:
        return -1 if not self.total else math.floor(10 * n / self.total)

    def _say(self, now: float) -> None:
        self._last_line, self._said = now, self.n
        try:
            self._stream.write(self.line(now) + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # stderr gone (a closed pipe): the run goes on
            self.leave, self._interval = False, math.inf

    def line(self, now: float) -> str:
        """``desc: n/total (p%), elapsed, rate, about T left, postfix``."""
        elapsed = now - self._started
        done = self.n - self._initial  # this run's: a resumed run's earlier ones took no time here
        count = (
            f"{self.n}/{self.total} ({100 * self.n / self.total:.0f}%)"
            if self.total
            else f"{self.n}"
        )
        parts = [f"{self.desc}: {count}"]
        parts.append(f"{_duration(elapsed)} elapsed")
        if done > 0 and elapsed > 0:
            rate = done / elapsed
            # as tqdm: under one a second, the seconds each takes
            each = f"{rate:.2f} {self.unit}/s" if rate >= 1 else f"{1 / rate:.2f} s/{self.unit}"
            parts.append(each)
            if self.total and self.n < self.total:
                parts.append(f"about {_duration((self.total - self.n) / rate)} left")
        parts += [f"{k}={_figure(v)}" for k, v in self._postfix.items()]
        return ", ".join(parts)


def _say_each_interval(
    bar: weakref.ReferenceType[PlainProgress], stop: threading.Event, interval: float
) -> None:
    """A ``PlainProgress``'s timer: the minute's line during a step longer than that."""
    wait: float | None = interval
    while wait is not None and not stop.wait(wait):
        alive = bar()
        wait = None if alive is None else alive._tick()
        del alive  # not held while waiting: the bar may be collected


def _duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _figure(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
