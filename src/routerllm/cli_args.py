"""What the learning and humaneval commands of ``routerllm`` and the benchmarks share:
argument types (argparse turns their errors into a usage error, exit 2), a ``--help``
that states defaults, and the checks of output paths, made before any work."""

from __future__ import annotations

import argparse
import copy
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from routerllm.checks import (
    FLOAT32_MAX,
    FLOAT32_TINY,
    MAX_EPOCHS,
    MAX_GATE_FOLDS,
    MAX_NEW_TOKENS,
    MAX_RESAMPLES,
    MAX_SEED,
    MAX_THREADS,
    MAX_TIMED_REPEATS,
    MIN_GATE_FOLDS,
    repeated,
)
from routerllm.exceptions import RouterLLMError

#: What ``--encoder`` takes, in every command that has it (``registry.ENCODERS``).
ENCODERS_HELP = "minilm | minilm-onnx | minilm-static | static | hashing | hf:<id or path>"
#: What ``--cost`` takes, where outcome routers learn (``OutcomeDataset.cost_kind``).
COSTS_HELP = (
    "auto (default: call where the data has a cost for each answer, else size) | call | "
    "size (parameters, B) | price (USD per 1M tokens); a size or price from a models.json "
    "beside the data"
)
#: The routers that route by name, untrained: ``--router`` of route, demo and serve,
#: test's ``--router-type``.
ROUTERS_BY_NAME = "rules, complexity, random, smallest or largest"


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` that states each option's default, whether or not the option has a
    help text (argparse's own states it only after a help text); not a default of
    ``None`` (nothing given) or a flag's ``False``."""

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and _has_default(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return super()._get_help_string(action) if _has_default(action) else action.help


def _has_default(action: argparse.Action) -> bool:
    default = action.default
    return bool(action.option_strings) and not (
        default is None or default is False or default == argparse.SUPPRESS
    )


def whole_range(low: int, high: int) -> str:
    """A bounded whole-number option's range as its ``--help`` and its error say it:
    both from the same constants, so the help states the bound the parser enforces."""
    return f"{low:,} to {high:,}"


#: The ranges of the bounded options, said in their ``--help`` (and their errors).
SEED_RANGE = whole_range(0, MAX_SEED)
MAX_NEW_TOKENS_RANGE = whole_range(1, MAX_NEW_TOKENS)
EPOCHS_RANGE = whole_range(1, MAX_EPOCHS)
LEARNING_RATE_RANGE = f"{FLOAT32_TINY:.3g} to {FLOAT32_MAX:.3g}"
BOOTSTRAP_RANGE = whole_range(0, MAX_RESAMPLES)
GATE_FOLDS_RANGE = whole_range(MIN_GATE_FOLDS, MAX_GATE_FOLDS)
TIMED_REPEATS_RANGE = whole_range(1, MAX_TIMED_REPEATS)
#: Every ``--seed``'s help.
SEED_HELP = f"random seed, {SEED_RANGE} (default: 0)"


def seed_arg(text: str) -> int:
    """Every ``--seed``: an integer numpy, scikit-learn and torch all accept."""
    return _whole_number(text, 0, MAX_SEED)


def positive_number(text: str) -> float:
    """A finite number > 0 (``float`` alone lets through nan, inf and negatives)."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


def positive_number_at_most(high: float) -> Callable[[str], float]:
    """The argument type of a finite number > 0 and at most ``high`` (an energy budget)."""

    def parse(text: str) -> float:
        value = positive_number(text)
        if value > high:
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: give a number > 0 and at most {high:g}"
            )
        return value

    return parse


def learning_rate_arg(text: str) -> float:
    """A ``--learning-rate``: a finite number > 0 that torch's optimiser can hold (float32)."""
    rate = positive_number(text)
    if rate > FLOAT32_MAX:
        raise argparse.ArgumentTypeError(f"{text} is too large: give at most {FLOAT32_MAX:.3g}")
    if rate < FLOAT32_TINY:  # it would train nothing, without a word
        raise argparse.ArgumentTypeError(f"{text} is too small: give at least {FLOAT32_TINY:.3g}")
    return rate


def number_at_least(low: float) -> Callable[[str], float]:
    """The argument type of a finite number >= ``low`` (a knob, a prior's precision)."""

    def parse(text: str) -> float:
        value = _number(text)
        if not (math.isfinite(value) and value >= low):
            raise argparse.ArgumentTypeError(f"{text} must be a finite number >= {low:g}")
        return value

    return parse


def count_arg(text: str) -> int:
    """A whole number >= 1: a count of problems or folds."""
    return _whole_number(text, 1, None)


def steps_arg(text: str) -> int:
    """A whole number >= 0: a count of steps that may be none."""
    return _whole_number(text, 0, None)


def max_new_tokens_arg(text: str) -> int:
    """A ``--max-new-tokens``: 1 to the most any request may ask for."""
    return _whole_number(text, 1, MAX_NEW_TOKENS)


def epochs_arg(text: str) -> int:
    """A ``--epochs``: 1 to the most a classifier trains for."""
    return _whole_number(text, 1, MAX_EPOCHS)


def gate_folds_arg(text: str) -> int:
    """A ``train-gate --folds``: the folds of the gate's out-of-fold predictions."""
    return _whole_number(text, MIN_GATE_FOLDS, MAX_GATE_FOLDS)


def timed_repeats_arg(text: str) -> int:
    """A benchmark's ``--repeat``: 1 to the most runs it times for a median."""
    return _whole_number(text, 1, MAX_TIMED_REPEATS)


def whole_number_arg(low: int, high: int) -> Callable[[str], int]:
    """The argument type of a whole number from ``low`` to ``high``, both included."""

    def parse(text: str) -> int:
        return _whole_number(text, low, high)

    return parse


def threads_arg(text: str) -> int:
    """A ``--threads``: 1 to the most CPU threads a local backend may be given."""
    return _whole_number(text, 1, MAX_THREADS)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _whole_number(text: str, low: int, high: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low or (high is not None and value > high):
        within = whole_range(low, high) if high is not None else f"a whole number >= {low}"
        raise argparse.ArgumentTypeError(f"{text} is out of range: give {within}")
    return value


def fraction_arg(text: str) -> float:
    """A share strictly between 0 and 1 (``float`` alone lets through nan, 0 and 1)."""
    value = _number(text)
    if not 0 < value < 1:  # false for nan
        raise argparse.ArgumentTypeError(f"{text} must be a number between 0 and 1 (exclusive)")
    return value


def option_arg(text: str) -> tuple[str, object]:
    """A router option ``KEY=VALUE``, the value read as JSON (``3``, ``[256, 128]``,
    ``null``) or else taken as text; the router checks it."""
    import json

    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KEY=VALUE (e.g. top_k=2, hidden=[256,128])"
        )
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value
    except RecursionError:  # [[[[...]]]]: json's parser recurses
        raise argparse.ArgumentTypeError(
            f"{text[:20]!r}... is nested too deeply to read as JSON"
        ) from None


def encoder_arg(text: str) -> str:
    """An ``--encoder``: an unknown encoder (or one missing its argument, ``hf``) is
    refused, with the known ones, before any data is read or embedded."""
    from routerllm.encoders.base import encoder_class

    try:
        encoder_class(text)
    except RouterLLMError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    return text


def calibration_target_arg(text: str) -> str:
    """A ``--calibrate`` target, its form and range (``quality=0.95``); a model it names
    (``max_share:MODEL=X``) is checked once the data's models are known."""
    from routerllm.routers.calibration import parse_target

    try:
        parse_target(text)
    except RouterLLMError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    return text


def split_names(text: str) -> list[str]:
    """The names of a comma-separated list, blanks around them and empty ones dropped."""
    return [n.strip() for n in text.split(",") if n.strip()]


def names_from(valid: Sequence[str], kind: str) -> Callable[[str], str]:
    """The argument type of comma-separated names, each one of ``valid``: one that is
    not is refused, with the valid ones. The text is kept: the command splits it
    (:func:`name_list`), refusing an empty list or a name given twice."""

    def parse(text: str) -> str:
        from routerllm.exceptions import did_you_mean

        if wrong := [n for n in split_names(text) if n not in valid]:
            raise argparse.ArgumentTypeError(
                f"{wrong[0]!r} is not {kind}{did_you_mean(wrong[0], valid)}; valid: "
                f"{', '.join(valid)}"
            )
        return text

    return parse


def name_list(text: str, option: str) -> list[str]:
    """A comma-separated list of names; a clear error when it names none, or one twice."""
    names = split_names(text)
    if not names:
        raise RouterLLMError(f"{option} names nothing (give comma-separated names)")
    if twice := repeated(names):
        raise RouterLLMError(f"{option} names {', '.join(twice)} more than once")
    return names


def refuse_overwriting(
    option: str, outputs: Sequence[Path], inputs: Sequence[tuple[str, Path]]
) -> None:
    """A clear error when an output path (given by ``option``) is, or links to, an input."""
    for out in outputs:
        for name, given in inputs:
            try:
                same = out.exists() and given.exists() and os.path.samefile(out, given)
            except OSError:
                same = False
            if same:
                raise RouterLLMError(
                    f"writing {out} would overwrite the {name} input {given}: "
                    f"choose another {option}"
                )


def check_plot(path: Path, inputs: Sequence[tuple[str, Path]]) -> None:
    """A ``--plot`` refused before the evaluation it draws, not once its figures are
    computed (and lost): not a PNG path, one of the ``inputs``, where nothing can be
    created, or without matplotlib to draw it."""
    from routerllm.eval.plots import check_png_path, require_matplotlib
    from routerllm.path_checks import refuse_unwritable_folder

    check_png_path(path, "--plot")
    require_matplotlib("--plot", "leave --plot out")
    refuse_overwriting("--plot", [path], inputs)
    refuse_unwritable_folder(path.parent, f"--plot {path}", "nothing was evaluated")
