"""The suite's guard against process-wide state a test leaves behind.

pytest-xdist gives each file to one worker (``dev.py test``: ``--dist loadfile``), and
which files share a worker varies between machines: a test that leaves the process
changed (an environment variable, a router name registered, a signal handler, a system
left open holding BLAS at one thread) failed a later test of another file, on CI only,
at random, far from its cause (2026-12-05 and 06). So each test's process state is read
before its setup and after its teardown, and a test that changed it fails at its own
teardown, naming what changed. A change a test makes on purpose and undoes (monkeypatch,
a ``with`` block, a ``finally``) is undone by then. A module, class or session fixture
may hold a change for its tests: what its setup changed is expected until it is
finalized, and then what it found is expected back.

What is read is cheap (both reads of a test: 0.5-0.7 ms, README "Tests"),
and each item was changed by the code or the tests somewhere: the environment, the
working directory, the three registries, the signal handlers the CLI and the server set,
a pending ``alarm``, the ``routerllm`` and root loggers and ``logging.disable``,
``sys.path`` and ``sys.meta_path``, ``tempfile.tempdir``, the default socket timeout, the
umask, ``sys.stdin/stdout/stderr``, the holders of ``blas_threads``' one-thread limit,
torch's thread count (once torch is imported) and the modules taken out of (or replaced
in) ``sys.modules``. Random states are not read: they vary by themselves. Nor are thread
counts; but the threads and child processes a test started (a server, a worker, a timer,
a llama.cpp server, a sandbox child, ``routerllm serve``) are to have ended by its
teardown, each given a grace (``GRACE_S``) to finish ending: one left running made the
tests after it slower or flaky, on CI only (2026-12-06). Those a module, class or session
fixture started are its own to stop, when it is finalized. A llama.cpp model loaded on more than one thread (``n_threads`` or
``n_threads_batch``) fails its test too: two threads spin at llama.cpp's barriers on
shared cores, and such tests took minutes.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Generator
from typing import Any, NamedTuple

import pytest

#: A name absent (an unset variable, an unregistered router, a removed module).
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<absent>"})()

#: Set by third-party packages as they are imported (sklearn, joblib: OpenMP's
#: settings), by whichever test imports them first: no test's doing.
#: torch sets its compiler's cache folder when torch._inductor is first imported.
SET_ON_IMPORT = frozenset({"KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK", "TORCHINDUCTOR_CACHE_DIR"})


class LoggerState(NamedTuple):
    level: int
    handlers: tuple[logging.Handler, ...]
    disabled: bool
    propagate: bool


#: Finders third-party packages add to ``sys.meta_path`` as they are imported
#: (transformers' aliases of its renamed modules): no test's doing.
FINDERS_ADDED_ON_IMPORT = frozenset({"transformers.utils.import_utils"})

#: A logger never configured: one made by ``getLogger`` since is not a change.
UNTOUCHED_LOGGER = LoggerState(logging.NOTSET, (), False, True)

SIGNALS = tuple(
    getattr(signal, name)
    for name in (
        "SIGINT",
        "SIGTERM",
        "SIGHUP",
        "SIGPIPE",
        "SIGALRM",
        "SIGCHLD",
        "SIGUSR1",
        "SIGUSR2",
        "SIGQUIT",
    )  # fmt: skip
    if hasattr(signal, name)
)


def _umask() -> int | None:
    # read, not set and set back: a set would apply to a file another thread (a server
    # the test left running) creates meanwhile
    try:
        with open("/proc/self/status", "rb") as status:
            text = status.read()
        return int(text[text.index(b"Umask:") + 6 :].split(None, 1)[0], 8)
    except (OSError, ValueError):  # not Linux: not read
        return None


def _cwd() -> str:
    try:
        return os.getcwd()
    except FileNotFoundError:  # a temporary folder removed under it
        return "<removed folder>"


def _loggers() -> dict[str, LoggerState]:
    """The root logger's and RouterLLM's: level, handlers, disabled, propagate."""
    loggers: dict[str, Any] = {"<root>": logging.getLogger()}
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (name == "routerllm" or name.startswith("routerllm.")) and isinstance(logger, logging.Logger):  # fmt: skip
            loggers[name] = logger
    return {
        name: LoggerState(lg.level, tuple(lg.handlers), lg.disabled, lg.propagate)
        for name, lg in loggers.items()
    }


def snapshot() -> dict[str, Any]:
    """The process state a test must leave as it found it: each item a value, or a
    mapping whose entries are compared one by one."""
    from routerllm.registry import BACKENDS, ENCODERS, ROUTERS

    blas = sys.modules.get("routerllm.blas_threads")
    torch = sys.modules.get("torch")
    torch_threads = getattr(torch, "get_num_threads", None)
    return {
        "os.environ": dict(os.environ),
        "os.getcwd()": _cwd(),
        "registry.ROUTERS": dict(ROUTERS._entries),
        "registry.BACKENDS": dict(BACKENDS._entries),
        "registry.ENCODERS": dict(ENCODERS._entries),
        "signal handler": {signal.Signals(s).name: signal.getsignal(s) for s in SIGNALS},
        "signal.alarm pending": signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0),
        "logger": _loggers(),
        "logging.disable level": logging.root.manager.disable,
        "sys.path": tuple(sys.path),
        "sys.meta_path": tuple(
            f for f in sys.meta_path if type(f).__module__ not in FINDERS_ADDED_ON_IMPORT
        ),
        "tempfile.tempdir": tempfile.tempdir,
        "socket.getdefaulttimeout()": socket.getdefaulttimeout(),
        "umask": _umask(),
        "sys.stdin": sys.stdin,
        "sys.stdout": sys.stdout,
        "sys.stderr": sys.stderr,
        "blas_threads holders (RouterLLM systems open)": getattr(blas, "_holders", 0),
        "torch.get_num_threads()": torch_threads() if torch_threads is not None else None,
        "sys.modules": sys.modules.copy(),  # 4 times faster than dict(sys.modules)
    }


def _new_entry_is_fine(item: str, entry: Any, value: Any) -> bool:
    """A module imported, a logger made and left alone, is no leak."""
    if item == "os.environ":
        return entry in SET_ON_IMPORT
    return item == "sys.modules" or (item == "logger" and value == UNTOUCHED_LOGGER)


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """What differs: (item, entry or None, value before, value after)."""
    if before == after:  # the usual case, compared in C
        return []
    found = []
    for item in after:
        was, now = before.get(item, MISSING), after[item]
        if was == now:
            continue
        if item == "sys.modules" and was.items() <= now.items():
            continue  # none removed nor replaced (compared in C): only modules imported
        if not (isinstance(was, dict) and isinstance(now, dict)):
            if not (item == "torch.get_num_threads()" and was is None):  # torch imported
                found.append((item, None, was, now))
            continue
        for entry in sorted(was.keys() | now.keys(), key=repr):  # a message read the same each run
            a, b = was.get(entry, MISSING), now.get(entry, MISSING)
            if a is b or (a == b and a is not MISSING):
                continue
            if a is MISSING and _new_entry_is_fine(item, entry, b):
                continue
            found.append((item, entry, a, b))
    return found


def _describe(change: tuple[str, Any, Any, Any]) -> str:
    item, entry, was, now = change
    where = item if entry is None else f"{item}[{entry!r}]"
    if isinstance(was, tuple) and isinstance(now, tuple) and not isinstance(was, LoggerState):
        added = [_short(x) for x in now if x not in was]
        removed = [_short(x) for x in was if x not in now]
        return f"{where}: added {added}, removed {removed}" if added or removed else f"{where}: reordered"  # fmt: skip
    return f"{where}: {_short(was)} before, {_short(now)} after"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


#: How long the threads and child processes a test started are given to end, together,
#: after its teardown: one that is stopping (a server shut down, a timer cancelled) ends
#: within it (all within 1 ms in a run of 897 tests); one still running then was left
#: running. Wide, as CI's cores are busier than any here: it costs only a leak's test.
GRACE_S = 10.0

#: Threads (their class) third-party packages start on first use and keep on, found
#: left by the suite's run (2026-12-06): tqdm's monitor lives while any of its bars is
#: open, one a library holds included (sentence-transformers' and llama.cpp's loading).
LONG_LIVED_THREADS = frozenset({"tqdm._monitor.TMonitor"})

#: The worker threads a server starts on its first request (its generating thread,
#: anyio's for its endpoints run in a thread), which end with it: where a module fixture
#: holds a server's thread, that server's, started by the first test calling it.
SERVER_WORKERS = ("routerllm-generate", "AnyIO worker thread")

#: Child processes that multiprocessing starts on first use and keeps for the process's
#: life (its resource tracker, its fork server): no test's to stop.
LONG_LIVED_CHILDREN = ("from multiprocessing.resource_tracker import", "from multiprocessing.forkserver import")  # fmt: skip


class Runners(NamedTuple):
    """The threads and child processes alive: compared by identity (a thread) and pid."""

    threads: frozenset[threading.Thread]
    children: frozenset[int]


def _children() -> frozenset[int]:
    """This process's child processes (any thread's), from /proc; empty where there is
    no /proc (the check is skipped there)."""
    try:
        # one system call (1 us) where there is no child, the usual case; reading /proc
        # takes 30 us a thread. WNOWAIT: a child that ended is left for its owner to reap
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        tasks = os.listdir("/proc/self/task")
    except (ChildProcessError, OSError, AttributeError):  # no child; no /proc; not POSIX
        return frozenset()
    pids: set[int] = set()
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children", "rb") as f:
                pids.update(map(int, f.read().split()))
        except OSError:  # the thread ended meanwhile
            continue
    return frozenset(pids)


def runners() -> Runners:
    # a foreign thread (started by C code, seen as it called into Python) cannot be joined
    # and stays listed after it ended: not counted
    threads = frozenset(t for t in threading.enumerate() if not isinstance(t, threading._DummyThread))  # fmt: skip
    return Runners(threads, _children())


def _running(pid: int) -> bool:
    """Still running: not ended, nor a zombie (ended, its status not yet read)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"


def left_running(before: Runners, held: Runners) -> list[str]:
    """The threads and children started since ``before`` (but for those in ``held``),
    each given its part of ``GRACE_S`` to end, that still run: each named."""
    now = runners()
    threads = now.threads - before.threads - held.threads
    children = now.children - before.children - held.children
    if not threads and not children:  # the usual case
        return []
    threads = {t for t in threads if f"{type(t).__module__}.{type(t).__qualname__}" not in LONG_LIVED_THREADS}  # fmt: skip
    if held.threads:
        threads = {t for t in threads if not t.name.startswith(SERVER_WORKERS)}
    children = {pid for pid in children if not any(c in _command(pid) for c in LONG_LIVED_CHILDREN)}  # fmt: skip
    deadline = time.monotonic() + GRACE_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    while any(map(_running, children)) and time.monotonic() < deadline:
        time.sleep(0.01)
    found = [_describe_thread(t) for t in threads if t.is_alive()]
    found += [_describe_child(pid) for pid in sorted(children) if _running(pid)]
    return sorted(found)


def _minus(runners: Runners, *others: Runners) -> Runners:
    threads, children = runners
    for other in others:
        threads, children = threads - other.threads, children - other.children
    return Runners(threads, children)


def _describe_thread(thread: threading.Thread) -> str:
    target = getattr(thread, "_target", None) or type(thread).run
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
    daemon = "daemon" if thread.daemon else "not daemon"
    return f"thread {thread.name!r} still running {GRACE_S:g} s after teardown (target {name}, {daemon})"


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def _describe_child(pid: int) -> str:
    return f"child process {pid} still running {GRACE_S:g} s after teardown: {_short(_command(pid))}"  # fmt: skip


class StateGuard:
    """The pytest plugin (registered by ``tests/conftest.py``)."""

    def __init__(self) -> None:
        self.expected: dict[str, Any] = {}
        #: What a live module/class/session fixture's setup changed: its value before
        self.held: dict[int, list[tuple[str, Any, Any]]] = {}
        self.llama_threads: list[str] = []
        #: The threads and children alive before the test's setup
        self.started = Runners(frozenset(), frozenset())
        #: Those a live module/class/session fixture's setup started: its to stop
        self.held_runners: dict[int, Runners] = {}
        #: Those of a fixture finalized since the test's setup: to have ended by its teardown
        self.released = Runners(frozenset(), frozenset())
        self._llama_watched = False
        self._torch_set = False

    # tryfirst wrappers are outermost: the state is read before (and after) the logging
    # plugin's handlers are added (removed), the capture plugin's streams set (put back)
    # and monkeypatch's changes made (undone)
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        self._watch_llama_threads()
        self._torch_on_one_thread()
        self.llama_threads.clear()
        self.expected = snapshot()
        self.started = runners()
        self.released = Runners(frozenset(), frozenset())
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        if fixturedef.scope == "function":
            return (yield)
        before, running = snapshot(), runners()
        try:
            return (yield)
        finally:
            started = _minus(runners(), running, self._held())  # a fixture it uses holds its own
            if started.threads or started.children:
                self.held_runners[id(fixturedef)] = started
            made = changes(before, snapshot())
            if made:
                self.held[id(fixturedef)] = [(item, entry, was) for item, entry, was, _ in made]
                for item, entry, _, now in made:
                    self._expect(item, entry, now)

    @pytest.hookimpl(tryfirst=True)
    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any]) -> None:
        # run after the fixture's own finalizers: what it changed is to be back
        for item, entry, was in self.held.pop(id(fixturedef), []):
            self._expect(item, entry, was)
        released = self.held_runners.pop(id(fixturedef), None)
        if released is not None:
            self.released = Runners(self.released.threads | released.threads, self.released.children | released.children)  # fmt: skip

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Any, Any]:
        result = yield  # a teardown that failed is reported as it is
        # first: a thread that is ending may still hold state it gives back as it ends
        running = left_running(_minus(self.started, self.released), self._held())
        found = changes(self.expected, snapshot())
        if found:
            # what a collected object gives back (an unclosed system's BLAS hold) is
            # given back now, not in a later test, whenever the collector runs
            gc.collect()
            found = changes(self.expected, snapshot())
        problems = [_describe(c) for c in found]
        problems += running + self.llama_threads
        if self._torch_set and getattr(sys.modules["torch"], "get_num_threads", int)() != 1:
            # the suite's count back: the tests after it are not blamed for it
            sys.modules["torch"].set_num_threads(1)
        if problems:
            pytest.fail(
                "the test left process-wide state changed (tests/state_guard.py); undo it "
                "in the test (monkeypatch, a with block) or fix the code that leaks it:\n  "
                + "\n  ".join(problems),
                pytrace=False,
            )
        return result

    def _held(self) -> Runners:
        threads, children = frozenset[threading.Thread](), frozenset[int]()
        for held in self.held_runners.values():
            threads, children = threads | held.threads, children | held.children
        return Runners(threads, children)

    def _expect(self, item: str, entry: Any, value: Any) -> None:
        if entry is None:
            self.expected[item] = value
        elif value is MISSING:
            self.expected[item].pop(entry, None)
        else:
            self.expected[item][entry] = value

    def _torch_on_one_thread(self) -> None:
        """torch on one thread once a test has imported it, the suite's count (the
        product sets the process's count as it loads a model, a thread a core by
        default): a test that loads one on more fails, as it leaves torch spinning two
        threads, on cores the tests share, for every test after it."""
        torch = sys.modules.get("torch")
        if self._torch_set or not hasattr(torch, "set_num_threads"):
            return
        self._torch_set = True
        torch.set_num_threads(1)  # type: ignore[union-attr]

    def _watch_llama_threads(self) -> None:
        """Every llama.cpp model the tests load is checked for its thread counts (once
        a session: llama_cpp is imported for it, 0.3 s)."""
        if self._llama_watched:
            return
        self._llama_watched = True
        if importlib.util.find_spec("llama_cpp") is None:
            return
        from llama_cpp import Llama

        init = Llama.__init__
        guard = self

        def checked_init(llm: Any, *args: Any, **kwargs: Any) -> None:
            init(llm, *args, **kwargs)
            params = llm.context_params
            if max(params.n_threads, params.n_threads_batch) > 1 and not llm.model_params.vocab_only:  # fmt: skip
                guard.llama_threads.append(
                    f"llama.cpp loaded {getattr(llm, 'model_path', '?')} on "
                    f"n_threads={params.n_threads}, n_threads_batch={params.n_threads_batch}: "
                    "the suite runs it on one (manager.n_threads: 1, as in tiny_config_dict)"
                )

        Llama.__init__ = checked_init  # type: ignore[method-assign]
