"""A saved router records the content of its encoder's files (their sha256) and is
refused where they hold other weights when it loads: a frozen-mode classifier head or an
outcome router trained on one encoder's embeddings routed silently on another's of the
same width (an ``hf:`` folder rewritten, a packaged encoder upgraded)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from routerllm.data.labeled import LabeledPrompt
from routerllm.exceptions import RouterLLMError
from routerllm.routers.base import Candidate
from routerllm.routers.classifier import EmbeddingClassifierRouter
from routerllm.routers.quality import KNNRouter
from routerllm.routers.saved import load_router
from routerllm.training.trainer import TrainingArguments

from .test_classifier_router import tiny_bert

# torch on one thread, as the suite runs it (conftest.encoders_on_one_thread)
pytestmark = pytest.mark.usefixtures("encoders_on_one_thread")

MODELS = [Candidate("small", 0.5, tier="light"), Candidate("big", 7.0, tier="heavy")]
WORDS = ["[UNK]", "[PAD]", "hello", "world", "code", "write", "poem", "sort"]
PROMPTS = ["hello world", "write code", "sort code", "write poem", "hello poem", "code world"]
SCORES = np.array([[1, 1], [0, 1], [0, 1], [1, 0], [1, 1], [0, 1]], dtype=float)


def _rewrite_weights(folder: Path, seed: int) -> None:
    """Write another BERT of the same shape over ``folder``'s model.safetensors."""
    from transformers import BertModel

    config = BertModel.from_pretrained(folder).config
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)


def _classifier(tmp_path: Path, mode: str = "frozen") -> tuple[Path, Path]:
    encoder = tiny_bert(tmp_path / "bert", WORDS)
    router = EmbeddingClassifierRouter(MODELS, encoder=f"hf:{encoder}", mode=mode, num_classes=2)
    data = [LabeledPrompt(p, int(s[0] < s[1])) for p, s in zip(PROMPTS, SCORES, strict=True)]
    args = TrainingArguments(epochs=2, batch_size=2, warmup_steps=0, progress=False)
    router.fit(data, [], args)
    return encoder, router.save(tmp_path / "router")


def _knn(tmp_path: Path) -> tuple[Path, Path]:
    encoder = tiny_bert(tmp_path / "bert", WORDS)
    router = KNNRouter(MODELS, encoder=f"hf:{encoder}", k=2)
    router.fit(PROMPTS, SCORES, ["small", "big"])
    return encoder, router.save(tmp_path / "router")


def test_frozen_classifier_on_rewritten_encoder_weights_is_refused(tmp_path: Path) -> None:
    encoder, saved = _classifier(tmp_path)
    _rewrite_weights(encoder, seed=1)
    with pytest.raises(RouterLLMError, match=r"encoder .*hf:.* other weights .*model\.safetensors"):
        load_router(saved, MODELS)


def test_outcome_router_on_rewritten_encoder_weights_is_refused(tmp_path: Path) -> None:
    encoder, saved = _knn(tmp_path)
    _rewrite_weights(encoder, seed=1)
    with pytest.raises(RouterLLMError, match=r"train the router again, or put back"):
        load_router(saved, MODELS)


def test_full_mode_classifier_checks_its_tokenizer_not_the_weights_it_saved(
    tmp_path: Path,
) -> None:
    """Full mode saves the encoder it fine-tuned: other weights in the folder change
    nothing it routes by, another tokenizer does."""
    encoder, saved = _classifier(tmp_path, mode="full")
    before = load_router(saved, MODELS).predict_proba(PROMPTS)  # type: ignore[attr-defined]
    _rewrite_weights(encoder, seed=1)
    np.testing.assert_array_equal(load_router(saved, MODELS).predict_proba(PROMPTS), before)  # type: ignore[attr-defined]
    tiny_bert(encoder, [WORDS[0], WORDS[1], *reversed(WORDS[2:])])  # same width, other ids
    with pytest.raises(RouterLLMError, match=r"tokenizer\.json.* changed since"):
        load_router(saved, MODELS)


def test_a_copy_of_the_encoder_is_the_same_encoder(tmp_path: Path) -> None:
    """Its files copied away and back (``cp -r``: another stat, the same contents) and the
    saved router copied elsewhere load, and route as before."""
    encoder, saved = _knn(tmp_path)
    before = load_router(saved, MODELS).route_batch(PROMPTS)
    shutil.copytree(encoder, tmp_path / "backup")
    shutil.rmtree(encoder)
    shutil.copytree(tmp_path / "backup", encoder)
    shutil.copytree(saved, tmp_path / "copy")
    assert load_router(tmp_path / "copy", MODELS).route_batch(PROMPTS) == before
    assert load_router(saved, MODELS).route_batch(PROMPTS) == before


def test_an_unchanged_encoder_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loads (and saves) where the encoder's files have their recorded stat hash none of
    them; a copy of them is hashed once a load, and a save of the router loaded beside it
    records its stat."""
    from routerllm import files_identity

    encoder, saved = _knn(tmp_path)
    read: list[str] = []
    real = files_identity.sha256_of
    monkeypatch.setattr(files_identity, "sha256_of", lambda p: read.append(p.name) or real(p))
    load_router(saved, MODELS)
    load_router(saved, MODELS).save(saved)
    assert read == []
    shutil.copytree(encoder, tmp_path / "backup")
    shutil.rmtree(encoder)
    shutil.copytree(tmp_path / "backup", encoder)
    router = load_router(saved, MODELS)
    assert "model.safetensors" in read
    router.save(saved)
    read.clear()
    load_router(saved, MODELS)
    assert read == []


def test_a_router_loaded_before_its_encoder_changed_is_saved_as_trained_on_the_old(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A save after the files changed (a learning server's) records what they held when it
    loaded, which it learned on: it keeps what it learned, and does not load until they
    are put back."""
    encoder, saved = _knn(tmp_path)
    router = load_router(saved, MODELS)
    shutil.copytree(encoder, tmp_path / "backup")
    _rewrite_weights(encoder, seed=1)
    router.save(saved)
    assert "hold other weights than when router 'knn' was loaded" in caplog.text
    with pytest.raises(RouterLLMError, match="put back the encoder's files"):
        load_router(saved, MODELS)
    shutil.rmtree(encoder)
    shutil.copytree(tmp_path / "backup", encoder)
    assert load_router(saved, MODELS).is_trained


def test_a_router_saved_before_the_record_loads_as_before(tmp_path: Path) -> None:
    encoder, saved = _knn(tmp_path)
    meta = json.loads((saved / "config.json").read_text())
    del meta["encoder_weights"]
    (saved / "config.json").write_text(json.dumps(meta))
    _rewrite_weights(encoder, seed=1)
    assert load_router(saved, MODELS).is_trained


@pytest.mark.parametrize("record", [[], {"stamp": 1}, {"stamp": "", "sha256": "", "files": []}])
def test_a_damaged_record_is_one_clear_error(tmp_path: Path, record: object) -> None:
    _, saved = _knn(tmp_path)
    meta = json.loads((saved / "config.json").read_text())
    meta["encoder_weights"] = record
    (saved / "config.json").write_text(json.dumps(meta))
    with pytest.raises(RouterLLMError, match=r"config\.json is corrupt \(encoder_weights: "):
        load_router(saved, MODELS)


def test_a_packaged_encoder_is_recorded_with_its_package_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    router = KNNRouter(MODELS, encoder="static", k=2)
    router.fit(None, SCORES, ["small", "big"], embeddings=np.eye(6, 256, dtype=np.float32))
    record = json.loads((router.save(tmp_path / "r") / "config.json").read_text())
    weights = record["encoder_weights"]
    assert weights["packages"] == f"static@wordllama=={version('wordllama')}"
    assert [Path(f).name for f in weights["files"]] == [
        "l2_supercat_256.safetensors",
        "l2_supercat_tokenizer_config.json",
    ]
    assert load_router(tmp_path / "r", MODELS).is_trained


def test_an_encoder_of_no_files_records_none(tmp_path: Path) -> None:
    router = KNNRouter(MODELS, encoder="hashing", k=2)
    router.fit(PROMPTS, SCORES, ["small", "big"])
    assert "encoder_weights" not in json.loads((router.save(tmp_path / "r") / "config.json").read_text())  # fmt: skip


def test_an_encoder_file_gone_is_named_as_gone(tmp_path: Path) -> None:
    """The weights file gone from the encoder's folder: the refusal names it as gone, not
    the files that are unchanged."""
    encoder, saved = _knn(tmp_path)
    (encoder / "model.safetensors").unlink()
    with pytest.raises(RouterLLMError) as e:
        load_router(saved, MODELS)
    assert "model.safetensors (gone)" in str(e.value)
    assert "config.json" not in str(e.value)


def test_encoder_files_that_cannot_be_read_are_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of the encoder that cannot be read (a mode root ignores: the read's error is
    made here) is one line naming it, at load and at save, not an OSError traceback."""
    from routerllm import files_identity

    encoder, saved = _knn(tmp_path)
    router = load_router(saved, MODELS)
    (encoder / "model.safetensors").touch()  # another stat: read again

    def unreadable(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(files_identity, "sha256_of", unreadable)
    with pytest.raises(RouterLLMError, match=r"cannot read the files of encoder .*Permission denied"):  # fmt: skip
        load_router(saved, MODELS)
    with pytest.raises(RouterLLMError, match=r"cannot read the files of encoder .*Permission denied"):  # fmt: skip
        router.save(tmp_path / "again")
