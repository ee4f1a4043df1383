"""A user's mistake at a router's, encoder's or cascade's public entry point gives one
clear RouterLLMError, and saving a router never destroys another tool's files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routerllm.cascade import verify_answer
from routerllm.config import load_config
from routerllm.exceptions import PromptError, RouterLLMError, UnknownNameError
from routerllm.routers import create_router, load_router
from routerllm.routers.base import Candidate
from routerllm.routers.outcome import OutcomeRouter
from routerllm.routing_scope import RoutingScope

MODELS = [Candidate("small", 1.0), Candidate("mid", 8.0), Candidate("big", 70.0)]
PROMPTS = [f"prompt number {i} about {'code' if i % 2 else 'chat'}" for i in range(40)]
SCORES = (np.random.default_rng(0).random((40, 3)) > 0.5).astype(float)
DOCTEST = 'def f(x):\n    """>>> f(1)\n    2\n    """\n'


def fitted(name: str = "logreg", **options: object) -> OutcomeRouter:
    router = create_router(name, MODELS, encoder="hashing", **options)
    assert isinstance(router, OutcomeRouter)
    return router.fit(PROMPTS, SCORES, ["small", "mid", "big"])


# -- 1. saving never replaces another tool's files ---------------------------------
def test_save_refuses_a_folder_with_another_tools_config_and_touches_nothing(
    tmp_path: Path,
) -> None:
    theirs = {"model_type": "bert", "hidden_size": 8}
    (tmp_path / "config.json").write_text(json.dumps(theirs))
    (tmp_path / "weights.npz").write_bytes(b"their weights")
    with pytest.raises(RouterLLMError, match="not a saved RouterLLM router"):
        create_router("rules", MODELS).save(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == theirs
    assert (tmp_path / "weights.npz").read_bytes() == b"their weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "weights.npz"]
    # A lone weights.npz of someone else is kept too.
    (tmp_path / "config.json").unlink()
    with pytest.raises(RouterLLMError, match="weights.npz that is not a saved RouterLLM"):
        fitted("knn").save(tmp_path)
    assert (tmp_path / "weights.npz").read_bytes() == b"their weights"


def test_save_overwrites_a_previously_saved_router(tmp_path: Path) -> None:
    fitted("knn").save(tmp_path)
    create_router("rules", MODELS).save(tmp_path)  # a router without weights
    assert not (tmp_path / "weights.npz").exists()
    assert load_router(tmp_path, MODELS).name == "rules"
    fitted("logreg").save(tmp_path)
    assert load_router(tmp_path, MODELS).name == "logreg"


def test_a_saved_learning_router_without_its_weights_is_refused_at_load(tmp_path: Path) -> None:
    folder = fitted("knn").save(tmp_path / "knn")
    meta = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**meta, "weights_sha256": None}))
    with pytest.raises(RouterLLMError, match="router 'knn' learns, but no trained weights"):
        load_router(folder, MODELS)
    del meta["weights_sha256"]  # as saved before the digest was recorded
    (folder / "config.json").write_text(json.dumps(meta))
    (folder / "weights.npz").unlink()
    with pytest.raises(RouterLLMError, match="router 'knn' learns, but no trained weights"):
        load_router(folder, MODELS)
    (folder / "config.json").write_text(json.dumps({**meta, "models": "abc"}))
    with pytest.raises(RouterLLMError, match="'models' a list of names"):
        load_router(folder, MODELS)


def test_fit_refuses_a_model_named_twice_and_prompts_with_embeddings() -> None:
    router = create_router("logreg", MODELS, encoder="hashing")
    assert isinstance(router, OutcomeRouter)
    four = np.hstack([SCORES, SCORES[:, :1]])
    with pytest.raises(RouterLLMError, match="names a model more than once: small"):
        router.fit(PROMPTS, four, ["small", "mid", "big", "small"])
    with pytest.raises(RouterLLMError, match="the training prompts or their embeddings, not both"):
        router.fit(PROMPTS[:5], SCORES, embeddings=router.embed(PROMPTS))
    assert not router.is_trained


# -- 2. outcome routers check their embeddings and outcomes -------------------------
@pytest.mark.parametrize("name", ["knn", "logreg", "quality"])
def test_embeddings_of_another_width_are_refused_and_the_width_is_saved(
    name: str, tmp_path: Path
) -> None:
    X = np.random.default_rng(1).random((40, 7))
    options = {"folds": 2} if name == "quality" else {}
    router = create_router(name, MODELS, encoder="hashing", **options)
    assert isinstance(router, OutcomeRouter)
    router.fit(None, SCORES, embeddings=X)
    assert router.predict(X[:2]).shape == (2, 3)
    with pytest.raises(RouterLLMError, match="encoder 'hashing'.* width 256.* width 7"):
        router.route("hi")
    with pytest.raises(RouterLLMError, match="width 5, but .* trained on embeddings of width 7"):
        router.predict(np.zeros((2, 5)))
    with pytest.raises(RouterLLMError, match="width 5"):
        router.calibrate(np.zeros((40, 5)), SCORES, "quality=0.9")
    # saved, it could route no prompt: refused when loaded (the widths named)
    with pytest.raises(
        RouterLLMError,
        match="trained on 7-wide embeddings, but its encoder 'hashing' .* gives 256-wide",
    ):
        load_router(router.save(tmp_path / "other"), MODELS)
    router = create_router(name, MODELS, encoder="hashing:7", **options)
    assert isinstance(router, OutcomeRouter)
    router.fit(None, SCORES, embeddings=X)
    loaded = load_router(router.save(tmp_path / "own"), MODELS)
    assert isinstance(loaded, OutcomeRouter) and loaded.dim == 7
    np.testing.assert_array_equal(loaded.predict(X), router.predict(X))
    with pytest.raises(RouterLLMError, match="width 5"):
        loaded.predict(np.zeros((2, 5)))


@pytest.mark.parametrize("name", ["knn", "logreg", "moe", "feedback", "policy"])
def test_a_saved_router_whose_weights_do_not_fit_its_encoders_width_is_refused_when_loaded(
    name: str, tmp_path: Path
) -> None:
    """config.json's encoder changed by hand to one of another width: the router loaded,
    and every prompt routed failed ("the embeddings of encoder ... have width 64")."""
    folder = fitted(name).save(tmp_path / name)
    meta = json.loads((folder / "config.json").read_text())
    meta["options"]["encoder"] = "hashing:64"
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(RouterLLMError) as err:
        load_router(folder, MODELS)
    assert str(err.value) == (
        f"{folder / 'weights.npz'} was trained on 256-wide embeddings, but its encoder "
        f"'hashing:64' (options.encoder in {folder / 'config.json'}) gives 64-wide ones, so it "
        f"could route no prompt: name the encoder it was trained with there, or train it again"
    )
    # an hf: folder's width is read from its config.json, without loading the model
    model = tmp_path / "enc"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    meta["options"]["encoder"] = f"hf:{model}"
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(RouterLLMError, match=f"256-wide embeddings, but its encoder 'hf:{model}' .* gives 8-wide"):  # fmt: skip
        load_router(folder, MODELS)


@pytest.mark.parametrize("name", ["knn", "logreg", "quality"])
def test_non_finite_embeddings_are_refused(name: str) -> None:
    X = np.random.default_rng(2).random((40, 8))
    X[0, 0] = np.nan
    router = create_router(name, MODELS, encoder="hashing")
    assert isinstance(router, OutcomeRouter)
    with pytest.raises(RouterLLMError, match="NaN or infinite"):
        router.fit(None, SCORES, embeddings=X)
    with pytest.raises(RouterLLMError, match="NaN or infinite"):
        router.fit(None, SCORES, embeddings=np.full((40, 8), np.inf))
    trained = fitted(name)
    with pytest.raises(RouterLLMError, match="NaN or infinite"):
        trained.predict(np.full((1, 256), np.nan))


def test_bad_outcomes_predictions_and_inputs_give_clear_errors() -> None:
    router = fitted()
    cases = [
        (lambda: router.fit(PROMPTS, [["a"] * 3] * 40), "outcomes must be a 2-D array of numbers"),
        (lambda: router.fit(PROMPTS, [[1, 0, 1]] * 39 + [[1]]), "2-D array of numbers"),
        (lambda: router.fit(None, SCORES), "needs the training prompts or their embeddings"),
        (lambda: router.calibrate(None, SCORES, "quality=0.9"), "held-out prompts"),
        (lambda: router.calibrate(router.embed(PROMPTS)[:0], SCORES[:0], "quality=0.9"),
         "held-out outcome scores"),
        (lambda: router.calibrate(None, SCORES, "quality=0.9",
                                  predicted=np.full(SCORES.shape, np.nan)), r"probabilities of success, in \[0, 1\]"),
        (lambda: router.predict("abc"), "2-D array of numbers"),
        (lambda: router.route_batch(None), "list of strings"),  # type: ignore[arg-type]
    ]  # fmt: skip
    for call, message in cases:
        with pytest.raises(RouterLLMError, match=message):
            call()


def test_calibrate_and_predict_take_prompts_and_nested_lists() -> None:
    router = fitted()
    X = router.embed(PROMPTS)
    by_embeddings = router.calibrate(X, SCORES, "quality=0.9")
    by_prompts = fitted().calibrate(PROMPTS, SCORES, "quality=0.9")
    assert by_prompts["knob"] == by_embeddings["knob"]
    np.testing.assert_allclose(router.predict(X[:2].tolist()), router.predict(X[:2]))


# -- 3. routers' public entry points ----------------------------------------------
def test_route_names_unknown_allowed_models_and_wants_a_list() -> None:
    router = create_router("rules", MODELS)
    with pytest.raises(UnknownNameError, match="unknown model 'typo'; valid names: big, mid"):
        router.route("hi", allowed=["typo"])
    with pytest.raises(RouterLLMError, match="allowed must be a list of model names"):
        router.route("hi", allowed="small")  # type: ignore[arg-type]
    # Names of other models beside the router's own are fine (a system passes them all).
    assert router.route("hi", allowed=["small", "other"]).model == "small"
    with pytest.raises(RouterLLMError, match="none of the router's models is available"):
        router.route("hi", allowed=[])
    with pytest.raises(PromptError, match="list of strings, got NoneType"):
        router.route_batch(None)  # type: ignore[arg-type]
    assert [d.model for d in router.route_batch(p for p in ["a", "b"])] == ["small", "small"]


def test_create_and_load_router_check_their_arguments(tmp_path: Path) -> None:
    saved = create_router("rules", MODELS).save(tmp_path / "r")
    cases = [
        (lambda: create_router("knn", ["a", "b"]), "models must be a list of ModelConfig"),
        (lambda: create_router(["knn"], MODELS), "a router name is a string"),
        (
            lambda: create_router("knn", MODELS, mix=[1, 2, 3]),
            "option .mix. must be an object of numbers",
        ),
        (lambda: load_router(None, MODELS), "a saved router is a folder path"),
        (lambda: load_router(saved, None), "models must be a list of ModelConfig"),
    ]
    for call, message in cases:
        with pytest.raises(RouterLLMError, match=message):
            call()  # type: ignore[no-untyped-call]


# -- 5. cascade ---------------------------------------------------------------------
def test_cascade_helpers_reject_bad_arguments_clearly() -> None:
    config = load_config("local")
    smallest = config.models_by_size()[0].name
    with pytest.raises(UnknownNameError, match="unknown model 'nope'"):
        RoutingScope(config, lambda: [smallest]).larger("nope")
    with pytest.raises(PromptError, match="request must be text"):
        verify_answer(None, "x")  # type: ignore[arg-type]
    with pytest.raises(PromptError, match="answer to verify must be text"):
        verify_answer(DOCTEST, None)  # type: ignore[arg-type]
    for timeout in (float("nan"), float("inf"), -1, "5"):
        with pytest.raises(RouterLLMError, match="timeout_s must be a number of seconds > 0"):
            verify_answer(DOCTEST, "    return x + 1", timeout)  # type: ignore[arg-type]
    assert verify_answer(DOCTEST, "    return x + 1").verdict == "passed"


def test_a_saved_routers_config_of_the_wrong_shape_or_option_type_is_named(
    tmp_path: Path,
) -> None:
    """config.json that is not a JSON object, or an option of the wrong JSON type: one
    line saying so, not Python's indexing or comparison error."""
    from routerllm.data.labeled import CLASS_NAMES, LabeledPrompt
    from routerllm.routers.classifier import EmbeddingClassifierRouter
    from routerllm.training.trainer import TrainingArguments

    router = create_router("classifier", MODELS, encoder="hashing")
    assert isinstance(router, EmbeddingClassifierRouter)
    train = [LabeledPrompt(f"{p} {label}", label) for p in PROMPTS[:8] for label in range(len(CLASS_NAMES))]  # fmt: skip
    router.fit(train, (), TrainingArguments(epochs=1, warmup_steps=0, progress=False))
    folder = router.save(tmp_path / "clf")
    meta = json.loads((folder / "config.json").read_text())
    assert load_router(folder, MODELS).name == "classifier"  # the real thing loads

    (folder / "config.json").write_text(json.dumps([meta]))
    with pytest.raises(RouterLLMError) as err:
        load_router(folder, MODELS)
    assert str(err.value) == (
        f"{folder}/config.json must be a JSON object (a saved router's settings), not an "
        f"array: save or train the router again"
    )
    for option, value, wanted in (("num_classes", "4", 'an integer, got "4"'),
                                  ("dropout", [0.1], "a number, got [0.1]"),
                                  ("device", 3, "a string or null, got 3"),
                                  ("max_length", True, "an integer or null, got true")):  # fmt: skip
        broken = {**meta, "options": {**meta["options"], option: value}}
        (folder / "config.json").write_text(json.dumps(broken))
        with pytest.raises(RouterLLMError) as err:
            load_router(folder, MODELS)
        assert str(err.value) == (
            f"bad {folder}/config.json: bad options for router 'classifier': option "
            f"{option!r} must be {wanted}"
        )
