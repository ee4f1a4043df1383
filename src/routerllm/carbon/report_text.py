"""A report (``carbon.report.Report``) as the text ``routerllm report`` and the demo
print; ``--json`` prints ``Report.as_dict`` instead."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any

from routerllm.carbon.units import co2, count, distance, dollars, energy, share


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is 1 ("1 request", "3 requests")."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def fixed(value: float, decimals: int) -> str:
    """``value`` with ``decimals`` decimals, or in scientific notation where those would
    show a value that is not zero as 0 (a routing of 1 ms at 2 decimals: "1.00e-03"); the
    energy, CO2 and dollars people read are said by ``units``."""
    if value and abs(value) < 0.5 * 10**-decimals:
        return f"{value:.2e}"
    return f"{value:.{decimals}f}"


#: What a request or a total logged with carbon tracking off (method ``none``) says
#: instead of its energy and CO2: not 0 g, which reads as measured.
NOT_MEASURED_TEXT = "energy and CO2 not measured (carbon tracking off)"


def not_measured_text(methods: Iterable[str]) -> str:
    """``NOT_MEASURED_TEXT`` for a total none of whose parts were measured, saying why:
    carbon tracking off, CodeCarbon failing (``codecarbon:failed``), or both."""
    from routerllm.carbon.meter import CODECARBON_FAILED, NOT_MEASURED

    kinds = set(methods)
    why = [w for m, w in ((NOT_MEASURED, "carbon tracking off"), (CODECARBON_FAILED, "CodeCarbon failed")) if m in kinds]  # fmt: skip
    return f"energy and CO2 not measured ({'; '.join(why)})" if why else NOT_MEASURED_TEXT


def _columns(rep: Any, kind: str, name: str, row: Any, widths: tuple[int, int]) -> str:
    """A row's energy and CO2 columns (``units``: "860 \N{MICRO SIGN}Wh", "320 \N{MICRO SIGN}g"), or
    "not measured" across both where the report says its group was not measured
    (``Report.measured``)."""
    if not rep.measured(kind, name):
        return f"{'not measured':>{sum(widths)}}"
    # a space of its own: "100,000 kg" and more is wider than the column
    return f"{energy(row.energy_kwh):>{widths[0]}} {co2(row.co2_kg):>{widths[1] - 1}}"


def less(fraction: float, what: str) -> str:
    """``0.4`` -> "40% less CO2", ``-0.2`` -> "20% more CO2" (routing can cost more);
    a difference that rounds to 0% is "about as much CO2", not "0% more CO2", and a
    saving short of all that rounds to 100% is "over 99% less CO2", not "100% less"."""
    if f"{abs(fraction):.0%}" == "0%":
        return f"about as much {what}"
    if 0 < fraction < 1 and f"{fraction:.0%}" == "100%":
        return f"over 99% less {what}"
    return f"{fraction:.0%} less {what}" if fraction >= 0 else f"{-fraction:.0%} more {what}"


def totals_lines(rep: Any) -> list[str]:
    """Totals, per model, feedback and per component: what the demo shows of its runs."""
    t, eq = rep.totals, rep.equivalences
    measured = rep.measured()
    spent = (
        f"energy {energy(t.energy_kwh)}  CO2 {co2(t.co2_kg)}"
        if measured
        else not_measured_text(rep.methods)
    )
    # a cost priced by an energy not measured is not known: its 0 would read as measured
    cost = f"cost {dollars(t.cost_usd)}" if rep.cost_known() else "cost not measured"
    lines = [
        f"requests {t.requests}{outcome_counts_text(t, ' ')}  tokens {t.prompt_tokens} in / {t.completion_tokens} out  "
        f"{spent}  {cost}  time {fixed(t.latency_s, 1)} s",
        *refused_lines(rep.refused),
        f"carbon method: {', '.join(rep.methods) or 'none'}",
        *grid_lines(rep),
        *estimated_usage_lines(rep.estimated_usage),
        *unknown_usage_lines(rep.unknown_usage),
        *no_figures_lines(rep.no_energy_figures),
        *contended_lines(rep),
        f"equivalent to {distance(eq['km_by_car'])} by car, "
        f"{count(eq['smartphone_charges'])} smartphone charges (US EPA factors)"
        if measured
        else "no equivalences: CO2 not measured",
        "",
        f"{'per model':<26}{'requests':>9}{'out tok':>9}{'energy':>12}{'CO2':>10}{'time s':>9}",
    ]
    for name, m in rep.by_model.items():  # a space before each column: a large one is wider
        lines.append(
            f"{name:<26}{m.requests:>9} {m.completion_tokens:>8}"
            # a space of its own: a million seconds or more is wider than the column
            f"{_columns(rep, 'model', name, m, (12, 10))} {fixed(m.latency_s, 1):>8}"
            + outcome_counts_text(m, "  ")
        )
    if rep.not_in_config:  # a config changed under a log kept across restarts
        lines.append(
            f"logged under models the config no longer has: {', '.join(rep.not_in_config)} "
            f"(counted here and by the budgets as logged; no model's predictor learns from them)"
        )
    if rep.feedback:  # scores given to logged answers (RouterLLM.feedback)
        lines += ["", f"{'feedback (scores 0-1)':<26}{'scored':>9}{'mean':>9}"]
        for name, f in rep.feedback.items():
            lines.append(f"{name:<26}{f['count']:>9}{f['mean_score']:>9.3f}")
    lines += [
        "",
        f"{'per component':<26}{'':>9}{'time s':>9}{'energy':>12}{'CO2':>11}{'share':>8}",
    ]
    total_co2 = rep.totals.co2_kg or 1.0
    for name, c in rep.by_component.items():
        figures = (
            f"{energy(c.energy_kwh):>12}{co2(c.co2_kg):>11}{share(c.co2_kg / total_co2, 2):>8}"
            if rep.measured("component", name)
            else f"{'not measured':>31}"
        )
        lines.append(f"{name:<26}{'':>9}{fixed(c.duration_s, 2):>9}{figures}")
    return lines


def outcome_counts_text(totals: Any, space: str) -> str:
    """Of a group's requests (``Totals``), after ``space``, those that ended without a
    whole answer (" (2 failed, 1 cancelled)": no model answered; stopped half-way), then
    the answers cut at their token limit and those from the answer cache (" (3 cut at the
    token limit, 4 from the cache)"); "" where none was any of these."""
    said = [f"{n} {what}" for n, what in ((totals.failed, "failed"), (totals.cancelled, "cancelled"), (totals.cut, "cut at the token limit"), (totals.cached, "from the cache")) if n]  # fmt: skip
    return f"{space}({', '.join(said)})" if said else ""


def refused_lines(refused: Any) -> list[str]:
    """The requests the budgets refused once routed (``RefusedTotals``), where any: their
    routing was spent, counted apart from the requests above."""
    if not refused.requests:
        return []
    spent = f"energy {energy(refused.energy_kwh)}  CO2 {co2(refused.co2_kg)}" if refused.measured else "energy not measured"  # fmt: skip
    # a cost priced by an energy not measured is not known, as the totals line says
    cost = f"cost {dollars(refused.cost_usd)}" if refused.cost_known else "cost not measured"
    return [
        f"refused by the budgets once routed: {counted(refused.requests, 'request')}, their "
        f"routing spent {spent}  {cost} (not in the figures above)"
    ]


def grid_lines(rep: Any) -> list[str]:
    """The grid the CO2 was computed for: one line where the requests were all of one,
    the totals of each where they were of several (the totals above mix them)."""
    grids = getattr(rep, "by_grid", {})
    if len(grids) <= 1:
        return [f"grid: {name}" for name in grids]
    lines = [
        f"these totals mix {len(grids)} grids, each request's CO2 its own grid's:",
        f"{'  per grid':<26}{'requests':>9}{'out tok':>9}{'energy':>12}{'CO2':>10}",
    ]
    for name, g in grids.items():
        lines.append(
            f"  {name:<24}{g.requests:>9} {g.completion_tokens:>8}"
            f"{_columns(rep, 'grid', name, g, (12, 10))}"
        )
    return lines


def _requests_of(counts: dict[str, int]) -> str:
    """ "N request(s) (model k, ...)" of per-model request counts."""
    n = sum(counts.values())
    per_model = ", ".join(f"{m} {k}" for m, k in counts.items())
    return f"{n} request{'s' if n > 1 else ''} ({per_model})"


def estimated_usage_lines(estimated: dict[str, int]) -> list[str]:
    """The requests whose tokens the totals hold as estimates: their endpoint did not say
    how many it counted (a stream cancelled before its usage chunk, an endpoint that
    sends none), so they were estimated from the prompt's and the text's characters (a
    streamed text's pieces where more: ``ModelCalls.counted``)."""
    if not estimated:
        return []
    return [
        f"estimated: the tokens of {_requests_of(estimated)}, whose endpoint reported no "
        f"token usage, from their prompt's and text's characters (a streamed text's pieces "
        f"where more); their cost, and their generation energy and CO2 where their model "
        f"has energy figures, in the totals, from those"
    ]


def unknown_usage_lines(unknown: dict[str, int]) -> list[str]:
    """The requests whose generation's energy, CO2 and cost the totals cannot hold: logged
    before 2026-12-06, when such a request's tokens were not estimated, at 0 tokens (their
    0 is no count, not free)."""
    if not unknown:
        return []
    return [
        f"not in the totals: the generation energy, CO2 and cost of {_requests_of(unknown)}, "
        f"whose endpoint reported no token usage, logged at 0 tokens before RouterLLM "
        f"estimated them"
    ]


def no_figures_lines(unknown: dict[str, int]) -> list[str]:
    """The requests a remote model without per-token figures answered: its tokens are
    counted, but what generating them spent is known neither here nor from the config."""
    if not unknown:
        return []
    return [
        f"not in the totals: the generation energy and CO2 of {_requests_of(unknown)}, whose "
        f"model has no energy_per_token_kwh or co2_per_token_kg (a remote server is not "
        f"metered here: give its figures, measured where it runs)"
    ]


def contended_lines(rep: Any) -> list[str]:
    """The requests measured while other processes used more than ``CONTENDED_SHARE`` of
    the machine's CPU (``Report.contended``), where any: counted, the latest named, and
    the totals without them, as their energy may be overstated."""
    c = getattr(rep, "contended", None)
    if c is None or not c.requests:
        return []
    t = rep.totals
    if rep.measured():
        # a difference of sums: a hair below 0 where the others spent nothing
        spent = f"energy {energy(max(t.energy_kwh - c.energy_kwh, 0.0))}  CO2 {co2(max(t.co2_kg - c.co2_kg, 0.0))}"  # fmt: skip
        # every request contended: no figure without them (0 Wh would read as measured)
        without = f"without them: {spent}" if c.requests < t.requests else "no request was measured without it"  # fmt: skip
        overstated = (
            f"their energy and CO2 may be overstated (a load-based estimate bills the others' "
            f"work) and their time too; {without}"
        )
    else:
        overstated = "their time may be overstated"
    named = ", ".join(
        f"{r['request_id']} ({r['model']}, {share(r['others_cpu_share'], 0)})" for r in c.latest
    )
    latest = "" if c.requests == len(c.latest) else f"the latest {len(c.latest)}: "
    return [
        f"measured under contention: {counted(c.requests, 'request')}, while other processes "
        f"used over {c.above_share:.0%} of the machine's CPU: {overstated}",
        f"  {latest}{named}",
    ]


def budget_lines(budgets: dict[str, Any] | None) -> list[str]:
    """The budgets' state now, and the requests that broke them (every tag counts)."""
    from routerllm.carbon.budget_text import QUANTITY_TEXT, WINDOW_TEXT
    from routerllm.carbon.units import amount

    if not budgets:
        return []
    rows = [  # (name, limit, spent, share, broken by)
        (
            f"{QUANTITY_TEXT[quantity]} per request",
            amount(quantity, limit),
            "",
            "",
            budgets["violations"][quantity]["per_request"],
        )
        for quantity, limit in budgets["per_request"].items()
        if limit is not None
    ]
    for s in budgets["now"]:
        q, w = s["quantity"], s["window"]
        name = f"{QUANTITY_TEXT[q]} in {WINDOW_TEXT[w].removeprefix('the ')}"
        rows.append((name, amount(q, s["limit"]), amount(q, s["spent"]), share(s["share"], 1), budgets["violations"][q][w]))  # fmt: skip
    # 15, 17 and 8 wide, wider where a figure needs it (a limit of $1e9 in cents: 17
    # characters; a window spent 5,000 times over: "500000.0%"), a space before each
    limit_w, spent_w, share_w = (max([least] + [len(r[i]) + 1 for r in rows]) for i, least in ((1, 15), (2, 17), (3, 8)))  # fmt: skip
    lines = ["", f"{'budget':<26}{'limit':>{limit_w}}{'spent now':>{spent_w}}{'share':>{share_w}}{'broken by':>11}"]  # fmt: skip
    lines += [f"{n:<26}{lim:>{limit_w}}{spent:>{spent_w}}{sh:>{share_w}}{broken:>11}" for n, lim, spent, sh, broken in rows]  # fmt: skip
    lines.append("(broken by: requests over their limit, or that took a window over its limit)")
    return lines


def predictor_lines(profiles: dict[str, Any]) -> list[str]:
    """What the CarbonPredictor has learned from the log, per model."""
    from routerllm.carbon.predictor import FAR  # numpy's import only where a log is read

    lines = [
        "",
        f"{'predictor (from the log)':<26}{'requests':>9}{'per in tok':>12}{'per out tok':>12}"
        f"{'out tok':>9}{'loading':>12}",
    ]
    for name, p in profiles.items():
        if p is None:
            lines.append(f"{name:<26}{'too few requests: config figures or scaled':>56}")
        else:
            lines.append(
                f"{name:<26}{p['requests']:>9}{energy(p['kwh_per_prompt_token']):>12}"
                f"{energy(p['kwh_per_output_token']):>12}{p['output_tokens']:>9}{energy(p['loading_kwh']):>12}"
            )
            if n := p.get("left_out", 0):
                lines.append(
                    f"  {n} reading{'s' if n > 1 else ''} far outside {name}'s others not learned "
                    f"from (over {FAR:g}x their fit: a clock jump, a measurement glitch)"
                )
            if n := p.get("contended", 0):
                lines.append(
                    f"  {n} of {name}'s {p['requests']} measured under contention: learned "
                    f'from as a busy machine bills a request (README, "The CarbonPredictor")'
                )
    return lines


def report_lines(rep: Any) -> list[str]:
    """The whole report, from totals to recommendations."""
    lines = [*totals_lines(rep), ""]
    lines.append(f"{'per router':<26}{'requests':>9}{'out tok':>9}{'energy':>12}{'CO2':>10}")
    for name, r in rep.by_router.items():
        lines.append(
            f"{name:<26}{r.requests:>9} {r.completion_tokens:>8}{_columns(rep, 'router', name, r, (12, 10))}"
        )
    if rep.by_day:
        shown = list(rep.by_day.items())[-14:]
        costs = [dollars(d.cost_usd) if rep.cost_known("day", day) else "not measured" for day, d in shown]  # fmt: skip
        # cost 15 wide: a day of one request on the tiny ladder cost "$0.00000377" (measured
        # 2026-12-06), 1 past a width of 10; 3 digits of $1e-9, "$0.00000000123", take 14;
        # wider where a day needs it ("$123,456,789.00"), a space before each
        cost_w = max([15] + [len(c) + 1 for c in costs])
        lines += ["", f"{'per day (UTC)':<26}{'requests':>9}{'out tok':>9}{'energy':>12}{'CO2':>10}{'cost':>{cost_w}}"]  # fmt: skip
        if len(rep.by_day) > len(shown):
            lines.append(f"({len(rep.by_day) - len(shown)} earlier days in --json)")
        for (day, d), cost in zip(shown, costs, strict=True):
            lines.append(
                f"{day:<26}{d.requests:>9} {d.completion_tokens:>8}"
                f"{_columns(rep, 'day', day, d, (12, 10))}{cost:>{cost_w}}"
            )
    vs = rep.versus_largest
    if vs:
        lines += [
            "",
            f"versus everything on {vs['largest_model']}: {co2(vs['actual_co2_kg'])} instead of "
            f"~{co2(vs['estimated_co2_kg'])} ({less(vs['co2_saved_fraction'], 'CO2')}; {vs['method']})",
        ]
    lines += budget_lines(rep.budgets) + predictor_lines(rep.predictor)
    lines += ["", "recommendations (from the log and the config)"]
    wrap = textwrap.TextWrapper(100, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)  # fmt: skip
    lines += [wrap.fill(f"- {r.message}") for r in rep.recommendations] or ["none: nothing in the log calls for a change"]  # fmt: skip
    return lines
