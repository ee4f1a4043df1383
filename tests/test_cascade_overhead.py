"""``gate_overhead``: what each cross-validation fold's gate of the gated cascade budgets
a problem besides generating, from its training problems' checks only; hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from routerllm.eval.cascade_overhead import Checks, FirstAnswers, gate_overhead
from routerllm.exceptions import RouterLLMError


def test_each_fold_budgets_the_other_blocks_checks_and_reads_a_failed_one_at_its_training_power() -> None:  # fmt: skip
    # Three folds of 2, 2 and 4 problems, and 2 problems that only train (-1). CodeCarbon
    # failed on fold 1's checks (6 s, 0 kWh stored) and on one of m's answers in fold 1.
    blocks = {
        0: Checks(2, 4.0, 2e-6, 1e-6, True),
        1: Checks(2, 6.0, 0.0, 0.0, False),
        2: Checks(4, 8.0, 8e-6, 4e-6, True),
        -1: Checks(2, 2.0, 1e-6, 5e-7, True),
    }
    answers = FirstAnswers(
        np.array([0, 0, 1, 1, 2, 2, 2, 2, -1, -1]),
        np.array([1e-6, 1e-6, 2e-6, 0.0, 3e-6, 3e-6, 3e-6, 3e-6, 4e-6, 4e-6]),
        np.array([1.0, 1.0, 1.0, 5.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]),
        np.array([True, True, True, False, True, True, True, True, True, True]),
    )
    out = gate_overhead("m", blocks, (10.0, 4e-6, True), answers, 3)
    load = 4e-6 / 8  # loading m once, over the 8 tested problems
    # fold 0: the checks of folds 1 and 2 and of -1 over their 8 problems, fold 1's 6 s at
    # m's measured power on those problems (folds 1 and 2, and -1): 22e-6 kWh in 9 s
    fold0 = (8e-6 + 1e-6 + 6.0 * 22e-6 / 9.0) / 8 + load
    # fold 1: those of folds 0 and 2 and of -1, all measured, over their 8 problems
    fold1 = (2e-6 + 8e-6 + 1e-6) / 8 + load
    # fold 2: those of folds 0 and 1 and of -1 over 6; m's power on folds 0, 1 and -1:
    # 12e-6 kWh in 7 s
    fold2 = (2e-6 + 1e-6 + 6.0 * 12e-6 / 7.0) / 6 + load
    assert out.budgeted_kwh == pytest.approx([fold0, fold1, fold2], rel=1e-12)
    assert out.measured_kwh is None and out.unmeasured == ["the checks"]


def test_an_unmeasured_load_is_budgeted_at_each_folds_training_power_and_not_given_as_measured() -> None:  # fmt: skip
    blocks = {0: Checks(1, 1.0, 3e-6, 0.0, True), 1: Checks(3, 3.0, 6e-6, 0.0, True)}
    answers = FirstAnswers(
        np.array([0, 1, 1, 1]), np.array([2e-6, 1e-6, 1e-6, 1e-6]), np.ones(4), np.ones(4, bool)
    )
    out = gate_overhead("m", blocks, (4.0, 0.0, False), answers, 2)
    # fold 0: fold 1's checks over its 3 problems, and the 4 s load at m's power on fold 1
    # (1e-6 kWh a second) over the 4 tested problems; fold 1: the other way round (2e-6)
    assert out.budgeted_kwh == pytest.approx([6e-6 / 3 + 4e-6 / 4, 3e-6 / 1 + 8e-6 / 4], rel=1e-12)
    assert out.measured_kwh is None and out.unmeasured == ["loading m"]
    # measured: every fold's checks and the load over the tested problems
    out = gate_overhead("m", blocks, (4.0, 2e-6, True), answers, 2)
    assert out.budgeted_kwh == pytest.approx([6e-6 / 3 + 2e-6 / 4, 3e-6 + 2e-6 / 4], rel=1e-12)
    assert out.measured_kwh == pytest.approx((3e-6 + 6e-6 + 2e-6) / 4, rel=1e-12)
    assert out.unmeasured == []
    # no load stored (a remote model)
    out = gate_overhead("m", blocks, None, answers, 2)
    assert out.budgeted_kwh == pytest.approx([2e-6, 3e-6], rel=1e-12)
    assert out.measured_kwh == pytest.approx(9e-6 / 4, rel=1e-12)


def test_a_fold_without_training_problems_is_refused() -> None:
    answers = FirstAnswers(np.zeros(2, int), np.ones(2), np.ones(2), np.ones(2, bool))
    with pytest.raises(RouterLLMError, match="fold 0 of the gated cascade has no training problems"):  # fmt: skip
        gate_overhead("m", {0: Checks(2, 1.0, 1e-6, 0.0, True)}, None, answers, 1)
