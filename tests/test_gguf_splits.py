"""llama.cpp's own split GGUF files (``llama-gguf-split``'s ``model-00001-of-00003.gguf``
...), named by ``gguf.path`` (their first): loaded, each split checked and watched, on
the real tiny model split in three."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from routerllm.backends import GenerationRequest, create_backend
from routerllm.backends.llama_cpp import LlamaCppBackend
from routerllm.config import GenerationConfig, GGUFSource, ModelConfig
from routerllm.exceptions import BackendError, ModelUnavailableError
from routerllm.manager import LLMManager
from routerllm.model_files import availability, resolve_gguf, source_files

from .conftest import (
    gguf_splits,
    gguf_with_other_weights,
    models_config,
    random_llama_gguf,
    tiny_gguf_path,
    tiny_model,
)

REQUEST = GenerationRequest("def add(a, b):", max_new_tokens=8, temperature=0.0)


def _splits(folder: Path, source: Path | None = None, count: int = 3) -> list[Path]:
    """The tiny GGUF (or ``source``) as ``count`` split files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return gguf_splits(source or tiny_gguf_path(), folder / "model.gguf", count)


def _backend(path: Path) -> LlamaCppBackend:
    cfg = ModelConfig.model_validate(tiny_model("m", "light", 0.001, gguf={"path": str(path)}))
    backend = create_backend(cfg, GenerationConfig(max_new_tokens=8, temperature=0.0), n_threads=1)
    assert isinstance(backend, LlamaCppBackend)
    return backend


def _answering(first: Path) -> tuple[LLMManager, str]:
    """A manager whose model m, the split model named by ``first``, loaded and answered
    ``REQUEST``: (the manager, its answer)."""
    model = tiny_model("m", "light", 0.001, gguf={"path": str(first)})
    manager = LLMManager(models_config(model))
    with manager.generating("m") as backend:
        return manager, backend.generate(REQUEST).text


def _other_weights(tmp_path: Path, splits: list[Path]) -> list[Path]:
    """The tiny GGUF with other weights (its output layer, in the last split) split as
    ``splits`` are: only the last split differs."""
    other = _splits(tmp_path / "other", gguf_with_other_weights(tmp_path / "other.gguf"))
    assert other[0].read_bytes() == splits[0].read_bytes()
    assert other[2].read_bytes() != splits[2].read_bytes()
    return other


def test_a_split_model_named_by_its_first_split_loads_and_answers_as_the_whole(
    tmp_path: Path,
) -> None:
    splits = _splits(tmp_path)
    assert [p.name for p in splits] == [f"model-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    whole, split = _backend(tiny_gguf_path()), _backend(splits[0])
    assert split.availability() is None
    assert split.generate(REQUEST).text == whole.generate(REQUEST).text
    split.unload()
    whole.unload()


def test_every_split_is_among_the_weights_files(tmp_path: Path) -> None:
    splits = _splits(tmp_path)
    assert source_files(GGUFSource(path=str(splits[0]))) == splits
    assert _backend(splits[0]).weights_files() == splits
    # a whole GGUF, named as a split is, is one file
    named = tmp_path / "whole-00001-of-00002.gguf"
    shutil.copyfile(tiny_gguf_path(), named)
    assert source_files(GGUFSource(path=str(named))) == [named]


@pytest.mark.parametrize("how", ["renamed", "overwritten"])
def test_a_loaded_split_model_whose_later_split_is_replaced_is_loaded_again(
    tmp_path: Path, how: str
) -> None:
    # Only the first split was stamped: a later one replaced, the loaded model answered
    # with the old weights until it was unloaded, and the request cache kept its answers.
    splits = _splits(tmp_path / "model")
    manager, old = _answering(splits[0])
    backend = manager.backend("m")
    first, stamp = backend._llm, backend.weights_stamp()
    new = _other_weights(tmp_path, splits)[2]
    if how == "renamed":
        os.replace(new, splits[2])
    else:
        shutil.copyfile(new, splits[2])
        os.utime(splits[2], ns=(splits[2].stat().st_atime_ns, splits[2].stat().st_mtime_ns + 1))  # coarse clocks  # fmt: skip
    assert backend.weights_stamp() != stamp  # the request cache's answers are not the new weights'
    with manager.generating("m") as loaded:
        assert loaded.generate(REQUEST).text != old
    assert backend._llm is not first  # loaded again, once
    assert not manager.acquire("m")[1].loaded_now
    manager.close()


def test_a_later_split_missing_or_cut_short_is_unavailable_and_not_loaded(tmp_path: Path) -> None:
    # It was listed as available; llama.cpp then failed to load it, "the file is corrupt".
    splits = _splits(tmp_path)
    src, data = GGUFSource(path=str(splits[0])), splits[2].read_bytes()
    splits[2].unlink()
    missing = (
        f"split 3 of 3 of model-00001-of-00003.gguf: file not found: {splits[2]}; llama.cpp "
        f"reads each split from beside the first, named as llama-gguf-split names them"
    )
    assert availability(src) == missing
    with pytest.raises(ModelUnavailableError, match=re.escape(missing)):
        _backend(splits[0]).load()
    splits[2].write_bytes(data[: len(data) // 2])
    short = (
        f"{splits[2]} is cut short ({len(data) // 2:,} bytes; its header describes "
        f"{len(data):,}): an interrupted download or copy? Copy or install it again"
    )
    assert availability(src) == short
    with pytest.raises(BackendError, match=re.escape(short)):
        _backend(splits[0]).load()
    splits[2].write_bytes(data)
    assert availability(src) is None


def test_a_later_split_being_copied_leaves_the_loaded_weights_answering(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A new last split being written at its path (the old one removed first), as a whole
    # GGUF being copied is: the loaded weights answer until it is whole, then load again.
    splits = _splits(tmp_path / "model")
    manager, old = _answering(splits[0])
    first = manager.backend("m")._llm
    data = _other_weights(tmp_path, splits)[2].read_bytes()
    splits[2].unlink()
    splits[2].write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING", logger="routerllm"):
        for _ in range(2):
            assert not manager.backend("m").weights_changed
            with manager.generating("m") as backend:
                assert backend.generate(REQUEST).text == old
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "model-00003-of-00003.gguf is cut short" in said[0]
    assert "still answer" in said[0]
    with splits[2].open("ab") as f:
        f.write(data[len(data) // 2 :])
    with manager.generating("m") as backend:
        assert backend.generate(REQUEST).text != old
    assert manager.backend("m")._llm is not first
    manager.close()


def test_a_loaded_later_split_cut_short_in_place_is_not_read_past_its_end(tmp_path: Path) -> None:
    # The loaded model maps every split: one written in place has lost its old weights
    # (read past the end of a file cut short, the process dies of SIGBUS): it loads again,
    # and that load says why it cannot.
    splits = _splits(tmp_path)
    manager, _ = _answering(splits[0])
    with splits[2].open("r+b") as f:
        f.truncate(splits[2].stat().st_size // 2)
    assert manager.backend("m").weights_changed
    with pytest.raises(BackendError, match=r"model-00003-of-00003\.gguf is cut short \("):
        manager.acquire("m")
    assert manager.loaded_models == []
    manager.close()


def test_split_files_that_do_not_make_one_model_say_why(tmp_path: Path) -> None:
    splits = _splits(tmp_path / "three")
    # named as two splits, its header's split.count 3: llama.cpp finds no others
    two = [tmp_path / "three" / f"model-0000{i}-of-00002.gguf" for i in (1, 2)]
    for old, new in zip(splits, two, strict=False):
        os.replace(old, new)
    assert availability(GGUFSource(path=str(two[0]))) == (
        f"{two[0]} is split 1 of 3 (its header's split.count), but its name does not end "
        f"-00001-of-00003.gguf, by which llama.cpp finds the others: name the splits as "
        f"llama-gguf-split names them"
    )
    # gguf.path naming a later split
    splits = _splits(tmp_path / "later")
    assert availability(GGUFSource(path=str(splits[1]))) == (
        f"{splits[1]} is split 2 of 3 of a model: give gguf.path its first split, "
        f"model-00001-of-00003.gguf"
    )
    # a later split of another splitting of the model (two splits), named as this one's
    halves = _splits(tmp_path / "halves", count=2)
    shutil.copyfile(halves[1], splits[1])
    assert availability(GGUFSource(path=str(splits[0]))) == (
        f"{splits[1]} is not split 2 of 3 of model-00001-of-00003.gguf (its header says "
        f"split 2 of 2): a split of another model or splitting? Copy one model's splits again"
    )
    # one of another splitting in three (8 tensors each, not 7): 22 tensors, not 21
    eights = gguf_splits(tiny_gguf_path(), tmp_path / "halves" / "eights.gguf", 3, per_split=8)
    shutil.copyfile(eights[1], splits[1])
    assert availability(GGUFSource(path=str(splits[0]))) == (
        "the 3 splits of model-00001-of-00003.gguf hold 22 tensors, where its header's "
        "split.tensors.count says 21: a split of another model or splitting? Copy one "
        "model's splits again"
    )
    with pytest.raises(ModelUnavailableError, match="hold 22 tensors"):
        _backend(splits[0]).load()


@pytest.fixture
def split_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """A real importable model package shipping the tiny GGUF as three split files in its
    ``models`` folder: the files, in order."""
    package = tmp_path / "site" / "routerllm_testsplits"
    splits = _splits(package / "models")
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield splits
    sys.modules.pop("routerllm_testsplits", None)


def _packaged(**more: str | list[str]) -> GGUFSource:
    return GGUFSource(package="routerllm_testsplits", filename="models/model-00001-of-00003.gguf", **more)  # fmt: skip


def test_split_files_in_a_model_package_load_and_are_watched_and_checked(
    split_package: list[Path],
) -> None:
    splits = split_package
    src = _packaged()
    assert availability(src) is None
    assert source_files(src) == splits
    cfg = ModelConfig.model_validate(tiny_model("m", "light", 0.001, gguf=src.model_dump()))
    backend = create_backend(cfg, GenerationConfig(max_new_tokens=8, temperature=0.0), n_threads=1)
    assert isinstance(backend, LlamaCppBackend) and backend.availability() is None
    whole = _backend(tiny_gguf_path())
    assert backend.generate(REQUEST).text == whole.generate(REQUEST).text
    assert backend.weights_files() == splits
    whole.unload()
    data = splits[2].read_bytes()
    splits[2].unlink()
    why = availability(src)
    assert why is not None and "split 3 of 3 of model-00001-of-00003.gguf: file not found" in why
    with pytest.raises(ModelUnavailableError, match="split 3 of 3"):
        backend.unload() or backend.load()
    splits[2].write_bytes(data[: len(data) // 2])
    assert "model-00003-of-00003.gguf is cut short" in (availability(src) or "")
    splits[2].write_bytes(data)
    assert availability(src) is None


def test_a_packaged_first_split_being_installed_leaves_its_later_splits_watched(
    tmp_path: Path, split_package: list[Path]
) -> None:
    # Its files were found once: asked while pip wrote the first split (its header not
    # yet whole: no split), the later splits were never watched, and a later one replaced
    # left the loaded model answering with the old weights, the request cache's key the same.
    splits = split_package
    cfg = ModelConfig.model_validate(tiny_model("m", "light", 0.001, gguf=_packaged().model_dump()))
    backend = create_backend(cfg, GenerationConfig(max_new_tokens=8, temperature=0.0), n_threads=1)
    data = splits[0].read_bytes()
    splits[0].write_bytes(data[:100])
    assert backend.weights_files() == splits[:1] and backend.availability() is not None
    splits[0].write_bytes(data)
    assert backend.weights_files() == splits
    backend.load()
    stamp = backend.weights_stamp()
    os.replace(_other_weights(tmp_path, splits)[2], splits[2])
    assert backend.weights_changed and backend.weights_stamp() != stamp
    backend.unload()


def _flip_last_byte(path: Path) -> None:
    """``path`` written in place, its last byte (its last tensor's) changed."""
    with path.open("r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)[0]
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last ^ 0x01]))
    st = path.stat()  # whatever the clock's resolution
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


@pytest.fixture(scope="module")
def convertible(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small llama GGUF of float16 matrices whose rows llama.cpp's Q8_0 blocks fit (the
    tiny GGUF's are too short): what the splits are made of. SmolLM2-135M, split and
    converted until 2026-12-07, is what a user converts, 100 MB of it; the conversions
    and their cache are the same for a few MB (the two tests below 22 s of CPU then)."""
    path = tmp_path_factory.mktemp("convertible") / "model.gguf"
    return random_llama_gguf(path, width=64, ffn=128, blocks=2, vocab=1000, kind="F16")


@pytest.fixture(scope="module")
def whole_q8_0(tmp_path_factory: pytest.TempPathFactory, convertible: Path) -> bytes:
    """``convertible``, whole, converted to Q8_0 (in a cache of its own): what its
    splits' conversion is to equal, converted once for the module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTERLLM_CACHE", str(tmp_path_factory.mktemp("cache")))
        return resolve_gguf(GGUFSource(path=str(convertible), requantize="Q8_0"), "whole").read_bytes()  # fmt: skip


@pytest.mark.parametrize("checked", [False, True], ids=["no-sha256", "sha256"])
def test_a_split_source_is_converted_whole_and_again_when_any_split_changes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    checked: bool,
    convertible: Path,
    whole_q8_0: bytes,
) -> None:
    # llama.cpp converts every split, read from beside the first, into one file (the same
    # bytes as the whole converted). Only the first split was recorded: a later one
    # changed, the cache's conversion of the old weights was run as the new.
    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))
    splits = _splits(tmp_path / "splits", convertible)
    sha = hashlib.sha256(splits[0].read_bytes()).hexdigest() if checked else None
    src = GGUFSource(path=str(splits[0]), requantize="Q8_0", sha256=sha)
    path = resolve_gguf(src, "smol")
    assert path.read_bytes() == whole_q8_0  # the whole model's conversion
    made = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    assert resolve_gguf(src, "smol") == path and path.stat().st_mtime_ns == stamp  # reused
    # the same splits at another path (another virtual environment's): reused
    moved = [tmp_path / "elsewhere" / p.name for p in splits]
    moved[0].parent.mkdir()
    for old, new in zip(splits, moved, strict=True):
        shutil.copyfile(old, new)
    elsewhere = GGUFSource(path=str(moved[0]), requantize="Q8_0", sha256=sha)
    assert resolve_gguf(elsewhere, "smol") == path and path.stat().st_mtime_ns == stamp
    # a later split changed, there or here: converted again
    _flip_last_byte(moved[2])
    assert resolve_gguf(elsewhere, "smol") == path and path.read_bytes() != made
    assert resolve_gguf(src, "smol") == path and path.read_bytes() == made
    _flip_last_byte(splits[1])
    assert resolve_gguf(src, "smol") == path and path.read_bytes() != made


def test_a_split_sources_sha256_is_its_first_splits_and_a_mismatch_says_so(
    tmp_path: Path,
) -> None:
    # It pins the file gguf.path names, as llama.cpp's splits are listed (a sha256 each);
    # a mismatch did not say that it was not the whole model's.
    splits = _splits(tmp_path)
    first = hashlib.sha256(splits[0].read_bytes()).hexdigest()
    assert resolve_gguf(GGUFSource(path=str(splits[0]), sha256=first), "m") == splits[0]
    whole = hashlib.sha256(b"".join(p.read_bytes() for p in splits)).hexdigest()
    with pytest.raises(BackendError) as e:
        resolve_gguf(GGUFSource(path=str(splits[0]), sha256=whole), "m")
    assert str(e.value).endswith(
        "check gguf.path and gguf.sha256 in the config (gguf.sha256 is the sha256 of this "
        "file alone, the first of 3 split files; the others are checked by their headers, "
        "or each by its own where gguf.sha256 lists one per split)"
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hashed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files ``model_files`` hashes from now on, in order (each hashed for real)."""
    from routerllm import model_files

    seen: list[Path] = []
    real = model_files.sha256_of

    def counted(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(model_files, "sha256_of", counted)
    return seen


def test_a_sha256_per_split_checks_each_split_once_and_a_replaced_one_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sha256 was only the first split's: a user with each split's could not give them.
    splits = _splits(tmp_path / "model")
    digests = [_sha256(p) for p in splits]
    src = GGUFSource(path=str(splits[0]), sha256=[d.upper() for d in digests])
    hashed = _hashed(monkeypatch)
    assert availability(src) is None
    assert resolve_gguf(src, "m") == splits[0]
    assert hashed == splits
    for split, digest in zip(splits, digests, strict=True):  # each remembered beside it
        assert digest.upper() in split.with_suffix(".gguf.verified").read_text()
    assert resolve_gguf(src, "m") == splits[0] and hashed == splits  # not hashed again
    other = _other_weights(tmp_path, splits)[2]
    os.replace(other, splits[2])
    with pytest.raises(BackendError) as e:
        resolve_gguf(src, "m")
    assert hashed == [*splits, splits[2]]  # the replaced split alone hashed again
    assert str(e.value) == (
        f"{splits[2]}: sha256 mismatch (expected {digests[2].upper()}, got "
        f"{_sha256(splits[2])}); the file is corrupt or not the one the sha256 is of: "
        f"check gguf.path and gguf.sha256 in the config (split 3 of 3, whose sha256 is "
        f"entry 3 of gguf.sha256)"
    )


def test_a_loaded_model_with_a_sha256_per_split_whose_split_is_replaced_is_checked_again(
    tmp_path: Path,
) -> None:
    splits = _splits(tmp_path / "model")
    digests = [_sha256(p) for p in splits]
    model = tiny_model("m", "light", 0.001, gguf={"path": str(splits[0]), "sha256": digests})
    manager = LLMManager(models_config(model))
    with manager.generating("m") as backend:
        backend.generate(REQUEST)
    stamp = manager.backend("m").weights_stamp()
    assert manager.backend("m").weights_files() == splits
    os.replace(_other_weights(tmp_path, splits)[2], splits[2])
    assert manager.backend("m").weights_changed and manager.backend("m").weights_stamp() != stamp
    said = r"split 3 of 3, whose sha256 is entry 3 of gguf.sha256"
    with pytest.raises(BackendError, match=said), manager.generating("m"):
        pass
    manager.close()


def test_a_sha256_list_that_is_not_one_per_split_says_both_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    splits = _splits(tmp_path)
    digests = [_sha256(p) for p in splits]
    hashed = _hashed(monkeypatch)
    src = GGUFSource(path=str(splits[0]), sha256=digests[:2])
    said = (
        "gguf.sha256 lists 2 sha256, one per split, but model-00001-of-00003.gguf is the first "
        "of 3 split files: give the sha256 of each of the 3, in order"
    )
    assert availability(src) == said
    with pytest.raises(ModelUnavailableError, match=re.escape(said)):
        resolve_gguf(src, "m")
    assert hashed == []  # nothing read to find it


def test_a_sha256_list_for_a_whole_gguf_is_its_one_sha256_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One sha256 per file llama.cpp reads: a whole GGUF is one, so a list of one is its
    # sha256 (as a tool that lists a model's files' sha256 writes it); more are refused.
    whole = tmp_path / "model.gguf"
    shutil.copyfile(tiny_gguf_path(), whole)
    digest = _sha256(whole)
    assert resolve_gguf(GGUFSource(path=str(whole), sha256=[digest]), "m") == whole
    with pytest.raises(BackendError, match=r"model.gguf: sha256 mismatch \(expected 0{64}, got"):
        resolve_gguf(GGUFSource(path=str(whole), sha256=["0" * 64]), "m")
    src = GGUFSource(path=str(whole), sha256=[digest, digest])
    said = (
        "gguf.sha256 lists 2 sha256, one per split, but model.gguf is one file, not "
        "llama.cpp's split files: give its one sha256"
    )
    assert availability(src) == said
    with pytest.raises(ModelUnavailableError, match=re.escape(said)):
        resolve_gguf(src, "m")


def test_a_packaged_split_models_sha256_per_split_is_checked(split_package: list[Path]) -> None:
    digests = [_sha256(p) for p in split_package]
    assert resolve_gguf(_packaged(sha256=digests), "m") == split_package[0]
    _flip_last_byte(split_package[1])
    with pytest.raises(BackendError) as e:
        resolve_gguf(_packaged(sha256=digests), "m")
    assert str(e.value).endswith(
        "the file is corrupt: delete it and re-install the model package (split 2 of 3, "
        "whose sha256 is entry 2 of gguf.sha256)"
    )


def test_a_split_source_with_a_sha256_per_split_is_converted_keyed_by_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, convertible: Path
) -> None:
    # The conversion's .source records each split's sha256, as it does with the first's
    # alone (converted from the same splits, the same record): those checked are not
    # hashed again for it, and a copy of the splits elsewhere reuses the conversion.
    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "cache"))
    splits = _splits(tmp_path / "splits", convertible)
    digests = [_sha256(p) for p in splits]
    hashed = _hashed(monkeypatch)
    path = resolve_gguf(GGUFSource(path=str(splits[0]), requantize="Q8_0", sha256=digests), "smol")
    assert hashed == splits  # each once, checked
    made, stamp = path.read_bytes(), path.stat().st_mtime_ns
    record = json.loads(path.with_suffix(".gguf.source").read_text())
    assert record["sha256"] == digests
    moved = [tmp_path / "elsewhere" / p.name for p in splits]
    moved[0].parent.mkdir()
    for old, new in zip(splits, moved, strict=True):
        shutil.copyfile(old, new)
    elsewhere = GGUFSource(path=str(moved[0]), requantize="Q8_0", sha256=[d.upper() for d in digests])  # fmt: skip
    assert resolve_gguf(elsewhere, "smol") == path and path.stat().st_mtime_ns == stamp  # reused
    assert hashed == [*splits, *moved]
    # with the first split's sha256 alone, the same splits keep the same conversion
    first = GGUFSource(path=str(splits[0]), requantize="Q8_0", sha256=digests[0])
    assert resolve_gguf(first, "smol") == path and path.read_bytes() == made
