"""The figures a report and its recommendations read, gathered in one pass over the
requests, oldest first, without keeping them (``report.logged_report`` streams the
request log through it; ``report.summarize`` passes live results).

Every figure is added up in the order and with the operations the report has always
used (``+=`` where a total grows request by request, the builtin ``sum`` where a
figure is the sum of a selection), so that a report read this way is identical, to
the last bit, to one computed from the requests held in memory. Where a figure is a
``sum`` of a selection, its terms are kept as 8-byte doubles (``Terms``), not as
requests: a few per request, and ``sum`` over them gives what it gave over the
requests on every Python version (``log_tallies.Terms``).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import astuple
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING

from routerllm.backends.interrupts import CANCELLED
from routerllm.carbon.cpu_share import CONTENDED_SHARE
from routerllm.carbon.log_rows import CUT, FAILED, REFUSED, own_part
from routerllm.carbon.log_tallies import CacheReplay, CutAnswers, FailedLoads, Part, Terms
from routerllm.carbon.meter import (
    CACHED,
    CODECARBON_FAILED,
    COMPONENTS,
    FROM_TEXT,
    GRID_NOT_RECORDED,
    NO_FIGURES,
    NO_FIGURES_FROM_TEXT,
    NO_USAGE,
    NOT_MEASURED,
    PER_TOKEN,
    TOKENS_FROM_TEXT,
    WITHOUT_FIGURES,
    Measurement,
)
from routerllm.carbon.predictor import UNMEASURED
from routerllm.carbon.recommend import BASELINE_TAG, DEMO_TAGS
from routerllm.routed_result import FIXED

if TYPE_CHECKING:
    from routerllm.carbon.report import ComponentTotals, RefusedTotals, Totals

#: The kinds of group a request is in, beside the totals (a part's: "component").
GROUP_KINDS = ("model", "router", "day", "grid")
#: The methods of a part not measured: carbon tracking off's, a CodeCarbon task's that failed.
_NOT_MEASURED = (NOT_MEASURED, CODECARBON_FAILED)
#: The methods a part is named by in the report though it logged no energy: its energy unknown.
_ENERGY_UNKNOWN = (FROM_TEXT, NO_USAGE, NO_FIGURES, NO_FIGURES_FROM_TEXT, CODECARBON_FAILED)
#: A part's energy and CO2 (``Part``'s third and fourth).
_KWH, _KG = itemgetter(2), itemgetter(3)


class LogFigures:
    """The report's totals and breakdowns, the inputs of its comparison with the largest
    model (``largest``, the top of ``max`` by tier and parameters) and of the
    recommendations (``ladder_top``, the last of the models sorted by size, and a
    ``replay`` of the cache where it is off, and each model's ``contexts``, in tokens),
    added request by request."""

    def __init__(
        self,
        largest: str | None = None,
        ladder_top: str | None = None,
        replay: CacheReplay | None = None,  # fmt: skip
        contexts: dict[str, int] | None = None,
        token_priced: Iterable[str] = (),
    ) -> None:
        from routerllm.carbon.report import ComponentTotals

        self.largest = largest
        self.ladder_top = ladder_top
        self.replay = replay
        self.contexts = contexts or {}
        # the models priced by their tokens: a cost of theirs is known, measured or not
        self.token_priced = frozenset(token_priced)
        self.totals = _totals()
        self.by_model: dict[str, Totals] = {}
        self.by_router: dict[str, Totals] = {}
        self.by_day: dict[str, Totals] = {}
        self.by_grid: dict[str, Totals] = {}  # by ``Grid.label``
        self.by_component: dict[str, ComponentTotals] = {c: ComponentTotals() for c in COMPONENTS}
        self.methods: set[str] = set()
        # the comparison with the largest model: measured requests only
        self.left_out = 0
        self.failed_out = 0  # failed requests (no answer, their loads): nothing to compare
        self.served = 0
        self.served_estimated = 0  # of those, generations from per-token figures (remote)
        self.served_from_figures = 0  # of those, wholly (not escalated from a measured one)
        self.served_tokens, self.served_kwh, self.served_co2 = Terms(), Terms(), Terms()
        self.served_prompt_tokens = array("d")  # by served request, as the three above
        self.measured_kwh, self.measured_co2 = Terms(), Terms()
        self.measured_tokens = array("d")
        self.measured_prompt_tokens = array("d")
        self.measured_as_is = bytearray()  # 1: counted as it is (the largest's, or cached)
        # by row, the kWh and kg of the models a cascade escalated from: what a row counted
        # as it is leaves out (few rows have any)
        self.escalated_from: dict[int, tuple[float, float]] = {}
        # the recommendations
        self.energy = Terms()  # every request's
        self.loading_kwh = Terms()
        self.loads: Counter[str] = Counter()
        self.failed_loads: dict[str, FailedLoads] = {}  # by model: no loads, not churn
        self.cut: dict[str, CutAnswers] = {}
        self.uncached_co2 = Terms()
        self.uncached_routing: dict[str, float] = {}  # per router, answers not cached
        # and the largest of one request: a router's first in a process loads its model
        self.uncached_routing_max: dict[str, float] = {}
        from routerllm.carbon.report import ContendedTotals, RefusedTotals

        self.refused: RefusedTotals = RefusedTotals()  # refused once routed: apart
        self.contended = ContendedTotals()  # measured while other processes loaded the CPU
        self.counted = 0  # not the demo's baseline
        self.unrouted = 0
        self.unrouted_largest = 0  # of those, the largest router's (the others: the caller's)
        self.rate_tokens: Counter[str] = Counter()
        self.rate_energy: dict[str, float] = {}
        self.by_method: dict[str, float] = {}
        self.per_token_models: set[str] = set()
        self.unmeasured = 0
        # the names of the groups (of each kind of ``GROUP_KINDS``) with a request whose
        # energy was measured, the components with a part that was, and those with a part
        # that was not (``unmeasured_groups``)
        self._measured_names: tuple[set[str], ...] = tuple(set() for _ in GROUP_KINDS)
        self.measured_parts: set[str] = set()
        self.unmeasured_parts: set[str] = set()
        # the names of the groups with a request whose cost is known (``uncosted_groups``)
        self._costed_names: tuple[set[str], ...] = tuple(set() for _ in GROUP_KINDS)
        # per answering model, the requests a remote endpoint answered without saying how
        # many tokens it generated: their tokens estimated from their text (in the totals)
        self.estimated_usage: Counter[str] = Counter()
        # and those logged so before 2026-12-06, at 0 tokens: their generation's energy,
        # CO2 and cost are not known (in the totals as the 0 they were logged at)
        self.unknown_usage: Counter[str] = Counter()
        # per answering model, the remote answers of a model without per-token figures:
        # their tokens are known, their generation's energy and CO2 not
        self.no_energy_figures: Counter[str] = Counter()

    def add(
        self,
        timestamp: str,
        sha: str,
        model: str,
        router: str,
        prompt_tokens: int,
        completion_tokens: int,
        latency_s: float,
        cost_usd: float,
        tag: str,
        finish_reason: str,
        parts: Sequence[Part],
        escalated: Sequence[Part] = (),
        load_error: str = "",
        load_error_model: str = "",
        load_error_kwh: float | None = None,
        grid: str = GRID_NOT_RECORDED,
        others_cpu_share: float | None = None,
        request_id: str = "",
        model_loaded: bool | None = None,
    ) -> None:
        """One request, after those before it; ``escalated``: the part of its ``parts``
        the models a cascade escalated from spent (not the answering model's own work);
        ``load_error``: where it failed as its model failed to load, that load's error, or
        where its cascade's step up to ``load_error_model`` did (the answer kept), that
        step's, its load's energy ``load_error_kwh`` (None: not measured) in ``escalated``;
        ``grid``: the grid its CO2 was computed for (``Grid.label``); ``others_cpu_share``:
        the share of the machine's CPU other processes used while it was measured (None:
        not known), above ``CONTENDED_SHARE`` named by ``request_id``; ``model_loaded``:
        whether its model loaded for it (``RequestRecord.model_loaded``: a count's read,
        logged as its loading, is no load), None where not recorded (a loading that took
        time or energy is taken for a load, as it was)."""
        energy = sum(map(_KWH, parts))
        co2 = sum(map(_KG, parts))
        if finish_reason == REFUSED:  # its routing alone, apart from the answers' figures
            measured = any(_measured(p) for p in parts)
            known = self._cost_known(measured, cost_usd, model)
            self.refused.add(energy, co2, cost_usd, measured, known)
            # the router's overhead counts it: it routed, then nothing ran; a process's
            # first request refused so loaded the router's model as a first answer does
            self.uncached_co2.add(co2)
            self._routed(router, sum(p[3] for p in parts if p[0] == "router_inference"))
            return
        if others_cpu_share is None:
            self.contended.not_recorded += 1
        elif others_cpu_share > CONTENDED_SHARE:  # its energy may hold other processes' work
            self.contended.add(request_id, timestamp, model, others_cpu_share, energy, co2)
        failed = finish_reason == FAILED  # no answer: its loads (and routing) only
        # stopped half-way, its client gone: spent, but not an answer's length or rate
        cancelled = finish_reason == CANCELLED
        whole = not (failed or cancelled)
        at_limit = finish_reason == CUT  # an answer, cut at its token limit
        by_model, by_router, by_day, by_grid, day = (
            self.by_model,
            self.by_router,
            self.by_day,
            self.by_grid,
            timestamp[:10],
        )
        groups = (
            self.totals,
            by_model.get(model) or by_model.setdefault(model, _totals()),
            by_router.get(router) or by_router.setdefault(router, _totals()),
            by_day.get(day) or by_day.setdefault(day, _totals()),
            by_grid.get(grid) or by_grid.setdefault(grid, _totals()),
        )
        for t in groups:  # inlined, not a Totals method: it runs five times a request
            t.requests += 1
            t.failed += failed
            t.cancelled += cancelled
            t.cut += at_limit
            t.prompt_tokens += prompt_tokens
            t.completion_tokens += completion_tokens
            t.energy_kwh += energy
            t.co2_kg += co2
            t.cost_usd += cost_usd
            t.latency_s += latency_s
        cached = llm = loading = routing = None
        by_method, by_component = self.by_method, self.by_component
        earlier = {p[0]: p for p in escalated} if escalated else {}
        measured = not parts  # a request logged without parts spent nothing, as logged
        for p in parts:
            name, duration, kwh, kg, method = p
            if method == CACHED and not (kwh or kg):
                pass  # a cached answer's unspent part: neither measured nor not
            elif kwh or kg or method not in _NOT_MEASURED:  # ``_measured``, inlined
                measured = True
                self.measured_parts.add(name)
            else:
                self.unmeasured_parts.add(name)
            if (c := by_component.get(name)) is None:
                from routerllm.carbon.report import ComponentTotals

                c = by_component[name] = ComponentTotals()
            c.energy_kwh += kwh
            c.co2_kg += kg
            c.duration_s += duration
            # a part of unknown energy is said so, though its 0 kWh reads as nothing
            if kwh or kg or method in _ENERGY_UNKNOWN:
                self.methods.add(method)
            if earlier and (e := earlier.get(name)) is not None:
                # a cascade's models' methods are joined: each model's part by its own
                by_method[e[4]] = by_method.get(e[4], 0.0) + e[2]
                own = _own(p, earlier)
                assert own is not None
                kwh, method = own[2], own[4]
            by_method[method] = by_method.get(method, 0.0) + kwh
            if method == PER_TOKEN and kwh:
                self.per_token_models.add(model)
            if method == CACHED:
                cached = True
            if name == "llm_inference":
                llm = p
                # tokens estimated, energy without figures: either, or both at once
                from_text, no_usage, no_figures = _usage(p[4])
                if from_text:
                    self.estimated_usage[model] += 1
                elif no_usage:
                    self.unknown_usage[model] += 1
                if no_figures:
                    self.no_energy_figures[model] += 1
            elif name == "model_loading":
                loading = p
            elif name == "router_inference":
                routing = p
        if llm is not None and llm[4] == CACHED:  # generated by none: /metrics' cache hit
            for t in groups:
                t.cached += 1
        if earlier:  # the answering model's own generation: its rate per token
            llm = _own(llm, earlier)
        # a failed request's generation, if any, wrote no answer to price on the largest
        # model nor a rate (a remote's, with the tokens its endpoint billed, neither)
        if failed:
            self.failed_out += 1
        else:
            self._versus(model, prompt_tokens, completion_tokens, energy, co2, bool(cached), llm, escalated, whole)  # fmt: skip
        self.energy.add(energy)
        # a load that failed is no load: its energy is in the totals, not in loading's churn
        stepped = load_error_model not in ("", model)  # a cascade's step up's, the answer kept
        # the answering model's own load, not a model's it escalated from
        own_loading = _own(loading, earlier) if earlier else loading
        own_load = None if load_error and not stepped else own_loading
        if model_loaded is None:  # an older row: its loading, if it took time or energy
            loaded = own_load is not None and own_load[4] != CACHED and (own_load[1] > 0 or own_load[2] > 0)  # fmt: skip
        else:  # its loading may be a count's read alone: energy of loading, no load
            loaded = bool(model_loaded) and own_load is not None
        if self.replay is not None and not cached and tag not in DEMO_TAGS:
            self.replay.add(timestamp, sha, model, energy, parts, whole, loaded)
        if load_error:
            if stepped:
                failed_model, kwh, metered = load_error_model, load_error_kwh or 0.0, load_error_kwh is not None  # fmt: skip
            else:
                own = own_loading
                failed_model, kwh = model, own[2] if own is not None else 0.0
                metered = own is not None and _measured(own)
            fl = self.failed_loads.get(failed_model) or self.failed_loads.setdefault(failed_model, FailedLoads())  # fmt: skip
            fl.count += 1
            fl.kept += stepped
            fl.energy_kwh += kwh
            fl.measured = fl.measured or metered
            fl.last, fl.error, fl.answered_since = timestamp, load_error, 0
        if load_error and not stepped:
            if (before := earlier.get("model_loading")) is not None:  # the models stepped up from
                self.loading_kwh.add(before[2])
        elif loading is not None:
            self.loading_kwh.add(loading[2] - (load_error_kwh or 0.0) if stepped else loading[2])
            if loaded:
                self.loads[model] += 1
        if not failed and self.failed_loads and (since := self.failed_loads.get(model)) is not None:
            since.answered_since += 1
        if (cut := self.cut.get(model)) is None:
            cut = self.cut[model] = CutAnswers(context=self.contexts.get(model, 0))
        if finish_reason and not cached and whole:
            cut.known += 1
            if finish_reason == CUT:
                cut.cut += 1
                # the tokens logged are the answering model's, escalated or stepped up
                if cut.context and prompt_tokens + completion_tokens >= cut.context:
                    cut.filled += 1
                else:
                    cut.lengths[completion_tokens] += 1
                    if cut.cut - cut.filled == 1 or completion_tokens > cut.longest:
                        cut.longest = completion_tokens
        if not cached:
            self.uncached_co2.add(co2)
            if routing is not None:
                self._routed(router, routing[3])
        if tag != BASELINE_TAG:
            self.counted += 1
            if model == self.ladder_top and router in ("largest", FIXED):
                self.unrouted += 1
                self.unrouted_largest += router == "largest"
            if llm is not None and llm[4] not in UNMEASURED and whole:  # a rate per answer
                self.rate_tokens[model] += completion_tokens
                self.rate_energy[model] = self.rate_energy.get(model, 0.0) + llm[2]
        if parts and not measured:  # every part "none" (a cached answer's unspent aside)
            self.unmeasured += 1
        # its groups: a name in each kind's set (GROUP_KINDS' order), not a tuple each
        if measured:
            models, routers, days, grids = self._measured_names
            models.add(model)
            routers.add(router)
            days.add(day)
            grids.add(grid)
        if self._cost_known(measured, cost_usd, model):
            models, routers, days, grids = self._costed_names
            models.add(model)
            routers.add(router)
            days.add(day)
            grids.add(grid)

    def _cost_known(self, measured: bool, cost_usd: float, model: str) -> bool:
        """Whether a request's cost is known: logged without energy, a cost of 0 is a
        model priced by its energy (no token prices) at 0 kWh, not known; token prices
        make one known, $0 too (no token billed)."""
        return measured or bool(cost_usd) or model in self.token_priced

    def _routed(self, router: str, co2_kg: float) -> None:
        """A routing not answered from the cache (an answer's, or a refused request's)."""
        self.uncached_routing[router] = self.uncached_routing.get(router, 0.0) + co2_kg
        if co2_kg > self.uncached_routing_max.get(router, 0.0):
            self.uncached_routing_max[router] = co2_kg

    def _versus(
        self,
        model: str,
        read: int,
        tokens: int,
        energy: float,
        co2: float,
        cached: bool,
        llm: Part | None,
        escalated: Sequence[Part],
        whole: bool = True,
    ) -> None:
        """One request's figures beside the largest model's (``read`` prompt tokens,
        ``tokens`` written), or counted as left out."""
        # a remote model without per-token figures logs its tokens at 0 kWh: unknown, not free
        unpriced = llm is not None and llm[4] == PER_TOKEN and not (llm[2] or llm[3]) and tokens
        if not (cached or (llm is not None and llm[4] not in UNMEASURED)) or unpriced:
            self.left_out += 1
            return
        self.measured_kwh.add(energy)
        self.measured_co2.add(co2)
        self.measured_tokens.append(tokens)
        self.measured_prompt_tokens.append(read)
        self.measured_as_is.append(model == self.largest or cached)
        # on the largest model alone, an escalated request would not have spent its first
        # models' loading and generation
        if escalated:
            row = len(self.measured_as_is) - 1
            self.escalated_from[row] = (sum(p[2] for p in escalated), sum(p[3] for p in escalated))  # fmt: skip
        # one cancelled half-way counts as it is (on the largest model, its client would
        # have left too), but its few tokens carry its prompt's energy: no rate
        if model == self.largest and not cached and whole:
            self.served += 1
            self.served_tokens.add(tokens)
            self.served_prompt_tokens.append(read)
            if llm is not None:
                self.served_kwh.add(llm[2])
                self.served_co2.add(llm[3])
                if PER_TOKEN in llm[4].split("+"):  # an escalation's methods are joined by +
                    self.served_estimated += 1
                    self.served_from_figures += llm[4] == PER_TOKEN

    @property
    def measured(self) -> set[tuple[str, str]]:
        """The groups with a request (a part, for a component) whose energy was measured:
        ``("", "")`` the totals, ``(kind, name)`` as ``unmeasured_groups`` names them."""
        return _groups_of(self._measured_names) | {("component", n) for n in self.measured_parts}

    @property
    def costed(self) -> set[tuple[str, str]]:
        """The groups with a request whose cost is known."""
        return _groups_of(self._costed_names)

    def unmeasured_groups(self) -> set[tuple[str, str]]:
        """The groups whose energy and CO2 were not measured, each of their requests (or
        parts) logged without energy (carbon tracking off, method ``none``): ``("", "")``
        the totals, ``("model", name)``, ``("router", name)``, ``("day", date)``, ``("grid", label)``,
        ``("component", name)``. A group of some measured requests counts theirs."""
        groups = [*self._groups(), *(("component", n) for n in self.unmeasured_parts)]
        measured = self.measured
        return {g for g in groups if g not in measured}

    def uncosted_groups(self) -> set[tuple[str, str]]:
        """The groups (``unmeasured_groups``' but components, which have no cost) whose
        cost is not known: each of their requests logged without energy, at a cost of 0,
        by a model without token prices (``token_priced``), its cost its energy at the
        electricity price."""
        costed = self.costed
        return {g for g in self._groups() if g not in costed}

    def _groups(self) -> list[tuple[str, str]]:
        """The totals (where there is a request) and every model, router and day."""
        groups = [("", "")] if self.totals.requests else []
        groups += [("model", n) for n in self.by_model] + [("router", n) for n in self.by_router]
        return groups + [("day", d) for d in self.by_day] + [("grid", g) for g in self.by_grid]

    @property
    def requests(self) -> int:
        return self.totals.requests

    def estimate_largest(
        self, per_token: float, per_token_co2: float, per_prompt: tuple[float, float] = (0.0, 0.0)
    ) -> tuple[float, float]:
        """What the measured requests would have spent on the largest model, at these
        rates per output token, and ``per_prompt`` (kWh, kg) per prompt token where the
        config prices those apart (those of the largest, and cached answers, as they are)."""
        est_kwh = est_co2 = 0.0
        rows = zip(self.measured_as_is, self.measured_kwh.values, self.measured_co2.values, self.measured_tokens, self.measured_prompt_tokens, strict=True)  # fmt: skip
        for row, (as_is, kwh, kg, tokens, read) in enumerate(rows):
            if as_is:
                if (earlier := self.escalated_from.get(row)) is not None:
                    kwh, kg = kwh - earlier[0], kg - earlier[1]
                est_kwh += kwh
                est_co2 += kg
            else:
                est_kwh += tokens * per_token + read * per_prompt[0]
                est_co2 += tokens * per_token_co2 + read * per_prompt[1]
        return est_kwh, est_co2

    def kwh_per_output_token(self) -> dict[str, float]:
        """Per model, the generation energy per output token of its measured answers (not
        those logged with carbon tracking off, nor cached, nor cancelled; not the demo's
        baseline)."""
        return {n: self.rate_energy[n] / t for n, t in self.rate_tokens.items() if t}


def _groups_of(names: tuple[set[str], ...]) -> set[tuple[str, str]]:
    """The groups of ``names`` (a set of names for each kind of ``GROUP_KINDS``), with the
    totals (``("", "")``) where there is one: a request is in each kind's group."""
    groups = {(kind, n) for kind, kind_names in zip(GROUP_KINDS, names, strict=True) for n in kind_names}  # fmt: skip
    return groups | {("", "")} if groups else groups


@lru_cache(maxsize=1024)
def _usage(method: str) -> tuple[bool, bool, bool]:
    """Of a generation's logged ``method`` (an escalation's methods joined by +): whether
    its tokens were estimated from its text, logged at 0 for want of usage, and priced
    without energy figures; a few methods each asked per request, so kept."""
    joined = method.split("+")
    return (
        any(m in TOKENS_FROM_TEXT for m in joined),
        NO_USAGE in joined,
        any(m in WITHOUT_FIGURES for m in joined),
    )


def _measured(part: Part) -> bool:
    """Whether a logged part was measured or estimated: not carbon tracking off's 0 kWh,
    method "none", nor a CodeCarbon task's that failed, "codecarbon:failed" (its 0 kWh
    would read as measured, lowering its model's figures)."""
    return part[4] not in _NOT_MEASURED or bool(part[2] or part[3])


def _own(part: Part | None, earlier: dict[str, Part]) -> Part | None:
    """``part`` without what the models escalated from spent of it (``earlier``):
    ``own_part`` on the log's rows, which are a ``Measurement``'s fields in order."""
    if part is None or (e := earlier.get(part[0])) is None:
        return part
    own = own_part(Measurement(*part), Measurement(*e))
    assert own is not None
    return astuple(own)[:5]  # a Part: the logged fields, not the unlogged CPU share


def _totals() -> Totals:
    from routerllm.carbon.report import Totals

    return Totals()
