"""Do no harm (MISSION M3.9) on outcome data made to have no routing signal: the
prompt says nothing of which model solves it (each model a fixed accuracy, drawn per
prompt; two models identical at different costs; the right model set by a label the
encoder cannot see) or the training prompts are few. ``routerllm train --calibrate``
must then fall back to the best fixed mix of single models, and on new prompts do no
worse than that mix; where a keyword decides which model is right (the control) it must
keep routing by the prompt and beat the mix by far. Generated, seeded {question, scores,
costs} files; the hashing encoder and the quality router (the one ``eval-routing``
reports first), as a user would run them from the command line. The last test's lucky
lead is built instead, the router's predictions given: no fit, no seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.cli import main
from routerllm.data.outcome_files import load_outcomes
from routerllm.eval.curves import quality_at, upper_hull
from routerllm.eval.outcome_eval import outcome_candidates
from routerllm.eval.routing_metrics import evaluate_choices
from routerllm.routers.saved import load_router

COSTS = {"tiny": 1.0, "small": 3.0, "mid": 10.0, "big": 30.0}
ACCURACY = np.array([0.35, 0.5, 0.65, 0.75])  # each model's, in COSTS' order
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "omega",
    "river",
    "stone",
    "cloud",
    "paper",
    "glass",
    "table",
    "orange",
    "violet",
    "signal",
    "vector",
    "matrix",
    "tensor",
    "bridge",
    "engine",
    "forest",
    "market",
    "planet",
    "rocket",
]


def prompts(rng: np.random.Generator, n: int, start: int) -> list[str]:
    return [f"q{start + i} " + " ".join(rng.choice(WORDS, 8)) for i in range(n)]


def blind(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    """Outcomes the prompt says nothing of: (a) each model solves a prompt at its own
    accuracy, independently; (c) the same, with big a copy of mid at 3x its cost; (g)
    tiny solves the prompts of a hidden label, big the others, mid half of all."""
    scores = (rng.random((n, 4)) < ACCURACY).astype(float)
    if kind == "identical":
        scores[:, 3] = scores[:, 2]
    if kind == "hidden":
        label = rng.random(n) < 0.5
        scores[:] = 0.0
        scores[label, 0] = scores[~label, 3] = 1.0
        scores[:, 2] = rng.random(n) < 0.5
    return scores


def keyword(rng: np.random.Generator, texts: list[str]) -> np.ndarray:
    """(h) the control: tiny and small solve the prompts that name "kernel" (every other
    one), big the rest, mid half of all, at random."""
    scores = np.zeros((len(texts), 4))
    for i in range(len(texts)):
        if i % 2 == 0:
            texts[i] += " kernel"
            scores[i, :2] = 1.0
        else:
            scores[i, 3] = 1.0
        scores[i, 2] = float(rng.random() < 0.5)
    return scores


def write(path: Path, texts: list[str], scores: np.ndarray) -> Path:
    rows = [
        {"question": q, "scores": dict(zip(COSTS, map(float, s), strict=True)), "costs": COSTS}
        for q, s in zip(texts, scores, strict=True)
    ]
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def dataset(tmp_path: Path, kind: str, n_train: int, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    train, test = prompts(rng, n_train, 0), prompts(rng, 300, n_train)
    if kind == "keyword":
        train_scores, test_scores = keyword(rng, train), keyword(rng, test)
    else:
        train_scores, test_scores = blind(rng, n_train, kind), blind(rng, 300, kind)
    return write(tmp_path / "train.json", train, train_scores), write(
        tmp_path / "test.json", test, test_scores
    )


def cli_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def calibrated_on_test(
    tmp_path: Path, kind: str, n_train: int, seed: int, target: str, capsys: Any
) -> tuple[dict[str, Any], float, float]:
    """Train and calibrate as a user would; then (calibration's report, the router's
    accuracy on the test prompts, the best fixed mix's accuracy there at the same cost)."""
    train, test = dataset(tmp_path, kind, n_train, seed)
    out = cli_json(["train", "--router", "quality", "--data", str(train), "--out",
                    str(tmp_path / "router"), "--encoder", "hashing", "--calibrate", target,
                    "--seed", str(seed)], capsys)  # fmt: skip
    data = load_outcomes(test)
    costs = data.cost_matrix("call")
    router = load_router(tmp_path / "router", outcome_candidates(data, costs.mean(axis=0)))
    chosen = [data.models.index(d.model) for d in router.route_batch(data.prompts)]
    routed = evaluate_choices(np.array(chosen), data.scores, costs)
    singles = [evaluate_choices(np.full(len(data), j), data.scores, costs) for j in range(4)]
    mix = quality_at(upper_hull(singles), routed.cost)
    assert mix is not None
    return out["calibration"], routed.quality, mix


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("independent", "max_cost=0.5"),
        ("independent", "quality=0.95"),
        ("identical", "max_cost=0.5"),
        ("hidden", "max_cost=0.5"),
    ],
)
def test_without_routing_signal_calibration_falls_back_to_the_fixed_mix(
    tmp_path: Path, kind: str, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the 60 held-out prompts the best of the router's many knob settings beats the
    fixed mix by luck alone (the first two by 0.059, 1.4 times that lead's standard
    error of 0.041; before 2026-12-07 any lead kept the router routing, and on the
    test prompts it then did worse than the mix): such a lead is no routing signal,
    and the router draws from the mix. Cross-fitted (each held-out prompt routed by a
    knob chosen without it), the lead that decides is not beyond its noise."""
    cal, routed, mix = calibrated_on_test(tmp_path, kind, 300, 0, target, capsys)
    assert cal["routes_by"] == "fixed mix" and cal["fallback_mix"] is not None
    assert not cal["beats_fixed_mix"] and cal["lead_over_mix"] > 0
    assert cal["cross_fitted_lead_over_mix"] <= 2 * cal["cross_fitted_lead_standard_error"]
    # On new prompts the mix's draw is the mix, up to its sampling noise (300 prompts).
    assert routed >= mix - 0.06


def test_with_a_keyword_signal_calibration_routes_by_the_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control: a keyword tells which model is right; the router keeps routing by its
    predictions and on new prompts beats the best fixed mix at its cost by far."""
    cal, routed, mix = calibrated_on_test(tmp_path, "keyword", 300, 0, "max_cost=0.5", capsys)
    assert cal["routes_by"] == "predictions" and cal["beats_fixed_mix"]
    assert routed > mix + 0.3


#: A lucky lead by construction (the test below): ``BLOCK`` rounds of each cross-fitting
#: fold's held-out prompts in each of its three blocks; folds 0 and 1 are "early", the
#: others "late".
BLOCK = 8
EARLY = (0, 1)


def lucky_lead(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and outcomes of cheap (cost 1) and dear (cost 3) on 5 x 3 x ``BLOCK``
    held-out prompts, dealt into calibration's cross-fitting folds as ``calibrate`` deals
    them (``fold_of``, the router's ``seed``). The predictions rank the prompts by the
    dear model's predicted gain, round by round (a prompt of each fold a round; every
    early fold's prompt first); only that rank matters. Dear solves a prompt that cheap
    fails (+1), fails one cheap solves (-1), or does as cheap does (0), by fold and block
    of rounds: early folds +1, -1, 0; late folds 0, +1, -1. Each fold's +1 and -1 cancel:
    cheap and dear solve as many prompts, in every fold and every set of folds, and the
    best fixed mix is cheap alone. Sending the first two blocks to dear leads it by
    (2 - 2 + 3) x ``BLOCK`` prompts of 15 x ``BLOCK``: 0.2. Without a late fold,
    the others gain as much at the end of the first block as of the second (+2 - 2 + 2 a
    round), and the cheaper knob, the first block's, routes the late fold's 0s; without an
    early fold, the others gain most at the end of the second block, which routes the
    early fold's +1s and -1s: no fold's prompts gain under a knob chosen without them."""
    from routerllm.routers.cross_fit import FOLDS, fold_of

    rounds, n = 3 * BLOCK, 5 * 3 * BLOCK
    fold = fold_of(np.arange(n), FOLDS, seed)
    gain, diff = np.zeros(n), np.zeros(n, dtype=int)
    late = [f for f in range(FOLDS) if f not in EARLY]
    for place, f in enumerate([*EARLY, *late]):  # a round: the early folds' prompts first
        pattern = (1, -1, 0) if f in EARLY else (0, 1, -1)
        for r, i in enumerate(np.flatnonzero(fold == f)):
            # rounds 0.01 apart, a round's prompts 0.001: every knob between two rounds
            # sends a fold's prompts of the rounds above it, and no others
            gain[i] = 0.4 - 0.01 * r - 0.001 * place
            diff[i] = pattern[r // BLOCK]
    assert len(set(gain)) == n and (fold == 0).sum() == rounds
    predicted = np.column_stack([np.full(n, 0.5), 0.5 + gain])
    # +1: cheap fails, dear solves; -1: the other way; 0: both solve
    scores = np.column_stack([(diff <= 0), (diff >= 0)]).astype(float)
    return predicted, scores


def test_a_lead_that_was_luck_where_the_knob_was_chosen_does_not_keep_it_routing() -> None:
    """Where the knob was chosen the router leads the best fixed mix by 0.2, 3.3 times
    that lead's standard error (0.060), and with the lead there deciding (until
    2026-12-07) it kept routing by its predictions; but the lead is luck by construction
    (``lucky_lead``): each held-out prompt routed by a knob chosen without it gains
    nothing, a cross-fitted lead of exactly 0 (standard error 0.047), and the router
    draws from the mix. Built, not drawn: the router's predictions given, no fit and no
    seed to be lucky with; the same whichever seed deals the folds (0-29 checked). Until
    2026-12-07 this was seed 125's outcomes and a fitted router's predictions, whose lead
    depended on the seed and on the BLAS threads the fit ran on (seed 5 was this case on
    2-4 threads, not on one)."""
    from routerllm.routers import create_router
    from routerllm.routers.base import Candidate

    router = create_router("logreg", [Candidate("cheap", 1.0), Candidate("dear", 3.0)], 0, encoder="hashing")  # fmt: skip
    router.fit(None, np.array([[1.0, 1.0], [0.0, 1.0]]), embeddings=np.eye(2))
    predicted, scores = lucky_lead(router.seed or 0)
    cal = router.calibrate(None, scores, "max_cost=0.8", predicted=predicted)  # type: ignore[attr-defined]
    # the knob chosen on all of them: the first two blocks to dear, at cost 35 / 15
    assert cal["quality"] - scores[:, 0].mean() == pytest.approx(0.2)
    assert cal["cost"] == pytest.approx(35 / 15)
    assert cal["lead_over_mix"] == pytest.approx(0.2)
    assert cal["lead_over_mix"] > 3 * cal["lead_standard_error"]
    assert cal["cross_fitted_lead_over_mix"] == 0.0 and cal["cross_fitted_folds"] == 5
    assert cal["routes_by"] == "fixed mix" and not cal["beats_fixed_mix"]
    assert cal["fallback_mix"] == {"cheap": 1.0}  # the best fixed mix: cheap alone
