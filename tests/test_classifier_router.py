"""The embedding classifier router: training (frozen and full), routing, persistence, resume."""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from routerllm.data.labeled import CLASS_NAMES, LabeledPrompt
from routerllm.encoders.base import Encoder
from routerllm.encoders.hashing import HashingEncoder as _Hashing
from routerllm.exceptions import DataError, RouterLLMError
from routerllm.routers.base import Candidate, create_router
from routerllm.routers.classifier import EmbeddingClassifierRouter, class_reason, class_routes
from routerllm.routers.saved import load_router
from routerllm.training import trainer
from routerllm.training.trainer import ClassificationData, TrainingArguments, train

from .conftest import tiny_seq2seq


def HashingEncoder() -> Encoder:  # noqa: N802 - the 64-bin encoder these tests were written with
    return _Hashing(64)


TOPICS = [
    "sorting", "graphs", "caching", "parsing", "retries", "logging", "queues", "matrices",
    "dates", "strings", "trees", "hashing", "streams", "files", "sockets", "tokens", "vectors",
    "events",
]  # fmt: skip
TEMPLATES = (
    "write a python function with unit tests for {}",  # code generation
    "compose a heartfelt poem and short story about {}",  # text generation
    "explain the history and main ideas behind {}",  # general purpose
    "hi, quick one: define {} in one word",  # lightweight
)
MODELS = [
    Candidate("small", 0.5, tier="light"),
    Candidate("mid-b", 3.0, tier="medium"),
    Candidate("mid-a", 1.0, tier="medium"),
    Candidate("writer", 7.0, tier="medium", class_id=1),
    Candidate("big", 7.0, tier="heavy"),
]


def prompts(topics: Sequence[str]) -> list[LabeledPrompt]:
    return [
        LabeledPrompt(t.format(topic), label)
        for topic in topics
        for label, t in enumerate(TEMPLATES)
    ]


TRAIN, VAL = prompts(TOPICS[:15]), prompts(TOPICS[15:])  # 60 and 12 prompts


def fast_args(**overrides: Any) -> TrainingArguments:
    """Head-only training needs a far larger learning rate than fine-tuning a transformer."""
    values: dict[str, Any] = {
        "epochs": 15,
        "learning_rate": 0.05,
        "warmup_steps": 0,
        "progress": False,
    }
    return TrainingArguments(**{**values, **overrides})


@pytest.fixture
def hashing_spec() -> str:
    """The registered spec of the encoder these tests train with."""
    return HashingEncoder().spec


@pytest.fixture(scope="module")
def trained() -> EmbeddingClassifierRouter:
    router = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
    router.fit(TRAIN, VAL, fast_args())
    return router


def test_frozen_mode_learns_the_classes(trained: EmbeddingClassifierRouter) -> None:
    texts = [p.text for p in TRAIN]
    labels = np.array([p.label for p in TRAIN])
    assert (trained.predict(texts) == labels).mean() >= 0.95
    assert (trained.predict([p.text for p in VAL]) == [p.label for p in VAL]).mean() >= 0.9
    probs = trained.predict_proba(texts, batch_size=7)  # batches of 7: same numbers
    assert probs.shape == (60, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs, trained.predict_proba(texts), rtol=1e-6, atol=1e-7)
    assert trained.predict_proba([]).shape == (0, 4)
    assert trained.predict_proba(p for p in texts[:3]).shape == (3, 4)  # any iterable


@pytest.mark.parametrize(
    ("prompts", "batch_size", "message"),
    [
        ("abc", None, "prompts must be a list of strings, not a single string"),
        (["a", 3], None, r"prompts\[1\] is int, not str"),
        (["a"], 0, "batch_size must be at least 1, not 0"),
        (["a"], "2", "batch_size must be at least 1, not '2'"),
    ],
)
def test_bad_prompts_or_batch_sizes_are_clear_errors(
    trained: EmbeddingClassifierRouter, prompts: Any, batch_size: Any, message: str
) -> None:
    with pytest.raises(RouterLLMError, match=message):
        trained.predict_proba(prompts, batch_size)


def test_history_and_best_epoch_by_validation() -> None:
    router = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
    history = router.fit(TRAIN, VAL, fast_args(epochs=4, learning_rate=0.01))
    assert [r.epoch for r in history.records] == [1, 2, 3, 4] == history.epochs_run
    # Highest validation accuracy, ties broken by the lower validation loss.
    ranked = max(history.records, key=lambda r: (r.val_accuracy, -(r.val_loss or 0.0)))
    assert (history.best_epoch, history.best_val_accuracy) == (ranked.epoch, ranked.val_accuracy)
    assert history.records[-1].train_loss < history.records[0].train_loss


def test_the_defaults_are_the_missions_and_reach_the_network_and_optimiser() -> None:
    # MISSION M3.2: dropout 0.1 before the head, 512 tokens, AdamW lr 2e-5 with weight
    # decay 0.01 (not on biases), batch 16, 3 epochs, 100 warmup steps; the 512 tokens
    # are the router's, which training reads unless its arguments give another
    args = TrainingArguments()
    assert (args.epochs, args.batch_size, args.max_length) == (3, 16, None)
    assert (args.learning_rate, args.weight_decay, trainer.DEFAULT_WARMUP_STEPS) == (2e-5, 0.01, 100)  # fmt: skip
    router = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
    net = router.network()
    assert net["dropout"].p == 0.1 and router.max_length == 512
    optimiser = trainer._optimizer(net, args)
    assert isinstance(optimiser, torch.optim.AdamW)
    groups = {(g["lr"], g["weight_decay"]): len(g["params"]) for g in optimiser.param_groups}
    assert groups == {(2e-5, 0.01): 1, (2e-5, 0.0): 1}  # the head's weight, its bias


def test_default_warmup_is_capped_at_a_tenth_of_a_short_run() -> None:
    # 60 prompts in batches of 16, 5 epochs: 20 steps, so 2 warmup steps, not 100
    # (with 100 the learning rate would never get past a fifth of its value).
    assert TrainingArguments().warmup(20) == 2
    assert TrainingArguments().warmup(5000) == 100
    assert TrainingArguments(warmup_steps=7).warmup(20) == 7  # given: used as it is
    texts = [p.text for p in TRAIN]
    probs = []
    for warmup in (None, 2):
        router = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
        router.fit(TRAIN, VAL, fast_args(epochs=5, warmup_steps=warmup))
        probs.append(router.predict_proba(texts))
    np.testing.assert_array_equal(probs[0], probs[1])


def test_learning_rate_warms_up_linearly_then_decays_to_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 10 items in batches of 2 for 5 epochs: 25 steps, the first 5 warming up. As
    # transformers' linear schedule: step k uses lr * k / 5 while k < 5, then
    # lr * (25 - k) / 20, so step 0 uses 0 and the last 1/20 of the rate.
    used: list[float] = []
    step = torch.optim.AdamW.step

    def recording(self: torch.optim.AdamW, *a: Any, **k: Any) -> Any:
        used.append(self.param_groups[0]["lr"])
        return step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording)
    module, forward, data = linear_problem()
    data = ClassificationData(data.items[:10], data.labels[:10])
    args = TrainingArguments(epochs=5, batch_size=2, learning_rate=0.5, warmup_steps=5,
                             progress=False)  # fmt: skip
    train(module, forward, stack, data, None, args)
    expected = [0.5 * k / 5 for k in range(5)] + [0.5 * (25 - k) / 20 for k in range(5, 25)]
    np.testing.assert_allclose(used, expected, rtol=1e-12)


def test_a_warmup_longer_than_the_run_is_said(caplog: pytest.LogCaptureFixture) -> None:
    """A warmup given longer than the run keeps the learning rate rising all run, never
    at its value (a user's choice, kept): the log says so, with the most it reaches. 10
    items in batches of 2 for 2 epochs: 10 steps, the last at 9/40 of the rate."""
    module, forward, data = linear_problem()
    data = ClassificationData(data.items[:10], data.labels[:10])
    for warmup, said in ((40, True), (10, False), (None, False)):
        caplog.clear()
        args = TrainingArguments(epochs=2, batch_size=2, learning_rate=0.5, warmup_steps=warmup, progress=False)  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="routerllm.training.trainer"):
            train(module, forward, stack, data, None, args)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        expected = ["a warmup of 40 steps is longer than the run's 10: the learning rate rises all run and reaches 22% of 0.5 at most"]  # fmt: skip
        assert warnings == (expected if said else []), warmup


def hf_weights_digest(model: torch.nn.Module) -> str:
    """A hash of every weight of ``model``, bit for bit."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.usefixtures("encoders_on_one_thread")  # torch on one, as the suite runs it
def test_frozen_mode_leaves_the_encoder_as_it_was_and_full_mode_trains_it(
    tmp_path: Path,
) -> None:
    from routerllm.encoders.base import create_encoder

    from .test_complexity_router import build_classifier

    folder = build_classifier(tmp_path / "bert", {0: "a", 1: "b"})
    words = ["hello", "world", "code", "hello code"]
    data = [LabeledPrompt(t, c) for c, t in enumerate(words)] * 2
    args = TrainingArguments(epochs=2, batch_size=2, learning_rate=1e-2, warmup_steps=0,
                             progress=False)  # fmt: skip
    encoder = create_encoder(f"hf:{folder}")
    frozen = EmbeddingClassifierRouter(MODELS, encoder=encoder)
    encoder.encode(words)  # loads its model
    before = hf_weights_digest(encoder._model)  # type: ignore[attr-defined]
    head = frozen.network()["head"].weight.detach().clone()
    frozen.fit(data, data, args)
    assert hf_weights_digest(encoder._model) == before  # type: ignore[attr-defined]
    assert not torch.equal(head, frozen.network()["head"].weight)
    full = EmbeddingClassifierRouter(MODELS, encoder=f"hf:{folder}", mode="full")
    before = hf_weights_digest(full.network()["encoder"])
    full.fit(data, data, args)
    assert hf_weights_digest(full.network()["encoder"]) != before
    for router, name in ((frozen, "frozen"), (full, "full")):
        again = load_router(router.save(tmp_path / name), MODELS)
        np.testing.assert_array_equal(again.predict_proba(words), router.predict_proba(words))


def test_trainer_keeps_the_best_epoch_and_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scripted validation (accuracy, loss): epoch 2 beats 1 on accuracy, 3 ties with 2 but
    # has a higher loss, 4 is worse. The weights after epoch 2 must be kept, both at the
    # end of the run and when a later call resumes from the checkpoint.
    snapshots: list[torch.Tensor] = []

    def scripted(forward: Any, collate: Any, data: Any, batch_size: int) -> tuple[float, float]:
        snapshots.append(module.weight.detach().clone())
        return [(0.5, 0.6), (0.9, 0.3), (0.9, 0.4), (0.7, 0.2)][len(snapshots) - 1]

    monkeypatch.setattr(trainer, "evaluate", scripted)
    module, forward, data = linear_problem()
    args = TrainingArguments(
        epochs=4, learning_rate=0.1, warmup_steps=0, progress=False, output_dir=str(tmp_path)
    )
    history = train(module, forward, stack, data, data, args)
    assert (history.best_epoch, history.best_val_accuracy) == (2, 0.9)
    assert not torch.equal(snapshots[1], snapshots[3])
    assert torch.equal(module.weight, snapshots[1])
    fresh, forward, _ = linear_problem()
    history = train(fresh, forward, stack, data, data, args, resume=True)
    assert history.epochs_run == [] and history.best_epoch == 2
    assert torch.equal(fresh.weight, snapshots[1])


def stack(rows: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(rows))


def linear_problem() -> tuple[torch.nn.Linear, Any, ClassificationData]:
    """A 2-class linear problem with dropout, so that resuming must restore the RNG too."""
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    dropout = torch.nn.Dropout(0.5)

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = dropout(x) if module.training else x
        return module(features), features

    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    return module, forward, ClassificationData(list(x), (x[:, 0] > 0).astype(int))


@pytest.mark.parametrize(
    ("batch_size", "how"),
    [(8, "the loss is nan"), (20, "its weights are no longer finite numbers")],
)
def test_diverging_training_is_a_clear_error_and_checkpoints_nothing(
    tmp_path: Path, batch_size: int, how: str
) -> None:
    """A learning rate far too large: NaN weights were kept, checkpointed and saved, and
    the router sent every prompt to one class, its reasons saying p=nan."""
    module, forward, data = linear_problem()
    args = TrainingArguments(epochs=2, batch_size=batch_size, learning_rate=1e30, warmup_steps=0,
                             progress=False, output_dir=str(tmp_path))  # fmt: skip
    with pytest.raises(RouterLLMError, match=rf"training diverged in epoch 1 \({how}\): train again with a smaller learning rate \(now 1e\+30; routerllm train --learning-rate\)"):  # fmt: skip
        train(module, forward, stack, data, None, args)
    assert not (tmp_path / trainer.CHECKPOINT_NAME).exists()


def test_a_divergence_after_a_checkpoint_says_a_new_run_needs_overwrite(tmp_path: Path) -> None:
    """After an epoch's checkpoint, the advice alone (a smaller --learning-rate) was
    refused: the new run would go over an unfinished one, and --resume refuses another
    learning rate; only --overwrite starts it."""
    module, forward, data = linear_problem()
    calls = 0

    def inf_in_epoch_2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal calls
        calls += 1
        return forward(x * math.inf if calls > 5 else x)  # 40 items, batches of 8

    args = TrainingArguments(epochs=2, batch_size=8, learning_rate=0.05, warmup_steps=0,
                             progress=False, output_dir=str(tmp_path))  # fmt: skip
    with pytest.raises(RouterLLMError) as e:
        train(module, inf_in_epoch_2, stack, data, None, args)
    assert str(e.value) == (
        "training diverged in epoch 2 (the loss is nan): train again with a smaller learning "
        "rate (now 0.05; routerllm train --learning-rate), with --overwrite (the checkpoint "
        f"of epoch 1 in {tmp_path} is kept until then)"
    )
    assert (tmp_path / trainer.CHECKPOINT_NAME).exists()


def test_a_learning_rate_whose_step_overflows_float32_is_a_clear_error() -> None:
    """A learning rate float32 holds whose first AdamW step (lr / 0.1) it does not:
    ``routerllm train --learning-rate 1e38`` ended in torch's traceback ("value cannot
    be converted to type float without overflow")."""
    module, forward, data = linear_problem()
    args = TrainingArguments(epochs=1, learning_rate=1e38, warmup_steps=0, progress=False)
    with pytest.raises(RouterLLMError, match=r"training diverged in epoch 1 \(its step is past float32's range\): train again with a smaller learning rate \(now 1e\+38; routerllm train --learning-rate\)"):  # fmt: skip
        train(module, forward, stack, data, None, args)


def test_interrupted_training_resumes_exactly(tmp_path: Path) -> None:
    args = TrainingArguments(
        epochs=3, batch_size=8, learning_rate=0.05, warmup_steps=3, progress=False
    )
    reference, forward, data = linear_problem()
    train(reference, forward, stack, data, None, args)

    calls = 0

    def interrupting(rows: list[np.ndarray]) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 8:  # 5 batches an epoch: Ctrl-C in the middle of epoch 2
            raise KeyboardInterrupt
        return stack(rows)

    args.output_dir = str(tmp_path / "run")
    module, forward, _ = linear_problem()
    with pytest.raises(KeyboardInterrupt):
        train(module, forward, interrupting, data, None, args)
    module, forward, _ = linear_problem()
    history = train(module, forward, interrupting, data, None, args, resume=True)
    assert history.resumed_from == 1 and history.epochs_run == [2, 3]
    # Same optimizer, scheduler, dropout draws and shuffles as the uninterrupted run.
    assert torch.equal(module.weight, reference.weight)
    assert torch.equal(module.bias, reference.bias)


def test_a_resume_with_more_epochs_steps_on_the_longer_schedule_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resumed with more epochs than its checkpoint's run was asked for, the first step
    took the learning rate the old schedule ended on (0: linear decay), a step lost, and
    only the next ones followed the longer schedule "from where it stands" (README)."""
    rates: list[float] = []
    step = torch.optim.AdamW.step

    def recorded(self: torch.optim.AdamW, *args: Any, **kwargs: Any) -> Any:
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recorded)
    args = TrainingArguments(epochs=4, batch_size=8, learning_rate=0.05, warmup_steps=0,
                             progress=False, output_dir=str(tmp_path / "long"))  # fmt: skip
    module, forward, data = linear_problem()
    train(module, forward, stack, data, None, args)  # 5 steps an epoch, 20 in all
    longer = rates[10:]
    args.output_dir, args.epochs = str(tmp_path / "short"), 2
    module, forward, _ = linear_problem()
    train(module, forward, stack, data, None, args)
    assert rates[-1] == pytest.approx(0.05 / 10)  # its schedule ends at 0 after this step
    rates.clear()
    args.epochs = 4
    module, forward, _ = linear_problem()
    assert train(module, forward, stack, data, None, args, resume=True).epochs_run == [3, 4]
    assert rates == longer  # 0.025, 0.0225, ...: never the shorter schedule's 0


def test_router_resume_runs_only_the_missing_epochs(tmp_path: Path) -> None:
    out = tmp_path / "checkpoints"
    router = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
    first = router.fit(TRAIN, VAL, fast_args(epochs=1, output_dir=str(out)))
    assert first.epochs_run == [1]
    assert (out / "checkpoint.pt").is_file()
    again = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
    second = again.fit(TRAIN, VAL, fast_args(epochs=2, output_dir=str(out)), resume=True)
    assert second.resumed_from == 1 and second.epochs_run == [2]
    assert [r.epoch for r in second.records] == [1, 2]
    assert second.records[0] == first.records[0]
    done = again.fit(TRAIN, VAL, fast_args(epochs=2, output_dir=str(out)), resume=True)
    assert done.epochs_run == []
    with pytest.raises(RouterLLMError, match=r"checkpoint.pt holds 2 finished epochs, more than the 1 asked \(epochs\); resume with epochs of at least 2"):  # fmt: skip
        again.fit(TRAIN, VAL, fast_args(epochs=1, output_dir=str(out)), resume=True)
    changed = fast_args(epochs=3, output_dir=str(out))
    changed.learning_rate *= 2
    with pytest.raises(RouterLLMError, match=r"other settings \(learning_rate .* -> "):
        again.fit(TRAIN, VAL, changed, resume=True)
    # another warmup: a schedule the checkpoint's epochs were not trained on (silently
    # taken until 2026-12-05)
    with pytest.raises(RouterLLMError, match=r"other settings \(warmup_steps 0 -> 5\)"):
        again.fit(TRAIN, VAL, fast_args(epochs=3, warmup_steps=5, output_dir=str(out)), resume=True)
    other = EmbeddingClassifierRouter(MODELS, encoder=_Hashing(128))
    with pytest.raises(RouterLLMError, match=r"other settings \(encoder "):
        other.fit(TRAIN, VAL, fast_args(epochs=3, output_dir=str(out)), resume=True)
    with pytest.raises(RouterLLMError, match=r"other settings \(data_sha256 '[0-9a-f]{16}' -> "):
        again.fit(TRAIN[1:], VAL, fast_args(epochs=3, output_dir=str(out)), resume=True)
    with pytest.raises(RouterLLMError, match=r"learning_rate=nan \(must be positive\)"):
        fast_args(learning_rate=float("nan"))
    for value in (float("inf"), 1e39):  # 1e39: finite, but not for torch (float32)
        with pytest.raises(RouterLLMError, match=r"learning_rate=(inf|1e\+39) \(must be a finite number, at most 3.4e\+38\)"):  # fmt: skip
            fast_args(learning_rate=value)
    with pytest.raises(RouterLLMError, match=r"weight_decay=inf \(must be a finite number"):
        fast_args(weight_decay=float("inf"))
    with pytest.raises(RouterLLMError, match="needs TrainingArguments.output_dir"):
        again.fit(TRAIN, VAL, fast_args(), resume=True)
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RouterLLMError, match="checkpoint.pt is corrupt"):
        again.fit(TRAIN, VAL, fast_args(epochs=3, output_dir=str(out)), resume=True)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda p: p.pop("rng"), "no 'rng'"),
        (lambda p: p.pop("epoch"), "no 'epoch'"),
        (lambda p: p.update(epoch=None), "its epoch is None, not a whole number >= 1"),
        (lambda p: p.update(epoch=0), "its epoch is 0, not a whole number >= 1"),
        (lambda p: p.update(history=None), "'NoneType' object is not iterable"),
        (lambda p: p.update(scheduler={}), "no 'lr_lambdas'"),
        (lambda p: p.update(version="2"), "its version is '2'"),
    ],
    ids=[
        "no-rng",
        "no-epoch",
        "epoch-null",
        "epoch-0",
        "history-null",
        "scheduler-empty",
        "version-text",
    ],
)
def test_a_checkpoint_missing_a_part_is_a_clear_error_on_resume(
    tmp_path: Path, change: Any, detail: str
) -> None:
    """A checkpoint of this version missing a part, or with one of the wrong kind (another
    program's, one edited by hand), was a traceback on --resume (KeyError: 'rng'), or
    resumed from epoch 0 and trained one more epoch than asked."""
    out = tmp_path / "checkpoints"
    EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder()).fit(
        TRAIN, VAL, fast_args(epochs=1, output_dir=str(out))
    )
    payload = torch.load(out / "checkpoint.pt", weights_only=True)
    change(payload)
    torch.save(payload, out / "checkpoint.pt")
    again = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
    with pytest.raises(RouterLLMError) as err:
        again.fit(TRAIN, VAL, fast_args(epochs=2, output_dir=str(out)), resume=True)
    assert str(err.value) == (
        f"{out / 'checkpoint.pt'} is corrupt or not a RouterLLM checkpoint ({detail}); delete "
        f"it (or its checkpoints folder) to train from scratch, or train without resuming "
        f"(no --resume / resume=False)"
    )


def test_classes_go_to_class_id_then_tier_then_nearest_tier() -> None:
    router = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder())
    served = {CLASS_NAMES[c]: router.model_names[m] for c, (m, _) in enumerate(router.routes)}
    assert served == {
        "code_generation": "big",  # heavy tier
        "text_generation": "writer",  # class_id 1, although bigger than mid-a
        "general_purpose": "mid-a",  # smallest medium model
        "lightweight": "small",
    }
    light, heavy = Candidate("l", 1.0, tier="light"), Candidate("h", 9.0, tier="heavy")
    medium = Candidate("m", 3.0, tier="medium")
    # No medium model: medium classes go to the bigger of the two nearest tiers.
    assert [m for m, _ in class_routes([light, heavy], ("heavy", "medium", "light"))] == [1, 1, 0]
    routes = class_routes([light, medium], ("heavy", "light"))
    assert routes == [(1, "nearest to heavy"), (0, "light tier")]


def test_score_maps_class_probabilities_onto_models(trained: EmbeddingClassifierRouter) -> None:
    texts = [p.text for p in VAL]
    probs, scores = trained.predict_proba(texts), trained.score(texts)
    # Columns (smallest first): small, mid-a, mid-b, writer, big.
    assert trained.model_names == ["small", "mid-a", "mid-b", "writer", "big"]
    expected = np.stack([probs[:, 3], probs[:, 2], 0 * probs[:, 0], probs[:, 1], probs[:, 0]], 1)
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    decisions = trained.route_batch(texts)
    assert [d.model for d in decisions] == ["big", "writer", "mid-a", "small"] * 3
    assert re.fullmatch(
        r"class code_generation \(p=0\.\d\d\) -> big \(heavy tier\)", decisions[0].reason
    )
    assert trained.route(texts[1]).reason.startswith("class text_generation")
    # Unavailable target: the next best allowed model.
    assert trained.route(texts[0], allowed=["small", "mid-a"]).model in {"small", "mid-a"}


def test_the_reason_names_the_classes_that_chose_the_model() -> None:
    # Routing adds up the probabilities of the classes each model serves, so the
    # single most likely class (a, 0.40 -> model 0) can lose to two that share a
    # model (b + c, 0.60 -> model 1): the reason must name those two, not a.
    probs = np.array([0.40, 0.35, 0.25])
    reason = class_reason(["a", "b", "c"], probs, [0, 1, 1], chosen=1, model="big")
    assert reason == "classes b (p=0.35) + c (p=0.25) -> big, p=0.60 together"
    assert (
        class_reason(["a", "b", "c"], probs, [0, 1, 1], 0, "small") == "class a (p=0.40) -> small"
    )
    assert class_reason(["a"], np.array([1.0]), [0], 1, "x") == "-> x (no class maps to it)"


def test_routed_reasons_name_the_chosen_model() -> None:
    two = [Candidate("small", 0.5, tier="light"), Candidate("big", 7.0, tier="heavy")]
    router = EmbeddingClassifierRouter(two, encoder=HashingEncoder())
    router.fit(TRAIN, VAL, fast_args())
    for decision in router.route_batch([p.text for p in VAL]):
        assert f"-> {decision.model}" in decision.reason, decision.reason


def test_save_load_round_trip_is_identical(
    tmp_path: Path,
    trained: EmbeddingClassifierRouter,
    hashing_spec: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trained.save(tmp_path / "clf")
    assert {p.name for p in (tmp_path / "clf").iterdir()} == {".lock", "config.json", "weights.npz"}
    again = load_router(tmp_path / "clf", list(reversed(MODELS)))
    assert isinstance(again, EmbeddingClassifierRouter)
    assert again.options == trained.options and again.options["encoder"] == hashing_spec
    # the demo's warm-up: the encoder (its weights load on its first call) reads a text
    read: list[list[str]] = []
    encode = again.encoder.encode
    monkeypatch.setattr(again.encoder, "encode", lambda t, b=64: read.append(list(t)) or encode(t, b))  # fmt: skip
    again.warm_up("Hello")
    assert read == [["Hello"]]
    texts = [p.text for p in TRAIN + VAL]
    np.testing.assert_array_equal(again.predict_proba(texts), trained.predict_proba(texts))
    np.testing.assert_array_equal(again.score(texts), trained.score(texts))


def test_broken_or_missing_weights_are_clear_errors(
    tmp_path: Path, trained: EmbeddingClassifierRouter, hashing_spec: str
) -> None:
    folder = trained.save(tmp_path / "clf")
    (folder / "weights.npz").unlink()
    with pytest.raises(RouterLLMError, match=r"weights \(weights.npz\) are missing"):
        load_router(folder, MODELS)
    (folder / "weights.npz").write_bytes(b"garbage")
    with pytest.raises(RouterLLMError, match="weights.npz does not match .*config.json"):
        load_router(folder, MODELS)
    # A checkpoint saved before the digest was recorded: the arrays themselves are checked.
    meta = json.loads((folder / "config.json").read_text())
    del meta["weights_sha256"]
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(RouterLLMError, match="weights.npz is corrupt"):
        load_router(folder, MODELS)
    # damaged bytes in the zip's directory of an array: its compression method, its
    # "encrypted" flag (the zip module raised NotImplementedError, RuntimeError: a traceback)
    whole = trained.save(tmp_path / "whole").joinpath("weights.npz").read_bytes()
    entry = whole.index(b"PK\x01\x02")
    for offset, value in ((10, b"\x63\x00"), (8, b"\x01\x00")):
        (folder / "weights.npz").write_bytes(whole[: entry + offset] + value + whole[entry + offset + 2 :])  # fmt: skip
        with pytest.raises(RouterLLMError, match="weights.npz is corrupt"):
            load_router(folder, MODELS)
    np.savez(folder / "weights.npz", **{"head.weight": np.zeros((4, 64), np.float32)})  # type: ignore[arg-type]
    with pytest.raises(RouterLLMError, match="do not fit a frozen-mode classifier"):
        load_router(folder, MODELS)


def test_weights_for_another_width_than_the_encoders_name_both_widths(
    tmp_path: Path, trained: EmbeddingClassifierRouter, hashing_spec: str
) -> None:
    """config.json's encoder changed by hand to one of another width: torch's "size
    mismatch for head.weight: copying a param with shape torch.Size([4, 64]) ..."."""
    folder = trained.save(tmp_path / "clf")
    meta = json.loads((folder / "config.json").read_text())
    meta["options"]["encoder"] = "hashing:32"
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(RouterLLMError) as err:
        load_router(folder, MODELS)
    assert str(err.value) == (
        f"{folder / 'weights.npz'}: saved weights are for 64-wide embeddings, but encoder "
        f"'hashing:32' gives 32-wide ones: name the encoder they were trained with, or train "
        f"the router again"
    )


def test_truncated_weights_are_a_clear_error(
    tmp_path: Path, trained: EmbeddingClassifierRouter, hashing_spec: str
) -> None:
    folder = trained.save(tmp_path / "clf")
    weights = folder / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(RouterLLMError, match="weights.npz does not match"):
        load_router(folder, MODELS)


def test_a_device_torch_cannot_use_here_is_a_clear_error_when_loading(
    tmp_path: Path, trained: EmbeddingClassifierRouter, hashing_spec: str
) -> None:
    """A config's router.options device (cuda on a machine without a GPU, a typo): one
    line when the router is built, not torch's traceback at load or the first prompt."""
    folder = trained.save(tmp_path / "clf")
    for device in ("gpu", "cuda:99", "meta"):
        with pytest.raises(RouterLLMError, match=rf"options given for it \(device\): .*device '{device}' cannot be used here"):  # fmt: skip
            load_router(folder, MODELS, {"device": device})
    on_cpu = load_router(folder, MODELS, {"device": "cpu"})
    texts = [p.text for p in VAL]
    np.testing.assert_allclose(on_cpu.score(texts), trained.score(texts), atol=1e-6)


def test_bad_options_and_data_are_clear_errors() -> None:
    with pytest.raises(RouterLLMError, match="mode must be one of frozen, full"):
        EmbeddingClassifierRouter(MODELS, mode="half")
    with pytest.raises(RouterLLMError, match="needs an encoder spec string"):
        EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder(), mode="full")
    with pytest.raises(RouterLLMError, match="encoder='minilm' or 'hf:<id or path>'"):
        EmbeddingClassifierRouter(MODELS, encoder="static", mode="full")
    with pytest.raises(RouterLLMError, match="give class_tiers"):
        EmbeddingClassifierRouter(MODELS, num_classes=5)
    with pytest.raises(RouterLLMError, match="bad options for router 'classifier': unknown option 'layers'; its options are batch_size, class_tiers, device, dropout, encoder, max_length, mode, num_classes, pooling$"):  # fmt: skip
        create_router("classifier", MODELS, layers=3)
    with pytest.raises(RouterLLMError, match="bad options for router 'smallest': unknown options 'a', 'b'; it takes none$"):  # fmt: skip
        create_router("smallest", MODELS, a=1, b=2)
    router = create_router("classifier", MODELS, encoder=HashingEncoder())
    with pytest.raises(RouterLLMError, match="no trained weights: call fit"):
        router.route("hello")
    with pytest.raises(DataError, match=r"labels must be in 0..3, found \[7\]"):
        router.fit([LabeledPrompt("x", 7)], [], fast_args())
    with pytest.raises(RouterLLMError, match="must be positive"):
        TrainingArguments(epochs=0)
    with pytest.raises(RouterLLMError, match=r"epochs=10000000000 \(at most 10,000\)"):
        TrainingArguments(epochs=10**10)  # a typo: it trained on, for years by the estimate
    with pytest.raises(RouterLLMError, match=r"weight_decay=-1 \(must be >= 0\)"):
        TrainingArguments(weight_decay=-1)
    with pytest.raises(RouterLLMError, match="unknown loss 'nosuch'"):
        TrainingArguments(loss="nosuch")
    with pytest.raises(RouterLLMError, match="bad options for loss 'focal'"):
        TrainingArguments(loss="focal", loss_options={"nope": 1.0})
    with pytest.raises(RouterLLMError, match=r"learning_rate='x' \(must be positive\)"):
        TrainingArguments(learning_rate="x")  # type: ignore[arg-type]
    for items in (["a", "b"], [{"text": "a", "label": 0}], "ab"):
        with pytest.raises(
            DataError,
            match=r"train(\[0\] is (str|dict), not LabeledPrompt| must be a list of LabeledPrompt items, not a single string)",
        ):
            router.fit(items, [], fast_args())  # type: ignore[arg-type]
    with pytest.raises(DataError, match="labels must be integers"):
        router.fit([LabeledPrompt("x", 1.5)], [], fast_args())  # type: ignore[arg-type]
    with pytest.raises(RouterLLMError, match="args must be TrainingArguments, got dict"):
        router.fit([LabeledPrompt("x", 1)], [], {"epochs": 1})  # type: ignore[arg-type]
    for folder in (None, "", 5):
        with pytest.raises(RouterLLMError, match="a router is saved to a folder path"):
            router.save(folder)  # type: ignore[arg-type]


def test_bool_labels_are_refused_before_any_training() -> None:
    router = create_router("classifier", MODELS, encoder=HashingEncoder())
    good = [LabeledPrompt("x", 1)]
    for items, val, split in (
        ([LabeledPrompt("x", True)], [], "train"),
        (good, [LabeledPrompt("y", False)], "val"),
    ):
        with pytest.raises(DataError, match=f"{split}: labels must be integers"):
            router.fit(items, val, fast_args())
    assert not router.is_trained


def test_import_does_not_load_torch() -> None:
    code = "import sys, routerllm.routers.classifier; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow  # ~17 s on 2 cores: loads the packaged MiniLM twice, writes 90 MB
def test_full_mode_fine_tunes_minilm(tmp_path: Path) -> None:
    router = EmbeddingClassifierRouter(MODELS, encoder="minilm", mode="full", max_length=32)
    data = TRAIN[:16]
    args = TrainingArguments(
        epochs=1, batch_size=8, learning_rate=1e-4, warmup_steps=0, max_length=32, progress=False
    )
    before = router.network()["encoder"].embeddings.word_embeddings.weight.detach().clone()
    history = router.fit(data, VAL[:4], args)
    assert history.epochs_run == [1] and history.records[0].val_accuracy is not None
    after = router.network()["encoder"].embeddings.word_embeddings.weight
    assert not torch.equal(before, after)  # the encoder itself was trained
    texts = [p.text for p in VAL]
    probs = router.predict_proba(texts)
    assert probs.shape == (12, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    folder = router.save(tmp_path / "full")
    again = load_router(folder, MODELS)
    np.testing.assert_array_equal(again.predict_proba(texts), probs)


def tiny_bert(folder: Path, words: list[str]) -> Path:
    """A real (random) BERT of 16 positions with a word-level tokenizer of ``words``, in
    ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
        model_input_names=["input_ids", "attention_mask"],
    ).save_pretrained(folder)  # fmt: skip
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=16,
                         max_position_embeddings=16)).save_pretrained(folder)  # fmt: skip
    return folder


def test_full_mode_cuts_texts_where_the_models_positions_end(tmp_path: Path) -> None:
    """--mode full --encoder hf:<a BERT with 16 positions> on prompts of more tokens than
    that ended in a bare RuntimeError traceback from torch; the frozen hf: encoder cut them."""
    words = ["[UNK]", "[PAD]", "hello", "world", "code"]
    folder = tiny_bert(tmp_path / "bert", words)
    router = EmbeddingClassifierRouter(MODELS, encoder=f"hf:{folder}", mode="full")
    data = [LabeledPrompt(" ".join([w] * 30), c) for c, w in enumerate(words[1:])]
    args = TrainingArguments(epochs=1, batch_size=2, warmup_steps=0, progress=False)
    assert router.fit(data, data, args).epochs_run == [1]
    texts = ["hello world " * 20, "code"]
    probs = router.predict_proba(texts)
    assert probs.shape == (2, 4)
    # The first 16 tokens decide: what follows them is not read.
    cut = router.predict_proba(["hello world " * 8 + "code"])[0]
    np.testing.assert_allclose(cut, probs[0], rtol=1e-5)
    again = load_router(router.save(tmp_path / "router"), MODELS)
    np.testing.assert_array_equal(again.predict_proba(texts), probs)


def test_full_mode_fine_tunes_an_encoder_decoders_encoder(tmp_path: Path) -> None:
    """--mode full --encoder hf:<a T5 folder> used to end in a bare ValueError traceback
    ("You must specify exactly one of input_ids or inputs_embeds")."""
    folder = tiny_seq2seq(tmp_path / "t5", "t5")
    router = EmbeddingClassifierRouter(MODELS, encoder=f"hf:{folder}", mode="full")
    data = [LabeledPrompt(t, c) for c, t in enumerate(["hello", "world", "code", "hello code"])]
    args = TrainingArguments(epochs=1, batch_size=2, warmup_steps=0, progress=False)
    assert router.fit(data, data, args).epochs_run == [1]
    texts = ["hello world", "code world"]
    probs = router.predict_proba(texts)
    assert probs.shape == (2, 4)
    again = load_router(router.save(tmp_path / "router"), MODELS)
    np.testing.assert_array_equal(again.predict_proba(texts), probs)


def test_a_full_mode_router_whose_encoder_files_are_damaged_is_one_clear_error(
    tmp_path: Path,
) -> None:
    # A cut model.safetensors in the hf:<folder> it fine-tuned was a SafetensorError
    # traceback when the saved router was loaded.
    from .test_complexity_router import build_classifier

    folder = build_classifier(tmp_path / "bert", {0: "a", 1: "b"})
    router = EmbeddingClassifierRouter(MODELS, encoder=f"hf:{folder}", mode="full")
    data = [LabeledPrompt(t, c) for c, t in enumerate(["hello", "world", "code", "hello code"])]
    router.fit(
        data, data, TrainingArguments(epochs=1, batch_size=2, warmup_steps=0, progress=False)
    )
    saved = router.save(tmp_path / "router")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(RouterLLMError) as err:
        load_router(saved, MODELS)
    assert str(err.value) == (
        f"cannot load encoder {str(folder)!r} (Error while deserializing header: invalid "
        f"header length); give a local path or a hub id in the Hugging Face cache"
    )


class _CountingHashing(_Hashing):
    """The 64-bin hashing encoder, counting the texts it encodes."""

    def __init__(self) -> None:
        super().__init__(64)
        self.encoded = 0

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        self.encoded += len(texts)
        return super().encode(texts, batch_size)


def test_a_checkpoint_resume_would_refuse_is_refused_before_the_data_is_encoded(
    tmp_path: Path,
) -> None:
    """Other settings, other data or fewer epochs than the checkpoint's were refused only
    once every prompt was encoded: minutes with a transformer encoder on a large set."""
    out = tmp_path / "checkpoints"
    EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder()).fit(
        TRAIN, VAL, fast_args(epochs=2, output_dir=str(out))
    )
    changed = fast_args(epochs=3, output_dir=str(out))
    changed.learning_rate *= 2
    for train_on, args, says in (
        (TRAIN, changed, r"other settings \(learning_rate"),
        (TRAIN[1:], fast_args(epochs=3, output_dir=str(out)), r"other settings \(data_sha256"),
        (TRAIN, fast_args(epochs=1, output_dir=str(out)), "holds 2 finished epochs"),
    ):
        encoder = _CountingHashing()
        router = EmbeddingClassifierRouter(MODELS, encoder=encoder)
        with pytest.raises(RouterLLMError, match=says):
            router.fit(train_on, VAL, args, resume=True)
        assert encoder.encoded == 0


def test_resuming_with_another_dropout_or_pooling_is_refused(tmp_path: Path) -> None:
    """The router's dropout (both modes) and pooling (full mode) change what its epochs
    train; a checkpoint of another was resumed without a word, so the run matched neither
    an uninterrupted one nor the settings the user gave."""
    out = tmp_path / "frozen"
    EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder()).fit(
        TRAIN, VAL, fast_args(epochs=1, output_dir=str(out))
    )
    other = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder(), dropout=0.5)
    with pytest.raises(RouterLLMError, match=r"other settings \(dropout 0.1 -> 0.5\)"):
        other.fit(TRAIN, VAL, fast_args(epochs=2, output_dir=str(out)), resume=True)
    # frozen mode pools nothing itself (the encoder does): another pooling resumes
    cls = EmbeddingClassifierRouter(MODELS, encoder=HashingEncoder(), pooling="cls")
    assert cls.fit(TRAIN, VAL, fast_args(epochs=2, output_dir=str(out)), resume=True).epochs_run == [2]  # fmt: skip
    folder = tiny_seq2seq(tmp_path / "t5", "t5")
    data = [LabeledPrompt(t, c) for c, t in enumerate(["hello", "world", "code", "hello code"])]

    def args(epochs: int) -> TrainingArguments:
        return TrainingArguments(epochs=epochs, batch_size=2, warmup_steps=0, progress=False,
                                 output_dir=str(tmp_path / "full"))  # fmt: skip

    EmbeddingClassifierRouter(MODELS, encoder=f"hf:{folder}", mode="full").fit(data, data, args(1))
    pooled = EmbeddingClassifierRouter(MODELS, encoder=f"hf:{folder}", mode="full", pooling="cls")
    with pytest.raises(RouterLLMError, match=r"other settings \(pooling 'mean' -> 'cls'\)"):
        pooled.fit(data, data, args(2), resume=True)
