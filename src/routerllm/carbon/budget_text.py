"""How the budgets (``budget.py``) say lists of limits and waits, in refusals, reasons,
the report's budget table and its recommendations: one line each; their amounts are
said by ``units.amount``, as every figure for people is."""

from __future__ import annotations

from collections.abc import Sequence

WINDOW_TEXT = {"hourly": "the last 60 minutes", "daily": "the last 24 hours"}
QUANTITY_TEXT = {"co2_kg": "CO2", "cost_usd": "cost"}
#: What a refused request waits for (``CarbonBudget._retry_at``): the requests running now
#: to be logged, older requests to leave a window, or finished ones not logged yet to.
RUNNING, OLDER, FINISHED = "running", "older", "finished"


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
