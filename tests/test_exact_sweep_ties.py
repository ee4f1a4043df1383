"""The exact lambda sweep routes every prompt as ``choose`` does at every knob, ties
included: random small tables with equal costs, duplicated models, chains of
predictions closer than the tie tolerance, knobs from 0 to 1e13 and the breakpoints."""

from __future__ import annotations

import numpy as np
import pytest

from routerllm.eval.exact_sweep import Switches, exact_settings, lambda_switches
from routerllm.eval.routing_metrics import evaluate_choices, sweep
from routerllm.routers.decision import cheapness_rank, choose, normalised_costs


def routing_at(sw: Switches, knob: float) -> np.ndarray:
    """Each prompt's model at ``knob`` by the sweep's switches: those above the knob
    (each applies below its value), all of them at 0."""
    chosen = sw.start.copy()
    for at, prompt, after in zip(sw.at, sw.prompt, sw.after, strict=True):
        if at > knob or knob == 0.0:
            chosen[prompt] = after
    return chosen


def tie_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, decision costs), (30, m): rows on a coarse grid, random rows, chains
    of predictions 0.6e-12 apart (within the 1e-12 tolerance two by two, not three),
    rows a thousand times larger (tolerance 1e-9) or negative; whole-number costs,
    equal on a prompt and between models, per model or per prompt, and a model
    duplicated (same predictions, same costs)."""
    rng = np.random.default_rng(seed)
    n, m = 30, int(rng.integers(3, 7))
    kind = rng.integers(0, 5, n)
    predicted = np.where((kind == 0)[:, None], rng.integers(0, 5, (n, m)) / 4, rng.random((n, m)))
    chain = rng.random((n, 1)) + 0.6e-12 * rng.integers(0, 4, (n, m))
    predicted = np.where((kind == 2)[:, None], chain, predicted)
    predicted = np.where((kind == 3)[:, None], predicted * 1000.0, predicted)
    predicted = np.where((kind == 4)[:, None], -predicted, predicted)
    if seed % 2:
        decision = rng.integers(1, 4, (n, m)).astype(float)
    else:
        decision = np.broadcast_to(rng.integers(1, 4, m).astype(float), (n, m)).copy()
    twin = int(rng.integers(1, m))
    predicted[:, twin], decision[:, twin] = predicted[:, 0], decision[:, 0]
    return predicted, decision


def crossings(predicted: np.ndarray, decision: np.ndarray) -> np.ndarray:
    """Every knob where two models' utilities are equal on some prompt (the breakpoints
    of the rule without a tolerance), positive ones."""
    d = normalised_costs(decision)
    m = predicted.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        values = [
            (predicted[:, j] - predicted[:, k]) / (d[:, j] - d[:, k])
            for j in range(m)
            for k in range(m)
        ]
    every = np.concatenate(values)
    return np.unique(every[np.isfinite(every) & (every > 0)])


@pytest.mark.parametrize("seed", range(12))
def test_the_sweep_routes_each_prompt_as_choose_does_at_every_knob(seed: int) -> None:
    predicted, decision = tie_case(seed)
    n, m = predicted.shape
    rng = np.random.default_rng(100 + seed)
    sw = lambda_switches(predicted, decision, cheapness_rank(decision))
    scores = (rng.random((n, m)) < 0.5).astype(float)
    points, shares = exact_settings(predicted, scores, decision, decision, cheapness_rank(decision))
    knobs = np.concatenate([
        [0.0, 1e13], 10.0 ** rng.uniform(-3, 13, 40), crossings(predicted, decision),
        [p.knob for p in points],
    ])  # fmt: skip
    for knob in knobs:
        expected = choose(predicted, decision, "lambda", float(knob))
        assert routing_at(sw, float(knob)).tolist() == expected.tolist(), knob
    # and each point the sweep reports is what choose makes at its knob
    for point, share in zip(points, shares, strict=True):
        chosen = choose(predicted, decision, "lambda", point.knob)
        made = evaluate_choices(chosen, scores, decision)
        assert (made.cost, made.quality) == pytest.approx((point.cost, point.quality), abs=1e-12)
        assert share.tolist() == pytest.approx(np.bincount(chosen, minlength=m) / n, abs=1e-12)


def test_equal_cost_models_predicted_apart_are_not_tied_by_the_sweep_at_any_knob() -> None:
    # models 0 and 1 cost 1, model 2 costs 2; prompt 0 predicts 0.5, 0.9, 1.0: model 1
    # beats model 0 at every knob (0.4 ahead, same cost), so the walk goes 2 -> 1 at
    # lambda = 0.1 / 0.5 and never to model 0, however high lambda goes
    predicted = np.array([[0.5, 0.9, 1.0]])
    decision = np.array([[1.0, 1.0, 2.0]])
    sw = lambda_switches(predicted, decision, cheapness_rank(decision))
    assert sw.start.tolist() == [1]
    assert sw.after.tolist() == [2] and sw.at.tolist() == pytest.approx([0.2], rel=1e-10)
    scores = np.array([[0.0, 1.0, 1.0]])
    points = sweep(predicted, scores, decision, knobs="exact", decision_costs=decision)
    assert [(p.cost, p.quality) for p in points] == [(2.0, 1.0), (1.0, 1.0)]
    assert choose(predicted, decision, "lambda", 1e13).tolist() == [1]


def test_the_walk_in_blocks_of_prompts_is_the_walk_of_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a block per prompt: the same switches, each prompt's in its order, at its index
    from routerllm.eval import exact_sweep

    predicted, decision = tie_case(3)
    rank = cheapness_rank(decision)
    whole = lambda_switches(predicted, decision, rank)
    monkeypatch.setattr(exact_sweep, "_ENTRIES_AT_ONCE", 1)
    blocks = lambda_switches(predicted, decision, rank)
    assert whole.at.size > 10
    for field in ("start", "at", "prompt", "before", "after"):
        assert np.array_equal(getattr(whole, field), getattr(blocks, field)), field
