"""The per-request tallies ``LogFigures`` keeps for the report and its recommendations:
``Terms`` (the terms of a sum, as doubles), each model's cut answers (``CutAnswers``)
and failed loads (``FailedLoads``), and the replay of the cache (``CacheReplay``), with
the log's timestamps read as seconds (``seconds``). Apart from ``log_figures.py``, which
was over 560 lines with them."""

from __future__ import annotations

from array import array
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from routerllm.carbon.log_rows import instant
from routerllm.exceptions import RouterLLMError

#: A measured component of a request: (component, duration_s, energy_kwh, co2_kg, method).
Part = tuple[str, float, float, float, str]


class Terms:
    """The terms of a ``sum`` over a selection of requests, kept as doubles; ``total``
    is the builtin ``sum`` of them, as it was of the values themselves (an int 0 where
    every term was an int: a request without components spends 0)."""

    __slots__ = ("values", "ints", "only_ints")

    def __init__(self) -> None:
        self.values = array("d")
        self.ints = 0
        self.only_ints = True

    def add(self, value: float) -> None:
        if type(value) is int:
            self.ints += value
        else:
            self.only_ints = False
        self.values.append(value)

    def total(self) -> float:
        return self.ints if self.only_ints else sum(self.values)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class CutAnswers:
    """Of one model's answers whose finish reason is logged (not from the cache, nor
    cancelled because the client left): how many, how many stopped at their length
    limit, how many of those because prompt and answer filled the model's context
    (``filled``, of ``context`` tokens; no larger max_new_tokens lengthens them), and the
    longest of the others, and how many of those were cut at each length (``lengths``: a
    function stub's answer stops at its code style's limit, not max_new_tokens)."""

    known: int = 0
    cut: int = 0
    longest: float = 0
    filled: int = 0
    context: int = 0
    lengths: Counter[int] = field(default_factory=Counter)


@dataclass
class FailedLoads:
    """Of one model's requests, those that failed as it failed to load (their logged
    ``load_error``): how many, what their loads spent (``measured``: whether any of it
    was, not logged with carbon tracking off), the last one's time and error, and how
    many requests it answered after it; ``kept``: of them, the cascade's steps up to it,
    whose smaller model's answer was kept."""

    count: int = 0
    kept: int = 0
    energy_kwh: float = 0.0
    measured: bool = False
    last: str = ""
    error: str = ""
    answered_since: int = 0


@dataclass
class CacheReplay:
    """Requests whose prompt an earlier one asked on the same model, replayed through a
    cache of ``max_entries`` and ``ttl_s`` (recommend.repeated_prompts).

    A cache lives in one process, and a process loads a model before its first answer:
    a repeat whose model was loaded again since the earlier answer (``loaded``) may have
    been asked by a new process (each ``routerllm route``), whose cache starts empty. It
    is no hit, only counted (``after_reload``): in the same process, where its model was
    evicted meanwhile, a cache would have answered it."""

    max_entries: int
    ttl_s: float
    stored: OrderedDict[tuple[str, str], float] = field(default_factory=OrderedDict)
    hits: int = 0
    saved_kwh: Terms = field(default_factory=Terms)  # each hit's energy less its routing
    after_reload: int = 0
    # the entries of a model loaded again since they were stored: a repeat of one is no hit
    reloaded: OrderedDict[tuple[str, str], float] = field(default_factory=OrderedDict)
    # each model's keys of ``stored``, in its order: a load takes its model's out of it
    # without reading every entry (it read them all, most of a report's time where most
    # requests load their model, as a synthetic log's do)
    by_model: dict[str, OrderedDict[tuple[str, str], None]] = field(default_factory=dict, repr=False)  # fmt: skip

    def add(self, timestamp: str, sha: str, model: str, energy: float, parts: Sequence[Part], answered: bool = True, loaded: bool = False) -> None:  # fmt: skip
        """One request; a failed one (not ``answered``) may be answered from the cache,
        but leaves nothing in it to answer a later one; ``loaded``: it loaded its model
        (a load that worked, of the answering model's own; not a count's read of its
        files, which a refusal before the load makes), which a cache hit does not."""
        try:
            key, now = (sha, model), seconds(timestamp)
        except RouterLLMError:  # an older log's timestamp that is no time: no replay of it
            return
        stored = self.stored
        if loaded:  # its model loaded anew: the answers it gave before may be another process's
            for k in self.by_model.pop(model, ()):
                self.reloaded[k] = stored.pop(k)
                self.reloaded.move_to_end(k)
            while len(self.reloaded) > self.max_entries:  # as many as a cache holds
                self.reloaded.popitem(last=False)
        if key not in stored and now - self.reloaded.get(key, -float("inf")) <= self.ttl_s:
            self.after_reload += 1
        self.reloaded.pop(key, None)
        if key in stored and now - stored[key] <= self.ttl_s:
            self.hits += 1
            routing: float = 0
            for p in parts:
                if p[0] == "router_inference":
                    routing += p[2]
            self.saved_kwh.add(energy - routing)
            stored.move_to_end(key)
            self.by_model[model].move_to_end(key)
            return
        if not answered:
            return
        stored[key] = now
        stored.move_to_end(key)
        keys = self.by_model.get(model)
        if keys is None:
            keys = self.by_model[model] = OrderedDict()
        keys[key] = None
        keys.move_to_end(key)
        while len(stored) > self.max_entries:
            oldest, _ = stored.popitem(last=False)
            del self.by_model[oldest[1]][oldest]


def seconds(timestamp: str) -> float:
    """``instant(timestamp).timestamp()``, a fifth of its time where the timestamp has
    its offset, as the log writes it (the replayed cache reads one of each request)."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except (ValueError, TypeError):
        moment = None
    if moment is None or moment.tzinfo is None:  # read as UTC, or in another ISO form
        return instant(timestamp).timestamp()
    return moment.timestamp()
