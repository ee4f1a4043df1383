"""The training loop's arguments and what a Ctrl-C during training reports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from routerllm.exceptions import RouterLLMError
from routerllm.training.trainer import (
    ClassificationData,
    TrainingArguments,
    TrainingInterrupted,
    train,
)

from .conftest import cli_in_process, disk_full_past


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999, 0.5])
def test_the_seed_is_one_numpy_and_torch_both_accept(seed: Any) -> None:
    with pytest.raises(
        RouterLLMError, match=r"seed=.* \(must be an integer >= 0 and <= 4294967295\)"
    ):
        TrainingArguments(seed=seed)
    assert TrainingArguments(seed=2**32 - 1).seed == 2**32 - 1


@pytest.mark.parametrize(("stop_in_epoch", "saved"), [(1, 0), (3, 2)])
def test_ctrl_c_reports_the_last_epoch_its_checkpoint_holds(
    tmp_path: Path, stop_in_epoch: int, saved: int
) -> None:
    module = torch.nn.ModuleDict({"head": torch.nn.Linear(3, 2)})
    calls = {"n": 0}
    batches_per_epoch = 2  # 8 items in batches of 4, no validation data

    def forward(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls["n"] += 1
        if calls["n"] == (stop_in_epoch - 1) * batches_per_epoch + 1:
            raise KeyboardInterrupt  # what Python raises on SIGINT, mid-epoch
        return module["head"](inputs), inputs

    def collate(items: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(items).astype(np.float32))

    rng = np.random.default_rng(0)
    data = ClassificationData(list(rng.normal(size=(8, 3))), np.arange(8) % 2)
    args = TrainingArguments(epochs=5, batch_size=4, learning_rate=0.1, warmup_steps=0,
                             progress=False, output_dir=str(tmp_path))  # fmt: skip
    with pytest.raises(TrainingInterrupted) as err:
        train(module, forward, collate, data, None, args)
    assert issubclass(TrainingInterrupted, KeyboardInterrupt)  # the CLI still sees a Ctrl-C
    assert err.value.saved_epoch == saved and err.value.checkpoint == tmp_path / "checkpoint.pt"
    assert (tmp_path / "checkpoint.pt").exists() == bool(saved)
    if saved:  # and resuming continues right after it
        calls["n"] = -1000  # no more interruptions
        history = train(module, forward, collate, data, None, args, resume=True)
        assert history.resumed_from == saved and history.epochs_run == [3, 4, 5]


def _one_epoch(tmp_path: Path) -> Callable[..., Any]:
    """A one-epoch run of a linear head on 8 random items, checkpointed in ``tmp_path``:
    ``run(resume=...)`` trains it."""
    module = torch.nn.ModuleDict({"head": torch.nn.Linear(3, 2)})

    def forward(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return module["head"](inputs), inputs

    def collate(items: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(items).astype(np.float32))

    data = ClassificationData(list(np.random.default_rng(0).normal(size=(8, 3))), np.arange(8) % 2)
    args = TrainingArguments(epochs=1, batch_size=4, warmup_steps=0, progress=False,
                             output_dir=str(tmp_path))  # fmt: skip
    return lambda resume=False: train(module, forward, collate, data, None, args, resume=resume)


def test_resuming_from_a_garbage_checkpoint_is_one_line_saying_what_to_do(
    tmp_path: Path,
) -> None:
    run = _one_epoch(tmp_path)
    run()
    checkpoint = tmp_path / "checkpoint.pt"
    assert checkpoint.is_file()  # a real checkpoint, now overwritten:
    unreadable = "is corrupt or not a RouterLLM checkpoint (torch cannot read it: "
    whole = checkpoint.read_bytes()
    for content, problem in (
        (b"garbage, not a checkpoint\n", unreadable),
        (whole[:200], unreadable),  # cut short
        # cut short further on (an interrupted copy): torch's OSError "[Errno 22] Invalid
        # argument", said until 2026-12-04 as "cannot read the checkpoint", as if the file
        # system had failed
        (whole[: len(whole) // 2], unreadable),
        (whole[:-100], unreadable),
        (None, "is not a RouterLLM checkpoint;"),
    ):
        if content is None:
            torch.save(torch.zeros(2), checkpoint)  # readable by torch, but not ours
        else:
            checkpoint.write_bytes(content)
        with pytest.raises(RouterLLMError) as err:
            run(resume=True)
        message = str(err.value)
        assert "\n" not in message and message.startswith(f"{checkpoint} ") and problem in message
        assert message.endswith(
            "delete it (or its checkpoints folder) to train from scratch, or train without "
            "resuming (no --resume / resume=False)"
        )


def test_a_checkpoint_write_cut_short_by_sigkill_leaves_no_file_behind(tmp_path: Path) -> None:
    """SIGKILL (the OOM killer) as a checkpoint was written left its staged copy,
    ``.checkpoint.pt.<random>.partial`` (a fine-tuned encoder's: hundreds of MB), in the
    folder for good: each kill left one more. The next run into the folder removes them."""
    run = _one_epoch(tmp_path)
    left = [tmp_path / ".checkpoint.pt.k1ll3d.partial", tmp_path / ".checkpoint.pt.x.partial"]
    for path in left:
        path.write_bytes(b"half a checkpoint")
    others = [tmp_path / "notes.partial", tmp_path / ".weights.npz.abc.partial"]
    for path in others:  # not the checkpoint's: left alone
        path.write_bytes(b"mine")
    for resume in (True, False):
        run(resume=resume)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            ["checkpoint.pt", *(p.name for p in others)]
        )
        left[0].write_bytes(b"half a checkpoint")


class _Payload:
    """What a malicious checkpoint holds: unpickling it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_that_would_run_code_when_unpickled_is_never_unpickled(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"version": 1, "epoch": _Payload(marker)}, checkpoint)
    module = torch.nn.ModuleDict({"head": torch.nn.Linear(3, 2)})
    data = ClassificationData(list(np.zeros((4, 3), np.float32)), np.arange(4) % 2)
    args = TrainingArguments(epochs=1, progress=False, output_dir=str(tmp_path))
    with pytest.raises(RouterLLMError, match=r"is corrupt or not a RouterLLM checkpoint \(torch cannot read it: UnpicklingError\)"):  # fmt: skip
        train(module, lambda x: (module["head"](x), x), torch.stack, data, None, args, resume=True)
    assert not marker.exists()


def test_a_second_ctrl_c_as_the_first_is_handled_still_names_the_saved_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C pressed twice: the second, as the epochs' progress bar closed after the
    first, replaced the trainer's TrainingInterrupted, and `train` said "interrupted
    before a first epoch was saved: nothing to resume" of a checkpoint of 2 epochs."""
    from routerllm.cli import main
    from routerllm.training import trainer

    rows = [{"text": f"prompt number {i} about topic {i % 7}", "label": i % 4} for i in range(40)]
    (data := tmp_path / "d.json").write_text(json.dumps(rows), encoding="utf-8")
    steps, bars = {"n": 0}, trainer.progress
    make_loss = trainer.make_loss

    def loss_that_stops_in_epoch_3(*args: Any, **kwargs: Any) -> Callable[..., Any]:
        loss = make_loss(*args, **kwargs)

        def step(*batch: Any) -> Any:
            steps["n"] += 1
            if steps["n"] == 2 * 3 + 1:  # 40 prompts in batches of 16: 3 steps an epoch
                raise KeyboardInterrupt  # the first Ctrl-C
            return loss(*batch)

        return step

    def bar(*args: Any, **kwargs: Any) -> Any:
        shown = bars(*args, **kwargs)
        if kwargs.get("desc") == "epochs":
            close = shown.close

            def closed_by_a_second_ctrl_c() -> None:
                close()
                if steps["n"] > 2 * 3:
                    raise KeyboardInterrupt

            shown.close = closed_by_a_second_ctrl_c
        return shown

    monkeypatch.setattr(trainer, "make_loss", loss_that_stops_in_epoch_3)
    monkeypatch.setattr(trainer, "progress", bar)
    out = tmp_path / "o"
    argv = ["train", "--data", str(data), "--out", str(out), "--encoder", "hashing", "--epochs", "3", "--json"]  # fmt: skip
    assert main(argv) == 130
    checkpoint = out / "checkpoints" / "checkpoint.pt"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"interrupted: epochs 1-2 are saved in {checkpoint}; rerun the same command with "
        "--resume to continue after epoch 2"
    )


FULL_DISK_TRAIN = f"""
import sys
from routerllm.cli import main

# no file may grow past 4 KiB, as on a nearly full disk: the first checkpoint (some
# 20 KiB) cannot be written
{disk_full_past(4096)}
sys.exit(main(sys.argv[1:]))
"""


def test_a_checkpoint_the_disk_has_no_room_for_is_one_line_naming_it(tmp_path: Path) -> None:
    """``routerllm train --out DIR`` on a full disk ended in two tracebacks of torch's zip
    writer ("RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 128
    vs 0"), which named neither the file nor the disk. It is one line naming the
    checkpoint and the reason, and no staged copy is left behind."""

    data = tmp_path / "data"
    assert cli_in_process("generate-data", "--out", str(data), "--n", "40").returncode == 0
    out = tmp_path / "router"
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK_TRAIN, "train", "--data", str(data), "--out", str(out),
         "--encoder", "hashing", "--epochs", "1"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    checkpoint = out / "checkpoints" / "checkpoint.pt"
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot save the training checkpoint {checkpoint}: file too large"), last  # fmt: skip
    assert not list((out / "checkpoints").iterdir())  # neither a checkpoint nor a staged copy


def test_ctrl_c_as_torch_writes_a_checkpoint_is_an_interrupt_and_keeps_the_one_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C as torch's zip writer wrote a checkpoint made the writer fail ("unexpected pos
    46 vs 0"): a RuntimeError, so `routerllm train` printed a traceback, not that it was
    interrupted and how to resume (seen once in the suite). Now it comes once the archive is
    written: a KeyboardInterrupt, the checkpoint before it kept whole."""
    import io
    import os
    import signal
    from contextlib import contextmanager

    import routerllm.training.checkpoint as checkpoint

    path = tmp_path / "checkpoint.pt"
    checkpoint._write_atomically({"epoch": 1, "w": torch.zeros(10)}, path)
    staged = checkpoint.written_atomically
    writes = {"n": 0}

    class Pressed(io.FileIO):
        def write(self, data: Any) -> int:  # type: ignore[override]
            writes["n"] += 1
            if writes["n"] == 3:  # inside torch's archive, past its first record
                os.kill(os.getpid(), signal.SIGINT)
            return super().write(data)

    class PressedPath(type(Path())):  # type: ignore[misc]  # the staged file alone
        def open(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            return Pressed(str(self), "w")

    @contextmanager
    def pressing(target: Path) -> Any:
        with staged(target) as tmp:
            yield PressedPath(tmp)

    monkeypatch.setattr(checkpoint, "written_atomically", pressing)
    with pytest.raises(KeyboardInterrupt):
        checkpoint._write_atomically({"epoch": 2, "w": torch.ones(1000)}, path)
    assert writes["n"] > 3  # the archive was written whole before Ctrl-C was raised
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
