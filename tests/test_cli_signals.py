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
from .ctrl_c_harness import (
    at_close,
    at_exit,
    at_import,
    at_rename,
    held_open,
    on_line,
    run_stopped,
)
from .test_cli import log_count


def signalled_at_import(
    module: str, sent: signal.Signals, *command: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``routerllm command`` sent ``sent`` as it first imports ``module``: a
    ``KeyboardInterrupt`` (or SIGTERM's) raised inside that import, as a user's Ctrl-C
    would be."""
    return run_stopped(command, at_import(module), sent, cwd=cwd, timeout=120)


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


# -- Ctrl-C at every moment of the commands that write ---------------------------
#: The one line of a command stopped once its work was done (``cli_closing``).
FINISHED = "interrupted as it closed, after the command had finished: nothing was lost (its output is whole and what it saved is kept)"  # fmt: skip


#: What route and demo say of a press as their system closes, once all is printed.
CLOSING_LINES = {
    "route": "interrupted; the answer is in the request log",
    "demo": "interrupted; completed requests are in the log",
}


@pytest.fixture(scope="module")
def workplace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny config (CodeCarbon on: its CSV written), and outcome data to train on."""
    from .test_outcome_routing import make_rows, write_json

    folder = tmp_path_factory.mktemp("stopped")
    write_config(folder, tiny_config_dict(folder))
    write_json(folder / "train.json", *make_rows(40, 0))
    return folder


def _with_gate_run(name: str, workplace: Path) -> Path:
    """``workplace``, holding (for train-gate) a gated-cascade run of 4 problems on the
    tiny config to train on, made once for the module, recorded as asked in the style a
    system of that config asks its models in (else train-gate warns that it differs).
    Its answers are of 8 tokens: asked in that style, the tiny models filled its 512 (465
    tokens an answer): the run took 12.1 s of CPU, 5.3 s now, and the first train-gate
    test 14.0 s, 5.8 s now (2026-12-07); what a Ctrl-C says and keeps does not hang on how
    long the answers trained on are."""
    if name == "train-gate" and not (workplace / "run" / "results.sqlite").exists():
        import dataclasses
        import json
        import sqlite3
        from contextlib import closing

        from routerllm.config import load_config
        from routerllm.eval.codegen import style_for
        from routerllm.eval.humaneval_report import run_experiment

        run = workplace / "run"
        run_experiment(load_config(workplace / "config.yaml"), run, systems=["gated-cascade"],
                       limit=4, folds=2, style_overrides={"max_new_tokens": 8}, progress=False)  # fmt: skip
        with closing(sqlite3.connect(run / "results.sqlite")) as db, db:
            for (model,) in db.execute("SELECT model FROM styles").fetchall():
                style = json.dumps(dataclasses.asdict(style_for(model)), sort_keys=True)
                db.execute("UPDATE styles SET style = ? WHERE model = ?", (style, model))
    return workplace


#: Each command that writes state, as the tests run it: ``{tmp}`` is the test's folder,
#: ``{data}`` the module's (its config and outcome data).
COMMANDS = {
    "route": ["route", "hello", "--config", "{tmp}/config.yaml"],
    "demo": ["demo", "--no-baseline", "--max-new-tokens", "2", "--config", "{tmp}/config.yaml"],
    "train": ["train", "--router", "logreg", "--data", "{data}/train.json", "--out", "{tmp}/router",
              "--encoder", "hashing"],
    "train-gate": ["train-gate", "--run", "{data}/run", "--out", "{tmp}/gate", "--folds", "2",
                   "--config", "{tmp}/config.yaml"],
    "eval-routing": ["eval-routing", "--data", "{data}/train.json", "--routers", "knn",
                     "--encoder", "hashing", "--plot", "{tmp}/curves.png"],
    "report": ["report", "--config", "{tmp}/config.yaml"],
    "prune": ["prune", "--before", "2026-01-01", "--config", "{tmp}/config.yaml"],
    "humaneval": ["humaneval", "--limit", "1", "--systems", "direct-light", "--max-new-tokens", "2",
                  "--out", "{tmp}/run", "--config", "{tmp}/config.yaml"],
    "generate-data": ["generate-data", "--out", "{tmp}/splits", "--n", "40"],
}  # fmt: skip


def _command(name: str, tmp: Path, data: Path, *extra: str) -> list[str]:
    """``COMMANDS[name]`` in ``tmp``, with a request already logged where it reads or
    prunes the log (written by the tiny config, whose log and CSV are in ``tmp``)."""
    write_config(tmp, tiny_config_dict(tmp))
    _with_gate_run(name, data)
    if name in ("report", "prune"):
        from routerllm.config import load_config
        from routerllm.system import RouterLLM

        with RouterLLM(load_config(tmp / "config.yaml")) as system:
            system.generate("hello", model="tiny-light")
    return [a.format(tmp=tmp, data=data) for a in COMMANDS[name]] + list(extra)


def assert_nothing_lost(name: str, tmp: Path, logged: int | None = None) -> None:
    """What ``name`` wrote in ``tmp`` is whole: the request log read by ``report``, with
    ``logged`` requests where given; the emissions CSV parsed, each row whole; a saved
    router's config and the weights it names agreeing; the data splits, the plot, the
    HumanEval run's results readable."""
    import csv
    import json

    from .conftest import cli_in_process

    if (tmp / "requests.sqlite").exists():
        report = cli_in_process("report", "--config", str(tmp / "config.yaml"), "--json")
        assert report.returncode == 0, report.stderr
        if logged is not None:
            assert json.loads(report.stdout)["totals"]["requests"] == logged, report.stdout
    for emissions in tmp.glob("carbon/*.csv"):
        with emissions.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        assert rows and all(len(row) == len(rows[0]) for row in rows), emissions.read_text()
    if name == "train" and (tmp / "router" / "config.json").exists():
        from routerllm.files import holds, named_weights

        saved = json.loads((tmp / "router" / "config.json").read_text())
        assert holds(named_weights(tmp / "router"), saved["weights_sha256"])
    if name == "train-gate" and (tmp / "gate").exists():
        from routerllm.gate import EscalationGate

        assert EscalationGate.load(tmp / "gate").first == "tiny-medium"  # whole: it loads
    if name == "generate-data" and (tmp / "splits").exists():
        assert sorted(p.name for p in (tmp / "splits").iterdir()) == ["full.json", "test.json", "train.json", "val.json"]  # fmt: skip
        for split in (tmp / "splits").iterdir():
            assert json.loads(split.read_text())
    if name == "eval-routing" and (tmp / "curves.png").exists():
        assert (tmp / "curves.png").read_bytes()[:4] == b"\x89PNG"
    if name == "humaneval" and (tmp / "run" / "results.json").exists():
        assert json.loads((tmp / "run" / "results.json").read_text())


@pytest.mark.parametrize("name", COMMANDS)
def test_ctrl_c_once_a_command_has_printed_everything_says_it_had_finished(
    workplace: Path, tmp_path: Path, name: str
) -> None:
    """Ctrl-C once a command has printed its last line, while it closes (CodeCarbon, the
    log, threads joining, the interpreter's teardown: 0.9-1.3 s after route): it was a
    traceback (`Exception ignored in: <module 'threading'>`, status 0), a silent death by
    SIGINT, or the command's own line, which spoke of work not done (`the gate was not
    saved`, `prune again to finish`). Now, wherever it lands after the command's work, one
    line says the command had finished, status 130, and all it wrote is whole. The process
    is held open until the signal comes, as a slow close would be; its output goes to a
    pipe, in blocks, so its last line comes once its work is done."""
    argv = _command(name, tmp_path, workplace, "--json")
    stopped = run_stopped(argv, held_open("}"), as_to_a_terminal=False)
    # route's and demo's system closes once they have printed (demo's output, larger than
    # a pipe's block, reaches it as it is printed): a press there says their own line
    lines = [FINISHED, *([CLOSING_LINES[name]] if name in CLOSING_LINES else [])]
    assert stopped.returncode == 130 and stopped.stderr.strip().splitlines()[:1] in [[line] for line in lines], stopped.stderr  # fmt: skip
    assert len(stopped.stderr.strip().splitlines()) == 1, stopped.stderr
    assert stopped.stdout.rstrip().endswith("}")
    import json

    printed = json.loads(stopped.stdout)
    logged = {"route": 1, "demo": len(printed.get("routed", [])), "report": 1, "prune": 1}
    assert_nothing_lost(name, tmp_path, logged.get(name))


def test_ctrl_c_right_after_routes_last_line_never_ends_it_silently(tmp_path: Path) -> None:
    """The press as a user makes it, once route's last line is read, not held open: it
    lands while the process closes, or after it has ended (status 0, nothing said); before,
    it was mostly a death by SIGINT with nothing said (the interpreter's last second), or a
    traceback."""
    argv = _command("route", tmp_path, tmp_path, "--json")
    stopped = run_stopped(argv, on_line("}"), as_to_a_terminal=False)
    ended = (stopped.returncode, stopped.stderr.strip().splitlines())
    assert ended in [(0, []), (130, [FINISHED])], stopped.stderr
    assert_nothing_lost("route", tmp_path, 1)


@pytest.mark.parametrize("part", ["log", "meter", "manager"])
def test_ctrl_c_as_routes_system_closes_keeps_the_answer(tmp_path: Path, part: str) -> None:
    """Ctrl-C as the routed system unloads its models, stops CodeCarbon or closes the
    log (its answer printed, as to a terminal, and logged): route's own line, 130, and the
    log and CSV whole."""
    stopped = run_stopped(_command("route", tmp_path, tmp_path), at_close(part))
    assert_stopped_in_one_line(stopped, signal.SIGINT, CLOSING_LINES["route"])
    assert "carbon method" in stopped.stdout
    assert_nothing_lost("route", tmp_path, 1)


def _own_line(argv: list[str], error: KeyboardInterrupt | None = None) -> str:
    """The line the command ``argv`` says of a Ctrl-C in its work (its ``interrupted``)."""
    from routerllm.cli import build_parser

    args = build_parser().parse_args(argv)
    return str(args.interrupted(args, error or KeyboardInterrupt()))


#: A module each command first imports as its work starts: Ctrl-C there comes before any
#: output and any write.
STARTS = {
    "route": "routerllm.system",
    "demo": "routerllm.demo",
    "train": "routerllm.data.outcome_files",
    "train-gate": "routerllm.eval.transfer",
    "eval-routing": "routerllm.eval.outcome_eval",
    "report": "routerllm.carbon.report",
    "prune": "routerllm.carbon.log_prune",
    "humaneval": "routerllm.eval.humaneval_report",
}  # fmt: skip (generate-data imports nothing more as it works: its rename is below)


@pytest.mark.parametrize("name", STARTS)
def test_ctrl_c_before_a_command_prints_anything_is_its_one_line(
    workplace: Path, tmp_path: Path, name: str
) -> None:
    argv = _command(name, tmp_path, workplace)
    stopped = run_stopped(argv, at_import(STARTS[name]))
    assert_stopped_in_one_line(stopped, signal.SIGINT, _own_line(argv))
    assert stopped.stdout == ""
    assert_nothing_lost(name, tmp_path, {"report": 1, "prune": 1}.get(name))


def test_ctrl_c_while_demo_answers_keeps_the_answers_printed(tmp_path: Path) -> None:
    argv = _command("demo", tmp_path, tmp_path)
    stopped = run_stopped(argv, on_line("[1] "))
    assert_stopped_in_one_line(stopped, signal.SIGINT, CLOSING_LINES["demo"])
    printed = len([line for line in stopped.stdout.splitlines() if line.startswith("[")])
    assert printed >= 1
    assert_nothing_lost("demo", tmp_path, printed)


def test_ctrl_c_while_humaneval_loads_its_model_keeps_its_store(tmp_path: Path) -> None:
    argv = _command("humaneval", tmp_path, tmp_path)
    stopped = run_stopped(argv, at_import("llama_cpp"))
    line = f"interrupted before any answer was finished ({tmp_path}/run holds none): run the same command again to start the run"  # fmt: skip
    assert_stopped_in_one_line(stopped, signal.SIGINT, line)
    assert (tmp_path / "run" / "results.sqlite").is_file()
    assert_nothing_lost("humaneval", tmp_path)


@pytest.mark.parametrize(
    ("name", "renamed"),
    [("train", "config.json"), ("train-gate", "config.json"), ("generate-data", "val.json"),
     ("eval-routing", "curves.png")],
)  # fmt: skip
def test_ctrl_c_as_a_save_renames_its_files_keeps_them_whole(
    workplace: Path, tmp_path: Path, name: str, renamed: str
) -> None:
    """Ctrl-C as a save renames its files into place is raised once they all are: the
    new files whole, the line says so (a router: saved whole; the splits and the plot:
    the new ones, or the old)."""
    argv = _command(name, tmp_path, workplace)
    stopped = run_stopped(argv, at_rename(renamed))
    if name == "train":
        line = f"interrupted once router 'logreg' was saved in {tmp_path}/router: it is saved whole"  # fmt: skip
    elif name == "train-gate":
        line = f"interrupted once the gate was saved in {tmp_path}/gate: it is saved whole"
    else:
        line = _own_line(argv)
    assert_stopped_in_one_line(stopped, signal.SIGINT, line)
    assert_nothing_lost(name, tmp_path)


def test_ctrl_c_as_a_routers_save_fails_to_rename_keeps_the_one_before(
    workplace: Path, tmp_path: Path
) -> None:
    """A save whose last rename (config.json's) fails, a full disk say, as Ctrl-C comes:
    the router saved before stays, and loads (its weights, moved aside, are the ones its
    config names); the line says it was not saved, and why."""
    import json

    argv = _command("train", tmp_path, workplace)
    from .conftest import cli_in_process

    assert cli_in_process(*argv, "--json").returncode == 0
    before = json.loads((tmp_path / "router" / "config.json").read_text())["weights_sha256"]
    stopped = run_stopped([*argv, "--seed", "7"], at_rename("config.json", fails=True))
    assert stopped.returncode == 130, stopped.stderr
    (line,) = stopped.stderr.strip().splitlines()
    assert line.startswith(f"interrupted: router 'logreg' was not saved (one saved in {tmp_path}/router before is unchanged)"), line  # fmt: skip
    assert "no space left on device" in line.lower(), line
    saved = json.loads((tmp_path / "router" / "config.json").read_text())
    assert saved["weights_sha256"] == before
    assert_nothing_lost("train", tmp_path)


def test_ctrl_c_as_a_split_fails_to_rename_says_the_folder_holds_a_mix(tmp_path: Path) -> None:
    """generate-data's third split (val.json) cannot be renamed in place, a full disk say,
    as Ctrl-C comes: the folder holds two new splits beside an old one. The Ctrl-C line
    said `holds the split files it held before (...) never a mix`, which is false there,
    and the error that says which files are new was dropped. Now the line says that."""
    argv = _command("generate-data", tmp_path, tmp_path)
    from .conftest import cli_in_process

    assert cli_in_process(*argv, "--seed", "1").returncode == 0
    stopped = run_stopped([*argv, "--overwrite"], at_rename("val.json", fails=True))
    assert stopped.returncode == 130, stopped.stderr
    (line,) = stopped.stderr.strip().splitlines()
    assert "never a mix" not in line, line
    assert line.startswith(f"interrupted as it failed: cannot put {tmp_path}/splits/val.json in place: No space left on device; {tmp_path}/splits now holds the new full.json, train.json beside the earlier val.json, test.json (not one dataset"), line  # fmt: skip


def test_ctrl_c_as_the_atexit_hooks_run_says_it_had_finished(tmp_path: Path) -> None:
    """Ctrl-C in an ``atexit`` hook (CodeCarbon's, logging's) of a command done: it was
    `Exception ignored in atexit callback` with a traceback, status 0."""
    stopped = run_stopped(_command("report", tmp_path, tmp_path), at_exit())
    assert_stopped_in_one_line(stopped, signal.SIGINT, FINISHED)
    assert "request log:" in stopped.stdout


def test_a_command_started_with_ctrl_c_ignored_keeps_ignoring_it_as_it_closes(
    tmp_path: Path,
) -> None:
    """A job a shell without job control started in the background (`cmd &`) has Ctrl-C
    ignored, and Python leaves it so: the terminal's Ctrl-C is for the jobs in the
    foreground. It stays ignored while the command closes (not taken for a stop)."""
    stopped = run_stopped(_command("report", tmp_path, tmp_path), at_exit(), ctrl_c_ignored=True)
    assert (stopped.returncode, stopped.stderr) == (0, ""), stopped.stderr
