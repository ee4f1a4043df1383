"""Routers learned from outcome data: predict each model's chance of success
on a prompt, then choose by one cost knob (``OutcomeRouter``, the base of the
routers in ``quality.py``).

Decision rules (``mode``):

* ``lambda``: the model maximising ``predicted success - knob x cost``, with
  costs divided by the largest model cost so the knob is scale-free;
* ``threshold``: the cheapest model whose predicted success is >= ``knob``,
  else the model with the highest predicted success.

When calibration finds that the router does worse than the best fixed mix of single
models at the same cost (MISSION M3.9), the router draws from that mix instead
(``mix``), per prompt and reproducibly (``decision.mix_choices``). How the rule, its
knob or the mix choose each prompt's model is in ``outcome_decisions.py``; how a target
sets them in ``calibration.py``; what the routers take (embeddings,
outcome columns, saved arrays) is checked in ``outcome_checks.py``. A saved one is refused
where its encoder's files changed since (``encoder_weights.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.blas_threads import one_thread
from routerllm.data.outcomes import OutcomeDataset, question_copies
from routerllm.encoders.base import encoder_class, encoder_width
from routerllm.exceptions import RouterLLMError
from routerllm.routers.base import CandidateModel, Router, RoutingDecision, prompt_list
from routerllm.routers.calibration import SIGNAL_SE
from routerllm.routers.decision import MODES
from routerllm.routers.outcome_checks import (
    check_dataset,
    check_embeddings,
    check_outcome_rows,
    check_state_arrays,
    outcome_columns,
)
from routerllm.routers.outcome_decisions import OutcomeDecisions

log = logging.getLogger(__name__)

#: MiniLM distilled into a static token table (encoders/distilled.py): as fast as
#: WordLlama's ``static`` (far inside the decision latency target on 2 CPU cores,
#: p50 <= 5 ms, >= 500 prompts/s; benchmarks/router_latency.py), and with it this
#: router has its best mean AIQ on both outcome sets (benchmarks/routing_targets.py).
DEFAULT_ENCODER = "minilm-static"
#: The knob of each decision rule before calibration sets one.
DEFAULT_KNOB = {"lambda": 0.0, "threshold": 0.5}


class OutcomeRouter(Router, OutcomeDecisions):
    """Base of routers that predict per-model success from prompt embeddings."""

    LEARNED_OPTIONS = frozenset({"encoder"})
    #: What ``predict`` gives, in a decision's reason.
    PREDICTION = "predicted success"
    #: The decision rules it takes, and the one it routes by unless told.
    DECISION_MODES: tuple[str, ...] = MODES
    DEFAULT_MODE = "lambda"

    def __init__(
        self,
        models: Sequence[CandidateModel],
        seed: int = 0,
        encoder: str = DEFAULT_ENCODER,
        mode: str | None = None,
        knob: float | None = None,
        costs: Sequence[float] | None = None,
        mix: Mapping[str, float] | None = None,
        second_knob: float | None = None,
        second_share: float = 0.0,
    ) -> None:
        super().__init__(models, seed)
        self._given_order = [
            m.name for m in models
        ]  # unnamed columns are ambiguous unless it is kept
        mode = self.DEFAULT_MODE if mode is None else mode
        if mode not in self.DECISION_MODES:
            raise RouterLLMError(
                f"unknown decision mode {mode!r} for the {self.name} router; "
                f"valid: {', '.join(self.DECISION_MODES)}"
            )
        if not isinstance(encoder, str):
            raise RouterLLMError(f"encoder must be an encoder name, got {encoder!r}")
        encoder_class(encoder)  # an unknown one refused here, not at the first prompt routed
        self.encoder_spec = encoder
        self.mode = mode
        # Uncalibrated: lambda 0 takes the best predicted model, threshold 0.5 the
        # cheapest one more likely than not to succeed (0 would always be the cheapest).
        self.knob = float(DEFAULT_KNOB.get(mode, 0.0) if knob is None else knob)
        if not math.isfinite(self.knob):
            raise RouterLLMError(f"knob must be a finite number, got {knob!r}")
        # Per-model decision cost, in the router's (size-sorted) model order.
        if costs is None:
            self.costs = np.array([m.params_b for m in self.models], dtype=float)
        else:
            if len(costs) != len(models):
                raise RouterLLMError(f"{len(costs)} costs for {len(models)} models")
            by_name = dict(zip([m.name for m in models], costs, strict=True))
            self.costs = np.array([by_name[n] for n in self.model_names], dtype=float)
            if not (np.isfinite(self.costs).all() and self.costs.min() >= 0):
                raise RouterLLMError(f"costs must be non-negative numbers, got {list(costs)!r}")
        self.options = {
            "encoder": encoder,
            "mode": mode,
            "knob": self.knob,
            "costs": self.costs.tolist(),
        }
        self.set_second_knob(second_knob, second_share)
        self.set_mix(mix)
        self._encoder: Any = None
        self.fitted = False
        #: Width of the embeddings it was trained on (from its arrays, so older saves have it).
        self.dim: int | None = None
        #: How a router chose its own hyper-parameters (QualityRouter), for reports.
        self.selection: dict[str, Any] = {}
        #: Each question's rows (``question_copies``) in the data last fitted on, where
        #: ``fit`` knew the questions: kept in one fold by its cross-validation; not saved.
        self.training_copies: list[list[int]] | None = None

    # -- embeddings ----------------------------------------------------------
    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        """The prompts' embeddings by the router's encoder, one row per prompt (loaded on
        first use): what ``fit(embeddings=...)`` takes."""
        prompts = prompt_list(prompts)
        if self._encoder is None:
            from routerllm.encoders import create_encoder

            self._encoder = create_encoder(self.encoder_spec)
        return np.asarray(self._encoder.encode(prompts), dtype=np.float32)

    def share_encoder(self, other: OutcomeRouter) -> None:
        """Embed with ``other``'s encoder, built already (same spec): routers trained side
        by side (cross-validation folds) build one encoder, not one each."""
        if other.encoder_spec != self.encoder_spec:
            raise RouterLLMError(
                f"cannot share encoder {other.encoder_spec!r} with a router of {self.encoder_spec!r}"
            )
        self._encoder = other._encoder

    def check_embeddings(
        self, X: Any, what: str = "embeddings", trained: bool = True
    ) -> np.ndarray:
        """``X`` as a 2-D float array of finite numbers, as wide as the embeddings the
        router was trained on (``trained``); a clear error otherwise."""
        return check_embeddings(X, what, self.dim if trained else None, self.name)

    # -- learning ------------------------------------------------------------
    def fit(
        self,
        prompts: Sequence[str] | None,
        scores: np.ndarray,
        model_names: Sequence[str] | None = None,
        embeddings: np.ndarray | None = None,
        *,
        questions: Sequence[str] | None = None,
    ) -> OutcomeRouter:
        """Learn from outcomes ``scores`` (n, m), columns named ``model_names`` (default: the
        router's models, where the order they were given is the order it keeps them in,
        smallest first, ``self.model_names``; refused where the two differ, as which column
        is which model would be a guess). ``questions``: the prompts' texts where
        ``embeddings`` stand for them, so that ``QualityRouter``'s cross-validation keeps
        every copy of a question in one fold (without them, each row is its own).

        One prompt is enough (a cross-validation fold of a small problem set may have no
        more), but then it cannot tell prompts apart: a warning says so."""
        if model_names is None and self._given_order != self.model_names:
            raise RouterLLMError(
                f"fit: name the outcome columns (model_names): the router's models were given "
                f"as {', '.join(self._given_order)} and it keeps them smallest first, "
                f"{', '.join(self.model_names)}, so which column is which model is not known"
            )
        X = self._training_embeddings(prompts, embeddings)
        Y = self._columns(scores, model_names)
        check_outcome_rows(X, Y)
        texts = prompts if prompts is not None else questions
        if texts is not None and len(texts := prompt_list(texts)) != len(Y):
            raise RouterLLMError(f"fit: {len(texts)} questions for {len(Y)} rows of outcomes")
        self._warn_if_one_prompt(len(Y))
        self.training_copies = None if texts is None else question_copies(texts)
        with one_thread():  # small matrices: a second BLAS thread costs more than it gives
            self._fit(X.astype(np.float32), Y)
        self.fitted = True
        return self

    def _warn_if_one_prompt(self, n: int) -> None:
        if n == 1:
            log.warning(
                "router %r is trained on a single prompt: it cannot tell prompts apart and "
                "routes every prompt by that one's outcomes; train it on more to route by the "
                "prompt",
                self.name,
            )

    def fit_dataset(
        self, data: OutcomeDataset, embeddings: np.ndarray | None = None
    ) -> OutcomeRouter:
        """Learn from an outcome dataset (its prompts, or their ``embeddings`` when given):
        ``fit`` on its scores; a router that reads more of it (``PolicyRouter``: the
        answers' texts) overrides this."""
        check_dataset(data)
        prompts = None if embeddings is not None else data.prompts
        return self.fit(prompts, data.scores, data.models, embeddings, questions=data.prompts)

    def _training_embeddings(
        self, prompts: Sequence[str] | None, embeddings: np.ndarray | None
    ) -> np.ndarray:
        """The training prompts' embeddings, given or computed, checked."""
        if embeddings is None and prompts is None:
            raise RouterLLMError("fit needs the training prompts or their embeddings")
        if embeddings is not None and prompts is not None:
            raise RouterLLMError("fit takes the training prompts or their embeddings, not both")
        return self.check_embeddings(
            embeddings if embeddings is not None else self.embed(prompts or []), trained=False
        )

    def _columns(
        self, values: Any, names: Sequence[str] | None, what: str = "outcomes"
    ) -> np.ndarray:
        """``values`` with columns named ``names`` as the router's columns (``outcome_columns``)."""
        return outcome_columns(values, names, self.model_names, what)

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted success probability (n, m) of each model, from embeddings (what
        the decision rules rank models by: ``PREDICTION`` says what it is)."""
        self._check_fitted()
        return self._predict(self.check_embeddings(X))

    def _predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        """Each model's predicted chance of success on each prompt, (n, m) in
        ``model_names`` order; a trained router only."""
        return self._predict(self._embedded(prompts))

    def warm_up(self, prompt: str) -> None:
        self.predict_prompts([prompt])  # the encoder loaded; no draw (``_explored``) taken

    def _embedded(self, prompts: Sequence[str]) -> np.ndarray:
        """The prompts' embeddings, checked, for a trained router."""
        self._check_fitted()
        what = f"the embeddings of encoder {self.encoder_spec!r}"
        return self.check_embeddings(self.embed(prompts), what)

    def _decision_inputs(
        self, X: np.ndarray, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The predicted success of each prompt embedded in ``X``, and the values its model
        is chosen by: the same, except for a router that explores (``_explored``).
        ``allowed`` is the mask of the models that may serve (``MoERouter`` gates among
        them)."""
        pred = self._predict(X)
        return pred, self._explored(X, pred)

    def _explored(self, X: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """The values a decision is taken on, from the embeddings ``X`` and their
        predictions: the predictions themselves; ``FeedbackRouter`` draws them."""
        return predicted

    @property
    def is_trained(self) -> bool:
        return self.fitted

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RouterLLMError(f"router {self.name!r} is not trained: fit it or load a saved one")

    # -- routing -------------------------------------------------------------
    def policy(self, X: np.ndarray) -> np.ndarray:
        """(n, m): each model's probability of being chosen for each prompt embedded in
        ``X``, over the router's draws (from the fixed mix, or between two settings);
        a choice it makes for sure is 1. Choices by the predictions, without a
        ``FeedbackRouter``'s exploration."""
        pred = self.predict(X)
        if self.mix is not None:
            return np.tile(self.mix, (len(pred), 1))
        out = np.zeros_like(pred)
        settings = [(self.knob, 1.0 - self.second_share), (self.second_knob, self.second_share)]
        for knob, weight in settings:
            if knob is not None and weight > 0:
                out[np.arange(len(pred)), self._choose(pred, knob)] += weight
        return out

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        pred, drawn = self._decision_inputs(self._embedded(prompts))
        everyone = np.ones(len(self.models), dtype=bool)
        idx = self._choices(prompts, drawn, everyone, self._knobs(prompts))
        out = np.full(pred.shape, 1e-6)
        out[np.arange(len(idx)), idx] = 1.0
        return out / out.sum(axis=1, keepdims=True)

    def route_batch(
        self, prompts: Sequence[str], allowed: Sequence[str] | None = None
    ) -> list[RoutingDecision]:
        return self.route_batch_embedded(prompts, allowed)[0]

    def route_batch_embedded(
        self, prompts: Sequence[str], allowed: Sequence[str] | None = None
    ) -> tuple[list[RoutingDecision], np.ndarray]:
        """``route_batch``'s decisions, and the prompts' embeddings they were taken on
        (one row per prompt): what feedback on the answers is learned from, without
        encoding the prompts again."""
        prompts = prompt_list(prompts)
        mask = self._mask(allowed)
        X = self._embedded(prompts)
        pred, drawn = self._decision_inputs(X, mask)
        knobs = self._knobs(prompts)
        idx = self._choices(prompts, drawn, mask, knobs)
        hows = self._hows(mask, knobs)
        decisions = [
            RoutingDecision(
                model=self.model_names[i],
                confidence=float(row[i]),
                reason=f"{self.PREDICTION} {row[i]:.2f} ({how})",
                router=self.name,
                scores={n: float(p) for n, p in zip(self.model_names, row, strict=True)},
            )
            for i, row, how in zip(idx, pred, hows, strict=True)
        ]
        return decisions, X

    # -- calibration ---------------------------------------------------------
    def calibrate(
        self,
        embeddings: np.ndarray | Sequence[str] | None,
        scores: np.ndarray,
        target: str,
        model_names: Sequence[str] | None = None,
        predicted: np.ndarray | None = None,
        modes: Sequence[str] = MODES,
        two_settings: bool = False,
        signal_se: float = SIGNAL_SE,
    ) -> dict[str, Any]:
        """Set the decision rule and its knob from a target, measured on held-out data
        (never the test set): of the rules in ``modes`` (by default both, ``lambda``
        and ``threshold``), the one whose best knob meets the target best. With
        ``two_settings``, a ``max_cost`` or ``quality`` target is met on the rule's
        curve, by a random mix of two knob settings where it falls between them
        (``second_knob``, ``second_share``); otherwise by the best single setting.

        The router's predictions for that data are its own, or ``predicted`` (columns
        named ``model_names`` like ``scores``): e.g. out-of-fold predictions for
        prompts it was trained on, when there is no data left to hold out.

        ``target`` is ``max_share=0.3`` (the largest model serves at most 30 % of
        requests), ``max_share:<model>=0.3`` (same for a named model),
        ``quality=0.95`` (keep 95 % of the best single model's quality on this
        data, at the lowest cost) or ``max_cost=0.7`` (the best quality at a mean
        cost of at most 70 % of the most expensive model's: a cost, energy or
        carbon budget, in the router's cost unit). Returns what the chosen knob does on the data
        (where it was chosen, the best of many settings: optimistic), what it can be
        expected to do on new prompts (``cross_fitted_*``: each prompt routed by a knob
        chosen the same way without it, ``routers/cross_fit.py``), and whether the target
        was reached and the router beats the best fixed mix of single models at that cost
        (MISSION M3.9). Where its cross-fitted lead over that mix
        (``cross_fitted_lead_over_mix``) is not more than ``signal_se`` standard errors
        (``cross_fitted_lead_standard_error``; 0: any lead), no routing signal shows
        (the lead where the knob was chosen, ``lead_over_mix``, is luck in part), and the
        router routes by drawing from the mix from now on
        (``fallback_mix``: the mix at the knob's cost, or for a quality target the
        cheapest one that reaches it where that one falls short; not when the mix would
        break a ``max_share`` target); otherwise by its predictions.
        ``target_reached`` is for the router as it then routes: by the mix, where it
        falls back to one (``routes_by``: ``"fixed mix"``, with a warning);
        ``knob_target_reached``, ``cost``, ``quality`` and ``shares`` are the knob's.
        """
        from routerllm.routers.calibration import calibrate

        return calibrate(
            self, embeddings, scores, target, model_names, predicted, modes, two_settings,
            signal_se,
        )  # fmt: skip

    def encoder_source(self) -> tuple[str, bool] | None:
        return self.encoder_spec, True

    def check_loaded(self, directory: Path) -> None:
        """Refuse weights learned on embeddings of another width than its encoder gives
        (where known without loading it: ``encoder_width``): it could route no prompt."""
        width = encoder_width(self.encoder_spec)
        if width is not None and self.dim is not None and width != self.dim:
            raise RouterLLMError(
                f"{directory / 'weights.npz'} was trained on {self.dim}-wide embeddings, but its "
                f"encoder {self.encoder_spec!r} (options.encoder in {directory / 'config.json'}) "
                f"gives {width}-wide ones, so it could route no prompt: name the encoder it was "
                f"trained with there, or train it again"
            )

    #: Arrays of the learned state whose last axis runs over the models (Router).
    MODEL_AXIS_ARRAYS = frozenset({"Y", "W", "b"})

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._check_state(arrays)
        self._set(arrays)
        self.fitted = True

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        """A ValueError naming what does not fit: a shape for other models or another
        width, values that are not finite, outcomes outside [0, 1]."""
        check_state_arrays(arrays, len(self.models))

    def _set(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError
