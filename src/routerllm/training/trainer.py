"""The training loop of the learned classifier routers (MISSION M3.2).

AdamW, linear warmup then linear decay, the best epoch by validation accuracy
kept, progress bars (``routerllm.progress``). Training is resumable: after every finished epoch a
checkpoint (model, optimizer, scheduler, epoch, best accuracy and weights,
RNG state, history) is written atomically to ``output_dir/checkpoint.pt``
(``checkpoint``: its format, saving and resuming);
``train(..., resume=True)`` with the same ``output_dir`` continues after the
last finished epoch, so a Ctrl-C loses only the epoch that was running.

The loop knows nothing of routers: it gets a module (for its parameters and
state), a ``forward(inputs) -> (logits, features)`` function and a
``collate(items) -> inputs`` function that turns a batch of items (texts,
embedding rows...) into model inputs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.checks import FLOAT32_MAX, MAX_EPOCHS, MAX_SEED, is_integer, is_number, is_seed
from routerllm.exceptions import RouterLLMError, missing_dependency
from routerllm.files import remove_staged_leftovers
from routerllm.progress import progress
from routerllm.training.checkpoint import (
    CHECKPOINT_NAME,
    EpochRecord,
    TrainingHistory,
    check_same_run,
    copy_state,
    more_epochs_than_asked,
    read_checkpoint,
    restore_checkpoint,
    run_arguments,
    save_checkpoint,
)
from routerllm.training.losses import make_loss

try:
    import torch
    from torch import Tensor, nn
except ImportError as e:  # pragma: no cover - torch is part of the hf extra
    raise missing_dependency("torch", "hf", e) from e

logger = logging.getLogger(__name__)

DEFAULT_WARMUP_STEPS = 100

Forward = Callable[[Any], tuple[Tensor, Tensor]]
Collate = Callable[[Sequence[Any]], Any]


@dataclass
class TrainingArguments:
    """Hyper-parameters of one training run (defaults: MISSION M3.2)."""

    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    #: Steps over which the learning rate rises to its value; ``None``: 100 steps,
    #: but never more than a tenth of the run (see ``warmup``).
    warmup_steps: int | None = None
    loss: str = "ce"
    #: Overrides of the loss's weights, e.g. ``{"gamma": 3.0}`` (see ``make_loss``).
    loss_options: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    #: Where the per-epoch checkpoint goes; ``None``: no checkpoints, no resume.
    output_dir: str | None = None
    #: Tokens kept per prompt when the encoder itself is trained; ``None``: the router's
    #: own ``max_length`` (512 unless given). A full-mode router routes by the cut-off it
    #: was trained with, and refuses another here than one it was given; a frozen one
    #: reads none and takes any.
    max_length: int | None = None
    max_grad_norm: float | None = 1.0
    eval_batch_size: int = 64
    #: Progress of the epochs and their batches on stderr (``routerllm.progress``).
    progress: bool = True

    def __post_init__(self) -> None:
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "eval_batch_size": self.eval_batch_size,
            **({} if self.max_length is None else {"max_length": self.max_length}),
        }
        bad = [
            f"{k}={v!r} (must be positive)"
            for k, v in positive.items()
            if not (is_number(v) and v > 0)
        ]
        for k in ("learning_rate", "weight_decay"):  # torch's optimiser holds them as float32
            if is_number(v := getattr(self, k)) and v > FLOAT32_MAX:  # NaN, negative: above
                bad.append(f"{k}={v:g} (must be a finite number, at most {FLOAT32_MAX:.3g})")
        if is_number(self.epochs) and self.epochs > MAX_EPOCHS:  # a typo: it would train for years
            bad.append(f"epochs={self.epochs!r} (at most {MAX_EPOCHS:,})")
        warmup = 0 if self.warmup_steps is None else self.warmup_steps
        non_negative = {"warmup_steps": warmup, "weight_decay": self.weight_decay}
        bad += [
            f"{k}={v!r} (must be >= 0)"
            for k, v in non_negative.items()
            if not (is_number(v) and v >= 0)
        ]
        if not is_seed(self.seed):
            bad.append(f"seed={self.seed!r} (must be an integer >= 0 and <= {MAX_SEED})")
        if bad:
            raise RouterLLMError(f"bad training arguments: {', '.join(bad)}")
        make_loss(self.loss, **self.loss_options)  # an unknown loss fails now, not after encoding

    def warmup(self, total_steps: int) -> int:
        """The warmup steps of a run of ``total_steps``: ``warmup_steps`` when given,
        else 100, but never more than a tenth of the run (a short run reaches its rate)."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return min(DEFAULT_WARMUP_STEPS, total_steps // 10)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train`: epochs up to ``saved_epoch`` (0: none) are in
    ``checkpoint``, and ``train(..., resume=True)`` continues after it."""

    def __init__(self, saved_epoch: int, checkpoint: Path | None) -> None:
        self.saved_epoch, self.checkpoint = saved_epoch, checkpoint
        where = (
            f"epochs up to {saved_epoch} are saved in {checkpoint}"
            if saved_epoch
            else "no epoch was saved"
        )
        super().__init__(f"training interrupted: {where}")


@dataclass
class ClassificationData:
    """Items the ``collate`` function understands, with their integer labels."""

    items: Sequence[Any]
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.items) != len(self.labels):
            raise RouterLLMError(f"{len(self.items)} items but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.items)


def linear_schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR factor: 0 -> 1 over ``warmup_steps``, then linearly down to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def _optimizer(module: nn.Module, args: TrainingArguments) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    # As in BERT: no weight decay on biases and LayerNorm weights (the 1-d tensors).
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": args.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=args.learning_rate)


@torch.no_grad()
def evaluate(
    forward: Forward, collate: Collate, data: ClassificationData, batch_size: int
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on ``data``; the module must be in eval mode."""
    correct, total_loss = 0, 0.0
    for start in range(0, len(data), batch_size):
        logits, _ = forward(collate(data.items[start : start + batch_size]))
        targets = torch.as_tensor(data.labels[start : start + batch_size], device=logits.device)
        correct += int((logits.argmax(dim=-1) == targets).sum())
        total_loss += float(nn.functional.cross_entropy(logits.float(), targets, reduction="sum"))
    return correct / len(data), total_loss / len(data)


def _improves(record: EpochRecord, history: TrainingHistory) -> bool:
    """Higher validation accuracy, or the same with a lower validation loss (no data: always)."""
    best = next((r for r in history.records if r.epoch == history.best_epoch), None)
    if record.val_accuracy is None or best is None or best.val_accuracy is None:
        return True
    if record.val_accuracy != best.val_accuracy:
        return record.val_accuracy > best.val_accuracy
    return (record.val_loss or 0.0) < (best.val_loss or 0.0)


def _diverged(epoch: int, how: str, args: TrainingArguments) -> RouterLLMError:
    # NaN weights route every prompt to one class: never saved, nor checkpointed
    kept = ""
    if epoch > 1 and args.output_dir and (Path(args.output_dir) / CHECKPOINT_NAME).exists():
        # resuming refuses another learning rate: a new run replaces that checkpoint
        kept = f", with --overwrite (the checkpoint of epoch {epoch - 1} in {args.output_dir} is kept until then)"  # fmt: skip
    return RouterLLMError(
        f"training diverged in epoch {epoch} ({how}): train again with a smaller learning "
        f"rate (now {args.learning_rate:g}; routerllm train --learning-rate){kept}"
    )


def _train_epoch(
    module: nn.Module,
    forward: Forward,
    collate: Collate,
    train_data: ClassificationData,
    val_data: ClassificationData | None,
    args: TrainingArguments,
    epoch: int,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> EpochRecord:
    started = time.perf_counter()
    module.train()
    # The shuffle depends only on (seed, epoch): a resumed run sees the same order.
    order = np.random.default_rng([args.seed, epoch]).permutation(len(train_data))
    total_loss, correct = 0.0, 0
    batches = progress(
        range(0, len(order), args.batch_size),
        desc=f"epoch {epoch}/{args.epochs}",
        enabled=args.progress,
        leave=False,
    )
    for start in batches:
        idx = order[start : start + args.batch_size]
        logits, features = forward(collate([train_data.items[i] for i in idx]))
        targets = torch.as_tensor(train_data.labels[idx], device=logits.device)
        loss = loss_fn(logits, targets, features)
        if not math.isfinite(value := float(loss.detach())):
            raise _diverged(epoch, f"the loss is {value}", args)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(module.parameters(), args.max_grad_norm)
        try:
            optimizer.step()
        except RuntimeError as e:  # AdamW's first steps are lr / 0.1: past float32's range
            if "overflow" not in str(e):
                raise
            raise _diverged(epoch, "its step is past float32's range", args) from e
        scheduler.step()
        total_loss += value * len(idx)
        correct += int((logits.detach().argmax(dim=-1) == targets).sum())
        batches.set_postfix(loss=round(value, 4))
    if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
        raise _diverged(epoch, "its weights are no longer finite numbers", args)
    module.eval()
    val_accuracy, val_loss = (
        evaluate(forward, collate, val_data, args.eval_batch_size)
        if val_data is not None
        else (None, None)
    )
    return EpochRecord(
        epoch=epoch,
        train_loss=total_loss / len(order),
        train_accuracy=correct / len(order),
        val_accuracy=val_accuracy,
        val_loss=val_loss,
        seconds=round(time.perf_counter() - started, 3),
    )


def check_resumable(args: TrainingArguments, setup: dict[str, Any] | None = None) -> None:
    """Refuse now what :func:`train` with ``resume=True`` would refuse of the checkpoint
    in ``args.output_dir`` (damaged, of other settings, ``setup`` or data, more epochs
    than asked), before the caller encodes its data: minutes, for a large set."""
    if args.output_dir is None:
        return
    checkpoint = Path(args.output_dir) / CHECKPOINT_NAME
    if not checkpoint.exists():
        return
    saved = read_checkpoint(checkpoint, mmap=True)  # its epochs alone: tensors not read
    check_same_run(checkpoint, saved.get("setup"), {**(setup or {}), **run_arguments(args)})
    epoch: Any = saved.get("epoch")  # not a whole number: restore_checkpoint says so
    if is_integer(epoch) and int(epoch) > args.epochs:
        raise more_epochs_than_asked(checkpoint, int(epoch), args.epochs)


def train(
    module: nn.Module,
    forward: Forward,
    collate: Collate,
    train_data: ClassificationData,
    val_data: ClassificationData | None,
    args: TrainingArguments,
    resume: bool = False,
    setup: dict[str, Any] | None = None,
) -> TrainingHistory:
    """Train ``module`` in place; on return it holds the weights of the best epoch.

    ``setup`` names what the caller built ``module`` from (e.g. its encoder): it is
    saved with each checkpoint, and resuming refuses a checkpoint whose setup or
    training arguments differ (``RESUME_MUST_MATCH``).

    The best epoch is the one with the highest validation accuracy (ties:
    the lower validation loss, then the earlier epoch), or the last one when
    there is no validation data.
    """
    if len(train_data) == 0:
        raise RouterLLMError("no training examples")
    if val_data is not None and len(val_data) == 0:
        val_data = None
    if resume and args.output_dir is None:
        raise RouterLLMError(
            "resume=True needs TrainingArguments.output_dir (where checkpoints are)"
        )
    loss_fn = make_loss(args.loss, **args.loss_options)
    # whole numbers: a float's division rounds n / 10**400 to 0.0, which counted no step
    steps_per_epoch = -(-len(train_data) // args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    optimizer = _optimizer(module, args)
    warmup = args.warmup(total_steps)
    schedule = linear_schedule(warmup, total_steps)
    if warmup > total_steps:  # given so: kept, but never at its rate
        logger.warning(
            "a warmup of %d steps is longer than the run's %d: the learning rate rises all "
            "run and reaches %.2g%% of %g at most", warmup, total_steps,
            100 * schedule(total_steps - 1), args.learning_rate,
        )  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    checkpoint = Path(args.output_dir) / CHECKPOINT_NAME if args.output_dir else None
    run = {**(setup or {}), **run_arguments(args)}
    history = TrainingHistory()
    best_state: dict[str, Tensor] | None = None
    saved = read_checkpoint(checkpoint) if resume and checkpoint and checkpoint.exists() else None
    if resume and saved is None:
        logger.info("no checkpoint in %s: training from scratch", args.output_dir)
    if saved is None and checkpoint is not None and checkpoint.exists():
        logger.warning("overwriting the checkpoint in %s (resume=False)", args.output_dir)
    if checkpoint is not None:  # a run killed as it wrote its checkpoint left a copy
        remove_staged_leftovers(checkpoint)

    devices = list(range(torch.cuda.device_count()))
    # The caller's global RNG is left as it was; dropout draws from a seeded copy.
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(args.seed)
        if saved is not None:
            check_same_run(checkpoint, saved.get("setup"), run)
            history, best_state = restore_checkpoint(
                checkpoint, saved, module, optimizer, scheduler, args
            )
            logger.info("resuming after epoch %d from %s", saved["epoch"], checkpoint)
        first_epoch = history.resumed_from + 1
        saved_epoch = history.resumed_from  # the last epoch the checkpoint holds
        epochs = progress(
            range(first_epoch, args.epochs + 1),
            desc="epochs",
            enabled=args.progress,
            initial=first_epoch - 1,
            total=args.epochs,
        )
        try:  # a second Ctrl-C, as the bar closes after the first, is said the same way
            try:
                for epoch in epochs:
                    record = _train_epoch(
                        module,
                        forward,
                        collate,
                        train_data,
                        val_data,
                        args,
                        epoch,
                        loss_fn,
                        optimizer,
                        scheduler,
                    )
                    if _improves(record, history):
                        history.best_epoch, history.best_val_accuracy = epoch, record.val_accuracy
                        best_state = copy_state(module)
                    history.records.append(record)
                    logger.info("epoch %d: %s", epoch, record)
                    epochs.set_postfix(
                        val_acc=record.val_accuracy, loss=round(record.train_loss, 4)
                    )
                    if checkpoint is not None:
                        kept = None if history.best_epoch == epoch else best_state
                        save_checkpoint(
                            checkpoint,
                            module,
                            optimizer,
                            scheduler,
                            history,
                            kept,
                            run,
                            args.epochs,
                        )
                        saved_epoch = epoch
            finally:
                epochs.close()
        except KeyboardInterrupt as e:
            # Not the last finished epoch: Ctrl-C may have stopped its checkpoint's write.
            raise TrainingInterrupted(saved_epoch, checkpoint) from e
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history
