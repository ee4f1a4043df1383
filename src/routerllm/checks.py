"""What counts as a number in user input: numpy's numbers too, never a bool.

Shared by every module that checks an argument, an option or a stored value, so
that ``k=np.int64(5)`` is an integer and ``timeout_s=True`` is not a time anywhere.
"""

from __future__ import annotations

import math
import numbers


def is_number(v: object) -> bool:
    """A real number (int, float, numpy's), not a bool; NaN and infinities included."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def is_integer(v: object) -> bool:
    """An integer, numpy's too (not a bool)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_finite_number(v: object) -> bool:
    """A finite real number, numpy's too (not a bool)."""
    return is_number(v) and math.isfinite(v)  # type: ignore[arg-type]


def is_positive_number(v: object) -> bool:
    """A finite real number > 0 (not a bool): a time limit, a budget."""
    return is_finite_number(v) and v > 0  # type: ignore[operator]
