"""Saved routers, ensembles, gates, training checkpoints and encoder folders that are
damaged or odd: loading one is a clear one-line RouterLLMError (exit 2 at the CLI),
never a hang, a read that never ends, or a traceback."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from routerllm.routers import create_router
from routerllm.routers.base import Candidate

from .test_cli import assert_one_line_error

MODELS = [Candidate("small", 1.0, "light"), Candidate("mid", 8.0), Candidate("big", 70.0, "heavy")]
PROMPTS = [f"prompt number {i} about {'code' if i % 2 else 'chat'}" for i in range(40)]
SCORES = (np.random.default_rng(0).random((40, 3)) > 0.5).astype(float)

#: What each odd thing put where a file belongs is called in the error.
ODD = {"fifo": "is a named pipe (FIFO), not a file", "dev-zero": "is a character device, not a file"}  # fmt: skip


def saved_knn(folder: Path) -> Path:
    router = create_router("knn", MODELS, encoder="hashing")
    router.fit(PROMPTS, SCORES, ["small", "mid", "big"])  # type: ignore[attr-defined]
    return router.save(folder)


def put_odd(path: Path, odd: str) -> None:
    """A named pipe, or a link to /dev/zero, where the file ``path`` was."""
    path.unlink(missing_ok=True)
    if odd == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


def _limited() -> None:  # a read of /dev/zero that never ends fails here, not the machine
    resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))


def in_time(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python *args`` in a fresh process: a load that opens a named pipe waits forever,
    and one that reads /dev/zero never ends, so it must finish in ``timeout`` s and 1 GiB."""
    try:
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, timeout=timeout,
            preexec_fn=_limited,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"still loading after {timeout} s (a read that never ends): {args}")


#: Loads each folder given: prints each one's error as a JSON string (or "loaded").
LOADER = """
import json, sys
from routerllm.exceptions import RouterLLMError
{load}
for arg in sys.argv[1:]:
    try:
        load(arg)
    except RouterLLMError as e:
        print(json.dumps(str(e)))
    else:
        print("loaded")
"""
LOAD_ROUTER = """
from routerllm.routers import load_router
from routerllm.routers.base import Candidate
def load(path):
    load_router(path, [Candidate("small", 1.0, "light"), Candidate("mid", 8.0), Candidate("big", 70.0, "heavy")])
"""
LOAD_GATE = """
from routerllm.gate import EscalationGate
load = EscalationGate.load
"""
LOAD_ENCODER = """
from routerllm.encoders import create_encoder
def load(path):
    create_encoder("hf:" + path)
"""


def load_errors(load: str, paths: list[Path]) -> list[str]:
    """The error of loading each of ``paths`` with ``load`` (which defines ``load(path)``)."""
    proc = in_time("-c", LOADER.format(load=load), *map(str, paths))
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def odd_copies(saved: Path, names: list[str], tmp_path: Path) -> dict[Path, tuple[Path, str]]:
    """Copies of the folder ``saved``, each with one of ``names`` (a file in it) made odd
    in each way: {copy: (the odd file, what it is called)}."""
    import shutil

    out = {}
    for name in names:
        for odd, said in ODD.items():
            copy = tmp_path / f"{saved.name}-{name.replace('/', '-')}-{odd}"
            shutil.copytree(saved, copy, symlinks=True)
            put_odd(copy / name, odd)
            out[copy] = (copy / name, said)
    return out


def assert_refused(errors: list[str], copies: dict[Path, tuple[Path, str]]) -> None:
    assert len(errors) == len(copies)
    for error, (odd, said) in zip(errors, copies.values(), strict=True):
        link = " (a link to /dev/zero)" if said == ODD["dev-zero"] else ""
        assert "\n" not in error and f"{odd}{link} {said}: " in error, error


# -- a named pipe or a device where a saved file belongs -----------------------------
def test_a_saved_routers_file_that_is_a_named_pipe_or_a_device_is_refused(
    tmp_path: Path,
) -> None:
    """A FIFO or a link to /dev/zero as a saved router's config.json or weights.npz (or
    as an ensemble member's) hung the load: open() waited for a writer, or the read
    (and the weights' sha256) never ended."""
    copies = odd_copies(saved_knn(tmp_path / "knn"), ["config.json", "weights.npz"], tmp_path)
    ensemble = create_router("ensemble", MODELS, members=[{"path": str(tmp_path / "knn")}, "rules"])
    copies |= odd_copies(ensemble.save(tmp_path / "ens"), ["members-1/1-knn/weights.npz"], tmp_path)  # fmt: skip
    errors = load_errors(LOAD_ROUTER, list(copies))
    assert_refused(errors, copies)
    assert all(e.endswith("not a file: save or train the router again") for e in errors)


def test_a_saved_gates_file_that_is_a_named_pipe_or_a_device_is_refused(tmp_path: Path) -> None:
    from .test_gate import _cheap_to_escalate

    saved = _cheap_to_escalate(3).save(tmp_path / "gate")
    copies = odd_copies(saved, ["config.json", "weights.npz"], tmp_path)
    errors = load_errors(LOAD_GATE, list(copies))
    assert_refused(errors, copies)
    for error, copy in zip(errors, copies, strict=True):
        assert error.endswith(f"not a file: make it again with routerllm train-gate --run RUN --out {copy}")  # fmt: skip


def test_an_encoder_folders_file_that_is_a_named_pipe_or_a_device_is_refused(
    tmp_path: Path,
) -> None:
    """hf:<folder> whose weights or tokenizer file is a FIFO: transformers waited on it."""
    model = tmp_path / "enc"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    for name in ("model.safetensors", "tokenizer.json"):
        (model / name).write_bytes(b"{}")
    copies = odd_copies(model, ["config.json", "model.safetensors"], tmp_path)
    errors = load_errors(LOAD_ENCODER, list(copies))
    assert_refused(errors, copies)
    assert all(e.endswith("put them back there") for e in errors)


def test_at_the_cli_a_routers_config_or_a_checkpoint_that_is_a_named_pipe_is_one_line(
    tmp_path: Path,
) -> None:
    """`routerllm test --router-model DIR` and `routerllm train --resume` hung."""
    data = tmp_path / "data.json"
    rows = [{"text": f"{w} number {i}", "label": c} for i in range(3)
            for c, w in enumerate(["code", "poem", "explain", "hi"])]  # fmt: skip
    data.write_text(json.dumps(rows))
    for odd, said in ODD.items():
        folder = tmp_path / f"router-{odd}"
        folder.mkdir()
        put_odd(folder / "config.json", odd)
        proc = in_time("-m", "routerllm.cli", "test", "--router-model", str(folder), "--data", str(data))  # fmt: skip
        assert_one_line_error(proc, f"{folder / 'config.json'}", said)
        out = tmp_path / f"clf-{odd}"
        (out / "checkpoints").mkdir(parents=True)
        put_odd(out / "checkpoints" / "checkpoint.pt", odd)
        proc = in_time("-m", "routerllm.cli", "train", "--router", "classifier", "--encoder",
                       "hashing", "--data", str(data), "--out", str(out), "--epochs", "1",
                       "--resume")  # fmt: skip
        assert_one_line_error(proc, f"{out / 'checkpoints' / 'checkpoint.pt'}", said, "train from scratch")  # fmt: skip
