"""The quality router's selection criterion, on numbers worked out by hand: the
one-standard-error rule that keeps plain logistic regression, and the AIQ anchor (the
cheapest model, the best of equally cheap ones)."""

from __future__ import annotations

import numpy as np
import pytest

from routerllm.routers.base import Candidate
from routerllm.routers.quality import QualityRouter, ahead_by_one_se


@pytest.mark.parametrize(
    ("leads", "ahead"),
    [
        # mean 0.15; sample sd sqrt((0.0225 x 2 + 0.0025 + 0.1225) / 3) = 0.2380, its
        # standard error over sqrt(4) folds 0.1190: ahead (though not by one sd).
        ([0.0, 0.0, 0.1, 0.5], True),
        # mean 0.1; sd sqrt((0.04 + 0.01 x 2 + 0.16) / 3) = 0.2708, standard error
        # 0.1354: not ahead (though by more than sd / 4 = 0.0677).
        ([-0.1, 0.0, 0.0, 0.5], False),
        ([0.2, 0.2], True),  # the same lead on every fold: a standard error of 0
        ([0.0, 0.0], False),  # no lead
        ([0.3], False),  # one fold: no standard error to judge it by
    ],
)
def test_a_lead_is_clear_beyond_one_standard_error_of_its_mean(
    leads: list[float], ahead: bool
) -> None:
    assert ahead_by_one_se(np.array(leads)) is ahead


def test_the_aiq_anchor_is_the_best_of_the_equally_cheapest_models() -> None:
    """a and b cost 1, c 2; b solves the first of two prompts, c both, a neither. The
    predictions route to a or c only: (1, 0) and (2, 1). Anchored at b, (1, 0.5), the
    curve runs from 0.5 to 1 over [1, 2]: AIQ 0.75 (anchored at a it would be 0.5)."""
    router = QualityRouter([Candidate("a", 1.0), Candidate("b", 1.0), Candidate("c", 2.0)])
    Y = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    predicted = np.array([[0.5, 0.0, 0.9], [0.5, 0.0, 0.9]])
    assert router.routing_aiq(predicted, Y) == pytest.approx(0.75)
    # The other order of the columns: the anchor does not depend on it.
    assert router.routing_aiq(predicted[:, [1, 0, 2]], Y[:, [1, 0, 2]]) == pytest.approx(0.75)
