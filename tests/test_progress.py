"""Progress as a user sees it: bars where stderr is a terminal (a pseudo-terminal
here), plain lines where it is a file (CI logs, ``2> run.log``), and
``ROUTERLLM_PROGRESS`` to force either, or none."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from routerllm.exceptions import RouterLLMError
from routerllm.progress import PlainProgress, progress, progress_style

from .conftest import cli_in_process, tiny_config_dict, write_config

REDRAWS = re.compile(r"\r(?!\n)|\x1b\[")  # a carriage return that is not a line end, a cursor move


def at_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """The command run in a process of its own, its stderr a pseudo-terminal (100
    columns) that changes nothing written to it (no "\\n" -> "\\r\\n"), so each "\\r" is
    the bar's, and ``ROUTERLLM_PROGRESS`` unset: the style a process picks for the
    terminal it was given (its status, stdout and stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "ROUTERLLM_PROGRESS"}
    command = [sys.executable, "-m", "routerllm.cli", *argv]
    with terminal_read() as (writer, written):
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=writer, env=env)
        os.close(writer)
        out, _ = process.communicate(timeout=120)
    return process.returncode, out.decode(), written()


@contextlib.contextmanager
def terminal_read() -> Iterator[tuple[int, Callable[[], str]]]:
    """A pseudo-terminal (100 columns) that changes nothing written to it: its writing
    end (a file descriptor, for the block to close), and what was written to it, read as
    it is written (a full terminal would block the command), once the block is done."""
    reader, writer = os.openpty()
    mode = termios.tcgetattr(writer)
    mode[1] &= ~termios.OPOST
    termios.tcsetattr(writer, termios.TCSANOW, mode)
    fcntl.ioctl(
        writer, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0)
    )  # 0x0: tqdm draws nothing
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(reader, 65536)
            except OSError:  # EIO: the writing end is closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        yield writer, lambda: b"".join(chunks).decode()
    except BaseException:
        with contextlib.suppress(OSError):  # where the block had not closed it yet
            os.close(writer)
        raise
    finally:
        thread.join(timeout=10)
        os.close(reader)


def in_process_to_a_file(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str | None = None
) -> tuple[int, str, str]:
    """The command run in this process (``cli_in_process``, stderr a file, as
    ``2> run.log`` gives a process): the style is chosen from ``ROUTERLLM_PROGRESS`` and
    whether stderr is a terminal, which a file is not, in a process or here; without the
    2-5 s of CPU a process spends importing the config, CodeCarbon and torch again."""
    if style is None:
        monkeypatch.delenv("ROUTERLLM_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("ROUTERLLM_PROGRESS", style)
    with open(tmp_path / "stderr.log", "w", encoding="utf-8", newline="") as err:
        done = cli_in_process(*argv, stderr=err)
    return done.returncode, done.stdout, (tmp_path / "stderr.log").read_bytes().decode()


def in_process_at_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """``at_a_terminal`` in this process (``cli_in_process``, stderr the
    pseudo-terminal): for a style forced by ``ROUTERLLM_PROGRESS``, which reads nothing
    of the process but its stderr, without the 5 s of CPU a process spends importing
    torch again."""
    with (
        terminal_read() as (writer, written),
        open(writer, "w", encoding="utf-8", newline="") as terminal,  # closes it
    ):
        done = cli_in_process(*argv, stderr=terminal)
    return done.returncode, done.stdout, written()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "synthetic"
    done = cli_in_process("generate-data", "--out", str(out), "--n", "120", "--seed", "3", "--json")
    assert done.returncode == 0, done.stderr
    return out


def train(dataset: Path, out: Path) -> list[str]:
    return ["train", "--data", str(dataset), "--out", str(out), "--encoder",
            "hashing", "--batch-size", "8", "--epochs", "2"]  # fmt: skip


def test_training_logged_to_a_file_writes_lines_not_redrawn_bars(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `train 2> run.log` once wrote tqdm's redraws into the log: a "\r" and a cursor-up
    # escape for each of the nested bars' updates, hundreds of lines in a short run
    status, out, err = in_process_to_a_file(train(dataset, tmp_path / "clf"), tmp_path, monkeypatch)  # fmt: skip
    assert status == 0 and "epochs_run: [1, 2]" in out, err
    assert not REDRAWS.search(err), repr(err)
    lines = err.splitlines()
    # the start, then one line an epoch (each is half the run), with the epoch's figures;
    # none for the batches of an epoch, done in under a minute
    assert len(lines) == 3, lines
    assert lines[0] == "epochs: 0/2 (0%), 0:00 elapsed", lines
    assert re.fullmatch(r"epochs: 1/2 \(50%\), \S+ elapsed, \S+ (it/s|s/it), about \S+ left, "
                        r"val_acc=\S+, loss=\S+", lines[1]), lines  # fmt: skip
    assert re.fullmatch(r"epochs: 2/2 \(100%\), \S+ elapsed, \S+ (it/s|s/it), val_acc=\S+, "
                        r"loss=\S+", lines[2]), lines  # fmt: skip


def test_training_at_a_terminal_keeps_its_nested_bars(dataset: Path, tmp_path: Path) -> None:
    status, out, err = at_a_terminal(train(dataset, tmp_path / "clf"))
    assert status == 0 and "epochs_run: [1, 2]" in out, err
    assert "\r" in err and "\x1b[A" in err, repr(
        err
    )  # redrawn in place, the batches' under the epochs'
    assert "epoch 1/2:" in err and "epochs: 100%" in err


def test_progress_style_forced_either_way_or_off(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # in this process, stderr a pseudo-terminal or not, without 5 s of CPU importing
    # torch again each (a style forced reads nothing of the process but its stderr)
    monkeypatch.setenv("ROUTERLLM_PROGRESS", "bars")
    bars = cli_in_process(*train(dataset, tmp_path / "a")).stderr
    assert "\r" in bars and "epochs: 100%" in bars
    monkeypatch.setenv("ROUTERLLM_PROGRESS", "lines")
    status, _, lines = in_process_at_a_terminal(train(dataset, tmp_path / "b"))
    assert status == 0 and not REDRAWS.search(lines) and "epochs: 2/2 (100%)" in lines, repr(lines)
    monkeypatch.setenv("ROUTERLLM_PROGRESS", "off")
    done = cli_in_process(*train(dataset, tmp_path / "c"))
    assert done.returncode == 0 and "epochs_run: [1, 2]" in done.stdout, done.stderr
    assert done.stderr == "", repr(done.stderr)


def test_an_unknown_progress_style_is_one_line_error_before_anything_runs(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = in_process_to_a_file(
        train(dataset, tmp_path / "clf"), tmp_path, monkeypatch, style="tty"
    )
    assert status == 2 and out == ""
    assert err == ("error: ROUTERLLM_PROGRESS='tty' is not a progress style; use one of auto "
                   "(bars where stderr is a terminal, lines elsewhere), bars, lines, off\n")  # fmt: skip
    assert not (tmp_path / "clf").exists()


def test_humaneval_logged_to_a_file_writes_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    argv = ["humaneval", "--config", str(cfg), "--out", str(tmp_path / "he"), "--limit", "3",
            "--systems", "direct-light", "--max-new-tokens", "8"]  # fmt: skip
    status, _, err = in_process_to_a_file(argv, tmp_path, monkeypatch)
    assert status == 0 and not REDRAWS.search(err), repr(err)
    lines = [line for line in err.splitlines() if line.startswith("HumanEval generations")]
    # said as it starts, before the model loads: a slow load was minutes of an empty log
    assert lines[0] == "HumanEval generations: 0/3 (0%), 0:00 elapsed, model=tiny-light", err
    assert [line.split(",")[0] for line in lines] == [
        "HumanEval generations: 0/3 (0%)",
        "HumanEval generations: 1/3 (33%)",
        "HumanEval generations: 2/3 (67%)",
        "HumanEval generations: 3/3 (100%)",
    ], err


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_figures_steps_and_interval() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = PlainProgress(total=40, desc="gens", unit="gen", stream=stream, clock=clock,
                        interval=60.0)  # fmt: skip
    clock.now += 10
    bar.update(2)  # 5%: not a new tenth, 10 s after the start: nothing
    clock.now += 10
    bar.update(2)  # 10% in 20 s: 0.2 gen/s, 36 left: 180 s
    clock.now += 70
    bar.update(1)  # 12.5%: a minute since the last line
    clock.now += 5
    bar.set_postfix(loss=0.25)
    bar.update(1)  # 15%, 5 s later: nothing
    bar.close()  # the last figures, once
    bar.close()
    assert stream.getvalue().splitlines() == [
        "gens: 0/40 (0%), 0:00 elapsed",  # as it starts
        "gens: 4/40 (10%), 0:20 elapsed, 5.00 s/gen, about 3:00 left",
        "gens: 5/40 (12%), 1:30 elapsed, 18.00 s/gen, about 10:30 left",
        "gens: 6/40 (15%), 1:35 elapsed, 15.83 s/gen, about 8:58 left, loss=0.25",
    ]


def test_plain_lines_of_an_inner_bar_only_each_interval_and_resumed_rates() -> None:
    stream, clock = io.StringIO(), Clock()
    inner = PlainProgress(total=10, desc="epoch 1/2", stream=stream, clock=clock, leave=False)
    for _ in range(10):
        clock.now += 7
        inner.update(1)  # a line at 63 s (60 s since the start), not at each tenth
    inner.close()  # left: no closing line
    # resumed after 3 of 5 epochs: the rate is of this run's epochs alone
    outer = PlainProgress(total=5, desc="epochs", stream=stream, clock=clock, initial=3)
    clock.now += 3600
    outer.update(1)
    outer.close()
    assert stream.getvalue().splitlines() == [
        "epoch 1/2: 9/10 (90%), 1:03 elapsed, 7.00 s/it, about 0:07 left",
        "epochs: 3/5 (60%), 0:00 elapsed",  # where it resumed
        "epochs: 4/5 (80%), 1:00:00 elapsed, 3600.00 s/it, about 1:00:00 left",
    ]


def _timers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("routerllm progress")]


def _said(stream: io.StringIO, lines: int) -> list[str]:
    """``stream``'s lines once it holds ``lines`` of them: the timer's thread writes
    them, waited for (up to 30 s), not slept on: a sleep of 3.5 intervals then a look
    fails where a loaded machine has not run that thread meanwhile."""
    deadline = time.monotonic() + 30
    while len(stream.getvalue().splitlines()) < lines and time.monotonic() < deadline:
        time.sleep(0.01)
    return stream.getvalue().splitlines()


def test_plain_lines_say_the_start_and_each_interval_of_a_long_step() -> None:
    # `humaneval 2> run.log` wrote nothing until its first generation ended: a model
    # loading for minutes, a resumed run's, left an empty log; a step longer than a
    # minute wrote nothing either, though a line "at least once a minute" was promised.
    # The bar's clock is the test's (the timer waits in real time): the figures do not
    # hang on how soon a loaded machine runs the timer, or wakes the test from a sleep
    stream, clock = io.StringIO(), Clock()
    bar = PlainProgress(total=2, desc="gens", unit="gen", stream=stream, interval=0.2,
                        clock=clock, postfix={"model": "tiny-light"})  # fmt: skip
    start = "gens: 0/2 (0%), 0:00 elapsed, model=tiny-light"
    assert stream.getvalue() == start + "\n"
    for said, seconds in ((2, 0.5), (3, 0.7)):  # a slow step (a model loading): the
        clock.now += seconds  # current line each interval
        assert len(_said(stream, said)) == said, stream.getvalue()
    assert stream.getvalue().splitlines() == [
        start,
        "gens: 0/2 (0%), 0:00 elapsed, model=tiny-light",
        "gens: 0/2 (0%), 0:01 elapsed, model=tiny-light",
    ]
    bar.update(1)  # 50%: a further tenth
    assert stream.getvalue().splitlines()[3:] == [
        "gens: 1/2 (50%), 0:01 elapsed, 1.20 s/gen, about 0:01 left, model=tiny-light"
    ]
    bar.close()
    ended = stream.getvalue()
    assert not _timers()  # stopped as it closes
    clock.now += 60
    time.sleep(0.5)
    assert stream.getvalue() == ended  # nothing after the run's end


def test_a_run_left_by_ctrl_c_stops_saying_its_lines() -> None:
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        for _ in PlainProgress(range(3), desc="gens", total=3, stream=stream, interval=0.1):
            raise KeyboardInterrupt
    assert not _timers()
    ended = stream.getvalue()
    time.sleep(0.3)
    assert stream.getvalue() == ended == "gens: 0/3 (0%), 0:00 elapsed\n"
    # an inner bar says no start, only the interval's line
    clock = Clock()
    inner = PlainProgress(total=3, desc="epoch 1/2", stream=stream, interval=0.1, leave=False,
                          clock=clock)  # fmt: skip
    clock.now += 0.35
    _said(stream, 2)
    inner.close()
    assert stream.getvalue().splitlines()[1:] == ["epoch 1/2: 0/3 (0%), 0:00 elapsed"]


def test_progress_style_and_what_it_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTERLLM_PROGRESS", " Lines ")
    assert progress_style() == "lines"
    assert isinstance(progress(total=3, desc="x"), PlainProgress)
    items = progress(range(3), desc="x", enabled=False)
    assert list(items) == [0, 1, 2]  # off: the items all the same, nothing said
    monkeypatch.setenv("ROUTERLLM_PROGRESS", "off")
    assert list(progress(range(2), desc="x")) == [0, 1]
    monkeypatch.setenv("ROUTERLLM_PROGRESS", "")
    assert progress_style() == "auto"
    monkeypatch.setenv("ROUTERLLM_PROGRESS", "fancy")
    with pytest.raises(RouterLLMError, match="ROUTERLLM_PROGRESS='fancy' is not a progress"):
        progress(total=1, desc="x")


def test_a_bar_dropped_unclosed_ends_its_timer_at_once() -> None:
    """Its timer ended with it only at its next minute's line: a thread a bar dropped by an
    error (an inner loop left), for up to a minute (2026-12-06)."""
    bar = PlainProgress(total=3, desc="dropped", stream=io.StringIO())
    timer = bar._timer
    assert timer.is_alive()
    del bar
    timer.join(2)
    assert not timer.is_alive()
