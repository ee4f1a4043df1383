"""Run untrusted generated Python (HumanEval completions) so that it cannot take the harness down.

Each program runs in its own process, ``python -I -S -B -u`` (isolated; no ``site``,
so only the standard library imports, and the packages a run names:
:mod:`routerllm.eval.sandbox_packages`; unbuffered, so the output tail is complete
when it is killed), in a fresh temporary directory (cwd, ``HOME``, ``TMPDIR``)
removed afterwards, with a minimal environment (the harness's API keys are not passed
in; run as the harness's own user, not root, it can still read them from the harness's
``/proc/<pid>/environ``, which the drop to another user prevents). Enforced by
the kernel (Linux): limits on address space, CPU seconds (a little above the
timeout), file size, open files, core dumps and tasks (``RLIMIT_NPROC``: the
user's count as the run starts plus ``NPROC_HEADROOM``, set by the runner once its own
processes are started, so that tasks the user's other programs fork meanwhile can refuse
the program's forks but not its start); a new session, whose whole process
group is SIGKILLed on timeout, output overflow and after every run; a kill by the
kernel when the harness dies (``PR_SET_PDEATHSIG``: SIGKILLed, the OOM killer, a CI
timeout, where nothing of the harness is left to kill the group), of the runner's process
(:func:`routerllm.eval.sandbox_entry._die_with_harness`) and of the PID namespace's
init with it; a private
network namespace (only a down loopback), a private PID namespace, whose end kills
every process left in it, and a private mount namespace in which every mount is
read-only but the program's folder (``/tmp``, ``/dev/shm``, ``/var/tmp`` included;
devices such as ``/dev/null`` stay writable) and a private IPC namespace (no System V
shared memory or POSIX message queue outlives the run), where the harness may make them
(as root, or as an ordinary user in a user namespace of its own where the kernel allows
one: :mod:`routerllm.eval.sandbox_userns`); and, as
root, a drop to a user of the program's own, a uid that names no account and that no
other program running at once has (``nobody`` where none can be had:
:func:`routerllm.eval.sandbox_isolation._run_user`), with a system interpreter of the
same Python version when ``nobody`` cannot start this one (e.g. a virtualenv under
``/root``), so that ``RLIMIT_NPROC`` binds, limits cannot be raised again, the harness
cannot be signalled, root's files cannot be changed, and programs checked at once
(:func:`check_many`) can neither read each other's ``/proc/<pid>`` files nor take each
other's tasks. Inside the child,
:mod:`routerllm.eval.sandbox_runner` makes fork/exec/spawn, signals to other processes
(kill, killpg, ``signal.pidfd_send_signal``, another process's ``resource.prlimit``),
``subprocess``, ``multiprocessing``, ``socket`` and ``os.memfd_create`` (memory counted in
no address space) raise ``PermissionError`` before the program runs: a guard against accidents that a determined program can get around.
The interpreter, the user and the namespaces are chosen by
:mod:`routerllm.eval.sandbox_isolation`; the folder is made, and removed, also where a
killed harness left it, by :mod:`routerllm.eval.sandbox_folders`.

Started with no ``preexec_fn`` (:func:`_start`), so that CPython vforks rather than fork
the harness (a fork's cost grows with the harness's memory: 224 ms a check from a
harness of 1.5 GB against 92 ms from a small one), the interpreter enters all of the
above itself (the namespaces, the limits, the user, the kill on the harness's end), in
:mod:`routerllm.eval.sandbox_entry`'s code, before the runner or the program runs; a
failure to enter it raises :class:`RouterLLMError` naming it (:func:`_entry_failure`),
never reads as the program's verdict.

Limits: as root without the drop (no interpreter that ``nobody`` can start),
the kernel ignores ``RLIMIT_NPROC`` and the child keeps
every capability: code that gets around the guards can raise its limits, fork,
re-enter the host network namespace, signal the harness or change root's files.
The program's user can still read world-readable files and fill its own folder (``RLIMIT_FSIZE``
bounds each file, not their total: only the time limit does); without a mount namespace
(an ordinary user whom the kernel refuses a user namespace) it can also fill world-writable folders such as
``/tmp`` or ``/dev/shm`` (memory), and what it leaves there stays. Without a PID namespace (the same
user), a child forked past the guards into a session of its own outlives the run
(the kill reaches the program's group), and any child it forked outlives a harness that
dies (the kernel kills the program, the runner's process, alone; code past the guards
can call ``prctl`` to live on). For code that may be malicious rather than
merely wrong, run the harness unprivileged in a container. As ``nobody`` (the kernel refuses
the uids of their own, or every one is held), programs checked at once share a user: one
can read another's ``/proc/<pid>/environ`` and ``mem`` and write into its folder through
``/proc/<pid>/cwd`` (``/proc`` is the harness's), and take its tasks.

Verdicts: ran to its end: "passed"; ``AssertionError``: "failed"; other exceptions:
"error". ``sys.exit()``, even ``sys.exit(0)``, is "error": the program stopped
before its tests finished. (HumanEval's harness counts a run without exception as
passed, but it catches ``BaseException``, so it counts ``SystemExit`` as failed.)
The verdict is the exit status, so a program written to forge success can: the
runner's own ``os._exit`` is in reach (``sys.modules["__main__"]``, a frame's globals),
and nothing in-process can hide it.

PID namespace: ``unshare(CLONE_NEWPID)`` moves the caller's children, not the caller
(which can then start no threads: ``EINVAL``), so the runner forks the namespace's init,
PID 1, which forks the program, PID 2, reaps, and sends back how the program ended; the
runner, still outside, ends the same way (the exit code, or death by the same signal),
so the verdict reads as without one (:func:`routerllm.eval.sandbox_runner.enter_pid_namespace`).
Whatever ends PID 1 (the program's end, the group's SIGKILL, the runner's end: the
kernel SIGKILLs it then, :func:`routerllm.eval.sandbox_runner._die_with_runner`, and the
runner when the harness ends) makes the kernel kill all left in the namespace, a child
in a session of its own included, before PID 1 can be reaped: none runs once the run
returns, nor once its harness is gone. ``RLIMIT_NPROC`` counts the two extra processes
(:data:`PID_NAMESPACE_TASKS`); the program sees itself as PID 2 and cannot name, so
cannot signal, a process outside. The runner and init are not dumpable: the program, of
their user, cannot ptrace init (into a session the group's kill misses) nor open their
ends of the status pipe through ``/proc``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import resource
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from routerllm.backends.interrupts import deferred_interrupts
from routerllm.checks import is_integer, is_positive_number
from routerllm.eval.sandbox_entry import FAILED
from routerllm.eval.sandbox_folders import program_folder
from routerllm.eval.sandbox_isolation import (
    PYTHON_FLAGS,
    _interpreter,
    _processes,
    _run_user,
    entry_argument,
    entry_source,
)
from routerllm.eval.sandbox_isolation import isolation_text as isolation_text  # re-exported
from routerllm.eval.sandbox_packages import THREAD_LIMITS, link_packages, package_names
from routerllm.eval.sandbox_runner import MARK, PID_NAMESPACE, TASKS
from routerllm.exceptions import RouterLLMError

if TYPE_CHECKING:
    from routerllm.data.humaneval import HumanEvalProblem

logger = logging.getLogger(__name__)

Status = Literal["passed", "failed", "timeout", "error", "killed"]

MAX_FILE_BYTES = 16 * 2**20  # RLIMIT_FSIZE: the largest file the program may write
MAX_OPEN_FILES = 256
NPROC_HEADROOM = 8  # tasks (threads too) the program may add to its user's count
PID_NAMESPACE_TASKS = 2  # in a PID namespace: the runner, then its init, then the program
MAX_OUTPUT_BYTES = 64_000  # default: stdout + stderr beyond this kills the program
_POLL_S = 0.05
_EXITED_NOT_REAPED = os.WEXITED | os.WNOHANG | os.WNOWAIT
_PROBE_LOCK = threading.Lock()  # check_many's threads: probe (and warn) once


@dataclass(frozen=True)
class ExecutionResult:
    """How one program ended: ``status``, a one-line ``detail``, time, output tails;
    ``stopped``: killed because its caller's ``stop`` was set (status "killed")."""

    status: Status
    detail: str
    duration_s: float
    stdout_tail: str = ""
    stderr_tail: str = ""
    stopped: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def run_program(
    source: str,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
    packages: Sequence[str] = (),
    *,
    stop: threading.Event | None = None,
) -> ExecutionResult:
    """Run ``source`` in a limited child process and classify how it ended.

    ``timeout_s`` is wall-clock time; more than ``max_output_bytes`` on stdout and
    stderr together kills the program, and each kept tail is at most that long.
    ``packages`` may be imported besides the standard library
    (:mod:`routerllm.eval.sandbox_packages`). Once ``stop`` is set (by another thread,
    as :func:`check_many` sets it on Ctrl-C, or the cascade's check once its caller has
    gone), the program is killed at once: "killed", ``stopped``.
    Raises :class:`RouterLLMError` for bad limits or packages, or if its folder cannot
    be written or the interpreter cannot start.
    """
    if not isinstance(source, str):
        raise RouterLLMError(
            f"source must be the program's text (str), got {type(source).__name__}"
        )
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RouterLLMError(f"source is not valid UTF-8 text ({e.reason} at {e.start})") from e
    _check_limits(timeout_s, memory_mb, max_output_bytes)
    if stop is not None and not isinstance(stop, threading.Event):
        raise RouterLLMError(f"stop must be a threading.Event, got {type(stop).__name__}")
    names = package_names(packages) if packages else ()
    with _PROBE_LOCK:
        executable, probed = _interpreter(sys.executable)
    # Linux counts the CPU limit in nanoseconds (64 bits): one of more than about 2^34 s
    # overflows and reads as already exceeded. 2^32 s (136 years) is no limit anyway.
    cpu_s, memory = min(math.ceil(timeout_s) + 1, 2**32), int(memory_mb) * 2**20
    limits = (
        (resource.RLIMIT_AS, memory, memory),
        (resource.RLIMIT_CPU, cpu_s, cpu_s + 1),  # soft: SIGXCPU, hard: SIGKILL
        (resource.RLIMIT_FSIZE, MAX_FILE_BYTES, MAX_FILE_BYTES),
        (resource.RLIMIT_NOFILE, MAX_OPEN_FILES, MAX_OPEN_FILES),
        (resource.RLIMIT_CORE, 0, 0),
    )
    start = time.monotonic()
    processes = list(_processes())  # read once (ms a read): the uids taken, the tasks counted
    with _run_user(probed, processes) as isolation, program_folder(isolation.user) as workdir:
        uid = os.getuid() if isolation.user is None else isolation.user[0]
        # in a user namespace of its own the kernel counts its tasks apart from the user's
        # others (which then take none of its headroom, nor give it more)
        # zombies too, as the kernel counts them until reaped (a uid of the run's own has
        # none: _run_user takes none that any task has)
        own = 0 if isolation.userns else sum(n for owner, _, _, n in processes if owner == uid)
        nproc = own + NPROC_HEADROOM
        nproc += PID_NAMESPACE_TASKS if isolation.pidns else 0
        program = workdir / "program.py"
        try:
            program.write_text(source, encoding="utf-8")
            program.chmod(0o644)
            paths = [str(link_packages(workdir, names))] if names else []
        except OSError as e:  # a full disk
            raise RouterLLMError(f"cannot write the program to the sandbox's folder: {e}") from e
        entry = functools.partial(entry_argument, limits, isolation, workdir)
        runner_args = [f"{TASKS}{nproc}", *([PID_NAMESPACE] if isolation.pidns else [])]
        proc, status = _start(executable, workdir, entry, [*runner_args, *paths])
        try:
            ending, out, err = _collect(proc, start + timeout_s, max_output_bytes, stop)
        finally:
            with suppress(ProcessLookupError, PermissionError):  # before reaping: while the
                os.killpg(proc.pid, signal.SIGKILL)  # leader is unreaped its pgid stays unique
            proc.wait()
            _wait_group_gone(proc.pid)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            failure = _entry_failure(status)
    if failure:
        raise RouterLLMError(f"cannot start the sandbox interpreter {executable}: {failure}")
    result = _classify(ending, proc.returncode, out, err, time.monotonic() - start, timeout_s)
    logger.debug("sandbox run: %s (%s) in %.2f s", result.status, result.detail, result.duration_s)
    return result


def _check_limits(timeout_s: Any, memory_mb: Any, max_output_bytes: Any) -> None:
    """A one-line error naming the first limit that the sandbox cannot apply."""
    ceiling = _memory_ceiling_mb()
    checks = (
        ("timeout_s", timeout_s, is_positive_number(timeout_s), "a positive, finite number"),
        (
            "memory_mb",
            memory_mb,
            is_integer(memory_mb) and 0 < memory_mb <= ceiling,
            f"a positive integer up to {ceiling} (this process's address-space limit)",
        ),
        (
            "max_output_bytes",
            max_output_bytes,
            is_integer(max_output_bytes) and max_output_bytes > 0,
            "a positive integer",
        ),
    )
    for name, value, ok, need in checks:
        if not ok:
            raise RouterLLMError(f"{name} must be {need}, got {value!r}")


def _memory_ceiling_mb() -> int:
    """The largest RLIMIT_AS, in MiB, the child may be given: the hard limit it inherits."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    return (2**63 - 1 if hard == resource.RLIM_INFINITY else hard) // 2**20


def check_problem(
    problem: HumanEvalProblem,
    completion: str | None,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
    packages: Sequence[str] = (),
    *,
    stop: threading.Event | None = None,
) -> ExecutionResult:
    """Run ``problem.program(completion)`` (prompt + completion + tests + ``check(...)``);
    ``completion=None`` runs the canonical solution; ``packages`` and ``stop`` as for
    :func:`run_program`."""
    if not _is_problem(problem):
        raise RouterLLMError(f"problem must be a HumanEvalProblem, got {type(problem).__name__}")
    if completion is not None and not isinstance(completion, str):
        raise RouterLLMError(
            f"completion must be the code as a string (or None for the canonical solution), "
            f"got {type(completion).__name__}"
        )
    program = problem.program(completion)
    return run_program(program, timeout_s, memory_mb, max_output_bytes, packages, stop=stop)


def _is_problem(problem: object) -> bool:
    from routerllm.data.humaneval import HumanEvalProblem  # not needed until a check runs

    return isinstance(problem, HumanEvalProblem)


def check_many(
    items: Iterable[tuple[HumanEvalProblem, str | None]],
    workers: int = 2,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    packages: Sequence[str] = (),
) -> list[ExecutionResult]:
    """:func:`check_problem` on each ``(problem, completion)``, ``workers`` at a time
    (threads, each waiting on its own process); results in the order of ``items``.
    Ctrl-C (or a check that raises) stops it at once: the checks not started never
    start, the running ones' programs are killed, and it returns once none is left."""
    if not is_integer(workers) or workers < 1:  # type: ignore[operator]
        raise RouterLLMError(f"workers must be an integer >= 1, got {workers!r}")
    _check_limits(timeout_s, memory_mb, MAX_OUTPUT_BYTES)
    names = package_names(packages) if packages else ()
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise RouterLLMError(
            f"items must be (problem, completion) pairs, got {type(items).__name__}"
        )
    pairs = list(items)
    if bad := [it for it in pairs if not (isinstance(it, tuple | list) and len(it) == 2)]:
        raise RouterLLMError(f"items must be (problem, completion) pairs, got {bad[0]!r}"[:300])
    for problem, completion in pairs:  # every item before any runs
        if not _is_problem(problem) or not isinstance(completion, str | None):
            raise RouterLLMError(
                f"items must be (HumanEvalProblem, completion text or None) pairs, got "
                f"({type(problem).__name__}, {type(completion).__name__})"
            )
    stop = threading.Event()

    def check(pair: tuple[HumanEvalProblem, str | None]) -> ExecutionResult:
        return check_problem(*pair, timeout_s, memory_mb, MAX_OUTPUT_BYTES, names, stop=stop)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")
    try:
        futures = [pool.submit(check, pair) for pair in pairs]
        return [future.result() for future in futures]
    except BaseException:
        # The pool's own exit waited for every running check (each up to its timeout)
        # before Ctrl-C reached the caller: they are killed at their next poll instead.
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start(
    executable: str, workdir: Path, entry: Callable[[int], str], args: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], int]:
    """The sandboxed interpreter started, and the read end of its status pipe
    (:func:`_entry_failure`). ``entry(fd)``: its first argument, which says what it
    enters (:mod:`routerllm.eval.sandbox_entry`) and that its failure goes to ``fd``;
    ``args``: the runner's (:func:`routerllm.eval.sandbox_runner.main`).

    No ``preexec_fn``, no user or group changed by ``Popen``: CPython then starts it with
    ``vfork``, whose cost does not grow with this process's memory (a ``fork`` copies
    its page tables: 140 ms a start from a process of 1.5 GB, against 23 ms)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir), **THREAD_LIMITS}
    status, report = os.pipe()
    proc = None
    try:
        try:
            # Ctrl-C as Popen waits for the exec is raised once proc is known, then killed
            with deferred_interrupts():
                proc = subprocess.Popen(
                    [executable, *PYTHON_FLAGS, "-c", _runner_source(), entry(report), *args],
                    cwd=workdir,
                    env={**env, "LC_ALL": "C.UTF-8"},
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    pass_fds=(report,),
                )
        except KeyboardInterrupt:
            if proc is not None:  # started, then pressed: it is not left running
                proc.kill()
                proc.wait()
            raise
        except (OSError, subprocess.SubprocessError) as e:
            raise RouterLLMError(f"cannot start the sandbox interpreter {executable}: {e}") from e
    except BaseException:
        os.close(status)
        raise
    finally:
        os.close(report)  # the child's copy is then the only one
    return proc, status


def _entry_failure(status: int) -> str:
    """What the sandboxed interpreter wrote on its status pipe (``status``, closed here)
    once it has ended: why it could not enter the sandbox; "" where it entered (it closed
    the pipe before the program ran, so the program cannot write there) or was killed
    before it knew. Not blocking: a process forked meanwhile by other code of the harness
    (not ``subprocess``, which closes it) may hold a copy of the write end."""
    try:
        os.set_blocking(status, False)
        with suppress(BlockingIOError):
            return os.read(status, 4096).decode("utf-8", "replace").removeprefix(FAILED).strip()
        return ""
    finally:
        os.close(status)


def _collect(
    proc: subprocess.Popen[bytes], deadline: float, cap: int, stop: threading.Event | None
) -> tuple[str, bytes, bytes]:
    """Read both pipes, keeping the last ``cap`` bytes of each, until the child exits
    ("exited"), the deadline passes ("timeout"), more than ``cap`` bytes came ("overflow")
    or ``stop`` is set ("cancelled")."""
    assert proc.stdout is not None and proc.stderr is not None
    tails = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    out, err = tails.values()
    total = 0
    with selectors.DefaultSelector() as selector:
        for fd in tails:
            selector.register(fd, selectors.EVENT_READ)
        while True:
            exited = os.waitid(os.P_PID, proc.pid, _EXITED_NOT_REAPED) is not None
            now = time.monotonic()
            if stop is not None and stop.is_set():
                return "cancelled", bytes(out), bytes(err)
            if now >= deadline:
                return ("exited" if exited else "timeout"), bytes(out), bytes(err)
            # with both pipes closed (nothing registered) select just sleeps the timeout
            ready = selector.select(0 if exited else min(deadline - now, _POLL_S))
            for key, _ in ready:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                total += len(chunk)
                tails[key.fd] += chunk
                del tails[key.fd][:-cap]
            if total > cap:
                return "overflow", bytes(out), bytes(err)
            if exited and not ready:  # drained what the dead child left
                return "exited", bytes(out), bytes(err)


def _classify(
    ending: str, returncode: int, out: bytes, err: bytes, duration_s: float, timeout_s: float
) -> ExecutionResult:
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    status: Status = "error"
    if ending == "timeout":
        status, detail = "timeout", f"no result within {timeout_s:g} s; process group killed"
    elif ending == "overflow":
        status, detail = "killed", "output limit exceeded; process group killed"
    elif ending == "cancelled":
        status, detail = "killed", "stopped by its caller; process group killed"
    elif returncode == 0:
        status, detail = "passed", "all tests passed"
    elif returncode in (3, 4):
        status = "failed" if returncode == 3 else "error"
        marked = stderr.rpartition(MARK)[2].splitlines() if MARK in stderr else []
        detail = marked[0] if marked else "exception (its report was lost)"
    elif returncode == -signal.SIGXCPU:
        status, detail = "timeout", "CPU time limit exceeded (SIGXCPU)"
    elif returncode < 0:
        status, detail = "killed", f"killed by {signal.Signals(-returncode).name}"
    else:
        lines = [line for line in stderr.splitlines() if line.strip()]
        detail = f"exit code {returncode}" + (f": {lines[-1]}" if lines else "")
    stopped = ending == "cancelled"
    return ExecutionResult(status, " ".join(detail.split())[:500], duration_s, stdout, stderr, stopped)  # fmt: skip


def _wait_group_gone(pgid: int, limit_s: float = 2.0) -> None:
    """Members orphaned to init die some time after SIGKILL: return once none runs
    (zombies are init's to reap), so that no program outlives its run."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)  # again: catches a fork that raced the first
        except (ProcessLookupError, PermissionError):
            return
        if not any(g == pgid and state != "Z" for _, state, g, _ in _processes()):
            return
        time.sleep(0.005)
    logger.warning("processes of sandbox group %d still run %.0f s after SIGKILL", pgid, limit_s)


@functools.cache
def _runner_source() -> str:
    """The entry's text, then the runner's: the sandbox entered before the runner runs."""
    runner = Path(__file__).with_name("sandbox_runner.py").read_text(encoding="utf-8")
    return entry_source() + runner
