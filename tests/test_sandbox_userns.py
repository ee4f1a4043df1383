"""The sandbox started by an ordinary user: a user namespace of its own, and in it the
network, PID, mount and IPC namespaces root gets, where the kernel allows them.

The tests run as root: the harness here is a child process dropped to ``nobody`` that
calls the real ``run_program``, with the interpreter the sandbox picks for ``nobody``
and a copy of ``routerllm`` that ``nobody`` can read."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from routerllm.eval import sandbox, sandbox_isolation

# Past the prelude in one line each: the real posix module, and the socket class the
# socket guard subclasses.
HOSTILE = """\
import _imp, errno, socket, time
from importlib.machinery import BuiltinImporter, ModuleSpec
posix = _imp.create_builtin(ModuleSpec('posix', BuiltinImporter))
real_socket = socket.socket.__mro__[2]
try:
    s = real_socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(('127.0.0.1', {port}))
    print('connected', flush=True)
except OSError as e:
    print(errno.errorcode.get(e.errno, e), flush=True)
if posix.fork() == 0:  # a daemon in a session of its own, named by a token
    posix.setsid()
    posix.execv('/bin/sleep', ['sleep', '{token}'])
for pid in ({harness}, posix.getppid()):
    try:
        posix.kill(pid, 15)
        print('killed', flush=True)
    except OSError as e:
        print(errno.errorcode.get(e.errno, e), flush=True)
forks = 0
while forks < 100:
    try:
        if posix.fork() == 0:
            time.sleep(60)
            posix._exit(0)
    except OSError:
        break
    forks += 1
print(forks)
"""
HARNESS = """\
import json, os, sys
from routerllm.eval.sandbox import isolation_text, run_program
result = run_program(sys.argv[1].replace('HARNESS', str(os.getpid())), timeout_s=10)
print(json.dumps([result.status, result.stdout_tail.split(), result.detail, isolation_text()]))
"""


def _userns_allowed(user: tuple[int, int]) -> bool:
    """``unshare`` as ``user`` makes every namespace the sandbox wants (judged apart from
    the code under test)."""
    if shutil.which("unshare") is None:
        return False
    flags = ["-U", "-r", "-n", "-p", "-f", "-m", "-i"]
    ran = subprocess.run(
        ["unshare", *flags, "true"], capture_output=True, timeout=30, user=user[0], group=user[1],
        extra_groups=[],
    )  # fmt: skip
    return ran.returncode == 0


@pytest.fixture(scope="module")
def as_nobody() -> Iterator[tuple[str, Path, tuple[int, int]]]:
    """(interpreter, folder on ``PYTHONPATH``, user): what a harness run as ``nobody`` needs."""
    user = sandbox_isolation._nobody()
    if os.geteuid() != 0 or user is None:
        pytest.skip("needs root to drop to user nobody")
    executable, isolation = sandbox._interpreter(sys.executable)
    if isolation.user is None:
        pytest.skip("user nobody can start no python interpreter here")
    if not _userns_allowed(user):
        pytest.skip("the kernel refuses nobody an unprivileged user namespace")
    copy = Path(tempfile.mkdtemp(prefix="routerllm-userns-test-"))
    try:
        copy.chmod(0o755)
        source = Path(sandbox.__file__).parents[1]
        shutil.copytree(source, copy / "routerllm", ignore=shutil.ignore_patterns("__pycache__"))
        for root, dirs, files in os.walk(copy):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        yield executable, copy, user
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def _run_harness(
    as_nobody: tuple[str, Path, tuple[int, int]], program: str, harness: str = HARNESS
) -> subprocess.CompletedProcess[str]:
    executable, copy, user = as_nobody
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy), "TMPDIR": "/tmp", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [executable, "-c", harness, program], capture_output=True, text=True, timeout=120,
        cwd=copy, env=env, user=user[0], group=user[1], extra_groups=[],
    )  # fmt: skip


def _processes_named(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if token.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_as_an_ordinary_user_a_program_past_the_prelude_reaches_no_network_harness_or_lasting_fork(
    as_nobody: tuple[str, Path, tuple[int, int]],
) -> None:
    """Started as nobody, the sandbox made no namespace: the program, past the prelude
    (``_imp.create_builtin``, the socket guard's base class), connected to a port of the
    machine, SIGTERMed its harness (exit 143) and left a daemon running after its run."""
    token = f"6{secrets.randbelow(10**6)}.{secrets.randbelow(10**6)}"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        program = HOSTILE.format(port=server.getsockname()[1], token=token, harness="HARNESS")
        # the user's other processes: counted against the program's task limit outside
        # its user namespace, they gave it as many more forks inside
        _, _, (uid, gid) = as_nobody
        others = [
            subprocess.Popen(["sleep", "30"], user=uid, group=gid, extra_groups=[])
            for _ in range(20)
        ]
        try:
            harness = _run_harness(as_nobody, program)
            left = _processes_named(token)
        finally:
            for other in others:
                other.kill()
                other.wait()
            for pid in _processes_named(token):  # on failure: not left running
                os.kill(pid, 9)
        assert harness.returncode == 0, (harness.returncode, harness.stderr[-2000:])
        status, out, detail, text = json.loads(harness.stdout)
        assert status == "passed", (out, detail)
        assert out[:3] == ["ENETUNREACH", "ESRCH", "killed"], out  # its init ignores SIGTERM
        assert int(out[3]) <= sandbox.NPROC_HEADROOM, out  # the task limit binds in it
        assert left == []
        with pytest.raises(TimeoutError):
            server.accept()
        assert text.startswith("a private network namespace (no network), a private PID")
        assert "a user namespace of its own" in text, text


# Past the prelude: its capabilities, and a remount of / read-write (MS_REMOUNT | MS_BIND).
CAPABILITIES = """\
import sys
for m in ('ctypes', '_ctypes'):
    sys.modules.pop(m)
import ctypes, errno
status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines())
print(*(status[name].strip() for name in ('CapInh', 'CapPrm', 'CapEff', 'CapAmb')))
libc = ctypes.CDLL(None, use_errno=True)
remounted = libc.mount(None, b'/', None, 0x20 | 0x1000, None) == 0
print('remounted' if remounted else errno.errorcode[ctypes.get_errno()])
"""


def test_in_its_user_namespace_the_program_holds_no_capability(
    as_nobody: tuple[str, Path, tuple[int, int]],
) -> None:
    """The user namespace gives every capability in it to the process that makes it; an
    exec as the user dropped them when the entry was made in a forked child, but the
    interpreter that enters it runs the program with no exec: kept, they let the program
    remount / read-write, re-enter a namespace or ptrace its init."""
    harness = _run_harness(as_nobody, CAPABILITIES)
    assert harness.returncode == 0, (harness.returncode, harness.stderr[-2000:])
    status, out, detail, _ = json.loads(harness.stdout)
    assert status == "passed", (out, detail)
    assert out == ["0000000000000000"] * 4 + ["EPERM"], out


REFUSED = """\
import sys
from routerllm.eval import sandbox, sandbox_isolation
from routerllm.exceptions import RouterLLMError
netns = sandbox_isolation._Isolation(True, None)  # no user namespace first: refused
sandbox._interpreter = lambda executable: (executable, netns)
try:
    print(sandbox.run_program(sys.argv[1]))
except RouterLLMError as e:
    print(e)
"""


def test_a_namespace_the_kernel_refuses_is_an_error_that_names_it(
    as_nobody: tuple[str, Path, tuple[int, int]],
) -> None:
    """An ordinary user's ``unshare`` of a network namespace outside a user namespace of
    its own, which the kernel refuses (the probes never ask it): the run raises, naming
    it, rather than give the program's verdict."""
    harness = _run_harness(as_nobody, "print('ran')", REFUSED)
    assert harness.returncode == 0, (harness.returncode, harness.stderr[-2000:])
    assert harness.stdout.startswith("cannot start the sandbox interpreter "), harness.stdout
    assert harness.stdout.endswith(
        ": cannot unshare a network namespace: [Errno 1] Operation not permitted\n"
    ), harness.stdout


def test_where_the_kernel_refuses_a_user_namespace_the_sandbox_runs_as_before_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An ordinary user's sandbox where the kernel refuses unprivileged user namespaces
    (``kernel.unprivileged_userns_clone=0``, ``user.max_user_namespaces=0``): no
    namespace, as before, and the log and the report say so. (The refusal is faked.)"""
    iso = sandbox_isolation
    monkeypatch.setattr(iso.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(iso, "_probe", lambda executable, isolation: False)
    iso._isolation.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger=iso.__name__):
            found = iso._isolation(sys.executable)
        assert found == iso._Isolation(False, None)
        refused = [r for r in caplog.records if "user namespace" in r.getMessage()]
        assert len(refused) == 1 and refused[0].levelno == logging.WARNING, caplog.text
        monkeypatch.setattr(iso, "_interpreter", lambda executable: (executable, found))
        assert iso.isolation_text() == (
            "the machine's network, sockets refused by in-process guards only, no PID "
            "namespace (a child that leaves the program's session outlives its run), no "
            "mount namespace (what it writes to world-writable folders such as /tmp stays), "
            "as the harness's user (the kernel refused it a user namespace, "
            "so no namespace)"
        )
    finally:
        iso._isolation.cache_clear()
