"""Do no harm (MISSION M3.9) on outcome data made to have no routing signal: the
prompt says nothing of which model solves it (each model a fixed accuracy, drawn per
prompt; two models identical at different costs; the right model set by a label the
encoder cannot see) or the training prompts are few. ``routerllm train --calibrate``
must then fall back to the best fixed mix of single models, and on new prompts do no
worse than that mix; where a keyword decides which model is right (the control) it must
keep routing by the prompt and beat the mix by far. Generated, seeded {question, scores,
costs} files; the hashing encoder and the quality router (the one ``eval-routing``
reports first), as a user would run them from the command line."""

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


def test_a_lead_that_was_luck_where_the_knob_was_chosen_does_not_keep_it_routing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed 125, outcomes no prompt tells: where the knob was chosen it leads the mix by
    0.086, 2.7 times that lead's standard error (0.032), and until the cross-fitted lead
    decided the router kept routing by its predictions; on the new prompts those choices
    score 0.610 at cost 9.0, under the best fixed mix's 0.615 there and far short of the
    quality asked (95 % of the best model's 0.750: 0.713). Each held-out prompt routed by a
    knob chosen without it, the lead is 0.036-0.054, 1.0-1.5 standard errors: the router
    draws from the mix, 0.723 on the new prompts. The same with the fits on 1, 2 or 4
    BLAS threads (the figures' ranges); seed 5, chosen before 2026-12-07, was this case
    on 2-4 threads only: on one (a 1-CPU machine; every fit since) its cross-fitted lead
    was 0.093, over 2 standard errors (0.043), and it kept routing. Of seeds 0-299 none
    other is this case on one thread with a lead of over 2 standard errors and knob
    choices under the mix on the new prompts."""
    cal, routed, _ = calibrated_on_test(tmp_path, "independent", 300, 125, "quality=0.95", capsys)
    assert cal["lead_over_mix"] > 2 * cal["lead_standard_error"]
    assert cal["cross_fitted_lead_over_mix"] <= 2 * cal["cross_fitted_lead_standard_error"]
    assert cal["routes_by"] == "fixed mix" and not cal["beats_fixed_mix"]
    data = load_outcomes(tmp_path / "test.json")
    costs = data.cost_matrix("call")
    router = load_router(tmp_path / "router", outcome_candidates(data, costs.mean(axis=0)))
    router.set_mix(None)  # type: ignore[attr-defined]  # the knob's own choices
    chosen = [data.models.index(d.model) for d in router.route_batch(data.prompts)]
    knob = evaluate_choices(np.array(chosen), data.scores, costs)
    singles = [evaluate_choices(np.full(len(data), j), data.scores, costs) for j in range(4)]
    mix = quality_at(upper_hull(singles), knob.cost)
    assert mix is not None and knob.quality < mix
    asked = 0.95 * max(s.quality for s in singles)
    assert knob.quality < asked - 0.1  # far short of the quality asked
    assert routed > knob.quality + 0.1  # the mix it now draws from
