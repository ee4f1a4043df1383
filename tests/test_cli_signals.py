"""Ctrl-C and SIGTERM sent to a real ``routerllm`` process at a chosen moment: one line on
stderr, status 130 (143), no traceback, nothing half-written."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from routerllm.carbon.request_log import RequestLog

from .conftest import tiny_config_dict, write_config
from .test_cli import log_count

# The signal sent to the process itself as it first imports a module (argv[1]): a
# KeyboardInterrupt (or SIGTERM's) raised inside that import, as a user's Ctrl-C would be.
SIGNALLED_AT_IMPORT = """
import importlib.abc, os, signal, sys

class SignalAtImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[1]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        return None

sys.meta_path.insert(0, SignalAtImport())
from routerllm.cli import main
sys.exit(main(sys.argv[3:]))
"""


def signalled_at_import(
    module: str, sent: signal.Signals, *command: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SIGNALLED_AT_IMPORT, module, sent.name, *command],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )  # fmt: skip


def assert_stopped_in_one_line(
    proc: subprocess.CompletedProcess[str], sent: signal.Signals, line: str
) -> None:
    assert proc.returncode == (143 if sent == signal.SIGTERM else 130), proc.stderr
    assert proc.stderr.strip().splitlines() == [line], proc.stderr


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_while_a_command_imports_its_config_code_is_one_line(
    tmp_path: Path, sent: signal.Signals
) -> None:
    """pydantic (the config's models) was imported by main() before it took Ctrl-C and
    SIGTERM: a Ctrl-C there (0.3-0.7 s into a command on a loaded machine) was a
    traceback of pydantic's import, a SIGTERM a silent death."""
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = signalled_at_import("pydantic", sent, "models", "--config", str(cfg))
    line = "interrupted: this command saves no results, so nothing was lost; rerun it"
    assert_stopped_in_one_line(proc, sent, line)


def test_a_ctrl_c_while_the_commands_are_read_is_one_line() -> None:
    """The commands' modules import as the arguments are read, before main() took Ctrl-C:
    it was a traceback there."""
    proc = signalled_at_import("routerllm.humaneval_cli", signal.SIGINT, "models")
    line = "interrupted before the command started: nothing was done"
    assert_stopped_in_one_line(proc, signal.SIGINT, line)


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_while_route_imports_llama_cpp_is_one_line(
    tmp_path: Path, sent: signal.Signals
) -> None:
    # llama_cpp imports as the model loads, inside the answer: a first Ctrl-C lets the load
    # end and stops the answer at its first token (logged as cancelled); SIGTERM stops it
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    proc = signalled_at_import("llama_cpp", sent, "route", "hello", "--config", str(cfg))
    if sent == signal.SIGINT:
        line = "interrupted: the answer so far is printed above and logged as cancelled, with the energy it used"  # fmt: skip
        with RequestLog(tmp_path / "requests.sqlite", read_only=True) as log:
            rows = [r.finish_reason for r in log.records()]
        assert rows == ["cancelled"] and "(stopped by Ctrl-C" in proc.stdout
    else:
        line = "interrupted before the answer was logged: nothing was kept; rerun the command"
        assert not (tmp_path / "requests.sqlite").exists() or log_count(tmp_path) == 0
    assert_stopped_in_one_line(proc, sent, line)


def _children_in_own_session(pid: int) -> list[int]:
    """The children of ``pid`` that lead a session of their own: the sandbox's programs."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # not a process, or gone meanwhile
            continue
        if int(fields[1]) == pid and int(fields[3]) == int(entry.name):
            found.append(int(entry.name))
    return found


def _sandboxed_children(process: subprocess.Popen[str], limit_s: float = 90) -> list[int]:
    """The sandbox's programs of ``process`` once one runs (within ``limit_s``, and while
    ``process`` does)."""
    deadline = time.monotonic() + limit_s
    while not (sandboxed := _children_in_own_session(process.pid)):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    return sandboxed


def _in_sessions(sessions: list[int]) -> list[int]:
    """The processes still running in ``sessions``: a zombie has ended (the PID namespace's
    init, orphaned when the group was killed, waits there for init to reap it)."""
    left = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) in sessions and fields[0] != "Z":
                left.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_while_a_humaneval_answer_is_tested_leaves_no_sandbox_process(
    tmp_path: Path,
) -> None:
    import json

    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))  # it measures energy
    problem = {  # the tiny model's one token is a name: the program runs, into the sleep
        "task_id": "Slow/0", "entry_point": "f", "canonical_solution": "    return x\n",
        "prompt": 'import time\n\n\ndef f(x):\n    """Return x."""\n',
        "test": "def check(candidate):\n    time.sleep(60)\n    assert candidate(1) == 1\n",
    }  # fmt: skip
    problems = tmp_path / "slow.jsonl"
    problems.write_text(json.dumps(problem) + "\n")
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", "humaneval", "--problems", str(problems),
         "--out", str(out), "--systems", "direct-light", "--max-new-tokens", "1",
         "--config", str(cfg)],  # fmt: skip
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sandboxed = _sandboxed_children(process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    # its one answer was being tested, not stored: "finished answers are kept" was said
    line = f"interrupted before any answer was finished ({out} holds none): run the same command again to start the run"  # fmt: skip
    assert err.strip().splitlines()[-1] == line and "Traceback" not in err, err
    assert _in_sessions(sandboxed) == []  # the program and anything it started are gone
    assert (out / "results.sqlite").exists()  # the store a rerun continues


#: A function stub whose decorator never returns: its check (with the answer, or the
#: request's own code alone after the answer failed to compile) runs until it is killed.
SPINNING_STUB = '''def spin(function):
    while True:
        pass


@spin
def f(x):
    """Return x.
    >>> f(1)
    1
    """
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_while_route_checks_its_answer_says_it_was_interrupted(tmp_path: Path) -> None:
    """Ctrl-C while the cascade ran route's answer on the stub's examples stopped the check
    at once, but route said nothing of it and exited 0 (until 2026-12-06): the status was
    keyed on the finish reason "cancelled", and a stopped check keeps its model's. Now it
    is interrupted (130) as for a generation stopped by Ctrl-C, the answer (whole) printed,
    marked and logged as its model ended it."""
    cascade = {"enabled": True, "timeout_s": 60.0}
    data = tiny_config_dict(tmp_path, carbon={"enabled": False}, cascade=cascade)
    cfg = write_config(tmp_path, data)
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", "route", SPINNING_STUB, "--model", "tiny-light",
         "--max-new-tokens", "1", "--config", str(cfg)],  # fmt: skip
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sandboxed = _sandboxed_children(process)
    pressed = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert time.monotonic() - pressed < 30, "the check ran on to its timeout_s"
    line = "interrupted: the answer, whole, is printed above and logged as its model ended it; the cascade went no further (its reason says where it stopped)"  # fmt: skip
    stopped = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert_stopped_in_one_line(stopped, signal.SIGINT, line)
    assert "tiny-light's answer's check was stopped, not escalated to tiny-medium" in out
    assert "(Ctrl-C came once the answer was whole" in out
    with RequestLog(tmp_path / "requests.sqlite", read_only=True) as log:
        (row,) = log.records()
    assert (row.model, row.finish_reason) == ("tiny-light", "length")
    assert _in_sessions(sandboxed) == []
