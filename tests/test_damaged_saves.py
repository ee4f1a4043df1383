"""Saved routers, ensembles, gates, training checkpoints and encoder folders that are
damaged or odd: loading one is a clear one-line RouterLLMError (exit 2 at the CLI),
never a hang, a read that never ends, or a traceback."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from routerllm.exceptions import RouterLLMError
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


def test_an_embedding_cache_file_that_is_a_named_pipe_or_a_device_is_refused(
    tmp_path: Path,
) -> None:
    """The cache's database (or its write-ahead log): reading it read-only, once writing
    failed, waited on the pipe forever."""
    from routerllm.encoders.cache import DB_NAME, EmbeddingCache

    cache = tmp_path / "cache"
    # kept open while it is copied: its -wal and -shm are there to copy, and no garbage
    # collection closes it half-way (its last close removes both: the copy failed on them)
    with EmbeddingCache("hashing", cache) as written:
        written.put_many(["a"], np.ones((1, 4)))
        copies = odd_copies(cache, [DB_NAME, f"{DB_NAME}-wal"], tmp_path)
    load = 'from routerllm.encoders.cache import EmbeddingCache\ndef load(path):\n    EmbeddingCache("hashing", path).get_many(["a"])'  # fmt: skip
    errors = load_errors(load, list(copies))
    assert_refused(errors, copies)
    assert all(e.endswith("not a file: remove it, or set ROUTERLLM_CACHE to another folder") for e in errors)  # fmt: skip


#: Runs ``routerllm`` once for each JSON argv given, in this one process (as
#: ``cli_in_process`` does); prints each one's status and stderr as a JSON list.
CLI_RUNS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.conftest import cli_in_process
for argv in sys.argv[2:]:
    done = cli_in_process(*json.loads(argv))
    print(json.dumps([done.returncode, done.stderr]), flush=True)
"""


def test_at_the_cli_a_routers_config_or_a_checkpoint_that_is_a_named_pipe_is_one_line(
    tmp_path: Path,
) -> None:
    """`routerllm test --router-model DIR` and `routerllm train --resume` hung. The four
    commands run in one process, in time (four processes, each importing torch, made
    this the file's slowest test)."""
    data = tmp_path / "data.json"
    rows = [{"text": f"{w} number {i}", "label": c} for i in range(3)
            for c, w in enumerate(["code", "poem", "explain", "hi"])]  # fmt: skip
    data.write_text(json.dumps(rows))
    commands: list[tuple[list[str], tuple[str, ...]]] = []  # (argv, what its error names)
    for odd, said in ODD.items():
        folder = tmp_path / f"router-{odd}"
        folder.mkdir()
        put_odd(folder / "config.json", odd)
        argv = ["test", "--router-model", str(folder), "--data", str(data)]
        commands.append((argv, (f"{folder / 'config.json'}", said)))
        out = tmp_path / f"clf-{odd}"
        (out / "checkpoints").mkdir(parents=True)
        put_odd(out / "checkpoints" / "checkpoint.pt", odd)
        argv = ["train", "--router", "classifier", "--encoder", "hashing", "--data", str(data),
                "--out", str(out), "--epochs", "1", "--resume"]  # fmt: skip
        commands.append((argv, (f"{out / 'checkpoints' / 'checkpoint.pt'}", said, "train from scratch")))  # fmt: skip
    root = str(Path(__file__).resolve().parents[1])
    proc = in_time("-c", CLI_RUNS, root, *(json.dumps(a) for a, _ in commands), timeout=120)
    assert proc.returncode == 0, proc.stderr
    runs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(runs) == len(commands), proc.stdout
    for (argv, needles), (status, err) in zip(commands, runs, strict=True):
        assert_one_line_error(subprocess.CompletedProcess(argv, status, "", err), *needles)


# -- damage to each file of a saved folder -------------------------------------------
#: Values of another type than a saved setting's, put in its place one at a time.
WRONG_TYPES: list[object] = [None, True, -1, 1e308, "x", [], {"a": 1}]
#: How many places in a file get a byte flipped.
FLIPS = 12


def damaged(folder: Path, headers: int) -> Iterator[tuple[str, Path, dict[str, bytes | None]]]:
    """Each damage to ``folder`` (a saved one), one file at a time: (what was done, the
    file it was done to, {relative path: new content, or None to delete it}). Each file
    deleted, cut at several lengths, a byte flipped at several places; each value of a
    JSON file deleted or of another type, and the whole file too; in an .npz, every byte
    of the headers of its first ``headers`` arrays flipped, with its config's digest
    deleted (a folder saved before the digest was recorded), which would refuse it first."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != ".lock"):
        rel, data = str(path.relative_to(folder)), path.read_bytes()
        yield f"{rel} deleted", path, {rel: None}
        for n in sorted({0, 1, len(data) // 3, len(data) // 2, len(data) - 1}):
            yield f"{rel} cut to {n} bytes", path, {rel: data[:n]}
        for at in sorted({len(data) * i // FLIPS for i in range(FLIPS)} | {len(data) - 1}):
            yield f"{rel} byte {at} flipped", path, {rel: _flipped(data, at)}
        if path.suffix == ".json":
            for what, meta in _wrong_json(json.loads(data)):
                yield f"{rel}: {what}", path, {rel: json.dumps(meta).encode()}
        if path.suffix == ".npz":
            config = str(path.parent.relative_to(folder) / "config.json")
            meta = json.loads((folder / config).read_text())
            undigested = json.dumps({k: v for k, v in meta.items() if k != "weights_sha256"})
            for start in [m.start() for m in re.finditer(rb"\x93NUMPY", data)][:headers]:
                for at in range(start, min(len(data), start + 128)):
                    yield (
                        f"{rel} byte {at} flipped (no digest)",
                        path,
                        {rel: _flipped(data, at), config: undigested.encode()},
                    )


def _flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def _wrong_json(value: object, where: tuple[object, ...] = ()) -> Iterator[tuple[str, object]]:
    """(what was done, the JSON document ``value`` with it done) for each value in it."""
    for wrong in WRONG_TYPES:
        yield f"{list(where)} = {wrong!r:.20}", wrong
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()  # fmt: skip
    for key, inner in list(items):
        if isinstance(value, dict):
            yield f"{[*where, key]} deleted", {k: v for k, v in value.items() if k != key}
        for what, changed in _wrong_json(inner, (*where, key)):
            copy = dict(value) if isinstance(value, dict) else list(value)  # type: ignore[call-overload]
            copy[key] = changed
            yield what, copy


def assert_every_damage_is_one_clear_error(
    saved: Path, load: Callable[[Path], object], tmp_path: Path, headers: int = 2
) -> int:
    """Load a copy of ``saved`` with each damage done to it: it loads, or raises a
    one-line RouterLLMError; damage to its weights or a file it needs is refused. The
    number of damages tried."""
    import shutil

    wrong, damages = [], list(damaged(saved, headers))
    for what, path, change in damages:
        copy = tmp_path / "damaged"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(saved, copy)
        for rel, content in change.items():
            if content is None:
                (copy / rel).unlink()
            else:
                (copy / rel).write_bytes(content)
        try:
            load(copy)
        except RouterLLMError as e:
            if "\n" in str(e):
                wrong.append(f"{what}: an error of several lines: {e}")
        except Exception as e:  # noqa: BLE001 - any other is the bug looked for
            wrong.append(f"{what}: {type(e).__name__}: {e!s:.200}")
        else:
            if path.suffix == ".npz" and "(no digest)" not in what:
                wrong.append(f"{what}: loaded")  # the digest refuses any change to them
    assert not wrong, f"{len(wrong)} of {len(damages)} damages:\n" + "\n".join(wrong[:20])
    return len(damages)


#: Headers of an array in an .npz that numpy's parser fails on with other errors than
#: ValueError: a brace left open, a key that is a list, a shape of 8 TB (allocated
#: before the data is read), 3000 signs.
ODD_HEADERS = {
    "TokenError": "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), ",
    "TypeError": "{[]: 1}",
    "MemoryError": "{'descr': '<f8', 'fortran_order': False, 'shape': (999999999999,), }",
    "RecursionError": "-" * 3000 + "1",
}


def npy_with_header(header: str) -> bytes:
    """A .npy file (format 1.0) with this header and 64 zero bytes."""
    import struct

    text = header.encode() + b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + bytes(64)


def npz_with_header(names: list[str], header: str) -> bytes:
    """An .npz whose arrays ``names`` are each ``npy_with_header(header)``."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            archive.writestr(f"{name}.npy", npy_with_header(header))
    return out.getvalue()


@pytest.mark.parametrize("error", list(ODD_HEADERS))
def test_an_array_header_numpy_cannot_parse_is_one_clear_error(error: str, tmp_path: Path) -> None:
    """Under a matching digest (a file made by hand, or saved before the digest was
    recorded): each was a traceback."""
    from routerllm.files import sha256_of
    from routerllm.gate import EscalationGate
    from routerllm.routers import load_router

    from .test_gate import _cheap_to_escalate

    for folder, load in ((saved_knn(tmp_path / "knn"), lambda d: load_router(d, MODELS)),
                         (_cheap_to_escalate(3).save(tmp_path / "gate"), EscalationGate.load)):  # fmt: skip
        with np.load(folder / "weights.npz") as data:
            names = list(data.files)
        (folder / "weights.npz").write_bytes(npz_with_header(names, ODD_HEADERS[error]))
        meta = json.loads((folder / "config.json").read_text())
        meta["weights_sha256"] = sha256_of(folder / "weights.npz")
        (folder / "config.json").write_text(json.dumps(meta))
        with pytest.raises(RouterLLMError) as err:
            load(folder)
        message = str(err.value)  # the weights named, not config.json
        assert "\n" not in message and re.search(r"weights.npz is corrupt|corrupt weights.npz", message), message  # fmt: skip


def test_every_damage_to_a_saved_ensemble_is_one_clear_error(tmp_path: Path) -> None:
    """Its config.json and each member's: a flipped byte in an array's header in a
    member's weights.npz saved before the digest was recorded was a traceback
    (tokenize.TokenError from numpy's header parser)."""
    from routerllm.routers import load_router

    ensemble = create_router("ensemble", MODELS, members=[{"path": str(saved_knn(tmp_path / "knn"))}, "rules"])  # fmt: skip
    saved = ensemble.save(tmp_path / "ens")
    tried = assert_every_damage_is_one_clear_error(saved, lambda d: load_router(d, MODELS), tmp_path)  # fmt: skip
    assert tried > 500


def test_every_damage_to_a_saved_gate_is_one_clear_error(tmp_path: Path) -> None:
    from routerllm.gate import EscalationGate

    from .test_gate import _cheap_to_escalate

    saved = _cheap_to_escalate(3).save(tmp_path / "gate")
    tried = assert_every_damage_is_one_clear_error(saved, EscalationGate.load, tmp_path)
    assert tried > 300


def test_every_damage_to_a_saved_full_mode_classifier_is_one_clear_error(tmp_path: Path) -> None:
    """A classifier that fine-tuned its encoder: the encoder's weights are in its
    weights.npz too."""
    from routerllm.data.labeled import LabeledPrompt
    from routerllm.routers import load_router
    from routerllm.routers.classifier import EmbeddingClassifierRouter
    from routerllm.training.trainer import TrainingArguments

    from .test_classifier_router import MODELS as CLASSIFIER_MODELS
    from .test_complexity_router import build_classifier

    encoder = build_classifier(tmp_path / "bert", {0: "a", 1: "b"})
    router = EmbeddingClassifierRouter(CLASSIFIER_MODELS, encoder=f"hf:{encoder}", mode="full")
    data = [LabeledPrompt(t, c) for c, t in enumerate(["hello", "world", "code", "hello code"])]
    router.fit(data, data, TrainingArguments(epochs=1, batch_size=2, warmup_steps=0, progress=False))  # fmt: skip
    saved = router.save(tmp_path / "router")
    load = lambda d: load_router(d, CLASSIFIER_MODELS)  # noqa: E731
    # one array's header: each load builds the encoder, ~10 ms
    assert assert_every_damage_is_one_clear_error(saved, load, tmp_path, headers=1) > 300
