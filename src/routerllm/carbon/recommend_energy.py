"""Recommendations on the spending figures themselves (``recommend.recommendations``
runs them in its order): the budgets their CO2 and cost are held to, now and over the
whole log, and how their energy was measured (estimated by CodeCarbon, computed from the
config's per-token figures, or not measured at all), with how to let CodeCarbon measure
on the platform the report runs on.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from routerllm.carbon.meter import PER_TOKEN, PROCESS_SCOPE
from routerllm.carbon.recommend_base import ESTIMATED_SHARE, Recommendation, pct
from routerllm.carbon.units import energy
from routerllm.config import AppConfig

if TYPE_CHECKING:
    from routerllm.carbon.log_figures import LogFigures
    from routerllm.carbon.report import Report

RAPL_HINT = "sudo chmod -R a+r /sys/class/powercap/*"  # CodeCarbon's own hint
#: How CodeCarbon comes to read the CPU's power on each platform (``sys.platform``), as
#: its own set-up messages say; Linux's is the RAPL counters' read permission.
CPU_POWER_HINTS = {
    "linux": f"where the CPU has RAPL counters, let CodeCarbon read them ({RAPL_HINT}, its own hint)",  # fmt: skip
    "darwin": "let CodeCarbon read the CPU's power (its own hint: give it powermetrics, which "
    "needs sudo, or on an Intel Mac install Intel Power Gadget)",
    "win32": "let CodeCarbon read the CPU's power (its own hint: the Energy Meter Interface of "
    "Windows 11 on bare metal, not a VM, or Intel Power Gadget)",
}
#: CodeCarbon's estimates (codecarbon_meter._power_method), and what each is made from,
#: of the whole machine or of RouterLLM's process (carbon.tracking_mode).
CODECARBON_ESTIMATES = {
    "codecarbon:load-estimate": "from CPU load",
    "codecarbon:tdp-estimate": "from the CPU's TDP alone (it could not read the CPU load)",
    "codecarbon:load-estimate"
    + PROCESS_SCOPE: "from CPU load (the CPU time of RouterLLM's process and its children)",  # fmt: skip
    "codecarbon:tdp-estimate"
    + PROCESS_SCOPE: "from the CPU's TDP alone (it could not read the CPU load)",  # fmt: skip
}


def budgets(report: Report, config: AppConfig, cut: Sequence[Recommendation] = ()) -> list[Recommendation]:  # fmt: skip
    """Budget windows at or past ``downgrade_at`` now, and budgets broken (the report's
    budgets summary, which is the whole log's); ``cut``: the cut_answers recommendations
    that ask to raise generation.max_new_tokens, which a broken budget's advice then does
    not ask to lower."""
    from routerllm.carbon.budget_text import QUANTITY_TEXT, WINDOW_TEXT
    from routerllm.carbon.units import amount

    if not report.budgets:
        return []
    out = []
    downgrade = config.budgets.downgrade_at
    for s in report.budgets["now"]:
        q, w, share = s["quantity"], s["window"], s["share"]
        if share < downgrade:
            continue
        effect = (
            "every request is refused until older ones leave the window"
            if share >= 1
            else f"past budgets.downgrade_at ({downgrade:.0%}), routed requests go one model smaller"  # fmt: skip
        )
        out.append(
            Recommendation(
                "budget_near_limit",
                f"the {w} {QUANTITY_TEXT[q]} budget is {pct(share)} spent now "
                f"({amount(q, s['spent'])} spent in {WINDOW_TEXT[w]}, of {amount(q, s['limit'])}): "
                f"{effect}; raise budgets.{q}.{w} if it is too tight, or send fewer requests "
                f"or route them to smaller models",
                f"budgets.{q}.{w}",
                {
                    "quantity": q,
                    "window": w,
                    "share": share,
                    "spent": s["spent"],
                    "limit": s["limit"],
                    "threshold": downgrade,
                },
            )
        )
    if cut:  # lowering it would cut more of them: the other remedy
        answers = ", ".join(f"{c.evidence['cut']} answers of {c.evidence['model']}" for c in cut)
        remedy = (
            f"or route to smaller models (not a lower generation.max_new_tokens: {answers} "
            f"already stop at it (cut_answers))"
        )
    else:
        remedy = "or lower generation.max_new_tokens, which bounds what a request can spend"
    for q, counts in report.budgets["violations"].items():
        for which, n in counts.items():
            if n <= 0:
                continue
            what = (
                f"spent more than budgets.{q}.per_request allows"
                if which == "per_request"
                else f"took the {which} window over budgets.{q}.{which}"
            )
            out.append(
                Recommendation(
                    "budget_broken",
                    f"{n} logged request{'s' if n > 1 else ''} {what}, judged against the "
                    f"limit as it is now (a request logged before it was set was not held to "
                    f"it; one let in under it spent more than predicted); raise the limit if "
                    f"it is too tight, {remedy}",
                    f"budgets.{q}.{which}",
                    {"quantity": q, "budget": which, "requests": n},
                )
            )
    return out


def cpu_power_hint() -> str:
    """How to let CodeCarbon measure the CPU's power on this platform."""
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    return CPU_POWER_HINTS.get(platform, "CodeCarbon reads the CPU's power on Linux, macOS or Windows only: run there")  # fmt: skip


def estimated_energy(fig: LogFigures, config: AppConfig) -> list[Recommendation]:
    """Energy that CodeCarbon estimated from load, or the config's per-token figures
    gave, and requests logged with carbon tracking off."""
    out = []
    total = fig.energy.total()
    by_method = fig.by_method
    per_token_models = fig.per_token_models
    for method, source in CODECARBON_ESTIMATES.items():
        load = by_method.get(method, 0.0)
        if total and load / total >= ESTIMATED_SHARE:
            out.append(
                Recommendation(
                    "estimated_energy",
                    f"{pct(load / total)} of the energy ({energy(load)}) is CodeCarbon's estimate "
                    f"{source} ({method}: it found no CPU power reading or GPU it "
                    f"could read); {cpu_power_hint()}, and it measures; on an NVIDIA GPU it reads the "
                    "GPU's power (the CPU's stays an estimate without the CPU's own reading)",
                    "",
                    {
                        "method": method,
                        "energy_kwh": load,
                        "share": load / total,
                        "threshold": ESTIMATED_SHARE,
                    },
                )
            )
    per_token = by_method.get(PER_TOKEN, 0.0)
    if total and per_token / total >= ESTIMATED_SHARE:
        names = ", ".join(sorted(per_token_models))
        out.append(
            Recommendation(
                "estimated_energy",
                f"{pct(per_token / total)} of the energy ({energy(per_token)}, {names}) is "
                f"computed from the config's per-token figures, as a remote server cannot be "
                f"metered here: it is as good as their source (figures_source); measure the "
                f"server where it runs and set models' energy_per_token_kwh (per generated "
                f"token) and energy_per_prompt_token_kwh (per prompt token read)",
                "models[].energy_per_token_kwh",
                {
                    "method": PER_TOKEN,
                    "energy_kwh": per_token,
                    "share": per_token / total,
                    "threshold": ESTIMATED_SHARE,
                },
            )
        )
    unmeasured, requests = fig.unmeasured, fig.requests  # unmeasured: every method none
    if not config.carbon.enabled and requests and unmeasured / requests >= ESTIMATED_SHARE:
        share = unmeasured / requests
        out.append(
            Recommendation(
                "unmeasured_energy",
                f"{unmeasured} of {requests} requests ({pct(share)}) were logged "
                f"without energy figures (method none: carbon tracking off), so this report's "
                f"energy, CO2 and cost leave them out (not measured, not 0 kWh); set "
                f"carbon.enabled: true to measure them",
                "carbon.enabled",
                {
                    "requests_unmeasured": unmeasured,
                    "requests": requests,
                    "share": share,
                    "threshold": ESTIMATED_SHARE,
                },
            )
        )
    return out
