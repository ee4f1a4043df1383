"""An ``hf`` model's files replaced under a running process: loaded again before it
next answers, and the request cache keyed by them (``HFBackend.weights_stamp``)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm import RouterLLM
from routerllm.backends.base import GenerationRequest
from routerllm.config import load_config
from routerllm.exceptions import ModelUnavailableError
from routerllm.manager import LLMManager

from .conftest import (
    gguf_with_other_weights,
    models_config,
    tiny_config_dict,
    tiny_gguf_reader,
    write_config,
)
from .test_hf_backend import PROMPT, READ_JSON, build_tiny_model, make_backend

REQUEST = GenerationRequest(PROMPT, max_new_tokens=8, temperature=0.0)


@pytest.fixture(scope="module")
def first_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("first"))


@pytest.fixture(scope="module")
def second_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another model of the same shape and tokenizer: other weights (another seed)."""
    return build_tiny_model(tmp_path_factory.mktemp("second"), seed=4321)


def answer_of(model_id: str | Path, context_length: int = 128) -> str:
    """What a process started on ``model_id``'s files now answers ``REQUEST``."""
    backend = make_backend(model_id, context_length=context_length)
    try:
        return backend.generate(REQUEST).text
    finally:
        backend.unload()


def hf_model(model_id: str | Path, context_length: int = 128) -> dict[str, Any]:
    return {"name": "m", "backend": "hf", "tier": "light", "params_b": 0.001,
            "model_id": str(model_id), "memory_gb": 0.1, "context_length": context_length}  # fmt: skip


def answered_again(manager: LLMManager) -> str:
    """The manager's model's answer to ``REQUEST``, checked to come from a second load."""
    first = manager.backend("m")._model  # type: ignore[attr-defined]
    assert manager.backend("m").weights_changed
    with manager.generating("m") as backend:
        text = backend.generate(REQUEST).text
    assert manager.backend("m")._model is not first  # type: ignore[attr-defined]
    assert not manager.backend("m").weights_changed
    _, event = manager.acquire("m")
    assert not event.loaded_now  # once
    return text


def answering_from_a_folder(tmp_path: Path, model_dir: Path) -> tuple[Path, LLMManager, str]:
    """A copy of ``model_dir`` in ``tmp_path``, and a manager whose model m loaded it and
    answered ``REQUEST``: (the folder, the manager, that answer)."""
    folder = shutil.copytree(model_dir, tmp_path / "model")
    manager = LLMManager(models_config(hf_model(folder)))
    with manager.generating("m") as backend:
        answer = backend.generate(REQUEST).text
    return folder, manager, answer


@pytest.mark.parametrize("how", ["renamed", "overwritten"])
def test_a_loaded_model_whose_folder_is_replaced_is_loaded_again(
    tmp_path: Path, first_dir: Path, second_dir: Path, how: str
) -> None:
    # It went on answering with the weights it loaded until it was unloaded or the
    # process restarted.
    folder, manager, old = answering_from_a_folder(tmp_path, first_dir)
    expected = answer_of(second_dir)
    assert old != expected and not manager.backend("m").weights_changed
    if how == "renamed":  # each file renamed over, as a copy finished elsewhere is
        for source in second_dir.iterdir():
            shutil.copyfile(source, tmp_path / source.name)
            os.replace(tmp_path / source.name, folder / source.name)
    else:  # the weights written in place (cp): the same size, the same inode
        weights = folder / "model.safetensors"
        shutil.copyfile(second_dir / "model.safetensors", weights)
        os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1))  # coarse clocks  # fmt: skip
    assert answered_again(manager) == expected
    manager.close()


def test_a_weights_file_added_to_the_folder_is_a_change(tmp_path: Path, first_dir: Path) -> None:
    """transformers reads model.safetensors before pytorch_model.bin: a folder that had
    only the latter has other weights once the former is written beside it."""
    folder = shutil.copytree(first_dir, tmp_path / "model")
    backend = make_backend(folder)
    stamp = backend.weights_stamp()
    assert stamp is not None and backend.weights_stamp() == stamp
    (folder / "README.md").write_text("not read by transformers")
    assert backend.weights_stamp() == stamp
    (folder / "pytorch_model.bin").write_bytes(b"other weights")
    assert backend.weights_stamp() != stamp
    assert not backend.weights_changed  # not loaded: nothing to load again


def test_a_missing_model_has_no_weights_stamp(tmp_path: Path) -> None:
    backend = make_backend(tmp_path / "no-such-model")
    assert backend.weights_stamp() is None and not backend.weights_changed


@pytest.fixture(scope="module")
def small_vocab_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GGUF with its vocabulary cut to its first 512 tokens (the specials, the
    256 bytes, the commonest pieces), its embedding and output rows with it: a load by
    transformers reads a GGUF's metadata three times, 5 s of each 6 s load of the
    32,000 tokens (idle, 2 cores), 0.1 s of 512. Copied by each test, never changed."""
    import gguf

    reader = tiny_gguf_reader()
    path = tmp_path_factory.mktemp("small") / "small-vocab.gguf"
    writer = gguf.GGUFWriter(path, arch="llama", endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue  # the writer's own
        kind, value = field.types[0], field.contents()
        if kind == gguf.GGUFValueType.ARRAY:  # the tokenizer's tokens, scores, types
            writer.add_array(field.name, value[:512])
        else:
            writer.add_key_value(field.name, value, kind)
    for tensor in reader.tensors:
        data = np.array(tensor.data)
        if tensor.name in ("token_embd.weight", "output.weight"):
            data = data[:512]
        writer.add_tensor(tensor.name, data, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_loaded_gguf_file_renamed_over_is_loaded_again(
    tmp_path: Path, small_vocab_gguf: Path
) -> None:
    path = tmp_path / "model.gguf"
    shutil.copyfile(small_vocab_gguf, path)
    other = gguf_with_other_weights(tmp_path / "other.gguf", small_vocab_gguf)
    expected = answer_of(other, context_length=64)
    manager = LLMManager(models_config(hf_model(path, 64)))
    with manager.generating("m") as backend:
        old = backend.generate(REQUEST).text
    assert old != expected
    os.replace(other, path)
    assert answered_again(manager) == expected
    manager.close()


def cache_revision(model_dir: Path, hf_cache: Path, commit: str) -> Path:
    """``model_dir``'s files as revision ``commit`` of the hub model ``me/tiny-llama`` in
    ``hf_cache``, laid out as huggingface_hub downloads one: each file a blob named by
    its content, the snapshot's files links to them, ``refs/main`` the newest commit."""
    repo = hf_cache / "models--me--tiny-llama"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for source in sorted(model_dir.iterdir()):
        blob = repo / "blobs" / hashlib.sha256(source.read_bytes()).hexdigest()
        if not blob.exists():
            shutil.copyfile(source, blob)
        (snapshot / source.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def answering_from_the_hf_cache(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, LLMManager, str]:
    """An HF cache in ``tmp_path`` holding ``model_dir`` as me/tiny-llama's revision
    1...1, and a manager whose model m loaded it and answered ``REQUEST``: (the cache,
    the manager, that answer)."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    cache_revision(model_dir, cache, "1" * 40)
    manager = LLMManager(models_config(hf_model("me/tiny-llama")))
    with manager.generating("m") as backend:
        answer = backend.generate(REQUEST).text
    return cache, manager, answer


def test_a_new_revision_in_the_hf_cache_is_loaded_where_its_files_differ(
    tmp_path: Path, first_dir: Path, second_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, manager, old = answering_from_the_hf_cache(tmp_path, first_dir, monkeypatch)
    expected = answer_of(second_dir)
    backend = manager.backend("m")
    stamp = backend.weights_stamp()
    assert old != expected and stamp is not None
    # a revision that changed only its README: the same blobs, nothing to load again
    readme = tmp_path / "readme-revision"
    shutil.copytree(first_dir, readme)
    (readme / "README.md").write_text("a model card")
    cache_revision(readme, cache, "2" * 40)
    assert backend.weights_stamp() == stamp and not backend.weights_changed
    cache_revision(second_dir, cache, "3" * 40)
    assert answered_again(manager) == expected
    manager.close()


def caching_config(tmp_path: Path, folder: Path) -> Path:
    """A config file with the request cache on and one model, m, the hf model in
    ``folder``."""
    data = tiny_config_dict(tmp_path, cache={"enabled": True}, carbon={"enabled": False}, router={"name": "smallest"})  # fmt: skip
    data["models"] = [hf_model(folder)]
    return write_config(tmp_path, data)


def test_the_cache_does_not_serve_the_replaced_weights_answers(
    tmp_path: Path, first_dir: Path, second_dir: Path
) -> None:
    folder = shutil.copytree(first_dir, tmp_path / "model")
    expected = answer_of(second_dir)
    with RouterLLM(load_config(caching_config(tmp_path, folder))) as system:
        first = system.generate(REQUEST)
        assert system.generate(REQUEST).cached_from == first.request_id
        os.replace(shutil.copyfile(second_dir / "model.safetensors", tmp_path / "new"), folder / "model.safetensors")  # fmt: skip
        again = system.generate(REQUEST)
        assert not again.cached_from and again.text == expected != first.text
        assert system.generate(REQUEST).cached_from == again.request_id


def _as_nobody(model_id: str, out: Any) -> None:
    """In a forked child dropped to nobody: what the backend says of ``model_id``'s files
    (its stamp, its availability, a load), each an error's type and one line."""
    from routerllm.exceptions import RouterLLMError

    os.setgid(65534)
    os.setuid(65534)
    backend = make_backend(model_id)
    said: dict[str, str] = {}
    for what, ask in (("stamp", backend.weights_stamp), ("availability", backend.availability),
                      ("load", backend.load)):  # fmt: skip
        try:
            said[what] = repr(ask())
        except (RouterLLMError, OSError) as e:
            said[what] = f"{type(e).__name__}: {e}"
    out.put(said)


@pytest.mark.skipif(os.geteuid() != 0, reason="the drop to nobody happens as root only")
def test_a_model_folder_that_cannot_be_read_is_unavailable_not_a_traceback(
    tmp_path: Path, first_dir: Path
) -> None:
    """A folder above the model's that its process may not search (permission denied):
    asked before each answer of a loaded model, its stamp raised PermissionError (Python
    3.11's is_dir and is_file raise it) where a missing folder's is None and the model
    is loaded again, which says it is unavailable."""
    import multiprocessing

    import torch  # noqa: F401  (imported before the drop: nobody cannot read the venv)
    import transformers  # noqa: F401

    private = tmp_path / "private"
    folder = shutil.copytree(first_dir, private / "model")
    private.chmod(0o700)
    fork = multiprocessing.get_context("fork")
    out = fork.Queue()
    child = fork.Process(target=_as_nobody, args=(str(folder), out))
    child.start()
    said = out.get(timeout=60)
    child.join(timeout=60)
    assert said["stamp"] == "None"
    assert "not in a local directory or the HF cache" in said["availability"]
    assert said["load"].startswith("ModelUnavailableError: model 'tiny-hf': weights for")


def write_anew(path: Path, data: bytes) -> None:
    """``data`` written at ``path`` as a new file (another inode): a copy under way into
    a folder whose old file was removed first; the loaded model's mapping of the old
    file stays whole."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def answered_by_the_loaded_weights(manager: LLMManager, expected: str) -> None:
    """The manager's model answers ``expected`` with the weights it has loaded: not
    loaded again, not found changed, its stamp the one it was loaded with."""
    backend = manager.backend("m")
    first, stamp = backend._model, backend.weights_stamp()  # type: ignore[attr-defined]
    assert not backend.weights_changed
    with manager.generating("m") as generating:
        assert generating.generate(REQUEST).text == expected
    assert backend._model is first and backend.weights_stamp() == stamp  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["weights missing", "weights cut short"])
def test_a_replacement_copied_in_file_by_file_leaves_the_loaded_weights_answering(
    tmp_path: Path, first_dir: Path, second_dir: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The new config.json there, the weights not yet whole: the model was found changed,
    # unloaded, and its load failed ("Error no file named model.safetensors", "incomplete
    # metadata"): every request until the copy ended failed, unavailable 60 s after.
    folder, manager, old = answering_from_a_folder(tmp_path, first_dir)
    expected = answer_of(second_dir)
    weights = (second_dir / "model.safetensors").read_bytes()
    write_anew(folder / "config.json", (second_dir / "config.json").read_bytes())
    (folder / "model.safetensors").unlink()
    if how == "weights cut short":
        write_anew(folder / "model.safetensors", weights[: len(weights) // 3])
    with caplog.at_level("WARNING", logger="routerllm"):
        answered_by_the_loaded_weights(manager, old)
        if how == "weights cut short":  # the copy goes on: still cut short, warned once
            with (folder / "model.safetensors").open("ab") as f:
                f.write(weights[len(weights) // 3 : len(weights) // 2])
            answered_by_the_loaded_weights(manager, old)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "the weights it loaded still answer" in said[0]
    assert ("cut short" if how == "weights cut short" else "no weights file") in said[0]
    write_anew(folder / "model.safetensors", weights)
    assert answered_again(manager) == expected != old
    manager.close()


@pytest.mark.parametrize("name", READ_JSON)
def test_a_json_file_not_yet_whole_leaves_the_loaded_weights_answering(
    tmp_path: Path, first_dir: Path, second_dir: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The new weights whole, a JSON file transformers reads half-copied: the model was
    # found changed, unloaded, and its load failed (JSONDecodeError); every request
    # until the copy ended failed.
    folder, manager, old = answering_from_a_folder(tmp_path, first_dir)
    expected = answer_of(second_dir)
    text = (second_dir / name).read_bytes()
    write_anew(folder / "model.safetensors", (second_dir / "model.safetensors").read_bytes())
    write_anew(folder / name, text[: len(text) // 3])
    with caplog.at_level("WARNING", logger="routerllm"):
        answered_by_the_loaded_weights(manager, old)
        with (folder / name).open("ab") as f:  # the copy goes on: warned once
            f.write(text[len(text) // 3 : len(text) // 2])
        answered_by_the_loaded_weights(manager, old)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and f"{folder / name} does not parse as JSON" in said[0]
    write_anew(folder / name, text)
    assert answered_again(manager) == expected != old
    manager.close()


def test_a_new_revision_downloading_into_the_hf_cache_leaves_the_loaded_weights_answering(
    tmp_path: Path, first_dir: Path, second_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # huggingface_hub writes refs/main before the files, config.json first: the new
    # snapshot without its weights failed every request until they came.
    cache, manager, old = answering_from_the_hf_cache(tmp_path, first_dir, monkeypatch)
    expected = answer_of(second_dir)
    snapshot = cache_revision(second_dir, cache, "2" * 40)
    weights = snapshot / "model.safetensors"
    blob = weights.readlink()
    weights.unlink()
    answered_by_the_loaded_weights(manager, old)
    weights.symlink_to(blob)
    assert answered_again(manager) == expected != old
    manager.close()


@pytest.mark.parametrize("how", ["renamed", "overwritten"])
def test_a_config_naming_an_unknown_architecture_leaves_the_loaded_weights_answering(
    tmp_path: Path, first_dir: Path, second_dir: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A config.json that parses but names a model type transformers does not know: the
    # model was unloaded, its load failed, and every request for the next minute failed
    # though the weights it had loaded were whole (a config is read once, at the load).
    import json

    folder, manager, old = answering_from_a_folder(tmp_path, first_dir)
    config = json.loads((folder / "config.json").read_text())
    unknown = json.dumps({**config, "model_type": "zzzllama", "architectures": ["ZzzForCausalLM"]})  # fmt: skip
    if how == "renamed":
        write_anew(folder / "config.json", unknown.encode())
    else:
        (folder / "config.json").write_text(unknown)
    with caplog.at_level("WARNING", logger="routerllm"):
        answered_by_the_loaded_weights(manager, old)
        answered_by_the_loaded_weights(manager, old)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "the weights it loaded still answer" in said[0], said
    assert "zzzllama" in said[0] and str(folder) in said[0]
    assert manager.available_models() == ["m"]
    for source in second_dir.iterdir():  # another model, whole: loaded at the next request
        write_anew(folder / source.name, source.read_bytes())
    assert answered_again(manager) == answer_of(second_dir) != old
    manager.close()


def test_weights_written_in_place_are_not_answered_with(tmp_path: Path, first_dir: Path) -> None:
    """The loaded weights file itself rewritten (cp over it): the model maps it, so its
    old weights are gone, and reading past the end of a file cut short kills the process
    (SIGBUS). It is unloaded and the request fails, saying why."""
    folder = shutil.copytree(first_dir, tmp_path / "model")
    manager = LLMManager(models_config(hf_model(folder)))
    manager.acquire("m")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    with weights.open("r+b") as f:  # in place: the same inode
        f.truncate(len(data) // 2)
    assert manager.backend("m").weights_changed
    with pytest.raises(ModelUnavailableError, match=r"model\.safetensors is cut short \("):
        manager.acquire("m")
    assert not manager.backend("m").loaded and manager.loaded_models == []
    manager.close()


def test_the_cache_keys_an_answer_by_the_weights_that_gave_it(
    tmp_path: Path, first_dir: Path, second_dir: Path
) -> None:
    # While the new files are not whole the loaded weights answer: their cached answer
    # is theirs to give; once whole, the new weights' answer is another key's.
    folder = shutil.copytree(first_dir, tmp_path / "model")
    expected = answer_of(second_dir)
    weights = (second_dir / "model.safetensors").read_bytes()
    with RouterLLM(load_config(caching_config(tmp_path, folder))) as system:
        first = system.generate(REQUEST)
        write_anew(folder / "model.safetensors", weights[:100])
        assert system.generate(REQUEST).cached_from == first.request_id
        system.cache.clear()  # type: ignore[union-attr]
        kept = system.generate(REQUEST)
        assert kept.text == first.text and not kept.cached_from
        assert system.generate(REQUEST).cached_from == kept.request_id
        write_anew(folder / "model.safetensors", weights)
        again = system.generate(REQUEST)
        assert not again.cached_from and again.text == expected != first.text
        assert system.generate(REQUEST).cached_from == again.request_id


def test_model_files_lists_the_additional_chat_templates(tmp_path: Path, first_dir: Path) -> None:
    """transformers reads a chat template from additional_chat_templates/ too."""
    from routerllm.hf_hub import model_files

    folder = shutil.copytree(first_dir, tmp_path / "model")
    backend = make_backend(folder)
    stamp = backend.weights_stamp()
    templates = folder / "additional_chat_templates"
    templates.mkdir()
    assert backend.weights_stamp() == stamp  # an empty folder: nothing read
    (templates / "tool_use.jinja").write_text("{{ messages }}")
    (templates / "notes.md").write_text("not read")
    assert templates / "tool_use.jinja" in (model_files(str(folder)) or [])
    assert templates / "notes.md" not in (model_files(str(folder)) or [])
    assert backend.weights_stamp() != stamp


#: A model folder's files that transformers may read, and files it never reads.
READ = ["bpe.codes", "chat_template.jinja", "config.json", "generation_config.json",
        "merges.txt", "model.safetensors", "prophetnet.tokenizer", "pytorch_model.bin",
        "qwen.tiktoken", "source.spm", "target.spm", "tokenizer.json", "tokenizer.model",
        "tokenizer.model.v3", "vocab.txt"]  # fmt: skip
#: Tokenizer files of names that ``*.json``, ``*.model`` or ``*.txt`` missed: BERTweet's
#: and PhoBERT's BPE codes, ProphetNet's vocabulary, Marian's SentencePiece models, and a
#: Mistral tokenizer.model.v3 (read where a folder has no tokenizer.json).
TOKENIZER_FILES = ["bpe.codes", "prophetnet.tokenizer", "source.spm", "tokenizer.model.v3"]
NOT_READ = [".gitattributes", "LICENSE", "README.md"]


def files_folder(folder: Path) -> Path:
    """``folder`` with each file of ``READ`` and ``NOT_READ``, made in reverse order."""
    folder.mkdir(parents=True)
    for name in reversed(sorted(READ + NOT_READ)):
        (folder / name).write_text(name)
    return folder


def test_model_files_are_those_transformers_may_read_in_name_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tokenizer's or chat template's file replaced is a change as the weights are; a
    README is not; and the order is the names', not the folder listing's (a revision's
    snapshot, whose links are made in another order, has the stamp of its files)."""
    from routerllm.hf_hub import model_files

    folder = files_folder(tmp_path / "model")
    (folder / "onnx").mkdir()
    assert model_files(str(folder)) == [folder / name for name in READ]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert model_files("~/model") == [folder / name for name in READ]


@pytest.mark.parametrize("name", TOKENIZER_FILES)
def test_a_tokenizer_file_replaced_is_a_change(tmp_path: Path, first_dir: Path, name: str) -> None:
    """transformers reads these tokenizers' files by those names: one replaced there was
    not seen, the model answering on with the tokenizer it had loaded."""
    folder = shutil.copytree(first_dir, tmp_path / "model")
    (folder / name).write_text("one")
    backend = make_backend(folder)
    stamp = backend.weights_stamp()
    write_anew(folder / name, b"another")
    assert backend.weights_stamp() != stamp


def test_model_files_of_a_hub_id_are_its_refs_main_snapshots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    from routerllm.hf_hub import model_files

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    snapshot = cache_revision(files_folder(tmp_path / "files"), cache, "1" * 40)
    assert model_files("me/tiny-llama") == [snapshot / name for name in READ]
    main = cache / "models--me--tiny-llama" / "refs" / "main"
    main.write_text("1" * 40 + "\n")  # as git writes a ref
    assert model_files("me/tiny-llama") == [snapshot / name for name in READ]
    # a ref that names no snapshot: empty, or a path out of the snapshots folder
    main.write_text("")
    assert model_files("me/tiny-llama") is None
    shutil.copytree(tmp_path / "files", cache / "models--me--tiny-llama" / "elsewhere")
    main.write_text("../elsewhere")
    assert model_files("me/tiny-llama") is None
    # a local folder of that name is loaded before the cache's snapshot (locate_model)
    main.write_text("1" * 40)
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "me" / "tiny-llama"
    local.mkdir(parents=True)
    (local / "config.json").write_text("{}")
    assert model_files("me/tiny-llama") == [Path("me/tiny-llama/config.json")]
