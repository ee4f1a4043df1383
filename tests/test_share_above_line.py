"""``share_above_line`` (issue #4's "routing beats random mixing"): cases the
hand-computed ones in test_routing_metrics.py leave open, from a mutation sweep. That
file's line starts at cost 0 and quality 0 and its one crossing is symmetric, so the
line's start, the range's start and which end of a piece is above went unchecked."""

from __future__ import annotations

import pytest

from routerllm.eval.curves import OperatingPoint as P
from routerllm.eval.curves import share_above_line

# medium at cost 2 with quality 0.4, heavy at cost 4 with 0.8: line(c) = 0.4 + 0.2 (c - 2)
LINE = (P(2.0, 0.4), P(4.0, 0.8))


def test_a_curve_that_rises_across_a_line_not_from_the_origin() -> None:
    # curve 0.3 at 2 to 1.0 at 4: q(c) = 0.3 + 0.35 (c - 2); q - line = -0.1 + 0.15 (c - 2),
    # 0 at c = 2 + 2/3: above over (2.667, 4], 4/3 of the range's 2 = 2/3
    assert share_above_line([P(2.0, 0.3), P(4.0, 1.0)], *LINE) == pytest.approx(2 / 3)


def test_a_curve_that_falls_below_a_line_not_from_the_origin() -> None:
    # curve 0.6 at 2 to 0.7 at 4: q - line = 0.2 - 0.15 (c - 2), 0 at c = 2 + 4/3: above
    # over [2, 3.333), 4/3 of 2 = 2/3
    assert share_above_line([P(2.0, 0.6), P(4.0, 0.7)], *LINE) == pytest.approx(2 / 3)


def test_a_curve_that_starts_inside_the_range_is_measured_from_the_ranges_start() -> None:
    # one point at (3, 0.7): undefined on [2, 3), flat 0.7 from 3; line(3) = 0.6 and
    # line(4) = 0.8, 0.7 - line = 0.1 - 0.2 (c - 3), 0 at 3.5: above over [3, 3.5), 0.5
    # of the range's 2 = 1/4
    assert share_above_line([P(3.0, 0.7)], *LINE) == pytest.approx(0.25)


def test_the_mix_of_the_two_models_is_not_above_their_line_whatever_the_rounding() -> None:
    # Medium (3.3, 0.3), heavy (7.9, 0.5) and their half-and-half mix (5.6, 0.4), the
    # three on the line: the hull read at 7.9 and the line's formula there differ by a
    # rounding (a few 1e-17), which without the 1e-12 slack read as above over the whole
    # range (1.0)
    medium, heavy = P(3.3, 0.3), P(7.9, 0.5)
    mix = P(3.3 / 2 + 7.9 / 2, 0.3 / 2 + 0.5 / 2)
    assert share_above_line([medium, mix, heavy], medium, heavy) == 0.0


def test_a_curve_exactly_the_slack_above_the_line_is_not_above_it() -> None:
    # a flat line at 0 and a flat curve at 1e-12: 1e-12 - 0 - 1e-12 = 0, not above
    assert share_above_line([P(0.0, 1e-12)], P(0.0, 0.0), P(1.0, 0.0)) == 0.0
