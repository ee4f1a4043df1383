"""A harness killed while its program ran (SIGKILL, the OOM killer): its program dies with
it, and the folder it left is removed by the next run, and nothing else."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from routerllm.eval import sandbox_entry, sandbox_folders, sandbox_isolation
from routerllm.eval.sandbox import run_program

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock, /proc")

# The program's process group as the harness names it (in a PID namespace it is PID 2).
_HOST_GROUP = "int(open('/proc/self/stat').read().rpartition(')')[2].split()[2])"


@pytest.fixture()
def temp_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder like /tmp (world-writable, sticky) that the harnesses started here and this
    process's runs take as their temporary folder: the suite's other runs are not seen."""
    root = Path(tempfile.mkdtemp(prefix="routerllm-test-tmp-"))
    root.chmod(0o1777)  # a program run as a user of its own reaches its folder in it
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def harness_in_its_program(
    root: Path, outside: Path, prelude: str = ""
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A harness process (``prelude`` run first in it) whose ``check_many`` runs a program
    that writes a file (its group), plants a symlink to ``outside`` and sleeps; yields it
    and the program's folder once the file is written. Kills the program's group after,
    should the harness's death have left it running."""
    completion = (
        f"    import os, time\n    os.symlink({str(outside)!r}, 'planted')\n"
        f"    open('group.tmp', 'w').write(str({_HOST_GROUP}))\n"
        "    os.rename('group.tmp', 'group')\n    time.sleep(120)\n    return 0\n"
    )
    code = prelude + (
        "import sys\nfrom routerllm.data.humaneval import HumanEvalProblem\n"
        "from routerllm.eval.sandbox import check_many\n"
        "problem = HumanEvalProblem(task_id='t/sleep', prompt='def f():\\n', entry_point='f',"
        " canonical_solution='    return 0\\n', test='def check(candidate):\\n    assert candidate() == 0\\n')\n"
        f"check_many([(problem, {completion!r})], workers=1, timeout_s=120)\n"
    )
    env = {**os.environ, "TMPDIR": str(root)}
    harness = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True
    )
    groups: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not (marks := list(root.glob("routerllm-sandbox-*/group"))):
            assert harness.poll() is None and time.monotonic() < deadline, harness.communicate()
            time.sleep(0.05)
        groups.append(int(marks[0].read_text()))
        yield harness, marks[0].parent
    finally:
        harness.kill()
        harness.communicate()
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


def test_a_folder_left_by_a_killed_harness_is_removed_by_the_next_run(temp_root: Path) -> None:
    outside = temp_root / "outside"
    outside.mkdir()
    (outside / "keep").write_text("the user's")
    with harness_in_its_program(temp_root, outside) as (harness, folder):
        harness.send_signal(signal.SIGKILL)
        harness.wait()
        assert folder.is_dir()  # nothing of the harness is left to remove it
        result = run_program("print('next')\n", timeout_s=30)
        assert result.status == "passed", result.detail
        assert not folder.exists()  # the next run removed it, through no planted link
        assert (outside / "keep").read_text() == "the user's"
    assert sorted(p.name for p in temp_root.iterdir()) == ["outside"]


def test_the_next_run_removes_no_folder_of_a_live_harness_nor_what_it_did_not_make(
    temp_root: Path,
) -> None:
    outside = temp_root / "outside"
    outside.mkdir()
    (outside / "keep").write_text("the user's")
    others = {
        "routerllm-sandbox-x": "link",  # a user's own, by the prefix's name
        "routerllm-sandbox-abcd1234": "link",
        "routerllm-sandbox-file0001": "file",
        "routerllm-sandbox-user0001": "folder",  # made as mkdtemp makes it: 0o700, no lock
        "routerllm-sandbox-else0001": "folder of another user",
    }
    for name, kind in others.items():
        path = temp_root / name
        if kind == "link":
            path.symlink_to(outside)
        elif kind == "file":
            path.write_text("a user's file")
        else:
            path.mkdir(mode=0o700)
            (path / "data").write_text("a user's")
            if kind != "folder" and os.geteuid() == 0:
                path.chmod(0o1700)
                os.chown(path, 12345, 12345)
    with harness_in_its_program(temp_root, outside) as (harness, folder):
        result = run_program("print('beside')\n", timeout_s=30)
        assert result.status == "passed", result.detail
        assert harness.poll() is None and (folder / "group").is_file()  # it runs on, untouched
    for name, kind in others.items():
        path = temp_root / name
        assert path.is_symlink() if kind == "link" else path.exists(), name
    assert (outside / "keep").read_text() == "the user's"


def live_group_members(group: int) -> list[int]:
    """The live (not zombie) processes of process group ``group``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            state, _, pgrp = stat.read_text().rpartition(")")[2].split()[:3]
            if int(pgrp) == group and state != "Z":
                members.append(int(stat.parent.name))
    return members


# The path an ordinary user's harness takes: no namespace, no drop to another user (the
# program, the runner, is the harness's child: as root it stays root).
WITHOUT_NAMESPACES = (
    "from routerllm.eval import sandbox, sandbox_isolation\n"
    "sandbox._interpreter = lambda executable: (executable, sandbox_isolation._Isolation(False, None))\n"
)


@pytest.mark.parametrize(
    "prelude",
    [
        pytest.param("", id="as-probed"),  # as root: the runner, its init and the program
        pytest.param(WITHOUT_NAMESPACES, id="without-namespaces"),
    ],
)
def test_a_program_dies_with_its_harness_killed_while_it_runs(
    temp_root: Path, prelude: str
) -> None:
    """A harness SIGKILLed while its program slept (the OOM killer, a CI timeout) left the
    program, and as root the runner and the PID namespace's init, running until the
    program's own end: for ever, for a program that sleeps."""
    outside = temp_root / "outside"
    outside.mkdir()
    with harness_in_its_program(temp_root, outside, prelude) as (harness, folder):
        group = int((folder / "group").read_text())
        assert live_group_members(group), "the program is not running"
        harness.send_signal(signal.SIGKILL)
        harness.wait()
        deadline = time.monotonic() + 2
        while (left := live_group_members(group)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert left == [], f"{len(left)} of the program's processes run on after its harness"


def test_a_child_whose_harness_ended_as_it_was_started_does_not_start(tmp_path: Path) -> None:
    """The kill on the harness's death is set after the start, so it misses a harness that
    died before: the child finds its parent is no longer the harness and ends itself,
    before the code after the entry runs. (The harness that died is a pid that is not
    the child's parent.)"""
    isolation = sandbox_isolation._Isolation(False, None)
    code = sandbox_isolation.entry_source() + "open('ran', 'w')\n"
    died = sandbox_entry.argument(limits=[], folder=os.fsencode(tmp_path), harness=os.getppid(), status=-1)  # fmt: skip
    ran = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, died], cwd=tmp_path, capture_output=True, text=True
    )
    assert ran.returncode == sandbox_entry.FAILED_EXIT, ran.stderr
    assert ran.stderr == (
        f"{sandbox_entry.FAILED}cannot tie it to its harness: [Errno 3] the harness ended "
        "before its program started\n"
    )
    assert not (tmp_path / "ran").exists()
    entry = sandbox_isolation.entry_argument((), isolation, tmp_path)  # its own harness
    ran = subprocess.run([sys.executable, "-I", "-S", "-c", code, entry], cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "ran").exists()  # it starts


@pytest.mark.parametrize("runner_alive", [True, False])
def test_init_ends_where_its_runner_ended_as_init_was_forked(runner_alive: bool) -> None:
    """Init's kill on the runner's death, set after the fork, misses a runner that ended
    before: the status pipe then has no reader, and init ends before the program starts."""
    code = (
        "import os\nfrom routerllm.eval.sandbox_runner import _die_with_runner\n"
        "r, w = os.pipe()\n" + ("" if runner_alive else "os.close(r)\n") + "_die_with_runner(w)\n"
        "import ctypes\nsignal = ctypes.c_int()\n"
        "ctypes.CDLL(None).prctl(2, ctypes.byref(signal), 0, 0, 0)\n"  # PR_GET_PDEATHSIG
        "print('started', signal.value)\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    expected = (0, f"started {int(signal.SIGKILL)}\n") if runner_alive else (1, "")
    assert (ran.returncode, ran.stdout) == expected, ran.stderr


def test_a_folder_is_locked_before_it_is_marked(
    temp_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Marked before it was locked, a new folder was for a moment marked and free: a run
    of another harness looking for left folders then removed it from under its program.
    (That run is made to look at that moment, in this process: a lock is an open file's.)"""
    fchmod = os.fchmod
    looked: list[bool] = []

    def mark_then_another_run_looks(fd: int, mode: int) -> None:
        fchmod(fd, mode)
        if not looked:
            looked.append(True)
            sandbox_folders.remove_left_folders()

    monkeypatch.setattr(os, "fchmod", mark_then_another_run_looks)
    result = run_program("print('ran')\n", timeout_s=30)
    assert looked and (result.status, result.stdout_tail) == ("passed", "ran\n"), result


def test_a_left_folder_made_anew_while_a_run_locked_it_is_not_removed(
    temp_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A left folder removed (by another run) and a live run's of the same name made between
    this run's look at it and its lock: the lock, taken on the folder removed, was free,
    and the live run's folder went."""
    left = temp_root / "routerllm-sandbox-left0001"
    left.mkdir()
    left.chmod(sandbox_folders.MARKED_MODE)
    flock = fcntl.flock
    live: list[int] = []

    def made_anew_then_locked(fd: int, operation: int) -> None:
        if operation & fcntl.LOCK_NB and not live:
            shutil.rmtree(left)
            left.mkdir()
            left.chmod(sandbox_folders.MARKED_MODE)
            (left / "answer").write_text("a live run's")
            live.append(os.open(left, os.O_RDONLY | os.O_DIRECTORY))
            flock(live[0], fcntl.LOCK_EX)  # held by its run
        flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", made_anew_then_locked)
    try:
        sandbox_folders.remove_left_folders()
    finally:
        for fd in live:
            os.close(fd)
    assert live and (left / "answer").read_text() == "a live run's"
