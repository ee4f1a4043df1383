"""Bad input to the learning commands: refused before any work, never written over
an input file, and an interrupted run says how to continue (real CLI, real files)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from routerllm.cli import main
from routerllm.exceptions import RouterLLMError

from .conftest import cli_in_process, disk_full_past
from .test_cli import assert_one_line_error, assert_usage_error
from .test_outcome_routing import make_rows, write_json


def usage_error(*argv: str) -> str:
    """The argparse error line of a command line argparse refuses (exit status 2)."""
    run = cli_in_process(*argv)
    assert_usage_error(run)
    return run.stderr.strip().splitlines()[-1]


def user_error(*argv: str) -> str:
    """The one `error:` line of a command the CLI refuses (exit status 2)."""
    run = cli_in_process(*argv)
    assert_one_line_error(run)
    return run.stderr.strip()


def unwritable_folder() -> Path:
    """/proc: root may create anything in a chmod 0o500 folder, but nothing in /proc
    (skipped where /proc takes new folders)."""
    folder = Path("/proc")
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder))
    except OSError:
        return folder
    pytest.skip("/proc takes new folders here: no folder that refuses root to test with")


def labelled(path: Path, n: int = 40) -> Path:
    rows = [{"text": f"prompt number {i} about topic {i % 7}", "label": i % 4} for i in range(n)]
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["generate-data", "--out", "{tmp}/g", "--seed", "-1"],
        ["generate-data", "--out", "{tmp}/g", "--tiny-codes", "{tmp}/tc.jsonl", "--seed", "-1"],
        ["train", "--data", "{tmp}/d.json", "--out", "{tmp}/o", "--seed", "99999999999999999999"],
        ["train", "--router", "logreg", "--data", "{tmp}/d.json", "--out", "{tmp}/o",
         "--seed", "4294967296"],
        ["eval-routing", "--data", "{tmp}/d.json", "--seed", "99999999999999999999"],
        ["test", "--router-type", "random", "--data", "{tmp}/d.json", "--seed", "-3"],
        ["humaneval", "--out", "{tmp}/he", "--seed", "-1"],
        ["humaneval", "--out", "{tmp}/he", "--seed", "1.5"],
    ],
)  # fmt: skip
def test_every_seed_option_takes_only_seeds_the_libraries_accept(
    argv: list[str], tmp_path: Path
) -> None:
    line = usage_error(*(a.format(tmp=tmp_path) for a in argv))
    assert "argument --seed:" in line and ("out of range: give 0 to 4,294,967,295" in line or
                                          "not a whole number" in line)  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_the_largest_seed_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g"
    assert main(["generate-data", "--out", str(out), "--n", "40", "--seed", "4294967295"]) == 0
    assert (out / "test.json").exists()


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["eval-routing", "--data", "{tmp}/d.json", "--test-fraction", value], "--test-fraction")
        for value in ("0", "1", "-0.5", "nan", "inf")
    ]
    + [
        (["humaneval", "--out", "{tmp}/he", option, value], option)
        for option in ("--max-new-tokens", "--limit", "--folds")
        for value in ("0", "-3")
    ]
    + [(["humaneval", "--out", "{tmp}/he", "--max-new-tokens", "9" * 12], "--max-new-tokens")],
)
def test_numeric_options_out_of_range_are_refused_naming_the_option(
    argv: list[str], option: str, tmp_path: Path
) -> None:
    line = usage_error(*(a.format(tmp=tmp_path) for a in argv))
    assert f"argument {option}:" in line
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


@pytest.mark.parametrize("budget", ["inf", "-inf", "nan", "0", "-1", "lots"])
def test_cascade_budget_must_be_a_finite_positive_number(budget: str, tmp_path: Path) -> None:
    line = usage_error("humaneval", "--out", str(tmp_path / "he"),
                       "--cascade-budget", budget)  # fmt: skip
    assert "argument --cascade-budget:" in line
    assert not (tmp_path / "he").exists()


def test_a_plot_never_replaces_an_input(tmp_path: Path) -> None:
    data = write_json(tmp_path / "train.json", *make_rows(40, 0))
    test = write_json(tmp_path / "test.json", *make_rows(20, 1))
    before = data.read_bytes(), test.read_bytes()
    common = ["eval-routing", "--data", str(data), "--test", str(test), "--encoder", "hashing"]
    for plot in (data, test, tmp_path / "curves.jpg", tmp_path / "curves"):
        assert "give a path ending in .png" in user_error(*common, "--plot", str(plot))
    # The same file under another name: a link, or the models.json beside the data.
    (tmp_path / "link.png").symlink_to(test)
    line = user_error(*common, "--plot", str(tmp_path / "link.png"))
    assert "would overwrite the --test input" in line and "choose another --plot" in line
    (tmp_path / "models.json").write_text(json.dumps({"small": {"size": 1}, "big": {"size": 9}}))
    (tmp_path / "models.png").symlink_to(tmp_path / "models.json")
    line = user_error(*common, "--plot", str(tmp_path / "models.png"))
    assert "would overwrite the --data models input" in line
    (tmp_path / "dir.png").mkdir()
    assert "is a folder" in user_error(*common, "--plot", str(tmp_path / "dir.png"))
    assert "which is a file" in user_error(*common, "--plot", str(data / "c.png"))
    assert (data.read_bytes(), test.read_bytes()) == before


def test_test_prompts_also_in_train_are_said_once_on_stdout_not_warned(tmp_path: Path) -> None:
    """The test prompts removed as also in the training data are counted in the header
    (and ``removed_overlap`` of --json); a WARNING line on stderr said it a second time,
    as if something had gone wrong, at every run on LLMRouter's data (119 of its 500)."""
    prompts, scores = make_rows(40, 0)
    data = write_json(tmp_path / "train.json", prompts, scores)
    test_prompts, test_scores = make_rows(20, 1)
    test = tmp_path / "test" / "test.json"
    test.parent.mkdir()
    write_json(test, prompts[:3] + test_prompts[3:], test_scores)
    args = ["eval-routing", "--data", str(data), "--test", str(test), "--encoder", "hashing",
            "--routers", "knn"]  # fmt: skip
    # a process of its own: stderr as a user sees it, with the CLI's own logging set-up
    run = [sys.executable, "-m", "routerllm.cli", *args]
    text = subprocess.run(run, capture_output=True, text=True, timeout=120, check=True)
    assert "test 17 (removed 3 also in train)" in text.stdout
    assert text.stderr == ""
    as_json = cli_in_process(*args, "--json")  # main's logging set-up in this process
    assert as_json.returncode == 0 and as_json.stderr == ""
    assert json.loads(as_json.stdout)["removed_overlap"] == 3


def test_a_plot_it_cannot_write_is_refused_before_the_evaluation(tmp_path: Path) -> None:
    """Until 2026-12-04 a --plot in a folder nothing could be created in was found only
    once every router was trained and evaluated: the figures were lost, and the error
    named the plot's temporary file (``/proc/.c.png.x1y2.partial``)."""
    data = write_json(tmp_path / "train.json", *make_rows(40, 0))
    plot = unwritable_folder() / "routerllm-test" / "c.png"
    line = user_error("eval-routing", "--data", str(data), "--encoder", "hashing",
                      "--plot", str(plot))  # fmt: skip
    assert line.startswith(f"error: --plot {plot}: nothing can be written in /proc (")
    assert line.endswith("give a folder you can write to (nothing was evaluated)")


def test_a_test_set_without_a_training_model_says_what_to_give(tmp_path: Path) -> None:
    data = write_json(tmp_path / "train.json", *make_rows(40, 0))
    rows = json.loads(data.read_text())
    for row in rows:
        del row["scores"]["big"]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test.json").write_text(json.dumps(rows))
    line = user_error("eval-routing", "--data", str(data),
                      "--test", str(tmp_path / "t" / "test.json"), "--encoder", "hashing")  # fmt: skip
    assert "has no scores for big, which the training data" in line
    assert "give a test set scored on each of them" in line


def test_train_and_generate_data_never_write_over_their_input(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    data = labelled(out / "config.json")
    before = data.read_bytes()
    line = user_error("train", "--data", str(data), "--out", str(out), "--encoder", "hashing")
    assert "would overwrite the --data input" in line and "choose another --out" in line
    tiny = out / "full.json"
    tiny.write_text(json.dumps([{"prompt": "p", "target_audience": "Beginners"}]))
    line = user_error("generate-data", "--tiny-codes", str(tiny), "--out", str(out))
    assert "would overwrite the --tiny-codes input" in line
    assert data.read_bytes() == before and json.loads(tiny.read_text())[0]["prompt"] == "p"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "full.json"]


def test_val_is_refused_where_it_would_be_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    labelled(folder / "train.json")
    labelled(folder / "val.json", 8)
    other = labelled(tmp_path / "other.json", 8)
    out = str(tmp_path / "o")
    line = user_error("train", "--data", str(folder), "--val", str(other), "--out", out)
    assert "with a --data folder" in line and f"--data {folder / 'train.json'}" in line
    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    line = user_error("train", "--router", "knn", "--data", str(outcomes),
                      "--val", str(other), "--out", out)  # fmt: skip
    assert "--val is for the classifier" in line
    assert not Path(out).exists()


def test_an_empty_training_or_validation_file_is_refused(tmp_path: Path) -> None:
    """An empty --val file trained on with no validation at all (the last epoch kept,
    not the best), and an empty train.json said only "fit needs at least one training
    prompt"."""
    data, empty = labelled(tmp_path / "d.json"), tmp_path / "empty.json"
    empty.write_text("[]")
    out = str(tmp_path / "o")
    common = ["--out", out, "--encoder", "hashing", "--epochs", "1"]
    line = user_error("train", "--data", str(data), "--val", str(empty), *common)
    assert line == f"error: {empty} holds no prompts; give a file with labelled prompts"
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.json").write_text("[]")
    labelled(folder / "val.json", 8)
    line = user_error("train", "--data", str(folder), *common)
    assert (
        line
        == f"error: {folder / 'train.json'} holds no prompts; give a file with labelled prompts"
    )
    assert not Path(out).exists()


def test_the_other_kind_of_data_file_says_which_command_takes_it(tmp_path: Path) -> None:
    """Outcome data given to the classifier (or to test), and labelled prompts given to
    an outcome router, said only which keys were missing, not that it is the other kind
    of file, which another command (or router) reads. A RouterBench CSV was "not valid
    JSON (Expecting value: line 1 column 1 (char 0))" until 2026-12-05."""
    from .test_data_outcomes import write_csv

    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    csv_file = write_csv(tmp_path / "bench.csv", ["prompt", "m", "m|total_cost"], [["hi", 1, 0.5]])
    data = labelled(tmp_path / "l.json")
    out = str(tmp_path / "o")
    routers = "the outcome routers train on it (routerllm train --router quality, logreg, knn, ...) and routerllm eval-routing evaluates them on it"  # fmt: skip
    for file, kind in (
        (outcomes, "holds outcome data ({question, scores}), not labelled prompts ({text, label})"),
        (csv_file, "is a CSV file, read as outcome data (RouterBench), not labelled prompts (a JSON list of {text, label})"),
    ):  # fmt: skip
        for argv in (["train", "--out", out, "--encoder", "hashing"], ["test", "--router-type", "rules"]):  # fmt: skip
            line = user_error(*argv, "--data", str(file))
            assert line == f"error: {file} {kind}: {routers}"
    for argv in (["train", "--router", "knn", "--out", out], ["eval-routing"]):
        line = user_error(*argv, "--data", str(data), "--encoder", "hashing")
        assert line == (
            f"error: {data} holds labelled prompts ({{text, label}}), not outcome data "
            "({question, scores}): the classifier trains on them (routerllm train --router "
            "classifier) and routerllm test scores a router on them"
        )
    assert not Path(out).exists()


def test_a_data_file_that_is_not_utf8_says_so_and_how_to_fix_it(tmp_path: Path) -> None:
    """A Latin-1 file, or the UTF-16 one Windows PowerShell's `>` writes, was "not valid
    JSON ('utf-8' codec can't decode byte 0xff in position 0: invalid start byte)"."""
    data = labelled(tmp_path / "l.json")
    latin = tmp_path / "latin.json"
    latin.write_bytes(data.read_bytes().replace(b"prompt", b"pr\xe9mpt", 1))
    line = user_error("train", "--data", str(latin), "--out", str(tmp_path / "o"),
                      "--encoder", "hashing")  # fmt: skip
    assert line == (
        f"error: {latin}: not UTF-8 text (line 1: byte 0xe9); convert it to UTF-8 first"
    )
    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    wide = tmp_path / "wide.json"
    wide.write_bytes(outcomes.read_text().encode("utf-16"))  # with its byte-order mark
    line = user_error("eval-routing", "--data", str(wide), "--encoder", "hashing")
    assert line == (
        f"error: {wide}: UTF-16 text (as Windows PowerShell's > writes it), not UTF-8; "
        "convert it to UTF-8 first"
    )
    csv_file = tmp_path / "latin.csv"
    csv_file.write_bytes(b"prompt,a,a|total_cost\nd\xe9j\xe0 vu,1,0.5\n")
    line = user_error("train", "--router", "knn", "--data", str(csv_file),
                      "--out", str(tmp_path / "o"), "--encoder", "hashing")  # fmt: skip
    assert line == (
        f"error: {csv_file}: not UTF-8 text (line 2: byte 0xe9); convert it to UTF-8 first"
    )
    assert not (tmp_path / "o").exists()
    rows = b'{"prompt": "caf\xe9", "target_audience": "beginners"}\n'
    for name, text in (("tc.jsonl", b"\n" + rows), ("tc.csv", b"prompt,target_audience\ncaf\xe9,x\n")):  # fmt: skip
        (tmp_path / name).write_bytes(text)
        line = user_error("generate-data", "--out", str(tmp_path / "g"),
                          "--tiny-codes", str(tmp_path / name))  # fmt: skip
        assert line == f"error: {tmp_path / name}: not UTF-8 text (line 2: byte 0xe9); convert it to UTF-8 first"  # fmt: skip
    assert not (tmp_path / "g").exists()


def test_training_says_when_validation_prompts_are_trained_on_or_labels_disagree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A --val that shares prompts with --data (the same file, by mistake) picked the best
    epoch by accuracy on trained prompts, and a prompt labelled twice differently was
    trained both ways, without a word (outcome data's repeats are warned about)."""
    data = labelled(tmp_path / "l.json")
    rows = json.loads(data.read_text())
    rows.append({"text": rows[0]["text"].upper() + "  ", "label": (rows[0]["label"] + 1) % 4})
    data.write_text(json.dumps(rows))
    val = tmp_path / "v.json"
    val.write_text(json.dumps(rows[:10] + [{"text": "a prompt of its own", "label": 1}]))
    argv = ["train", "--data", str(data), "--encoder", "hashing", "--epochs", "1", "--json"]
    with caplog.at_level(logging.WARNING, logger="routerllm.train_cli"):
        assert main([*argv, "--val", str(val), "--out", str(tmp_path / "o")]) == 0
    assert caplog.messages == [
        f"{data}: 1 prompt(s) given more than once with different labels (case, spaces and "
        f"Unicode form folded), e.g. {rows[0]['text']!r:.60} (labels {rows[0]['label']} and "
        f"{rows[-1]['label']}): the classifier is trained on both",
        f"{val}: 10 of its 11 prompts are also in the training data (case, spaces and "
        "Unicode form folded): the validation accuracy that picks the best epoch is partly measured on "
        "trained prompts",
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="routerllm.train_cli"):
        assert main([*argv[:2], str(val), *argv[3:], "--out", str(tmp_path / "o2")]) == 0
    assert caplog.messages == []  # its own prompts, each labelled once
    # Data without some class: the classifier can never predict it.
    caplog.clear()
    data.write_text(json.dumps([r for r in rows if r["label"] in (1, 3)]))
    with caplog.at_level(logging.WARNING, logger="routerllm.train_cli"):
        assert main([*argv, "--out", str(tmp_path / "o3")]) == 0
    assert f"{data}: no training prompt of class(es) 0 (code_generation), 2 (general_purpose): the classifier will never predict them" in caplog.messages  # fmt: skip
    capsys.readouterr()


@pytest.mark.parametrize("rate", ["0", "-0.001", "nan", "inf"])
def test_a_zero_learning_rate_is_refused_not_replaced(rate: str, tmp_path: Path) -> None:
    data = labelled(tmp_path / "d.json")
    line = usage_error("train", "--data", str(data), "--out", str(tmp_path / "o"),
                       "--encoder", "hashing", "--learning-rate", rate)  # fmt: skip
    assert f"argument --learning-rate: {rate} must be a finite number > 0" in line
    assert not (tmp_path / "o" / "config.json").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--epochs", "0", "0 is out of range: give 1 to 10,000"),
        ("--epochs", "nan", "'nan' is not a whole number"),
        ("--batch-size", "-4", "-4 is out of range: give a whole number >= 1"),
        ("--warmup-steps", "-1", "-1 is out of range: give a whole number >= 0"),
        # finite, but more than torch's float32 learning rate holds: it was said as
        # "bad training arguments: learning_rate=1e+39 ..." once the data was read
        ("--learning-rate", "1e39", "1e39 is too large: give at most 3.4e+38"),
        # below float32's smallest normal number: torch's updates rounded to 0, and the
        # router trained nothing, without a word
        ("--learning-rate", "1e-320", "1e-320 is too small: give at least 1.18e-38"),
    ],
)
def test_a_classifier_number_out_of_range_names_its_option(
    option: str, value: str, message: str, tmp_path: Path
) -> None:
    """They said "bad training arguments: epochs=0 (must be positive)", which names no
    option, after the data was read; now after the usage, as any option out of range;
    an outcome router still says the option is not its."""
    data = labelled(tmp_path / "d.json")
    out = str(tmp_path / "o")
    line = usage_error("train", "--data", str(data), "--out", out,
                       "--encoder", "hashing", option, value)  # fmt: skip
    assert line == f"routerllm train: error: argument {option}: {message}"
    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    line = user_error("train", "--router", "logreg", "--data", str(outcomes),
                      "--out", out, option, value)  # fmt: skip
    assert f"{option} is for the classifier" in line
    assert not Path(out).exists()


def test_a_batch_size_beyond_the_training_set_is_all_of_it_in_one_step(tmp_path: Path) -> None:
    """--batch-size above the training prompts trains on all of them a step, however
    large: until 2026-12-06 one beyond a float's range (10**400) counted 0 steps an
    epoch (12 / 10**400 rounds to 0.0), so the learning rate's schedule was 0 throughout
    and the router trained nothing, without a word."""
    import numpy as np

    data = labelled(tmp_path / "d.json")
    weights = []
    for size in ("40", "1" + "0" * 400):
        out = tmp_path / f"o{len(size)}"
        proc = cli_in_process("train", "--data", str(data), "--out", str(out), "--encoder",
                              "hashing", "--epochs", "2", "--batch-size", size)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-500:]
        with np.load(out / "weights.npz") as w:
            weights.append({k: w[k] for k in w.files})
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        np.testing.assert_array_equal(weights[1][key], weights[0][key], err_msg=key)


def interrupt(
    argv: list[str], ready: Path | Callable[[], bool], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``routerllm argv``, press Ctrl-C (SIGINT) once ``ready`` exists (or says it is
    ready); its result."""
    is_ready = ready if callable(ready) else ready.exists
    proc = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        # A shell without job control starts background jobs with SIGINT ignored,
        # and children keep that: give Python back its KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not is_ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted"
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_interrupted_training_says_how_to_resume(tmp_path: Path) -> None:
    data = labelled(tmp_path / "d.json")
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "o"), "--encoder", "hashing",
            "--epochs", "10000", "--json"]  # fmt: skip
    done = interrupt(argv, tmp_path / "o" / "checkpoints" / "checkpoint.pt", tmp_path)
    assert done.returncode == 130 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("interrupted: epochs 1-") and "checkpoint.pt" in line
    assert "rerun the same command with --resume" in line
    assert "resume=True" not in done.stderr and "requests" not in done.stderr


def _link(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def test_ctrl_c_before_a_resumed_run_trains_keeps_pointing_at_the_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while --resume still reads its data (a long embedding, say) once said
    "nothing to resume", though the checkpoint held the finished epochs."""
    out = tmp_path / "o"
    common = ["--out", str(out), "--encoder", "hashing", "--epochs", "3", "--json"]
    assert (
        main(["train", "--data", str(labelled(tmp_path / "d.json")), *common, "--epochs", "2"]) == 0
    )
    checkpoint = out / "checkpoints" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    # --data <(command): the run blocks reading the pipe, so no race with the Ctrl-C
    reader, writer = os.pipe()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "routerllm.cli",
            "train",
            "--data",
            f"/dev/fd/{reader}",
            *common,
            "--resume",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        pass_fds=(reader,),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(reader)
    pipe = os.readlink(f"/proc/self/fd/{writer}")
    opened = False
    while not opened and proc.poll() is None:  # the run has opened the file to read it:
        with contextlib.suppress(OSError):  # the pipe it was given, then again by its name
            fds = os.listdir(f"/proc/{proc.pid}/fd")
            opened = sum(_link(f"/proc/{proc.pid}/fd/{fd}") == pipe for fd in fds) > 1
        time.sleep(0.05)
    assert opened, proc.communicate()
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    os.close(writer)
    assert proc.returncode == 130 and "Traceback" not in stderr
    line = stderr.strip().splitlines()[-1]
    assert "nothing to resume" not in line
    assert line == (
        f"interrupted before training resumed: {checkpoint} is unchanged; rerun the same "
        "command (with --resume) to continue after its last finished epoch"
    )
    assert checkpoint.read_bytes() == before


def test_a_rerun_without_resume_keeps_the_epochs_of_a_run_that_did_not_finish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed mid-run (SIGKILL: the OOM killer, a reboot; nothing said to add --resume),
    the same command run again trained from scratch, and its first epoch replaced the
    checkpoint's finished ones, with only a warning that spoke of resume=False."""
    import torch

    out = tmp_path / "o"
    checkpoint = out / "checkpoints" / "checkpoint.pt"
    data = labelled(tmp_path / "d.json")

    def train(epochs: int, *extra: str) -> list[str]:
        return ["train", "--data", str(data), "--out", str(out), "--encoder", "hashing",
                "--epochs", str(epochs), "--json", *extra]  # fmt: skip

    proc = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", *train(10_000)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be killed"
    proc.kill()
    proc.wait(timeout=60)
    before = checkpoint.read_bytes()
    done = torch.load(checkpoint, weights_only=True)["epoch"]
    refused = (
        f"error: --out {out} holds the checkpoint of a training run that did not finish "
        f"({checkpoint}: epochs 1-{done} of 10000): rerun the command with --resume to "
        f"continue after epoch {done}, or with --overwrite to train from scratch, replacing "
        "them (nothing was changed)"
    )
    # (a few more epochs than it holds, not 10000: where it is not refused, it ends)
    assert user_error(*train(done + 5)) == refused
    assert checkpoint.read_bytes() == before and not (out / "config.json").exists()
    # as it says: --resume continues after the finished epochs (here, to one more)
    assert main(train(done + 1, "--resume")) == 0
    assert json.loads(capsys.readouterr().out)["epochs_run"] == [done + 1]
    # a finished run, its router saved: the command trains afresh, replacing both, as before
    assert main(train(2)) == 0
    assert json.loads(capsys.readouterr().out)["epochs_run"] == [1, 2]
    # one stopped after its last epoch, before its router was saved, did not finish either
    for saved in ("config.json", "weights.npz"):
        (out / saved).unlink()
    stopped_saving = refused.replace(f"1-{done} of 10000", "1-2 of 2")
    assert user_error(*train(2)) == stopped_saving.replace(f"epoch {done},", "epoch 2,")
    assert main(train(3, "--overwrite")) == 0  # as it says: trains afresh
    assert json.loads(capsys.readouterr().out)["epochs_run"] == [1, 2, 3]


def test_a_rerun_without_resume_keeps_a_newer_routerllms_unfinished_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint this RouterLLM cannot read only because a newer one wrote it (a
    downgrade) is not damaged: a rerun without --resume took it for "nothing to keep",
    trained from scratch and replaced the newer run's unfinished epochs."""
    import torch

    out = tmp_path / "o"
    checkpoint = out / "checkpoints" / "checkpoint.pt"
    argv = ["train", "--data", str(labelled(tmp_path / "d.json")), "--out", str(out),
            "--encoder", "hashing", "--epochs", "2", "--json"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    for saved in ("config.json", "weights.npz"):  # stopped before its router was saved
        (out / saved).unlink()
    payload = torch.load(checkpoint, weights_only=True)
    torch.save({**payload, "version": 99}, checkpoint)
    before = checkpoint.read_bytes()
    newer = (
        f"error: {checkpoint} was written by a newer RouterLLM (checkpoint version 99; this "
        "one reads version 1): upgrade routerllm to resume it, or delete it (or its "
        "checkpoints folder) to train from scratch"
    )
    assert user_error(*argv) == newer
    assert user_error(*argv, "--resume") == newer
    assert checkpoint.read_bytes() == before
    assert main([*argv, "--overwrite"]) == 0  # as it says: replaced only when asked to
    assert torch.load(checkpoint, weights_only=True)["version"] == 1


def test_ctrl_c_while_the_trained_router_is_saved_points_at_the_finished_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C once every epoch was trained, as the router was saved, said "interrupted
    before a first epoch was saved: nothing to resume" (or, with --resume, that the
    checkpoint was unchanged), though the checkpoint held every epoch. Pressed as its
    files are renamed in place, it is raised once they are, and says the router is saved
    (until 2026-12-04 a first save could be left as weights without a config)."""
    import routerllm.files as files

    out = tmp_path / "o"
    argv = ["train", "--data", str(labelled(tmp_path / "d.json")), "--out", str(out),
            "--encoder", "hashing", "--epochs", "2", "--json"]  # fmt: skip
    digest = files.sha256_of

    def pressing(path: Path) -> str:  # as the router's weights are staged, before renames
        signal.raise_signal(signal.SIGINT)
        return digest(path)

    monkeypatch.setattr(files, "sha256_of", pressing)
    for resume in ([], ["--resume"]):
        assert main(argv + resume) == 130
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line == (
            f"interrupted before the router was saved (one saved in {out} before is unchanged): "
            f"all 2 epochs are saved in {out / 'checkpoints' / 'checkpoint.pt'}; rerun the same "
            "command with --resume to save it without training again"
        )
        assert not (out / "config.json").exists() and not (out / "weights.npz").exists()
    monkeypatch.undo()
    real = files.publish

    def renaming(tmp: Path, target: Path) -> None:
        if target.name == "weights.npz":  # the router's, not its checkpoint
            signal.raise_signal(signal.SIGINT)
        real(tmp, target)

    monkeypatch.setattr(files, "publish", renaming)
    assert main([*argv, "--resume"]) == 130  # nothing trained again, the router saved whole
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"interrupted once router 'classifier' was saved in {out}: it is saved whole"
    )
    assert (out / "config.json").exists() and not (out / "weights.previous.npz").exists()
    monkeypatch.undo()
    assert main(["test", "--router-model", str(out), "--data", str(tmp_path / "d.json")]) == 0


def test_interrupted_humaneval_says_the_same_command_continues(
    tiny_config_path: Path, tmp_path: Path
) -> None:
    """Interrupted while it generates (its progress bar shown), the message is the last
    line: the bar, closed as the error went by, once came after it, run into its line."""
    out = tmp_path / "he"
    argv = ["humaneval", "--config", str(tiny_config_path), "--out", str(out), "--limit", "40",
            "--systems", "direct-light,direct-medium,direct-heavy", "--max-new-tokens", "32"]  # fmt: skip

    def answering() -> bool:  # an answer is stored: the bar is up, the rest take seconds
        try:
            store = f"file:{out / 'results.sqlite'}?mode=ro"  # read-only: never makes it
            with contextlib.closing(sqlite3.connect(store, uri=True, timeout=0.1)) as db:
                return bool(db.execute("SELECT 1 FROM generations LIMIT 1").fetchall())
        except sqlite3.Error:  # not made yet, or being written
            return False

    done = interrupt(argv, answering, tmp_path)
    assert done.returncode == 130 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line == f"interrupted; finished answers are kept in {out}: run the same command " \
        "again to continue the run"  # fmt: skip


def test_humaneval_interrupted_before_its_store_exists_says_nothing_was_run(
    tiny_config_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C as the problems loaded said "finished answers are kept in OUT", a folder
    that did not exist, and so did Ctrl-C before the first answer of a new run (its
    store made, empty); a store that holds answers (an earlier run's) says they are kept."""
    from routerllm.eval import humaneval_plan
    from routerllm.eval.result_store import ResultStore

    def pressed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(humaneval_plan, "load_code_problems", pressed)
    out = tmp_path / "he"
    argv = ["humaneval", "--config", str(tiny_config_path), "--out", str(out),
            "--systems", "direct-light", "--limit", "1"]  # fmt: skip
    assert main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        f"interrupted; nothing was run yet ({out} holds no results): run the same command "
        "again to start the run"
    ]
    assert not out.exists()
    out.mkdir()
    store = ResultStore(out / "results.sqlite")
    store.close()
    assert main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        f"interrupted before any answer was finished ({out} holds none): run the same "
        "command again to start the run"
    ]
    store = ResultStore(out / "results.sqlite")
    store.add({"model": "tiny-light", "task_id": "HumanEval/0", "raw": "x", "completion": "x",
               "prompt_tokens": 3, "completion_tokens": 1, "gen_s": 0.1, "gen_kwh": 1e-6,
               "gen_co2": 4e-7, "method": "test", "status": "failed", "detail": "",
               "passed": 0})  # fmt: skip
    store.close()
    assert main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        f"interrupted; finished answers are kept in {out}: run the same command again to "
        "continue the run"
    ]


def test_a_target_naming_an_unknown_model_is_refused_before_the_fit(tmp_path: Path) -> None:
    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    out = tmp_path / "o"
    # The encoder would fail as it loads: the target is refused before that.
    missing = f"hf:{tmp_path / 'no-such-encoder'}"
    line = user_error("train", "--router", "quality", "--data", str(outcomes),
                      "--out", str(out), "--calibrate", "max_share:nomodel=0.3",
                      "--encoder", missing)  # fmt: skip
    assert "unknown model 'nomodel' in target" in line and not out.exists()


def test_options_the_router_does_not_use_are_refused_not_ignored(tmp_path: Path) -> None:
    data = labelled(tmp_path / "train.json")
    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    out = str(tmp_path / "o")
    line = user_error("train", "--data", str(data), "--out", out,
                      "--calibrate", "quality=0.9")  # fmt: skip
    assert "--calibrate is for outcome routers" in line and "'classifier'" in line
    line = user_error("train", "--data", str(data), "--out", out,
                      "--cost", "price", "--decision", "threshold")  # fmt: skip
    assert "--cost, --decision are for outcome routers" in line
    line = user_error("train", "--router", "logreg", "--data", str(outcomes),
                      "--out", out, "--epochs", "0", "--mode", "full", "--resume")  # fmt: skip
    assert "--mode, --epochs, --resume are for the classifier" in line
    line = user_error("eval-routing", "--data", str(outcomes), "--test", str(outcomes),
                      "--test-fraction", "0.5")  # fmt: skip
    assert "--test-fraction splits --data when there is no --test" in line
    assert not Path(out).exists()


def test_an_option_value_nested_too_deeply_is_a_usage_error(tmp_path: Path) -> None:
    """`--option k=[[[[...` (read as JSON) was a RecursionError traceback from argparse."""
    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    line = usage_error("train", "--router", "knn", "--data", str(outcomes),
                       "--out", str(tmp_path / "o"), "--option", "k=" + "[" * 100_000)  # fmt: skip
    assert line.startswith("routerllm train: error: argument --option: 'k=[[[[")
    assert line.endswith("is nested too deeply to read as JSON")
    assert not (tmp_path / "o").exists()


def test_train_checks_its_out_folder_before_training(tmp_path: Path) -> None:
    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    (tmp_path / "afile.txt").write_text("keep")
    line = user_error("train", "--router", "knn", "--data", str(outcomes),
                      "--out", str(tmp_path / "afile.txt" / "r"))  # fmt: skip
    assert "afile.txt is a file" in line
    theirs = tmp_path / "othertool"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"their": "settings"}')
    line = user_error("train", "--data", str(labelled(tmp_path / "l.json")),
                      "--out", str(theirs), "--encoder", "hashing")  # fmt: skip
    assert "not a saved RouterLLM router" in line
    assert sorted(p.name for p in theirs.iterdir()) == ["config.json"]  # no checkpoints/
    data = str(labelled(tmp_path / "l.json"))
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "checkpoints").write_text("x")  # a file where the checkpoints go
    line = user_error("train", "--data", data, "--out", str(blocked), "--encoder", "hashing")
    assert "checkpoints is a file, where a folder goes" in line
    (blocked / "checkpoints").unlink()
    (blocked / "checkpoints" / "checkpoint.pt").mkdir(parents=True)
    line = user_error("train", "--data", data, "--out", str(blocked), "--encoder", "hashing")
    assert "checkpoint.pt is a folder, where a file will be written" in line


@pytest.mark.parametrize("router", ["classifier", "logreg"])
def test_train_refuses_an_out_it_cannot_write_before_training(router: str, tmp_path: Path) -> None:
    """Until 2026-12-04 an --out nothing could be created in failed only at the save
    (after an epoch, for the classifier): the check tries it, as root too."""
    if router == "classifier":
        argv = ["train", "--data", str(labelled(tmp_path / "l.json")), "--epochs", "1"]
    else:
        outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
        argv = ["train", "--router", router, "--data", str(outcomes)]
    argv += ["--encoder", "hashing", "--json"]
    (tmp_path / "afile.txt").write_text("keep")
    line = user_error(*argv, "--out", str(tmp_path / "afile.txt" / "r"))
    assert "afile.txt is a file; give a folder" in line
    assert (tmp_path / "afile.txt").read_text() == "keep"
    # Root may create anything in a chmod 0o500 folder, but nothing in /proc.
    folder = Path("/proc")
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder))
    except OSError:
        pass
    else:
        pytest.skip("/proc takes new folders here: no folder that refuses root to test with")
    line = user_error(*argv, "--out", str(folder / "routerllm-test" / "r"))
    assert f"nothing can be written in {folder}" in line
    assert "give a folder you can write to (nothing was trained)" in line


def test_an_out_that_is_a_broken_link_is_refused_before_the_work(tmp_path: Path) -> None:
    """A link to nothing (its target deleted or not mounted) passed the checks of --out
    and --plot, which asked whether the path exists: the work was done, then lost at the
    save ("[Errno 17] File exists"; eval-routing's figures too)."""
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone" / "out")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    data = labelled(tmp_path / "l.json")
    for out in (link, loop):
        said = f"{out} is a broken link (to {os.readlink(out)})"
        line = user_error("train", "--router", "knn", "--data", str(outcomes),
                          "--out", str(out), "--encoder", "hashing")  # fmt: skip
        assert line == f"error: --out {out}: {said}; give a folder for the router"
        line = user_error("train", "--data", str(data), "--out", str(out / "r"),
                          "--encoder", "hashing", "--epochs", "1")  # fmt: skip
        assert line == f"error: --out {out / 'r'}: {said}; give a folder for the router"
        line = user_error("generate-data", "--out", str(out), "--n", "40")
        # until 2026-12-05 a broken link was said to exist
        assert line == f"error: --out {out}: {said}, not a directory; choose another --out"
        line = user_error("eval-routing", "--data", str(outcomes), "--encoder", "hashing",
                          "--plot", str(out / "c.png"))  # fmt: skip
        assert line == f"error: --plot {out / 'c.png'} is under {out}, which {said[len(str(out)) + 1:]}"  # fmt: skip
        line = user_error("train-gate", "--run", str(tmp_path / "no-run"), "--out", str(out))
        assert line == f"error: {said}; save the gate to a directory"
    assert not (tmp_path / "gone").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.json", "loop", "models.json", "out", "outcomes.json"]  # fmt: skip


def test_generate_data_refuses_more_prompts_than_it_makes_in_usable_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--n 1000001 was generated for many minutes (within the templates' reach, about
    3.2 million): refused with the usage, before a prompt is made; --help states the bound."""
    from routerllm.checks import MAX_SYNTHETIC_PROMPTS
    from routerllm.data import synthetic

    def render(*args: object) -> str:
        raise AssertionError("rendered a prompt before refusing")

    monkeypatch.setattr(synthetic, "_render", render)
    out, n = tmp_path / "data", MAX_SYNTHETIC_PROMPTS + 1
    assert usage_error("generate-data", "--out", str(out), "--n", str(n)) == (
        f"routerllm generate-data: error: argument --n: {n} is out of range: give 40 to "
        f"{MAX_SYNTHETIC_PROMPTS:,}"
    )
    assert not out.exists()
    assert f"40 to {MAX_SYNTHETIC_PROMPTS:,}" in " ".join(cli_in_process("generate-data", "--help").stdout.split())  # fmt: skip


def test_generate_data_does_not_replace_existing_splits_unasked(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    mine = labelled(out / "train.json", 8)
    before = mine.read_bytes()
    line = user_error("generate-data", "--out", str(out), "--n", "40")
    assert "already holds train.json" in line and "--overwrite" in line
    assert mine.read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["train.json"]
    assert main(["generate-data", "--out", str(out), "--n", "40", "--overwrite"]) == 0
    assert len(json.loads(mine.read_text())) == 28


@pytest.mark.parametrize("router", ["classifier", "quality"])
def test_testing_a_learning_router_by_type_says_to_train_it_and_give_its_folder(
    router: str, tmp_path: Path
) -> None:
    """`test --router-type classifier` said "call fit(), or check that the saved router's
    folder has its weights.npz": no folder was given, and the CLI has no fit()."""
    data = labelled(tmp_path / "d.json")
    line = user_error("test", "--router-type", router, "--data", str(data))
    assert line == (
        f"error: router {router!r} learns: train it first (routerllm train --router {router} "
        "--out DIR ...), then test it with --router-model DIR"
    )


def test_a_router_model_given_as_a_file_says_a_saved_router_is_a_folder(tmp_path: Path) -> None:
    """`test --router-model` given a file (the saved router's config.json, a data file)
    said "cannot read a saved router: [Errno 20] Not a directory: '.../config.json'"."""
    data = labelled(tmp_path / "d.json")
    before = data.read_bytes()
    line = user_error("test", "--router-model", str(data), "--data", str(data))
    assert line == (
        f"error: {data} is a file: a saved router is the folder routerllm train saved it in "
        "(its --out), holding config.json"
    )
    assert data.read_bytes() == before


def test_folders_and_foreign_files_are_named_as_such(tmp_path: Path) -> None:
    line = user_error("test", "--router-type", "rules", "--data", str(tmp_path))
    assert f"{tmp_path} is a directory; give the dataset file (.json) inside it" in line
    line = user_error("generate-data", "--out", str(tmp_path / "g"),
                      "--tiny-codes", str(tmp_path))  # fmt: skip
    assert f"{tmp_path} is a directory; give the tiny-codes file inside it" in line
    # humaneval --problems said "cannot read the problem file ([Errno 21] Is a directory: ...)"
    line = user_error("humaneval", "--problems", str(tmp_path), "--out", str(tmp_path / "he"),
                      "--systems", "direct-light")  # fmt: skip
    assert line == (
        f"error: {tmp_path} is a directory; give the problem file (.jsonl, .jsonl.gz or .json) "
        "inside it"
    )
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"a": 1}')
    line = user_error("test", "--router-model", str(foreign),
                      "--data", str(labelled(tmp_path / "l.json")))  # fmt: skip
    assert "not a saved RouterLLM router (its config.json has no 'router' setting)" in line
    two = write_json(tmp_path / "two.json", *make_rows(2, 0))
    line = user_error("train", "--router", "knn", "--data", str(two), "--out",
                      str(tmp_path / "r"), "--calibrate", "max_cost=0.5")  # fmt: skip
    assert "--calibrate sets the knob on 20 % of --data" in line and "2 prompt(s)" in line


def tiny_codes_file(path: Path, per_audience: int) -> Path:
    """A tiny-codes JSONL file with ``per_audience`` rows for each of its 3 audiences."""
    rows = [
        {"prompt": f"Write snippet {i} for {a}", "target_audience": a}
        for i in range(per_audience)
        for a in ("Beginners", "Experts", "Professionals")
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_generate_data_n_with_tiny_codes_is_shared_by_its_three_audiences(tmp_path: Path) -> None:
    """--n N writes N prompts, N // 3 an audience (tiny-codes has no class 1: not N // 4),
    split 80/10/10."""
    tiny = tiny_codes_file(tmp_path / "tc.jsonl", 50)
    argv = ["--tiny-codes", str(tiny), "--out", str(tmp_path / "out"), "--n", "60", "--json"]
    run = cli_in_process("generate-data", *argv)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["counts"] == {"full": 60, "train": 48, "val": 6, "test": 6}


def test_generate_data_refuses_tiny_codes_too_small_for_every_split(tmp_path: Path) -> None:
    """Five rows per audience wrote val.json or test.json without a class (or empty),
    silently; --n has a minimum for that reason."""
    tiny = tiny_codes_file(tmp_path / "tc.jsonl", 5)
    out = tmp_path / "out"
    line = user_error("generate-data", "--tiny-codes", str(tiny), "--out", str(out))
    assert "5 prompt(s) per class after balancing leave the" in line
    assert "at least 10 usable rows for each audience" in line and not out.exists()
    # the file has enough rows, --n cut them: the remedy is --n, not another file
    enough = tiny_codes_file(tmp_path / "enough.jsonl", 50)
    line = user_error("generate-data", "--tiny-codes", str(enough), "--out", str(out), "--n", "9")
    assert line.endswith("give --n 30 or more") and not out.exists()


def test_generate_data_refuses_an_out_file_before_reading_tiny_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--out naming a file (or a folder under one) was found only when the first split
    was written: after reading, balancing and splitting the whole tiny-codes file (the
    real one holds 1.6M rows)."""
    from routerllm.data import tiny_codes

    def read(*args: object) -> None:
        raise AssertionError("read the tiny-codes file before checking --out")

    monkeypatch.setattr(tiny_codes, "_read_rows", read)
    tiny = tiny_codes_file(tmp_path / "tc.jsonl", 20)
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    for out in (file, file / "data"):
        line = user_error("generate-data", "--tiny-codes", str(tiny), "--out", str(out))
        assert line == (
            f"error: --out {out}: {file} is a file, not a directory; choose another --out"
        )
    assert file.read_text() == "mine"


def test_generate_data_refuses_an_out_it_cannot_write_before_reading_tiny_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An --out nothing could be created in failed only when the first split was written
    (after reading the whole tiny-codes file), as "No such file or directory"."""
    from routerllm.data import tiny_codes
    from routerllm.data.synthetic import write_dataset
    from routerllm.exceptions import DataError

    def read(*args: object) -> None:
        raise AssertionError("read the tiny-codes file before checking --out")

    monkeypatch.setattr(tiny_codes, "_read_rows", read)
    tiny = tiny_codes_file(tmp_path / "tc.jsonl", 20)
    out = unwritable_folder() / "routerllm-test" / "data"
    for extra in (["--tiny-codes", str(tiny)], []):
        line = user_error("generate-data", *extra, "--out", str(out), "--n", "40")
        assert line == (
            f"error: --out {out}: nothing can be written in {unwritable_folder()} (No such file "
            "or directory); give a folder you can write to (nothing was written)"
        )
    with pytest.raises(DataError, match="nothing can be written in"):
        write_dataset(out, 40)


def test_humaneval_refuses_an_out_it_cannot_write_before_loading_problems(
    tiny_config_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It said "[Errno 2] No such file or directory", once the problems (and a --train-on
    run) had loaded."""
    from routerllm.eval import humaneval_plan

    def load(*args: object, **kwargs: object) -> None:
        raise AssertionError("loaded the problems before checking --out")

    monkeypatch.setattr(humaneval_plan, "load_code_problems", load)
    out = unwritable_folder() / "routerllm-test" / "run"
    line = user_error("humaneval", "--config", str(tiny_config_path), "--out",
                      str(out), "--systems", "direct-light", "--limit", "1")  # fmt: skip
    assert line.startswith(f"error: cannot write the results to {out}: nothing can be written")
    assert line.endswith("give a folder you can write to (nothing was run)")


def test_humaneval_out_under_a_file_names_the_file(tiny_config_path: Path, tmp_path: Path) -> None:
    """It said "[Errno 17] File exists" (or "[Errno 20] Not a directory")."""
    file = tmp_path / "results"
    file.write_text("mine")
    for out in (file, file / "run"):
        line = user_error("humaneval", "--config", str(tiny_config_path), "--out",
                          str(out), "--systems", "direct-light", "--limit", "1")  # fmt: skip
        assert line == f"error: cannot write the results to {out}: {file} is a file; give --out a folder"  # fmt: skip
    assert file.read_text() == "mine"


def test_a_run_given_as_a_file_or_holding_no_store_file_says_what_it_is(
    tiny_config_path: Path, tmp_path: Path
) -> None:
    """Until 2026-12-04 --run (and --train-on) given the run's results.sqlite itself, or
    a run whose results.sqlite is a folder, said "no results.sqlite there; make that run
    first (routerllm humaneval ... --out <that path>)": a new run over the user's file."""
    from routerllm.eval.transfer import load_training_run

    run = tmp_path / "run"
    run.mkdir()
    store = run / "results.sqlite"
    with contextlib.closing(sqlite3.connect(store)) as db:
        db.execute("CREATE TABLE generations (task_id TEXT)")
    before = store.read_bytes()
    train_gate = ["train-gate", "--config", str(tiny_config_path), "--out", str(tmp_path / "g")]
    line = user_error(*train_gate, "--run", str(store))
    assert line == (
        f"error: --run {store} is a file: give the folder of a routerllm humaneval run (the "
        f"--out it was given), here {run}"
    )
    with pytest.raises(RouterLLMError, match=r"^--train-on .* is a file: give the folder"):
        load_training_run(store, ["a", "b"], "a", set())
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    line = user_error(*train_gate, "--run", str(notes))
    assert line.endswith("is a file: give the folder of a routerllm humaneval run (the --out it was given)")  # fmt: skip
    assert store.read_bytes() == before and notes.read_text() == "mine"
    folder = tmp_path / "odd"
    (folder / "results.sqlite").mkdir(parents=True)
    line = user_error(*train_gate, "--run", str(folder))
    assert "results.sqlite is a directory" in line and "make that run first" not in line
    # --run where no run is: told to make it with --problems FILE, --train-on's hint (a
    # run on another problem set); a gate trains on a run of the packaged HumanEval
    missing = tmp_path / "none"
    line = user_error(*train_gate, "--run", str(missing))
    assert line == (
        f"error: --run {missing}: no results.sqlite there; make that run first "
        f"(routerllm humaneval --out {missing})"
    )
    assert not (tmp_path / "g").exists() and not missing.exists()


def test_generate_data_caps_a_tiny_codes_file_at_n(tmp_path: Path) -> None:
    """--n with --tiny-codes was ignored: every usable row was written (on the real
    1.6M-row file, a dataset of hundreds of MB where a few thousand were asked)."""
    tiny = tiny_codes_file(tmp_path / "tc.jsonl", 20)
    out = tmp_path / "out"
    argv = ["generate-data", "--tiny-codes", str(tiny), "--out", str(out)]
    assert main([*argv, "--n", "40"]) == 0
    capped = json.loads((out / "full.json").read_text())
    assert len(capped) == 39 and len({i["label"] for i in capped}) == 3  # 13 an audience
    assert usage_error(*argv, "--n", "2", "--overwrite").endswith(
        "argument --n: 2 is out of range: give a whole number >= 3"
    )
    assert main([*argv, "--overwrite"]) == 0
    assert len(json.loads((out / "full.json").read_text())) == 60


def test_a_loss_and_use_inter_intra_loss_together_are_refused(tmp_path: Path) -> None:
    """--loss focal --use-inter-intra-loss trained with inter_intra: the --loss asked
    for was dropped without a word."""
    data, out = str(labelled(tmp_path / "train.json")), tmp_path / "o"
    line = user_error("train", "--data", data, "--out", str(out), "--encoder",
                      "hashing", "--loss", "focal", "--use-inter-intra-loss")  # fmt: skip
    assert "--loss focal is given too" in line and not out.exists()


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("d.json", ["train", "--data", "{f}", "--out", "{tmp}/o", "--encoder", "hashing"]),
        ("d.json", ["eval-routing", "--data", "{f}", "--routers", "quality"]),
        ("d.json", ["test", "--router-type", "rules", "--data", "{f}"]),
        ("d.json", ["generate-data", "--tiny-codes", "{f}", "--out", "{tmp}/g"]),
        ("d.jsonl", ["generate-data", "--tiny-codes", "{f}", "--out", "{tmp}/g"]),
        ("p.json", ["humaneval", "--problems", "{f}", "--out", "{tmp}/he"]),
        ("p.jsonl", ["humaneval", "--problems", "{f}", "--out", "{tmp}/he"]),
    ],
)
def test_a_data_file_nested_too_deeply_is_one_clear_error(
    name: str, argv: list[str], tmp_path: Path
) -> None:
    """JSON nested deeper than Python's recursion limit (a corrupt or hostile file) was a
    RecursionError traceback from every command that reads a data file."""
    data = tmp_path / name
    data.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    line = user_error(*(a.format(f=data, tmp=tmp_path) for a in argv))
    assert str(data) in line and "nested too deeply" in line, line


def test_a_saved_router_config_nested_too_deeply_is_one_clear_error(tmp_path: Path) -> None:
    """A router folder whose config.json nests past Python's recursion limit was a
    RecursionError traceback, read as a router and when checked before a save over it."""
    folder = tmp_path / "router"
    folder.mkdir()
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    data = labelled(tmp_path / "d.json")
    line = user_error("test", "--router-model", str(folder), "--data", str(data))
    assert f"{folder}/config.json is corrupt: nested too deeply" in line, line
    line = user_error("train", "--data", str(data), "--out", str(folder), "--encoder", "hashing")  # fmt: skip
    assert "not a saved RouterLLM router" in line and "nothing was changed" in line, line


def test_generate_data_counts_tiny_codes_rows_without_a_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows with an empty prompt were left out without a word: rows_read did not add up
    to the rows kept, dropped and repeated."""
    tiny = tiny_codes_file(tmp_path / "tc.jsonl", 12)
    with tiny.open("a") as f:
        f.write(json.dumps({"prompt": "  ", "target_audience": "Experts"}) + "\n")
        f.write(json.dumps({"prompt": None, "target_audience": "Beginners"}) + "\n")
    assert main(["generate-data", "--tiny-codes", str(tiny), "--out", str(tmp_path / "o"),
                 "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert (out["rows_read"], out["without_prompt"], out["dropped"]) == (38, 2, 0)
    assert main(["generate-data", "--tiny-codes", str(tiny), "--out", str(tmp_path / "p")]) == 0
    assert "38 rows read: 2 without a prompt, 0 of other audiences, 0 repeats" in (
        capsys.readouterr().out
    )


def saved_classifier(folder: Path, num_classes: int, tiers: list[str] | None = None) -> Path:
    """A frozen-mode classifier of ``num_classes`` classes (hashing encoder) saved in ``folder``."""
    from routerllm.config import load_config
    from routerllm.data.labeled import LabeledPrompt
    from routerllm.routers.classifier import EmbeddingClassifierRouter
    from routerllm.training.trainer import TrainingArguments

    router = EmbeddingClassifierRouter(
        load_config(None).models, encoder="hashing", num_classes=num_classes, class_tiers=tiers
    )
    data = [LabeledPrompt(f"topic {c} prompt {i}", c) for c in range(num_classes) for i in range(3)]
    router.fit(data, (), TrainingArguments(epochs=1, warmup_steps=0, progress=False))
    router.save(folder)
    return folder


def test_testing_a_classifier_of_other_than_four_classes_scores_its_own_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A classifier of 6 classes (class_tiers given) was refused by `routerllm test` with
    "labels ['4', '5'] are not in the given labels" once it predicted class 4 or 5: the
    data's 4 classes were taken for all the router has. One of 2 classes is scored on the
    data's classes 2 and 3 too, with a note that it can never predict them."""
    data = labelled(tmp_path / "d.json")
    tiers = ["heavy", "medium", "medium", "light", "light", "heavy"]
    six = saved_classifier(tmp_path / "six", 6, tiers)
    assert main(["test", "--router-model", str(six), "--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["labels"]) <= set(range(6)) and report["notes"] == []
    assert set(report["labels"]) >= {0, 1, 2, 3}  # every class of the data is scored
    two = saved_classifier(tmp_path / "two", 2)
    assert main(["test", "--router-model", str(two), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "per class: 0: F1" in out and "2: F1 0.000  3: F1 0.000" in out
    assert (
        "note: the data's classes 2, 3 are not among the router's 2 classes (0-1): it can "
        "never predict them"
    ) in out


def test_test_says_what_its_latency_percentiles_are_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The latency line gave p50/p95/p99 without a word of how many prompts they are
    of (the first 200 at most; a p99 of 12 is about their slowest), nor that 3 untimed
    calls come first: the JSON's `n` was the only trace."""
    data = labelled(tmp_path / "d.json", n=12)
    assert main(["test", "--router-type", "rules", "--data", str(data)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("latency"))
    assert line.startswith(
        "latency per prompt (12 prompts routed one at a time, after 3 untimed calls): p50 "
    ), line
    many = labelled(tmp_path / "many.json", n=230)
    assert main(["test", "--router-type", "rules", "--data", str(many), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["latency_ms"]["n"] == 200 and report["latency_ms"]["warmup"] == 3


def test_a_plot_without_matplotlib_is_refused_before_the_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found only once every router was trained and evaluated: the figures were lost."""
    import routerllm.eval.outcome_eval as outcome_eval

    evaluated: list[object] = []
    real = outcome_eval.evaluate_routing
    monkeypatch.setattr(outcome_eval, "evaluate_routing",
                        lambda *a, **k: evaluated.append(a) or real(*a, **k))  # fmt: skip
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    data = write_json(tmp_path / "train.json", *make_rows(40, 0))
    line = user_error("eval-routing", "--data", str(data), "--encoder", "hashing",
                      "--plot", str(tmp_path / "c.png"))  # fmt: skip
    assert "--plot needs matplotlib, which is not installed" in line
    assert "pip install 'routerllm[learn]'" in line
    assert evaluated == [] and not (tmp_path / "c.png").exists()


def test_a_named_pipe_where_a_folder_goes_is_named_as_one(
    tiny_config_path: Path, tmp_path: Path
) -> None:
    """A named pipe given as a saved router said "cannot read a saved router: [Errno 20]
    Not a directory: '.../config.json'"; as a humaneval run, "no results.sqlite there;
    make that run first (routerllm humaneval ... --out <the pipe>)", a run that cannot
    be made there; as an --out, "is a file". Nothing opens it (that would wait for a
    writer)."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    data = labelled(tmp_path / "d.json")
    line = user_error("test", "--router-model", str(pipe), "--data", str(data))
    assert line == (
        f"error: {pipe} is a named pipe (FIFO): a saved router is the folder routerllm train "
        "saved it in (its --out), holding config.json"
    )
    config = ["--config", str(tiny_config_path)]
    line = user_error("train-gate", *config, "--run", str(pipe), "--out", str(tmp_path / "g"))  # fmt: skip
    assert line == (
        f"error: --run {pipe} is a named pipe (FIFO): give the folder of a routerllm humaneval "
        "run (the --out it was given)"
    )
    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    for argv, said in [
        (["train", "--router", "knn", "--data", str(outcomes), "--encoder", "hashing"],
         f"error: --out {pipe}: {pipe} is a named pipe (FIFO); give a folder for the router"),
        (["generate-data", "--n", "40"],
         f"error: --out {pipe}: {pipe} is a named pipe (FIFO), not a directory; choose another --out"),  # noqa: E501
        (["humaneval", *config, "--systems", "direct-light", "--limit", "1"],
         f"error: cannot write the results to {pipe}: {pipe} is a named pipe (FIFO); give --out a folder"),  # noqa: E501
        (["train-gate", *config, "--run", str(tmp_path / "run")],
         f"error: {pipe} is a named pipe (FIFO); save the gate to a directory"),
    ]:  # fmt: skip
        assert user_error(*argv, "--out", str(pipe)) == said
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.yaml", "d.json", "models.json", "outcomes.json", "pipe"
    ]  # fmt: skip


NEARLY_FULL_DISK = f"""
import sys
from routerllm.cli import main

# no file may grow past 4 KiB, as on a nearly full disk: a PNG of the curves cannot be written
{disk_full_past(4096)}
sys.exit(main(sys.argv[1:]))
"""


def test_a_plot_the_disk_has_no_room_for_is_said_naming_it(tmp_path: Path) -> None:
    """``eval-routing --plot PNG`` on a full disk said only "error: [Errno 28] No space
    left on device", naming no file, after the routers were trained and scored: which of
    the files did it mean? The line names the plot; no part of one is left."""
    data = write_json(tmp_path / "train.json", *make_rows(40, 0))
    png, before = tmp_path / "curves.png", sorted(tmp_path.iterdir())
    proc = subprocess.run(
        [sys.executable, "-c", NEARLY_FULL_DISK, "eval-routing", "--data", str(data),
         "--encoder", "hashing", "--routers", "quality", "--plot", str(png)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write the plot {png}: file too large"), last
    assert sorted(tmp_path.iterdir()) == before  # neither a plot nor a staged copy


def test_a_router_the_disk_has_no_room_for_is_said_in_words(tmp_path: Path) -> None:
    """``train --router knn --out DIR`` on a full disk said "cannot save the router to
    DIR: [Errno 27] File too large" (on a full one "[Errno 28] No space left on device"):
    Python's errno, where every other write that fails says the reason in words."""
    data = write_json(tmp_path / "train.json", *make_rows(40, 0))
    out = tmp_path / "router"
    proc = subprocess.run(
        [sys.executable, "-c", NEARLY_FULL_DISK, "train", "--router", "knn", "--data",
         str(data), "--encoder", "hashing", "--out", str(out)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"error: cannot save the router to {out}: file too large", last


def test_epochs_past_any_sensible_run_are_refused_before_the_data_is_read(
    tmp_path: Path,
) -> None:
    """``train --epochs 10000000000`` (a few zeros too many) was taken, and trained on:
    'about 289951:06:29 left' on 40 prompts, until Ctrl-C. Counted like --max-new-tokens:
    up to MAX_EPOCHS, in one line naming the option."""
    out = str(tmp_path / "o")
    for epochs in ("10001", "10000000000"):
        line = usage_error("train", "--data", str(tmp_path / "none"), "--out", out, "--epochs", epochs)  # fmt: skip
        assert (
            line
            == f"routerllm train: error: argument --epochs: {epochs} is out of range: give 1 to 10,000"
        )
    assert not (tmp_path / "o").exists()
