"""The policy router (MISSION M3.8, seed 004), in its CPU form.

It predicts a *policy* for each prompt, not a model: ``standard`` (the medium
model suffices), ``complex`` (escalate to the large one) or ``ambiguous`` (both
fail: do not escalate). Labels come from outcome data by the seed's 9-cell oracle
matrix (``data/policy_labels.py``); a multinomial logistic regression on the
prompt embeddings of the outcome routers (same encoders, same cache) learns them.

A policy map then sends the two policies that name a model to a tier (``light``,
``medium``, ``heavy``) or to a named model: by default standard to the medium tier
and complex to the heavy tier. A tier is served by its reference model (the medium
or large model the labels were made from) where the router has it, else by the
config's smallest model of that tier (``class_routes.tier_route``). The classifier never
sees a model, so a saved policy router loads unchanged into a config of other
models (``LEARNS_PER_MODEL = False``): models change without retraining (a reference
model the new config still has keeps serving its tier).

Routing reuses ``OutcomeRouter``, with each model's predicted success read off the
matrix: the standard model succeeds where the policy is standard, the complex
model where it is standard or complex (the stronger model is taken to solve what
the cheaper one solves), and no model where it is ambiguous. So
``success(standard model) = P(standard)``, ``success(complex model) = P(standard)
+ P(complex)``, and 0 for the others. With the ``lambda`` rule a prompt escalates
when ``P(complex) > knob x (cost_complex - cost_standard)`` (costs divided by the
largest): the knob is a threshold on P(complex) over its whole range, and an
ambiguous prompt ("do not escalate") goes to the cheapest model the knob allows,
down to the cheapest of all (the seed's budget downgrade). The knob, the decision
rules, calibration to a target and the do-no-harm fallback to the best fixed mix
(M3.9) are then those of the other learned routers. Until calibration sets a rule
and knob, it routes by the seed's rule (``argmax``): each prompt to its most likely
policy's model, ambiguous to the standard one.

Summing the policies' probabilities per mapped model instead (standard and
ambiguous on the medium model) never escalated a prompt on the outcome sets:
P(complex) rarely passes one half, so the knob could not reach the heavy model
(LLMRouter AIQ 0.545 against 0.594-0.595 with success; README "The policy router").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.blas_threads import one_thread
from routerllm.config import TIER_ORDER
from routerllm.data.outcomes import OutcomeDataset
from routerllm.data.policy_labels import (
    POLICIES,
    check_model_count,
    check_references,
    default_references,
    label_counts,
    policy_labels,
)
from routerllm.exceptions import DataError, RouterLLMError
from routerllm.routers.base import CandidateModel, RoutingDecision, prompt_list
from routerllm.routers.class_routes import tier_route
from routerllm.routers.decision import MODES, choose, rowwise_matmul
from routerllm.routers.outcome import OutcomeRouter
from routerllm.routers.outcome_checks import check_dataset, check_outcome_rows

log = logging.getLogger(__name__)

#: Where each policy that names a model goes unless the router's ``policy_map`` says
#: otherwise: the seed's Standard -> the cheap model, Complex -> the strong one.
#: Ambiguous ("do not escalate") names none: no model is predicted to succeed there,
#: so the knob sends it to the cheapest model it allows.
DEFAULT_POLICY_MAP = {"standard": "medium", "complex": "heavy"}
MAPPED = tuple(DEFAULT_POLICY_MAP)
#: The decision rule of an uncalibrated policy router (the seed's): each prompt to its
#: most likely policy's model, ambiguous ("do not escalate") to the standard one.
ARGMAX = "argmax"
#: The tier whose reference model serves it, when the router has that model.
REFERENCE_TIERS = {"medium": "medium_model", "heavy": "large_model"}


class PolicyRouter(OutcomeRouter):
    """Predicts a policy (standard / complex / ambiguous) per prompt and routes by each
    model's success read off it, standard and complex to the models its policy map
    names; see the module docstring."""

    name = "policy"
    LEARNS_PER_MODEL = False
    MODEL_AXIS_ARRAYS = frozenset()  # its arrays run over the policies, not the models
    #: ``argmax``, the seed's rule, until calibration sets a knob: ``lambda`` 0 would
    #: escalate every prompt, the complex model's predicted success never being below
    #: the standard one's.
    DECISION_MODES = (ARGMAX, *MODES)
    DEFAULT_MODE = ARGMAX

    def __init__(
        self,
        models: Sequence[CandidateModel],
        seed: int = 0,
        C: float = 1.0,
        medium_model: str | None = None,
        large_model: str | None = None,
        policy_map: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(models, seed, **kw)
        self.C = float(C)
        if not (math.isfinite(self.C) and self.C > 0):
            raise RouterLLMError(f"policy router: C must be a number > 0, got {C!r}")
        self.medium_model, self.large_model = medium_model, large_model
        if policy_map is not None and not isinstance(policy_map, Mapping):
            raise RouterLLMError(
                f"policy_map maps policies to tiers or models, e.g. {DEFAULT_POLICY_MAP}, "
                f"got {policy_map!r}"
            )
        unknown = [p for p in (policy_map or {}) if p not in MAPPED]
        if unknown:
            why = (
                "ambiguous prompts (both models fail) go to the cheapest model the knob allows"
                if unknown[0] == "ambiguous"
                else f"valid: {', '.join(MAPPED)}"
            )
            raise RouterLLMError(f"policy_map names policy {unknown[0]!r}; {why}")
        self.policy_map = DEFAULT_POLICY_MAP | dict(policy_map or {})
        for policy, target in self.policy_map.items():
            if target not in TIER_ORDER and target not in self.model_names:
                raise RouterLLMError(
                    f"policy_map sends {policy!r} to {target!r}, neither a tier "
                    f"({', '.join(TIER_ORDER)}) nor a model of the router "
                    f"({', '.join(self.model_names)}); map it to one of those (policy_map, in "
                    f"router.options for a saved router)"
                )
        self.options.update(C=self.C, policy_map=dict(self.policy_map))
        self._set_references(medium_model, large_model)

    # -- the policy map ------------------------------------------------------
    def _set_references(self, medium: str | None, large: str | None) -> None:
        self.medium_model, self.large_model = medium, large
        self.options.update(medium_model=medium, large_model=large)
        self.targets = self.policy_targets()
        # success[policy, model]: whether the model solves a prompt of that policy
        (standard, _), (complex_, _) = self.targets
        self._success = np.zeros((len(POLICIES), len(self.models)))
        self._success[POLICIES.index("standard"), [standard, complex_]] = 1.0
        self._success[POLICIES.index("complex"), complex_] = 1.0

    def policy_targets(self) -> list[tuple[int, str]]:
        """For standard and complex, the index of the model serving it and why:
        a model the map names; else the tier's reference model where the router has
        it; else the config's smallest model of that tier (``tier_route``)."""
        targets = []
        for policy in MAPPED:
            target = self.policy_map[policy]
            if target not in TIER_ORDER:
                targets.append((self.model_names.index(target), "named by policy_map"))
                continue
            reference = getattr(self, REFERENCE_TIERS.get(target, ""), None)
            if reference in self.model_names:
                targets.append((self.model_names.index(reference), f"{target} reference model"))
            else:
                # By tier only: a model's class_id is a class of the classifier's four,
                # not a policy (class_routes would send class 0, the first asked, to
                # the model with class_id 0, whatever the tier).
                targets.append(tier_route(self.models, target))
        return targets

    @property
    def policy_models(self) -> dict[str, str]:
        """The model of standard and of complex."""
        return {p: self.model_names[j] for p, (j, _) in zip(MAPPED, self.targets, strict=True)}

    @classmethod
    def options_for_other_models(
        cls, options: dict[str, Any], model_names: Sequence[str]
    ) -> dict[str, Any]:
        # Costs and a fallback mix were measured for the models it was saved with: dropped
        # (the knob is scale-free, costs divided by the largest). A reference model still
        # in the config keeps serving its tier (the labels were made from its outcomes);
        # one it lacks is dropped, so that tier goes to the config's model of that tier
        # (and training it again chooses a reference among the new models).
        dropped = [k for k in ("costs", "mix") if options.get(k) is not None]
        if dropped:
            log.warning(
                "policy router loaded for other models: its saved %s are for the models it "
                "was trained with and are dropped (calibrate it again on this config's models)",
                " and ".join(dropped),
            )
        gone = [k for k in REFERENCE_TIERS.values() if options.get(k) not in model_names]
        return {k: v for k, v in options.items() if k not in ("costs", "mix", *gone)}

    def check_loaded(self, directory: Path) -> None:
        super().check_loaded(directory)
        # Saved uncalibrated before argmax was the default: lambda 0 escalates everything.
        if self.mode == "lambda" and self.knob <= 0 and self.mix is None and not self.second_share:
            log.warning(
                "the policy router in %s routes by the lambda rule with knob %g, which sends "
                "every prompt to its complex model (%s); calibrate it (routerllm train "
                "--calibrate TARGET) or set its router.options mode: argmax",
                directory, self.knob, self.policy_models["complex"],
            )  # fmt: skip

    # -- learning ------------------------------------------------------------
    def fit_dataset(
        self, data: OutcomeDataset, embeddings: np.ndarray | None = None
    ) -> PolicyRouter:
        """``fit`` on a dataset, IDK answers read from its response texts when it has them."""
        check_dataset(data)
        prompts = None if embeddings is not None else data.prompts
        return self.fit(prompts, data.scores, data.models, embeddings, data.responses)

    def fit(
        self,
        prompts: Sequence[str] | None,
        scores: np.ndarray,
        model_names: Sequence[str] | None = None,
        embeddings: np.ndarray | None = None,
        responses: Sequence[Sequence[str]] | None = None,
        *,
        questions: Sequence[str] | None = None,  # OutcomeRouter.fit's: it cross-validates nothing
    ) -> PolicyRouter:
        """Label each prompt by the 9-cell matrix from the reference models' columns of
        ``scores`` (named ``model_names``; default the router's models) and their
        ``responses`` (one text per prompt and model, same columns; None: no IDK),
        then fit the classifier. A reference model not given is chosen by
        ``default_references`` among the router's other models."""
        X = self._training_embeddings(prompts, embeddings)
        names = list(model_names) if model_names is not None else list(self.model_names)
        Y = self._columns(scores, names)  # checks the names and shape
        S = np.asarray(scores, dtype=float)
        check_outcome_rows(X, S)
        check_model_count(names)
        self._warn_if_one_prompt(len(S))
        medium, large = self.medium_model, self.large_model
        if medium is None or large is None:
            if len(self.model_names) < 2:
                raise DataError(
                    "the policy router needs two of its models to choose its reference models "
                    "from; name them (medium_model, large_model)"
                )
            medium, large = default_references(self.model_names, Y, self.costs, medium, large)
        check_references(names, medium, large)
        mi, li = names.index(medium), names.index(large)
        texts = self._response_columns(responses, names, len(S), (mi, li))
        labels = policy_labels(S[:, mi], S[:, li], *texts)
        self._set_references(medium, large)
        W, b = fit_multinomial(X.astype(np.float64), labels, self.C, self.seed)
        self._set({"coef": W, "intercept": b})
        self.fitted = True
        counts = label_counts(labels)
        self.selection = {
            "medium_model": medium,
            "large_model": large,
            "labels": counts,
            "idk_from_responses": responses is not None,
            "policy_models": self.policy_models,
        }
        log.info(
            "policy labels (medium %s, large %s): %s",
            medium, large, ", ".join(f"{p} {n}" for p, n in counts.items()),
        )  # fmt: skip
        return self

    @staticmethod
    def _response_columns(
        responses: Sequence[Sequence[str]] | None,
        names: list[str],
        n: int,
        columns: tuple[int, int],
    ) -> tuple[list[str] | None, list[str] | None]:
        if responses is None:
            return None, None
        if len(responses) != n or any(len(row) != len(names) for row in responses):
            raise DataError(f"responses must be {n} rows of {len(names)} texts (one per model)")
        return [str(row[columns[0]]) for row in responses], [
            str(row[columns[1]]) for row in responses
        ]

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:  # fit is overridden: labels, not Y
        raise RouterLLMError("the policy router learns from policy labels: call fit")

    def _set(self, arrays: dict[str, np.ndarray]) -> None:
        self.W = arrays["coef"].astype(np.float64)
        self.b = arrays["intercept"].astype(np.float64)
        self.dim = int(self.W.shape[0])

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        super()._check_state(arrays)
        W, b = arrays["coef"], arrays["intercept"]
        k = len(POLICIES)
        if W.ndim != 2 or W.shape[1] != k or b.shape != (k,):
            raise ValueError(
                f"policy weights must be (width, {k}) and ({k},), got {W.shape} and {b.shape}"
            )

    def state(self) -> dict[str, np.ndarray]:
        return {"coef": self.W, "intercept": self.b} if self.fitted else {}

    # -- prediction ----------------------------------------------------------
    def policy_probabilities(self, X: np.ndarray) -> np.ndarray:
        """(n, 3): each policy's predicted probability (``POLICIES`` order), from embeddings."""
        self._check_fitted()
        return self._policy_probs(self.check_embeddings(X))

    def predict_policies(self, prompts: Sequence[str]) -> list[str]:
        """Each prompt's most likely policy."""
        probs = self._policy_probs(self._embedded(prompt_list(prompts)))
        return [POLICIES[int(k)] for k in probs.argmax(axis=1)]

    def _policy_probs(self, X: np.ndarray) -> np.ndarray:
        z = rowwise_matmul(X, self.W) + self.b
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.clip(self._policy_probs(X) @ self._success, 0.0, 1.0)

    def _choose(
        self, pred: np.ndarray, knob: float, allowed: np.ndarray | None = None
    ) -> np.ndarray:
        if self.mode != ARGMAX:
            return super()._choose(pred, knob, allowed)
        # The policies' probabilities, read back off the predicted successes.
        (standard, _), (complex_, _) = self.targets
        p_standard = pred[:, standard]
        p_complex = pred[:, complex_] - (p_standard if standard != complex_ else 0.0)
        p_ambiguous = 1.0 - pred[:, complex_]
        escalate = (p_complex > p_standard) & (p_complex > p_ambiguous)  # a tie stays
        idx = np.where(escalate, complex_, standard)
        if allowed is not None and not allowed[idx].all():
            # The policy's model may not serve: the best predicted success that may.
            barred = ~allowed[idx]
            idx[barred] = choose(pred[barred], self.costs, "lambda", 0.0, allowed=allowed)
        return idx

    def _rule(self, knob: float) -> str:
        if self.mode != ARGMAX:
            return super()._rule(knob)
        return "the most likely policy; ambiguous stays on the standard model"

    def route_batch_embedded(
        self, prompts: Sequence[str], allowed: Sequence[str] | None = None
    ) -> tuple[list[RoutingDecision], np.ndarray]:
        """As ``OutcomeRouter.route_batch_embedded``; the reason gives the policies'
        probabilities, and the confidence is the chosen model's predicted success."""
        prompts = prompt_list(prompts)
        mask = self._mask(allowed)
        X = self._embedded(prompts)
        probs = self._policy_probs(X)
        pred = np.clip(probs @ self._success, 0.0, 1.0)
        knobs = self._knobs(prompts)
        idx = self._choices(prompts, pred, mask, knobs)
        hows = self._hows(mask, knobs)
        if self.mode == ARGMAX and not self._mixing(mask):
            # The policy's model may not serve (a budget, an unavailable model): say so,
            # rather than call the model that does the most likely policy's.
            wanted = self._choose(pred, self.knob)
            hows = [
                how
                if i == w
                else f"the most likely policy's model, {self.model_names[w]}, may not serve: "
                "the allowed model most likely to succeed"
                for i, w, how in zip(idx, wanted, hows, strict=True)
            ]
        decisions = [
            RoutingDecision(
                model=self.model_names[i],
                confidence=float(row[i]),
                reason=f"policies {', '.join(f'{q} p={v:.2f}' for q, v in zip(POLICIES, p, strict=True))}"
                f" -> {self.model_names[i]}, predicted success {row[i]:.2f} ({how})",
                router=self.name,
                scores={n: float(v) for n, v in zip(self.model_names, row, strict=True)},
            )
            for i, row, p, how in zip(idx, pred, probs, hows, strict=True)
        ]
        return decisions, X


def fit_multinomial(
    X: np.ndarray, labels: np.ndarray, C: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial L2-regularised logistic regression of ``labels`` (indices of
    ``POLICIES``) on ``X``: weights (d, 3) and intercepts (3,) of a softmax. A policy
    no prompt has gets probability ~0 (an intercept 50 below the others); with a
    single policy present every prompt gets it."""
    k, d = len(POLICIES), X.shape[1]
    W, b = np.zeros((d, k)), np.zeros(k)
    present = [c for c in range(k) if np.any(labels == c)]
    if len(present) < 2:  # nothing to tell apart
        b[:] = -50.0
        b[present] = 0.0
        return W, b
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as e:
        from routerllm.exceptions import missing_dependency

        raise missing_dependency("scikit-learn", "learn", e) from e
    clf = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    with one_thread():  # scipy's BLAS, loaded with scikit-learn, too
        clf.fit(X, labels)
    if len(present) == 2:  # a binary fit: softmax([0, z]) is sigmoid(z)
        W[:, present[1]], b[present[1]] = clf.coef_[0], clf.intercept_[0]
    else:
        W[:, present], b[present] = clf.coef_.T, clf.intercept_
    missing = [c for c in range(k) if c not in present]
    b[missing] = float(b[present].min()) - 50.0
    return W, b
