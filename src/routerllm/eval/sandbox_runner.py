"""What runs inside the sandboxed child once it entered the sandbox: guards, then
``program.py``, then the verdict.

:mod:`routerllm.eval.sandbox` passes the text of :mod:`routerllm.eval.sandbox_entry`
followed by this file's to ``python -I -S -c``: the entry is made first, and this text
shares its names (no ``from __future__`` import here, which only the first statement
of a source may be: the entry's covers both there). It acts only as ``__main__``, so
importing it in the harness changes nothing.
Exit code 0: the program ran to its end; 3: ``AssertionError``; 4: any other
exception (``SystemExit`` included). The last stderr line after :data:`MARK` is
the one-line verdict. The guards stop accidents, not a determined program.

Its first argument (past the entry's, which the entry took off), :data:`TASKS` and a
number, is the program's ``RLIMIT_NPROC``, set here once this runner's own processes are
started: a task limit set with the entry's others, counted against a user whose other
programs (``check_many``) fork meanwhile, could refuse init's fork to a program that
never forks. Its next argument
:data:`PID_NAMESPACE` says that the entry unshared a PID namespace for it: the program then runs in a grandchild, PID 2 of that namespace, and this
process ends as the program did (:func:`enter_pid_namespace`); the kernel kills the
namespace's init, and all in it, when this process ends, as it kills this process when
its harness ends (:func:`_die_with_runner`).
"""

import _posixsubprocess
import _signal
import _socket
import _thread
import os
import posix
import resource
import signal
import socket
import sys
import traceback
from contextlib import suppress

if __name__ != "__main__":  # the harness; in the child, the entry's text defined them
    from routerllm.eval.sandbox_entry import (
        PR_SET_PDEATHSIG,
        TYPE_CHECKING,
        _prctl,
        set_dumpable,
    )

if TYPE_CHECKING:
    from collections.abc import Callable

MARK = "routerllm-sandbox-result: "
PID_NAMESPACE = "--pid-namespace"
TASKS = "--tasks="
BLOCKED_OS = [
    "fork",
    "forkpty",
    "system",
    "popen",
    "posix_spawn",
    "posix_spawnp",
    "execv",
    "execve",
    "execl",
    "execle",
    "execlp",
    "execlpe",
    "execvp",
    "execvpe",
    "spawnv",
    "spawnve",
    "spawnvp",
    "spawnvpe",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnlpe",
    "kill",
    "killpg",
    "pidfd_open",
    # memory in no address space: RLIMIT_AS missed it, 16 MiB (RLIMIT_FSIZE) an open file
    "memfd_create",
]
BLOCKED_SIGNAL = ["pidfd_send_signal"]  # a pidfd is also a /proc/PID directory opened
BLOCKED_SOCKET = [
    "socketpair",
    "fromfd",
    "create_connection",
    "create_server",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname_ex",
]
# Frames of the traceback reported, outermost first: formatting all of a deep recursion's
# (sys.setrecursionlimit(10**6)) takes longer than the run may, which then read as a timeout.
TRACEBACK_LIMIT = 1000
# Bytes of traceback reported, its start and its end: the whole of a long one (mutual
# recursion, a huge message) overflowed the output limit and read as "killed".
REPORT_BYTES = 8_000
_exit, _write = os._exit, os.write  # kept before the program can replace them
_getpid, _prlimit = os.getpid, getattr(resource, "prlimit", None)  # Linux only
_main_thread = _thread.get_ident()  # this file runs in the main thread


def _exit_raises(code: int) -> None:
    # The program's os._exit: a SystemExit, as sys.exit's (status 0 was read as a pass).
    # In another thread, which drops a SystemExit silently, it ends the program as
    # os._exit does (else the program ran on as if it had not been called).
    if _thread.get_ident() != _main_thread:
        try:
            raise SystemExit(code)
        except SystemExit as e:
            _report(e, 4, f"SystemExit({code!r}): os._exit in a thread ended the program before its tests finished")  # fmt: skip
    raise SystemExit(code)


def _deny(what: str) -> "Callable[..., None]":  # quoted: no future import (the docstring)
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(f"{what} is disabled in the RouterLLM sandbox")

    return denied


def _own_prlimit(pid: int, *args: object) -> object:
    # Another process's limits: a CPU limit of 1 s kills a harness of the same user.
    if pid not in (0, _getpid()):
        raise PermissionError("resource.prlimit of another process is disabled in the RouterLLM sandbox")  # fmt: skip
    return _prlimit(pid, *args)  # type: ignore[arg-type,misc]  # installed only with it


class _NoSocket(socket.socket):
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise PermissionError("network access is disabled in the RouterLLM sandbox")


def install_guards() -> None:
    """Make ``os._exit`` a ``SystemExit`` (its status 0 read as a pass); make process
    creation (subprocess, multiprocessing too), signals to other processes
    (``os.kill``, ``os.killpg``, ``signal.pidfd_send_signal``, and ``resource.prlimit`` of
    another process, whose CPU limit is a signal too), sockets, ctypes and ``os.memfd_create``
    (memory that no address-space limit counts) fail."""
    for module in (os, posix):
        for name in BLOCKED_OS:
            if hasattr(module, name):
                setattr(module, name, _deny(f"os.{name}"))
        setattr(module, "_exit", _exit_raises)  # noqa: B010
    _posixsubprocess.fork_exec = _deny("subprocess")  # type: ignore[assignment]
    for module in (signal, _signal):
        for name in BLOCKED_SIGNAL:
            if hasattr(module, name):
                setattr(module, name, _deny(f"signal.{name}"))
    if _prlimit is not None:
        resource.prlimit = _own_prlimit  # type: ignore[assignment]
    for module in (socket, _socket):
        # SocketType: _socket's own class, which socket.socket subclasses, under another name
        module.socket = module.SocketType = _NoSocket  # type: ignore[attr-defined,misc]
        for name in BLOCKED_SOCKET:
            if hasattr(module, name):
                setattr(module, name, _deny(f"socket.{name}"))
    sys.modules["ctypes"] = sys.modules["_ctypes"] = None  # type: ignore[assignment]


def _report(exc: BaseException, code: int, line: str | None = None) -> None:
    try:
        line = line or traceback.format_exception_only(exc)[-1].strip()
        text = "".join(traceback.format_exception(exc, limit=TRACEBACK_LIMIT))
        data = text.encode("utf-8", "replace")
        if len(data) > REPORT_BYTES:
            cut = f"\n[... {len(data) - REPORT_BYTES} bytes of traceback cut ...]\n".encode()
            data = data[: REPORT_BYTES // 4] + cut + data[-(REPORT_BYTES - REPORT_BYTES // 4) :]
        mark = f"\n{MARK}{line[:1000]}\n".encode("utf-8", "replace")
        _write(2, data + mark)
    finally:
        _exit(code)


def enter_pid_namespace() -> None:
    """Returns in PID 2 of the PID namespace unshared for this process, which runs the program.

    This process stayed outside (and can start no threads): its child is the namespace's
    init, PID 1, whose end makes the kernel kill everything left in it, a child that left
    the program's session included. PID 1 does not run the program because the kernel
    drops the signals sent to it from inside its namespace that it has no handler for
    (``signal.alarm``, ``signal.raise_signal``, ``abort``): it forks the program, reaps
    (orphans too, each holding a slot of ``RLIMIT_NPROC``) until the program has ended,
    and sends its wait status here, where it is repeated: the same exit code, or death
    by the same signal, which PID 1 itself could not die of.

    This process and init are not dumpable, the program is again: the program runs as
    the same user as this process and its init, and were they dumpable it could ptrace
    init (PID 1 to it), e.g. into a session of its own that the harness's kill of the
    group misses, the whole namespace running on, or open their ends of the status pipe
    through ``/proc/PID/fd`` and write a verdict. Not dumpable, both need
    ``CAP_SYS_PTRACE``, which the program lacks. Without ctypes (an interpreter built
    without it) they stay dumpable."""
    status_r, status_w = os.pipe()
    set_dumpable(False)  # before the fork: init inherits it
    if (init := os.fork()) != 0:
        os.close(status_w)
        own = os.waitpid(init, 0)[1]
        sent = os.read(status_r, 4)
        _end_as(int.from_bytes(sent, "little") if len(sent) == 4 else own)
    os.close(status_r)
    _die_with_runner(status_w)
    try:
        program = os.fork()
    except BaseException as e:  # RLIMIT_NPROC reached: an error, as a failed start
        _report(e, 4)
    if program == 0:
        os.close(status_w)
        set_dumpable(True)  # as it ran without a PID namespace (its /proc/self its own)
        return
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as init: deaf to the program's signals
    while True:
        pid, status = os.wait()
        if pid == program:
            break
    _write(status_w, status.to_bytes(4, "little"))
    _exit(0)


def _die_with_runner(status_w: int) -> None:
    """Init: SIGKILL once the runner ends (``prctl(PR_SET_PDEATHSIG)``), the whole
    namespace with it: the runner is SIGKILLed when its harness ends, so a harness killed
    while the program runs (the OOM killer, ``kill -9``) leaves none of them running.
    Set after the fork, it misses a runner that ended before: the kernel closes a process's
    files before it signals its children, so the status pipe then has no reader (the
    runner's end is its only one), and init ends, before the program starts. The runner
    is single-threaded: the thread that forked init is the runner's whole life."""
    prctl = _prctl()
    if prctl is not None:  # without ctypes: no kill
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    import select

    pipe = select.poll()
    pipe.register(status_w, 0)  # POLLERR: no reader left
    if pipe.poll(0):
        _exit(1)


def _limit_tasks(tasks: int) -> None:
    """The program's ``RLIMIT_NPROC``, soft and hard (it cannot raise it again), within
    the hard limit it inherited."""
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    tasks = tasks if hard == resource.RLIM_INFINITY else min(tasks, hard)
    resource.setrlimit(resource.RLIMIT_NPROC, (tasks, tasks))


def _end_as(status: int) -> None:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        with suppress(OSError, ValueError):  # SIGKILL and SIGSTOP have no handler to reset
            signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
        _exit(128 + signum)  # a signal whose default is to be ignored
    _exit(os.WEXITSTATUS(status))


def main() -> None:
    """Run ``program.py`` from the working directory as ``__main__`` and exit with the verdict;
    the arguments are :data:`TASKS` and the limit, :data:`PID_NAMESPACE` where one was
    unshared, then folders to import from (links to the packages named for the run)."""
    tasks = int(sys.argv.pop(1)[len(TASKS) :])
    if sys.argv[1:2] == [PID_NAMESPACE]:
        del sys.argv[1]
        enter_pid_namespace()
    _limit_tasks(tasks)
    sys.path[:0], sys.argv[1:] = sys.argv[1:], []
    install_guards()
    try:
        with open("program.py", encoding="utf-8") as f:
            code = compile(f.read(), "program.py", "exec")
        exec(code, {"__name__": "__main__"})
    except AssertionError as e:
        _report(e, 3)
    except SystemExit as e:
        _report(e, 4, f"SystemExit({e.code!r}): the program exited before its tests finished")
    except BaseException as e:
        _report(e, 4)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        _exit(0)


if __name__ == "__main__":
    main()
