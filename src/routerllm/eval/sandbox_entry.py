"""The sandbox's entry, made by the sandboxed interpreter itself before anything else runs in it.

:mod:`routerllm.eval.sandbox` starts ``python -I -S -B -u -c SOURCE ENTRY ...`` with no
``preexec_fn``, so CPython starts it with ``vfork`` whatever the harness's size (a
``preexec_fn`` makes it ``fork`` the whole harness: its page tables copied, then its
copy-on-write faults, 140 ms a start from a process of 1.5 GB against 23 ms). SOURCE is
this file's text, then :mod:`routerllm.eval.sandbox_runner`'s (the probes of
:mod:`routerllm.eval.sandbox_isolation` put theirs after it); ENTRY, its first argument,
made by :func:`argument` in the harness, says what to enter. Run as ``__main__``, this
text takes ENTRY off ``sys.argv`` and enters the sandbox (:func:`enter_sandbox`) before
the runner's text is even read: a user namespace (not root: in which the others are
made, :mod:`routerllm.eval.sandbox_userns`), the network, IPC, mount (every mount
read-only but the program's folder: :func:`_read_only_except`) and PID namespaces, the
limits, the drop to the run's user, and the kill on the harness's end
(:func:`_die_with_harness`), in that order. Imported (by the harness) it does nothing.

The interpreter runs as the harness's user until then: only its start-up and this
file's imports (the standard library's, resolved as that user: ``ctypes`` for libc's
``unshare``, ``mount``, ``prctl`` and ``capset``, which Python lacks) run before the
drop; ``RLIMIT_AS`` and the others bind from here on, after the interpreter started.
What an ``exec`` did once the entry was made in the forked child, this does by itself:
as the run's user it is dumpable again (the drop made it not), and in a user namespace
it gives up the capabilities the namespace gave it (:func:`_drop_capabilities`).

Where entering fails (the kernel refuses a namespace, a mount or a limit), the process
writes :data:`FAILED` and why on its status descriptor (``status`` in ENTRY: a pipe the
harness reads once the process has ended; stderr where there is none, as in the probes)
and exits with :data:`FAILED_EXIT`, before any of the program's code runs: the harness
raises, never reads it as the program's verdict. On success it closes the descriptor
before the runner starts, so the program cannot write to it.

Standard library only, and nothing heavy at the top (its imports run in each sandboxed
process): the runner's text that follows shares its names (the runner imports them
from here when the harness imports it).
"""

from __future__ import annotations

import errno
import marshal
import os
import resource
import sys

TYPE_CHECKING = False  # not imported from typing: keeps the child's start-up lean
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

FAILED = "routerllm-sandbox-not-entered: "
FAILED_EXIT = 5  # the runner's own verdicts are 0, 3 and 4
SIGKILL = 9
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4  # <linux/prctl.h>
_CLONE_NEWUSER = getattr(os, "CLONE_NEWUSER", 0x10000000)
_CLONE_NEWNET = getattr(os, "CLONE_NEWNET", 0x40000000)
_CLONE_NEWPID = getattr(os, "CLONE_NEWPID", 0x20000000)
_CLONE_NEWNS = getattr(os, "CLONE_NEWNS", 0x00020000)
_CLONE_NEWIPC = getattr(os, "CLONE_NEWIPC", 0x08000000)
_CAPABILITY_VERSION_3 = 0x20080522  # <linux/capability.h>: two 32-bit words a set
# mount(2)'s flags (<sys/mount.h>); the per-mount flags a read-only bind remount keeps
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_NOSYMFOLLOW, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20, 0x100, 0x1000, 0x4000, 0x40000
_KEPT_FLAGS = {b"nosuid": _MS_NOSUID, b"nodev": _MS_NODEV, b"noexec": _MS_NOEXEC,
               b"nosymfollow": _MS_NOSYMFOLLOW}  # fmt: skip
# a mount hidden by another mounted over it (its path names the other), or (FUSE) one
# that even root may not enter: nobody cannot reach it either
_UNREACHABLE = (errno.ENOENT, errno.EINVAL, errno.EACCES)
# /proc/self/mountinfo writes these characters of a path in octal
_MOUNTINFO_ESCAPES = ((b"\\040", b" "), (b"\\011", b"\t"), (b"\\012", b"\n"), (b"\\134", b"\\"))


def argument(**parameters: object) -> str:
    """ENTRY: ``parameters`` of :func:`enter_sandbox`, and ``status`` (the descriptor
    its failure is written to; -1: stderr), as one argument. Marshal's format, in hex:
    built in and loaded before any import (``json`` took 18 ms of each start: ``re``)."""
    return marshal.dumps(parameters).hex()


def enter() -> None:
    """Take ENTRY off ``sys.argv`` and enter the sandbox; on failure report it and exit
    with :data:`FAILED_EXIT` (the module's docstring)."""
    parameters = marshal.loads(bytes.fromhex(sys.argv.pop(1)))
    status = parameters.pop("status")
    try:
        enter_sandbox(**parameters)
    except BaseException as e:  # any failure, one of this code's own included
        line = f"{FAILED}{e}" if isinstance(e, EntryFailed) else f"{FAILED}{e!r}"
        os.write(status if status >= 0 else 2, f"{line}\n".encode("utf-8", "replace"))
        os._exit(FAILED_EXIT)
    if status >= 0:
        os.close(status)


class EntryFailed(Exception):
    """What could not be entered, and why."""


def enter_sandbox(
    limits: Sequence[tuple[int, int, int]],
    folder: bytes,
    harness: int,
    user: tuple[int, int] | None = None,
    netns: bool = False,
    pidns: bool = False,
    mountns: bool = False,
    ipcns: bool = False,
    userns: bool = False,
    maps: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """``folder``: the program's, the cwd, which stays writable; ``harness``: the pid of
    the process that started this one, whose end kills it (:func:`_die_with_harness`);
    the namespaces and ``user`` as :class:`routerllm.eval.sandbox_isolation._Isolation`
    names them; ``maps``: the user namespace's
    (:func:`routerllm.eval.sandbox_userns.id_maps`). Raises :class:`EntryFailed`."""
    unshare = _unshare()
    if userns and unshare is not None:  # first: the others are made in it
        _step("unshare a user namespace", enter_user_namespace, unshare, maps)
    if netns and unshare is not None:
        _step("unshare a network namespace", unshare, _CLONE_NEWNET)
    if ipcns and unshare is not None:
        _step("unshare an IPC namespace", unshare, _CLONE_NEWIPC)
    if mountns and unshare is not None:
        _step("unshare a mount namespace", unshare, _CLONE_NEWNS)
        _step("make the mounts read-only", _read_only_except, folder)
    if pidns and unshare is not None:
        _step("unshare a PID namespace", unshare, _CLONE_NEWPID)
    for limit, soft, hard in limits:
        _step(f"set {_limit_name(limit)}", resource.setrlimit, limit, (soft, hard))
    if user is not None:  # last: lowering limits and unshare need root
        _step(f"drop to user {user[0]}", _drop_to, user)
    if userns:  # as the exec that followed the fork did
        _step("drop its capabilities", _drop_capabilities)
    _step("tie it to its harness", _die_with_harness, harness)  # after the drop, which clears it


def _step(what: str, step: Callable[..., object], *args: object) -> None:
    try:
        step(*args)
    except (OSError, ValueError) as e:
        raise EntryFailed(f"cannot {what}: {e}") from e


def _limit_name(limit: int) -> str:
    names = [name for name in dir(resource) if name.startswith("RLIMIT_")]
    return next((name for name in names if getattr(resource, name) == limit), f"limit {limit}")


def enter_user_namespace(
    unshare: Callable[[int], None], maps: Sequence[tuple[bytes, bytes]]
) -> None:
    """In the sandboxed process (single-threaded, as ``CLONE_NEWUSER`` needs), before
    the other namespaces: ``maps`` made by
    :func:`routerllm.eval.sandbox_userns.id_maps` in the harness."""
    unshare(_CLONE_NEWUSER)
    for path, line in maps:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _drop_to(user: tuple[int, int]) -> None:
    """No group but ``user``'s gid, then its uid: every capability goes. The kernel makes
    a process not dumpable as its uid changes; an exec as that user made it dumpable
    again, as it is here (the runner makes itself and its init not dumpable)."""
    os.setgroups([])
    os.setgid(user[1])
    os.setuid(user[0])
    set_dumpable(True)


def _drop_capabilities() -> None:
    """Every capability the user namespace gave this process (the effective, permitted
    and inheritable sets; the ambient one with them): its maps make no uid 0, so an exec
    dropped them, and with them the program could undo the read-only remounts, re-enter
    a namespace or ptrace its init."""
    import ctypes

    capset = _libc_call("capset")
    if capset is None:
        raise OSError(errno.ENOSYS, "capset is not available")
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)  # 0: this process
    capset(header, (ctypes.c_uint32 * 6)())  # all zero: none kept


def _die_with_harness(harness: int) -> None:
    """SIGKILL from the kernel once the harness thread that started this process ends
    (``prctl(PR_SET_PDEATHSIG)``): a harness SIGKILLed (the OOM killer, a CI timeout)
    cannot kill its program's group itself.

    The kernel sends it when that thread ends, not its process: the thread that calls
    ``run_program`` starts it in ``subprocess.Popen`` (with ``vfork``, the calling thread
    is the parent as with ``fork``) and returns only once it is killed and reaped, so
    none outlives its thread, a ``check_many`` worker's too. Set after the start, it
    misses a harness that died before: this process, then an orphan of another parent,
    ends itself (:class:`EntryFailed`). A change of user clears it: it is set last."""
    prctl = _prctl()
    if prctl is None:  # no libc prctl: not Linux
        return
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    if os.getppid() != harness:
        raise ProcessLookupError(errno.ESRCH, "the harness ended before its program started")


def set_dumpable(dumpable: bool) -> None:
    """``prctl(PR_SET_DUMPABLE)``; nothing without libc's ``prctl`` (not Linux, no ctypes)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0)


def _read_only_except(folder: bytes) -> None:
    """In the new mount namespace: every mount read-only but ``folder``, the cwd."""
    mount = _mount()
    if mount is None:  # probed: not reached
        raise OSError(errno.ENOSYS, "mount is not available")
    mount(None, b"/", _MS_REC | _MS_PRIVATE)  # before any change: none reaches the harness
    kept = os.statvfs(folder).f_flag & _MS_NOEXEC  # statvfs's ST_NOEXEC is MS_NOEXEC
    for point, flags in _mount_points():
        try:
            mount(None, point, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | flags)
        except OSError as e:
            if e.errno not in _UNREACHABLE:
                raise
    mount(folder, folder, _MS_BIND)  # a new mount there, read-only as the one it came from
    mount(None, folder, _MS_BIND | _MS_REMOUNT | _MS_NOSUID | _MS_NODEV | kept)
    os.chdir(folder)  # the cwd was the folder on the mount below, now read-only


def _mount_points() -> list[tuple[bytes, int]]:
    """(path, flags to keep) of each mount in /proc/self/mountinfo."""
    fd = os.open(b"/proc/self/mountinfo", os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    points = []
    for line in b"".join(chunks).splitlines():
        fields = line.split(b" ")  # id parent major:minor root point options ...
        if len(fields) < 6:
            continue
        point = fields[4]
        for escaped, character in _MOUNTINFO_ESCAPES:
            point = point.replace(escaped, character)
        flags = 0
        for option in fields[5].split(b","):
            flags |= _KEPT_FLAGS.get(option, 0)
        points.append((point, flags))
    return points


def _unshare() -> Callable[[int], None] | None:
    """``os.unshare`` (Python 3.12+), else libc's ``unshare`` through ctypes; None if neither."""
    if (unshare := getattr(os, "unshare", None)) is not None:
        return unshare  # type: ignore[no-any-return]
    return _libc_call("unshare")


def _prctl() -> Callable[..., None] | None:
    """libc's ``prctl`` (Python has none); None without it."""
    return _libc_call("prctl")


def _mount() -> Callable[[bytes | None, bytes, int], None] | None:
    """``mount(source, target, flags)``: libc's (Python has none) with no file system type
    and no data, as a bind mount or a remount takes it; None without it."""
    try:
        import ctypes
    except ImportError:
        return None
    argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p)
    call = _libc_call("mount", argtypes)
    if call is None:
        return None
    return lambda source, target, flags: call(source, target, None, flags, None)


def _libc_call(name: str, argtypes: Sequence[object] | None = None) -> Callable[..., None] | None:
    """libc's ``name`` through ctypes, raising ``OSError`` where it fails; None where
    there is none (no ctypes, not Linux)."""
    try:
        import ctypes

        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (ImportError, OSError, AttributeError):
        return None
    if argtypes is not None:
        function.argtypes = argtypes
    get_errno = ctypes.get_errno

    def call(*args: object) -> None:
        if function(*args) != 0:
            error = get_errno()
            raise OSError(error, os.strerror(error))

    return call


if __name__ == "__main__":
    enter()
