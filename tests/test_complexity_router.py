"""The complexity router: the packaged default (no training) and any local HF classifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routerllm.config import load_config
from routerllm.exceptions import ModelUnavailableError, RouterLLMError
from routerllm.routers import create_router, load_router

from .test_hf_backend import VOCAB


@pytest.fixture(scope="module")
def ladder():  # type: ignore[no-untyped-def]
    return load_config("local").models


def test_packaged_default_needs_no_training(ladder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    router = create_router("complexity", ladder)
    router.warm_up("Hello")  # the demo's: its classifier loaded before any request
    assert router._classifier is not None  # type: ignore[attr-defined]
    tier = {m.name: m.tier for m in ladder}
    assert tier[router.route("Translate 'hello' to French.").model] == "light"
    hard = router.route("Implement a thread-safe LRU cache in Python with unit tests")
    assert tier[hard.model] == "heavy" and "complexity class 'heavy'" in hard.reason
    assert f"-> {hard.model}" in hard.reason
    assert router.labels == ["light", "medium", "heavy"]
    proba = router.predict_proba(["hi", "Write a REST API in Go"])  # type: ignore[attr-defined]
    assert proba.shape == (2, 3) and abs(proba.sum() - 2.0) < 1e-6
    router.save(tmp_path / "c")
    assert load_router(tmp_path / "c", ladder).route("hi").model == router.route("hi").model


def test_a_label_map_for_the_packaged_default_must_map_all_its_labels(ladder) -> None:  # type: ignore[no-untyped-def]
    # a partial map routed nothing: the first request was a KeyError traceback
    with pytest.raises(RouterLLMError, match=r"labels \['light', 'medium'\] of 'default' are not in label_map .*light, medium, heavy"):  # fmt: skip
        create_router("complexity", ladder, label_map={"heavy": "medium"})
    down = {"light": "light", "medium": "medium", "heavy": "medium"}
    router = create_router("complexity", ladder, label_map=down)
    tier = {m.name: m.tier for m in ladder}
    assert tier[router.route("Implement a thread-safe LRU cache in Python").model] == "medium"


def build_classifier(directory: Path, labels: dict[int, str]) -> Path:
    """A real tokenizer + tiny BERT sequence classifier, saved with save_pretrained."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=len(labels),
        id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = BertForSequenceClassification(config)
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


def test_local_hf_classifier_with_the_seed_label_map(ladder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = build_classifier(tmp_path / "clf", {0: "LABEL_0", 1: "LABEL_1"})
    router = create_router("complexity", ladder, model=str(path))
    assert router.labels == ["LABEL_0", "LABEL_1"]
    decision = router.route("hello world write the code")
    # LABEL_0 (simple) -> medium, LABEL_1 (complex) -> heavy: never the light model
    tier = {m.name: m.tier for m in ladder}
    assert tier[decision.model] in {"medium", "heavy"}
    proba = router.predict_proba(["hello world", "write the code please"])  # type: ignore[attr-defined]
    expected = "heavy" if proba[0, 1] > proba[0, 0] else "medium"
    assert tier[router.route("hello world").model] == expected


def test_hf_classifier_errors(ladder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = build_classifier(tmp_path / "clf", {0: "easy", 1: "hard"})
    with pytest.raises(RouterLLMError, match="not in label_map"):
        create_router("complexity", ladder, model=str(path)).route("hi")
    mapped = create_router(
        "complexity", ladder, model=str(path), label_map={"easy": "light", "hard": "heavy"}
    )
    assert mapped.route("hi").model in {"smollm2-135m", "qwen2.5-coder-1.5b"}
    with pytest.raises(RouterLLMError, match="unknown tiers"):
        create_router("complexity", ladder, model=str(path), label_map={"easy": "tiny"})
    with pytest.raises(ModelUnavailableError, match="not found"):
        create_router("complexity", ladder, model=str(tmp_path / "missing")).route("hi")


def test_a_damaged_local_classifier_is_one_clear_error(ladder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A cut model.safetensors was a SafetensorError traceback, and weights of other sizes
    # than its config.json's a RuntimeError one.
    path = build_classifier(tmp_path / "clf", {0: "LABEL_0", 1: "LABEL_1"})
    weights = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(weights[:1000])
    with pytest.raises(ModelUnavailableError) as err:
        create_router("complexity", ladder, model=str(path)).route("hi")
    assert str(err.value) == (
        f"complexity model {str(path)!r} cannot be loaded (Error while deserializing header: "
        f"invalid header length); give a sequence-classification model saved with "
        f"save_pretrained, or a hub id in the Hugging Face cache"
    )
    (path / "model.safetensors").write_bytes(weights)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "hidden_size": 64}))
    with pytest.raises(ModelUnavailableError, match="ignore_mismatched_sizes") as err:
        create_router("complexity", ladder, model=str(path)).route("hi")
    assert "\n" not in str(err.value)


def test_a_model_that_is_not_a_classifier_is_refused(ladder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A base encoder (no classification head) loaded with a newly initialised, random
    # head: the router routed on noise, with a 'confidence', and no error.
    import shutil

    from transformers import BertConfig, BertModel

    clf = build_classifier(tmp_path / "clf", {0: "LABEL_0", 1: "LABEL_1"})
    base = tmp_path / "base"
    BertModel(BertConfig.from_pretrained(clf)).save_pretrained(base)
    for f in clf.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(f, base / f.name)
    with pytest.raises(ModelUnavailableError) as err:
        create_router("complexity", ladder, model=str(base)).route("hello world")
    message = str(err.value)
    assert "is not a sequence-classification model" in message and "classifier.weight" in message
    assert "\n" not in message


def test_an_unavailable_model_falls_back_to_the_next_one_up_of_its_label() -> None:
    # a heavy prompt whose heavy model is unavailable went to the medium one (the other
    # labels' near-zero probabilities outweighed the size prior), with a bigger heavy
    # model available: README promises a fallback to a bigger model
    from routerllm.config import ModelConfig

    from .conftest import tiny_model

    sizes = [("s", "light", 0.1), ("m", "medium", 0.5), ("l", "heavy", 1.5), ("xl", "heavy", 7.0)]
    ladder = [ModelConfig(**tiny_model(*size)) for size in sizes]
    router = create_router("complexity", ladder)
    heavy = "Implement a thread-safe LRU cache in Python with unit tests"
    assert router.route(heavy).model == "l"
    assert router.route(heavy, ["s", "m", "xl"]).model == "xl"
    light = "Translate 'hello' to French."
    assert router.route(light).model == "s"
    fallback = router.route(light, ["m", "l", "xl"])
    assert fallback.model == "m" and "s unavailable" in fallback.reason
    assert router.route(heavy, ["s", "m"]).model == "m"  # none bigger: the nearest smaller
