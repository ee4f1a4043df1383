"""Where and as whom a sandboxed program runs: the interpreter, the user, the namespaces.

Probed once per interpreter (:func:`_interpreter`): a private network namespace, a
private PID namespace, a private mount namespace and a private IPC namespace where each
can be made (not as root: in a user namespace of its own, where the kernel gives one:
:mod:`routerllm.eval.sandbox_userns`), and, as root,
a drop to user ``nobody`` (with a system interpreter of the same Python version when
``nobody`` cannot start this one), then to a user of each program's own where the kernel
lets it (:func:`_run_user`). The sandboxed interpreter itself enters that, sets the limits
and ties itself to the harness, whose end kills it, before anything else runs in it
(:mod:`routerllm.eval.sandbox_entry`, told by :func:`entry_argument`; the probes run
behind the same entry); each program's temporary folder, owned by that user and removed
afterwards (by a later run where its harness died first), is
:mod:`routerllm.eval.sandbox_folders`'s. What runs in it, and how it ends, is
:mod:`routerllm.eval.sandbox`'s.

A user of its own (:data:`RUN_UIDS`): programs checked at once (``check_many``'s
workers) both ``nobody`` could read each other's ``/proc/<pid>/environ``, ``mem`` and
``fd``, and write into each other's folder through ``/proc/<pid>/cwd`` (every program
sees the harness's ``/proc``), and they shared one ``RLIMIT_NPROC`` count: one's forks
left the other no threads. So each run holds a uid of its own, with the gid of the same
number and no other group, for its whole length: one that names no account or group
(it owns no file but what the run writes in its folder), that no live process has, and
that no other run holds, on this machine's network namespace, a harness of another
process included: the hold is an abstract Unix socket bound to a name of that uid, which
the kernel frees when the run ends or its harness dies. Its folder is chowned to it;
root removes the folder whoever owns what is in it. The uids are probed once with the
interpreter chosen for ``nobody`` (the system one included): where the kernel refuses
them (a user namespace that maps none of them), or where every one is held, programs run
as ``nobody``, as before, and the log says so once.

Mount namespace (:func:`routerllm.eval.sandbox_entry._read_only_except`): every mount the child sees is remounted
read-only (a bind remount changes that mount's flags in the child's namespace only, the
file system's own stay as they are), then the program's folder is bind-mounted onto itself
read-write: the program writes its folder and nothing else (``/tmp``, ``/dev/shm``,
``/var/tmp`` included, whose total no file-size limit bounded), while devices such as
``/dev/null`` stay writable (a device node is not written through its mount). ``/proc``
and ``/sys`` are remounted the same way, not replaced: ``/proc`` stays the harness's view
(process groups as the harness names them). Mounts are made private first, so nothing
propagates back to the harness's mount table; the namespace, and the folder's bind mount
with it, ends with the program's last process. Chosen over private ``tmpfs`` mounts on
``/tmp``, ``/var/tmp`` and ``/dev/shm``: those would hide the program's own folder (under
``/tmp``) and leave every other world-writable folder writable.

IPC namespace: System V shared memory, semaphores and POSIX message queues live in it, not
in any mount, and end with it, when the program's last process does: none it made stays
(a segment may be as large as the machine's ``shmmax``, and no limit of the program's
bounds what it leaves unattached).
"""

from __future__ import annotations

import dataclasses
import functools
import grp
import logging
import os
import pwd
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from routerllm.eval import sandbox_entry
from routerllm.eval.sandbox_entry import _mount, _unshare
from routerllm.eval.sandbox_folders import RUN_UIDS as RUN_UIDS  # re-exported
from routerllm.eval.sandbox_folders import program_folder
from routerllm.eval.sandbox_userns import id_maps, warn_refused

logger = logging.getLogger(__name__)

_RUN_UID_LOCK = "\0routerllm-sandbox-uid-{}"  # an abstract socket: held while bound
_warned_no_free_uid = False
PYTHON_FLAGS = ("-I", "-S", "-B", "-u")
# unshare(CLONE_NEWPID) moves the caller's children, not the caller: the child it forks
# must be PID 1 of the new namespace (and its own fork PID 2: sandbox_runner's).
_PID_PROBE = (
    "import json, math, os\n"
    "if os.fork() == 0:\n    os._exit(os.getpid() != 1)\n"
    "os._exit(os.waitstatus_to_exitcode(os.wait()[1]))\n"
)
# In a mount namespace its folder stays writable, and / is read-only (not written to see).
_MOUNT_PROBE = (
    "import os\nopen('probe', 'w').close()\n"
    "if not os.statvfs('/').f_flag & os.ST_RDONLY:\n    os._exit(1)\n"
)


@dataclass(frozen=True)
class _Isolation:
    netns: bool  # unshare a private network namespace
    user: tuple[int, int] | None  # (uid, gid) to drop to; None keeps the harness's
    pidns: bool = False  # unshare a private PID namespace (the runner then forks its init)
    mountns: bool = False  # unshare a mount namespace: all read-only but the program's folder
    ipcns: bool = False  # unshare an IPC namespace: no shared memory outlives the program
    own_users: bool = False  # as root: each run a uid of RUN_UIDS of its own (else ``user``)
    userns: bool = False  # not as root: a user namespace first, the others made in it


def entry_argument(
    limits: Sequence[tuple[int, int, int]],
    isolation: _Isolation,
    folder: str | os.PathLike[str],
    status: int = -1,
) -> str:
    """The sandboxed interpreter's first argument, which says what it enters
    (:mod:`routerllm.eval.sandbox_entry`): ``isolation`` and ``limits``, ``folder``
    writable, tied to this process; its failure written to ``status`` (-1: stderr)."""
    return sandbox_entry.argument(
        limits=[tuple(limit) for limit in limits],
        folder=os.fsencode(folder),
        harness=os.getpid(),
        user=isolation.user,
        netns=isolation.netns,
        pidns=isolation.pidns,
        mountns=isolation.mountns,
        ipcns=isolation.ipcns,
        userns=isolation.userns,
        maps=id_maps() if isolation.userns else (),
        status=status,
    )


@functools.cache
def entry_source() -> str:
    """The text of :mod:`routerllm.eval.sandbox_entry`, which starts every sandboxed
    interpreter's ``-c`` source (the runner's, the probes')."""
    return Path(sandbox_entry.__file__).read_text(encoding="utf-8")


@contextmanager
def _run_user(
    isolation: _Isolation, processes: Iterable[tuple[int, str, int, int]]
) -> Iterator[_Isolation]:
    """``isolation`` for one run: with ``user``, where the probe found ``own_users``, a uid
    of :data:`RUN_UIDS` that names no account, that none of the ``processes``
    (:func:`_processes`, read as the run starts; zombies too) has and that no other run holds; held
    until the block ends. ``isolation`` as it is without one."""
    global _warned_no_free_uid
    if not isolation.own_users:
        yield isolation
        return
    # a zombie too (an earlier run's program not yet reaped): the kernel counts it against
    # the task limit until it is reaped, so the program had a fork fewer, or, counted in
    # its limit and reaped during the run, one more than its headroom (9 of 8 seen)
    taken = {uid for uid, _, _, _ in processes}
    for uid in _unnamed_uids():
        if uid in taken:  # a program that outlived its run (no PID namespace), or a zombie
            continue
        hold = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            hold.bind(_RUN_UID_LOCK.format(uid))
        except OSError:  # another run holds it, maybe another harness's
            hold.close()
            continue
        with hold:
            yield dataclasses.replace(isolation, user=(uid, uid))
        return
    if not _warned_no_free_uid:
        _warned_no_free_uid = True
        logger.warning(
            "sandbox: every uid of %d-%d is held by another run or used by a process: this "
            "run's program runs as nobody, which programs running at once share",
            RUN_UIDS[0],
            RUN_UIDS[-1],
        )
    yield isolation


@functools.cache
def _unnamed_uids() -> tuple[int, ...]:
    """The uids of :data:`RUN_UIDS` that name no account and whose gid names no group:
    a program run as one reads and writes only what everyone may."""
    unnamed = []
    for uid in RUN_UIDS:
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(uid)
            continue
        except KeyError:
            unnamed.append(uid)
    return tuple(unnamed)


def _processes() -> Iterator[tuple[int, str, int, int]]:
    """(uid, state, process group, threads) of each process in /proc; none without /proc."""
    with suppress(OSError), os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as f:
                    fields = f.read().rpartition(")")[2].split()
                yield entry.stat().st_uid, fields[0], int(fields[2]), int(fields[17])
            except (OSError, ValueError, IndexError):
                continue  # it ended while we read it


def isolation_text() -> str:
    """What the sandbox enforces on this machine, in words (for reports): its network,
    its PID namespace, what it may write and the user its programs run as (probed once,
    as ``run_program`` probes it)."""
    _, isolation = _interpreter(sys.executable)
    network = (
        "a private network namespace (no network)"
        if isolation.netns
        else "the machine's network, sockets refused by in-process guards only"
    )
    processes = (
        "a private PID namespace (no process outlives its run)"
        if isolation.pidns
        else "no PID namespace (a child that leaves the program's session outlives its run)"
    )
    files = (
        "every mount read-only but the program's folder"
        if isolation.mountns
        else "no mount namespace (what it writes to world-writable folders such as /tmp stays)"
    )
    if isolation.ipcns:
        files += " and a private IPC namespace (no shared memory outlives its run)"
    return f"{network}, {processes}, {files}, as {user_text(isolation)}"


def user_text(isolation: _Isolation) -> str:
    """The user the programs run as, in words."""
    if isolation.userns:
        return "the harness's user, in a user namespace of its own (no capability)"
    if isolation.user is None and os.geteuid() != 0 and not isolation.netns:
        return "the harness's user (the kernel refused it a user namespace, so no namespace)"
    if isolation.user is None:
        return "the harness's user"
    if isolation.own_users:
        return (
            f"a user of its own (uids {RUN_UIDS[0]}-{RUN_UIDS[-1]}, no account; "
            "user nobody once every one is held)"
        )
    return "user nobody"


@functools.cache
def _interpreter(executable: str) -> tuple[str, _Isolation]:
    """The interpreter for sandboxed programs and its isolation: ``executable``, unless
    we are root and user ``nobody`` cannot start it (a virtualenv under ``/root``):
    then a system interpreter of the same Python version that ``nobody`` can start
    (programs run with ``-I -S``: they get the standard library, and the packages named
    for the run from the harness's install, which ``check_sandbox_packages`` checks)."""
    isolation = _isolation(executable)
    if os.geteuid() != 0 or isolation.user is not None or _nobody() is None:
        return executable, isolation
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if os.access(candidate, os.X_OK) and (fallback := _isolation(candidate)).user:
            logger.info("sandbox: user nobody cannot start %s; using %s", executable, candidate)
            return candidate, fallback
    logger.warning(
        "running as root and user nobody can start neither %s (it is under a private "
        "directory such as /root?) nor a system python%s: sandboxed programs keep root's "
        "rights, so RLIMIT_NPROC does not bind and only the in-process guards stop forks",
        executable,
        version,
    )
    return executable, isolation


def _nobody() -> tuple[int, int] | None:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return nobody.pw_uid, nobody.pw_gid


@functools.cache
def _isolation(executable: str) -> _Isolation:
    """The strongest isolation with which ``executable`` still starts, probed once."""
    can_unshare = _unshare() is not None
    # not as root: the namespaces made in a user namespace where the kernel gives one
    userns = os.geteuid() != 0 and can_unshare and _probe(executable, _Isolation(False, None, userns=True))  # fmt: skip
    netns = can_unshare and _probe(executable, _Isolation(True, None, userns=userns))
    pidns = can_unshare and _probe(executable, _Isolation(False, None, True, userns=userns))
    mountns = can_unshare and _mount() is not None and _probe(executable, _Isolation(False, None, mountns=True, userns=userns))  # fmt: skip
    ipcns = can_unshare and _probe(executable, _Isolation(False, None, ipcns=True, userns=userns))
    if os.geteuid() != 0 and not userns and not netns:
        warn_refused(executable)
    user = _nobody() if os.geteuid() == 0 else None
    if user is not None:
        # the drop to nobody matters more than the namespaces: give them up before it
        kept = ((pidns, mountns), (pidns, False), (False, mountns), (False, False))
        tries = [_Isolation(netns, user, pid, mount, ipcns) for pid, mount in kept]
        works = next((it for it in dict.fromkeys(tries) if _probe(executable, it)), None)
        if works is None:
            user = None
        else:
            pidns, mountns = works.pidns, works.mountns
    own_users = user is not None and _can_run_own_users(
        executable, _Isolation(netns, user, pidns, mountns, ipcns)
    )
    isolation = _Isolation(netns, user, pidns, mountns, ipcns, own_users, userns)
    logger.info("sandbox isolation for %s: %s", executable, isolation)
    return isolation


def _can_run_own_users(executable: str, isolation: _Isolation) -> bool:
    """Whether ``executable`` starts, with ``isolation``, as the first uid of
    :data:`RUN_UIDS` that names no account; the log says so where it does not."""
    uids = _unnamed_uids()
    if uids and _probe(executable, dataclasses.replace(isolation, user=(uids[0], uids[0]))):
        return True
    logger.warning(
        "sandbox: %s cannot run as a user of its own (uids %d-%d: %s): every program runs "
        "as nobody, and programs checked at once can read each other's /proc/<pid> files",
        executable,
        RUN_UIDS[0],
        RUN_UIDS[-1],
        "the kernel refused the first" if uids else "each names an account or a group",
    )
    return False


def _probe(executable: str, isolation: _Isolation) -> bool:
    with program_folder(isolation.user) as workdir:
        try:
            # the entry first, as for the programs: a failure to enter exits non-zero
            proc = subprocess.run(
                [
                    executable,
                    *PYTHON_FLAGS,
                    "-c",
                    entry_source()
                    + (_MOUNT_PROBE if isolation.mountns else "")
                    + (_PID_PROBE if isolation.pidns else "import json, math"),
                    entry_argument((), isolation, workdir),
                ],
                cwd=workdir,
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return False
    return proc.returncode == 0
