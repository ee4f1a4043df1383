"""A real ``routerllm`` command run in a process of its own and sent Ctrl-C (or SIGTERM) at
a chosen moment, for the tests of what a stop says and keeps (``test_cli_signals.py``).

The moments are found without sleeps: by the process itself, as it first imports a module
(``at_import``: the models loading, training starting) or as its routed system starts
to close (``at_close``); or by the test, once a line holding some text is on the
process's stdout or stderr (``on_line``: an answer printed, a progress line). A command
whose last line is read has finished its work; ``held_open`` keeps it from ending before
the signal comes, as a slow machine's closing (CodeCarbon's, the log's, the interpreter's)
would, so that the press lands while it closes, every time.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

#: Run as ``python -c BOOTSTRAP MOMENT WHERE SIGNAL -- ARGS...``: ``routerllm ARGS`` as its
#: console script runs it (``main()`` reading ``sys.argv``), the signal sent at MOMENT.
BOOTSTRAP = r"""
import atexit, importlib.abc, importlib.util, os, select, signal, sys

moment, where, sent = sys.argv[1], sys.argv[2], getattr(signal, sys.argv[3])
sys.argv = ["routerllm", *sys.argv[5:]]


class QuietMachine(importlib.abc.MetaPathFinder):
    # every measured block read as too short to tell how busy the machine is: a load or an
    # answer measured while the suite's other tests load the CPU is warned of on stderr,
    # which these tests read whole (routerllm.carbon.cpu_share is imported late, not here:
    # it would import what some moments wait for)
    def find_spec(self, name, path=None, target=None):
        if name != "routerllm.carbon.cpu_share":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.MIN_CPU_S = float("inf")

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, QuietMachine())


def send():
    os.kill(os.getpid(), sent)


if moment == "import":  # as the module WHERE is first imported
    class SignalAtImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == where:
                sys.meta_path.remove(self)
                send()
            return None

    sys.meta_path.insert(0, SignalAtImport())
elif moment == "close":  # as the routed system's WHERE (a part it closes) is closed
    import routerllm.system as system

    def close_signalled(part):
        def close(*args, **kwargs):
            send()
            return part(*args, **kwargs)
        return close

    released = system.RouterLLM._release

    def release(self):
        setattr(self, where, _Closing(getattr(self, where)))
        return released(self)

    class _Closing:
        def __init__(self, part):
            self._part = part

        def close(self):
            send()
            return self._part.close()

        def __getattr__(self, name):
            return getattr(self._part, name)

    system.RouterLLM._release = release
elif moment in ("rename", "rename-fails"):  # as a file named WHERE is renamed into place
    import errno

    def on_rename(event, args):
        if event == "os.rename" and os.path.basename(str(args[1])) == where:
            send()
            if moment == "rename-fails":  # the rename refused, as by a full disk
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[1]))

    sys.addaudithook(on_rename)
elif moment == "exit":  # by the last atexit hook to run: the command's work done
    atexit.register(send)
elif moment == "held":  # the command's work done: held open until the signal has come
    came, wake = os.pipe()  # each signal Python handles writes its number there
    os.set_blocking(wake, False)
    signal.set_wakeup_fd(wake)

    def held_open():
        while select.select([came], [], [], 120)[0] and os.read(came, 1)[0] != sent:
            pass

    atexit.register(held_open)  # the first registered: the last to run

from routerllm.cli import main

sys.exit(main())
"""


@dataclasses.dataclass(frozen=True)
class Moment:
    """When the signal is sent: ``kind`` is "import" (as module ``where`` is first
    imported), "close" (as the routed system closes its part ``where``: "log", "meter",
    "manager"), "rename" (as a file named ``where`` is renamed into place; "rename-fails":
    and that rename fails), "exit" (as its last ``atexit`` hook runs), "line" (once a line of the stream ``stream`` holds
    ``where``), or "held" (as "line", the process held open after its work until the
    signal comes)."""

    kind: str
    where: str
    stream: str = "stdout"


def at_import(module: str) -> Moment:
    return Moment("import", module)


def at_close(part: str = "log") -> Moment:
    return Moment("close", part)


def on_line(text: str, stream: str = "stdout") -> Moment:
    return Moment("line", text, stream)


def at_rename(name: str, fails: bool = False) -> Moment:
    """As a file named ``name`` is renamed into place (``os.replace``): the save's last
    step; where ``fails``, that rename is refused (ENOSPC) as the signal comes."""
    return Moment("rename-fails" if fails else "rename", name)


def at_exit() -> Moment:
    """As the process runs its last ``atexit`` hook, its work done and printed."""
    return Moment("exit", "")


def held_open(last_line: str, stream: str = "stdout") -> Moment:
    """Once the line ``last_line`` (whole) is read; the process, its work done, is held
    open (its last ``atexit`` hook waits) until the signal has come."""
    return Moment("held", last_line, stream)


def run_stopped(
    args: Sequence[str],
    moment: Moment,
    sent: signal.Signals = signal.SIGINT,
    cwd: Path | None = None,
    timeout: float = 240,
    as_to_a_terminal: bool = True,
    ctrl_c_ignored: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``routerllm args`` sent ``sent`` at ``moment``: its status, stdout and stderr. A
    line awaited that never comes fails the test, with what the process printed.
    ``as_to_a_terminal``: stdout written line by line, as to a terminal (else as to a
    file or a pipe, in blocks: what a command prints reaches it when flushed, at the end
    of its work at the latest). ``ctrl_c_ignored``: started with SIGINT ignored, as a
    shell without job control starts a job in the background (``cmd &``)."""

    def ignore_ctrl_c() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    process = subprocess.Popen(
        [sys.executable, "-c", BOOTSTRAP, moment.kind, moment.where, sent.name, "--", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1" if as_to_a_terminal else ""},
        preexec_fn=ignore_ctrl_c if ctrl_c_ignored else None,
    )  # fmt: skip
    streams = {"stdout": process.stdout, "stderr": process.stderr}
    read: dict[str, list[str]] = {"stdout": [], "stderr": []}
    seen = threading.Event()

    def drain(name: str) -> None:
        stream = streams[name]
        assert stream is not None
        for line in stream:
            read[name].append(line)
            if name == moment.stream and _awaited(moment, line) and not seen.is_set():
                seen.set()
                process.send_signal(sent)

    readers = [threading.Thread(target=drain, args=(name,)) for name in streams]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for reader in readers:
            reader.join()
    out, err = "".join(read["stdout"]), "".join(read["stderr"])
    if moment.kind in ("line", "held"):
        assert seen.is_set(), f"no {moment.stream} line held {moment.where!r}:\n{out}\n{err}"
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def _awaited(moment: Moment, line: str) -> bool:
    """Whether ``line`` is the one ``moment`` waits for: one holding its text, or, held
    open, the command's last line (the text, whole)."""
    if moment.kind == "held":
        return line.rstrip("\n") == moment.where
    return moment.kind == "line" and moment.where in line
