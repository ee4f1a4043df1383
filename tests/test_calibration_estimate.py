"""Calibration's estimate for new prompts (``routers/cross_fit.py``): the knob is the
best of many settings on the held-out prompts, so its quality and lead over the fixed
mix measured there are biased upwards (the winner's curse); cross-fitting routes each
held-out prompt by a knob chosen without it. Hand-computed folds and figures, and on
generated outcome data the prompt says nothing of (tests/test_do_no_harm.py's), the
bias each way against prompts calibration never saw."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.cli import main
from routerllm.routers import create_router
from routerllm.routers.base import Candidate
from routerllm.routers.cross_fit import FOLDS, cross_fit, fold_of, row_groups
from tests.test_do_no_harm import ACCURACY, COSTS, dataset

from .conftest import benchmark_in_process


def test_folds_keep_copies_together_and_are_seeded() -> None:
    groups = np.array([0, 1, 1, 2, 3, 4, 4, 4, 5, 6, 7, 8])
    fold = fold_of(groups, FOLDS, 3)
    for g in np.unique(groups):
        assert len(set(fold[groups == g])) == 1  # every copy of a question in one fold
    assert sorted(set(fold)) == list(range(FOLDS))
    assert np.array_equal(fold, fold_of(groups, FOLDS, 3))
    assert sorted(set(fold_of(np.array([5, 5, 9]), FOLDS, 0))) == [0, 1]  # two questions


def test_copies_of_a_prompt_are_one_group() -> None:
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    groups = row_groups(X, 4)
    assert groups[0] == groups[2] and len(set(groups)) == 3
    assert list(row_groups(None, 3)) == [0, 1, 2]  # given predictions: each its own


def test_each_prompt_is_scored_by_a_knob_chosen_without_it() -> None:
    """The fake choice is the mean index of the rows it is made on: rows 0 and 2 are
    routed by the one made on rows 1 and 3 (2), rows 1 and 3 by the one made on 0 and 2
    (1); the knob's cost 1 is the cheap model's, so the mix is that model alone."""
    scores = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    costs = np.broadcast_to([1.0, 5.0], scores.shape)
    chosen_on: list[list[int]] = []

    def choose(on: np.ndarray) -> tuple[bool, Any, None]:
        chosen_on.append(on.tolist())
        return True, (float(on.mean()), 1.0, 0.0, None, "lambda"), None

    def routed(rows: np.ndarray, pick: Any, second: Any) -> tuple[np.ndarray, np.ndarray]:
        return np.full(len(rows), pick[0] / 10), np.ones(len(rows))

    got = cross_fit(choose, routed, scores, costs, np.array([0, 1, 0, 1]))
    assert chosen_on == [[1, 3], [0, 2]]
    assert got.quality == pytest.approx(0.15) and got.cost == 1.0 and got.folds == 2
    assert got.mix_quality == 0.25  # tiny's scores: 0, 1, 0, 0
    # leads 0.2, -0.9, 0.2, 0.1: mean -0.1, sample sd sqrt(0.86 / 3), over sqrt(4)
    assert got.lead == pytest.approx(-0.1)
    assert got.noise == pytest.approx(math.sqrt(0.86 / 3) / 2)


def test_one_question_leaves_no_knob_chosen_without_it() -> None:
    scores = np.ones((3, 2))
    got = cross_fit(lambda on: pytest.fail("nothing to choose on"), lambda *a: pytest.fail(),
                    scores, np.ones((3, 2)), np.zeros(3, dtype=int))  # fmt: skip
    assert math.isnan(got.quality) and math.isnan(got.lead) and math.isinf(got.noise)
    assert got.folds == 0


def test_the_cross_fitted_lead_is_not_the_winners_curse() -> None:
    """Predictions that know each model's accuracy but nothing of a prompt (its rate plus
    noise), 60 held-out prompts whose outcomes are drawn at those rates, 30 seeds: on
    new prompts no knob can beat the best fixed mix (its choices say nothing of the
    outcomes). Where the knob was chosen it leads the mix by 0.042 on average (the best
    of many settings: luck); cross-fitted by 0.007, and less in 24 of the 30."""
    router = create_router("logreg", [Candidate(n, c) for n, c in COSTS.items()], 0,
                           encoder="hashing")  # fmt: skip
    router.fit(None, np.array([[1.0, 0, 1, 1], [0.0, 1, 0, 1]]), embeddings=np.eye(2))
    held, fitted = [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        scores = (rng.random((60, 4)) < ACCURACY).astype(float)
        predicted = np.clip(ACCURACY + 0.05 * rng.standard_normal((60, 4)), 0, 1)
        cal = router.calibrate(None, scores, "max_cost=0.5", list(COSTS), predicted=predicted)  # type: ignore[attr-defined]
        held.append(cal["lead_over_mix"])
        fitted.append(cal["cross_fitted_lead_over_mix"])
        assert cal["cross_fitted_folds"] == FOLDS
    assert np.mean(held) > 0.04  # the winner's curse
    assert np.mean(fitted) < 0.01
    assert sum(f < h for f, h in zip(fitted, held, strict=True)) >= 24


def test_train_prints_the_calibration_one_field_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --json, ``train --calibrate`` prints each calibration field on its own
    indented line, named as --json names it, the cross-fitted estimate among them."""
    train, _ = dataset(tmp_path, "keyword", 300, 0)
    capsys.readouterr()
    assert main(["train", "--router", "logreg", "--data", str(train), "--out",
                 str(tmp_path / "r"), "--encoder", "hashing", "--calibrate", "max_cost=0.5"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("calibration:")
    block = dict(line.strip().split(": ", 1) for line in lines[at + 1 :] if line.startswith("  "))
    assert float(block["cross_fitted_quality"]) >= 0 and float(block["quality"]) >= 0
    assert block["cross_fitted_folds"] == "5" and block["routes_by"] == "predictions"
    assert "calibration_size: 60" in lines


def _run(cross: float, held: float, on_new: float) -> dict[str, Any]:
    """One calibration as benchmarks/calibration_estimate.py keeps it: the leads over the
    mix (standard errors 0.02); on the new prompts the knob's quality (the mix's 0.5) and
    cost (the mix's 0.4), the knob meeting the target there and the mix not."""
    return {"lead": {"held_out": held, "cross_fitted": cross, "test": on_new},
            "se": {"held_out": 0.02, "cross_fitted": 0.02},
            "test": 0.5 + on_new, "test_cost": 0.5, "test_reached": True,
            "mix_test": 0.5, "mix_test_cost": 0.4, "mix_reached": False}  # fmt: skip


def test_the_benchmark_weighs_each_fall_back_rule_over_seeds_with_its_standard_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rules were compared by their means over 6 seeds alone. Now each rule's gain
    over the mix (0 where it falls back) has its standard error over the runs, its worst
    run and its paired difference from calibration's default rule, and the router as the
    rule routes its cost and share of runs meeting the target. Cross-fitted leads of
    2.5, 1.25 and 0 standard errors: 1 SE routes the first two, 2 SE the first, 0 all
    three (a tie keeps calibration routing, and so the benchmark's rule)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    from calibration_estimate import rules

    runs = [_run(0.05, 0.1, 0.10), _run(0.025, 0.03, -0.02), _run(0.0, 0.01, -0.01)]
    got = rules(runs, [0, 1, 1.5])
    assert list(got) == ["held-out > 2 SE", "cross-fit > 0", "cross-fit > 1 SE",
                         "cross-fit > 1.5 SE", "cross-fit > 2 SE"]  # fmt: skip
    one = got["cross-fit > 1 SE"]  # gains 0.10, -0.02, 0
    assert one["falls_back"] == pytest.approx(1 / 3)
    assert one["gain"] == pytest.approx(0.08 / 3)
    assert one["gain_se"] == pytest.approx(math.sqrt((0.0104 - 0.0064 / 3) / 2 / 3))
    assert one["worst_gain"] == pytest.approx(-0.02)
    assert one["quality"] == pytest.approx((0.6 + 0.48 + 0.5) / 3)
    assert one["cost"] == pytest.approx(1.4 / 3) and one["reached"] == pytest.approx(2 / 3)
    # paired with the default's gains 0.10, 0, 0: differences 0, -0.02, 0
    assert one["gain_vs_default"] == pytest.approx(-0.02 / 3)
    assert one["gain_vs_default_se"] == pytest.approx(math.sqrt(4e-4 / 3 / 3))
    assert got["cross-fit > 0"]["falls_back"] == 0 and got["cross-fit > 0"]["gain"] == pytest.approx(0.07 / 3)  # fmt: skip
    for same in ("cross-fit > 1.5 SE", "cross-fit > 2 SE", "held-out > 2 SE"):
        assert got[same]["gain"] == pytest.approx(0.1 / 3) and got[same]["worst_gain"] == 0
    assert got["cross-fit > 2 SE"]["gain_vs_default"] == 0


def test_the_benchmark_runs_the_real_sets_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--signals`` took one share at least, so a run for LLMRouter's split seeds paid
    for generated seeds too. With no share it runs the real sets alone: here a small set
    in LLMRouter's layout (tests/test_do_no_harm.py's keyword outcomes), one split seed,
    the hashing encoder for ``minilm-static`` (whose table a fresh clone builds first)."""
    (tmp_path / "llmrouter").mkdir()
    dataset(tmp_path / "llmrouter", "keyword", 100, 0)
    monkeypatch.setattr("routerllm.routers.outcome.DEFAULT_ENCODER", "hashing")
    out = benchmark_in_process("calibration_estimate", "--signals", "--data-dir", str(tmp_path),
                               "--datasets", "llmrouter", "--real-seeds", "0", "--targets",
                               "max_cost=0.5", "--signal-se", "1", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr[-800:]
    got = json.loads(out.stdout)
    assert sorted(got) == ["llmrouter, max_cost=0.5", "machine"]
    run = got["llmrouter, max_cost=0.5"]
    assert run["runs"] == 1 and list(run["rules"]) == [
        "held-out > 2 SE", "cross-fit > 1 SE", "cross-fit > 2 SE"]  # fmt: skip


def test_the_benchmark_with_nothing_to_run_says_so(tmp_path: Path) -> None:
    """No generated share and no real data: one line, before any work."""
    out = benchmark_in_process("calibration_estimate", "--signals", "--data-dir",
                               str(tmp_path / "none"))  # fmt: skip
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == f"no outcome data at {tmp_path / 'none'} (give --data-dir)"


def test_the_benchmark_with_shift_scores_each_way_of_choosing_the_knob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--shift`` (LLMRouter's test prompts are harder than its training ones, which
    calibration cannot see): the knob's predicted and actual quality on the held-out and
    the new prompts, and the new prompts' figures of each way of choosing the knob for a
    quality target. The calibration row is the knob's own (its held-out quality is
    calibration's, its new prompts' figures those of the router's decisions); a larger
    margin asks for no less quality."""
    (tmp_path / "llmrouter").mkdir()
    dataset(tmp_path / "llmrouter", "keyword", 100, 0)
    monkeypatch.setattr("routerllm.routers.outcome.DEFAULT_ENCODER", "hashing")
    out = benchmark_in_process("calibration_estimate", "--signals", "--data-dir", str(tmp_path),
                               "--datasets", "llmrouter", "--real-seeds", "0", "--targets",
                               "quality=0.95", "max_cost=0.5", "--shift", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr[-800:]
    got = json.loads(out.stdout)
    run = got["llmrouter, quality=0.95"]["each_run"][0]
    shift = run["shift"]
    assert shift["held_out"]["actual"] == pytest.approx(run["held_out"])
    mine = shift["options"]["calibration"]
    assert mine["quality"] == pytest.approx(run["test"]) and mine["met"] == run["test_reached"]
    assert mine["cost"] == pytest.approx(run["test_cost"])
    assert list(shift["options"]) == ["calibration", "unlabelled raw", "unlabelled",
                                      "margin 0 SE", "margin 1 SE", "margin 2 SE"]  # fmt: skip
    asked = [shift["options"][f"margin {k} SE"]["asked"] for k in (0, 1, 2)]
    assert 0.95 <= asked[0] <= asked[1] <= asked[2] <= 1
    for where in ("held_out", "test"):
        figures = shift[where]
        assert all(0 <= figures[k] <= 1 for k in ("predicted", "actual", "best_predicted"))
    budget = got["llmrouter, max_cost=0.5"]
    assert "options" not in budget["each_run"][0]["shift"]  # a budget: the shift alone
    assert budget["shift"]["test"]["actual"] == pytest.approx(budget["each_run"][0]["test"])


def test_the_shift_benchmark_chooses_on_unlabelled_predictions_with_their_bias_taken_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--shift``'s unlabelled choice, by hand (threshold rule, costs 1 and 10): the new
    prompts' predictions (cheap, dear) 0.9/0.95, 0.5/0.9, 0.3/0.9 give settings of
    predicted quality 0.5667, 0.7667, 0.9 and 0.9167 at costs 1, 4, 7 and 10. Raw, 95 %
    of the dear model's 0.9167 is 0.8708: the setting at cost 7. Where the held-out
    prompts show the cheap model predicted 0.95 and never right (the dear one 0.97 and
    always right), that bias taken off leaves only the dear model's setting."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    from calibration_estimate import unlabelled_pick

    new = np.array([[0.9, 0.95], [0.5, 0.9], [0.3, 0.9]])
    held = (np.array([[0.95, 0.97], [0.95, 0.97]]), np.array([[0.0, 1.0], [0.0, 1.0]]))
    costs = np.array([1.0, 10.0])
    raw = unlabelled_pick(held, new, costs, 0.95, ("threshold",), corrected=False)
    assert raw[1] == pytest.approx(7.0) and raw[2] == pytest.approx(0.9)
    assert unlabelled_pick(held, new, costs, 0.99, ("threshold",), corrected=False)[1] == 10.0
    corrected = unlabelled_pick(held, new, costs, 0.95, ("threshold",), corrected=True)
    assert corrected[1] == pytest.approx(10.0) and corrected[2] == pytest.approx(0.55 / 0.6)
    unbiased = (np.array([[0.9, 0.95], [0.0, 1.0]]), np.array([[0.9, 0.95], [0.0, 1.0]]))
    assert unlabelled_pick(unbiased, new, costs, 0.95, ("threshold",), corrected=True)[1] == pytest.approx(7.0)  # fmt: skip
