"""How RouterLLM says energy, CO2 and dollars to people, in one place: the budgets'
refusals and reasons, ``report``'s text, ``route``'s and ``demo``'s figures. To 3
significant digits, in the largest unit that keeps the figure at 1 or more, so that a
tiny model's request (1e-8 to 1e-5 kg CO2, 1e-8 to 1e-5 kWh) reads "320 \N{MICRO SIGN}g"
and "860 \N{MICRO SIGN}Wh", not "0.0003 g" or "8.600e-07 kWh", and never as 0; dollars
from $1 up in cents ("$1,234.50"), as spend is tracked (the JSON outputs keep the raw
numbers, in kWh, kg and dollars)."""

from __future__ import annotations

import math


def amount(quantity: str, value: float) -> str:
    """``value`` of ``quantity`` (``co2_kg`` or ``cost_usd``) for people: CO2 in the
    largest of kg, g, mg and \N{MICRO SIGN}g that keeps the figure at 1 or more ("320
    \N{MICRO SIGN}g CO2", a request on the tiny ladder), 1,000 and more in full ("1,230 kg
    CO2"); US dollars below $1 in decimals ("$0.0000032"), from $1 up in cents
    ("$1,234.50")."""
    return f"{co2(value)} CO2" if quantity == "co2_kg" else dollars(value)


def co2(kg: float) -> str:
    """``kg`` of CO2 in kg, g, mg or \N{MICRO SIGN}g ("320 \N{MICRO SIGN}g"), 0 as "0 g";
    an overflowed prediction (inf, nan) in the config's unit, kg."""
    return _scaled(kg, _CO2_UNITS, "g")


def energy(kwh: float) -> str:
    """``kwh`` in kWh, Wh, mWh or \N{MICRO SIGN}Wh ("860 \N{MICRO SIGN}Wh"), 0 as "0 Wh"."""
    return _scaled(kwh, _ENERGY_UNITS, "Wh")


def dollars(usd: float) -> str:
    """``usd`` from $1 up in cents with thousands separators ("$5.00", "$1,234.50"), as
    spend is tracked (3 digits said $1,234.50 "$1,230" and $12.345 "$12.3"); below $1 to
    3 significant digits ("$0.0312", "$0.0000032"): a tiny model's request costs
    nanodollars, which cents would say as "$0.00". 0 is "$0"; from 1e15 on (a limit set
    huge to mean "none") "$1e+15" as ``_digits`` says, as are inf and nan."""
    usd += 0.0  # -0.0 + 0.0 is 0.0: "$0", not "$-0"
    # decided on the rounded figure, as the units are: 3 digits of $0.9995 are $1, so it
    # is "$1.00", not "$1" nor "$0.9995"
    if abs(float(f"{usd:.3g}")) >= 1 and abs(usd) < _IN_FULL_BELOW:
        return f"${_cents(usd)}"
    return f"${_digits(usd)}"


def _cents(usd: float) -> str:
    """``usd`` to the cent, half up on the figure as written (``repr``, what ``--json`` and
    the config show): $2.675 is "$2.68", though its float, 2.67499999..., is "2.67" to
    Python's ``format``."""
    from decimal import ROUND_HALF_UP, Decimal  # 9 ms, only where a dollar is written

    return f"{Decimal(repr(usd)).quantize(Decimal('0.01'), ROUND_HALF_UP):,}"


def distance(km: float) -> str:
    """``km`` in km, m or mm ("1.31 mm"): the report's CO2 as a distance by car, to 3
    significant digits as the CO2 it comes from, not "1.31e-06 km"."""
    return _scaled(km, _DISTANCE_UNITS, "km")


def count(value: float) -> str:
    """A count that need not be whole, to 3 significant digits ("0.0000389", "13,600"):
    the report's smartphone charges, not "3.89e-05" or "13613.1388"."""
    return _digits(value + 0.0)


def share(fraction: float, decimals: int) -> str:
    """``fraction`` as a percentage with ``decimals`` decimals ("12.34%"), but a positive
    share too small for them as "<0.01%" rather than "0.00%": the report's share of CO2
    a routing took, of a budget a window spent, would read as nothing spent."""
    text = f"{fraction:.{decimals}%}"
    if fraction > 0 and float(text[:-1]) == 0:  # decided on the rounded figure, as _scaled
        return f"<{10.0**-decimals:.{decimals}f}%"
    return text


#: CO2's units, per kg, largest first. A tiny model's request spends 1e-8 to 1e-5 kg:
#: 10 \N{MICRO SIGN}g to 10 mg, not "1e-05 g" to "0.01 g"; CodeCarbon's figures read so too.
_CO2_UNITS = (("kg", 1.0), ("g", 1e3), ("mg", 1e6), ("\N{MICRO SIGN}g", 1e9))
#: Energy's, per kWh: the same steps, so a request's energy and CO2 read alike (a routing
#: of 6e-8 kWh is "60 \N{MICRO SIGN}Wh", a model's loading of 3e-4 kWh "300 mWh").
_ENERGY_UNITS = (("kWh", 1.0), ("Wh", 1e3), ("mWh", 1e6), ("\N{MICRO SIGN}Wh", 1e9))
#: A distance's, per km: a tiny request's CO2 drives a car a few mm.
_DISTANCE_UNITS = (("km", 1.0), ("m", 1e3), ("mm", 1e6))


def _scaled(value: float, units: tuple[tuple[str, float], ...], zero: str) -> str:
    value += 0.0  # -0.0 + 0.0 is 0.0: "0 g", not "-0 g"
    if value == 0:
        return f"0 {zero}"
    if not math.isfinite(value):
        return f"{value} {units[0][0]}"
    # decided on the rounded figure: 999.6 g, 3 digits of it, is 1 kg ("1e+03 g");
    # below the smallest unit (a limit goes down to a nanogram) in decimals of it
    unit, per = next(((u, k) for u, k in units if abs(float(f"{value * k:.3g}")) >= 1), units[-1])
    return f"{_digits(value * per, _IN_DECIMALS_FROM * per)} {unit}"


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


#: Where amounts stop being written out in full (15 digits: "999,000,000,000,000 kg",
#: "$999,000,000,000,000.00").
_IN_FULL_BELOW = 1e15
#: Where small amounts start being written in decimals: a thousandth of the smallest limit
#: a budget may set (1e-12). Below it only rounding is left (what a window has left, its
#: sum moved by adding and taking away), said with its exponent, not 17 zeros.
_IN_DECIMALS_FROM = 1e-15
