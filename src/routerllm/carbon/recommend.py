"""Recommendations of the carbon report: what the request log says could be changed.

Each rule reads the figures of the logged requests (those the report selected, gathered
in one pass by ``log_figures.LogFigures``), the config and the report's own figures, and
speaks only where the log holds evidence: every recommendation states the measured
figure that triggered it, the threshold it passed, and what to change (the config key,
where there is one). The thresholds are ``recommend_base``'s constants (importable from
here too), documented in the README ("Recommendations"). The rules on how the requests
were answered and routed are here; those on the spending figures themselves (the
budgets, and how the energy was measured) in ``recommend_energy``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routerllm.carbon.recommend_base import (
    CUT_MIN_REQUESTS,
    CUT_SHARE,
    LARGEST_MIN_REQUESTS,
    LARGEST_SHARE,
    LOADING_SHARE,
    REPEATED_SHARE,
    ROUTER_SHARE,
    Evidence,
    Recommendation,
    pct,
)
from routerllm.carbon.recommend_base import ESTIMATED_SHARE as ESTIMATED_SHARE  # re-exported
from routerllm.carbon.recommend_energy import budgets, estimated_energy
from routerllm.carbon.units import co2, energy
from routerllm.config import AppConfig
from routerllm.routed_result import FIXED

if TYPE_CHECKING:
    from routerllm.carbon.log_figures import LogFigures
    from routerllm.carbon.report import Report

#: Routers that run no model to decide (their routing costs next to nothing), and
#: the router name of a request whose model the caller chose.
MODEL_FREE_ROUTERS = frozenset({"rules", "random", "largest", "smallest", FIXED})
#: The demo's always-largest baseline: a deliberate comparison, not a routing choice.
BASELINE_TAG = "demo-baseline"
#: The demo's requests: the same prompts each run, never from the cache.
DEMO_TAGS = frozenset({"demo", BASELINE_TAG})


def recommendations(fig: LogFigures, config: AppConfig, report: Report) -> list[Recommendation]:
    """What the logged requests (their figures, ``fig``) and the budgets in ``report``
    call for, in the order of the rules; empty when nothing passes its threshold."""
    out: list[Recommendation] = []
    out += failed_loads(fig, config)
    out += repeated_prompts(fig, config)
    out += loading_churn(fig, config)
    cut = cut_answers(fig, config)
    out += cut
    out += router_overhead(fig, config)
    # answers cut at max_new_tokens: a broken budget's advice does not ask to lower it
    out += budgets(report, config, [c for c in cut if c.config_key == "generation.max_new_tokens"])  # fmt: skip
    out += largest_model(fig, config)
    out += estimated_energy(fig, config)
    return out


def failed_loads(fig: LogFigures, config: AppConfig) -> list[Recommendation]:
    """Per model, requests that failed as it failed to load (a corrupt file), or whose
    cascade's step up to it did (the smaller model's answer kept): whatever their number,
    as every request sent to it fails, its load paid for in vain."""
    out = []
    for model, f in fig.failed_loads.items():
        since = (
            f"; it has answered {f.answered_since} request{'s' if f.answered_since > 1 else ''} since"
            if f.answered_since
            else ""
        )
        kept = f" from it, a cascade kept a smaller model's in {f.kept}" if f.kept else ""
        # carbon tracking off measured nothing: its zeros are not 0 kWh
        spent = (
            f"{energy(f.energy_kwh)} spent loading it, counted in the totals, not as loads"
            if f.measured
            else "the energy spent loading it not measured (carbon tracking off)"
        )
        out.append(
            Recommendation(
                "failed_loads",
                f"{model} failed to load in {f.count} request{'s' if f.count > 1 else ''} (no "
                f"answer{kept}; {spent}; the last at {f.last[:19].replace('T', ' ')} UTC{since}): {f.error}; "
                f"fix what the error says (the model's file or settings in models), or take "
                f"{model} out of the config",
                "",
                {
                    "model": model,
                    "failed_loads": f.count,
                    "kept_answers": f.kept,
                    "loading_energy_kwh": f.energy_kwh if f.measured else None,
                    "last_failed": f.last,
                    "answered_since": f.answered_since,
                    "error": f.error,
                },
            )
        )
    return out


def repeated_prompts(fig: LogFigures, config: AppConfig) -> list[Recommendation]:
    """Requests whose prompt an earlier request asked on the same model, replayed
    through a cache of the config's ``max_entries`` and ``ttl_s`` (``fig.replay``: the
    demo's requests, which repeat their prompts on purpose, and cached ones left out),
    while the cache is off."""
    requests = fig.requests
    if config.cache.enabled or not requests or fig.replay is None:
        return []
    hits = fig.replay.hits
    share = hits / requests
    if not hits or share < REPEATED_SHARE:
        return []
    total = fig.energy.total()
    # A cached answer still pays its routing: what it saves is loading and generation.
    saved = fig.replay.saved_kwh.total()
    gen = config.generation
    key = "cache.enabled"
    if gen.temperature > 0 and gen.seed is None:
        # the cache alone keeps none of these sampled answers: the seed is half the change
        fixed = (
            f"only answers asked at temperature 0 are cached: generation.seed is unset and "
            f"generation.temperature is {gen.temperature:g}: set generation.seed too"
        )
        key += ", generation.seed"
    else:
        fixed = "only answers fixed by their request are cached: temperature 0 or a seed, as the config's generation settings give"  # fmt: skip
    of_energy = f" and {pct(saved / total)} of the energy ({energy(saved)})" if total else ""
    after = fig.replay.after_reload
    # a cache lives in one process: one that loaded its model again may be a new one
    reloaded = (
        f"; {after} more repeated one after their model was loaded again, by a new process "
        f"(each `routerllm route`), whose cache starts empty, or after it was evicted: one "
        f"long-lived process (`routerllm serve`) keeps them"
        if after
        else ""
    )
    return [
        Recommendation(
            "repeated_prompts",
            f"{hits} of {requests} requests ({pct(share)}){of_energy} repeated the prompt "
            f"of an earlier request on the same model (within cache.ttl_s and "
            f"cache.max_entries, the model not loaded again since: in the same process); "
            f"with cache: {{enabled: true}} up to that many would have been answered from "
            f"memory, their loading and generation not spent ({fixed}; the log keeps the "
            f"prompt's hash, not its system text, history or sampling options){reloaded}",
            key,
            {
                "repeated_requests": hits,
                "requests": requests,
                "share": share,
                "energy_kwh": saved,
                "energy_share": saved / total if total else 0.0,
                "after_reload": after,
                "threshold": REPEATED_SHARE,
            },
        )
    ]


def loading_churn(fig: LogFigures, config: AppConfig) -> list[Recommendation]:
    """Model loading's share of the energy when some model was loaded more than once
    (a load: the answering model's own, where its row says it loaded, ``model_loaded``;
    in a row from before that was logged, a ``model_loading`` not from the cache that took
    time or energy. A count's read of a model's files alone is no load, its energy
    loading's all the same; a cascade's models escalated from are not named in the log; a
    load that failed is none, ``failed_loads`` names it)."""
    total = fig.energy.total()
    loading = fig.loading_kwh.total()
    loads = fig.loads
    reloads = sum(loads.values()) - len(loads)
    if not total or loading / total <= LOADING_SHARE or reloads < 1:
        return []
    from routerllm.manager import LLMManager, gb_up

    share = loading / total
    # what the manager counts against its budget (a 4-bit HF model on CPU: float32)
    manager = LLMManager(config)
    configured = {m.name for m in config.models}
    need = sum(manager.local_gb(n) for n in loads if n in configured)
    budget = config.manager.memory_budget_gb
    counts = ", ".join(f"{n} {c}x" for n, c in loads.most_common())
    head = (
        f"loading models spent {pct(share)} of the energy ({energy(loading)} of {energy(total)}), "
        f"more than {LOADING_SHARE:.0%}, in {sum(loads.values())} loads ({counts})"
    )
    if need > budget:
        message = (
            f"{head}: the models loaded need {gb_up(need)} GB together, more than "
            f"manager.memory_budget_gb ({budget:g} GB), so loading one evicts another; raise "
            f"manager.memory_budget_gb to {gb_up(need)} where the machine has the memory"
        )
        key = "manager.memory_budget_gb"
    else:
        message = (
            f"{head}: they fit in manager.memory_budget_gb ({budget:g} GB) together, so they "
            f"were loaded again by new processes (each `routerllm route` loads its model); "
            f"keep one process answering (`routerllm serve`, or one RouterLLM in Python)"
        )
        key = ""
    evidence: Evidence = {
        "loading_energy_kwh": loading,
        "energy_kwh": total,
        "share": share,
        "loads": sum(loads.values()),
        "reloads": reloads,
        "memory_needed_gb": need,
        "memory_budget_gb": budget,
        "threshold": LOADING_SHARE,
    }
    return [Recommendation("model_loading", message, key, evidence)]


def cut_answers(fig: LogFigures, config: AppConfig) -> list[Recommendation]:
    """Per model, the share of answers (whose finish reason is logged, not from the
    cache) that stopped at their max_new_tokens, or where prompt and answer filled the
    model's context (which no larger max_new_tokens lengthens)."""
    out = []
    limit = config.generation.max_new_tokens
    for model, answers in fig.cut.items():
        known, cut, filled = answers.known, answers.cut, answers.filled
        if known < CUT_MIN_REQUESTS or not cut or cut / known < CUT_SHARE:
            continue
        head = f"{cut} of {known} answers of {model} ({pct(cut / known)}; threshold {CUT_SHARE:.0%})"  # fmt: skip
        context = (
            f"prompt and answer filled the model's context ({answers.context} tokens), "
            f"which no larger max_new_tokens lengthens: shorten the prompts or send them to "
            f"a model with a longer context"
        )
        # a function stub's answer stops at its code style's limit, not max_new_tokens
        stub_limit = _stub_limit(model, config)
        at_stub = answers.lengths[stub_limit] if stub_limit not in (None, limit) else 0
        stub = (
            f"at {stub_limit} tokens, the limit of a function stub's answer (asked in its "
            f"model's code style, whatever generation.max_new_tokens, {limit}, is)"
        )
        if filled == cut:
            message = f"{head} stopped at the end of their context (finish_reason length): {context}"  # fmt: skip
        elif at_stub == cut - filled:
            message = (
                f"{head} stopped {stub}: where they are cut short, give those requests their "
                f"own limit (--max-new-tokens, max_tokens in the server), which no "
                f"generation.max_new_tokens raises"
            )
        else:
            # the longest cut short of a stub's limit: what the requests' own limits were
            longest = max((n for n in answers.lengths if not (at_stub and n == stub_limit)), default=answers.longest)  # fmt: skip
            own = (
                f"; at most {longest} tokens, below generation.max_new_tokens ({limit}): the "
                f"requests set their own limit (--max-new-tokens, max_tokens in the server)"
                if longest < limit
                else ""
            )
            message = (
                f"{head} stopped at their max_new_tokens (finish_reason length){own}; where "
                f"they are cut short, raise generation.max_new_tokens ({limit}) or the "
                f"requests' limit"
            )
            if at_stub:
                message += f" ({at_stub} of them {stub}, which their requests' own limit raises)"  # fmt: skip
        if filled and filled < cut:
            message += f" (in {filled} of them, {context})"
        out.append(
            Recommendation(
                "cut_answers",
                message,
                "generation.max_new_tokens" if filled + at_stub < cut else "",
                {
                    "model": model,
                    "cut": cut,
                    "requests": known,
                    "share": cut / known,
                    "longest_cut_tokens": answers.longest,
                    "filled_context": filled,
                    "stub_limit_cut": at_stub,
                    "max_new_tokens": limit,
                    "threshold": CUT_SHARE,
                },
            )
        )
    return out


def _stub_limit(model: str, config: AppConfig) -> int | None:
    """The most tokens ``model`` writes for a function stub (its code style's), or None
    where stubs are asked as any request (generation.complete_stubs false)."""
    if not config.generation.complete_stubs:
        return None
    from routerllm.eval.codegen import style_for  # the parsers: only where a cut is judged

    return style_for(model).max_new_tokens


def router_overhead(fig: LogFigures, config: AppConfig) -> list[Recommendation]:
    """router_inference's share of the CO2, where a cheaper way to route exists (of the
    answers not from the cache: a cached answer spends only routing). Each router that
    runs a model has its largest routing left out of it: its first in a process loads
    its model (the complexity router's MiniLM: 5.56 mWh, against 4-10 µWh a request
    after), which a long-lived process pays once; where every request loads it (a
    process each), the others still count."""
    # the one-off loads, left out of the routing and of the total it is a share of
    first = {n: fig.uncached_routing_max.get(n, 0.0) for n in fig.uncached_routing if _runs_a_model(n, config)}  # fmt: skip
    once = sum(first.values())
    total = fig.uncached_co2.total() - once
    routing = {n: kg - first.get(n, 0.0) for n, kg in fig.uncached_routing.items()}
    spent = sum(routing.values())
    if total <= 0 or spent / total <= ROUTER_SHARE:
        return []
    learned = sorted((n for n in routing if _runs_a_model(n, config) and routing[n] > 0), key=lambda n: -routing[n])  # fmt: skip
    if not learned and not config.cascade.enabled:
        return []  # the routers run no model: nothing cheaper to route with
    by_router = ", ".join(f"{n} {co2(routing[n])}" for n in sorted(routing, key=lambda n: -routing[n]) if routing[n] > 0)  # fmt: skip
    configured = config.router.path or config.router.name
    advice = []
    if learned and configured in MODEL_FREE_ROUTERS:
        advice.append(
            f"{', '.join(learned)} run{'s' if len(learned) == 1 else ''} a model to route; the "
            f"config's router, {configured}, runs none (those requests asked for another "
            f"router: --router, or another config)"
        )
    elif learned:
        # router.path overrides router.name, which is then often rules already
        switch = (
            f"router.name: rules without router.path, now {configured}, which overrides the name"
            if config.router.path
            else f"router.name: rules; now {configured}"
        )
        advice.append(
            f"{', '.join(learned)} run{'s' if len(learned) == 1 else ''} a model to route; the "
            f"rules router ({switch}) runs none"
        )
    if config.cascade.enabled:
        # a gate weighs an answer after its check, in router_inference too: no cheaper
        advice.append(
            "router_inference includes the cascade's checks (cascade.enabled), run in the "
            "sandbox on every answer with examples, gated or not (a gate, cascade.gate, "
            "weighs answers after their check: it saves escalations, not checks); "
            "cascade.enabled: false removes them, and the escalations they buy"
        )
    loads = ", ".join(f"{n}'s" for n in sorted(first) if first[n] > 0)
    left_out = (
        f", leaving out {loads} largest routing "
        f"({co2(once)}: the first in a process loads the router's model, paid once there)"
        if loads
        else ""
    )
    return [
        Recommendation(
            "router_overhead",
            f"routing (router_inference) spent {pct(spent / total)} of the CO2 "
            f"({co2(spent)} of {co2(total)}; {by_router}{left_out}), more than "
            f"{ROUTER_SHARE:.0%}: {'; '.join(advice)}",
            ("router.path" if config.router.path else "router.name")
            if learned
            else "cascade.enabled",
            {
                "routing_co2_kg": spent,
                "co2_kg": total,
                "share": spent / total,
                "first_routing_co2_kg": once,
                "router": configured,
                "threshold": ROUTER_SHARE,
            },
        )
    ]


def _runs_a_model(router: str, config: AppConfig) -> bool:
    """Whether ``router`` runs a model to decide: not the model-free ones, nor the
    configured ensemble when its members are all model-free."""
    if router in MODEL_FREE_ROUTERS:
        return False
    settings = config.router
    if router == "ensemble" and settings.name == "ensemble" and not settings.path:
        members = settings.options.get("members") or []
        names = [m if isinstance(m, str) else m.get("name") if isinstance(m, dict) else None for m in members]  # fmt: skip
        return not names or not all(n in MODEL_FREE_ROUTERS for n in names)
    return True


def largest_model(fig: LogFigures, config: AppConfig) -> list[Recommendation]:
    """Most requests sent to the largest model without routing (caller's choice or the
    ``largest`` router), of at least ``LARGEST_MIN_REQUESTS``; the demo's baseline does
    not count."""
    counted = fig.counted
    # a request or two are no habit: "1 of 1 requests (100.0%)" fired on one
    if len(config.models) < 2 or counted < LARGEST_MIN_REQUESTS:
        return []
    ladder = config.models_by_size()
    largest = ladder[-1].name
    unrouted = fig.unrouted  # counted by the top of the same ladder
    share = unrouted / counted
    if share <= LARGEST_SHARE:
        return []
    rates = fig.kwh_per_output_token()
    measured = [
        f"{m.name} {energy(rates[m.name])}" for m in ladder if m.name in rates and rates[m.name] > 0
    ]
    rate_text = (
        f"; generation energy per output token in this log: {', '.join(measured)}"
        if len(measured) > 1
        else ""
    )
    return [
        Recommendation(
            "largest_model",
            f"{unrouted} of {counted} requests ({pct(share)}, more than "
            f"{LARGEST_SHARE:.0%}) went to the largest model, {largest}, unrouted (the caller "
            f"chose it: --model, model=, its name in the server; or router.name: largest); "
            f"routed (model 'auto', a router other than largest; now {config.router.path or config.router.name}), "
            f"requests go to a smaller model where the router finds it fit{rate_text}",
            # the caller's choices are the callers' to change: no setting routes them
            "router.name" if fig.unrouted_largest else "",
            {
                "requests_unrouted": unrouted,
                "requests": counted,
                "share": share,
                "largest_model": largest,
                "threshold": LARGEST_SHARE,
                "min_requests": LARGEST_MIN_REQUESTS,
            },
        )
    ]
