"""Totals and breakdowns of logged requests, with equivalences and the
comparison with sending everything to the largest model."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from routerllm.carbon.cpu_share import CONTENDED_SHARE
from routerllm.carbon.meter import (
    GRID_NOT_RECORDED,
    HasComponents,
    Measurement,
    check_country,
    per_token_estimate,
)
from routerllm.carbon.report_text import counted
from routerllm.checks import list_of
from routerllm.config import TIER_ORDER, AppConfig, ModelConfig, loaded_config
from routerllm.exceptions import RouterLLMError

if TYPE_CHECKING:
    from routerllm.carbon.log_figures import LogFigures
    from routerllm.carbon.recommend_base import Recommendation

# Factors of the US EPA Greenhouse Gas Equivalencies Calculator:
# 3.93e-4 t CO2 per mile driven by an average gasoline passenger vehicle,
# 8.22e-6 t CO2 per smartphone charged.
KG_CO2_PER_KM_CAR = 3.93e-4 * 1000 / 1.609344
KG_CO2_PER_SMARTPHONE_CHARGE = 8.22e-6 * 1000


class MeasuredRequest(Protocol):
    """What a report needs of a request: a logged ``MeasuredRequest`` or a live ``RoutedResult``."""

    @property
    def model(self) -> str: ...
    @property
    def router(self) -> str: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def latency_s(self) -> float: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def components(self) -> dict[str, Measurement]: ...
    @property
    def energy_kwh(self) -> float: ...
    @property
    def co2_kg(self) -> float: ...
    @property
    def escalated(self) -> dict[str, Measurement]: ...
    @property
    def finish_reason(self) -> str | None: ...
    @property
    def others_cpu_share(self) -> float | None: ...


#: A report's rows by group (``Report``'s fields beside ``totals``).
ROWS = ("by_model", "by_router", "by_day", "by_grid", "by_component")


@dataclass
class Totals:
    requests: int = 0
    failed: int = 0  # of them, requests no model answered (finish reason "error"): their loads
    #: of them, requests stopped half-way (finish reason "cancelled": a stream its client
    #: left, Ctrl-C, an ``on_text`` that raised), for what they spent until then
    cancelled: int = 0
    #: of them, answers cut at their token limit (finish reason "length": ``max_new_tokens``
    #: reached, or the model's context full), as ``/metrics`` counts them apart
    cut: int = 0
    #: of them, answers served from the answer cache (their generation's method "cache"),
    #: as ``/metrics``' ``routerllm_cache_hits_total`` counts them
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    energy_kwh: float = 0.0
    co2_kg: float = 0.0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    #: False where no request of the group had its energy measured (carbon tracking
    #: off): its ``energy_kwh`` and ``co2_kg`` 0 is not a measured 0 (``as_dict``: None)
    measured: bool = True
    #: False where the group's cost is not known (a model priced by its energy, its
    #: energy not measured): its ``cost_usd`` 0 is not free (``as_dict``: None)
    cost_known: bool = True


@dataclass
class RefusedTotals:
    """The requests the budgets refused once their router had run (finish reason
    ``refused:budget``): no model ran, their routing was spent. Kept apart from the
    answered and failed requests' ``Totals`` (not in their counts, tokens, energy nor
    averages); their energy, CO2 and cost are their routing's (``measured``: as
    ``Totals.measured``, where any request's was; ``cost_known``: as
    ``Report.cost_known``, where any request's cost was known: priced by tokens, or by a
    measured energy)."""

    requests: int = 0
    energy_kwh: float = 0.0
    co2_kg: float = 0.0
    cost_usd: float = 0.0
    measured: bool = False
    cost_known: bool = False

    def add(
        self, energy_kwh: float, co2_kg: float, cost_usd: float, measured: bool, cost_known: bool
    ) -> None:
        self.requests += 1
        self.energy_kwh += energy_kwh
        self.co2_kg += co2_kg
        self.cost_usd += cost_usd
        self.measured = self.measured or measured
        self.cost_known = self.cost_known or cost_known


#: The contended requests a report names, the latest (all: the log's ``others_cpu_share``).
CONTENDED_NAMED = 10


@dataclass
class ContendedTotals:
    """The requests (answered or failed: ``Totals``') measured while other processes used
    more than ``above_share`` of the machine's CPU (``cpu_share.CONTENDED_SHARE``; their
    ``others_cpu_share``): on a machine's load (``codecarbon:load-estimate``) or its
    counters their energy and CO2 include the others' work, and they ran slower. How
    many, what they spent (in the totals), the latest ``CONTENDED_NAMED`` named (id,
    time, model, share); ``not_recorded``: the requests whose share is not known (logged
    before it was, every block too short to tell, not Linux)."""

    above_share: float = CONTENDED_SHARE
    requests: int = 0
    energy_kwh: float = 0.0
    co2_kg: float = 0.0
    not_recorded: int = 0
    latest: list[dict[str, Any]] = field(default_factory=list)

    def add(self, request_id: str, timestamp: str, model: str, share: float, energy_kwh: float, co2_kg: float) -> None:  # fmt: skip
        self.requests += 1
        self.energy_kwh += energy_kwh
        self.co2_kg += co2_kg
        self.latest.append({"request_id": request_id, "timestamp": timestamp, "model": model, "others_cpu_share": share})  # fmt: skip
        if len(self.latest) > CONTENDED_NAMED:
            del self.latest[0]


@dataclass
class ComponentTotals:
    energy_kwh: float = 0.0
    co2_kg: float = 0.0
    duration_s: float = 0.0
    measured: bool = True  # as ``Totals.measured``


@dataclass
class Report:
    totals: Totals = field(default_factory=Totals)
    by_model: dict[str, Totals] = field(default_factory=dict)
    by_router: dict[str, Totals] = field(default_factory=dict)
    by_day: dict[str, Totals] = field(default_factory=dict)  # UTC dates, logged requests only
    by_component: dict[str, ComponentTotals] = field(default_factory=dict)
    #: by the grid their CO2 was computed for (``Grid.label``; "not recorded": requests
    #: logged before grids were): several where the totals add up CO2 of several grids
    by_grid: dict[str, Totals] = field(default_factory=dict)
    #: the requests the budgets refused once routed: apart from ``totals`` and the groups
    refused: RefusedTotals = field(default_factory=RefusedTotals)
    #: of the requests in ``totals``, those measured while other processes loaded the CPU
    contended: ContendedTotals = field(default_factory=ContendedTotals)
    methods: list[str] = field(default_factory=list)
    equivalences: dict[str, float | None] = field(default_factory=dict)  # None: not measured
    versus_largest: dict[str, Any] | None = None
    budgets: dict[str, Any] | None = None
    predictor: dict[str, dict[str, float] | None] = field(default_factory=dict)
    recommendations: list[Recommendation] = field(default_factory=list)  # logged reports
    #: per model, scores given to its logged answers: {"count": n, "mean_score": x}
    feedback: dict[str, dict[str, float]] = field(default_factory=dict)
    #: per answering model, the requests whose generation's token usage a remote endpoint
    #: did not report: their tokens estimated from their prompt's and text's characters (a
    #: streamed text's pieces where more),
    #: and their energy, CO2 and cost from those, in the totals (method estimate:from-text)
    estimated_usage: dict[str, int] = field(default_factory=dict)
    #: per answering model, such requests logged before 2026-12-06, at 0 tokens (method
    #: estimate:no-usage): their generation's energy, CO2 and cost are in no total
    unknown_usage: dict[str, int] = field(default_factory=dict)
    #: per answering model, the requests a remote model without per-token figures
    #: (energy_per_token_kwh, co2_per_token_kg) answered: that generation's energy and CO2
    #: (and, for a model without token prices, its cost) are in no total
    no_energy_figures: dict[str, int] = field(default_factory=dict)
    #: the models the selected requests were logged under that the config no longer has
    #: (removed or renamed since): counted as logged, learned from by no predictor
    not_in_config: list[str] = field(default_factory=list)
    #: the groups whose energy and CO2 were not measured (``LogFigures.unmeasured_groups``):
    #: their 0 is as logged with carbon tracking off, not a measured 0
    unmeasured_groups: set[tuple[str, str]] = field(default_factory=set, repr=False)
    #: the groups whose cost is not known (``LogFigures.uncosted_groups``): their 0 is a
    #: model priced by its energy, logged without energy
    uncosted_groups: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def measured(self, kind: str = "", name: str = "") -> bool:
        """Whether the energy and CO2 of a group were measured: the totals, or ``kind``
        "model", "router", "day" or "component" and its ``name``."""
        return (kind, name) not in self.unmeasured_groups

    def cost_known(self, kind: str = "", name: str = "") -> bool:
        """Whether the cost of a group is known (``measured``'s groups, but components):
        from token prices, or from a measured energy."""
        return (kind, name) not in self.uncosted_groups

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON data: an energy, CO2 or cost not measured is None (null)."""
        out = asdict(self)
        del out["unmeasured_groups"], out["uncosted_groups"]
        for groups, keys in (
            (self.unmeasured_groups, ("energy_kwh", "co2_kg")),
            (self.uncosted_groups, ("cost_usd",)),
        ):
            for kind, name in groups:
                row = out[f"by_{kind}"].get(name) if kind else out["totals"]
                if row is not None:  # a live run's results have no day
                    row.update(dict.fromkeys(keys))
        for row in [out["totals"], *(r for k in ROWS for r in out[k].values())]:
            for flag in ("measured", "cost_known"):  # the nulls say it, as they did
                row.pop(flag, None)
        refused = out["refused"]
        if refused["requests"] and not refused.pop("measured"):  # carbon tracking off
            refused.update(energy_kwh=None, co2_kg=None)
        # priced by an energy not measured: its 0 is no cost, as the totals' null says
        if refused["requests"] and not refused.pop("cost_known"):
            refused.update(cost_usd=None)
        refused.pop("measured", None)
        refused.pop("cost_known", None)
        if not self.measured():  # carbon tracking off: their 0 is not measured either
            out["contended"].update(energy_kwh=None, co2_kg=None)
        return out

    def _flag_rows(self) -> None:
        """Each row's ``measured`` and ``cost_known``, from the groups."""
        for kind, name in self.unmeasured_groups:
            row = getattr(self, f"by_{kind}").get(name) if kind else self.totals
            if row is not None:
                row.measured = False
        for kind, name in self.uncosted_groups:
            row = getattr(self, f"by_{kind}").get(name) if kind else self.totals
            if row is not None:
                row.cost_known = False


#: The keys of ``equivalences``.
EQUIVALENCES = ("km_by_car", "smartphone_charges")


def equivalences(co2_kg: float) -> dict[str, float]:
    """CO2 expressed as km driven by an average car and smartphone charges (US EPA factors)."""
    return {
        "km_by_car": co2_kg / KG_CO2_PER_KM_CAR,
        "smartphone_charges": co2_kg / KG_CO2_PER_SMARTPHONE_CHARGE,
    }


def summarize(
    records: Iterable[MeasuredRequest],
    models: list[ModelConfig] | None = None,
    country_iso_code: str = "USA",
    token_priced: Iterable[str] | None = None,
) -> Report:
    """Aggregate records; ``models`` (the config's) enables the always-largest estimate,
    the logged report's (``logged_report``) of the same requests where
    ``country_iso_code`` is the config's (it prices the largest model's per-token figures).
    ``token_priced``: the names of the models with token prices (default: those of
    ``models``), whose cost is known with carbon tracking off, $0 included."""
    from routerllm.carbon.log_figures import LogFigures

    # checked first: a wrong one was a bare TypeError, an unknown country (a typo)
    # silently priced the largest model's per-token figures at the world average
    if isinstance(models, AppConfig | ModelConfig):  # pydantic's iterate as (name, value)
        raise RouterLLMError(
            f"models must be a list of ModelConfig (config.models), got {type(models).__name__}"
        )
    models = None if models is None else list_of(models, ModelConfig, "models")
    check_country(country_iso_code)
    if not isinstance(records, Iterable) or isinstance(records, str | bytes | Mapping):
        raise RouterLLMError(
            f"summarize takes a list of results (RoutedResult) or logged requests "
            f"(RequestLog.records()), got {type(records).__name__}"
        )
    if token_priced is None:
        token_priced = priced_by_tokens(models or [])
    elif isinstance(token_priced, str):  # one name, not its letters
        raise RouterLLMError("token_priced must be a list of model names, not one name")
    fig = LogFigures(largest=_largest(models).name if models else None, token_priced=token_priced)
    for i, r in enumerate(records):
        if not isinstance(r, HasComponents):  # a RoutedResult or a logged RequestRecord
            raise RouterLLMError(
                f"records[{i}] is {type(r).__name__}, not a result (RoutedResult) or a "
                f"logged request (RequestRecord)"
            )
        parts = [(n, m.duration_s, m.energy_kwh, m.co2_kg, m.method) for n, m in r.components.items()]  # fmt: skip
        # what the models a cascade escalated from spent, as the log keeps it apart
        earlier = [(n, m.duration_s, m.energy_kwh, m.co2_kg, m.method) for n, m in r.escalated.items()]  # fmt: skip
        # live results carry no timestamp or tag: only the logged report's by_day and
        # recommendations read them; a logged request's finish reason says it failed
        numbers = (r.prompt_tokens, r.completion_tokens, r.latency_s, r.cost_usd)
        grid = getattr(r, "grid", None)
        label = GRID_NOT_RECORDED if grid is None else grid.label
        rid = str(
            getattr(r, "request_id", "") or getattr(r, "id", "")
        )  # a result's, a logged one's
        fig.add("", "", r.model, r.router, *numbers, "", r.finish_reason or "", parts, earlier, grid=label, others_cpu_share=r.others_cpu_share, request_id=rid)  # fmt: skip
    return _report(fig, models, country_iso_code)


def _report(fig: LogFigures, models: list[ModelConfig] | None, country_iso_code: str) -> Report:
    """The report of the requests added up in ``fig`` (no by_day, budgets, feedback,
    predictor nor recommendations: ``logged_report`` adds them)."""
    rep = Report(totals=fig.totals, by_model=fig.by_model, by_router=fig.by_router)
    rep.by_component = fig.by_component
    rep.by_grid = fig.by_grid
    rep.refused = fig.refused
    rep.contended = fig.contended
    rep.methods = sorted(fig.methods)
    rep.unmeasured_groups = fig.unmeasured_groups()
    rep.uncosted_groups = fig.uncosted_groups()
    rep._flag_rows()
    rep.estimated_usage = {m: n for m, n in fig.estimated_usage.items() if n}
    rep.unknown_usage = {m: n for m, n in fig.unknown_usage.items() if n}
    rep.no_energy_figures = {m: n for m, n in fig.no_energy_figures.items() if n}
    rep.equivalences = (
        dict(equivalences(rep.totals.co2_kg)) if rep.measured() else dict.fromkeys(EQUIVALENCES)
    )
    if models:
        rep.versus_largest = largest_estimate(fig, models, country_iso_code)
    return rep


def logged_report(
    config: AppConfig,
    since: str | None = None,
    tag: str | None = None,
    log_path: str | os.PathLike[str] | None = None,
) -> Report:
    """The report of the requests in the request log at ``log_path`` (default: the
    config's ``log.path``; a system given another log reports on that one), from
    ``since``, with ``tag``, read without changing the log; a clear error when there is
    no log yet. Its budgets and the predictor's figures are the whole log's, whatever
    ``tag``; its recommendations are those the selected requests and the budgets call
    for. The requests are streamed through ``LogFigures`` (a few numbers kept per
    request, not the requests), so a long log is reported in seconds."""
    from routerllm.carbon.budget import CarbonBudget
    from routerllm.carbon.log_figures import LogFigures
    from routerllm.carbon.log_rows import utc_timestamp
    from routerllm.carbon.log_tallies import CacheReplay
    from routerllm.carbon.predictor import CarbonPredictor
    from routerllm.carbon.recommend import recommendations
    from routerllm.carbon.request_log import RequestLog
    from routerllm.model_header import effective_context

    config = loaded_config(config, "logged_report")  # a name, None: an AttributeError
    # the largest model's per-token figures are priced at its grid: an unknown country
    # (a config loaded without building a system) was priced at the world average's
    check_country(config.carbon.country_iso_code)
    path = Path(config.log.path if log_path is None else log_path)
    if not path.exists():  # RequestLog says what else is wrong with it (a folder)
        raise RouterLLMError(
            f"no request log at {path} (log.path): route some requests first, or "
            f"point log.path at an existing log"
        )
    models = config.models
    cache = config.cache
    fig = LogFigures(
        largest=_largest(models).name if models else None,
        ladder_top=config.models_by_size()[-1].name if models else None,
        replay=None if cache.enabled else CacheReplay(cache.max_entries, cache.ttl_s),
        contexts={m.name: effective_context(m) for m in models},
        token_priced=priced_by_tokens(models),
    )
    with RequestLog(path, read_only=True) as log:  # a report changes nothing
        for row in log.report_rows(since=since, tag=tag):
            fig.add(*row)
        rep = _report(fig, models, config.carbon.country_iso_code)
        rep.by_day = fig.by_day  # the trend: oldest day first
        if config.budgets.limits():
            rep.budgets = CarbonBudget(config.budgets, log).summary(utc_timestamp(since) if since else "")  # fmt: skip
        predictor = CarbonPredictor.from_log(config, log)
        rep.feedback = {
            model: {"count": n, "mean_score": mean}
            for model, (n, mean) in log.feedback_by_model(since, tag).items()
        }
    rep.predictor = {
        m.name: (p.as_dict() if (p := predictor.profile(m.name)) else None) for m in config.models
    }
    rep.not_in_config = sorted(set(rep.by_model) - {m.name for m in config.models})
    rep.recommendations = recommendations(fig, config, rep)
    return rep


def priced_by_tokens(models: Iterable[ModelConfig]) -> list[str]:
    """The names of ``models`` that have token prices (``ModelConfig.priced_by_tokens``)."""
    return [m.name for m in models if m.priced_by_tokens]


def _logged_rates(
    fig: LogFigures, largest: ModelConfig, country_iso_code: str
) -> tuple[float, float, tuple[float, float], str]:
    """The largest model's generation energy and CO2 per output token, and (kWh, kg) per
    prompt token, from its requests in ``fig`` (some output tokens), and what they are.
    Where its requests' shapes tell the two costs apart, each is fitted, as the
    CarbonPredictor fits them (energy and CO2 each: its requests may have run on several
    grids); where they cannot and the config prices a prompt token apart, their energy
    is shared at its figures' ratio (``config_split``); else it is all the output
    tokens': the prompts the largest model read are in that rate, those of the requests
    it did not answer are not (routing sends long prompts one way, short ones another).
    Each way, as the predictor, without a reading over ``FAR`` times what the others
    make of its tokens."""
    import numpy as np

    from routerllm.carbon.predictor import (
        MIN_HISTORY,
        config_split,
        nonnegative_fit,
        not_far,
        tells_apart,
        whole_per_token,
    )

    prompt, output = np.asarray(fig.served_prompt_tokens), np.asarray(fig.served_tokens.values)
    spent = (np.asarray(fig.served_kwh.values), np.asarray(fig.served_co2.values))
    # a reading far over what the others make of its tokens (a bad sample) would set the
    # rates the routed requests are priced at, and the saving claimed with them: left
    # out of the rates (not of the log's own side), as the predictor leaves it out
    kept = not_far(spent[0], prompt, output)
    if not output[kept].sum():  # those kept wrote nothing: no rate per token without it
        kept[:] = True
    prompt, output, spent = prompt[kept], output[kept], (spent[0][kept], spent[1][kept])
    estimated = fig.served_estimated
    rate = "logged rate" if estimated else "measured rate"
    of_them = f", {estimated} estimated from per-token figures" if estimated else ""
    if far := int(np.sum(~kept)):
        of_them += f", {counted(far, 'far-off reading')} left out of the rates"
    requests = f"({counted(fig.served, 'request')}{of_them})"
    source = f"{rate} of {largest.name} in this log {requests}"
    if len(output) >= MIN_HISTORY and tells_apart(prompt, output):
        (read_kwh, kwh), (read_kg, kg) = (nonnegative_fit(prompt, output, y) for y in spent)
        source = f"{rate}s of {largest.name} in this log per prompt and per generated token {requests}"  # fmt: skip
        return kwh, kg, (read_kwh, read_kg), source
    if (split := config_split(largest, country_iso_code)) is not None:
        (read_kwh, kwh), (read_kg, kg) = (whole_per_token(y, prompt, output, split) for y in spent)
        return kwh, kg, (read_kwh, read_kg), f"{source}, shared between prompt and generated tokens at the config's ratio"  # fmt: skip
    out_tokens = float(output.sum())
    return float(spent[0].sum()) / out_tokens, float(spent[1].sum()) / out_tokens, (0.0, 0.0), source  # fmt: skip


def _largest(models: list[ModelConfig]) -> ModelConfig:
    """The top of the ladder every part orders models by (tier, then parameters)."""
    return max(models, key=lambda m: (TIER_ORDER[m.tier], m.params_b))


def versus_largest(
    records: list[MeasuredRequest], models: list[ModelConfig], country_iso_code: str = "USA"
) -> dict[str, Any] | None:
    """Estimate what the same requests would have cost on the largest model
    (``largest_estimate`` of their figures)."""
    return summarize(records, models, country_iso_code).versus_largest


def largest_estimate(
    fig: LogFigures, models: list[ModelConfig], country_iso_code: str = "USA"
) -> dict[str, Any] | None:
    """Estimate what the requests added up in ``fig`` would have cost on the largest
    model.

    Each request not served by the largest model is re-priced at the largest
    model's generation energy per output token and, where they can be told apart, per
    prompt token: measured from this log when it holds requests served by that model
    (``_logged_rates``), else, or where every one of them was logged from the config's
    per-token figures (a remote model's), those figures (and its figure per prompt
    token, where it has one, for the prompt). It is an estimate (another model writes a
    different number of tokens); the demo measures the real always-largest run instead.
    The largest is the top of the ladder every part orders models by (tier, then
    parameters), the demo's always-largest and the ``largest`` router's. An answer from the request
    cache spent its routing only: it teaches no rate, and counts as it is (on the
    largest model, the same repeated request would have been answered from the cache);
    so does one of the largest model cancelled half-way (its client gone), whose few
    tokens carry its prompt's energy.
    A request the cascade escalated to the largest model counts on the estimate's side,
    and in its rate, the largest model's own work only (not the first models' answers,
    logged apart).
    A request logged without energy (carbon tracking off, a failed CodeCarbon task, a
    remote model without per-token figures) is left out of both sides: it spent nothing
    as logged, yet would be priced in full.
    """
    largest = _largest(models)
    assert fig.largest == largest.name, "the figures were added up for another largest model"
    # a remote largest model's generations are logged from its per-token figures: those
    # price the others exactly, a rate read back from them at best as well
    from_figures = fig.served and fig.served_from_figures == fig.served
    if fig.served_tokens.total() and not (from_figures and largest.generation_figures):
        per_token, per_token_co2, per_prompt, source = _logged_rates(fig, largest, country_iso_code)  # fmt: skip
    elif largest.generation_figures:
        unit = per_token_estimate("llm_inference", largest, 1, 0.0, country_iso_code)
        per_token, per_token_co2 = unit.energy_kwh, unit.co2_kg
        # (kWh, kg) per prompt token: most configs' figures count the prompt in the rate
        # per output token
        per_prompt = (0.0, 0.0)
        source = f"per-token figures of {largest.name} in the config"
        if largest.prompt_figures:  # its rate per generated token leaves the prompt out
            read = per_token_estimate("llm_inference", largest, 0, 0.0, country_iso_code, 1)
            per_prompt = (read.energy_kwh, read.co2_kg)
            source += " (per prompt and per generated token)"
        if from_figures:
            were = "was" if fig.served == 1 else "were"
            source += f", which its {counted(fig.served, 'request')} in this log {were} logged from"
    else:
        return None
    if not len(fig.measured_kwh):
        return None
    actual_kwh = fig.measured_kwh.total()
    actual_co2 = fig.measured_co2.total()
    est_kwh, est_co2 = fig.estimate_largest(per_token, per_token_co2, per_prompt)
    if per_token_co2 == 0.0 and est_co2 == 0.0:
        return None
    left_out, failed = fig.left_out, fig.failed_out
    return {
        "largest_model": largest.name,
        "estimated_energy_kwh": est_kwh,
        "estimated_co2_kg": est_co2,
        "actual_energy_kwh": actual_kwh,
        "actual_co2_kg": actual_co2,
        "co2_saved_fraction": 1.0 - actual_co2 / est_co2 if est_co2 else 0.0,
        "method": f"estimate: {source}"
        + (f"; {counted(left_out, 'request')} logged without energy left out" if left_out else "")
        + (
            f"; {counted(failed, 'request')} that failed (no answer, their loads) left out"
            if failed
            else ""
        ),
    }
