"""The full-mode classifier's token cut-off: one for training and routing.

``TrainingArguments.max_length`` set the cut-off training read, the router's own
``max_length`` the one it routed by: setting only one trained on one and routed on the
other (prompts longer than the smaller seen differently), without a word."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.data.labeled import LabeledPrompt
from routerllm.exceptions import RouterLLMError
from routerllm.routers.classifier import EmbeddingClassifierRouter
from routerllm.routers.saved import load_router
from routerllm.training.trainer import TrainingArguments

from .test_classifier_router import MODELS, TRAIN, VAL, tiny_bert

# torch on one thread, as the suite runs it (conftest.encoders_on_one_thread)
pytestmark = pytest.mark.usefixtures("encoders_on_one_thread")

WORDS = ["[UNK]", "[PAD]", "hello", "world", "code", "poem"]
#: Prompts of 12 tokens whose first 4 are alike: a cut-off of 4 cannot tell them apart.
DATA = [
    LabeledPrompt(" ".join(["hello"] * 4 + [w] * 8), c)
    for c, w in enumerate(["world", "code", "poem", "hello"])
] * 4


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"hf:{tiny_bert(tmp_path_factory.mktemp('bert'), WORDS)}"


def args(**overrides: Any) -> TrainingArguments:
    values: dict[str, Any] = {"epochs": 1, "batch_size": 4, "learning_rate": 1e-2,
                              "warmup_steps": 0, "progress": False}  # fmt: skip
    return TrainingArguments(**{**values, **overrides})


def routes_as_its_first_4_tokens(router: Any) -> bool:
    long, head = "hello hello hello hello code code code code", "hello hello hello hello"
    probs = router.predict_proba([long, head])
    return bool(np.allclose(probs[0], probs[1], rtol=1e-5, atol=1e-7))


def test_a_cut_off_given_to_training_only_is_the_one_the_router_routes_by(
    bert: str, tmp_path: Path
) -> None:
    router = EmbeddingClassifierRouter(MODELS, encoder=bert, mode="full")
    router.fit(DATA, (), args(max_length=4))
    assert routes_as_its_first_4_tokens(router)  # trained on 4 tokens, it routed on 16
    assert router.max_length == 4
    folder = router.save(tmp_path / "router")
    assert json.loads((folder / "config.json").read_text())["options"]["max_length"] == 4
    again = load_router(folder, MODELS)
    assert routes_as_its_first_4_tokens(again)
    texts = [p.text for p in DATA]
    np.testing.assert_array_equal(again.predict_proba(texts), router.predict_proba(texts))


def test_a_cut_off_given_to_the_router_only_is_the_one_training_reads(bert: str) -> None:
    """Training read 512 tokens (all 12 here) while the router routed on 4."""
    given_once = EmbeddingClassifierRouter(MODELS, encoder=bert, mode="full", max_length=4)
    given_once.fit(DATA, (), args())
    given_twice = EmbeddingClassifierRouter(MODELS, encoder=bert, mode="full", max_length=4)
    given_twice.fit(DATA, (), args(max_length=4))
    for key, value in given_twice.state().items():
        np.testing.assert_array_equal(given_once.state()[key], value, err_msg=key)
    assert routes_as_its_first_4_tokens(given_once)


def test_two_cut_offs_given_are_refused_before_training(bert: str) -> None:
    router = EmbeddingClassifierRouter(MODELS, encoder=bert, mode="full", max_length=8)
    with pytest.raises(RouterLLMError) as err:
        router.fit(DATA, (), args(max_length=4))
    assert str(err.value) == (
        "TrainingArguments.max_length 4 is not the router's max_length 8, the cut-off it "
        "routes by: give the cut-off to one of them (or the same to both)"
    )
    assert not router.is_trained
    # a router trained with a cut-off is not trained again with another
    router = EmbeddingClassifierRouter(MODELS, encoder=bert, mode="full")
    router.fit(DATA, (), args(max_length=4))
    with pytest.raises(RouterLLMError, match="max_length 8 is not the router's max_length 4"):
        router.fit(DATA, (), args(max_length=8))
    assert router.fit(DATA, (), args()).epochs_run == [1]  # the router's own: 4
    assert router.max_length == 4


def test_routers_saved_before_route_as_they_did(bert: str, tmp_path: Path) -> None:
    """A router saved before records the max_length it routed by (512 unless given),
    whatever training read: loaded, it still routes by it; one whose config.json has no
    max_length routes by 512."""
    router = EmbeddingClassifierRouter(MODELS, encoder=bert, mode="full")
    folder = router.fit(DATA, (), args(max_length=4)) and router.save(tmp_path / "router")
    meta = json.loads((folder / "config.json").read_text())
    for options in ({**meta["options"], "max_length": 512},
                    {k: v for k, v in meta["options"].items() if k != "max_length"}):  # fmt: skip
        (folder / "config.json").write_text(json.dumps({**meta, "options": options}))
        # the weights' digest is of weights.npz, unchanged: it loads
        loaded = load_router(folder, MODELS)
        assert isinstance(loaded, EmbeddingClassifierRouter) and loaded.max_length == 512
        assert not routes_as_its_first_4_tokens(loaded)


@pytest.mark.slow  # ~10 s on 2 cores: fine-tunes the packaged MiniLM for one epoch
def test_minilm_fine_tuned_on_8_tokens_routes_on_8() -> None:
    router = EmbeddingClassifierRouter(MODELS, encoder="minilm", mode="full")
    router.fit(TRAIN[:32], VAL[:4], args(max_length=8, batch_size=8, learning_rate=1e-4))
    # [CLS] + 6 words + [SEP]: the words after the sixth are not read
    long, head = "write a python function with unit tests for sorting", "write a python function with unit"  # fmt: skip
    probs = router.predict_proba([long, head])
    np.testing.assert_allclose(probs[0], probs[1], rtol=1e-5, atol=1e-7)


def test_a_saved_router_is_not_loaded_with_another_cut_off(bert: str, tmp_path: Path) -> None:
    """A config's router.options max_length replaced the saved one without a word: a
    router fine-tuned on 4 tokens routed on 512."""
    router = EmbeddingClassifierRouter(MODELS, encoder=bert, mode="full")
    folder = router.fit(DATA, (), args(max_length=4)) and router.save(tmp_path / "router")
    with pytest.raises(RouterLLMError) as err:
        load_router(folder, MODELS, {"max_length": 512})
    assert str(err.value) == (
        f"max_length: the router saved in {folder} was trained with max_length 4; to use "
        f"another, train it again, or remove it from the options (router.options)"
    )
    same = load_router(folder, MODELS, {"max_length": 4})
    assert routes_as_its_first_4_tokens(same)


def test_a_saved_frozen_router_loads_with_any_cut_off_which_it_does_not_read(
    bert: str, tmp_path: Path
) -> None:
    """Frozen mode reads no max_length (its encoder cuts texts itself), yet a config's
    router.options max_length on a saved frozen router was refused as full mode's is
    ("train it again"): a config that loaded before. Loaded, it routes as saved."""
    router = EmbeddingClassifierRouter(MODELS, encoder=bert, mode="frozen")
    folder = router.fit(DATA, (), args()) and router.save(tmp_path / "router")
    loaded = load_router(folder, MODELS, {"max_length": 4})
    prompts = ["hello hello hello hello code code code code", "hello hello hello hello"]
    np.testing.assert_array_equal(loaded.predict_proba(prompts), router.predict_proba(prompts))
    assert not routes_as_its_first_4_tokens(loaded)


def test_a_frozen_router_trains_with_any_cut_off_which_it_does_not_read(bert: str) -> None:
    """Frozen mode reads no max_length, yet training a frozen router given one with
    another TrainingArguments.max_length was refused as full mode's is. It trains as
    with none (the same head) and takes the one given, as a load with options does."""
    given = EmbeddingClassifierRouter(MODELS, encoder=bert, mode="frozen", max_length=8)
    given.fit(DATA, (), args(max_length=4))
    assert given.max_length == 4 and given.options["max_length"] == 4
    given.fit(DATA, (), args(max_length=16))  # trained: again with another
    assert given.max_length == 16
    plain = EmbeddingClassifierRouter(MODELS, encoder=bert, mode="frozen")
    plain.fit(DATA, (), args())
    plain.fit(DATA, (), args())
    for key, value in plain.state().items():
        np.testing.assert_array_equal(given.state()[key], value, err_msg=key)
    assert not routes_as_its_first_4_tokens(given)
