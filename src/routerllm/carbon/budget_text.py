"""How the budgets (``budget.py``) say amounts, lists of limits and waits, in refusals,
reasons, the report's budget table and its recommendations: one line each."""

from __future__ import annotations

from collections.abc import Sequence

WINDOW_TEXT = {"hourly": "the last 60 minutes", "daily": "the last 24 hours"}
QUANTITY_TEXT = {"co2_kg": "CO2", "cost_usd": "cost"}
#: What a refused request waits for (``CarbonBudget._retry_at``): the requests running now
#: to be logged, older requests to leave a window, or finished ones not logged yet to.
RUNNING, OLDER, FINISHED = "running", "older", "finished"


def amount(quantity: str, value: float) -> str:
    """``value`` of ``quantity`` for people: grams of CO2, or US dollars, to 3 digits
    (1,000 and more in full: "1,230 kg CO2", "$1,230")."""
    if quantity != "co2_kg":
        return f"${_digits(value)}"
    grams = f"{value * 1000:.3g}"
    # decided on the rounded grams: 999.6 g, 3 digits of it, read "1e+03 g CO2"
    return f"{_digits(value)} kg CO2" if abs(float(grams)) >= 1000 else f"{grams} g CO2"


def _digits(value: float) -> str:
    """``value`` to 3 significant digits; from 1,000 on in full with thousands separators
    (3 digits of 1234.5 read "1.23e+03" in refusals, the report and its advice), up to
    ``_IN_FULL_BELOW``: a limit set huge to mean "none" (1e300) stays "1e+300", not a
    301-digit figure across the report's budget table."""
    rounded = float(f"{value:.3g}")
    return f"{rounded:,.0f}" if 1000 <= abs(rounded) < _IN_FULL_BELOW else f"{value:.3g}"


#: Where amounts stop being written out in full (15 digits: "$999,000,000,000,000").
_IN_FULL_BELOW = 1e15


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
