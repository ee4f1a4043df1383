"""What the kernel holds a sandboxed program to once it gets around the in-process guards
(``ctypes`` back, as a determined program gets it): its limits, its user, its network, its
descriptors and the other programs' folders. Each test was written against a change to
the sandbox that removed that guarantee and that no other test noticed."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import pytest

from routerllm.eval import sandbox, sandbox_isolation
from routerllm.eval.sandbox import run_program

from .test_sandbox import HOST_GROUP, live_group_members, run_at_once

UNGUARDED = "import sys\nfor m in ('ctypes', '_ctypes'):\n    sys.modules.pop(m)\nimport ctypes\n"


def isolation() -> sandbox_isolation._Isolation:
    return sandbox._interpreter(sys.executable)[1]


def kernel_allows(*flags: str) -> bool:
    """Root, and ``unshare`` with ``flags`` runs a program: the kernel gives those
    namespaces (judged apart from the code under test, whose probe could be wrong)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return (
        subprocess.run(["unshare", *flags, "true"], capture_output=True, timeout=30).returncode == 0
    )


@pytest.mark.skipif(
    not kernel_allows("--net", "--ipc", "--mount"), reason="needs root and namespaces"
)
def test_as_root_the_sandbox_takes_every_namespace_and_user_the_kernel_gives() -> None:
    """A namespace the child failed to enter made its probe fail: the sandbox then ran
    without it, and every test of it skipped (a PID namespace never unshared passed all)."""
    found = isolation()
    assert (found.netns, found.mountns, found.ipcns) == (True, True, True), found
    assert found.pidns == kernel_allows("--pid", "--fork"), found
    assert found.user is not None and found.own_users, found


LIMITS = """\
import resource
for name in ('AS', 'CPU', 'FSIZE', 'NOFILE', 'CORE', 'NPROC'):
    which = getattr(resource, 'RLIMIT_' + name)
    soft, hard = resource.getrlimit(which)
    try:
        resource.setrlimit(which, (soft, hard + 1 if hard != resource.RLIM_INFINITY else hard))
        raised = 'raised'
    except (ValueError, OSError):
        raised = 'kept'
    print(name, soft, hard, raised)
"""


def test_the_programs_kernel_limits_are_set_and_it_cannot_raise_them() -> None:
    """Limits lost (the CPU's, the open files', the core dump's) or set with a higher hard
    limit (which the program raises its own to: memory, tasks) ran every test as before."""
    if os.geteuid() == 0 and isolation().user is None:
        pytest.skip("the program keeps root's rights here: it may raise its limits")
    result = run_program(LIMITS, timeout_s=5, memory_mb=512)
    assert result.passed, result.detail
    limits = {name: rest for name, *rest in map(str.split, result.stdout_tail.splitlines())}
    cpu_s = math.ceil(5) + 1
    mib = 2**20
    assert {name: limits[name] for name in ("AS", "CPU", "FSIZE", "NOFILE", "CORE")} == {
        "AS": [str(512 * mib), str(512 * mib), "kept"],
        "CPU": [str(cpu_s), str(cpu_s + 1), "kept"],  # soft: SIGXCPU, hard: SIGKILL
        "FSIZE": [str(sandbox.MAX_FILE_BYTES)] * 2 + ["kept"],
        "NOFILE": [str(sandbox.MAX_OPEN_FILES)] * 2 + ["kept"],
        "CORE": ["0", "0", "kept"],
    }
    soft, hard, raised = limits["NPROC"]
    assert soft == hard != str(resource.RLIM_INFINITY) and raised == "kept", limits["NPROC"]


THREADS_UNTIL_REFUSED = """\
import threading
hold = threading.Event()
started = []
try:
    for _ in range(64):
        thread = threading.Thread(target=hold.wait)
        thread.start()
        started.append(thread)
except RuntimeError:
    pass
hold.set()
print(len(started))
"""


def test_a_program_of_a_user_of_its_own_has_all_its_headroom_and_no_more() -> None:
    """The program and its threads are NPROC_HEADROOM tasks (the runner and the PID
    namespace's init counted apart): the limit counted without those two left a
    ThreadPoolExecutor(6) short, and one counting every user's tasks let it fork freely."""
    if not isolation().own_users:
        pytest.skip("the sandbox runs no program as a user of its own here (not root?)")
    result = run_program(THREADS_UNTIL_REFUSED, timeout_s=10)
    assert result.passed, result.detail
    assert int(result.stdout_tail) == sandbox.NPROC_HEADROOM - 1  # the program is the 8th


CAPABILITIES_AND_DUMPABLE = (
    UNGUARDED
    + """\
status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines())
print(*(status[name].strip() for name in ('CapInh', 'CapPrm', 'CapEff', 'CapAmb')))
print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))  # PR_GET_DUMPABLE
"""
)


@pytest.mark.parametrize("pidns", [True, False], ids=["as-probed", "without-pid-namespace"])
def test_as_its_user_the_program_holds_no_capability_and_is_dumpable_as_an_exec_made_it(
    monkeypatch: pytest.MonkeyPatch, pidns: bool
) -> None:
    """The drop from root, made in the interpreter that runs the program rather than in a
    forked child before its exec: it must leave no capability, and the kernel makes a
    process not dumpable as its uid changes, which the exec made dumpable again (not
    dumpable, its ``/proc/self`` files were root's: its own ``environ`` unreadable)."""
    executable, found = sandbox._interpreter(sys.executable)
    if os.geteuid() != 0 or found.user is None:
        pytest.skip("the sandbox changes no user here (not root)")
    if pidns and not found.pidns:
        pytest.skip("the sandbox makes no PID namespace here")
    chosen = dataclasses.replace(found, pidns=pidns)
    monkeypatch.setattr(sandbox, "_interpreter", lambda _: (executable, chosen))
    result = run_program(CAPABILITIES_AND_DUMPABLE + "open('/proc/self/environ').read()\n")
    assert result.passed, result.detail
    assert result.stdout_tail.split() == ["0000000000000000"] * 4 + ["1"], result.stdout_tail


AS_ITS_HARNESS_GROUPS = """\
import json, os, sys
sys.path.insert(0, {src!r})
from routerllm.eval.sandbox import run_program
result = run_program('import os\\nprint(os.getuid(), os.getgroups())\\n', timeout_s=10)
print(json.dumps([result.status, result.stdout_tail]))
"""


def test_the_program_keeps_none_of_its_harness_groups() -> None:
    """The harness's supplementary groups (root's, here none: the drop without setgroups
    passed every test) went with the program: a group's files were its own."""
    if os.geteuid() != 0 or isolation().user is None:
        pytest.skip("the sandbox changes no user here (not root)")
    src = str(sandbox.__file__).rsplit("/routerllm/", 1)[0]
    harness = subprocess.run(
        [sys.executable, "-c", AS_ITS_HARNESS_GROUPS.format(src=src)],
        capture_output=True, text=True, timeout=120, extra_groups=[0, 4242],
    )  # fmt: skip
    assert harness.returncode == 0, harness.stderr
    status, out = json.loads(harness.stdout)
    uid, groups = out.split(maxsplit=1)
    assert (status, groups.strip()) == ("passed", "[]"), out
    assert int(uid) != 0


CONNECT = (
    UNGUARDED
    + """\
import errno, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(2, 1, 0)  # AF_INET, SOCK_STREAM: past the socket guard
address = struct.pack('=H', 2) + struct.pack('!H', {port}) + bytes([127, 0, 0, 1]) + bytes(8)
connected = libc.connect(fd, address, len(address)) == 0
print('connected' if connected else errno.errorcode[ctypes.get_errno()])
"""
)


def test_a_program_past_the_guards_reaches_no_network() -> None:
    """The network namespace not unshared (its probe still passed) left only the
    socket guard, which ctypes gets around: the program connected to the harness's port."""
    if not isolation().netns:
        pytest.skip("the sandbox makes no network namespace here (not root?)")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        result = run_program(CONNECT.format(port=server.getsockname()[1]), timeout_s=10)
        assert (result.status, result.stdout_tail) == ("passed", "ENETUNREACH\n"), result
        with pytest.raises(TimeoutError):
            server.accept()


FORGE_THROUGH_OWN_DESCRIPTORS = """\
import os
for fd in range(3, 64):  # a pipe end held across the fork: four zero bytes, "exited 0"
    try:
        os.write(fd, bytes(4))
        print('wrote to fd', fd, flush=True)
    except OSError:
        pass
assert False, 'the tests failed'
"""


def test_the_program_holds_no_descriptor_that_forges_its_verdict() -> None:
    """Init's end of the status pipe, left open in the program across its fork: four zero
    bytes written to it read as the program's "exited 0", a pass."""
    result = run_program(FORGE_THROUGH_OWN_DESCRIPTORS, timeout_s=10)
    assert result.status == "failed", result
    assert "wrote" not in result.stdout_tail


OPEN_DESCRIPTORS = """\
import os
held = []
for fd in range(3, 1024):
    try:
        os.fstat(fd)
        held.append(fd)
    except OSError:
        pass
print(held)
"""


def test_no_descriptor_of_the_harness_reaches_the_program(tmp_path: Path) -> None:
    """A descriptor the harness holds inheritable (a library's log file, a socket) stayed
    open in the program, with what it reads or writes."""
    secret = tmp_path / "secret"
    secret.write_text("the harness's", encoding="utf-8")
    fd = os.open(secret, os.O_RDONLY)
    os.set_inheritable(fd, True)
    try:
        result = run_program(OPEN_DESCRIPTORS, timeout_s=10)
    finally:
        os.close(fd)
    assert (result.status, result.stdout_tail) == ("passed", "[]\n"), result


def test_the_program_reads_nothing_of_its_harness_input() -> None:
    """The harness's stdin (a terminal, a pipe) went to the program, which read from it."""
    saved = os.dup(0)
    r, w = os.pipe()
    os.write(w, b"the harness's input")
    os.close(w)
    try:
        os.dup2(r, 0)
        result = run_program("import sys\nprint(repr(sys.stdin.read()))\n", timeout_s=10)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(r)
    assert (result.status, result.stdout_tail) == ("passed", "''\n"), result


PEER_FOLDER = """\
with open({folder!r}, 'w') as f:
    f.write(__import__('os').getcwd())
open('answer', 'w').write('private')
with open({done!r}) as f:
    f.read()
"""
LIST_PEER_FOLDER = """\
import errno, os
with open({folder!r}) as f:
    folder = f.read()
for attempt in (lambda: os.listdir(folder), lambda: open(folder + '/answer').read()):
    try:
        print(attempt())
    except OSError as e:
        print(errno.errorcode[e.errno])
with open({done!r}, 'w') as f:
    f.write('done')
"""


def test_a_program_cannot_read_the_folder_of_a_program_checked_at_once() -> None:
    """Folders marked world-readable (the mark 0o1777, not 0o1700) let a program run at
    once list, read (and without a mount namespace write) another's folder."""
    if not isolation().own_users:
        pytest.skip("the sandbox runs no program as a user of its own here (not root?)")
    results = run_at_once({"own": PEER_FOLDER, "other": LIST_PEER_FOLDER}, "folder", "done")
    assert results["own"].passed and results["other"].passed, results
    assert results["other"].stdout_tail.split() == ["EACCES", "EACCES"]


# A harness whose mounts propagate (``shared``, as systemd makes them; not so on the test
# machine) and whose temporary folder is a nosuid, nodev, noexec tmpfs; in a mount namespace
# of the test's own: the machine's mount table does not change.
SHARED_AND_NOEXEC = (
    'mount -t tmpfs -o size=1m,mode=1777,nosuid,nodev,noexec none "$1" && '
    'mount --make-rshared / && TMPDIR="$1" exec "$2" -c "$3"'
)
MOUNT_FLAGS = """\
import os
names = {'ST_RDONLY': 'ro', 'ST_NOSUID': 'nosuid', 'ST_NODEV': 'nodev', 'ST_NOEXEC': 'noexec'}
for path in ('.', '..'):
    flags = os.statvfs(path).f_flag
    print(','.join(name for flag, name in names.items() if flags & getattr(os, flag)))
"""
FLAGS_HARNESS = """\
import json, os, sys
from routerllm.eval.sandbox import run_program
mounts = open('/proc/self/mountinfo', 'rb').read()
result = run_program({program!r}, timeout_s=10)
folder = os.path.join({root!r}, os.listdir({root!r})[0]) if os.listdir({root!r}) else None
print(json.dumps([result.status, result.stdout_tail, folder,
                  open('/proc/self/mountinfo', 'rb').read() == mounts]))
"""


@pytest.mark.skipif(not kernel_allows("--mount"), reason="needs root and mount namespaces")
def test_the_programs_mounts_keep_their_flags_and_none_reaches_a_shared_harness(
    tmp_path: Path,
) -> None:
    """Mounts the harness sees nosuid, nodev or noexec lost those flags in the program's
    namespace when remounted read-only without them, and its folder lost them too (the
    test machine's mounts have none); where the harness's mounts are shared, the
    program's bind mount of its folder appeared in the harness's mount table (and its
    folder could not be removed) had its namespace not been made private first."""
    if not isolation().mountns:
        pytest.skip("the sandbox makes no mount namespace here")
    root = str(tmp_path / "tmp")
    os.mkdir(root)
    harness = FLAGS_HARNESS.format(program=MOUNT_FLAGS, root=root)
    ran = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", SHARED_AND_NOEXEC,
         "sh", root, sys.executable, harness],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    status, out, left, mounts_unchanged = json.loads(ran.stdout)
    assert status == "passed", out
    folder, parent = out.splitlines()
    assert (folder, parent) == ("nosuid,nodev,noexec", "ro,nosuid,nodev,noexec")
    assert (left, mounts_unchanged) == (None, True)


FORK_AND_PAUSE = (
    UNGUARDED
    + f"""\
import time
print({HOST_GROUP}, flush=True)
for _ in range(20):
    if ctypes.CDLL(None).fork() == 0:
        ctypes.CDLL(None).pause()
time.sleep(60)
"""
)


def test_without_namespaces_no_process_of_the_programs_group_outlives_its_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a PID namespace (an ordinary user's harness) the group's SIGKILL is all that
    ends the program's children: the run returned before they were gone."""
    without = sandbox_isolation._Isolation(False, None)
    monkeypatch.setattr(sandbox, "_interpreter", lambda executable: (executable, without))
    result = run_program(FORK_AND_PAUSE, timeout_s=1)
    group = int(result.stdout_tail.split()[0])
    try:
        assert result.status == "timeout", result
        assert live_group_members(group) == []
    finally:
        with suppress(ProcessLookupError):  # on failure: not left running
            os.killpg(group, signal.SIGKILL)
