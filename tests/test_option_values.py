"""Options whose values are a fixed list (a cost kind, a router, a loss, an encoder, a
calibration target's kind, a HumanEval system) are refused by the option parser: a
usage error (exit status 2) that lists the valid values, before any file is read or
written. Until 2026-12-05 ``eval-routing --cost bogus`` read the whole dataset first,
and with a --data that did not exist said only that."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from routerllm.cli import build_parser

from .test_learn_cli_inputs import usage_error

COSTS = ("auto", "call", "size", "price")
OUTCOME = ("quality", "logreg", "knn", "feedback", "policy", "moe")
ENCODERS = ("hashing", "hf", "minilm", "minilm-onnx", "minilm-static", "static")
LOSSES = ("ce", "label_smoothing", "focal", "inter_intra", "ce+intra", "ce+inter")
TARGETS = ("max_share", "quality=X", "max_cost=X")
MISSING = "{tmp}/missing.json"  # read first, it would be the error said: it is not


@pytest.mark.parametrize(
    ("argv", "option", "valid"),
    [
        (["eval-routing", "--data", MISSING, "--cost", "bogus"], "--cost", COSTS),
        (["eval-routing", "--data", MISSING, "--routers", "quality,bogus"], "--routers", OUTCOME),
        (["eval-routing", "--data", MISSING, "--routers", "classifier"], "--routers", OUTCOME),
        (["eval-routing", "--data", MISSING, "--encoder", "bogus"], "--encoder", ENCODERS),
        (["train", "--data", MISSING, "--out", "{tmp}/o", "--router", "rules"], "--router",
         ("classifier", *OUTCOME)),
        (["train", "--data", MISSING, "--out", "{tmp}/o", "--loss", "bogus"], "--loss", LOSSES),
        (["train", "--router", "knn", "--data", MISSING, "--out", "{tmp}/o", "--cost", "bogus"],
         "--cost", COSTS),
        (["train", "--data", MISSING, "--out", "{tmp}/o", "--encoder", "bogus"], "--encoder",
         ENCODERS),
        (["train", "--router", "knn", "--data", MISSING, "--out", "{tmp}/o", "--calibrate",
          "cheap"], "--calibrate", TARGETS),
        (["test", "--data", MISSING, "--router-type", "bogus"], "--router-type",
         ("rules", "complexity", "random", "smallest", "largest")),
        (["humaneval", "--out", "{tmp}/he", "--systems", "rules,bogus"], "--systems",
         ("direct-light", "rules", "knn", "moe", "gated-cascade")),
        (["humaneval", "--out", "{tmp}/he", "--encoder", "bogus"], "--encoder", ENCODERS),
        (["humaneval", "--out", "{tmp}/he", "--calibrate", "cheap"], "--calibrate", TARGETS),
    ],
)  # fmt: skip
def test_a_value_outside_an_options_fixed_list_is_refused_before_any_work(
    argv: list[str],
    option: str,
    valid: tuple[str, ...],
    tmp_path: Path,
) -> None:
    line = usage_error(*(a.format(tmp=tmp_path) for a in argv))
    assert line.startswith(f"routerllm {argv[0]}: error: argument {option}: "), line
    for value in valid:  # the error says what to give instead
        assert value in line, (value, line)
    assert list(tmp_path.iterdir()) == []  # nothing read (--data is missing), nothing written


def _help(command: str) -> str:
    sub = next(a for a in build_parser()._actions if isinstance(a.choices, dict))
    return " ".join(sub.choices[command].format_help().split())


@pytest.mark.parametrize(
    ("command", "valid"),
    [("eval-routing", COSTS + OUTCOME + ("minilm-static", "hf:<id or path>")),
     ("train", COSTS + LOSSES + ("classifier", *OUTCOME)),
     ("test", ("rules", "complexity", "random", "smallest", "largest"))],
)  # fmt: skip
def test_the_help_lists_the_valid_values(command: str, valid: tuple[str, ...]) -> None:
    text = _help(command)
    for value in valid:
        assert re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text), value


def test_the_train_losses_offered_are_the_losses_the_trainer_knows() -> None:
    """train_options names the losses without importing torch; the trainer's are the same."""
    pytest.importorskip("torch")
    from routerllm.train_options import CLASSIFIER_LOSSES
    from routerllm.training.losses import LOSS_NAMES

    assert CLASSIFIER_LOSSES == LOSS_NAMES


def test_the_outcome_routers_offered_are_the_registered_outcome_routers() -> None:
    from routerllm.registry import ROUTERS
    from routerllm.routers.outcome import OutcomeRouter
    from routerllm.train_options import OUTCOME_ROUTERS

    learning = {n for n in ROUTERS if issubclass(ROUTERS.get(n), OutcomeRouter)}
    assert set(OUTCOME_ROUTERS) == learning
