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
