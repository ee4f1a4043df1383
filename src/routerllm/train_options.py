"""``routerllm train``'s options that only one kind of router uses: which are whose,
their defaults, and the check that refuses an option the router given does not use."""

from __future__ import annotations

import argparse

from routerllm.cli_args import count_arg, epochs_arg, learning_rate_arg, steps_arg
from routerllm.exceptions import RouterLLMError

OUTCOME_ROUTERS = ("quality", "logreg", "knn", "feedback", "policy", "moe")
#: The routers ``train`` trains: ``--router`` takes only these.
TRAINABLE = ("classifier", *OUTCOME_ROUTERS)
#: The classifier's ``--loss`` names: ``training.losses.LOSS_NAMES``, named here without
#: importing torch, so that the option parser refuses any other before any work.
CLASSIFIER_LOSSES = ("ce", "label_smoothing", "focal", "inter_intra", "ce+intra", "ce+inter")

#: ``routerllm train`` options that only one kind of router uses, with their defaults.
CLASSIFIER_OPTIONS = {
    "--val": None, "--mode": "frozen", "--loss": "ce", "--use-inter-intra-loss": False,
    "--epochs": 3, "--batch-size": 16, "--learning-rate": None, "--warmup-steps": None,
    "--resume": False,
}  # fmt: skip
OUTCOME_OPTIONS: dict[str, object] = {
    "--cost": "auto",
    "--decision": None,
    "--calibrate": None,
    "--two-settings": False,
    "--option": [],
}
#: Router options that ``train`` sets from its own flags: not through ``--option``.
SET_BY_FLAGS = {
    "encoder": "--encoder", "mode": "--decision", "costs": "--cost", "knob": "--calibrate",
    "mix": "--calibrate", "second_knob": "--two-settings", "second_share": "--two-settings",
    "medium_model": "--medium-model", "large_model": "--large-model", "seed": "--seed",
    "name": "--router", "models": "--data",
}  # fmt: skip


#: The classifier's numeric options, given as text and read (by the option parser's
#: checks) only once they are known to be its own: ``--epochs 0`` with an outcome
#: router is an option for the classifier before it is a number out of range.
CLASSIFIER_NUMBERS = {
    "--epochs": epochs_arg, "--batch-size": count_arg, "--learning-rate": learning_rate_arg,
    "--warmup-steps": steps_arg,
}  # fmt: skip
#: ``routerllm train`` options of the policy router only: its reference models.
POLICY_OPTIONS = ("--medium-model", "--large-model")


def check_train_options(args: argparse.Namespace) -> None:
    """Refuse options the router does not use (a silently ignored --calibrate would
    leave the user believing the router calibrated), then fill in the defaults."""
    classifier = args.router == "classifier"
    own, other = (
        (CLASSIFIER_OPTIONS, OUTCOME_OPTIONS)
        if classifier
        else (OUTCOME_OPTIONS, CLASSIFIER_OPTIONS)
    )
    # ``is``: a flag left out is None or False
    unused = [f for f in other if (v := getattr(args, _dest(f))) is not None and v is not False]
    if unused:
        kind = f"outcome routers ({', '.join(OUTCOME_ROUTERS)})" if classifier else "the classifier"
        one = len(unused) == 1
        raise RouterLLMError(
            f"{', '.join(unused)} {'is' if one else 'are'} for {kind}; router {args.router!r} "
            f"does not use {'it' if one else 'them'}"
        )
    if classifier and args.use_inter_intra_loss and args.loss not in (None, "inter_intra"):
        raise RouterLLMError(
            f"--use-inter-intra-loss is --loss inter_intra, and --loss {args.loss} is given "
            f"too: give one of them"
        )
    if classifier:  # read at parse time already; a caller that skipped the parser too
        try:
            read_classifier_numbers(args)
        except argparse.ArgumentTypeError as e:
            raise RouterLLMError(str(e)) from None
    for flag, default in own.items():
        if getattr(args, _dest(flag)) is None:
            setattr(args, _dest(flag), default)
    if args.router != "policy" and (
        given := [f for f in POLICY_OPTIONS if getattr(args, _dest(f))]
    ):
        raise RouterLLMError(
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for the policy router; "
            f"router {args.router!r} does not use {'it' if len(given) == 1 else 'them'}"
        )


def read_classifier_numbers(args: argparse.Namespace) -> None:
    """The classifier's numbers read from their text (``check_ranges`` of ``train``'s
    parser, so one out of range is a usage error as an argument type's is); another
    router's are left for ``check_train_options`` to refuse as options it does not use."""
    if args.router != "classifier":
        return
    for flag, read in CLASSIFIER_NUMBERS.items():
        if isinstance(text := getattr(args, _dest(flag)), str):
            try:
                setattr(args, _dest(flag), read(text))
            except argparse.ArgumentTypeError as e:
                raise argparse.ArgumentTypeError(f"argument {flag}: {e}") from None


def _dest(flag: str) -> str:
    """``--batch-size`` -> ``batch_size``, argparse's attribute for the flag."""
    return flag.lstrip("-").replace("-", "_")
