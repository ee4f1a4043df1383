"""A new user's first mistakes with ``routerllm``: a misspelt command or option, a
prompt of several words unquoted, Ctrl-C while ``route`` answers. Each gets one line
that names what to fix (after argparse's usage line, status 2), and nothing paid for
is lost."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends.llama_cpp import LlamaCppBackend
from routerllm.carbon.request_log import RequestLog

from .conftest import cli_in_process, tiny_config_dict, write_config
from .test_cli import assert_usage_error
from .test_openai_http import completion_reply, http_model_dict, serving_stub


def usage_error(*argv: str) -> tuple[str, str]:
    """The usage line's command (``routerllm route``) and the error line of ``argv``."""
    run = cli_in_process(*argv)
    assert_usage_error(run)
    lines = run.stderr.strip().splitlines()
    return lines[0].split(" [")[0].removeprefix("usage: "), lines[-1]


def test_a_misspelt_command_is_offered_the_one_meant() -> None:
    # "invalid choice: 'rout' (choose from 'demo', 'route', ...)": eleven names to read
    _, line = usage_error("rout", "hello")
    assert "invalid choice: 'rout'" in line and line.endswith("did you mean 'route'?"), line
    _, line = usage_error("plot")  # nothing close: the list alone
    assert "did you mean" not in line and "(choose from" in line, line


def test_a_misspelt_option_is_said_by_its_command_with_the_one_meant(tmp_path: Path) -> None:
    # "routerllm: error: unrecognized arguments: --confg ...", after the top-level usage
    # (which lists the commands, not route's options)
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    command, line = usage_error("route", "hello", "--confg", str(cfg))
    assert command == "routerllm route", command
    assert line.startswith("routerllm route: error: unrecognized arguments: --confg"), line
    assert line.endswith("(did you mean --config?)"), line  # its value no prompt's word
    command, line = usage_error("report", "--since=2026-01-01", "--tags", "demo")
    assert command == "routerllm report" and "did you mean --tag?" in line, line
    assert not (tmp_path / "requests.sqlite").exists()


def test_an_option_after_the_double_dash_is_told_to_go_before_it(tmp_path: Path) -> None:
    # after '--' every word is the prompt's: "--config" was offered "did you mean --config?"
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    _, line = usage_error("route", "--", "-v or --verbose?", "--config", str(cfg))
    assert "did you mean" not in line, line
    assert line.endswith(
        "options go before '--': routerllm route [options] -- PROMPT (--config given after it)"
    ), line
    assert not (tmp_path / "requests.sqlite").exists()


def test_a_prompt_of_several_words_unquoted_is_told_to_quote_it(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    _, line = usage_error("route", "What", "is", "a", "list?", "--config", str(cfg))
    assert "unrecognized arguments: is a list?" in line, line
    assert 'a prompt of several words goes in quotes: routerllm route "What is ..."' in line
    assert not (tmp_path / "requests.sqlite").exists()
    _, line = usage_error("models", "extra")  # no prompt to quote
    assert line.endswith("unrecognized arguments: extra"), line


def _press_ctrl_c(monkeypatch: pytest.MonkeyPatch, times: int) -> list[bool]:
    """Ctrl-C (a real SIGINT) ``times`` times as the answer begins."""
    real, pressed = LlamaCppBackend._completion, []

    def completion(self: LlamaCppBackend, *args: Any, **kwargs: Any) -> Any:
        if not pressed:
            pressed.append(True)
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LlamaCppBackend, "_completion", completion)
    return pressed


def test_ctrl_c_during_routes_answer_keeps_the_answer_so_far_and_its_energy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while ``route`` generated ended it, the answer and the energy it had used
    lost (not logged), saying "completed requests are in the log" of a log without it.
    Now it stops the answer between two tokens, as in ``demo --interactive``: what it
    wrote is printed and logged as cancelled, with its energy; status 130."""
    pressed = _press_ctrl_c(monkeypatch, times=1)
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    run = cli_in_process("route", "hello there", "--config", str(cfg), "--max-new-tokens", "40")
    assert run.returncode == 130 and pressed
    assert run.stderr.strip().splitlines() == [
        "interrupted: the answer so far is printed above and logged as cancelled, with the "
        "energy it used"
    ]
    assert "tiny-light" in run.stdout and "(stopped by Ctrl-C" in run.stdout
    with RequestLog(tmp_path / "requests.sqlite", read_only=True) as log:
        rows = list(log.records())
    assert [r.finish_reason for r in rows] == ["cancelled"]
    assert rows[0].completion_tokens < 40 and rows[0].components["llm_inference"].energy_kwh > 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_ctrl_c_twice_during_routes_answer_says_nothing_was_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a second Ctrl-C ends the command at once: it said "completed requests are in the
    # log", and there were none
    _press_ctrl_c(monkeypatch, times=2)
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    run = cli_in_process("route", "hello", "--config", str(cfg), "--max-new-tokens", "40")
    assert run.returncode == 130
    assert run.stderr.strip().splitlines() == [
        "interrupted before the answer was logged: nothing was kept; rerun the command"
    ]
    with RequestLog(tmp_path / "requests.sqlite", read_only=True) as log:
        assert log.count() == 0


def test_ctrl_c_during_routes_remote_answer_stops_it_at_once(tmp_path: Path) -> None:
    """Ctrl-C while ``route`` waited on an ``openai_http`` model's answer (unstreamed:
    ``route`` prints it whole) went unheeded until the endpoint answered, up to its
    ``timeout_s`` (a second Ctrl-C the only way out). Now the first one closes the
    connection at once: the answer logged as cancelled, no text, status 130."""
    with serving_stub() as stub:
        stub.default_post = dataclasses.replace(completion_reply("whole"), delay_s=5.0)
        models = [http_model_dict("remote", stub.base_url)]
        cfg = write_config(tmp_path, tiny_config_dict(tmp_path, models=models, carbon={"enabled": False}))  # fmt: skip
        when: list[float] = []

        def press() -> None:  # as a terminal sends it: to the process, its main thread
            when.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(0.5, press)
        timer.start()
        run = cli_in_process("route", "hello there", "--model", "remote", "--config", str(cfg))
        took = time.monotonic() - when[0]
        timer.join()
    assert took < 1.0, f"{took:.2f} s from Ctrl-C to the end"
    assert run.returncode == 130, (run.stdout, run.stderr)
    assert "(stopped by Ctrl-C" in run.stdout and len(stub.posts) == 1
    with RequestLog(tmp_path / "requests.sqlite", read_only=True) as log:
        rows = list(log.records())
    assert [(r.model, r.finish_reason) for r in rows] == [("remote", "cancelled")]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_models_says_where_an_endpoint_does_not_list_the_model_id(tmp_path: Path) -> None:
    """A model_id the endpoint does not serve (vLLM serving
    ``Qwen/Qwen2.5-Coder-7B-Instruct``, the config saying ``qwen-coder``) was listed
    ``yes`` by ``routerllm models``, and every request naming it got vLLM's 404 "The
    model `qwen-coder` does not exist."; it is still available (TGI answers any model
    name, a proxy may route names it does not list), with the ids its /models lists.
    Ollama lists a name without a tag as ``:latest``; an endpoint listing none, or
    without /models, says nothing."""
    import json

    from .test_openai_http import json_reply

    listed = ["Qwen/Qwen2.5-Coder-7B-Instruct", "llama3:latest"]
    with serving_stub() as stub:
        stub.models_reply = json_reply(200, {"object": "list", "data": [{"id": i, "object": "model"} for i in listed]})  # fmt: skip
        models = [
            http_model_dict("right", stub.base_url, model_id=listed[0], params_b=1.0),
            http_model_dict("ollama", stub.base_url, model_id="llama3", params_b=2.0),
            http_model_dict("wrong", stub.base_url, model_id="qwen-coder", params_b=3.0),
        ]
        cfg = str(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        table = cli_in_process("models", "--config", cfg)
        rows = json.loads(cli_in_process("models", "--config", cfg, "--json").stdout)["models"]
        stub.models_reply = json_reply(200, {"object": "list", "data": []})
        none_listed = cli_in_process("models", "--config", cfg)
    assert table.returncode == 0, table.stderr
    lines = {line.split()[0]: line for line in table.stdout.splitlines()[2:5]}
    assert lines["right"].endswith("  yes") and lines["ollama"].endswith("  yes"), lines
    assert lines["wrong"].endswith(
        "  yes (its endpoint's /models does not list model_id 'qwen-coder'; it lists "
        "Qwen/Qwen2.5-Coder-7B-Instruct, llama3:latest: check model_id)"
    ), lines["wrong"]
    assert {r["name"]: r["endpoint_lists_model"] for r in rows} == {"right": True, "ollama": True, "wrong": False}  # fmt: skip
    assert all(r["available"] for r in rows)
    assert none_listed.returncode == 0 and "does not list" not in none_listed.stdout
