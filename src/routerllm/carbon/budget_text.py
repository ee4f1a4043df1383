"""How the budgets (``budget.py``) say amounts, lists of limits and waits, in refusals,
reasons, the report's budget table and its recommendations: one line each."""

from __future__ import annotations

import math
from collections.abc import Sequence

WINDOW_TEXT = {"hourly": "the last 60 minutes", "daily": "the last 24 hours"}
QUANTITY_TEXT = {"co2_kg": "CO2", "cost_usd": "cost"}
#: What a refused request waits for (``CarbonBudget._retry_at``): the requests running now
#: to be logged, older requests to leave a window, or finished ones not logged yet to.
RUNNING, OLDER, FINISHED = "running", "older", "finished"


def amount(quantity: str, value: float) -> str:
    """``value`` of ``quantity`` for people, to 3 significant digits: CO2 in the largest of
    kg, g, mg and \N{MICRO SIGN}g that keeps the figure at 1 or more ("320 \N{MICRO SIGN}g CO2",
    a request on the tiny ladder), US dollars below a cent in decimals ("$0.0000032"), and
    1,000 and more in full ("1,230 kg CO2", "$1,230")."""
    value += 0.0  # -0.0 + 0.0 is 0.0: "0 g CO2", not "-0 g CO2"
    if quantity != "co2_kg":
        return f"${_digits(value)}"
    if value == 0:
        return "0 g CO2"
    if not math.isfinite(value):  # an overflowed prediction: in the config's unit, kg
        return f"{value} kg CO2"
    # decided on the rounded figure: 999.6 g, 3 digits of it, is 1 kg ("1e+03 g CO2");
    # below a microgram (limits go down to a nanogram) in decimals of one
    unit, per_kg = next(
        ((u, k) for u, k in _CO2_UNITS if abs(float(f"{value * k:.3g}")) >= 1), _CO2_UNITS[-1]
    )
    return f"{_digits(value * per_kg, _IN_DECIMALS_FROM * per_kg)} {unit} CO2"


#: CO2's units, per kg, largest first. A tiny model's request spends 1e-8 to 1e-5 kg:
#: 10 \N{MICRO SIGN}g to 10 mg, not "1e-05 g" to "0.01 g"; CodeCarbon's figures read so too.
_CO2_UNITS = (("kg", 1.0), ("g", 1e3), ("mg", 1e6), ("\N{MICRO SIGN}g", 1e9))


def _digits(value: float, decimals_from: float | None = None) -> str:
    """``value`` to 3 significant digits: below 1 in decimals ("0.0000032", not "3.2e-06":
    dollars as the config writes them), from 1,000 on in full with thousands separators
    (3 digits of 1234.5 read "1.23e+03" in refusals, the report and its advice), up to
    ``_IN_FULL_BELOW``: a limit set huge to mean "none" (1e300) stays "1e+300", not a
    301-digit figure across the report's budget table. Below ``decimals_from`` (in
    ``value``'s unit; ``_IN_DECIMALS_FROM`` of a kg or a dollar) it keeps its exponent."""
    decimals_from = _IN_DECIMALS_FROM if decimals_from is None else decimals_from
    rounded = float(text := f"{value:.3g}")
    if 1000 <= abs(rounded) < _IN_FULL_BELOW:
        return f"{rounded:,.0f}"
    if "e" in text and decimals_from <= abs(rounded) < 1:
        decimals = 2 - math.floor(math.log10(abs(rounded)))
        return f"{rounded:.{decimals}f}".rstrip("0")
    return text


#: Where amounts stop being written out in full (15 digits: "$999,000,000,000,000").
_IN_FULL_BELOW = 1e15
#: Where small amounts start being written in decimals: a thousandth of the smallest limit
#: a budget may set (1e-12). Below it only rounding is left (what a window has left, its
#: sum moved by adding and taking away), said with its exponent, not 17 zeros.
_IN_DECIMALS_FROM = 1e-15


def listed(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def utc_text(when: str) -> str:
    """A log timestamp for people: to the second, in UTC."""
    return f"{when[:19].replace('T', ' ')} UTC"


def waiting(wait: str, when: str, windows: int, older: str) -> str:
    """What a refused request waits for (``wait``, until ``when``) in ``windows`` windows,
    after "once": ``older`` ("older requests") names the logged ones."""
    if wait == RUNNING:  # they end soon, and then the windows hold what they spent
        return "the requests running now are logged"
    # a finished request is not logged yet, so it leaves a window a window's width from
    # now at the earliest: this said "older ... leave the window, from" now
    who = "the requests running now are logged and leave" if wait == FINISHED else f"{older} leave"  # fmt: skip
    return f"{who} the window{'s' if windows > 1 else ''}, from {utc_text(when)}"
