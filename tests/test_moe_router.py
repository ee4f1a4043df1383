"""The mixture-of-experts router (MISSION M3.4): sparse top-k gates, the load-balancing
loss and its gradient against hand-computed values and finite differences, learning
which model solves which prompts, the multi-objective adjustment, save/load, option
errors and the CLI; on small data written by the tests (hashing encoder, or random
embeddings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routerllm.exceptions import RouterLLMError
from routerllm.routers import create_router, load_router
from routerllm.routers.base import Candidate
from routerllm.routers.moe import MoERouter, sparse_gates
from routerllm.training.gating import GatingArguments, init_layers, loss_and_grads, train_gating

from .conftest import cli_in_process
from .test_cli import assert_one_line_error
from .test_learn_cli import ok_json
from .test_outcome_routing import MODELS, SIZES, make_rows, write_json

CANDIDATES = [Candidate(m, SIZES[m]) for m in MODELS]


def clusters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings in three clusters; in cluster j only model j solves the prompt."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8) * 3.0
    kind = np.arange(n) % 3
    X = centres[kind] + rng.normal(0, 0.3, (n, 8))
    return X.astype(np.float32), np.eye(3)[kind]


def trained(**options: object) -> MoERouter:
    # hashing:8, as wide as the clusters' embeddings: a saved one loads
    router = create_router("moe", CANDIDATES, 0, encoder="hashing:8", **options)
    assert isinstance(router, MoERouter)
    X, Y = clusters(150, 0)
    return router.fit(None, Y, MODELS, embeddings=X)  # type: ignore[return-value]


# -- the gates and the loss ---------------------------------------------------------
def test_sparse_gates_keep_the_top_k_softmax_and_zero_the_rest() -> None:
    z = np.array([[1.0, 3.0, 2.0, 0.0]])
    gates = sparse_gates(z, 2)
    e = np.exp([3.0, 2.0])
    assert gates[0] == pytest.approx([0.0, e[0] / e.sum(), e[1] / e.sum(), 0.0])
    dense = sparse_gates(z, 4)
    assert dense[0] == pytest.approx(np.exp(z[0]) / np.exp(z[0]).sum())
    assert sparse_gates(z, 9)[0] == pytest.approx(dense[0])  # k above the experts: all


def test_the_load_balancing_loss_is_the_squared_cv_of_the_experts_importance() -> None:
    # one linear layer fed the identity: the logits are the weights' rows
    z = np.log(np.array([[3.0, 1.0, 0.0 + 1e-300], [1.0, 1.0, 2.0]]))
    layers = [(z.copy(), np.zeros(3))]
    args = GatingArguments(hidden=(), top_k=2, balance_weight=1.0, temperature=1.0)
    loss, _ = loss_and_grads(layers, np.eye(2), np.zeros((2, 3)), args)
    # gates: row 1 top-2 (3, 1) -> (0.75, 0.25, 0); row 2 top-2 of (1, 1, 2): 2 and one 1
    g1 = np.array([0.75, 0.25, 0.0])
    row2 = sparse_gates(z[1:], 2)[0]
    assert sorted(row2) == pytest.approx([0.0, 1 / 3, 2 / 3])
    importance = (g1 + row2) / 2
    cv2 = importance.var() / importance.mean() ** 2
    assert loss == pytest.approx(cv2, rel=1e-6)  # no target: no cross-entropy


def test_the_cross_entropy_is_against_the_models_that_solved_the_prompt() -> None:
    z = np.array([[0.0, np.log(3.0), 0.0]])  # softmax (0.2, 0.6, 0.2)
    layers = [(z.copy(), np.zeros(3))]
    args = GatingArguments(hidden=(), top_k=None, balance_weight=0.0)
    target = np.array([[0.5, 0.5, 0.0]])  # two models solved it
    loss, _ = loss_and_grads(layers, np.eye(1), target, args)
    assert loss == pytest.approx(-(0.5 * np.log(0.2) + 0.5 * np.log(0.6)))


def _cross_entropy(logits: np.ndarray, target: np.ndarray) -> float:
    """The mean cross-entropy of softmax(logits) against one-hot targets, computed here."""
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return float(-(target * np.log(p)).sum() / len(target))


def test_noise_is_added_to_the_logits_while_training_only() -> None:
    # One layer fed the identity: the logits are the weights' rows. While training
    # (a generator given) the loss is on logits + N(0, noise^2), then / temperature;
    # evaluating (no generator) on the logits alone.
    W = np.array([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0]])
    target = np.eye(3)[[0, 1]]
    args = GatingArguments(hidden=(), noise=0.5, temperature=2.0, balance_weight=0.0)
    loss, _ = loss_and_grads([(W.copy(), np.zeros(3))], np.eye(2), target, args)
    assert loss == pytest.approx(_cross_entropy(W / 2.0, target), rel=1e-12)
    rng = np.random.default_rng(3)
    noisy, _ = loss_and_grads([(W.copy(), np.zeros(3))], np.eye(2), target, args, rng)
    noise = np.random.default_rng(3).normal(0.0, 0.5, (2, 3))  # the generator's first draw
    assert noisy == pytest.approx(_cross_entropy((W + noise) / 2.0, target), rel=1e-12)
    assert abs(noisy - loss) > 1e-3


def test_dropout_zeroes_hidden_units_with_probability_p_and_rescales_the_rest() -> None:
    # A hidden layer of 4 units (the identity on positive inputs, so ReLU keeps them),
    # dropout 0.5: while training each unit is kept where the generator's uniform draw
    # is >= 0.5, and multiplied by 1 / (1 - 0.5) = 2 (inverted dropout).
    X = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 1.0, 2.0, 3.0]])
    W2 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]) / 4
    layers = [(np.eye(4), np.zeros(4)), (W2, np.zeros(3))]
    target = np.eye(3)[[2, 0]]
    args = GatingArguments(hidden=(4,), dropout=0.5, noise=0.0, balance_weight=0.0)
    kept = np.random.default_rng(5).random((2, 4)) >= 0.5
    assert 0 < kept.sum() < kept.size  # some kept, some dropped: the test can tell
    loss, _ = loss_and_grads(layers, X, target, args, np.random.default_rng(5))
    assert loss == pytest.approx(_cross_entropy((X * kept * 2.0) @ W2, target), rel=1e-12)
    clean, _ = loss_and_grads(layers, X, target, args)  # evaluation: no dropout
    assert clean == pytest.approx(_cross_entropy(X @ W2, target), rel=1e-12)


def test_routing_runs_the_hidden_layers_through_relu() -> None:
    # Embedding (1, -1) through an identity hidden layer: pre-activations (1, -1), after
    # ReLU (1, 0); the output layer maps them to logits (1, 0, 0), not (1, 0, -2).
    router = create_router("moe", CANDIDATES, 0, encoder="hashing:2", hidden=[2])
    assert isinstance(router, MoERouter)
    W_out = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    router.set_state({"W1": np.eye(2), "b1": np.zeros(2), "W_out": W_out,
                      "b_out": np.zeros(3), "quality": np.full(3, 0.5)})  # fmt: skip
    gates = router.gates(np.array([[1.0, -1.0]]))
    np.testing.assert_allclose(gates, np.array([[np.e, 1.0, 1.0]]) / (np.e + 2))


@pytest.mark.parametrize("top_k", [1, 2, None])
def test_the_gradient_matches_finite_differences(top_k: int | None) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 5))
    Y = (rng.random((7, 4)) > 0.5).astype(float)
    Y[0] = 0.0  # a prompt nobody solved: balance term only
    solved = Y.sum(axis=1, keepdims=True)
    T = np.divide(Y, solved, out=np.zeros_like(Y), where=solved > 0)
    args = GatingArguments(hidden=(6, 3), top_k=top_k, balance_weight=0.7, temperature=0.8)
    layers = init_layers([5, 6, 3, 4], rng)
    _, grads = loss_and_grads(layers, X, T, args)
    worst = 0.0
    for (W, b), (gW, gb) in zip(layers, grads, strict=True):
        for array, grad in ((W, gW), (b, gb)):
            for idx in np.ndindex(array.shape):
                old = array[idx]
                array[idx] = old + 1e-6
                up = loss_and_grads(layers, X, T, args, grads=False)[0]
                array[idx] = old - 1e-6
                down = loss_and_grads(layers, X, T, args, grads=False)[0]
                array[idx] = old
                worst = max(worst, abs((up - down) / 2e-6 - grad[idx]))
    assert worst < 1e-6


def test_training_keeps_the_best_validation_epoch_and_stops_early() -> None:
    rng = np.random.default_rng(1)  # outcomes unrelated to the prompts: it can only over-fit
    X, Y = rng.normal(size=(200, 8)), np.eye(3)[rng.integers(0, 3, 200)]
    args = GatingArguments(hidden=(64,), epochs=200, patience=3)
    seen: list[tuple[int, float | None]] = []
    result = train_gating(X, Y, args, seed=0, on_epoch=lambda e, v: seen.append((e, v)))
    assert result.validation_size == 20 and result.epochs_run == len(seen) < 200
    losses = [v for _, v in seen]
    assert result.validation_loss == min(losses)  # type: ignore[type-var]
    assert result.best_epoch == 1 + losses.index(result.validation_loss)
    assert result.epochs_run - result.best_epoch == 3
    again = train_gating(X, Y, args, seed=0)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(result.layers, again.layers, strict=True))


@pytest.mark.parametrize("held_out", [0.0, 1.0])  # no model solved them, every model did
def test_held_out_prompts_that_tell_no_model_apart_do_not_keep_an_untrained_epoch(
    held_out: float,
) -> None:
    # 24 prompts hold out 2, the first of train_gating's seeded permutation: their loss
    # is lowest for even gates, whatever the network learned on the others
    X, Y = clusters(24, 0)
    Y[np.random.default_rng(0).permutation(24)[:2]] = held_out
    router = create_router("moe", CANDIDATES, 0, encoder="hashing", hidden=[16])
    router.fit(None, Y, MODELS, embeddings=X)  # type: ignore[attr-defined]
    # as under 20 prompts: every epoch run, not an early one kept (chance accuracy)
    assert router.selection["validation_prompts"] == 0  # type: ignore[attr-defined]
    assert router.selection["best_epoch"] == router.selection["epochs_run"] == 100  # type: ignore[attr-defined]  # fmt: skip
    X_new, Y_new = clusters(60, 5)
    assert np.mean(router.predict(X_new).argmax(axis=1) == Y_new.argmax(axis=1)) > 0.95  # type: ignore[attr-defined]  # fmt: skip


@pytest.mark.parametrize("n", [15, 150])  # without, then with a validation split
def test_training_that_diverges_is_a_clear_error(n: int) -> None:
    router = create_router("moe", CANDIDATES, 0, encoder="hashing", hidden=[8], epochs=3,
                           learning_rate=1e300)  # fmt: skip
    X, Y = clusters(n, 0)
    with pytest.raises(RouterLLMError, match=r"diverged at epoch \d+ .* lower learning_rate \(now 1e\+300\)"):  # fmt: skip
        router.fit(None, Y, MODELS, embeddings=X)  # type: ignore[attr-defined]
    assert not router.is_trained


def _rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)]


def _with(a: np.ndarray, row: int, value: float) -> np.ndarray:
    a = a.copy()
    a[row] = value
    return a


@pytest.mark.parametrize(
    ("X", "T", "message"),
    [
        (_with(_rows(40)[0], 5, np.nan), _rows(40)[1], r"embeddings: row 6 is not finite"),
        (_with(_rows(40)[0], 5, np.inf), _rows(40)[1], r"embeddings: row 6 is not finite"),
        (
            _rows(40)[0],
            _with(_rows(40)[1], 5, np.nan),
            r"targets: row 6 is not .* in \[0, 1\]",
        ),  # fmt: skip
        (_rows(40)[0], -_rows(40)[1], r"targets: row 1 is not .* in \[0, 1\]"),
        (_rows(40)[0], 0.5 * _rows(40)[1], r"targets: row 1 sums to 0.5, not to 1 .* or 0"),
        (_rows(40)[0], _rows(40)[1][:30], r"40 embedding rows and 30 target rows"),
        (_rows(40)[0][:0], _rows(40)[1][:0], r"no training prompts"),
        (_rows(40)[0][:, 0], _rows(40)[1], r"embeddings must be a 2-d array"),
    ],
)
def test_training_inputs_that_are_not_numbers_of_the_right_shape_are_refused(
    X: np.ndarray, T: np.ndarray, message: str
) -> None:
    # not "diverged ... lower learning_rate", nor a NaN target that silently zeroes its
    # batch's cross-entropy, nor an IndexError
    with pytest.raises(RouterLLMError, match=message):
        train_gating(X, T, GatingArguments(hidden=(4,), epochs=2), seed=0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 0}, r"batch_size must be a whole number >= 1, got 0"),
        ({"epochs": 0}, r"epochs must be a whole number >= 1, got 0"),
        ({"patience": 0}, r"patience must be a whole number >= 1, got 0"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be a number from 0 to below 1"),
        ({"hidden": (0,)}, r"hidden must list layer widths >= 1, got \(0,\)"),
    ],
)
def test_gating_arguments_out_of_range_are_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(RouterLLMError, match=message):
        GatingArguments(**changes)  # type: ignore[arg-type]


def test_a_validation_fraction_of_0_holds_no_prompt_out() -> None:
    X, T = _rows(40)
    result = train_gating(X, T, GatingArguments(hidden=(4,), epochs=3, validation_fraction=0.0), 0)
    assert result.validation_size == 0 and result.best_epoch == result.epochs_run == 3


def test_a_single_expert_or_experts_all_equally_right_train_every_epoch() -> None:
    X, _ = _rows(40)
    args = GatingArguments(hidden=(4,), epochs=4)
    for T in (np.ones((40, 1)), np.full((40, 3), 1 / 3)):
        result = train_gating(X, T, args, 0)
        assert result.validation_size == 0 and result.best_epoch == result.epochs_run == 4
        assert all(np.isfinite(W).all() and np.isfinite(b).all() for W, b in result.layers)


def test_the_validation_loss_falls_on_a_learnable_problem() -> None:
    X, T = _rows(200)
    seen: list[float] = []
    train_gating(X, T, GatingArguments(hidden=(16,), epochs=30, learning_rate=1e-2), 0, lambda e, v: seen.append(v))  # type: ignore[arg-type]  # fmt: skip
    assert seen[-1] < 0.5 * seen[0]


# -- routing -------------------------------------------------------------------------
def test_it_learns_which_model_solves_which_prompts() -> None:
    router = trained(hidden=[32], top_k=2)
    X, Y = clusters(60, 5)  # new prompts of the same three kinds
    chosen = router.predict(X).argmax(axis=1)
    assert np.mean(chosen == Y.argmax(axis=1)) > 0.95
    assert router.predict(X).sum(axis=1) == pytest.approx(np.ones(60))
    assert (np.count_nonzero(router.gates(X), axis=1) == 2).all()  # top-2: sparse
    assert router.selection["best_epoch"] >= 1 and router.quality == pytest.approx([1 / 3] * 3)


def test_the_seed_adjustment_weighs_quality_carbon_and_cost() -> None:
    # the adjustment is the same for any network: a narrow one (the seed's 256-128, trained
    # twice for 100 epochs, was this file's slowest test, 106 s at load 19)
    router = trained(hidden=[16], quality_weight=0.5, carbon_weight=0.3, cost_weight=0.2, costs=[1, 2, 4])  # fmt: skip
    scores = router.objective_scores()
    carbon = 1 - np.array([1.0, 8.0, 70.0]) / 70.0
    cost = 1 - np.array([1.0, 2.0, 4.0]) / 4.0
    assert scores["carbon"] == pytest.approx(carbon) and scores["cost"] == pytest.approx(cost)
    assert scores["multiplier"] == pytest.approx(0.5 / 3 + 0.3 * carbon + 0.2 * cost)
    X = clusters(9, 3)[0]
    adjusted = router.gates(X) * scores["multiplier"]
    assert router.predict(X) == pytest.approx(adjusted / adjusted.sum(axis=1, keepdims=True))
    # no weight at all: the gates as they are
    plain = trained(hidden=[16], quality_weight=0.0, carbon_weight=0.0, cost_weight=0.0)
    assert plain.predict(X) == pytest.approx(plain.gates(X))


def test_the_seeds_numbers_reach_the_training(monkeypatch: pytest.MonkeyPatch) -> None:
    # MISSION M3.4: gating MLP d-256-128-m, ReLU + dropout 0.1, noise while training,
    # temperature 1, load balancing weighted 0.01; the router's options must reach
    # train_gating (an option it does not pass would silently train with another value)
    from routerllm.training import gating

    seen: list[GatingArguments] = []
    real = gating.train_gating

    def spy(X: np.ndarray, T: np.ndarray, args: GatingArguments, seed: int) -> object:
        seen.append(args)
        return real(X, T, args, seed)

    monkeypatch.setattr(gating, "train_gating", spy)
    router = create_router("moe", CANDIDATES, 0, encoder="hashing:8", epochs=1)
    X, Y = clusters(30, 0)
    router.fit(None, Y, MODELS, embeddings=X)  # type: ignore[attr-defined]
    [args] = seen
    assert (args.hidden, args.dropout, args.noise, args.temperature) == ((256, 128), 0.1, 0.1, 1.0)
    assert (args.balance_weight, args.epochs) == (0.01, 1)
    assert [W.shape for W, _ in router.layers] == [(8, 256), (256, 128), (128, 3)]  # type: ignore[attr-defined]  # fmt: skip
    # the seed's top-2 and 0.5 / 0.3 / 0.2 are options (README: dense, quality-only defaults)
    seed = create_router("moe", CANDIDATES, 0, top_k=2, quality_weight=0.5, carbon_weight=0.3, cost_weight=0.2)  # fmt: skip
    assert seed.settings["top_k"] == 2  # type: ignore[attr-defined]


def test_it_routes_prompts_and_calibrates_like_every_outcome_router() -> None:
    router = create_router("moe", CANDIDATES, 0, encoder="hashing", hidden=[32])
    prompts, scores = make_rows(120, 0)
    router.fit(prompts, scores, MODELS)  # type: ignore[attr-defined]
    decisions = router.route_batch(prompts[:4])
    assert all(d.reason.startswith("adjusted gate ") and d.router == "moe" for d in decisions)
    assert {d.model for d in decisions} <= set(MODELS)
    held, held_scores = make_rows(60, 1)
    result = router.calibrate(held, held_scores, "max_share=0.3", MODELS)  # type: ignore[attr-defined]
    assert result["shares"]["big"] <= 0.3 + 1e-9


# -- save / load ---------------------------------------------------------------------
def test_a_saved_router_reloads_to_identical_predictions_in_any_model_order(tmp_path: Path) -> None:  # fmt: skip
    router = trained(hidden=[16, 8], top_k=2)
    router.save(tmp_path / "moe")
    X = clusters(12, 9)[0]
    again = load_router(tmp_path / "moe", CANDIDATES)
    assert np.array_equal(again.predict(X), router.predict(X))  # type: ignore[attr-defined]
    # a config sizing the models the other way round orders them the other way round
    resized = [Candidate(m, 100.0 / SIZES[m]) for m in MODELS]
    reordered = load_router(tmp_path / "moe", resized)
    assert reordered.model_names == MODELS[::-1]
    assert np.array_equal(reordered.gates(X), router.gates(X)[:, ::-1])  # type: ignore[attr-defined]
    # decision-time options may change with a config; the network's shape may not
    wider = load_router(tmp_path / "moe", CANDIDATES, {"top_k": 1})
    assert (np.count_nonzero(wider.gates(X), axis=1) == 1).all()  # type: ignore[attr-defined]
    with pytest.raises(RouterLLMError, match="hidden"):
        load_router(tmp_path / "moe", CANDIDATES, {"hidden": [32]})
    same = load_router(tmp_path / "moe", CANDIDATES, {"hidden": (16, 8)})  # as given in code
    assert np.array_equal(same.predict(X), router.predict(X))  # type: ignore[attr-defined]
    with pytest.raises(RouterLLMError, match="seed: not a router option"):
        load_router(tmp_path / "moe", CANDIDATES, {"seed": 1})


@pytest.mark.parametrize(
    ("name", "array"),
    [("W_out", np.zeros((16, 2))), ("W1", np.array(1.0)), ("W1", np.zeros((0, 16)))],
    ids=["W_out-for-2-models", "W1-a-number", "W1-for-no-embedding"],
)
def test_weights_that_do_not_fit_the_network_are_refused_clearly(
    tmp_path: Path, name: str, array: np.ndarray
) -> None:
    trained(hidden=[16]).save(tmp_path / "moe")
    with np.load(tmp_path / "moe" / "weights.npz") as z:
        arrays = {k: v for k, v in z.items() if k != "_model_names"}  # load_router's
    arrays[name] = array
    broken = create_router("moe", CANDIDATES, 0, encoder="hashing", hidden=[16])
    with pytest.raises(ValueError, match=f"layer {name} has shape"):
        broken.set_state(arrays)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hidden": []}, "hidden must list 1 to 4 layer widths"),
        ({"hidden": [0]}, "hidden must list"),
        ({"hidden": "256"}, "hidden"),
        ({"top_k": 0}, "top_k must be a whole number >= 1"),
        ({"dropout": 1.0}, "dropout must be a number from 0 to below 1"),
        ({"temperature": 0}, "temperature must be a number > 0"),
        ({"carbon_weight": -1}, "carbon_weight must be a number >= 0"),
        ({"epochs": 2.5}, "epochs"),
    ],
)
def test_bad_options_get_a_clear_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(RouterLLMError, match=message):
        create_router("moe", CANDIDATES, 0, encoder="hashing", **options)


# -- the CLI ------------------------------------------------------------------------
def test_train_that_diverges_leaves_the_router_saved_in_out_as_it_was(tmp_path: Path) -> None:
    data = write_json(tmp_path / "train.json", *make_rows(40, 0))
    out = tmp_path / "moe"
    common = ["train", "--router", "moe", "--data", str(data), "--out", str(out), "--encoder",
              "hashing", "--option", "hidden=[8]", "--option", "epochs=3"]  # fmt: skip
    ok_json(*common)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = cli_in_process(*common, "--option", "learning_rate=1e300")
    assert_one_line_error(proc, "diverged", "lower learning_rate")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert load_router(out, CANDIDATES).is_trained


def test_train_takes_router_options_and_refuses_those_its_flags_set(tmp_path: Path) -> None:
    data = write_json(tmp_path / "train.json", *make_rows(80, 0))
    out = tmp_path / "moe"
    trained_json = ok_json(
        "train", "--router", "moe", "--data", str(data), "--out", str(out),
        "--encoder", "hashing", "--option", "hidden=[16]", "--option", "top_k=2",
        "--option", "epochs=5",
    )  # fmt: skip
    assert trained_json["selection"]["epochs_run"] <= 5
    saved = json.loads((out / "config.json").read_text())["options"]
    assert (saved["hidden"], saved["top_k"], saved["epochs"]) == ([16], 2, 5)
    for args, needles in [
        (["--option", "encoder=minilm"], ["--option encoder is set by --encoder"]),
        (["--option", "top_k=0"], ["top_k must be a whole number >= 1"]),
        (["--option", "top_k=1", "--option", "top_k=2"], ["top_k more than once"]),
        (["--option", "seed=3"], ["--option seed is set by --seed"]),
        (["--option", "models=[1]"], ["--option models is set by --data"]),
    ]:
        proc = cli_in_process("train", "--router", "moe", "--data", str(data),
                              "--out", str(tmp_path / "x"), "--encoder", "hashing", *args)  # fmt: skip
        assert_one_line_error(proc, *needles)
    proc = cli_in_process("train", "--router", "moe", "--data", str(data),
                          "--out", str(tmp_path / "x"), "--option", "top_k")  # fmt: skip
    assert proc.returncode == 2 and "'top_k' is not KEY=VALUE" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = cli_in_process(
        "train", "--data", str(data), "--out", str(tmp_path / "x"), "--option", "k=1"
    )
    assert_one_line_error(proc, "--option is for outcome routers")


def test_a_prompt_gets_the_same_gates_alone_as_in_any_batch() -> None:
    # The batch's matrix products summed in another order than one row's: 144 of 300
    # prompts got gates a last bit off their own.
    router = trained(hidden=[16, 8], top_k=2)
    X = clusters(300, 5)[0]
    alone = np.vstack([router.predict(X[i : i + 1]) for i in range(len(X))])
    assert np.array_equal(alone, router.predict(X))
    prompts = [f"prompt {i} of a batch" for i in range(60)]
    assert [router.route(p) for p in prompts] == router.route_batch(prompts)


def test_models_that_may_not_serve_leave_the_gates_to_those_that_may() -> None:
    # Parser prompts: small fails, mid and big solve them; with top-1 gates the network
    # gives big the whole gate, but rates mid far above small. Without big (unavailable,
    # over the budgets' cap) the top-1 gate is taken among small and mid: mid, not the
    # cheapest model by a tie of zero gates.
    models = [Candidate("small", 1.0), Candidate("mid", 3.0), Candidate("big", 10.0)]
    router = create_router("moe", models, 0, encoder="hashing", top_k=1, epochs=50)
    prompts = [f"write the parser function number {i}" for i in range(30)]
    prompts += [f"say hello to person {i}" for i in range(30)]
    scores = np.array([[0.0, 1.0, 1.0]] * 30 + [[1.0, 1.0, 1.0]] * 30)
    router.fit(prompts, scores, ["small", "mid", "big"])  # type: ignore[attr-defined]
    parser = "write the parser function number 99"
    assert router.route(parser).model == "big"
    decision = router.route(parser, ["small", "mid"])
    assert decision.model == "mid" and decision.confidence == 1.0
    assert decision.scores == {"small": 0.0, "mid": 1.0, "big": 0.0}
    # every model allowed: the gates as before, to the last bit
    X = router.embed([parser, "say hello to person 99"])  # type: ignore[attr-defined]
    everyone = router.route_batch([parser, "say hello to person 99"], ["small", "mid", "big"])
    assert [list(d.scores.values()) for d in everyone] == router.predict(X).tolist()  # type: ignore[attr-defined]


def test_a_temperature_near_0_gives_the_largest_gate_all_not_nan(tmp_path: Path) -> None:
    # Logits divided by 1e-310 overflowed to inf, and inf - inf made every gate NaN: the
    # router then routed every prompt to the first model with confidence 0.
    router = trained(hidden=[16])
    router.save(tmp_path / "moe")
    X = clusters(12, 9)[0]
    cold = load_router(tmp_path / "moe", CANDIDATES, {"temperature": 1e-310})
    gates = cold.predict(X)  # type: ignore[attr-defined]
    assert np.isfinite(gates).all()
    np.testing.assert_array_equal(gates, np.eye(3)[router.gates(X).argmax(axis=1)])  # the top gate
