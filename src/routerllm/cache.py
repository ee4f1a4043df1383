"""The request cache: a request asked again is answered with the answer it got before,
without running a model (``cache`` in the config; off by default).

Only requests whose answer is fixed by the request are cached: generation at
temperature 0 or with a seed (the request's, or the config's ``generation.seed``),
no prompt state asked. The key is everything that shapes the answer: the model the
router chose (or the caller named: kept apart), the prompt, system text, history,
sampling options and the config's settings that change an answer (code style of stubs, cascade, gate), the
larger models available then, which the cascade may escalate to and a routed prompt too
long for the model's context goes to, and the identity of those models' files (a stat:
a file replaced at its path is another key, and the manager loads it again).
Entries live in this process's memory, least recently used first out, and
expire after ``ttl_s``: a server answers its repeated requests, a new process
starts empty, and no answer is written to disk. A request asked in another thread
while its answer is being made waits for that answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

from routerllm.backends.base import GenerationRequest
from routerllm.carbon.meter import CACHED, Measurement
from routerllm.config import CascadeConfig, GenerationConfig

if TYPE_CHECKING:
    from routerllm.routed_result import RoutedResult
    from routerllm.routers.base import RoutingDecision


def cache_key(
    request: GenerationRequest,
    model: str,
    gen: GenerationConfig,
    cascade: CascadeConfig,
    larger: Sequence[str] = (),
    named: bool = False,
    weights: Mapping[str, str | None] | None = None,
) -> str | None:
    """The key of ``request`` routed to ``model``, which generates with ``gen`` (the
    settings its backend holds), or None where its answer is not fixed by the request
    (sampled without a seed, the request's or the config's) or it asks for the prompt's
    state. ``larger``: the models the cascade may escalate to, or a prompt too long for
    a routed ``model``'s context goes to (none for a named model without the cascade), so
    that an answer made while one of them could not run is not the answer once it can.
    ``named``: the caller named ``model``; its answers are kept apart from the routed
    ones, since a prompt too long for a routed model's context goes to a larger model
    and one that names it is refused. ``weights``: the identity of each model's weights
    (``Backend.weights_stamp``), so that a model file replaced under a running process
    (which the manager loads again) is not answered with the old file's answers."""
    temperature = gen.temperature if request.temperature is None else request.temperature
    seed = gen.seed if request.seed is None else request.seed  # as resolve_sampling picks
    if request.prompt_state or (temperature > 0 and seed is None):
        return None
    shape = {
        "model": model,
        "request": asdict(replace(request, on_text=None, on_answer=None)),  # no part of it
        "generation": gen.model_dump(),
        "cascade": cascade.model_dump(),
        "larger": list(larger),
        "named": named,
        "weights": dict(weights or {}),
    }
    text = json.dumps(shape, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RequestCache:
    """Answers by key, at most ``max_entries`` of them, each for ``ttl_s`` seconds."""

    def __init__(
        self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, RoutedResult]] = OrderedDict()
        self._lock = threading.Lock()
        self._filling: dict[str, tuple[threading.Lock, int]] = {}  # key: its lock, its users

    def get(self, key: str) -> RoutedResult | None:
        """The answer stored under ``key`` if it has not expired (it becomes the most
        recently used)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() - entry[0] > self.ttl_s:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: str, result: RoutedResult) -> None:
        with self._lock:
            self._entries[key] = (self.clock(), result)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    @contextlib.contextmanager
    def filling(self, key: str) -> Iterator[None]:
        """Held while ``key``'s answer is looked up and made: a request of that key in
        another thread waits, then finds the answer here instead of generating it again
        (or makes it, where the first could not)."""
        with self._lock:
            lock, users = self._filling.get(key, (threading.Lock(), 0))
            self._filling[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                users = self._filling[key][1] - 1
                if users:
                    self._filling[key] = (lock, users)
                else:
                    del self._filling[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def answered_again(
    hit: RoutedResult, decision: RoutingDecision, routing: Measurement, cost_usd: float
) -> RoutedResult:
    """The cached answer ``hit`` as a new request's, routed by ``decision``: a request of
    its own, which spent only its ``routing`` (and ``cost_usd``) and names the request
    that paid for the answer. ``hit.reason`` is what making the answer added to its
    routing's reason (asked in a code style, escalated by the cascade), said after
    ``decision``'s."""
    unspent = {c: Measurement(c, 0.0, 0.0, 0.0, CACHED) for c in ("model_loading", "llm_inference")}  # fmt: skip
    return replace(
        hit,
        latency_s=routing.duration_s,
        confidence=decision.confidence,
        router=decision.router,
        reason=f"{decision.reason}{hit.reason}; answered from the request cache (request {hit.request_id})",
        cost_usd=cost_usd,
        components={"router_inference": routing, **unspent},
        request_id=uuid.uuid4().hex,
        predicted=None,
        cached_from=hit.request_id,
        prompt_state=None,
        escalated={},  # the models the cascade escalated from spent nothing this time
    )
