"""The feedback router (a contextual bandit, MISSION M3.5) and feedback on a routed
system's answers: the posterior against a ridge solution computed by hand, learning
that changes the choice, exploration, save/load, bad input; then ``RouterLLM.feedback``
on the tiny GGUF ladder (the request log's feedback table, the report, ``router.learn``
saving the router) and ``POST /routerllm/feedback`` on a real server."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm import feedback as feedback_module
from routerllm import files as files_module
from routerllm.carbon.log_schema import SCHEMA
from routerllm.carbon.report import logged_report
from routerllm.carbon.request_log import RequestLog
from routerllm.cli import main
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import (
    ConfigError,
    PromptError,
    RequestLogError,
    RouterLLMError,
    UnknownNameError,
    UnknownRequestError,
)
from routerllm.routers import create_router, load_router
from routerllm.routers.base import Candidate
from routerllm.routers.decision import choose
from routerllm.routers.feedback import FeedbackRouter
from routerllm.system import RouterLLM

from .conftest import rewrite_weights, tiny_config_dict, write_config
from .test_budgets import record
from .test_server import call, chat, running

SMALL_BIG = [Candidate("small", 1.0), Candidate("big", 10.0)]


def feedback_router(models: Any = SMALL_BIG, **options: Any) -> FeedbackRouter:
    router = create_router("feedback", models, options.pop("seed", 0), **options)
    assert isinstance(router, FeedbackRouter)
    return router


# -- the posterior ------------------------------------------------------------
def test_the_posterior_is_the_ridge_solution_and_learning_updates_one_model() -> None:
    # Two prompts embedded as (1, 0) and (0, 1), plus the constant feature: Z = [[1,0,1],
    # [0,1,1]]. Small solved the first only; with ridge 1, A = I + Z^T Z = [[2,0,1],
    # [0,2,1],[1,1,3]] and b = Z^T (y - 0.5) = (0.5, -0.5, 0), so theta = (1/4, -1/4, 0):
    # predictions 0.5 + 1/4 and 0.5 - 1/4.
    router = feedback_router(ridge=1.0, explore=0.0)
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    router.fit(None, np.array([[1.0, 1.0], [0.0, 1.0]]), ["small", "big"], embeddings=X)
    np.testing.assert_allclose(router.predict(X)[:, 0], [0.75, 0.25])
    big_before = router.predict(X)[:, 1]
    # Small solves the first prompt once more: A += z z^T with z = (1, 0, 1), b += z / 2,
    # so A = [[3,0,2],[0,2,1],[2,1,4]], b = (1, -1/2, 1/2), theta = (8, -7, 1) / 26.
    router.learn(None, ["small"], [1.0], embeddings=X[:1])
    np.testing.assert_allclose(router.predict(X)[:, 0], [0.5 + 9 / 26, 0.5 - 6 / 26])
    np.testing.assert_array_equal(router.predict(X)[:, 1], big_before)  # bandit feedback
    assert router.counts.tolist() == [3.0, 2.0]
    # the same as refitting the ridge regression on small's three outcomes
    Z = np.array([[1.0, 0, 1], [0, 1, 1], [1, 0, 1]])
    theta = np.linalg.solve(np.eye(3) + Z.T @ Z, Z.T @ (np.array([1.0, 0, 1]) - 0.5))
    np.testing.assert_allclose(router.predict(X)[:, 0], 0.5 + Z[:2] @ theta)


def test_a_thompson_draw_is_the_posterior_mean_plus_explore_times_half_its_spread() -> None:
    # Embeddings (1, 0) and (0, 1) plus the constant: Z = [[1,0,1],[0,1,1]]; ridge 1, so
    # every model's A = [[2,0,1],[0,2,1],[1,1,3]] and A^-1 = [[5,1,-2],[1,5,-2],[-2,-2,4]]
    # / 8: z^T A^-1 z = (5 - 4 + 4) / 8 = 5/8 for both prompts. Small solved the first
    # prompt only (posterior means 0.75, 0.25), big both (b = (0.5, 0.5, 1), theta = A^-1 b
    # = (1, 1, 2) / 8: means 0.5 + 3/8). A draw is each mean plus explore x 0.5 (the
    # outcome's sd) x sqrt(5/8) x a standard normal, a fresh one per prompt and model from
    # the router's seeded generator, clipped to [0, 1].
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    means = np.array([[0.75, 0.875], [0.25, 0.875]])
    for explore in (0.2, 4.0):  # inside [0, 1]; then clipped
        router = feedback_router(ridge=1.0, explore=explore, seed=11)
        router.fit(None, np.array([[1.0, 1.0], [0.0, 1.0]]), ["small", "big"], embeddings=X)
        predicted, drawn = router._decision_inputs(X)
        np.testing.assert_allclose(predicted, means)
        normal = np.random.default_rng(11).standard_normal((2, 2))
        expected = means + explore * 0.5 * np.sqrt(5 / 8) * normal
        np.testing.assert_allclose(drawn, np.clip(expected, 0.0, 1.0), rtol=1e-12)
        assert (expected.min() < 0 or expected.max() > 1) == (explore == 4.0)


def test_the_prior_precision_is_ridge_and_each_model_learns_its_own_outcomes() -> None:
    # As in the test above, but with A = ridge I + Z^T Z: by symmetry small's theta is
    # (t, -t, 0) with (ridge + 1) t = 0.5, so its predictions are 0.5 +- 0.5 / (ridge + 1):
    # 0.75 / 0.25 at ridge 1, 2/3 / 1/3 at ridge 2, 0.625 / 0.375 at the default 3.
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    for options, t in (({"ridge": 1.0}, 0.25), ({"ridge": 2.0}, 1 / 6), ({}, 0.125)):
        router = feedback_router(explore=0.0, **options)
        router.fit(None, np.array([[1.0, 1.0], [0.0, 1.0]]), ["small", "big"], embeddings=X)
        np.testing.assert_allclose(router.predict(X)[:, 0], [0.5 + t, 0.5 - t])
    # learning counts each outcome: two for big in one call
    router.learn(None, ["big", "big"], [1.0, 0.0], embeddings=X)
    assert router.counts.tolist() == [2.0, 4.0]
    # feedback on two models in one call: each learns its own outcomes only, as if
    # learned one by one (small: x1 solved, x2 failed, then x1 failed; ridge 3)
    router.learn(None, ["big", "small"], [1.0, 0.0], embeddings=X[::-1])
    assert router.counts.tolist() == [3.0, 5.0]
    Z = np.array([[1.0, 0, 1], [0, 1, 1], [1, 0, 1]])
    theta = np.linalg.solve(3 * np.eye(3) + Z.T @ Z, Z.T @ (np.array([1.0, 0, 0]) - 0.5))
    np.testing.assert_allclose(router.predict(X)[:, 0], 0.5 + Z[:2] @ theta)


def test_predictions_beyond_the_outcomes_are_clipped_to_0_and_1() -> None:
    # One prompt (1, 0), solved; a prior of almost no weight: theta ~ z / 2 / |z|^2 =
    # (1/4, 0, 1/4) for z = (1, 0, 1). At (3, 0) the linear model says 0.5 + 1 = 1.5, at
    # (-5, 0) 0.5 - 1 = -0.5: a chance of success is 1 and 0.
    router = feedback_router(ridge=1e-6, explore=0.0)
    router.fit(None, np.array([[1.0, 1.0]]), ["small", "big"], embeddings=np.array([[1.0, 0.0]]))
    np.testing.assert_array_equal(
        router.predict(np.array([[3.0, 0.0], [-5.0, 0.0]]))[:, 0], [1.0, 0.0]
    )


def topic_prompts(topic: str, n: int, start: int = 0) -> list[str]:
    return [f"please write the {topic} function number {i} for me" for i in range(start, start + n)]


def test_learning_from_feedback_moves_the_choice_to_the_model_that_succeeds() -> None:
    # Trained when small solved the parser prompts; now it fails them and big does not.
    train = topic_prompts("parser", 20) + topic_prompts("matrix", 20)
    scores = np.array([[1.0, 1.0]] * 20 + [[0.0, 1.0]] * 20)
    learning, frozen = (
        feedback_router(encoder="hashing", explore=0.0, knob=0.5).fit(train, scores, ["small", "big"])
        for _ in range(2)
    )  # fmt: skip
    held_out = topic_prompts("parser", 10, start=100)
    assert {d.model for d in learning.route_batch(held_out)} == {"small"}
    for prompt in topic_prompts("parser", 40, start=20):  # route, hear how it went, learn
        model = learning.route(prompt).model
        learning.learn([prompt], [model], [1.0 if model == "big" else 0.0])
    assert {d.model for d in learning.route_batch(held_out)} == {"big"}
    assert {d.model for d in frozen.route_batch(held_out)} == {"small"}  # without learning
    assert learning.counts[learning.model_names.index("small")] > 40
    assert {d.model for d in learning.route_batch(topic_prompts("matrix", 5, 100))} == {"big"}


def test_exploration_is_seeded_and_zero_is_the_posterior_mean() -> None:
    train = topic_prompts("parser", 10) + topic_prompts("matrix", 10)
    scores = np.array([[1.0, 1.0]] * 10 + [[0.0, 1.0]] * 10)
    prompts = topic_prompts("parser", 30, 50) + topic_prompts("matrix", 30, 50)

    def choices(**options: Any) -> list[str]:
        router = feedback_router(encoder="hashing", knob=0.5, **options)
        router.fit(train, scores, ["small", "big"])
        return [d.model for d in router.route_batch(prompts) + router.route_batch(prompts)]

    greedy = choices(explore=0.0)
    router = feedback_router(encoder="hashing", knob=0.5, explore=0.0).fit(train, scores, ["small", "big"])  # fmt: skip
    by_mean = choose(router.predict_prompts(prompts), router.costs, "lambda", 0.5)
    assert greedy == [router.model_names[i] for i in by_mean] * 2  # the same every time
    explored = choices(explore=3.0, seed=7)
    assert explored == choices(explore=3.0, seed=7)  # the same seed, the same draws
    assert explored != greedy and explored != choices(explore=3.0, seed=8)
    # explore scales the draw's spread: a small one keeps to the posterior mean, a larger
    # one, with the same seed, strays from it more often (removing the factor passed)
    assert choices(explore=0.01, seed=7) == greedy
    strays = [
        sum(a != b for a, b in zip(choices(explore=e, seed=7), greedy, strict=True))
        for e in (0.5, 3.0)
    ]
    assert 0 < strays[0] < strays[1], strays
    decision = router.route(prompts[0])
    assert "Thompson" not in decision.reason
    assert "Thompson sampling, explore 3" in feedback_router(encoder="hashing", explore=3.0).fit(
        train, scores, ["small", "big"]
    ).route(prompts[0]).reason  # fmt: skip


# -- persistence --------------------------------------------------------------
def trained(tmp_path: Path) -> tuple[FeedbackRouter, list[str], Path]:
    train = topic_prompts("parser", 12) + topic_prompts("matrix", 12)
    scores = np.array([[1.0, 1.0]] * 12 + [[0.0, 1.0]] * 12)
    router = feedback_router(encoder="hashing", explore=0.5, ridge=2.0, knob=0.3)
    router.fit(train, scores, ["small", "big"])
    router.learn(topic_prompts("parser", 5, 30), ["small"] * 5, [0.0, 0.2, 1.0, 0.0, 0.0])
    held_out = topic_prompts("parser", 6, 90) + topic_prompts("matrix", 6, 90)
    return router, held_out, router.save(tmp_path / "fb")


def test_save_and_load_reproduce_the_router_and_its_learning(tmp_path: Path) -> None:
    router, held_out, path = trained(tmp_path)
    loaded = load_router(path, SMALL_BIG)
    assert isinstance(loaded, FeedbackRouter)
    assert (loaded.explore, loaded.ridge, loaded.knob) == (0.5, 2.0, 0.3)
    np.testing.assert_array_equal(
        loaded.predict_prompts(held_out), router.predict_prompts(held_out)
    )
    np.testing.assert_array_equal(loaded.counts, router.counts)
    for r in (router, loaded):  # both go on learning alike
        r.learn(held_out[:2], ["big", "small"], [1.0, 0.0])
    np.testing.assert_array_equal(
        loaded.predict_prompts(held_out), router.predict_prompts(held_out)
    )
    # a config that orders the models otherwise (big now the smaller) gets each its own
    reordered = load_router(path, [Candidate("small", 1.0), Candidate("big", 0.5)])
    assert reordered.model_names == ["big", "small"]
    assert isinstance(reordered, FeedbackRouter)
    fresh = load_router(path, SMALL_BIG)
    assert isinstance(fresh, FeedbackRouter)
    np.testing.assert_array_equal(
        reordered.predict_prompts(held_out)[:, ::-1], fresh.predict_prompts(held_out)
    )
    np.testing.assert_array_equal(reordered.counts[::-1], fresh.counts)


def test_many_updates_on_one_prompt_keep_the_posterior_usable(tmp_path: Path) -> None:
    router = feedback_router(encoder="hashing", ridge=1e-6)
    router.fit(["a b", "c d"], np.array([[1.0, 1.0], [0.0, 1.0]]), ["small", "big"])
    big = router.embed(["a b"]) * 1e4  # the largest values learned from
    for _ in range(200):
        router.learn(None, ["small"] * 10, [1.0] * 10, embeddings=np.repeat(big, 10, axis=0))
    assert router.route("a b").model in ("small", "big")
    loaded = load_router(router.save(tmp_path / "fb"), SMALL_BIG)
    np.testing.assert_array_equal(loaded.predict_prompts(["a b"]), router.predict_prompts(["a b"]))


@pytest.mark.parametrize("before_digests", [False, True])
def test_a_save_interrupted_before_its_config_leaves_the_previous_router(
    tmp_path: Path, before_digests: bool
) -> None:
    router, held_out, path = trained(tmp_path)
    before = router.predict_prompts(held_out)
    if before_digests:  # saved before config.json recorded the weights' digest
        config = json.loads((path / "config.json").read_text())
        del config["weights_sha256"]
        (path / "config.json").write_text(json.dumps(config))
    # the next save dies after moving the weights aside, then after publishing new ones
    (path / "weights.npz").rename(path / "weights.previous.npz")
    np.testing.assert_array_equal(load_router(path, SMALL_BIG).predict_prompts(held_out), before)  # fmt: skip
    router.learn(held_out, ["small"] * len(held_out), [1.0] * len(held_out))
    router.save(tmp_path / "later")
    (tmp_path / "later" / "weights.npz").replace(path / "weights.npz")  # config.json: still the old
    np.testing.assert_array_equal(load_router(path, SMALL_BIG).predict_prompts(held_out), before)  # fmt: skip
    router.save(path)  # a whole save: the new weights, and nothing left aside
    assert not (path / "weights.previous.npz").exists()
    np.testing.assert_array_equal(
        load_router(path, SMALL_BIG).predict_prompts(held_out), router.predict_prompts(held_out)
    )


def test_ctrl_c_between_a_first_saves_two_renames_is_raised_once_both_are_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first save into a folder has no router there to fall back on: Ctrl-C after its
    weights were renamed in place, before its config.json, left weights without a config,
    which nothing loads and ``train --resume`` refused (until 2026-12-04)."""
    import os
    import signal

    router, held_out, _ = trained(tmp_path)
    publish = files_module.publish

    def interrupted(tmp: Path, target: Path) -> None:
        if target.name == "config.json":
            os.kill(os.getpid(), signal.SIGINT)
        publish(tmp, target)

    monkeypatch.setattr(files_module, "publish", interrupted)
    with pytest.raises(files_module.SavedThenInterrupted):
        router.save(tmp_path / "first")
    np.testing.assert_array_equal(
        load_router(tmp_path / "first", SMALL_BIG).predict_prompts(held_out),
        router.predict_prompts(held_out),
    )


@pytest.mark.parametrize("second_dies_at", ["weights.npz", "config.json"])
def test_two_saves_cut_short_in_a_row_leave_the_router_the_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second_dies_at: str
) -> None:
    router, held_out, path = trained(tmp_path)
    before = router.predict_prompts(held_out)
    publish = files_module.publish
    for dies_at in ("config.json", second_dies_at):  # the first leaves both weights there

        def dying(tmp: Path, target: Path, dies_at: str = dies_at) -> None:
            if target.name == dies_at:
                raise OSError("No space left on device")
            publish(tmp, target)

        monkeypatch.setattr(files_module, "publish", dying)
        router.learn(held_out[:1], ["small"], [1.0])
        with pytest.raises(RouterLLMError, match="No space left"):
            router.save(path)
        np.testing.assert_array_equal(load_router(path, SMALL_BIG).predict_prompts(held_out), before)  # fmt: skip
    monkeypatch.setattr(files_module, "publish", publish)
    router.save(path)
    assert not (path / "weights.previous.npz").exists()
    np.testing.assert_array_equal(
        load_router(path, SMALL_BIG).predict_prompts(held_out), router.predict_prompts(held_out)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a | {"precision": -a["precision"]}, "not positive definite"),
        (
            lambda a: (
                a
                | {
                    "precision": a["precision"]
                    + np.triu(np.ones(a["precision"].shape[:2]), 1)[..., None]
                }
            ),
            "not symmetric",
        ),  # fmt: skip
        (lambda a: a | {"moment": a["moment"][:-1]}, r"'moment' has shape"),
        (lambda a: a | {"counts": -a["counts"]}, "negative counts"),
        (lambda a: {k: v for k, v in a.items() if k != "moment"}, "no array 'moment'"),
        (lambda a: a | {"moment": a["moment"] * np.nan}, "not finite"),
    ],
)
def test_a_broken_checkpoint_is_a_clear_error(tmp_path: Path, change: Any, message: str) -> None:
    _, _, path = trained(tmp_path)
    rewrite_weights(path, change)
    with pytest.raises(RouterLLMError, match=message):
        load_router(path, SMALL_BIG)


def test_bad_options_and_feedback_are_clear_errors() -> None:
    for options, message in [
        ({"ridge": 0}, "ridge must be a number >= 1e-06"),
        ({"ridge": 1e-20}, "ridge must be a number >= 1e-06"),
        ({"explore": -1.0}, "explore must be a number >= 0"),
        ({"explore": True}, "option 'explore' must be a number"),
        ({"ridge": "1"}, "option 'ridge' must be a number"),
    ]:
        with pytest.raises(RouterLLMError, match=message):
            feedback_router(**options)
    router = feedback_router(encoder="hashing")
    with pytest.raises(RouterLLMError, match="is not trained"):
        router.learn(["a"], ["small"], [1.0])
    router.fit(["a", "b"], np.array([[1.0, 1.0], [0.0, 1.0]]), ["small", "big"])
    before = router.state()
    for args, message in [
        ((["a"], ["small"], [1.5]), r"a score must be a number in \[0, 1\]"),
        ((["a"], ["small"], [float("nan")]), r"a score must be a number in \[0, 1\]"),
        ((["a"], ["small"], [True]), r"a score must be a number in \[0, 1\]"),
        ((["a"], ["small"], ["1"]), r"a score must be a number in \[0, 1\]"),
        ((["a"], ["small"], 1.0), "scores must be a list of numbers"),
        ((["a"], ["huge"], [1.0]), "unknown model 'huge'; valid names: big, small"),
        ((["a"], "small", [1.0]), "models must be a list of model names"),
        (
            (["a", "b"], ["small"], [1.0]),
            "one model and one score per prompt, got 2 prompts, 1 models",
        ),  # fmt: skip
        (("a", ["small"], [1.0]), "prompts must be a list"),
    ]:
        with pytest.raises(RouterLLMError, match=message):
            router.learn(*args)
    with pytest.raises(RouterLLMError, match="the prompts or their embeddings"):
        router.learn(["a"], ["small"], [1.0], embeddings=np.zeros((1, router.dim or 1)))
    with pytest.raises(RouterLLMError, match="have width 3"):
        router.learn(None, ["small"], [1.0], embeddings=np.zeros((1, 3)))
    for embeddings in (5, np.float64(3.0), (x for x in [1.0]), np.ones(3)):
        with pytest.raises(RouterLLMError, match="embeddings must be a 2-d array"):
            router.learn(None, ["small"], [1.0], embeddings=embeddings)  # type: ignore[arg-type]
    with pytest.raises(RouterLLMError, match="embedding values up to 10000 are supported"):
        router.learn(None, ["small"], [1.0], embeddings=router.embed(["a"]) * 1e9)
    with pytest.raises(RouterLLMError, match=r"a score must be a number in \[0, 1\]"):
        router.learn(["a"], ["small"], [10**400])
    assert isinstance(UnknownNameError("model", "x", []), RouterLLMError)
    after = router.state()  # nothing was learned from the refused calls
    assert all(np.array_equal(before[k], after[k]) for k in before)
    router.learn([], [], [])  # nothing to learn is not a mistake


# -- a routed system ----------------------------------------------------------
def saved_ladder_router(path: Path, config: AppConfig, explore: float = 0.0) -> Path:
    """A feedback router for the tiny ladder, trained on a few outcomes, saved to ``path``."""
    router = create_router("feedback", config.models, 0, encoder="hashing", explore=explore)
    prompts = topic_prompts("parser", 6) + topic_prompts("hello", 6)
    scores = np.array([[0.0, 0.0, 1.0]] * 6 + [[1.0, 1.0, 1.0]] * 6)
    router.fit(prompts, scores, ["tiny-light", "tiny-medium", "tiny-heavy"])
    return router.save(path)


def ladder(tmp_path: Path, learn: bool = True, **router: Any) -> AppConfig:
    base = load_config(write_config(tmp_path, tiny_config_dict(tmp_path), "base.yaml"))
    path = saved_ladder_router(tmp_path / "router", base)
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    data["router"] = {"path": str(path), "learn": learn, **router}
    return load_config(write_config(tmp_path, data))


def test_feedback_is_stored_learned_and_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    config = ladder(tmp_path)
    path = Path(config.router.path or "")
    with RouterLLM(config) as system:
        router = system.router
        assert isinstance(router, FeedbackRouter)
        answer = system.generate(topic_prompts("parser", 1, 50)[0])
        j = router.model_names.index(answer.model)
        before = router.counts.copy()
        system.feedback(answer.request_id, 0.25)
        assert router.counts[j] == before[j] + 1 and router.counts.sum() == before.sum() + 1
        ((rid, score, stamp),) = system.log.feedback()
        assert (rid, score) == (answer.request_id, 0.25) and stamp.endswith("+00:00")
        with pytest.raises(PromptError, match="has been rated already"):
            system.feedback(answer.request_id, 1.0)
        for bad in (1.5, -0.1, float("nan"), "1", True, None):
            with pytest.raises(PromptError, match="score must be a number from 0"):
                system.feedback(answer.request_id, bad)  # type: ignore[arg-type]
        with pytest.raises(UnknownRequestError, match="no routed request 'nope' to rate"):
            system.feedback("nope", 1.0)
        with pytest.raises(PromptError, match="request_id must be"):
            system.feedback(7, 1.0)  # type: ignore[arg-type]
        chosen = system.generate("hi", model="tiny-light")  # not routed: nothing to rate
        with pytest.raises(UnknownRequestError, match="not those whose model the caller chose"):
            system.feedback(chosen.request_id, 1.0)
        by_rules = system.generate("hi", router="rules")
        with pytest.raises(PromptError, match="routed by 'rules', which does not learn"):
            system.feedback(by_rules.request_id, 1.0)
        assert len(system.log.feedback()) == 1  # no refused score was stored
        # saved every SAVE_EVERY learned scores, without waiting for close
        monkeypatch.setattr(feedback_module, "SAVE_EVERY", 1)
        second = system.generate(topic_prompts("hello", 1, 50)[0])
        system.feedback(second.request_id, 1.0)
        saved = load_router(path, config.models)
        np.testing.assert_array_equal(saved.counts, router.counts)  # type: ignore[attr-defined]
        monkeypatch.setattr(feedback_module, "SAVE_EVERY", 100)
        third = system.generate(topic_prompts("parser", 1, 60)[0])
        system.feedback(third.request_id, 0.0)
        assert load_router(path, config.models).counts.sum() == router.counts.sum() - 1  # type: ignore[attr-defined]
        learned = router.predict_prompts(topic_prompts("parser", 3, 70))
    reloaded = load_router(path, config.models)  # closing saved the rest
    np.testing.assert_array_equal(reloaded.predict_prompts(topic_prompts("parser", 3, 70)), learned)  # type: ignore[attr-defined]
    report = logged_report(config)
    assert sum(f["count"] for f in report.feedback.values()) == 3
    assert report.feedback[answer.model]["count"] >= 1
    from routerllm.carbon.report_text import report_lines

    assert "feedback (scores 0-1)" in "\n".join(report_lines(report))
    with pytest.raises(RouterLLMError, match="this RouterLLM is closed"):
        system.feedback(third.request_id, 1.0)


def test_the_configs_router_options_are_not_saved_with_what_it_learns(tmp_path: Path) -> None:
    config = ladder(tmp_path, options={"explore": 0.5, "knob": 0.2})
    with RouterLLM(config) as system:
        assert system.router.explore == 0.5  # type: ignore[attr-defined]
        learned = system.router.counts.sum() + 1  # type: ignore[attr-defined]
        answer = system.generate(topic_prompts("parser", 1, 50)[0])
        system.feedback(answer.request_id, 1.0)
    # saved at close with what it learned, and the options it was trained with
    saved = load_router(config.router.path or "", config.models)
    assert (saved.explore, saved.knob, saved.counts.sum()) == (0.0, 0.0, learned)  # type: ignore[attr-defined]


def test_without_learn_feedback_is_stored_and_the_router_left_alone(tmp_path: Path) -> None:
    config = ladder(tmp_path, learn=False)
    path = Path(config.router.path or "")
    saved = (path / "weights.npz").read_bytes()
    with RouterLLM(config) as system:
        before = system.router.state()
        answer = system.generate("hi")
        system.feedback(answer.request_id, 1.0)
        after = system.router.state()
        assert all(np.array_equal(before[k], after[k]) for k in before)
        assert [r[:2] for r in system.log.feedback()] == [(answer.request_id, 1.0)]
        # not learned: nothing kept for a later process to learn either
        assert system.log.pending(answer.request_id) is None
        with sqlite3.connect(config.log.path) as db:
            assert db.execute("SELECT COUNT(*) FROM pending_feedback").fetchone() == (0,)
    assert (path / "weights.npz").read_bytes() == saved


def test_learn_needs_a_saved_router_that_learns(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path)
    data["router"] = {"name": "feedback", "learn": True}
    with pytest.raises(ConfigError, match="learn: true saves what the router learns"):
        load_config(write_config(tmp_path, data))
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))
    logreg = create_router("logreg", config.models, encoder="hashing")
    logreg.fit(["a", "b"], np.array([[1.0, 0, 1], [0, 0, 1]]), [m.name for m in config.models])  # type: ignore[attr-defined]
    data["router"] = {"path": str(logreg.save(tmp_path / "lr")), "learn": True}
    with pytest.raises(ConfigError, match="router 'logreg' .* does not learn from feedback"):
        RouterLLM(load_config(write_config(tmp_path, data)))


def test_an_answer_logged_but_not_written_to_the_emissions_csv_can_be_rated(tmp_path: Path) -> None:  # fmt: skip
    config = ladder(tmp_path)
    config.carbon.output_dir = str(tmp_path / "carbon")
    with RouterLLM(config) as system:
        system.generate("warm up")
        csv = tmp_path / "carbon" / "emissions.csv"
        csv.unlink()
        csv.mkdir()  # the CSV cannot be appended to any more; the SQLite log can
        with pytest.raises(RequestLogError, match="could not be added to") as e:
            system.generate(topic_prompts("parser", 1, 50)[0])
        answer = e.value.result
        assert e.value.logged and answer is not None  # answered, its request_id given
        before = system.router.counts.sum()  # type: ignore[attr-defined]
        system.feedback(answer.request_id, 1.0)  # was: "no routed request ... to rate"
        assert [r[:2] for r in system.log.feedback()] == [(answer.request_id, 1.0)]
        assert system.router.counts.sum() == before + 1  # type: ignore[attr-defined]
        csv.rmdir()


def test_the_memory_of_routed_requests_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feedback_module, "MAX_REMEMBERED", 3)
    router = feedback_router(encoder="hashing")
    router.fit(["a b", "c d"], np.array([[1.0, 1.0], [0.0, 1.0]]), ["small", "big"])
    loop = feedback_module.FeedbackLoop(router, learn=True)
    decisions, embedded = loop.route(router, ["a b", "e f"], None)
    assert [d.model for d in decisions] == [d.model for d in router.route_batch(["a b", "e f"])]
    assert embedded is not None and embedded.dtype == np.float32
    np.testing.assert_array_equal(embedded, router.embed(["a b", "e f"]))  # what it routed on
    for i in range(5):
        loop.remember(f"r{i}", "small", router, embedded[i % 2])
    assert list(loop._routed) == ["r2", "r3", "r4"]  # the 3 newest
    kept = loop._routed["r3"].embedding  # the embedding, not the prompt
    assert kept is not None and kept.tolist() == embedded[1].tolist()
    frozen = feedback_module.FeedbackLoop(router, learn=False)  # nothing to teach: no embedding
    assert frozen.route(router, ["a b"], None)[1] is None
    frozen.remember("r", "small", router, None)
    assert frozen._routed["r"].embedding is None and frozen._routed["r"].learns


def test_an_older_log_without_feedback_is_read_and_then_given_the_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    older = SCHEMA[: SCHEMA.index("CREATE TABLE IF NOT EXISTS feedback")]
    with sqlite3.connect(path) as db:  # the schema as it was before feedback
        db.executescript(older + "CREATE INDEX IF NOT EXISTS requests_time ON requests(timestamp);")
    with RequestLog(path, read_only=True) as old:
        assert old.feedback() == [] and old.feedback_by_model() == {} and old.count() == 0
        assert old.pending("some-request") is None and not old.scored("some-request")
    with RequestLog(path) as log:  # opened for writing: the table is added
        logged = record("tiny-light", datetime.now(timezone.utc))
        log.append(logged)
        log.add_feedback(logged.id, 0.5)
        assert [r[:2] for r in log.feedback()] == [(logged.id, 0.5)]


# -- the server ---------------------------------------------------------------
FEEDBACK = "/routerllm/feedback"


def test_the_server_takes_feedback(tmp_path: Path) -> None:
    config = ladder(tmp_path)
    with RouterLLM(config) as system, running(system) as base:
        answer = chat(base, "Implement a parser in Python")
        request_id = answer["routerllm"]["request_id"]
        assert request_id and answer["routerllm"]["router"] == "feedback"
        status, text = call(base, FEEDBACK, {"request_id": request_id, "score": 1})
        assert (status, json.loads(text)) == (200, {"ok": True})
        assert [r[:2] for r in system.log.feedback()] == [(request_id, 1.0)]
        # the answer's own id names it too (as OpenAI clients keep it)
        other = chat(base, "Implement a tokenizer in Python")
        assert other["id"] == f"chatcmpl-{other['routerllm']['request_id']}"
        status, _ = call(base, FEEDBACK, {"request_id": other["id"], "score": 0})
        assert status == 200 and system.log.feedback()[-1][:2] == (
            other["routerllm"]["request_id"],
            0.0,
        )
        for body, code, message in [
            ({"request_id": request_id, "score": 0.5}, 400, "rated already"),
            ({"request_id": "unknown", "score": 0.5}, 404, "no routed request 'unknown'"),
            ({"request_id": request_id, "score": 2}, 400, "score must be a number from 0"),
            ({"request_id": request_id, "score": "1"}, 400, "score must be a number from 0"),
            ({"request_id": request_id}, 400, "score must be a number from 0"),
            ({"score": 1}, 400, "request_id must be"),
            ({"request_id": request_id, "score": 1, "extra": 1}, 400, "unknown field"),
            ([1], 400, "must be a JSON object"),
        ]:
            status, text = call(base, FEEDBACK, body)
            error = json.loads(text)["error"]
            assert (status, message in error["message"]) == (code, True), text
            assert error["type"] == "invalid_request_error"
        status, text = call(base, FEEDBACK, raw=b"{not json")
        assert status == 400 and "not valid JSON" in json.loads(text)["error"]["message"]
        assert json.loads(call(base, FEEDBACK, {"request_id": "x", "score": 1})[1])["error"]["code"] == "request_not_found"  # fmt: skip
        assert len(system.log.feedback()) == 2

        def broken(request_id: str, score: float) -> None:
            raise ValueError("a bug")

        system.feedback = broken  # type: ignore[method-assign]
        status, text = call(base, FEEDBACK, {"request_id": request_id, "score": 1})
        error = json.loads(text)["error"]
        assert status == 500 and error["type"] == "server_error"
        assert "internal error (ValueError: a bug)" in error["message"]


def test_an_answer_rated_while_it_is_streamed_is_refused_with_when_to_rate_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its request_id comes with the stream's first piece: rated before the stream's end
    it is unknown (not whole yet), and the refusal says to rate it once it has ended (it
    said "give the request_id of a recent answer", of the id the server had just sent)."""
    import http.client
    import threading

    import llama_cpp

    config = ladder(tmp_path)
    sample, sampled, rated = llama_cpp.Llama.sample, [0], threading.Event()

    def paused(self: Any, *args: Any, **kwargs: Any) -> Any:
        sampled[0] += 1
        if sampled[0] == 3:  # mid-answer, until the test has rated it
            rated.wait(60)
        return sample(self, *args, **kwargs)

    monkeypatch.setattr(llama_cpp.Llama, "sample", paused)
    with RouterLLM(config) as system, running(system) as base:
        host, port = base.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        body = {"messages": [{"role": "user", "content": "Implement a parser"}], "max_tokens": 8, "stream": True}  # fmt: skip
        connection.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})  # fmt: skip
        answer = connection.getresponse()
        line = answer.readline()
        while not line.startswith(b"data: "):
            line = answer.readline()
        request_id = json.loads(line[6:])["id"]
        try:
            status, text = call(base, FEEDBACK, {"request_id": request_id, "score": 1})
        finally:
            rated.set()
        answer.read()
        connection.close()
        message = json.loads(text)["error"]["message"]
        assert status == 404 and "an answer still being generated (streamed) can be rated once it has ended" in message, text  # fmt: skip
        assert system.log.feedback() == []
        assert call(base, FEEDBACK, {"request_id": request_id, "score": 1}) == (200, '{"ok":true}')


def test_feedback_needs_the_api_key(tmp_path: Path) -> None:
    config = ladder(tmp_path, learn=False)
    with RouterLLM(config) as system, running(system, api_key="s3cret") as base:
        key = {"Authorization": "Bearer s3cret"}
        status, text = call(base, "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, headers=key)  # fmt: skip
        request_id = json.loads(text)["routerllm"]["request_id"]
        body = {"request_id": request_id, "score": 0.0}
        assert call(base, FEEDBACK, body)[0] == 401
        assert call(base, FEEDBACK, body, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert system.log.feedback() == []
        assert call(base, FEEDBACK, body, headers=key) == (200, '{"ok":true}')


def test_routerllm_train_trains_a_feedback_router(tmp_path: Path) -> None:
    from .test_learn_cli import ok_json
    from .test_outcome_routing import MODELS, SIZES, make_rows, write_json

    train = write_json(tmp_path / "train.json", *make_rows(120, 0))
    out = tmp_path / "fb"
    trained = ok_json(
        "train", "--router", "feedback", "--data", str(train), "--out", str(out),
        "--encoder", "hashing", "--calibrate", "max_cost=0.5",
    )  # fmt: skip
    assert trained["router"] == "feedback" and trained["train_size"] == 96
    assert trained["calibration"]["cost"] <= 0.5 * 70 + 1e-9
    router = load_router(out, [Candidate(m, SIZES[m]) for m in MODELS])
    assert isinstance(router, FeedbackRouter) and router.counts.tolist() == [96.0] * 3
    assert router.route("hello, define the word graphs simply please").model in MODELS


def test_train_refuses_the_folder_a_loaded_router_merges_with_as_an_option(tmp_path: Path) -> None:  # fmt: skip
    """``loaded_from`` is set by ``load_router`` (the folder whose saves the router merges
    with), not an option: ``train --option loaded_from=...`` was taken and did nothing."""
    from .conftest import cli_in_process
    from .test_cli import assert_one_line_error
    from .test_outcome_routing import make_rows, write_json

    data = write_json(tmp_path / "train.json", *make_rows(40, 0))
    out = tmp_path / "fb"
    proc = cli_in_process(
        "train", "--router", "feedback", "--data", str(data), "--out", str(out),
        "--encoder", "hashing", "--option", f"loaded_from={tmp_path / 'other'}",
    )  # fmt: skip
    assert_one_line_error(proc, "bad options for router 'feedback': unknown option 'loaded_from'; its options are ")  # fmt: skip
    assert "explore" in proc.stderr and not out.exists()


def test_train_does_not_replace_a_router_learning_from_feedback_unasked(tmp_path: Path) -> None:
    """``routerllm train --out`` a learning system's router.path replaced the router, and
    all it had learned from feedback, without a word."""
    from .test_learn_cli_inputs import user_error
    from .test_outcome_routing import make_rows, write_json

    config = ladder(tmp_path)
    path = Path(config.router.path or "")
    with RouterLLM(config) as system:
        answer = system.generate(topic_prompts("parser", 1, 50)[0])
        system.feedback(answer.request_id, 1.0)
    learned = {p.name: p.read_bytes() for p in path.iterdir()}
    assert load_router(path, config.models).counts.sum() == 12 * 3 + 1
    data = write_json(tmp_path / "outcomes.json", *make_rows(40, 0))
    argv = ["train", "--router", "feedback", "--data", str(data), "--out", str(path),
            "--encoder", "hashing"]  # fmt: skip
    line = user_error(*argv)
    assert "a system learns into from feedback" in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in path.iterdir()} == learned
    assert main([*argv, "--overwrite"]) == 0  # asked for: replaced
    assert json.loads((path / "config.json").read_text())["models"] == ["small", "mid", "big"]


def test_a_relative_router_path_is_saved_where_it_was_loaded_from_after_a_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a relative router.path, what the router learned after the program changed its
    working folder was saved into a new folder under that one, and router.path's router
    never had it."""
    base = load_config(write_config(tmp_path, tiny_config_dict(tmp_path), "base.yaml"))
    saved_ladder_router(tmp_path / "router", base)
    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    data["router"] = {"path": "router", "learn": True}
    monkeypatch.chdir(tmp_path)
    config = load_config(write_config(tmp_path, data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with RouterLLM(config) as system:
        answer = system.generate(topic_prompts("parser", 1, 50)[0])
        monkeypatch.chdir(elsewhere)
        system.feedback(answer.request_id, 1.0)
    assert load_router(tmp_path / "router", base.models).counts.sum() == 12 * 3 + 1
    assert list(elsewhere.iterdir()) == []


def test_a_folder_that_cannot_be_locked_is_a_logged_error_at_close_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On a file system without locks (an NFS mount with nolock: flock fails with ENOLCK;
    faked, as none is mounted here), closing a learning system raised OSError out of
    close(), and its router was never tried beside router.path."""
    import errno
    import fcntl

    class NoLocks:
        LOCK_EX, LOCK_SH, LOCK_NB, LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_SH, fcntl.LOCK_NB, fcntl.LOCK_UN  # fmt: skip

        @staticmethod
        def flock(fd: object, operation: int) -> None:
            raise OSError(errno.ENOLCK, "No locks available")

    config = ladder(tmp_path)
    monkeypatch.setattr(files_module, "fcntl", NoLocks)
    with RouterLLM(config) as system:
        answer = system.generate(topic_prompts("parser", 1, 50)[0])
        system.feedback(answer.request_id, 1.0)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "cannot lock" in errors[0] and "No locks available" in errors[0]
    assert "beside" in errors[1]  # tried there too (on the same file system: refused too)


def test_a_failed_save_is_tried_again_at_the_next_save_point_and_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ladder(tmp_path)
    path = Path(config.router.path or "")
    monkeypatch.setattr(feedback_module, "SAVE_EVERY", 2)
    attempts: list[Path] = []

    with RouterLLM(config) as system:
        router = system.router
        assert isinstance(router, FeedbackRouter)
        save = router.save

        def failing_save(directory: Path) -> Path:  # router.path refuses; other folders do not
            attempts.append(Path(directory))
            if Path(directory) == path:
                raise RouterLLMError("disk full")
            return save(directory)

        monkeypatch.setattr(router, "save", failing_save)
        for i in range(5):
            answer = system.generate(topic_prompts("parser", 1, 200 + i)[0])
            system.feedback(answer.request_id, 1.0)
        assert attempts == [path, path]  # after the 2nd and the 4th score, not after each one
        assert len(system.log.feedback()) == 5  # every score stored all the same
        learned = router.counts.sum()
    # at close, as something learned was never saved: router.path, then beside it
    assert attempts[:3] == [path] * 3 and len(attempts) == 4
    aside = attempts[3]
    assert aside.parent == path.parent and aside.name.startswith(f"{path.name}.unsaved-")
    kept = load_router(aside, router.models)
    assert isinstance(kept, FeedbackRouter) and kept.counts.sum() == learned
    assert load_router(path, router.models).counts.sum() < learned  # type: ignore[attr-defined]


def test_two_routers_saved_beside_their_path_in_the_same_second_are_both_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime, timezone

    class Frozen(datetime):  # both close in the same second (and the same process)
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls(2026, 12, 2, 12, 0, 0, tzinfo=timezone.utc)

    monkeypatch.setattr(feedback_module, "datetime", Frozen)
    config = ladder(tmp_path)
    path = Path(config.router.path or "")
    asides: list[Path] = []
    learned = []
    for i in range(2):
        system = RouterLLM(config)
        router = system.router
        assert isinstance(router, FeedbackRouter)

        def failing_save(directory: Path, save: Any = router.save) -> Path:
            if Path(directory) == path:  # router.path refuses
                raise RouterLLMError("disk full")
            asides.append(Path(directory))
            return save(directory)

        monkeypatch.setattr(router, "save", failing_save)
        answer = system.generate(topic_prompts("parser", 1, 300 + i)[0])
        system.feedback(answer.request_id, float(i))
        learned.append(router.counts.sum())
        system.close()
    assert len(set(asides)) == 2 and all(a.parent == path.parent for a in asides)
    kept = [load_router(a, router.models).counts.sum() for a in asides]  # type: ignore[attr-defined]
    assert kept == learned


def test_a_router_path_of_dot_that_refuses_the_save_is_saved_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ladder(tmp_path)
    folder = Path(config.router.path or "")
    monkeypatch.chdir(folder)  # router.path: . from inside the folder
    router = load_router(".", config.models)
    loop = feedback_module.FeedbackLoop(router, learn=True, save_to=".")
    _, embedded = loop.route(router, ["please write a parser"], None)
    assert embedded is not None
    loop.remember("r1", router.model_names[0], router, embedded[0], None)
    with RequestLog(tmp_path / "log.sqlite") as log:
        log.append(dataclasses.replace(record(router.model_names[0], datetime.now(timezone.utc)), id="r1"))  # fmt: skip
        loop.feedback("r1", 1.0, log)
    learned = router.counts.sum()  # type: ignore[attr-defined]
    # meanwhile another router, which it cannot merge with, is trained into the folder
    other = create_router("feedback", config.models, 0, encoder="hashing:64")
    other.fit(["a", "b"], np.ones((2, 3)), [m.name for m in config.models])  # type: ignore[attr-defined]
    other.save(folder)
    loop.close()  # refused there: saved beside it, not a traceback
    (aside,) = folder.parent.glob("router.unsaved-*")
    assert load_router(aside, config.models).counts.sum() == learned  # type: ignore[attr-defined]
    assert load_router(folder, config.models).dim == 64


def test_feedback_and_requests_logged_from_two_threads_do_not_disturb_each_other(
    tmp_path: Path,
) -> None:
    import threading
    from datetime import datetime, timezone

    from .test_budgets import record

    log = RequestLog(tmp_path / "log.sqlite")
    first = [record("m", datetime.now(timezone.utc)) for _ in range(300)]
    for r in first:
        log.append(r)
    errors: list[BaseException] = []

    def run(work: Any) -> None:
        try:
            work()
        except BaseException as e:  # noqa: BLE001 - any failure fails the test
            errors.append(e)

    appending = threading.Thread(target=run, args=(lambda: [log.append(record("m", datetime.now(timezone.utc))) for _ in range(300)],))  # fmt: skip
    rating = threading.Thread(target=run, args=(lambda: [log.add_feedback(r.id, 0.5) for r in first],))  # fmt: skip
    for t in (appending, rating):
        t.start()
    for t in (appending, rating):
        t.join()
    assert errors == []
    assert log.count() == 600 and len(log.feedback()) == 300
    assert all(len(r.components) == 2 for r in log.records())  # every request whole
    log.close()
