"""What a training run records (``TrainingHistory``), and its checkpoint.

After every finished epoch the training loop (``trainer.train``) writes a checkpoint
atomically to ``output_dir/checkpoint.pt``: the model, optimizer, scheduler, epoch, best
accuracy and weights, RNG state, history, and the settings the run must keep to be
resumed (``RESUME_MUST_MATCH`` and the caller's setup). Resuming puts them back; a
checkpoint that cannot be resumed from (corrupt, foreign, of another model or run) is a
clear error that says how to start afresh.
"""

from __future__ import annotations

import errno
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routerllm.backends.interrupts import deferred_interrupts
from routerllm.checks import is_integer
from routerllm.exceptions import (
    CorruptCheckpointError,
    RouterLLMError,
    missing_dependency,
    one_line,
    os_reason,
)
from routerllm.files import written_atomically
from routerllm.path_checks import refuse_special_file

try:
    import torch
    from torch import Tensor, nn
except ImportError as e:  # pragma: no cover - torch is part of the hf extra
    raise missing_dependency("torch", "hf", e) from e

if TYPE_CHECKING:
    from routerllm.training.trainer import TrainingArguments

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1


@dataclass
class EpochRecord:
    """One finished epoch's figures."""

    epoch: int
    train_loss: float
    #: Accuracy on the training batches as they were seen (dropout on).
    train_accuracy: float
    val_accuracy: float | None
    #: Mean cross-entropy on the validation set (breaks ties between equal accuracies).
    val_loss: float | None
    seconds: float


@dataclass
class TrainingHistory:
    """Every finished epoch (those loaded from a checkpoint too) and the kept one."""

    records: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float | None = None
    #: Epochs already finished (read from the checkpoint) when this call started.
    resumed_from: int = 0

    @property
    def epochs_run(self) -> list[int]:
        """The epochs this call trained (not those it resumed past)."""
        return [r.epoch for r in self.records if r.epoch > self.resumed_from]


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def copy_state(module: nn.Module) -> dict[str, Tensor]:
    """A copy of ``module``'s weights that later training steps leave as they are."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _write_atomically(payload: dict[str, Any], path: Path) -> None:
    try:
        # staged, so a reader never sees half a checkpoint; written through a Python file:
        # torch's own writer, given a path, says a full disk as a RuntimeError of its zip
        # code ("unexpected pos 128 vs 0"), not the OSError
        # Ctrl-C is raised once torch has written its archive: pressed as torch's zip
        # writer wrote, it made the writer fail ("unexpected pos 46 vs 0"), a RuntimeError
        # and a traceback in place of training's "interrupted" and how to resume
        with written_atomically(path) as tmp, tmp.open("wb") as f, deferred_interrupts():
            torch.save(payload, f)
    except OSError as e:
        raise RouterLLMError(
            f"cannot save the training checkpoint {path}: {os_reason(e)} (the checkpoint before "
            f"it, if any, is kept)"
        ) from e


#: What to do with a checkpoint that cannot be resumed from.
_START_AFRESH = (
    "delete it (or its checkpoints folder) to train from scratch, or train without resuming "
    "(no --resume / resume=False)"
)


def read_checkpoint(path: Path, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint at ``path``; a clear error where it cannot be resumed from. With
    ``mmap`` its tensors are mapped, not read (to look at its epochs alone)."""
    refuse_special_file(path, _START_AFRESH)
    try:
        payload: Any = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except OSError as e:
        if e.errno != errno.EINVAL:  # a directory, no permission, a disk error...
            raise RouterLLMError(f"cannot read the checkpoint {path}: {e}; {_START_AFRESH}") from e
        # torch seeks past the end of a zip archive cut short (an interrupted copy)
        raise CorruptCheckpointError(
            f"{path} is corrupt or not a RouterLLM checkpoint (torch cannot read it: "
            f"{type(e).__name__}, a file cut short?); {_START_AFRESH}"
        ) from e
    except Exception as e:  # torch raises several kinds, of many lines, on a foreign file
        raise CorruptCheckpointError(
            f"{path} is corrupt or not a RouterLLM checkpoint (torch cannot read it: "
            f"{type(e).__name__}); {_START_AFRESH}"
        ) from e
    if not isinstance(payload, dict):
        raise CorruptCheckpointError(f"{path} is not a RouterLLM checkpoint; {_START_AFRESH}")
    version: Any = payload.get("version")
    if is_integer(version) and version > CHECKPOINT_VERSION:  # kept: an upgrade resumes it
        raise RouterLLMError(
            f"{path} was written by a newer RouterLLM (checkpoint version {version}; this one "
            f"reads version {CHECKPOINT_VERSION}): upgrade routerllm to resume it, or delete it "
            f"(or its checkpoints folder) to train from scratch"
        )
    if version != CHECKPOINT_VERSION:
        raise CorruptCheckpointError(
            f"{path} is corrupt or not a RouterLLM checkpoint (its version is {version!r:.40}); "
            f"{_START_AFRESH}"
        )
    return payload


def checkpoint_progress(path: Path) -> tuple[int, int | None] | None:
    """The epochs finished in the checkpoint at ``path``, and the epochs its run was asked
    for (None in a checkpoint written before they were recorded); None where the file is
    damaged or another program's, and so holds nothing to keep. One that cannot be read
    now (no permission, a newer RouterLLM's) is its clear error: it may hold epochs."""
    try:
        saved = read_checkpoint(path, mmap=True)  # a fine-tuned encoder's: hundreds of MB
    except CorruptCheckpointError:
        return None
    epoch: Any = saved.get("epoch")
    asked: Any = saved.get("epochs")
    if not is_integer(epoch) or epoch < 1:
        return None
    return int(epoch), int(asked) if is_integer(asked) else None


def more_epochs_than_asked(checkpoint: Path | None, epoch: int, asked: int) -> RouterLLMError:
    """The error for resuming a checkpoint of more finished epochs than are asked."""
    return RouterLLMError(
        f"{checkpoint} holds {epoch} finished epochs, more than the {asked} asked (epochs); "
        f"resume with epochs of at least {epoch} (routerllm train --epochs), or train afresh "
        f"without --resume into another folder"
    )


def restore_checkpoint(
    checkpoint: Path | None,
    saved: dict[str, Any],
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    args: TrainingArguments,
) -> tuple[TrainingHistory, dict[str, Tensor]]:
    """The checkpoint ``saved`` put back into ``module``, ``optimizer``, ``scheduler`` and
    the RNG: the history and best weights to continue from. A checkpoint missing a part,
    or with one of the wrong kind, is a clear error."""
    try:
        epoch = saved["epoch"]
        if not is_integer(epoch) or epoch < 1:
            raise TypeError(f"its epoch is {epoch!r}, not a whole number >= 1")
        if epoch > args.epochs:  # it would train nothing, and save its epochs
            raise more_epochs_than_asked(checkpoint, epoch, args.epochs)
        try:
            module.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise RouterLLMError(
                f"{checkpoint} was written for another model or optimizer ({one_line(e)}); "
                f"use another output_dir or resume=False"
            ) from e
        scheduler.load_state_dict(saved["scheduler"])
        # The optimizer holds the rate the checkpoint's schedule reached; one resumed with
        # more epochs runs a longer schedule, whose rate at this step its first step takes
        # (it took the shorter one's, 0 after its last epoch). Same schedule: the same rate.
        for group, base, factor in zip(
            optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * factor(scheduler.last_epoch)
        _set_rng_state(saved["rng"])
        history = TrainingHistory(
            records=[EpochRecord(**r) for r in saved["history"]],
            best_epoch=saved["best_epoch"],
            best_val_accuracy=saved["best_val_accuracy"],
            resumed_from=epoch,
        )
        return history, saved["best_model"] or copy_state(module)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise RouterLLMError(
            f"{checkpoint} is corrupt or not a RouterLLM checkpoint "
            f"({f'no {e}' if isinstance(e, KeyError) else one_line(e)}); {_START_AFRESH}"
        ) from e


#: The training arguments a resumed run must share with the checkpoint's run: all but
#: the schedule's length (more epochs, and so another default warmup, are what resuming
#: is for) and those that only show progress or evaluate. A warmup given in steps is
#: kept: another would change the schedule the saved epochs were trained on.
RESUME_MUST_MATCH = ("batch_size", "learning_rate", "weight_decay", "warmup_steps", "loss",
                     "loss_options", "seed", "max_length", "max_grad_norm")  # fmt: skip


def run_arguments(args: TrainingArguments) -> dict[str, Any]:
    """The arguments of ``args`` a resumed run must share (``RESUME_MUST_MATCH``). A
    ``max_length`` of None is left out: its run reads no cut-off (a frozen encoder's), so
    a checkpoint that recorded one is resumed as well as one that did not."""
    return {
        k: getattr(args, k)
        for k in RESUME_MUST_MATCH
        if not (k == "max_length" and args.max_length is None)
    }


def check_same_run(path: Path | None, saved: dict[str, Any] | None, run: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint written by a run with other settings (settings a
    checkpoint predates, which it does not record, are not checked). Without --resume,
    ``routerllm train`` refuses to replace the checkpoint of a run that did not finish
    unless given --overwrite: the way out names it."""
    if saved is None:
        return
    differ = [f"{k} {saved[k]!r} -> {v!r}" for k, v in run.items() if k in saved and saved[k] != v]
    if differ:
        raise RouterLLMError(
            f"{path} was written by a run with other settings ({'; '.join(differ)}); resume "
            f"with the same settings, or train from scratch: with another --out (output_dir), "
            f"or with --overwrite and no --resume (resume=False), which replaces its epochs"
        )


def save_checkpoint(
    path: Path,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    history: TrainingHistory,
    best_state: dict[str, Tensor] | None,
    setup: dict[str, Any],
    epochs: int,
) -> None:
    """Everything needed to continue after ``history.records[-1].epoch``, and the
    ``epochs`` the run was asked for (a checkpoint short of them is of a run that did not
    finish: ``checkpoint_progress``)."""
    payload = {
        "version": CHECKPOINT_VERSION,
        "setup": setup,
        "epoch": history.records[-1].epoch,
        "epochs": epochs,
        "model": module.state_dict(),
        # None when the current weights are the best ones (saves a copy on disk).
        "best_model": best_state,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": _rng_state(),
        "history": [asdict(r) for r in history.records],
        "best_epoch": history.best_epoch,
        "best_val_accuracy": history.best_val_accuracy,
    }
    _write_atomically(payload, path)
