"""The paired bootstrap of a run's systems against direct-heavy, on hand-made results."""

from __future__ import annotations

import numpy as np
import pytest

from routerllm.eval.humaneval_run import SystemResult
from routerllm.eval.paired import Target, against_reference
from routerllm.exceptions import RouterLLMError


def result(name: str, passed: list[bool], kwh: list[float], load_kwh: float = 0.0) -> SystemResult:
    return SystemResult(name, ["m"] * len(passed), passed, 1.0, sum(kwh), 0.0,
                        load_kwh=load_kwh, problem_kwh=kwh)  # fmt: skip


HEAVY = result("heavy", [True, True, False, True], [4.0, 4.0, 4.0, 4.0], load_kwh=2.0)


def test_a_copy_of_the_reference_differs_by_nothing_in_every_resample() -> None:
    copy = result("copy", HEAVY.passed, HEAVY.problem_kwh, load_kwh=2.0)
    a = against_reference(HEAVY, [copy], Target(energy_share=1.0), resamples=200)["copy"]
    assert a["pass@1_diff"] == 0 and a["pass@1_diff_90ci"] == [0, 0]
    assert a["energy_share"] == 1 and a["energy_share_90ci"] == pytest.approx([1, 1])
    assert a["meets_target"] and a["resamples_meeting_target"] == 1


def test_figures_by_hand_and_loading_kept_whole_in_every_resample() -> None:
    # one problem fewer solved, half the generation energy, the same load
    cheap = result("cheap", [True, False, False, True], [2.0, 2.0, 2.0, 2.0], load_kwh=2.0)
    a = against_reference(HEAVY, [cheap], Target(), resamples=500)["cheap"]
    assert a["pass@1_diff"] == -0.25
    assert a["energy_share"] == pytest.approx((8 + 2) / (16 + 2))
    # every problem costs half in every resample: only the load, kept whole, moves nothing
    assert a["energy_share_90ci"] == pytest.approx([10 / 18, 10 / 18])
    # the difference comes from one problem of four: a resample draws it 0-4 times
    lo, hi = a["pass@1_diff_90ci"]
    assert -0.75 <= lo < -0.25 < hi <= 0
    assert not a["meets_target"] and a["resamples_meeting_target"] < 0.5


def test_resamples_meeting_the_target_follow_the_draws() -> None:
    """Better on one problem, worse on another, at 60 % of the energy: a resample meets
    the target (at most 2 points lower) where it draws the better one at least as often
    as the worse one."""
    heavy = result("heavy", [True, False] + [True] * 8, [1.0] * 10)
    mixed = result("mixed", [False, True] + [True] * 8, [0.6] * 10)
    a = against_reference(heavy, [mixed], Target(), resamples=4000, seed=1)["mixed"]
    assert a["pass@1_diff"] == 0 and a["meets_target"]
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 10, (4000, 10))
    expected = ((idx == 1).sum(axis=1) >= (idx == 0).sum(axis=1)).mean()
    assert a["resamples_meeting_target"] == pytest.approx(expected)
    assert 0.5 < a["resamples_meeting_target"] < 0.8


def test_the_target_allows_exactly_its_margin() -> None:
    assert Target().met(0.700 - 0.720, 0.7)  # 2 points lower, in floating point
    assert Target().met(0.0, (0.007 * 3) / (0.01 * 3))  # 0.7000000000000001: 70 % exactly
    assert not Target().met(-0.021, 0.7) and not Target().met(0.0, 0.701)


def test_systems_scored_on_other_problems_are_refused() -> None:
    short = result("short", [True], [1.0])
    with pytest.raises(RouterLLMError, match="short was scored on 1 problems, not 4"):
        against_reference(HEAVY, [short], Target())


def test_a_reference_that_spent_nothing_has_no_energy_share() -> None:
    """direct-heavy measured at 0 kWh (CodeCarbon failed on each of its answers, counted
    as spending nothing): its share is not a number, so the run's report says none, not
    ZeroDivisionError after every answer was generated."""
    free = result("free", HEAVY.passed, [0.0] * 4)
    cheap = result("cheap", [True, False, False, True], [2.0] * 4)
    a = against_reference(free, [cheap], Target(), resamples=200)["cheap"]
    assert a["pass@1_diff"] == -0.25 and a["pass@1_diff_90ci"][0] <= -0.25
    assert a["energy_share"] is None and a["energy_share_90ci"] is None
    assert a["meets_target"] is None and a["resamples_meeting_target"] is None


def test_resamples_where_the_reference_spent_nothing_have_no_share() -> None:
    """A resample drawing only problems the reference measured at 0 kWh (and no load) has
    no energy share: it is left out of the interval and does not meet the target,
    never NaN or inf in results.json."""
    heavy = result("heavy", [True, True], [0.0, 4.0])
    same = result("same", [True, True], [0.0, 2.0])
    a = against_reference(heavy, [same], Target(), resamples=400, seed=3)["same"]
    idx = np.random.default_rng(3).integers(0, 2, (400, 2))
    shareless = (idx == 0).all(axis=1)
    assert 0 < shareless.mean() < 0.5  # some resamples draw problem 0 alone
    assert a["energy_share"] == 0.5 and a["energy_share_90ci"] == [0.5, 0.5]
    assert a["resamples_meeting_target"] == pytest.approx(1 - shareless.mean())


def test_a_system_that_spent_nothing_has_no_share_and_does_not_meet_the_target() -> None:
    """A system measured at 0 kWh (CodeCarbon failed on each of its answers, counted as
    spending nothing) against a measured direct-heavy: its share is not measured, not
    0 %, and it does not 'meet' the energy target by failing to be measured."""
    unmeasured = result("unmeasured", HEAVY.passed, [0.0] * 4)
    a = against_reference(HEAVY, [unmeasured], Target(), resamples=200)["unmeasured"]
    assert a["pass@1_diff"] == 0 and a["pass@1_diff_90ci"] == [0, 0]
    assert a["energy_share"] is None and a["energy_share_90ci"] is None
    assert a["meets_target"] is None and a["resamples_meeting_target"] is None


def _percentile(sorted_values: list[float], q: float) -> float:
    """The q-th quantile by linear interpolation between order statistics (Hyndman and
    Fan's type 7, numpy's default), written out by hand."""
    h = (len(sorted_values) - 1) * q
    lo = int(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


@pytest.mark.parametrize("seed", [0, 7, 42])
def test_intervals_match_an_independent_paired_bootstrap(seed: int) -> None:
    """Random results, the interval recomputed problem by problem in plain Python: the
    same resampled problems for both systems, the 5th and 95th percentiles."""
    data = np.random.default_rng(100 + seed)
    n, resamples = int(data.integers(3, 30)), 300
    ref = result(
        "ref", [bool(v) for v in data.random(n) < 0.7], data.uniform(1, 3, n).tolist(), load_kwh=1.5
    )
    other = result(
        "o", [bool(v) for v in data.random(n) < 0.5], data.uniform(0.5, 2, n).tolist(), load_kwh=0.5
    )
    a = against_reference(ref, [other], Target(), resamples=resamples, seed=seed)["o"]
    draws = np.random.default_rng(seed).integers(0, n, (resamples, n)).tolist()
    diffs, shares = [], []
    for problems in draws:
        diffs.append(sum(other.passed[i] - ref.passed[i] for i in problems) / n)
        spent = sum(other.problem_kwh[i] for i in problems) + other.load_kwh
        shares.append(spent / (sum(ref.problem_kwh[i] for i in problems) + ref.load_kwh))
    diffs.sort()
    shares.sort()
    assert a["pass@1_diff_90ci"] == pytest.approx(
        [_percentile(diffs, 0.05), _percentile(diffs, 0.95)]
    )
    assert a["energy_share_90ci"] == pytest.approx(
        [_percentile(shares, 0.05), _percentile(shares, 0.95)]
    )
    assert a["pass@1_diff"] == pytest.approx((sum(other.passed) - sum(ref.passed)) / n)
    # the same seed gives the same figures
    assert against_reference(ref, [other], Target(), resamples=resamples, seed=seed)["o"] == a


def test_one_problem_gives_intervals_at_the_figures() -> None:
    heavy = result("heavy", [True], [2.0])
    cheap = result("cheap", [False], [1.0])
    a = against_reference(heavy, [cheap], Target(), resamples=50)["cheap"]
    assert a["pass@1_diff"] == -1 and a["pass@1_diff_90ci"] == [-1, -1]
    assert a["energy_share"] == 0.5 and a["energy_share_90ci"] == [0.5, 0.5]
    assert a["meets_target"] is False and a["resamples_meeting_target"] == 0


def test_routing_energy_is_kept_whole_in_every_resample_like_loading() -> None:
    """A router's inference (router_kwh, spent on the whole run) is part of the fixed
    energy a resample keeps as it is, with the load: 4 problems at 1 kWh, 2 kWh of
    routing, no load, against the reference's 16 + 2 kWh load: (4 + 2) / 18 in every
    resample, not 4 / 18 (routing dropped) nor 4 / 16."""
    routed = result("routed", HEAVY.passed, [1.0] * 4)
    routed.router_kwh = 2.0
    a = against_reference(HEAVY, [routed], Target(), resamples=100)["routed"]
    assert a["energy_share"] == pytest.approx(6 / 18)
    assert a["energy_share_90ci"] == pytest.approx([6 / 18, 6 / 18])


def test_a_system_with_per_problem_energy_of_another_length_is_refused() -> None:
    """Scored on the 4 problems, with the energy of 3: refused naming what is short, not
    an IndexError half-way through the resamples (nor "scored on 4 problems, not 4")."""
    odd = result("odd", HEAVY.passed, [1.0] * 3)
    with pytest.raises(RouterLLMError, match="odd has the energy of 3 problems, not 4"):
        against_reference(HEAVY, [odd], Target())


def test_fewer_resamples_than_problems_draw_from_every_problem_and_interpolate() -> None:
    """5 resamples of 12 problems: every resample draws 12 of the 12 problems (not of
    the first 5), and the interval's ends interpolate between the two lowest and the two
    highest of the 5 differences (h = 4 x 0.05 = 0.2), not the nearest one."""
    passed = [True] * 6 + [False] * 6
    ref = result("ref", passed, [1.0] * 12)
    other = result("o", passed[::-1], [1.0] * 12)  # solves exactly the other six
    a = against_reference(ref, [other], Target(), resamples=5, seed=0)["o"]
    draws = np.random.default_rng(0).integers(0, 12, (5, 12)).tolist()
    diffs = sorted(sum(other.passed[i] - ref.passed[i] for i in row) / 12 for row in draws)
    assert diffs == pytest.approx([-0.5, 0, 1 / 6, 1 / 3, 2 / 3])  # seed 0's five draws
    # -0.5 + 0.2 x (0 - -0.5), and 1/3 + 0.8 x (2/3 - 1/3)
    assert a["pass@1_diff_90ci"] == pytest.approx([-0.4, 0.6])


def test_as_good_as_the_reference_at_too_much_energy_does_not_meet_the_target() -> None:
    """The same answers at 80 % of the energy: not 2 points lower, but over 70 % of the
    energy, in the run and in every resample (each problem costs 0.8 of the reference's)."""
    ref = result("ref", HEAVY.passed, [1.0] * 4)
    dear = result("dear", HEAVY.passed, [0.8] * 4)
    a = against_reference(ref, [dear], Target(), resamples=100)["dear"]
    assert a["pass@1_diff"] == 0 and a["energy_share"] == pytest.approx(0.8)
    assert a["meets_target"] is False and a["resamples_meeting_target"] == 0
