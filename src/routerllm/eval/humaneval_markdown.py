"""report.md of ``routerllm humaneval``: its summary (results.json) as Markdown."""

from __future__ import annotations

from typing import Any

from routerllm.carbon import units
from routerllm.carbon.meter import (
    CODECARBON_FAILED,
    FROM_TEXT,
    NO_FIGURES,
    NO_FIGURES_FROM_TEXT,
    NO_USAGE,
    PER_TOKEN,
    PROCESS_SCOPE,
)
from routerllm.carbon.report_text import counted
from routerllm.eval.contention import REMEASURE_OPTION
from routerllm.eval.humaneval_run import GATED_CASCADE, TRAINED

#: What each CodeCarbon method (``carbon.meter``) makes the figures.
CARBON_METHODS = {
    "codecarbon:measured": "read from the hardware where CodeCarbon could: the CPU's energy "
    "counters or a GPU's power (on a GPU machine without CPU counters, the CPU's share is "
    "still an estimate from its load); the RAM's share is always CodeCarbon's estimate from "
    "the memory's size",
    "codecarbon:load-estimate": "an estimate from CPU load (CodeCarbon found no energy "
    "counters it could read), not a hardware measurement",
    "codecarbon:tdp-estimate": "an estimate from the CPU's TDP alone (CodeCarbon could read "
    "neither energy counters nor the CPU load), not a hardware measurement",
    CODECARBON_FAILED: "not measured (CodeCarbon failed; counted as spending nothing where "
    "other parts of a system's figure were measured, else the figure is `not measured`; the "
    "quality router's curve and an energy expected over a router's draws are not given where "
    "they would count such an answer)",
    PER_TOKEN: "computed from the model's per-token figures in the config (a remote "
    "server cannot be metered here), not a measurement",
    FROM_TEXT: "computed from the model's per-token figures in the config for tokens "
    "estimated from the prompt's and the answer's characters (a remote server that did not "
    "say how many tokens it generated), not a measurement",
    NO_USAGE: "not known (a remote server that did not say how many tokens it generated; "
    "counted as spending nothing; logged so before 2026-12-06)",
    NO_FIGURES: "not known (a remote server's model without energy_per_token_kwh or "
    "co2_per_token_kg in the config; counted as spending nothing)",
    NO_FIGURES_FROM_TEXT: "not known (a remote server's model without energy_per_token_kwh "
    "or co2_per_token_kg in the config; counted as spending nothing), its tokens estimated "
    "from the prompt's and the answer's characters (the server did not say how many)",
}


#: What CodeCarbon's figures of RouterLLM's process (``:process``) count, said after
#: how they were taken.
PROCESS_SCOPE_TEXT = (
    "; of RouterLLM's process and its children alone (carbon.tracking_mode: process): the "
    "CPU's share from their CPU time, the RAM's from their memory, neither the machine's "
    "idle power nor other processes' work, except where energy counters or a GPU are read, "
    "which CodeCarbon reads whole"
)


def _how(method: str) -> str:
    base = method.removesuffix(PROCESS_SCOPE)
    how = CARBON_METHODS.get(base, "how they were measured is not recorded")
    return how + PROCESS_SCOPE_TEXT if base != method and base in CARBON_METHODS else how


def _carbon_line(s: dict[str, Any]) -> str:
    """How the figures were measured: the stored generations by the method(s) they record
    (reused as they were, perhaps measured on another machine), this run's routing by
    its meter's (``carbon_method``)."""
    now, stored = s["carbon_method"], s.get("generation_methods") or {}
    if set(stored) <= {now}:
        n = sum(stored.values())
        every = f"{'the' if n == 1 else 'all'} {counted(n, 'generation')}, " if stored else ""
        return f"Energy and CO2: CodeCarbon `{now}` ({every}country {s['country']}): {_how(now)}. "
    each = "; ".join(f"`{m}` for {n}: {_how(m)}" for m, n in stored.items())
    return (
        f"Energy and CO2 (country {s['country']}): the {sum(stored.values())} generations were "
        f"measured with CodeCarbon {each}; this run's routing with `{now}`: {_how(now)}. "
        "Figures measured in different ways are added as they are. "
    )


def _loads_line(s: dict[str, Any]) -> str:
    """How the models' loads were measured (``load_methods``): each method with its models,
    explained where the line before has not named it."""
    by_method: dict[str | None, list[str]] = {}
    for model, method in (s.get("load_methods") or {}).items():
        by_method.setdefault(method, []).append(model)
    named = {s["carbon_method"], *(s.get("generation_methods") or {})}
    each = [
        f"{', '.join(models)} "
        + (
            "measured in a way not recorded (stored by an older RouterLLM)"
            if method is None
            else f"measured by `{method}`" + ("" if method in named else f" ({_how(method)})")
        )
        for method, models in by_method.items()
    ]
    return f"Model loads: {'; '.join(each)}. " if each else ""


def _training(s: dict[str, Any]) -> str:
    """What the learned routers and the gate were trained on, in words."""
    other = s.get("trained_on")
    if other is None:
        return f"{s['folds']}-fold cross-validation over problems"
    if s["folds"] == 1:
        return (
            f"trained only on the {counted(other['problems'], 'problem')} of the run in {other['run']} "
            f"(another problem set{_other_style(other, s)}), every problem here tested"
        )
    return (
        f"{s['folds']}-fold cross-validation over problems, every fold's training problems "
        f"joined by the {counted(other['problems'], 'problem')} of the run in {other['run']} "
        f"(never tested{_other_style(other, s)})"
    )


def _other_style(other: dict[str, Any], s: dict[str, Any]) -> str:
    """How the run trained on asked the models, where this run asks them otherwise."""
    from routerllm.eval.style_diff import differences_text

    if "style_differs" not in other:  # a results.json written before it was recorded
        return ""
    if not (differs := other["style_differs"]):
        return "; in this run's prompting style"
    # a run that trains reports every model of its ladder, each with its style
    text = differences_text(other["styles"], s["styles"], differs, "here")
    return f"; its answers asked in another prompting style ({text}): two experiments mixed"


def _learned_line(s: dict[str, Any]) -> list[str]:
    """How the learned routers and the gate were trained and calibrated; nothing where no
    system among the report's learns (a run of direct systems only)."""
    if not any(r["system"] in TRAINED for r in s["systems"]):
        return []
    if not any(r["system"] in TRAINED and r["system"] != GATED_CASCADE for r in s["systems"]):
        # the gate alone: no decision rule was calibrated (--calibrate is refused without a
        # learned router); its own threshold is in the gated cascade's paragraph
        return [f"Learned routers: `{s['encoder']}` prompt embeddings, {_training(s)}."]
    return [
        f"Learned routers: `{s['encoder']}` prompt embeddings, {_training(s)}; decision rule (`lambda` or `threshold`) "
        f"and knob calibrated to `{s['calibration']}` (energy as the cost) on the training folds' out-of-fold "
        "predictions, never on the test fold"
        + (
            ", where it falls between two knob settings by a random mix of the two."
            if s.get("two_settings")
            else "."
        )
    ]


def _against_markdown(against: dict[str, Any] | None, rows: list[dict[str, Any]]) -> list[str]:
    """The paired-bootstrap comparison with direct-heavy, as a paragraph and a table."""
    if not against or not against["systems"]:
        return []
    t = against["target"]
    lines = [
        "",
        f"Against direct-heavy, on the same problems. Target: pass@1 at most {t['margin'] * 100:.0f} points "
        f"below direct-heavy's at no more than {t['energy_share']:.0%} of its energy (the cascade budget). "
        f"Intervals: 90% paired bootstrap over the problems ({against['resamples']} resamples, the same for "
        "every system; 5th to 95th percentile); they show how much the figures depend on which problems "
        "were drawn, not on the routers' training folds.",
        "",
        "| system | pass@1 minus direct-heavy's | 90 % interval | share of its energy | 90 % interval | meets the target | resamples meeting it |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, a in against["systems"].items():
        dlo, dhi = a["pass@1_diff_90ci"]
        share, ci, met = a["energy_share"], a["energy_share_90ci"], a["meets_target"]
        lines.append(
            f"| {name} | {a['pass@1_diff']:+.3f} | {dlo:+.3f}..{dhi:+.3f} | "
            + ("-" if share is None else f"{share:.1%}")
            + " | "
            + ("-" if ci is None or None in ci else f"{ci[0]:.1%}..{ci[1]:.1%}")
            + f" | {'-' if met is None else 'yes' if met else 'no'} | "
            + ("-" if met is None else f"{a['resamples_meeting_target']:.0%}")
            + " |"
        )
    if any(r["system"] == "direct-heavy" and not r["energy_kwh"] for r in rows):
        lines += ["", "direct-heavy spent no measured energy (its carbon method above), so no "
                  "share of it, nor the target, is given."]  # fmt: skip
    elif unmeasured := [
        n for n, a in against["systems"].items() if a.get("energy_measured") is False
    ]:
        lines += ["", f"{', '.join(unmeasured)}: no measured energy (the carbon method above), so no "
                  "share of direct-heavy's, nor the target, is given."]  # fmt: skip
    return lines


def _per_kwh(v: float | None) -> str:
    """Correct solutions per kWh: whole above 10, else 3 significant digits (0.2 for one
    solved at 5 kWh, not 0, which reads as none solved)."""
    return "-" if v is None else f"{v:.0f}" if v >= 10 else f"{v:.3g}"


def _per_correct(r: dict[str, Any]) -> str:
    """CO2 per correct solution: undefined where none was solved (null in results.json),
    said so, not a '-' that reads as a figure missing."""
    if r["co2_kg"] is None:
        return "not measured"
    return "none solved" if not r["correct"] else f"{r['co2_per_correct_kg']:.2e}"


def _figure(v: float | None, spec: str) -> str:
    """An energy, CO2 or cost: ``not measured`` where it is None (CodeCarbon failed on
    every part of it), never a 0 that reads as free."""
    return "not measured" if v is None else format(v, spec)


def _expected_kwh(f: dict[str, Any]) -> str:
    """A router's expected generation energy over its draws, or why it is not given."""
    kwh = f["expected_generation_kwh"]
    if kwh is None:
        return "an energy not measured (it may draw an answer CodeCarbon failed to measure)"
    return f"{kwh:.3e} kWh of generation"


def _unmeasured_points(n: int, unknown: int, curve: str, verb: str, nor: str) -> str:
    """That ``unknown`` of the ``n`` points of ``curve`` ``verb`` (chose, spent) an answer
    CodeCarbon failed to measure: their energy is not given (results.json: null), ``nor``."""
    return (
        f" Of the {counted(n, 'point')} of {curve}, {unknown} {verb} an answer whose energy was "
        f"not measured (CodeCarbon failed): their energy is not given, {nor}."
    )


def _curve_text(s: dict[str, Any]) -> str:
    """The quality router's curve against the medium-heavy mix, or why there is no share:
    a point that chose an answer not measured has no energy (results.json: null)."""
    curve = s.get("quality_energy_curve") or []
    where = f"Its quality-energy curve over the knob ({s.get('quality_energy_curve_rule')}, out-of-fold predictions)"
    if unknown := sum(c is None for c, _ in curve):
        return _unmeasured_points(
            len(curve), unknown, "its quality-energy curve over the knob", "chose",
            "nor the share of the curve above the random mix of direct-medium and direct-heavy",
        )  # fmt: skip
    if (above := s.get("quality_energy_curve_above_mix")) is None:
        return ""
    return (
        f" {where} lies above the straight line from direct-medium to direct-heavy (their random "
        f"mix) over {above:.0%} of the generation energy between them."
    )


#: The contended generations report.md names one by one; results.json has them all.
NAMED_CONTENDED = 20


def _contention_line(s: dict[str, Any]) -> list[str]:
    """The generations measured while other processes used more than the stated share
    of the machine's CPU (``contended_generations``), named: their energy includes those
    processes' work. None for a run without any (or stored before it was recorded)."""
    contention = s.get("contended_generations") or {}
    found = contention.get("generations") or []
    if not found:
        return []
    named = ", ".join(
        f"{g['model']} {g['task_id']} ({g['others_cpu_share']:.0%})"
        for g in found[:NAMED_CONTENDED]
    )
    more = f" and {len(found) - NAMED_CONTENDED} more (results.json)" if len(found) > NAMED_CONTENDED else ""  # fmt: skip
    return [
        f"Measured under contention: {counted(len(found), 'generation')} ran while other processes "
        f"used more than {contention['above_share']:.0%} of the machine's CPU, so their energy "
        f"includes those processes' work (CodeCarbon's load-based estimate bills the machine's "
        f"load) and they ran slower: {named}{more}. Their figures are reported as measured; run "
        f"the same command with `{REMEASURE_OPTION}` on a quiet machine to measure them again."
    ]


#: results.json's components in report.md's order, with the words it says them in.
COMPONENT_NAMES = {
    "router_inference": "router inference",
    "model_loading": "model loading",
    "llm_inference": "generation",
}


def _contended_components(components: dict[str, Any]) -> str:
    """The end of a system's line of the component breakdown: its components measured
    while other processes used more than ``CONTENDED_SHARE`` of the machine's CPU
    (``contended``), with that share, whose energy includes those processes' work; ""
    where none was (or none's share is known)."""
    busy = [
        f"{words} {components[name]['others_cpu_share']:.0%}"
        for name, words in COMPONENT_NAMES.items()
        if components[name].get("contended")
    ]
    return f" (measured under contention: {', '.join(busy)})" if busy else ""


def report_markdown(s: dict[str, Any]) -> str:
    lines = [
        "# Code generation: routed vs direct",
        "",
        f"{counted(s['problems'], 'problem')} of {s.get('problem_set', 'HumanEval (packaged)')}"
        f"{' (a seeded subset, --limit)' if s['limit'] else ''}; models {', '.join(s['models'])}; "
        f"greedy decoding; tests run in the sandbox (separate process, time and memory limits; {s.get('sandbox', 'its isolation not recorded')}).",
        _carbon_line(s) + _loads_line(s) + "Cost = energy x electricity price.",
        *_contention_line(s),
        *_learned_line(s),
        f"Wall time of this invocation: {s['wall_time_s']:.0f} s (stored generations are reused, not redone); "
        f"generation and loading time of all models on these problems: {s['model_time_s']:.0f} s. "
        f"Oracle (best model per problem) pass@1: {s['oracle_pass@1']:.3f}.",
        "",
        "| system | pass@1 | correct | model distribution | mean s/request | energy kWh | CO2 kg | cost $ | CO2 per correct kg | correct per kWh | router share of CO2 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["systems"]:
        dist = ", ".join(f"{m} {v:.0%}" for m, v in r["model_distribution"].items())
        per = _per_correct(r)
        cpk = _per_kwh(r["correct_per_kwh"])
        share = (
            "-" if r["router_share_of_co2"] is None else units.share(r["router_share_of_co2"], 2)
        )
        lines.append(
            f"| {r['system']} | {r['pass@1']:.3f} | {r['correct']}/{r['total']} | {dist} | {r['mean_time_s']:.2f} | "
            f"{_figure(r['energy_kwh'], '.3e')} | {_figure(r['co2_kg'], '.3e')} | {_figure(r['cost_usd'], '.2e')} | {per} | {cpk} | {share} |"
        )
    lines += _against_markdown(s.get("against_direct_heavy"), s["systems"])
    for r in s["systems"]:
        if "verdicts" in r:
            v = r["verdicts"]
            lines += [
                "",
                f"{r['system']}: the medium model answers, its answer is run on the examples in the prompt's "
                f"docstring (never the hidden tests): {v['passed']} passed them, {counted(v['unverifiable'], 'prompt')} had "
                f"none{'' if 'gate' in r else ' (answer kept)'}, {v['failed']} failed; {r['escalated']:.0%} of problems were answered again by "
                "the heavy model (both generations counted). Checking the answers is its router inference.",
            ]
            if "gate" in r:
                g = r["gate"]
                lines[-1] += (
                    f" Gate: an unverified answer (failed, or without examples) goes to the heavy model only where its predicted success "
                    f"(by {g['predictor']}, trained on the other folds) per expected kWh (from the medium "
                    f"model's prompt and answer tokens) clears the fold's threshold, chosen on the training folds for an energy budget of "
                    f"{g['budget']:.0%} of the heavy model's generation energy, less what the cascade spends besides generating (the checks, "
                    f"and loading the medium model: {_overhead(g)}); it withheld {g['withheld']} of the "
                    f"{counted(v['failed'] + v['unverifiable'], 'unverified answer')}. Its router inference includes the gate's."
                )
                curve = g.get("curve") or []
                if unknown := sum(kwh is None for _, kwh, _ in curve):
                    lines[-1] += _unmeasured_points(
                        len(curve), unknown, "its curve over budgets", "spent", "nor drawn"
                    )
        if "decision_rules" in r:
            rules = r["decision_rules"]
            lines += ["", f"{r['system']}: decision rule chosen per fold: "
                      + ", ".join(f"{n} {rules.count(n)}" for n in dict.fromkeys(rules)) + "."]  # fmt: skip
            if r["system"] == "quality":
                lines[-1] += _curve_text(s)
        if "fixed_mix" in r:
            f = r["fixed_mix"]
            lines += [
                "",
                f"{r['system']}: in {f['folds']} of {s['folds']} folds the router did worse on its training "
                "folds' out-of-fold predictions than a fixed random mix of the models at the same energy, so it "
                "drew each problem's model from that mix (MISSION M3.9: no routing signal, no harm). Expected over "
                f"the draws: pass@1 {f['expected_pass@1']:.3f} at {_expected_kwh(f)}; the row above is "
                "this seeded draw.",
            ]
        if "two_settings" in r:
            f = r["two_settings"]
            lines += [
                "",
                f"{r['system']}: in {f['folds']} of {s['folds']} folds calibration met its target between two "
                "knob settings, so each problem's setting was drawn by a hash of its prompt, in the shares that "
                "meet it on the training folds."
                + ("" if "fixed_mix" in r else f" Expected over the draws: pass@1 {f['expected_pass@1']:.3f} at "
                   f"{_expected_kwh(f)}; the row above is this seeded draw."),
            ]  # fmt: skip
    lines += ["", "Component breakdown (kWh): router inference / model loading / generation", ""]
    for r in s["systems"]:
        c = r["components"]
        lines.append(
            f"- {r['system']}: "
            + " / ".join(_figure(c[n]["energy_kwh"], ".2e") for n in COMPONENT_NAMES)
            + _contended_components(c)
        )
    if any(r["components"]["model_loading"].get("contended") for r in s["systems"]):
        lines += [
            "",
            "A model's load measured under contention counts in every system that loads it: run "
            f"the same command with `{REMEASURE_OPTION}` on a quiet machine to load and measure "
            "it again.",
        ]
    lines += ["", "Prompting (greedy; `eval/codegen.py`):", ""]
    for name, st in s["styles"].items():
        lines.append(
            f"- {name}: {st['mode']} mode, max_new_tokens {st['max_new_tokens']}, "
            f"repetition penalty {st['repetition_penalty']}, stop {list(st['stop'])}"
        )
    lines.append("")
    return "\n".join(lines)


def _overhead(gate: dict[str, Any]) -> str:
    """The gated cascade's overhead a problem, or what was not measured of it and the
    figures its budget read instead, one a fold (``cascade``'s ``GateOverhead``; one
    figure in an older results.json)."""
    if (kwh := gate["overhead_kwh_per_problem"]) is not None:
        return f"{kwh:.2e} kWh a problem"
    budgeted = gate["budgeted_overhead_kwh_per_problem"]
    figures = budgeted if isinstance(budgeted, list) else [budgeted]
    return (
        f"not measured for {' and '.join(gate['overhead_unmeasured'])} (CodeCarbon failed), "
        f"budgeted at {', '.join(f'{x:.2e}' for x in figures)} kWh a problem "
        f"{'(a fold each) ' if len(figures) > 1 else ''}reading "
        f"their duration at the medium model's mean measured power"
    )
