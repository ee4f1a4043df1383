"""LLM manager: loads models on demand, keeps the current one warm, and
unloads least-recently-used models when the memory budget would be exceeded.

One model generates for one caller at a time (a llama.cpp model aborts the
process when two threads generate with it at once): ``generating`` holds the
model's lock, and unloading a model waits for that lock. The manager's lock is
never requested while a model's lock is held, so the two cannot deadlock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from routerllm.backends.base import Backend, GenerationRequest, create_backend
from routerllm.backends.llama_prompt import VocabCounters
from routerllm.config import AppConfig, loaded_config
from routerllm.exceptions import ContextLengthError, ModelUnavailableError, RouterLLMError
from routerllm.model_header import context_in_words, effective_context
from routerllm.outages import Outage, Outages, endpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadEvent:
    """What ``LLMManager.acquire`` did: whether it loaded, how long it took, what it evicted."""

    model: str
    loaded_now: bool
    duration_s: float
    evicted: list[str] = field(default_factory=list)


def gb_up(gb: float) -> str:
    """``gb`` at 3 significant digits, rounded up (``2.25`` for 2.247483648): a memory
    budget set to what it says holds ``gb`` (rounded to nearest, ``2.24``, it did not).
    Three, as ``routerllm.carbon.units`` says figures: four read "0.5944 GB" beside a
    "4.5 GB" budget (until 2026-12-06)."""
    value = Decimal(repr(gb))
    step = Decimal(1).scaleb(value.adjusted() - 2)
    return f"{value.quantize(step, rounding=ROUND_CEILING).normalize():f}"


#: How long a model found unavailable stays so before it is checked again: an endpoint
#: down when a server started (or a model file copied in later) comes back without a
#: restart, and a request pays for the check at most once a minute.
RECHECK_S = 60.0
_clock = time.monotonic  # what the re-check and the outages count by (a test sets it)


class LLMManager:
    """Owns one backend per configured model and their memory."""

    def __init__(self, config: AppConfig) -> None:
        """``config``: a loaded config (``load_config``), whose models it runs."""
        self.config = loaded_config(config, "LLMManager")
        self.budget_gb = config.manager.memory_budget_gb
        self._backends: dict[str, Backend] = {}
        self._lru: OrderedDict[str, None] = OrderedDict()  # loaded models, oldest first
        self._lock = threading.RLock()
        self._model_locks: dict[str, threading.RLock] = {}
        self._available: list[str] | None = None
        self._checked_at = 0.0  # _clock() at the last check of the unavailable ones
        # the models out for RECHECK_S (a load failed, a request's failure took them out),
        # each back at its own time: routing goes elsewhere meanwhile, and no warm model is
        # evicted, request after request, for a load that fails
        self._outages = Outages()
        self._vocabs = VocabCounters()  # unloaded models' prompts counted without weights

    def backend(self, name: str) -> Backend:
        """The backend of a configured model (created, not loaded)."""
        with self._lock:
            if name not in self._backends:
                cfg = self.config.model(name)
                self._backends[name] = create_backend(
                    cfg, self.config.generation, self.config.manager.n_threads
                )
            return self._backends[name]

    def _model_lock(self, name: str) -> threading.RLock:
        with self._lock:
            return self._model_locks.setdefault(name, threading.RLock())

    @contextmanager
    def generating(self, name: str) -> Iterator[Backend]:
        """The loaded backend of ``name``, for this caller alone until the block ends;
        other callers of the same model wait. Loads the model if it is not loaded (or
        was unloaded by another caller since ``acquire``)."""
        lock, backend = self._model_lock(name), self.backend(name)
        while True:
            lock.acquire()
            if backend.ready:
                break
            lock.release()  # acquire() takes the manager's lock: never under a model's lock
            self.acquire(name)
        try:
            yield backend
        finally:
            lock.release()

    def prompt_tokens_now(self, name: str, request: GenerationRequest) -> int | None:
        """The tokens ``name``'s model will read for ``request`` (chat template, system
        text, history and response prefix included) where that is known at once: a
        llama.cpp model, counted by the loaded model where no other caller holds it now,
        else by its GGUF's vocabulary alone (opened on its first count, without the
        weights, and kept while the file stays: ``VocabCounters``). None otherwise, and where the model will
        refuse the request (its template's error is the answer's to give). Never loads
        the model nor waits for another caller of it (only, as every call here, for the
        manager's own lock, and for a model opening in another thread: ``OPENING``; a
        vocabulary opened in a request, measured as its read, for the meter's turn:
        ``count_reads``): a prediction falls back to its estimate."""
        from routerllm.backends.llama_cpp import LlamaCppBackend

        lock, backend = self._model_lock(name), self.backend(name)
        if not isinstance(backend, LlamaCppBackend):
            return None
        if lock.acquire(blocking=False):
            try:  # under its lock: no other caller can unload it in between
                if backend.loaded:
                    return backend.prompt_tokens(request)
            except RouterLLMError:
                return None
            finally:
                lock.release()
        return self._vocabs.prompt_tokens(backend.config, request)

    def refusal_before_load(
        self, name: str, request: GenerationRequest
    ) -> ContextLengthError | None:
        """Where ``name`` is a local model that must load to answer (not loaded, or its
        files replaced since): its refusal of ``request`` as too long for its context, as
        the loaded model's generation gives it (the same tokens, context and words),
        found without loading it, nor evicting another model for it: a llama.cpp model's
        counted by its GGUF's vocabulary alone (``VocabCounters``; a split model's, not
        yet assembled, by its first part's), against ``effective_context``; a
        transformers model's by its tokenizer and config alone
        (``HFBackend.refusal_before_load``). None where the prompt fits, the model is
        loaded, or there is no such count: the loaded model checks it then, as it always
        does."""
        from routerllm.backends.hf import HFBackend
        from routerllm.backends.llama_cpp import LlamaCppBackend

        backend = self.backend(name)
        if backend.ready:
            return None
        if isinstance(backend, HFBackend):
            return backend.refusal_before_load(request)
        if not isinstance(backend, LlamaCppBackend):
            return None
        return self._vocabs.refusal(backend.config, request, effective_context(backend.config))

    def availability(self, name: str) -> str | None:
        """None when the model can run here, else why not (never raises for a missing model)."""
        backend = self.backend(name)
        if self.local_gb(name) > self.budget_gb:
            return f"needs {self._needs(name)}, more than the memory budget ({self.budget_gb:g} GB)"
        with self._lock:
            out = self._outages.current(name, _clock())
        # its last request's error, not a probe's (a refused key or a spent quota is
        # answered only to a request: an endpoint's /models lists for a spent account);
        # a stat of a failed load's files while it waits: a user who replaced them waits
        # no longer
        if out is not None and (not out.load_failed or backend.weights_stamp() == out.stamp):
            return out.why
        reason = backend.availability()
        # a copy under way at its paths (not over the file it maps): its loaded weights answer
        return None if reason is not None and backend.answers_on else reason

    def available_models(self) -> list[str]:
        """The configured models that can run here, in the config's order: checked once,
        then cached; one that cannot is checked again after ``RECHECK_S``, or, where its
        load failed, as soon as its files are replaced (a stat of them per call)."""
        with self._lock:
            now, available = _clock(), self._available
            if available is not None and (
                len(available) == len(self.config.models) or now - self._checked_at < RECHECK_S
            ):
                # those out whose time is up, or whose files may have been replaced
                waiting = self._outages.to_check(now, available)
                if not waiting:
                    return list(available)
            else:
                waiting = []
                self._checked_at = now  # one caller checks; the others go on with what is known
        if waiting:  # not under the lock, as the checks below
            return self._with_replaced(waiting, now)
        known = set(available or ())
        # not under the lock: an endpoint's probe may take seconds, and loading waits on it
        found = [
            m.name
            for m in self.config.models
            if m.name in known or self.availability(m.name) is None
        ]
        with self._lock:
            self._available = found
            self._outages.forget_ended(now)
        return list(found)

    def _with_replaced(self, waiting: list[str], now: float) -> list[str]:
        """The available models, with those of ``waiting`` (models out: their time up, or
        a load failed) that can run now: their check passed, or their files replaced
        since by ones that can. One whose time is up is checked once: where it still
        cannot run, again with the others, ``RECHECK_S`` after their last check."""
        back = {n for n in waiting if self.availability(n) is None}
        with self._lock:
            known = set(self._available or ()) | back
            replaced = {n for n in back if self._outages.current(n, now)}  # within its minute
            self._outages.forget_ended(now)
            if replaced:
                log.info("%s: files replaced since the load failed; tried again", ", ".join(sorted(replaced)))  # fmt: skip
            if back - replaced:
                log.info("%s: back in service at its check", ", ".join(sorted(back - replaced)))  # fmt: skip
            if back:
                self._available = [m.name for m in self.config.models if m.name in known]
            return [m.name for m in self.config.models if m.name in known]

    def runnable_models(self) -> list[str]:
        """``available_models()``, or a clear error naming each model's reason when none
        can run here."""
        available = self.available_models()
        if not available:
            reasons = "; ".join(f"{m.name}: {self.availability(m.name)}" for m in self.config.models)  # fmt: skip
            raise ModelUnavailableError(f"no configured model can run here ({reasons})")
        return available

    def set_unavailable(self, name: str, why: str, by: str = "") -> None:
        """Take ``name`` out (its endpoint found unreachable or refusing its key) for
        ``RECHECK_S`` from now, then checked again; ``why`` is its reason until then (a
        request naming it is told so), found by a request to model ``by`` where another's
        (``set_endpoint_unavailable``)."""
        whose = "its last request" if not by else f"model {by!r}'s request to the same endpoint"  # fmt: skip
        self._take_out(name, f"{whose} failed (checked again {RECHECK_S:g} s after): {why}")

    def _take_out(self, name: str, why: str, stamp: str | None = None, load: bool = False) -> None:
        """``name`` out of service for ``RECHECK_S`` (``Outages.take_out``)."""
        with self._lock:
            now = _clock()
            self._outages.take_out(name, Outage(now + RECHECK_S, why, load, stamp), now)
            if self._available is not None and name in self._available:
                self._available = [n for n in self._available if n != name]

    def set_endpoint_unavailable(self, name: str, why: str, same_key: bool) -> list[str]:
        """Take out the other models served at ``name``'s endpoint (the same scheme, host,
        port and path), with ``same_key`` only those sending the same ``api_key_env``, as
        ``name``'s request found it (``why``): a server that died has all its models down
        (one request each found them so, each paying its retries, until 2026-12-06).
        Each comes back by its own check. The models taken out, in the config's order."""
        cfg = self.config.model(name)
        where = endpoint(cfg.base_url)
        others = [
            m.name
            for m in self.config.models
            if m.name != name
            and where is not None
            and endpoint(m.base_url) == where
            and (not same_key or m.api_key_env == cfg.api_key_env)
        ]
        for other in others:
            self.set_unavailable(other, why, by=name)
        if others:
            log.warning("%s taken out with %s: %s", ", ".join(others), name, why)
        return others

    @property
    def loaded_models(self) -> list[str]:
        return list(self._lru)

    def used_gb(self) -> float:
        """The memory the loaded models take, as counted against the budget: read under
        the manager's lock, so a thread reading it while another loads or evicts gets a
        whole figure (iterating the loaded models while another thread changes them raises
        "OrderedDict mutated during iteration"); it waits for a load under way, as the
        model lookups in it do."""
        with self._lock:
            return sum(self.local_gb(n) for n in self._lru)

    def local_gb(self, name: str) -> float:
        """The memory ``name`` takes here once loaded, as counted against the budget
        (0 for a model served elsewhere)."""
        b = self.backend(name)
        return b.memory_gb + b.kv_cache_gb_estimate if b.measured_locally else 0.0

    def _needs(self, name: str) -> str:
        """What ``name`` needs here, in words: its memory, with its KV cache's share."""
        b = self.backend(name)
        kv = b.kv_cache_gb_estimate
        # the context the estimate is for: the GGUF's where it is shorter than configured
        of_kv = f" (memory_gb {b.memory_gb:g} and an estimated {kv:.3g} GB of KV cache for its context of {context_in_words(b.config)})" if kv else ""  # fmt: skip
        return f"{gb_up(self.local_gb(name))} GB{of_kv}"

    def acquire(self, name: str) -> tuple[Backend, LoadEvent]:
        """Make ``name`` ready to generate, evicting LRU models to fit the budget."""
        with self._lock:
            backend = self.backend(name)
            if backend.ready:
                self._lru[name] = None
                self._lru.move_to_end(name)
                return backend, LoadEvent(name, False, 0.0)
            if backend.loaded:  # its file replaced: what a new process would run
                log.info("loading %s again: its model file was replaced", name)
                self._unload(name)
            need = self.local_gb(name)
            if need > self.budget_gb:
                raise ModelUnavailableError(
                    f"model {name!r} needs {self._needs(name)}, more than the memory budget "
                    f"({self.budget_gb:g} GB, manager.memory_budget_gb)"
                )
            evicted = []
            # Only local models free memory: a remote one's answer under way is not waited
            # for (the caller may hold the meters' turn, which its server, when it runs in
            # this process, waits for).
            local = [n for n in self._lru if self.backend(n).measured_locally]
            while local and self.used_gb() + need > self.budget_gb:
                victim = local.pop(0)
                self._unload(victim)
                evicted.append(victim)
                log.info("unloaded %s to make room for %s", victim, name)
            stamp = backend.weights_stamp()  # before: files replaced as it loads are tried
            start = time.perf_counter()
            try:
                backend.load()
            except RouterLLMError as e:
                why = f"its load failed (tried again {RECHECK_S:g} s after, or as soon as its files change): {e}"  # fmt: skip
                self._take_out(name, why, stamp, load=True)
                raise
            self._outages.loaded(name)
            duration = time.perf_counter() - start
            self._lru[name] = None
            return backend, LoadEvent(name, True, duration, evicted)

    def unload(self, name: str) -> None:
        with self._lock:
            if name in self._backends:
                self._unload(name)

    def _unload(self, name: str) -> None:
        """Unload ``name`` once its generation under way (if any) has finished; it stays
        counted until it is unloaded: a Ctrl-C while this waits leaves it loaded, counted
        and evicted later, rather than loaded and uncounted, which nothing would free."""
        backend = self._backends[name]
        try:
            with self._model_lock(name):  # waits for its generation to finish
                backend.unload()
        finally:
            if not backend.loaded:
                self._lru.pop(name, None)

    def close(self) -> None:
        """Unload everything, and close the vocabularies opened to count prompts."""
        with self._lock:
            for name in list(self._lru):
                self.unload(name)
        self._vocabs.close()
