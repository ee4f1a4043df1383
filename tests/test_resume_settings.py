"""Resuming a classifier's training with settings other than its checkpoint's: those that
change nothing it trains resume to the same weights as an uninterrupted run, the others
are one error line naming the setting, both values and how to go on (real training on
the hashing encoder; a tiny real T5 for full mode)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from routerllm.data.labeled import LabeledPrompt
from routerllm.exceptions import RouterLLMError
from routerllm.routers.classifier import EmbeddingClassifierRouter
from routerllm.training.trainer import TrainingArguments

from .conftest import cli_in_process, tiny_seq2seq
from .test_classifier_router import MODELS, TRAIN, VAL, HashingEncoder, fast_args
from .test_learn_cli_inputs import labelled, user_error
from .test_outcome_routing import make_rows, write_json

# torch on one thread, as the suite runs it (conftest.encoders_on_one_thread)
pytestmark = pytest.mark.usefixtures("encoders_on_one_thread")


def _same_weights(a: EmbeddingClassifierRouter, b: EmbeddingClassifierRouter) -> bool:
    """Bit for bit."""
    ours, theirs = a.state(), b.state()
    return ours.keys() == theirs.keys() and all(
        ours[k].tobytes() == theirs[k].tobytes() for k in ours
    )


def _interrupted(out: str, at_batch: int) -> None:
    """A 4-epoch frozen run stopped by Ctrl-C at its ``at_batch``-th batch (training and
    validation batches counted)."""
    router = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
    forward, calls = router._forward, 0

    def stopping(inputs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == at_batch:
            raise KeyboardInterrupt
        return forward(inputs)

    router._forward = stopping  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        router.fit(TRAIN, VAL, fast_args(epochs=4, batch_size=16, output_dir=out))


def test_a_frozen_run_resumes_with_another_max_length_to_the_same_weights(
    tmp_path: Path,
) -> None:
    """Frozen mode reads no cut-off (its encoder cuts texts itself, and any max_length
    is taken by fit and by a load), yet a resume with another one was refused:
    "other settings (max_length 512 -> 128)"."""
    whole = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
    whole.fit(TRAIN, VAL, fast_args(epochs=4, batch_size=16))
    out = str(tmp_path / "cut")
    _interrupted(out, at_batch=12)  # 4 training and 1 validation batches an epoch: in epoch 3
    # the cut-off given to training, then (after a second interruption) to the router
    by_args = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
    history = by_args.fit(
        TRAIN, VAL, fast_args(epochs=4, batch_size=16, max_length=128, output_dir=out), True
    )
    assert history.resumed_from == 2 and history.epochs_run == [3, 4]
    assert _same_weights(by_args, whole)
    # a checkpoint of before 2026-12-06 recorded frozen mode's cut-off: not compared either
    again = str(tmp_path / "again")
    _interrupted(again, at_batch=7)  # in epoch 2
    checkpoint = Path(again) / "checkpoint.pt"
    payload = torch.load(checkpoint, weights_only=True)
    assert "max_length" not in payload["setup"]
    torch.save({**payload, "setup": {**payload["setup"], "max_length": 512}}, checkpoint)
    by_router = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder(), max_length=64)
    history = by_router.fit(TRAIN, VAL, fast_args(epochs=4, batch_size=16, output_dir=again), True)
    assert history.epochs_run == [2, 3, 4] and by_router.max_length == 64
    assert _same_weights(by_router, whole)


def test_a_full_run_resumed_with_another_max_length_is_refused_naming_both(
    tmp_path: Path,
) -> None:
    """Full mode fine-tunes on the cut-off: another one is refused, as before."""
    folder = tiny_seq2seq(tmp_path / "t5", "t5")
    data = [LabeledPrompt(t, c) for c, t in enumerate(["hello", "world", "code", "hello code"])]

    def args(epochs: int, **more: Any) -> TrainingArguments:
        return TrainingArguments(epochs=epochs, batch_size=2, warmup_steps=0, progress=False,
                                 output_dir=str(tmp_path / "full"), **more)  # fmt: skip

    EmbeddingClassifierRouter(MODELS, encoder=f"hf:{folder}", mode="full").fit(data, data, args(1))
    again = EmbeddingClassifierRouter(MODELS, encoder=f"hf:{folder}", mode="full")
    with pytest.raises(RouterLLMError, match=r"other settings \(max_length 512 -> 8\)"):
        again.fit(data, data, args(2, max_length=8), resume=True)


def _train_argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--encoder", "hashing",
            "--json", *extra]  # fmt: skip


@pytest.fixture
def unfinished(tmp_path: Path) -> tuple[Path, Path]:
    """(data file, --out) of a classifier run of 2 epochs stopped before its router was
    saved: its checkpoint holds all the run made."""
    data = labelled(tmp_path / "d.json")
    out = tmp_path / "o"
    assert cli_in_process(*_train_argv(data, out, "--epochs", "2")).returncode == 0
    for saved in ("config.json", "weights.npz"):
        (out / saved).unlink()
    return data, out


@pytest.mark.parametrize(
    ("changed", "says"),
    [
        (["--batch-size", "8"], "batch_size 16 -> 8"),
        (["--learning-rate", "0.01"], "learning_rate 0.001 -> 0.01"),
        (["--use-inter-intra-loss"], "loss 'ce' -> 'inter_intra'"),
        (["--loss", "focal"], "loss 'ce' -> 'focal'"),
        (["--seed", "1"], "router_seed 0 -> 1; seed 0 -> 1"),  # it sets both
        (["--warmup-steps", "3"], "warmup_steps None -> 3"),
        (["--encoder", "static"], "encoder 'hashing' -> 'static'"),
    ],
)
def test_a_cli_resume_with_other_settings_says_how_to_train_afresh(
    unfinished: tuple[Path, Path], changed: list[str], says: str
) -> None:
    """The refusal said "train from scratch (resume=False / no --resume)"; the command
    run so, without --resume, was refused in turn (its checkpoint is of a run that did
    not finish), and only that second error named --overwrite."""
    data, out = unfinished
    checkpoint = out / "checkpoints" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    argv = _train_argv(data, out, "--epochs", "4", *changed)
    refused = user_error(*argv, "--resume")
    assert refused == (
        f"error: {checkpoint} was written by a run with other settings ({says}); resume with "
        f"the same settings, or train from scratch: with another --out (output_dir), or with "
        f"--overwrite and no --resume (resume=False), which replaces its epochs"
    )
    assert checkpoint.read_bytes() == before and not (out / "config.json").exists()
    # as it says: another --out trains afresh, and leaves this one as it was
    other = cli_in_process(*_train_argv(data, out.parent / "fresh", "--epochs", "1", *changed))
    assert other.returncode == 0, other.stderr
    assert checkpoint.read_bytes() == before
    # or --overwrite without --resume, over the checkpoint's epochs
    over = cli_in_process(*argv, "--overwrite")
    assert over.returncode == 0, over.stderr
    assert json.loads(over.stdout)["epochs_run"] == [1, 2, 3, 4]


def test_a_resume_with_another_router_seed_is_refused(tmp_path: Path) -> None:
    """The router's seed draws its head's first weights; a checkpoint of another was
    resumed without a word, ending on the checkpoint seed's weights, with the new seed
    recorded in config.json (``routerllm train --seed`` sets both seeds, and was refused)."""
    out = str(tmp_path / "ck")
    EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder()).fit(
        TRAIN, VAL, fast_args(epochs=1, output_dir=out)
    )
    other = EmbeddingClassifierRouter(MODELS, seed=5, encoder=HashingEncoder())
    with pytest.raises(RouterLLMError, match=r"other settings \(router_seed 0 -> 5\); "):
        other.fit(TRAIN, VAL, fast_args(epochs=2, output_dir=out), resume=True)
    same = EmbeddingClassifierRouter(MODELS, seed=0, encoder=HashingEncoder())
    assert same.fit(TRAIN, VAL, fast_args(epochs=2, output_dir=out), resume=True).epochs_run == [2]


def test_a_classifier_resume_into_another_routers_folder_is_refused(tmp_path: Path) -> None:
    """``train --resume`` into an --out holding a quality router (another --out typed)
    found no checkpoint, warned, trained a classifier from scratch and replaced the
    quality router: the run to continue was elsewhere, and the router was lost."""
    quality = tmp_path / "q"
    outcomes = write_json(tmp_path / "outcomes.json", *make_rows(40, 1))
    trained = cli_in_process("train", "--router", "quality", "--data", str(outcomes),
                             "--out", str(quality), "--encoder", "hashing", "--json")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    before = {p.name: p.read_bytes() for p in quality.iterdir() if p.is_file()}
    data = labelled(tmp_path / "d.json")
    argv = _train_argv(data, quality, "--epochs", "2")
    assert user_error(*argv, "--resume") == (
        f"error: --resume: --out {quality} holds no classifier checkpoint to continue, but a "
        f"saved 'quality' router, which training would replace; give the --out of the run "
        f"to resume, or leave out --resume to replace it (nothing was changed)"
    )
    assert {p.name: p.read_bytes() for p in quality.iterdir() if p.is_file()} == before
    assert not (quality / "checkpoints").exists()
    # without --resume it is replaced, as a router saved in --out always is (README)
    assert cli_in_process(*argv).returncode == 0
    assert json.loads((quality / "config.json").read_text())["router"] == "classifier"


def test_a_frozen_resume_on_an_encoder_whose_files_changed_is_refused(tmp_path: Path) -> None:
    """The checkpoint recorded the encoder's spec alone: with an ``hf:`` folder written
    again (another snapshot, a model fine-tuned anew) the head trained on one encoder's
    embeddings went on on another's, and its save recorded the new files' sha256, so the
    mixed router loaded without a word."""
    import torch
    from transformers import T5Model

    folder = tiny_seq2seq(tmp_path / "t5", "t5")
    data = [LabeledPrompt(t, c) for c, t in enumerate(["hello", "world", "code", "hello code"])]

    def args(epochs: int) -> TrainingArguments:
        return TrainingArguments(epochs=epochs, batch_size=2, learning_rate=0.05, warmup_steps=0,
                                 progress=False, output_dir=str(tmp_path / "ck"))  # fmt: skip

    EmbeddingClassifierRouter(MODELS, encoder=f"hf:{folder}").fit(data, data, args(1))
    checkpoint = tmp_path / "ck" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    model = T5Model.from_pretrained(folder)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(2.0)  # the same shapes, other weights
    model.save_pretrained(folder)
    again = EmbeddingClassifierRouter(MODELS, encoder=f"hf:{folder}")
    with pytest.raises(
        RouterLLMError, match=r"other settings \(encoder_sha256 '[0-9a-f]{16}' -> '[0-9a-f]{16}'\)"
    ):
        again.fit(data, data, args(2), resume=True)
    assert checkpoint.read_bytes() == before


def test_another_routers_config_does_not_stand_for_the_classifier_saved(
    unfinished: tuple[Path, Path],
) -> None:
    """A run stopped as it saved its router keeps its epochs from a rerun without
    --resume; a quality router saved in --out since was taken for the classifier's
    saved router, and the rerun trained afresh over the 2 finished epochs."""
    data, out = unfinished
    outcomes = write_json(out.parent / "outcomes.json", *make_rows(40, 1))
    trained = cli_in_process("train", "--router", "quality", "--data", str(outcomes),
                             "--out", str(out), "--encoder", "hashing")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    checkpoint = out / "checkpoints" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    assert user_error(*_train_argv(data, out, "--epochs", "2")) == (
        f"error: --out {out} holds the checkpoint of a training run that did not finish "
        f"({checkpoint}: epochs 1-2 of 2): rerun the command with --resume to continue after "
        f"epoch 2, or with --overwrite to train from scratch, replacing them (nothing was "
        f"changed)"
    )
    assert checkpoint.read_bytes() == before
