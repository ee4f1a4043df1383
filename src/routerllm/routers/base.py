"""The router interface.

A router scores a *batch* of prompts against the candidate models (one row
per prompt, one column per model, higher = better fit, rows sum to 1); the
concrete ``route``/``route_batch`` turn scores into decisions, restricted to
the models that are available. Learned routers add ``fit`` and persist their
parameters with ``save(dir)``/``load(dir)``: ``config.json`` plus
``weights.npz`` (never pickled objects); one that learned on an encoder's output also
records what its encoder's files held (``encoder_weights``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, overload

import numpy as np

from routerllm.checks import MAX_SEED, is_non_negative_number, is_seed, repeated
from routerllm.config import TIER_ORDER
from routerllm.encoders.base import text_list
from routerllm.exceptions import RouterLLMError, UnknownNameError, os_reason
from routerllm.files import locked_folder, refuse_foreign_folder, save_config_and_weights

if TYPE_CHECKING:
    from routerllm.files_identity import Weights
    from routerllm.routers.outcome import OutcomeRouter

logger = logging.getLogger(__name__)

#: 2: ``weights.npz`` also holds the models its columns run over (``MODEL_NAMES_ARRAY``);
#: a router whose weights do not run over the models is saved in format 1, as before,
#: which older versions read.
FORMAT_VERSION = 2
#: The array of a saved router's ``weights.npz`` naming, in order, the models the last
#: axis of its ``MODEL_AXIS_ARRAYS`` runs over. Covered by the weights' digest, unlike
#: ``config.json``'s ``models``, whose reordering by hand would swap the columns.
MODEL_NAMES_ARRAY = "_model_names"


def check_seed(seed: Any) -> int:
    """``seed`` as an int, or a clear error when it is not one :func:`is_seed` accepts."""
    if not is_seed(seed):
        raise RouterLLMError(
            f"a router's seed must be an integer >= 0 and <= {MAX_SEED}, got {seed!r}"
        )
    return int(seed)


class CandidateModel(Protocol):
    """What a router needs to know of a model. ``ModelConfig`` is one; so is ``Candidate``."""

    @property
    def name(self) -> str: ...
    @property
    def params_b(self) -> float: ...
    @property
    def tier(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def class_id(self) -> int | None: ...


@dataclass(frozen=True)
class Candidate:
    """A model known only by name and size, e.g. a column of an outcome dataset."""

    name: str
    params_b: float
    tier: str = "medium"
    category: str = "general"
    class_id: int | None = None


@dataclass(frozen=True)
class RoutingDecision:
    """Which model a prompt goes to, how sure the router is, and why: ``confidence``
    (0 to 1) is the chosen model's share of the scores of the models it could choose
    from; ``router`` the deciding router's name; ``scores`` its score of each of its
    models, by name (non-negative, summing to 1; empty where no router scored, as for a
    model the caller chose); ``reason`` in words."""

    model: str
    confidence: float
    reason: str
    router: str
    scores: dict[str, float] = field(default_factory=dict)


class Router(ABC):
    """Base class of every router. Subclasses implement ``score``."""

    name: ClassVar[str]

    def __init__(self, models: Sequence[CandidateModel], seed: int = 0) -> None:
        if not models:
            raise RouterLLMError("a router needs at least one candidate model")
        seed = check_seed(seed)
        # Smallest first, so ties and fallbacks prefer the cheaper model.
        self.models = sorted(models, key=lambda m: (TIER_ORDER.get(m.tier, 1), m.params_b))
        self.model_names = [m.name for m in self.models]
        self.seed = seed
        # Constructor options a subclass wants saved with it (JSON-serialisable).
        self.options: dict[str, Any] = {}

    @abstractmethod
    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """(len(prompts), len(models)) array; rows are non-negative and sum to 1."""

    def explain(self, prompt: str, row: np.ndarray) -> str:
        """A short human-readable reason for the scores of one prompt."""
        return "highest score"

    def warm_up(self, prompt: str) -> None:  # noqa: B027 - optional hook, most load nothing
        """Load what this router loads on its first call (an encoder, a classifier) by
        reading ``prompt``, without deciding anything: no random draw, no state learned.
        Nothing to load: nothing done."""

    def route(self, prompt: str, allowed: Sequence[str] | None = None) -> RoutingDecision:
        """Decide for one prompt (``route_batch`` of one): its model, confidence and reason."""
        return self.route_batch([prompt], allowed)[0]

    def route_batch(
        self, prompts: Sequence[str], allowed: Sequence[str] | None = None
    ) -> list[RoutingDecision]:
        """Decide for every prompt; only models in ``allowed`` (default: all) can be chosen."""
        prompts = prompt_list(prompts)
        mask = self._mask(allowed)
        scores = np.asarray(self.score(prompts), dtype=np.float64)
        decisions = []
        for prompt, row in zip(prompts, scores, strict=True):
            decisions.append(self._decide(prompt, row, mask))
        return decisions

    def _mask(self, allowed: Sequence[str] | None) -> np.ndarray:
        if allowed is None:
            return np.ones(len(self.models), dtype=bool)
        if isinstance(allowed, str | bytes) or not isinstance(allowed, Iterable):
            raise RouterLLMError(
                f"allowed must be a list of model names (e.g. [{self.model_names[0]!r}]), "
                f"got {allowed!r}"
            )
        names = list(allowed)
        if not all(isinstance(n, str) for n in names):
            raise RouterLLMError(f"allowed must be a list of model names, got {names!r}")
        mask = np.array([n in set(names) for n in self.model_names])
        # Names the router does not know are ignored (a system passes every available
        # model of its config); only when they are all there is, they are a mistake.
        unknown = [n for n in names if n not in self.model_names]
        if not mask.any() and unknown:
            raise UnknownNameError(
                "model" if len(unknown) == 1 else "models",
                ", ".join(unknown),
                self.model_names,
            )
        if not mask.any():
            raise RouterLLMError(
                f"none of the router's models is available ({', '.join(self.model_names)}); "
                f"run `routerllm models` to see why"
            )
        return mask

    def _decide(self, prompt: str, row: np.ndarray, mask: np.ndarray) -> RoutingDecision:
        masked = np.where(mask, row, -np.inf)
        # argmax takes the first maximum: the smallest model among ties.
        idx = int(np.argmax(masked))
        total = float(row[mask].sum())
        confidence = float(row[idx] / total) if total > 0 else 1.0 / int(mask.sum())
        reason = self.explain(prompt, row)
        if not mask[int(np.argmax(row))]:
            reason += f"; {self.model_names[int(np.argmax(row))]} unavailable"
        return RoutingDecision(
            model=self.model_names[idx],
            confidence=confidence,
            reason=reason,
            router=self.name,
            scores={n: float(s) for n, s in zip(self.model_names, row, strict=True)},
        )

    # -- persistence -------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        """Whether it has what it learns (routers that learn nothing always have)."""
        return True

    def state(self) -> dict[str, np.ndarray]:
        """Learned parameters as arrays (empty for routers that do not learn)."""
        return {}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Put back what ``state()`` returned (``load_router`` does, from ``weights.npz``)."""
        if arrays:
            raise RouterLLMError(f"router {self.name!r} has no learned parameters to load")

    #: Names of ``state()`` arrays whose last axis runs over ``model_names``: a saved
    #: router's are put back in this router's model order when it is loaded.
    MODEL_AXIS_ARRAYS: ClassVar[frozenset[str]] = frozenset()

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` (+ ``weights.npz`` when the router learned something).

        Both files are written beside their targets first and then renamed over
        them, config last; the weights they replace are kept as
        ``weights.previous.npz`` until the new config is in place. An interrupted
        save thus leaves a loadable router: the config records its weights' sha256,
        and ``load_router`` loads whichever of the two files has it."""
        if not isinstance(directory, str | os.PathLike) or not os.fspath(directory).strip():
            raise RouterLLMError(f"a router is saved to a folder path, got {directory!r}")
        path = Path(directory)
        arrays = self.state()
        named = bool(arrays and self.MODEL_AXIS_ARRAYS)  # format 2's model names
        if named:
            arrays = {**arrays, MODEL_NAMES_ARRAY: np.array(self.model_names)}
        if not self.is_trained:
            raise RouterLLMError(
                f"router {self.name!r} is not trained (fit it or load a saved one): "
                f"nothing saved to {path}"
            )
        # Under the folder's lock: two saves at once would otherwise leave one's config
        # naming the other's weights, and the folder would load neither.
        with locked_router_folder(path):
            try:
                from routerllm.routers.encoder_weights import encoder_record

                options = self.save_parts(path)
                meta = {
                    "format_version": FORMAT_VERSION if named else 1,
                    "router": self.name,
                    "models": self.model_names,
                    "seed": self.seed,
                    "options": options,
                    **encoder_record(self),
                }
                save_config_and_weights(path, meta, arrays)
            except OSError as e:
                raise RouterLLMError(f"cannot save the router to {path}: {os_reason(e)}") from e
        return path

    #: What its encoder's files held when it was loaded or last saved (recorded by a
    #: save, checked by a load: ``encoder_weights``); None before either.
    encoder_weights: Weights | None = None

    def encoder_source(self) -> tuple[str, bool] | None:
        """The spec of the encoder whose output its learned state was made on, and
        whether on its weights (else on its tokenizer and settings only: a full-mode
        classifier saves the weights it fine-tuned); None where it learned on none."""
        return None

    def save_parts(self, directory: Path) -> dict[str, Any]:
        """Write what the router keeps beside its ``config.json`` (an ensemble: its
        members, in subfolders) and return the options to record there. By default
        nothing: its ``options``."""
        return self.options

    #: Whether what it learns is tied to its models, so that a saved router loads only
    #: with a config holding them all (else it is rebuilt on the config's models, with
    #: ``options_for_other_models``: the policy router, whose classes map to tiers).
    LEARNS_PER_MODEL: ClassVar[bool] = True
    #: Options its saved weights were learned with (its encoder, say): a saved router
    #: loaded with another value of one would route on features it never learned.
    LEARNED_OPTIONS: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def learned_options(cls, saved: dict[str, Any]) -> frozenset[str]:
        """Of the options a router was saved with (``saved``), those its weights learned
        (``LEARNED_OPTIONS``, by default): a load giving another value of one is refused."""
        return cls.LEARNED_OPTIONS

    @classmethod
    def options_for_other_models(
        cls, options: dict[str, Any], model_names: Sequence[str]
    ) -> dict[str, Any]:
        """The saved options of a router that does not learn per model, for a config of
        other models (``model_names``): without what only made sense for the models it
        was saved with."""
        return options

    @classmethod
    def saved_options(cls, directory: Path, options: dict[str, Any]) -> dict[str, Any]:
        """The options recorded by ``save`` as the constructor takes them, given the
        folder they were saved in (an ensemble's members are in subfolders of it)."""
        return options

    def check_loaded(self, directory: Path) -> None:
        """Loaded from ``directory`` with the options it will route by: warn of a setting
        that routes badly. By default nothing to say."""
        return None


def prompt_list(prompts: Any) -> list[str]:
    """``prompts`` as a list of texts; a clear error for one bare string or anything else."""
    return text_list(prompts, "prompts")


def check_models(models: Any) -> None:
    """A clear error unless ``models`` is a list of model descriptions (``ModelConfig``,
    ``Candidate``...), e.g. ``config.models``."""
    fields = ("name", "params_b", "tier")
    if (
        isinstance(models, str | bytes)
        or not isinstance(models, Sequence)
        or not all(all(hasattr(m, f) for f in fields) for m in models)
    ):
        raise RouterLLMError(
            f"models must be a list of ModelConfig or Candidate objects (e.g. config.models), "
            f"got {models!r}"[:300]
        )
    names = [m.name for m in models]
    for m in models:
        size = m.params_b
        if not isinstance(m.name, str) or not m.name:
            raise RouterLLMError(f"a model's name must be a non-empty string, got {m.name!r}")
        if not is_non_negative_number(size):
            raise RouterLLMError(
                f"model {m.name!r}: params_b (its size, the routers' default cost) must be a "
                f"number >= 0, got {size!r}"
            )
        if m.tier not in TIER_ORDER:
            raise RouterLLMError(
                f"model {m.name!r}: tier must be one of {', '.join(TIER_ORDER)}, got {m.tier!r}"
            )
    if twice := repeated(names):
        raise RouterLLMError(f"model names must be distinct: {', '.join(twice)} given twice")


def train_first(name: str, then: str) -> str:
    """What to do with router ``name``, created by name but learning what it routes by:
    train it, ``then`` use the folder it is saved in."""
    return f"router {name!r} learns: train it first (routerllm train --router {name} --out DIR ...), then {then}"  # fmt: skip


def is_saved_router(config: Path) -> bool:
    """Whether ``config`` is the ``config.json`` of a router saved by RouterLLM."""
    return saved_router_name(config) is not None


def saved_router_name(config: Path) -> str | None:
    """The registered name of the router whose saved ``config.json`` is ``config``
    (None where it is not one RouterLLM saved)."""
    if not config.is_file():  # nothing, or a named pipe whose reading would never end
        return None
    try:
        meta = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
    if isinstance(meta, dict) and isinstance(meta.get("router"), str) and "models" in meta:
        return meta["router"]
    return None


@contextlib.contextmanager
def locked_router_folder(directory: Path) -> Iterator[None]:
    """``directory`` made and locked (``files.locked_folder``) for a save: a save there
    from another process or thread waits for this one (a save that writes more than
    ``Router.save``'s two files holds it around its ``Router.save``, which goes on). A
    folder holding something else is refused before the lock file is made in it."""
    refuse_foreign_folder(directory, is_saved_router, "RouterLLM router")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RouterLLMError(f"cannot save the router to {directory}: {os_reason(e)}") from e
    with locked_folder(directory):
        yield


#: What ``create_router`` takes beside a router's options: never one of them.
ROUTER_ARGUMENTS = ("name", "models", "seed")


def check_option_names(options: Mapping[str, Any]) -> None:
    """A clear error where ``options`` (a config's ``router.options``) name one of
    ``create_router``'s own arguments, which would be given twice."""
    if given := [k for k in ROUTER_ARGUMENTS if k in options]:
        raise RouterLLMError(
            f"{', '.join(given)}: not a router option (a router's name, models and seed are "
            f"router.name, the config's models and router.seed); remove it from the options "
            f"(router.options)"
        )


#: The registered routers that learn from outcome data (``OutcomeRouter``s): to a type
#: checker, ``create_router`` of one of these names gives one, with its ``fit_dataset``.
OutcomeRouterName = Literal["quality", "logreg", "knn", "feedback", "policy", "moe"]


@overload
def create_router(
    name: OutcomeRouterName, models: Sequence[CandidateModel], seed: int = 0, **options: Any
) -> OutcomeRouter: ...
@overload
def create_router(
    name: str, models: Sequence[CandidateModel], seed: int = 0, **options: Any
) -> Router: ...
def create_router(
    name: str, models: Sequence[CandidateModel], seed: int = 0, **options: Any
) -> Router:
    """Instantiate the router registered as ``name`` (``routerllm.registry.ROUTERS``) for
    ``models`` (a config's ``models``, or objects with their ``name``, ``params_b``,
    ``tier``, ``category`` and ``class_id``), drawing with ``seed``; ``options`` are the
    router's own (``mode="threshold"``, ``encoder="static"``...). An unknown name is an
    ``UnknownNameError`` listing the valid ones; a bad option a ``RouterLLMError``."""
    from routerllm.registry import ROUTERS
    from routerllm.routers.option_types import check_option_types

    if not isinstance(name, str):
        raise RouterLLMError(f"a router name is a string such as 'knn', got {name!r}")
    check_models(models)
    cls = ROUTERS.get(name)
    check_option_types(cls, options)
    try:
        router: Router = cls(models, seed=seed, **options)
    except (TypeError, ValueError, AttributeError, OverflowError, RouterLLMError) as e:
        # A value of the wrong kind or out of range (10**400 for a float too); a
        # missing package or model (a RouterLLMError subclass) keeps its own kind.
        if isinstance(e, RouterLLMError) and type(e) is not RouterLLMError:
            raise
        raise RouterLLMError(f"bad options for router {name!r}: {e}") from e
    return router
