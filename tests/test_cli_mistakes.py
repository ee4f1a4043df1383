"""A new user's first mistakes with ``routerllm``: a misspelt command or option, a
prompt of several words unquoted. Each gets one line that names what to fix (after
argparse's usage line, status 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from routerllm.cli import main

from .conftest import tiny_config_dict, write_config


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """The usage line's command (``routerllm route``) and the error line of ``argv``."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage: "), err
    return lines[0].split(" [")[0].removeprefix("usage: "), lines[-1]


def test_a_misspelt_command_is_offered_the_one_meant(capsys: pytest.CaptureFixture[str]) -> None:
    # "invalid choice: 'rout' (choose from 'demo', 'route', ...)": eleven names to read
    _, line = usage_error(["rout", "hello"], capsys)
    assert "invalid choice: 'rout'" in line and line.endswith("did you mean 'route'?"), line
    _, line = usage_error(["plot"], capsys)  # nothing close: the list alone
    assert "did you mean" not in line and "(choose from" in line, line


def test_a_misspelt_option_is_said_by_its_command_with_the_one_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "routerllm: error: unrecognized arguments: --confg ...", after the top-level usage
    # (which lists the commands, not route's options)
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    command, line = usage_error(["route", "hello", "--confg", str(cfg)], capsys)
    assert command == "routerllm route", command
    assert line.startswith("routerllm route: error: unrecognized arguments: --confg"), line
    assert line.endswith("(did you mean --config?)"), line  # its value no prompt's word
    command, line = usage_error(["report", "--since=2026-01-01", "--tags", "demo"], capsys)
    assert command == "routerllm report" and "did you mean --tag?" in line, line
    assert not (tmp_path / "requests.sqlite").exists()


def test_a_prompt_of_several_words_unquoted_is_told_to_quote_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    _, line = usage_error(["route", "What", "is", "a", "list?", "--config", str(cfg)], capsys)
    assert "unrecognized arguments: is a list?" in line, line
    assert 'a prompt of several words goes in quotes: routerllm route "What is ..."' in line
    assert not (tmp_path / "requests.sqlite").exists()
    _, line = usage_error(["models", "extra"], capsys)  # no prompt to quote
    assert line.endswith("unrecognized arguments: extra"), line
