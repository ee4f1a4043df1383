"""The routed system: prompt -> router -> model -> completion, measured and logged.

``RouterLLM`` is itself a backend (``generate(request) -> RoutedResult``, a
``Completion`` with routing and carbon fields), so the CLI, the server and the
evaluation code all take one object and do not care whether it routes. How it
answers each routed request (cache, budgets, cascade, log) is in ``answering.py``;
which router it routes with in ``configured_router.py``; when it may be used (open,
closed, forked, the calls ``close()`` waits for) in ``system_lifecycle.py``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from routerllm import blas_threads
from routerllm.answer_callbacks import CallerRaised, check_not_in_callback
from routerllm.answer_logging import unlogged_failures, unlogged_refusals, unmirrored_rows
from routerllm.answering import RequestAnswering
from routerllm.backends.base import GenerationRequest
from routerllm.cache import RequestCache
from routerllm.carbon.budget import CarbonBudget
from routerllm.carbon.meter import (
    CarbonMeter,
    check_country,
    check_meter_country,
    create_meter,
    grid_of,
)
from routerllm.carbon.predictor import CarbonPredictor, Prediction
from routerllm.carbon.request_log import RequestLog
from routerllm.config import AppConfig, load_config, loaded_config
from routerllm.configured_router import as_router, build_router
from routerllm.exceptions import (
    BatchError,
    BudgetExceededError,
    ConfigError,
    ModelUnavailableError,
    PromptError,
    RequestLogError,
    RouterLLMError,
)
from routerllm.feedback import FeedbackLoop
from routerllm.manager import LLMManager
from routerllm.model_calls import ModelCalls
from routerllm.request_checks import checked_batch, checked_request, checked_tag
from routerllm.routed_result import FIXED, RoutedResult
from routerllm.routers.base import Router, RoutingDecision, train_first
from routerllm.routing_scope import RoutingScope
from routerllm.served_gate import ServedGate
from routerllm.system_lifecycle import SystemLifecycle

if TYPE_CHECKING:
    import numpy as np
    from typing_extensions import TypedDict, Unpack

    class SystemParts(TypedDict, total=False):
        """``RouterLLM.from_config``'s keywords: the constructor's, so a type checker
        checks them there too."""

        router: Router | str | None
        meter: CarbonMeter | None
        request_log: RequestLog | str | os.PathLike[str] | None
        manager: LLMManager | None


def _batch_error(error: Exception, results: list[RoutedResult], i: int, n: int) -> BatchError:
    """The ``BatchError`` of request ``i`` of a batch of ``n`` failing with ``error``,
    ``results`` those before it."""
    after = (
        f"; the {n - i - 1} after it did not run: their share of the batch's "
        f"routing is logged with the failed request's row (where it has one)"
        if i < n - 1
        else ""
    )
    before = f"the {i} before it finished (BatchError.results, and the request log)" if i else "none finished"  # fmt: skip
    return BatchError(f"request {i + 1} of {n} failed: {error}; {before}{after}", results, i)


def _revalidate(config: AppConfig) -> None:
    """Check a config again (it may have been changed in code since it was loaded): a
    ``ConfigError`` ("invalid config: ...") where it no longer holds."""
    # warnings off: an entry of the wrong type is said below, in one line
    checked = AppConfig.model_validate(config.model_dump(warnings=False))
    # A valid entry added in place as a dict (config.models.append({...})) passes the
    # check above, as a file's would, but the system reads the sections as objects
    if misplaced := _not_as_checked(config, checked, "config"):
        where, given, kind = misplaced
        raise ConfigError(
            f"{where} is a {given}, not a {kind} (it was changed in place, which checks "
            f"nothing): append {kind}(**entry) (routerllm.config), or assign the list "
            f"({where.split('[')[0]} = [...]), which checks and converts its entries"
        )


def _not_as_checked(given: object, checked: object, where: str) -> tuple[str, str, str] | None:
    """The first place where ``given`` holds something other than the section object
    its check made (``checked``): its path, the type found and the type expected."""
    from pydantic import BaseModel

    if isinstance(checked, BaseModel):
        if not isinstance(given, type(checked)):
            return where, type(given).__name__, type(checked).__name__
        for name in type(checked).model_fields:
            found = _not_as_checked(getattr(given, name), getattr(checked, name), f"{where}.{name}")
            if found:
                return found
    elif isinstance(checked, list) and isinstance(given, list):
        for i, (item, made) in enumerate(zip(given, checked, strict=False)):
            if found := _not_as_checked(item, made, f"{where}[{i}]"):
                return found
    return None


class RouterLLM(RequestAnswering, SystemLifecycle):
    """Routes prompts to the smallest capable model and records what each request cost.

    Make one with ``RouterLLM.from_config(path_or_name)`` or ``RouterLLM(config)``; use
    it as a context manager (or call ``close()``). ``generate`` returns a
    ``RoutedResult``: the answer, the routing decision and what the request spent, in
    kWh (``energy_kwh``), kg CO2 (``co2_kg``) and USD (``cost_usd``), in total and per
    component (``components``: ``router_inference``, ``model_loading``,
    ``llm_inference``). Every mistake raises a ``routerllm.exceptions.RouterLLMError``.

    Its parts, to read: ``config`` (the ``AppConfig``), ``router`` (the configured
    router), ``budget`` (a ``CarbonBudget``, None where the config sets no budget),
    ``log`` (the ``RequestLog``), ``manager`` (the ``LLMManager``), ``meter`` (the
    carbon meter). One system may be shared by threads; closed, it refuses every call.
    """

    def __init__(
        self,
        config: AppConfig,
        router: Router | str | None = None,
        meter: CarbonMeter | None = None,
        request_log: RequestLog | str | os.PathLike[str] | None = None,
        manager: LLMManager | None = None,
    ) -> None:
        """``config`` is a loaded config (``RouterLLM.from_config(path)`` loads one);
        ``router`` a router or a registered router's name (default: the config's);
        ``meter`` a carbon meter to share (default: one made from ``config.carbon``);
        ``request_log`` a ``RequestLog`` or the path of its SQLite file (default: the
        config's ``log.path``); ``manager`` an ``LLMManager`` to share, made from the
        same models (``LLMManager(config)``). A bad config or
        argument is a ``ConfigError``, an unknown router name an ``UnknownNameError``, a
        log that cannot be used a ``RequestLogError``."""
        loaded_config(config, "RouterLLM", "RouterLLM.from_config")
        _revalidate(config)  # lists changed in place (models.append) escape assignment checks
        for what, value, kind in (
            ("meter", meter, CarbonMeter),
            ("manager", manager, LLMManager),
        ):
            if value is not None and not isinstance(value, kind):
                raise ConfigError(f"{what} must be a {kind.__name__}, got {type(value).__name__}")
        if manager is not None and manager.config.models != config.models:
            # else it routed among the manager's models, and refused one the caller never named
            names = [", ".join(m.name for m in c.models) for c in (manager.config, config)]
            other = "other models" if names[0] != names[1] else "models of other settings"
            raise ConfigError(
                f"manager was made for {other} ({names[0]}) than this config's "
                f"({names[1]}); share a manager between systems of the same models, or leave it out"
            )
        if meter is not None:
            meter.check_open()
        # before the log is opened, and with a meter given too: remote models' per-token
        # estimates and the predictions price CO2 at the country's grid
        country = check_country(config.carbon.country_iso_code)
        check_meter_country(meter, country)
        self.config = config
        self.router = as_router(router, config) if router is not None else build_router(config)
        if not self.router.is_trained:  # it could route no request
            # a router given in code, by name too, overrides the config's router.path
            then = "pass it as load_router(DIR, config.models)" if router is not None else "give DIR as router.path in the config"  # fmt: skip
            raise ConfigError(train_first(self.router.name, then))
        self.scope = RoutingScope(config, self._available_models)
        self.gate = ServedGate.load(config)  # before anything is opened that would need closing
        self.feedback_loop = FeedbackLoop.of(config, self.router, configured=router is None)
        csv_path = Path(config.carbon.output_dir) / "emissions.csv"
        # what it opens itself is closed again where it fails to start (no carbon extra):
        # a program that goes on after the error keeps no log file or tracker open
        opened = contextlib.ExitStack()
        if isinstance(request_log, RequestLog):
            request_log.check_open()
            self.log = request_log
        elif request_log is None or isinstance(request_log, str | os.PathLike):
            if request_log is not None and not os.fspath(request_log).strip():
                raise ConfigError("request_log is an empty path; give a file or leave it out")
            self.log = RequestLog(request_log or config.log.path, csv_path)
            opened.callback(self.log.close)
        else:
            raise ConfigError(
                f"request_log must be a RequestLog or the path of its SQLite file, "
                f"got {type(request_log).__name__}"
            )
        with opened:
            self.manager = manager or LLMManager(config)
            if manager is None:
                opened.callback(self.manager.close)
            self.predictor = CarbonPredictor.from_log(config, self.log)
            limits = config.budgets.limits()
            self.budget = CarbonBudget(config.budgets, self.log) if limits else None
            cache = config.cache
            self.cache = RequestCache(cache.max_entries, cache.ttl_s) if cache.enabled else None
            self.meter = meter or create_meter(config.carbon)
            if meter is None:
                opened.callback(self.meter.close)
            self.calls = ModelCalls(config, self.manager, self.meter, self.gate, self.predictor)
            self.grid = grid_of(country)  # a meter given is for this country (or none)
            self.unlogged = unlogged_failures()
            self.unlogged_refused = unlogged_refusals()
            self.unmirrored = unmirrored_rows()
            opened.pop_all()  # started: close() closes them from now
        self._start_lifecycle()  # from now it refuses requests once closed
        self._routers_by_name: dict[str, Router] = {}  # given for requests (generate's router)
        self._routers_lock = threading.Lock()
        # last: what it learns here is saved at close, which a failed start never reaches
        self.feedback_loop.learn_scored(self.log)
        # its decisions' matrix work on one BLAS thread while it is open (blas_threads.py)
        self._blas_hold = blas_threads.hold_one_thread(self)

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, **kwargs: Unpack[SystemParts]
    ) -> RouterLLM:
        """A system for the config at ``path`` (a YAML file or a packaged config's name);
        ``kwargs`` are the constructor's (``router``, ``meter``, ``request_log``, ``manager``)."""
        if unknown := sorted(set(kwargs) - {"router", "meter", "request_log", "manager"}):
            raise ConfigError(
                f"from_config takes router, meter, request_log or manager, not "
                f"{', '.join(unknown)}; generation options belong to each request "
                f"(GenerationRequest) or to the config"
            )
        return cls(load_config(path), **kwargs)

    def _release(self) -> None:
        """Unload, stop and close what the system holds, once (``_calls_done`` held)."""
        if self._released:  # not set where a wait was interrupted (Ctrl-C): done here
            return
        self.feedback_loop.close()  # saves what a learning router learned since its last save
        self.manager.close()
        self.meter.close()
        self.log.close()
        if hold := getattr(self, "_blas_hold", None):  # none where the start failed
            hold()
        self._released = True

    @property
    def _limit(self) -> int:
        return self.config.limits.max_prompt_chars

    # -- routing -----------------------------------------------------------
    def available_models(self) -> list[str]:
        """Configured models that can run here (``LLMManager.available_models``: a model
        that cannot is checked again after a while); a clear error naming each model's
        reason when none can."""
        self.check_open()
        return self._available_models()

    def _available_models(self) -> list[str]:
        # not refused once closed: a request running while close() waits goes on with it
        return self.manager.runnable_models()

    def route(self, prompt: GenerationRequest | str) -> RoutingDecision:
        """The routing decision alone (not measured, not logged) of a prompt or a
        ``GenerationRequest``: its prompt (the newest message) is what the router reads,
        as ``generate``'s router does; the whole request is checked as there."""
        self.check_open()
        text = checked_request(prompt, self._limit).prompt
        decision = self.router.route(text, self.scope.routable())
        return self.scope.overridden([text], [decision])[0]

    # -- generation --------------------------------------------------------
    def generate(
        self,
        request: GenerationRequest | str,
        model: str | None = None,
        router: Router | str | None = None,
        tag: str | None = "",
    ) -> RoutedResult:
        """Route, load, generate, measure and log one request.

        ``request``: a prompt or a ``GenerationRequest``; ``model`` bypasses routing,
        ``router`` (a router or a registered router's name) replaces the configured
        router for this request (not both: one would be unused); either way the request
        is measured and logged, under ``tag`` (None or "" for none).

        Raises ``PromptError`` for a bad prompt or argument, ``UnknownNameError`` for an
        unknown model or router, ``BudgetExceededError`` where a budget refuses it,
        ``RequestLogError`` (the answer in its ``result``) where it could not be logged,
        and another ``RouterLLMError`` where the system is closed or a model fails.
        """
        return self.generate_batch([request], model=model, router=router, tag=tag)[0]

    def generate_batch(
        self,
        requests: Sequence[GenerationRequest | str],
        model: str | None = None,
        router: Router | str | None = None,
        tag: str | None = "",
    ) -> list[RoutedResult]:
        """Route all prompts in one batch, then generate each; every finished
        request is logged before the next starts. The batch's router energy is
        shared equally between its requests. ``tag`` labels the logged requests
        (None or "" for none).

        A request whose answer cannot be logged raises ``RequestLogError``, with the
        answer in its ``result``; in a batch, a ``BatchError`` keeps the ones before. The
        requests after one that failed do not run: their share of the routing is logged
        with the failed request's row (where a model was reached and it has one)."""
        # a shared log another system closed, or one opened read-only: refused before any
        # model runs; one closed meanwhile by another system waits for these to be logged
        check_not_in_callback()  # before it counts as a call: close() would wait for it
        with self._open_call(), self.log.in_use():
            return self._generate_batch(requests, model, router, tag)

    def _generate_batch(
        self,
        requests: Sequence[GenerationRequest | str],
        model: str | None,
        router: Router | str | None,
        tag: str | None,
    ) -> list[RoutedResult]:
        reqs = checked_batch(requests, self._limit)
        tag = checked_tag(tag)
        if model is not None and not isinstance(model, str):
            raise PromptError(f"model must be a model's name, got {type(model).__name__}")
        if model is not None:
            self.config.model(model)  # clear error for an unknown name, an empty batch's too
        if model is not None and router is not None:  # else the router was silently unused
            raise PromptError(
                f"model names the model that answers, without routing: router "
                f"{getattr(router, 'name', router)!r:.80} would not be used; give one of them"
            )
        if router is not None:
            router = self._request_router(router)
        prompts = [r.prompt for r in reqs]
        if not reqs:
            return []
        embedded: np.ndarray | None = None  # the prompts' embeddings, where kept for feedback
        # which models run here, checked once a process (each GGUF's header read, an
        # endpoint asked: 1-2 s on the local ladder) before routing is measured: a cost of
        # the process, as CodeCarbon's hardware probe, not of the first request's routing
        self.manager.available_models()
        with self.meter.measure("router_inference") as routing:
            if model is not None:
                if model not in self._available_models():
                    raise ModelUnavailableError(
                        f"model {model!r} is not available here: {self.manager.availability(model)}"
                    )
                decisions = [
                    RoutingDecision(model, 1.0, "model chosen by the caller", FIXED)
                    for _ in prompts
                ]
            else:  # with the embeddings a router that learns will learn the scores from
                routed, embedded = self.feedback_loop.route(router or self.router, prompts, self.scope.routable())  # fmt: skip
                decisions = self.scope.overridden(prompts, routed)
        n = len(reqs)
        router_part = routing.result.scaled(1.0 / n)  # the batch's routing, shared
        results: list[RoutedResult] = []
        for i, (req, d) in enumerate(zip(reqs, decisions, strict=True)):
            # routed: its answer may be rated (feedback), from the embedding the router saw
            embedding = None if embedded is None else embedded[i]
            remember = model is None
            # the share of the requests after it, which a failure of this one stops: logged
            # with its failure, so that the log counts all the routing the batch spent
            unrun = routing.result.scaled((n - i - 1) / n) if i < n - 1 else None
            # what the caller's on_text or on_answer raised, its answer logged (with
            # ``unrun``): raised as it is outside the ``except``, which would be its context
            callers: Exception | None = None
            try:
                results.append(self._run(req, d, router_part, tag, unrun))
                if remember:
                    self.feedback_loop.remember(results[-1].request_id, results[-1].model, router or self.router, embedding, self.log, results[-1].finish_reason, results[-1].cached_from)  # fmt: skip
            except CallerRaised as raised:
                callers, cut = raised.failure, raised.result
                if remember:  # its request_id given to on_answer: refused by name if rated
                    self.feedback_loop.remember(cut.request_id, cut.model, router or self.router, embedding, self.log, cut.finish_reason, cut.cached_from, by_caller=True)  # fmt: skip
            except RouterLLMError as e:
                if remember and isinstance(e, RequestLogError) and e.result is not None:
                    # answered, its request_id given, but not (wholly) logged: rated as any
                    # other where the log lets it be kept; never at the cost of the answer
                    with contextlib.suppress(RouterLLMError):
                        self.feedback_loop.remember(e.result.request_id, e.result.model, router or self.router, embedding, self.log, e.result.finish_reason, e.result.cached_from)  # fmt: skip
                if remember and isinstance(e, BudgetExceededError) and e.result is not None:
                    # refused once routed, its row logged: its score refused by name
                    self.feedback_loop.remember(e.result.request_id, e.result.model, router or self.router, None, self.log, e.result.finish_reason)  # fmt: skip
                if n == 1:  # not a batch: the error itself, as generate() gives it
                    raise
                raise _batch_error(e, results, i, n) from e
            if callers is not None:  # as any other failure of the batch's requests
                if n == 1:
                    raise callers
                raise _batch_error(callers, results, i, n) from callers
        return results

    def _request_router(self, router: object) -> Router:
        """The router given for a request; one given by name is made once per system, so
        that one that draws (``random``) goes on drawing: made again for every request,
        each took its seed's first draw, and every request went to the same model."""
        if not isinstance(router, str):
            return as_router(router, self.config)
        with self._routers_lock:
            if router not in self._routers_by_name:
                self._routers_by_name[router] = as_router(router, self.config)
            return self._routers_by_name[router]

    def feedback(self, request_id: str, score: float) -> None:
        """Rate the answer of a request this system routed (``RoutedResult.request_id``,
        one of its last 10,000; with ``router.learn: true``, one its router routed before
        a restart too): ``score`` from 0 (failed) to 1 (solved), stored in the request log
        and, with ``router.learn: true``, learned by its router, which must be a
        ``FeedbackRouter`` (``routerllm.routers.feedback``)."""
        with self._open_call():
            self.feedback_loop.feedback(request_id, score, self.log)

    def predict(self, request: GenerationRequest | str, model: str) -> Prediction | None:
        """What ``request`` is predicted to cost on ``model`` before it runs: energy, CO2
        and cost, loading included if the model is not loaded (None where neither the log
        nor the config says anything about the model's energy)."""
        with self._open_call():
            request = checked_request(request, self._limit)
            if not isinstance(model, str):
                raise PromptError(f"model must be a model's name, got {type(model).__name__}")
            self.config.model(model)  # a clear error for an unknown name
            return self._predicted(request, model, self._stub(request))


def open_system(system: object, taker: str) -> RouterLLM:
    """``system`` where it is an open ``RouterLLM``, for ``taker`` (what takes it:
    ``create_app``, ``serve``); anything else (a config or its name, None) or a closed
    system is a one-line ``RouterLLMError`` saying what to give."""
    if not isinstance(system, RouterLLM):
        raise RouterLLMError(
            f"{taker} takes a RouterLLM, got {type(system).__name__}; make one with "
            f"RouterLLM.from_config(path) (or RouterLLM(config) for a loaded config)"
        )
    system.check_open()
    return system
