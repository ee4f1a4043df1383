"""`routerllm demo --interactive` and `route -` typed at a real terminal (a
pseudo-terminal): what its line discipline does to a line (Ctrl-D mid-line, a line
longer than it holds)."""

from __future__ import annotations

import os
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from routerllm.carbon.request_log import RequestLog

from .conftest import tiny_config_dict, write_config

DEMO = ("demo", "--interactive")


def typed_at_a_terminal(
    tmp_path: Path, typed: bytes, command: tuple[str, ...] = DEMO
) -> tuple[int, str, str]:
    """The command's status, stdout and stderr, its stdin a terminal where ``typed``
    was typed (not echoed: nothing reads the echo)."""
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    terminal, stdin = os.openpty()
    mode = termios.tcgetattr(stdin)
    mode[3] &= ~termios.ECHO
    termios.tcsetattr(stdin, termios.TCSANOW, mode)
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", *command, "--config", str(cfg),
         "--max-new-tokens", "3"],  # fmt: skip
        stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(stdin)
    try:
        os.write(terminal, typed)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"the session did not end: {out!r} {err!r}")
    finally:
        os.close(terminal)
    return process.returncode, out, err


def logged_prompt_chars(tmp_path: Path) -> list[int]:
    with RequestLog(tmp_path / "requests.sqlite", read_only=True) as log:
        return [r.prompt_chars for r in log.records()]


def test_ctrl_d_typed_mid_line_asks_that_line_and_ends_the_session(tmp_path: Path) -> None:
    # "hello there", then Ctrl-D twice (a terminal's first sends the line without its
    # newline): the answer was printed on the typed line, and the session asked for
    # another prompt, ended only by a third Ctrl-D
    status, out, err = typed_at_a_terminal(tmp_path, b"hello there\x04\x04")
    assert status == 0 and "Traceback" not in err, err
    assert "Ctrl-D ends\n> \n" in out and "[1] light  tiny-light" in out, out
    assert out.count("\n> ") == 1 and "Summary of the session\nrequests 1 " in out, out
    assert logged_prompt_chars(tmp_path) == [len("hello there")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's terminal line size")
def test_a_line_longer_than_the_terminal_holds_is_refused_not_asked_cut_short(
    tmp_path: Path,
) -> None:
    # a terminal passes on at most 4,095 bytes of a line and drops the rest: a longer
    # prompt pasted was asked cut short, as if it were the whole prompt
    pasted = b"word " * 1000 + b"\n"
    status, out, err = typed_at_a_terminal(tmp_path, pasted + b"hello there\n\x04")
    assert status == 0 and "Traceback" not in err, err
    assert "error: the line is 4,095 bytes, as many as a terminal passes on" in out, out
    assert "routerllm route - < FILE" in out and "[1] light  tiny-light" in out, out
    assert logged_prompt_chars(tmp_path) == [len("hello there")]  # the cut one not asked


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's terminal line size")
def test_route_refuses_a_prompt_the_terminal_cut_short(tmp_path: Path) -> None:
    # `routerllm route -` with a long line pasted, then Ctrl-D: answered cut short
    status, out, err = typed_at_a_terminal(
        tmp_path, b"first line\n" + b"word " * 1000 + b"\n\x04", ("route", "-")
    )
    assert status == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("error: line 2 is 4,095 bytes, as many as a terminal passes on"), err
    assert not (tmp_path / "requests.sqlite").exists()
    # a prompt of lines within the terminal's is asked whole
    status, out, err = typed_at_a_terminal(tmp_path, b"hello\nthere\n\x04", ("route", "-"))
    assert status == 0 and "[1] " in out, err
    assert logged_prompt_chars(tmp_path) == [len("hello\nthere\n")]


def _blocked_writing_stdout(pid: int) -> bool:
    """Whether a thread of process ``pid`` waits in ``write(1, ...)``: its stdout (a
    terminal whose output is stopped, as by Ctrl-S) takes no more."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            call = (task / "syscall").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        if call[:2] == ["1", "0x1"]:  # x86-64's write, on fd 1
            return True
    return False


def _read_until(terminal: int, out: bytearray, end: bytes, timeout: float = 60) -> None:
    import select
    import time

    deadline = time.monotonic() + timeout
    while end not in out:
        if not select.select([terminal], [], [], max(deadline - time.monotonic(), 0))[0]:
            pytest.fail(f"no {end!r} in the terminal's output: {bytes(out)!r}")
        try:
            out += os.read(terminal, 65536)
        except OSError:  # EIO: the process closed the terminal
            pytest.fail(f"the terminal closed before {end!r}: {bytes(out)!r}")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
    reason="Linux's /proc/PID/task/*/syscall, x86-64's write",
)
def test_an_answer_on_a_terminal_is_shown_as_it_is_generated_and_once(tmp_path: Path) -> None:
    # the session's stdin and stdout a terminal, as typed at one; its output stopped (as
    # Ctrl-S stops it) before the prompt is typed: the session's first write after it
    # waits there. Streamed, that is the answer's first piece, while it is generated,
    # before it is logged; printed whole at the end, it came after the answer was logged
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    terminal, tty = os.openpty()
    mode = termios.tcgetattr(tty)
    mode[3] &= ~termios.ECHO
    mode[1] &= ~termios.ONLCR  # its newlines as written, not as CR LF
    termios.tcsetattr(tty, termios.TCSANOW, mode)
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", *DEMO, "--config", str(cfg),
         "--max-new-tokens", "12"],  # fmt: skip
        stdin=tty, stdout=tty, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out = bytearray()
    try:
        _read_until(terminal, out, b"\n> ")
        termios.tcflow(tty, termios.TCOOFF)
        os.write(terminal, b"hello there\n")
        import time

        deadline = time.monotonic() + 60
        while not _blocked_writing_stdout(process.pid):
            assert process.poll() is None and time.monotonic() < deadline, bytes(out)
            time.sleep(0.05)
        logged_while_shown = len(logged_prompt_chars(tmp_path)) if (tmp_path / "requests.sqlite").exists() else 0  # fmt: skip
        termios.tcflow(tty, termios.TCOON)
        _read_until(terminal, out, b"\n> ")
        os.write(terminal, b"\x04")
        _read_until(terminal, out, b"Summary of the session\n")
        _, err = process.communicate(timeout=30)
        os.close(tty)  # the terminal's last user: its end read as EIO
        tty = -1
        try:
            while chunk := os.read(terminal, 65536):
                out += chunk
        except OSError:  # EIO: all of it read
            pass
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        if tty >= 0:
            os.close(tty)
        os.close(terminal)
    text = out.decode()
    assert process.returncode == 0 and "Traceback" not in err, err
    assert logged_while_shown == 0, "the answer was shown only once it was logged"
    # the answer, then the figures as printed when not on a terminal, the answer once
    answer = text.split("Ctrl-D ends\n> ", 1)[1].split("\n\n[1] light  tiny-light ", 1)[0]
    assert answer.strip() and answer == answer.strip(), text
    assert text.count(answer) == 1 and "\n     why: " in text, text
    assert logged_prompt_chars(tmp_path) == [len("hello there")]


def test_an_answer_streamed_to_a_terminal_is_stripped_and_its_control_characters_escaped() -> None:
    # pieces as a model gives them: blank ones first, a terminal escape sequence (clear the
    # screen) split across two, a bidirectional override, whitespace at a piece's end that
    # is inside the answer and whitespace at the answer's end
    from routerllm.route_cli import TerminalText

    written: list[str] = []
    shown = TerminalText(written.append)
    for piece in ["\n ", " \t", "\x1b", "[2Jhello ", " ", "\u202eworld\r\n", "\tend", " \n", "\n"]:
        shown(piece)
    shown.end()
    assert "".join(written) == "\\x1b[2Jhello  \\u202eworld\\r\n\tend"
    assert shown.shown  # something was written
    empty = TerminalText(written.append)
    empty(" \n")
    empty.end()
    assert not empty.shown
