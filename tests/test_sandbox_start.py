"""How the sandbox starts its process: with no ``preexec_fn`` (CPython then vforks, whatever
the harness's size), the sandbox entered by the started interpreter itself
(``eval/sandbox_entry.py``) before anything else runs in it, and a failure to enter it
an error of the harness's, never the program's verdict."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from routerllm.eval import sandbox, sandbox_entry, sandbox_isolation, sandbox_runner
from routerllm.eval.sandbox import run_program
from routerllm.exceptions import RouterLLMError

from .test_sandbox import assert_no_leftovers

#: Set while a test counts this process's forks: CPython runs the at-fork hooks for a
#: ``preexec_fn`` (it forks the whole process), not for a ``vfork``.
_FORKS: list[int] = []


def _count_fork() -> None:
    if _FORKS:
        _FORKS[0] += 1


os.register_at_fork(before=_count_fork)

# The arguments of Popen that make CPython fork the harness rather than vfork it.
_FORKING = ("preexec_fn", "user", "group", "extra_groups")


def test_the_sandbox_and_its_probes_start_their_processes_without_forking_the_harness(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ``preexec_fn`` made CPython fork the harness for each program: the kernel copied
    its page tables, then the harness took copy-on-write faults, a cost that grew with its
    memory (206 ms a check in a harness of 1.5 GB against 77 ms in a small one)."""
    started: list[dict[str, Any]] = []
    real = subprocess.Popen

    class Spy(real):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            started.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Spy)
    sandbox_isolation._isolation.cache_clear()  # its probes run again, spied on
    sandbox_isolation._interpreter.cache_clear()
    _FORKS.append(0)
    try:
        result = run_program("assert 1 + 1 == 2\n", timeout_s=10)
        forks = _FORKS[0]
    finally:
        _FORKS.clear()
        sandbox_isolation._isolation.cache_clear()
        sandbox_isolation._interpreter.cache_clear()
    assert result.passed, result.detail
    assert len(started) >= 2  # the probes, then the program
    assert [{k for k in _FORKING if kw.get(k) is not None} for kw in started] == [set()] * len(started)  # fmt: skip
    assert forks == 0


HELD_THEN_RUN = """\
import resource, sys
sys.path.insert(0, {src!r})
from routerllm.eval.sandbox import run_program
held = bytearray({mb} * 2**20)
for i in range(0, len(held), 4096):
    held[i] = 1
run_program('pass')  # probed
before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
for _ in range({runs}):
    assert run_program('assert 1 + 1 == 2\\n').passed
print(resource.getrusage(resource.RUSAGE_SELF).ru_stime - before)
"""


def test_a_harness_holding_a_gigabyte_spends_little_system_time_starting_programs() -> None:
    """The harness's own system CPU over 10 runs, holding 1 GiB of touched memory (a
    HumanEval run or a server with a model loaded): 0.46 s with the fork (its page
    tables copied at every start), 0.027-0.033 s with the vfork (2 cores, 2026-12-07). CPU
    time, not wall time: the bound is the fork's cost, far above the vfork's."""
    src = str(Path(sandbox.__file__).parents[2])
    code = HELD_THEN_RUN.format(src=src, mb=1024, runs=10)
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert float(ran.stdout) < 0.2, ran.stdout


def test_a_failure_to_enter_the_sandbox_is_an_error_naming_it_not_a_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kernel refuses a limit (open files above ``fs.nr_open``, even to root): the run
    raises, naming it, and leaves no folder or process, as when ``Popen`` failed in the
    harness; before, its message said only "Exception occurred in preexec_fn"."""
    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        nr_open = 2**20
    started: list[int] = []
    folders: list[Path] = []  # the run's own (another worker's runs make theirs meanwhile)
    popen = subprocess.Popen

    def spied(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = popen(*args, **kwargs)
        started.append(proc.pid)
        folders.append(Path(kwargs["cwd"]))
        return proc

    monkeypatch.setattr(sandbox.subprocess, "Popen", spied)
    run_program("pass")  # probed first
    started.clear()
    folders.clear()
    monkeypatch.setattr(sandbox, "MAX_OPEN_FILES", nr_open + 1)
    with pytest.raises(RouterLLMError) as raised:
        run_program("print('ran')\n", timeout_s=10)
    message = str(raised.value)
    assert message.startswith("cannot start the sandbox interpreter "), message
    assert "cannot set RLIMIT_NOFILE: " in message and "\n" not in message, message
    assert len(started) == 1 and len(folders) == 1
    assert folders[0].name.startswith("routerllm-sandbox-")
    assert_no_leftovers(started[0])
    assert not folders[0].exists()


FORGED_FAILURE = """\
import os, sys
for fd in range(3, 64):  # the status pipe, were it left open: a failure written there
    try:
        os.write(fd, {line!r}.encode())
        print('wrote to fd', fd, flush=True)
    except OSError:
        pass
sys.stderr.write({line!r})
sys.stderr.flush()
sys.modules['__main__']._exit({code})  # the runner's own os._exit
"""


def test_a_program_cannot_forge_a_failure_to_enter_the_sandbox() -> None:
    """A program that writes the entry's failure line and exits with its code, through the
    runner's real ``os._exit``, is the program's error: raised as the sandbox's, it
    would stop a whole ``check_many`` (a wrong answer could end a HumanEval run)."""
    line = f"{sandbox_entry.FAILED}cannot unshare a network namespace\n"
    result = run_program(FORGED_FAILURE.format(line=line, code=sandbox_entry.FAILED_EXIT))
    assert result.status == "error", result
    assert result.detail.startswith(f"exit code {sandbox_entry.FAILED_EXIT}"), result.detail
    assert "wrote" not in result.stdout_tail


def _top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def test_the_entry_and_the_runner_share_one_source_without_redefining_each_others_names() -> None:
    """The child runs the entry's text then the runner's as one source: a name both
    define is the runner's there once its text runs (an earlier runner's ``_prctl``
    took other arguments than the entry's), and only the first statement may be a
    ``from __future__`` import."""
    entry = _top_level_names(Path(sandbox_entry.__file__))
    runner = _top_level_names(Path(sandbox_runner.__file__))
    assert entry & runner == set()
    compile(sandbox._runner_source(), "<string>", "exec")
    assert sandbox._runner_source().startswith(sandbox_isolation.entry_source())
