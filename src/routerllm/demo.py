"""The offline demo: built-in prompts routed to the local ladder, and the same
prompts sent to the largest model, both measured for real.

The two runs are compared, so they start from the same state: after a warm-up that
neither is charged for (the process's one-off costs: llama.cpp's initialisation, a
model file's first conversion, reading the files from disk), with no model loaded;
each then pays for loading the models it uses."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

from routerllm.backends.base import GenerationRequest
from routerllm.carbon.meter import NOT_MEASURED, Measurement
from routerllm.exceptions import BudgetExceededError, RequestLogError, RouterLLMError
from routerllm.routed_result import RoutedResult
from routerllm.system import RouterLLM

log = logging.getLogger(__name__)

DEMO_PROMPTS: tuple[str, ...] = (
    "Translate 'hello' to French.",
    "What is a Python list?",
    "Write a haiku about the sea.",
    "Explain the difference between TCP and UDP.",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Implement a thread-safe LRU cache in Python with get and put methods, "
    "and explain the time complexity of each operation.",
)


@dataclass(frozen=True)
class RunTotals:
    """Totals of one run; ``warm_*`` leave out model loading (a one-off cost for a server)."""

    energy_kwh: float
    co2_kg: float
    time_s: float
    completion_tokens: int
    warm_energy_kwh: float
    warm_co2_kg: float

    @classmethod
    def of(cls, results: list[RoutedResult]) -> RunTotals:
        def loading(r: RoutedResult, attr: str) -> float:
            m = r.components.get("model_loading")
            return float(getattr(m, attr)) if m else 0.0

        return cls(
            energy_kwh=sum(r.energy_kwh for r in results),
            co2_kg=sum(r.co2_kg for r in results),
            time_s=sum(r.latency_s for r in results),
            completion_tokens=sum(r.completion_tokens for r in results),
            warm_energy_kwh=sum(r.energy_kwh - loading(r, "energy_kwh") for r in results),
            warm_co2_kg=sum(r.co2_kg - loading(r, "co2_kg") for r in results),
        )


def _figures(totals: RunTotals, results: list[RoutedResult]) -> dict[str, object]:
    """``totals`` as the comparison gives them: energy and CO2 None (not 0) where none
    of ``results`` was measured (carbon tracking off)."""
    out: dict[str, object] = asdict(totals)
    if not any(m.method != NOT_MEASURED for r in results for m in r.components.values()):
        out.update(dict.fromkeys(("energy_kwh", "co2_kg", "warm_energy_kwh", "warm_co2_kg")))
    return out


@dataclass(frozen=True)
class DemoRun:
    routed: list[RoutedResult]
    baseline: list[RoutedResult]  # empty when the baseline was skipped
    baseline_refused: str = ""  # why the budgets stopped the baseline part-way ("" if not)
    routed_refused: str = ""  # why the budgets stopped the routed run part-way ("" if not)
    warm_up: Measurement | None = None  # charged to neither run; None where none was done
    #: The comparisons of every whole pair of runs (``repeats`` of them asked; this
    #: pair's first, the rest made again after it): how much one pair's figures vary.
    repeats: tuple[dict[str, object], ...] = ()
    #: The error of a request that failed (a model that cannot load...), which stopped
    #: the demo: what was answered before it stands; or the request log's, where it
    #: could not take the row of the request the budgets refused once routed (its id
    #: in no row); None where neither.
    error: RouterLLMError | None = None
    #: Which run it stopped part-way: "routed", "baseline" or "repeat" (a pair made
    #: again after this one, which stands whole); "" where none failed.
    failed: str = ""
    #: The routed run's request the budgets refused once routed (``routed_refused``):
    #: its routing spent and logged (``error`` where it could not be), finish reason
    #: ``refused:budget``; not an answer
    refused: RoutedResult | None = None
    #: The errors of the answers whose row the request log took but the emissions CSV
    #: could not (``RequestLogError.logged``): no row lost, so the demo went on; said
    #: as a warning (until 2026-12-07 the first stopped the demo, status 2).
    unmirrored: tuple[RequestLogError, ...] = ()
    #: The error of the request the budgets refused once routed (in either run), whose
    #: row the log took but the emissions CSV could not: said as a warning too (until
    #: 2026-12-07 it was the demo's ``error``, status 2).
    refusal_unmirrored: RequestLogError | None = None

    def spent(self) -> list[RoutedResult]:
        """The routed run's answers and its refused request: what its summary counts."""
        return [*self.routed, *([self.refused] if self.refused is not None else [])]

    def comparison(self) -> dict[str, object] | None:
        """Routed versus always-largest, both measured; None without both runs whole.
        A CO2 saving is None where the baseline measured none (carbon tracking off)."""
        if not self.baseline or self.baseline_refused or self.routed_refused:
            return None
        if self.failed in ("routed", "baseline"):
            return None
        routed, base = RunTotals.of(self.routed), RunTotals.of(self.baseline)

        def saved(a: float, b: float) -> float | None:
            return 1.0 - a / b if b else None

        return {
            "largest_model": self.baseline[0].model,
            "routed": _figures(routed, self.routed),
            "always_largest": _figures(base, self.baseline),
            "co2_saved_fraction": saved(routed.co2_kg, base.co2_kg),
            "co2_saved_fraction_warm": saved(routed.warm_co2_kg, base.warm_co2_kg),
            "speedup": base.time_s / routed.time_s if routed.time_s else 0.0,
        }


def run_demo(
    system: RouterLLM,
    prompts: tuple[str, ...] = DEMO_PROMPTS,
    max_new_tokens: int = 128,
    baseline: bool = True,
    on_result: Callable[[str, RoutedResult], None] | None = None,
    warm: bool = True,
    repeats: int = 1,
) -> DemoRun:
    """Route every prompt, then (optionally) run the same prompts on the largest model;
    both generated and measured, never answered from the request cache, and each
    started with no model loaded. ``warm``: first ``warm_up`` the models, so that the
    process's one-off costs fall on neither run (``DemoRun.warm_up`` measures it).
    ``repeats``: how many pairs of runs to make, the first one's results returned and
    every whole pair's comparison in ``DemoRun.repeats`` (``spread`` sums them up);
    the repeating stops at a pair the budgets cut short. A request that fails stops
    the demo, what was answered kept: ``DemoRun.error`` and ``failed`` say where."""
    cache, system.cache = system.cache, None
    try:
        warmed = warm_up(system) if warm else None
        run = _run_demo(system, prompts, max_new_tokens, baseline, on_result)
        pairs = []
        again, unmirrored = run, run.unmirrored
        while (compared := again.comparison()) is not None:
            pairs.append(compared)
            if len(pairs) >= repeats:
                break
            again = _run_demo(system, prompts, max_new_tokens, baseline, None)
            unmirrored += again.unmirrored
        if again is not run and again.error is not None:
            run = replace(run, error=again.error, failed="repeat")
        if again is not run and again.refusal_unmirrored is not None:
            run = replace(run, refusal_unmirrored=again.refusal_unmirrored)
        return replace(run, warm_up=warmed, repeats=tuple(pairs), unmirrored=unmirrored)
    finally:
        system.cache = cache


#: The comparison's figures that ``spread`` sums up over repeated pairs of runs.
SPREAD_KEYS = ("co2_saved_fraction", "co2_saved_fraction_warm", "speedup")


def spread(comparisons: Sequence[dict[str, object]]) -> dict[str, dict[str, float] | None]:
    """Median, lowest and highest of each of ``SPREAD_KEYS`` over ``comparisons``
    (None for a figure one of them lacks: carbon tracking off)."""
    out: dict[str, dict[str, float] | None] = {}
    for key in SPREAD_KEYS:
        values = [c[key] for c in comparisons]
        if not values or any(not isinstance(v, int | float) for v in values):
            out[key] = None
            continue
        numbers = [float(v) for v in values]  # type: ignore[arg-type]
        out[key] = {"median": statistics.median(numbers), "min": min(numbers), "max": max(numbers)}
    return out


#: What the warm-up asks each model, for one token.
WARM_UP_PROMPT = "Hello"


def warm_up(system: RouterLLM) -> Measurement:
    """The router's encoder (or classifier) loaded, and each available model that runs
    in this process loaded, asked for one token and unloaded, measured as one block and
    neither run's: what the first run in a process would otherwise pay alone (the
    inference library's initialisation, a model file's first assembling or conversion,
    reading its weights from disk, first-call imports) and a later one would not. Not
    logged; the router routes nothing (a random router's draws are the runs'); a model
    or router that fails here is left to fail, or not be used, in the runs."""
    manager = system.manager
    local = [n for n in system.available_models() if manager.backend(n).measured_locally]
    request = GenerationRequest(WARM_UP_PROMPT, max_new_tokens=1)
    with system.meter.measure("warm_up") as slot:
        try:
            system.router.warm_up(WARM_UP_PROMPT)
        except RouterLLMError as e:
            log.warning("warm-up of router %s failed: %s", system.router.name, e)
        for name in local:
            try:
                with manager.generating(name) as backend:
                    backend.generate(request)
            except RouterLLMError as e:
                log.warning("warm-up of %s failed: %s", name, e)
            manager.unload(name)
    return slot.result


def _run_demo(
    system: RouterLLM,
    prompts: tuple[str, ...],
    max_new_tokens: int,
    baseline: bool,
    on_result: Callable[[str, RoutedResult], None] | None,
) -> DemoRun:
    requests = [GenerationRequest(p, max_new_tokens=max_new_tokens) for p in prompts]
    # Both runs start cold: each pays for loading the models it uses, and a model an
    # earlier request (or the warm-up) left loaded would be free to one run only.
    system.manager.close()
    unmirrored: list[RequestLogError] = []
    routed, stop = _answered(system, requests, "routed", on_result, unmirrored, tag="demo")
    if isinstance(stop, BudgetExceededError):
        # what was answered stands (and is logged); a baseline, refused by the same
        # spent budgets, would compare with a part of the run only
        # its routing the log could not take: said as an answer's is (the error, last)
        lost, in_log = _refusal_log_error(stop)
        return DemoRun(routed, [], routed_refused=str(stop), refused=stop.result, error=lost, unmirrored=tuple(unmirrored), refusal_unmirrored=in_log)  # fmt: skip
    if stop is not None:
        return DemoRun(routed, [], error=stop, failed="routed", unmirrored=tuple(unmirrored))
    if not baseline:
        return DemoRun(routed, [], unmirrored=tuple(unmirrored))
    system.manager.close()
    available = system.available_models()
    # chosen, not routed: budgets refuse a chosen model rather than replace it
    largest = [m.name for m in system.config.models_by_size() if m.name in available][-1]
    largest_runs, stop = _answered(
        system, requests, "baseline", on_result, unmirrored, model=largest, tag="demo-baseline"
    )
    if isinstance(stop, BudgetExceededError):
        lost, in_log = _refusal_log_error(stop)
        return DemoRun(routed, largest_runs, str(stop), error=lost, unmirrored=tuple(unmirrored), refusal_unmirrored=in_log)  # fmt: skip
    return DemoRun(routed, largest_runs, error=stop, failed="baseline" if stop else "", unmirrored=tuple(unmirrored))  # fmt: skip


def _refusal_log_error(
    refusal: BudgetExceededError,
) -> tuple[RequestLogError | None, RequestLogError | None]:
    """The request log's error of a request the budgets refused once routed, as the demo's
    error (its row lost: status 2) or as a warning (its row in the log, only the emissions
    CSV missed it: the run's figures stand, nothing is lost); None for both where the log
    and its CSV took it."""
    error = refusal.log_error
    if error is not None and error.logged:
        return None, error
    return error, None


def _answered(
    system: RouterLLM,
    requests: list[GenerationRequest],
    kind: str,
    on_result: Callable[[str, RoutedResult], None] | None,
    unmirrored: list[RequestLogError],
    **how: str,
) -> tuple[list[RoutedResult], RouterLLMError | None]:
    """``requests`` answered in turn until one is refused or fails: the answers (one
    paid for but not wholly logged too) and that request's error, None where none.
    An answer the log took but its emissions CSV did not goes on, its error added to
    ``unmirrored``."""
    results: list[RoutedResult] = []
    for req in requests:
        try:
            results.append(system.generate(req, **how))
        except RouterLLMError as e:
            if not (isinstance(e, RequestLogError) and e.result is not None):
                return results, e
            results.append(e.result)  # generated and measured: its figures count
            if on_result:
                on_result(kind, e.result)
            if not e.logged:
                return results, e
            unmirrored.append(e)  # in the log: the run goes on
            continue
        if on_result:
            on_result(kind, results[-1])
    return results, None
