"""A warning a loop repeats (once per cross-validation fold) is said once, with its count."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from routerllm.cli import main
from routerllm.log_repeats import warnings_once


def test_a_repeated_warning_is_said_once_at_the_end_with_its_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("routerllm.test_log_repeats")
    caplog.set_level(logging.INFO)
    with warnings_once("in the folds of system 'knn'"):
        for fold in range(4):
            log.warning("router %r is trained on a single prompt", "knn")
            log.warning("fold %d did worse than a fixed mix", fold)
            log.info("fold %d done", fold)
        log.warning("said once")
        assert [r.getMessage() for r in caplog.records] == [f"fold {f} done" for f in range(4)]
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records[4:]] == [
        (log.name, "WARNING", "router 'knn' is trained on a single prompt "
                              "[4 times in the folds of system 'knn']"),
        (log.name, "WARNING", "fold 0 did worse than a fixed mix "
                              "[4 times in the folds of system 'knn', the first shown]"),
        (log.name, "WARNING", "said once"),
    ]  # fmt: skip
    log.warning("after the block")  # said as it comes again
    assert caplog.records[-1].getMessage() == "after the block"


def test_warnings_held_back_are_said_when_the_block_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("routerllm.test_log_repeats")
    with pytest.raises(KeyboardInterrupt), warnings_once("in the folds"):
        log.warning("kept")
        log.warning("kept")
        raise KeyboardInterrupt
    assert [r.getMessage() for r in caplog.records] == ["kept [2 times in the folds]"]


def test_humaneval_says_a_fold_router_warning_once_per_system(
    tiny_config_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Two problems, five folds: every fold's router is trained on one problem, and its
    warning came once per fold and once per inner fold, 20 lines for four systems."""
    from .conftest import no_block_read_as_contended

    no_block_read_as_contended(monkeypatch)  # its warnings are counted
    argv = ["humaneval", "--config", str(tiny_config_path), "--out", str(tmp_path / "he"),
            "--limit", "2", "--systems", "direct-light,logreg,knn", "--max-new-tokens", "2",
            "--mode", "complete", "--encoder", "hashing", "--json"]  # fmt: skip
    assert main(argv) == 0
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 4, said
    for name, message in zip(["logreg", "knn"], said[::2], strict=True):
        assert message.startswith(f"router {name!r} is trained on a single prompt")
        assert message.endswith(f" [4 times in the folds of system {name!r}]")
    # its calibration, on one held-out prompt, falls back to the fixed mix (M3.9): said
    # once per system too, with its count (an outer fold's calibration has 1 prompt)
    for name, message in zip(["logreg", "knn"], said[1::2], strict=True):
        assert message.startswith(f"calibration: router {name!r}'s choices")
        assert "on 1 held-out prompt, too few to tell a routing signal from luck" in message
        assert message.endswith(f" [2 times in the folds of system {name!r}, the first shown]")


def test_a_fault_each_request_meets_is_said_once_then_counted_once_a_minute(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from routerllm import log_repeats

    now = [1000.0]
    monkeypatch.setattr(log_repeats, "_clock", lambda: now[0])
    caplog.set_level(logging.INFO)
    fault = log_repeats.RepeatedFault(
        logging.getLogger("routerllm.test_log_repeats"), "could not record it: %s",
        "answers could not be logged", "records again (%d could not be logged)",
    )  # fmt: skip
    fault.worked()  # nothing failed: nothing to say
    for _ in range(5):  # within the minute: the first said, the others counted
        fault.failed("disk is full")
        now[0] += 10
    fault.failed("disk is full")  # 50 s after the first: counted still
    now[0] += 10
    fault.failed("disk is full")  # 60 s after the first: its 6 repeats said
    fault.failed("disk is full")
    fault.failed("read-only file")  # a new reason: the last repeat, then it in full
    fault.worked()
    fault.worked()  # said once
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "could not record it: disk is full"),
        ("ERROR", "6 more answers could not be logged: disk is full"),
        ("ERROR", "1 more answers could not be logged: disk is full"),
        ("ERROR", "could not record it: read-only file"),
        ("WARNING", "records again (9 could not be logged)"),
    ]


def test_failed_requests_the_log_cannot_take_are_said_once_per_streak(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each failed request whose spending the request log could not take (its disk full)
    said the library's warning again: a line per request, until 2026-12-07, where the
    server's answers had theirs said once, then counted. Now the first is said in full,
    the next ones counted, and once the log takes a row again that the streak is over."""
    from routerllm.config import load_config
    from routerllm.exceptions import RequestLogError
    from routerllm.system import RouterLLM

    from .conftest import tiny_config_dict, write_config
    from .test_openai_http import error_reply, http_model_dict, serving_stub

    with serving_stub() as up:
        up.default_post = error_reply(500, "model crashed")  # each fails as it generates
        models = [http_model_dict("remote", up.base_url, max_retries=0)]
        config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
        with RouterLLM(config) as system:

            def full_disk(record: object) -> None:
                raise RequestLogError("database or disk is full")

            caplog.set_level(logging.INFO, logger="routerllm.answer_logging")
            with monkeypatch.context() as full:
                full.setattr(system.log, "append", full_disk)
                for _ in range(4):
                    with pytest.raises(Exception, match="HTTP 500"):
                        system.generate("hi")
            with pytest.raises(Exception, match="HTTP 500"):
                system.generate("hi")  # logged: the streak is over
            with pytest.raises(Exception, match="HTTP 500"):
                system.generate("hi")
            said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "routerllm.answer_logging"]  # fmt: skip
            assert said == [
                ("WARNING", "a failed request's spending could not be logged: database or disk is full"),  # fmt: skip
                ("WARNING", "3 more failed requests' spending could not be logged: database or disk is full"),  # fmt: skip
                ("WARNING", "the request log records requests again (4 failed requests' spending "
                            "could not be logged meanwhile)"),
            ]  # fmt: skip
            assert [r.finish_reason for r in system.log.records()] == ["error", "error"]
