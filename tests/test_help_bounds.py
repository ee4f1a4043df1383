"""Every option whose value the CLI bounds says its bound in ``--help``: until 2026-12-06
``train --help`` said "--epochs N  classifier: default 3", and a user learned that 10,000
is the most only from the error. The expected ranges are built here from the constants
the parsers and commands enforce, so help and enforcement cannot drift apart."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from routerllm.checks import (
    FLOAT32_MAX,
    FLOAT32_TINY,
    MAX_EPOCHS,
    MAX_GATE_FOLDS,
    MAX_NEW_TOKENS,
    MAX_PORT,
    MAX_RESAMPLES,
    MAX_SEED,
    MAX_SYNTHETIC_PROMPTS,
    MAX_THREADS,
    MIN_GATE_FOLDS,
)
from routerllm.cli import build_parser
from routerllm.cli_args import (
    epochs_arg,
    gate_folds_arg,
    max_new_tokens_arg,
    seed_arg,
    threads_arg,
)
from routerllm.demo_cli import MAX_REPEATS

#: The bounded argument types and the range each enforces, wherever an option uses one.
TYPED: dict[Callable[[str], int], tuple[int, int]] = {
    seed_arg: (0, MAX_SEED),
    max_new_tokens_arg: (1, MAX_NEW_TOKENS),
    epochs_arg: (1, MAX_EPOCHS),
    threads_arg: (1, MAX_THREADS),
    gate_folds_arg: (MIN_GATE_FOLDS, MAX_GATE_FOLDS),
}
#: Options read as text and checked later (train's classifier numbers) or checked by their
#: command, and the range said for each.
CHECKED = {
    ("train", "--epochs"): f"1 to {MAX_EPOCHS:,}",
    ("train", "--learning-rate"): f"{FLOAT32_TINY:.3g} to {FLOAT32_MAX:.3g}",
    ("demo", "--repeats"): f"1 to {MAX_REPEATS:,}",
    ("eval-routing", "--bootstrap"): f"0 to {MAX_RESAMPLES:,}",
    ("serve", "--port"): f"0 to {MAX_PORT:,}",
    ("generate-data", "--n"): f"40 to {MAX_SYNTHETIC_PROMPTS:,}",
}


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _help_of(command: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The option's lines of ``routerllm COMMAND --help``, their wrapping undone."""
    return " ".join(command._get_formatter()._format_action(action).split())


def _action(command: argparse.ArgumentParser, option: str) -> argparse.Action:
    return command._option_string_actions[option]


def test_every_option_of_a_bounded_type_states_its_range_in_its_help() -> None:
    commands, found = _commands(), []
    for name, command in commands.items():
        for action in command._actions:
            if action.type in TYPED:
                low, high = TYPED[action.type]  # type: ignore[index]
                said = f"{low:,} to {high:,}"
                assert said in _help_of(command, action), (name, action.option_strings)
                found.append((name, action.option_strings[-1]))
    # every command with a --seed or --max-new-tokens is found (the search finds them all)
    assert {("train", "--seed"), ("humaneval", "--max-new-tokens"), ("demo", "--max-new-tokens"),
            ("route", "--max-new-tokens"), ("eval-routing", "--seed"), ("test", "--seed"),
            ("generate-data", "--seed"), ("train-gate", "--seed"),
            ("train-gate", "--folds")} <= set(found)  # fmt: skip


@pytest.mark.parametrize(("name", "option"), list(CHECKED))
def test_every_option_checked_by_its_command_states_its_range_in_its_help(
    name: str, option: str
) -> None:
    command = _commands()[name]
    assert CHECKED[name, option] in _help_of(command, _action(command, option))


@pytest.mark.parametrize("parse", list(TYPED), ids=lambda f: f.__name__)
def test_the_range_said_is_the_one_the_parser_enforces(parse: Callable[[str], int]) -> None:
    low, high = TYPED[parse]
    assert (parse(str(low)), parse(str(high))) == (low, high)
    for outside in (low - 1, high + 1):
        with pytest.raises(argparse.ArgumentTypeError, match=f"give {low:,} to {high:,}$"):
            parse(str(outside))
