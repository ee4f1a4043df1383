"""Where and as whom a sandboxed program runs: the interpreter, the user, the namespaces.

Probed once per interpreter (:func:`_interpreter`): a private network namespace and a
private PID namespace where each can be made, and, as root, a drop to user ``nobody``
(with a system interpreter of the same Python version when ``nobody`` cannot start this
one). :func:`_enter_sandbox` applies that and the limits in the forked child;
:func:`_workdir` is each program's temporary folder, owned by that user and removed
afterwards. What runs in it, and how it ends, is :mod:`routerllm.eval.sandbox`'s.
"""

from __future__ import annotations

import functools
import logging
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from routerllm.exceptions import RouterLLMError

logger = logging.getLogger(__name__)

PYTHON_FLAGS = ("-I", "-S", "-B", "-u")
_CLONE_NEWNET = getattr(os, "CLONE_NEWNET", 0x40000000)
_CLONE_NEWPID = getattr(os, "CLONE_NEWPID", 0x20000000)
# unshare(CLONE_NEWPID) moves the caller's children, not the caller: the child it forks
# must be PID 1 of the new namespace (and its own fork PID 2: sandbox_runner's).
_PID_PROBE = (
    "import json, math, os\n"
    "if os.fork() == 0:\n    os._exit(os.getpid() != 1)\n"
    "os._exit(os.waitstatus_to_exitcode(os.wait()[1]))\n"
)


@dataclass(frozen=True)
class _Isolation:
    netns: bool  # unshare a private network namespace
    user: tuple[int, int] | None  # (uid, gid) to drop to; None keeps the harness's
    pidns: bool = False  # unshare a private PID namespace (the runner then forks its init)


def _enter_sandbox(limits: Sequence[tuple[int, int, int]], isolation: _Isolation) -> None:
    """Runs in the forked child before exec: no imports, no logging (locks may be held)."""
    unshare = _unshare()
    if isolation.netns and unshare is not None:
        unshare(_CLONE_NEWNET)
    if isolation.pidns and unshare is not None:
        unshare(_CLONE_NEWPID)
    for limit, soft, hard in limits:
        resource.setrlimit(limit, (soft, hard))
    if isolation.user is not None:  # last: lowering limits and unshare need root
        os.setgroups([])
        os.setgid(isolation.user[1])
        os.setuid(isolation.user[0])


@contextmanager
def _workdir(isolation: _Isolation) -> Iterator[Path]:
    try:  # a temporary folder gone, full or not writable: one line, as a failed start is
        path = Path(tempfile.mkdtemp(prefix="routerllm-sandbox-"))
    except OSError as e:
        raise RouterLLMError(f"cannot create the sandbox's folder: {e}") from e
    try:
        try:
            if isolation.user is not None:
                os.chown(path, *isolation.user)
        except OSError as e:
            raise RouterLLMError(f"cannot prepare the sandbox's folder {path}: {e}") from e
        yield path
    finally:
        _remove_tree(path)
        # As non-root, the program may have taken away its own permissions. Never as root,
        # which needs none to remove it, nor through a symlink the program put in its place:
        # root (or the harness's user) would chmod whatever that points to.
        if os.geteuid() != 0 and path.is_dir() and not path.is_symlink():
            for root, dirs, _ in os.walk(path):
                for name in dirs:
                    if not os.path.islink(os.path.join(root, name)):
                        os.chmod(os.path.join(root, name), 0o700)
            _remove_tree(path)
        if path.exists():
            logger.warning("could not remove the sandbox directory %s", path)


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path, ignore_errors=True)
    except RecursionError:  # shutil.rmtree recurses (Python 3.11): a deep tree
        with suppress(OSError, subprocess.SubprocessError):  # rm walks any depth
            subprocess.run(["rm", "-rf", "--", str(path)], capture_output=True, timeout=60)


@functools.cache
def _unshare() -> Callable[[int], None] | None:
    """``os.unshare`` (Python 3.12+), else libc's ``unshare`` through ctypes; None if neither."""
    if (unshare := getattr(os, "unshare", None)) is not None:
        return unshare  # type: ignore[no-any-return]
    try:
        import ctypes

        libc_unshare = ctypes.CDLL(None, use_errno=True).unshare
    except (OSError, AttributeError):
        return None

    def call(flags: int) -> None:
        if libc_unshare(flags) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))

    return call


def isolation_text() -> str:
    """What the sandbox enforces on this machine, in words (for reports): its network,
    its PID namespace and the user its programs run as (probed once, as ``run_program``
    probes it)."""
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
    user = "user nobody" if isolation.user is not None else "the harness's user"
    return f"{network}, {processes}, as {user}"


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
    netns = _unshare() is not None and _probe(executable, _Isolation(True, None))
    pidns = _unshare() is not None and _probe(executable, _Isolation(False, None, True))
    user = _nobody() if os.geteuid() == 0 else None
    if user is not None and not _probe(executable, _Isolation(netns, user, pidns)):
        # the drop to nobody matters more than the PID namespace: keep it if it works alone
        if pidns and _probe(executable, _Isolation(netns, user)):
            pidns = False
        else:
            user = None
    isolation = _Isolation(netns, user, pidns)
    logger.info("sandbox isolation for %s: %s", executable, isolation)
    return isolation


def _probe(executable: str, isolation: _Isolation) -> bool:
    with _workdir(isolation) as workdir:
        try:
            proc = subprocess.run(
                [
                    executable,
                    *PYTHON_FLAGS,
                    "-c",
                    _PID_PROBE if isolation.pidns else "import json, math",
                ],
                cwd=workdir,
                capture_output=True,
                timeout=30,
                preexec_fn=functools.partial(_enter_sandbox, (), isolation),
            )
        except (OSError, subprocess.SubprocessError):
            return False
    return proc.returncode == 0
