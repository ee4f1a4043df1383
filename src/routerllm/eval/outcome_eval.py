"""``routerllm eval-routing``: train routers on outcome data, evaluate them on
held-out prompts, and report the quality-cost metrics with reference rows.

Test prompts that also appear in the training data are removed first (and
counted), so no figure is measured on a question a router was trained on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from routerllm.carbon.report_text import counted
from routerllm.checks import MAX_RESAMPLES, is_finite_number, is_integer
from routerllm.data.outcome_files import load_outcomes
from routerllm.data.outcomes import OutcomeDataset, normalise, not_in, question_copies
from routerllm.encoders.base import text_list
from routerllm.eval import LEARNED_ROUTERS
from routerllm.eval.curves import OperatingPoint
from routerllm.eval.routing_metrics import (
    check_named_knobs,
    references,
    routing_report,
    sweep,
)
from routerllm.exceptions import DataError, RouterLLMError
from routerllm.registry import ROUTERS
from routerllm.routers.base import Candidate, check_seed, create_router
from routerllm.routers.outcome import DEFAULT_ENCODER, OutcomeRouter

log = logging.getLogger(__name__)


@dataclass
class RoutingEvaluation:
    report: dict[str, Any]
    curves: dict[str, list[OperatingPoint]]
    train_size: int
    test_size: int
    removed_overlap: int
    cost_kind: str
    models: list[str]
    test_scores: np.ndarray
    test_costs: np.ndarray
    #: (m,) each model's mean cost on the training data: what the routers decide by
    #: (a test call's own cost is known only after the call)
    decision_costs: np.ndarray
    fit_seconds: dict[str, float] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    #: each router's predicted (n_test, m) success matrix, columns in ``models``' order
    predicted: dict[str, np.ndarray] = field(default_factory=dict)
    mode: str = "lambda"  # the decision rule the curves sweep
    #: ``sweep``'s knobs: None or "exact", every interval of the rule's knob; "grid",
    #: the former grid (200 lambdas, 201 thresholds)
    knobs: Literal["exact", "grid"] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "routers": {n: r for n, r in self.report["rows"].items()},
            "best_single": self.report["best_single"],
            "oracle": self.report["oracle"],
            "cheapest": self.report["cheapest"],
            "cost_range": self.report["cost_range"],
            "notes": self.report["notes"],
            "train_size": self.train_size,
            "test_size": self.test_size,
            "removed_overlap": self.removed_overlap,
            "cost": self.cost_kind,
            "models": self.models,
            "fit_seconds": self.fit_seconds,
            "selection": self.selection,
        }


def split_dataset(
    data: OutcomeDataset, test_fraction: float, seed: int
) -> tuple[OutcomeDataset, OutcomeDataset]:
    """A seeded random split by question (used when no separate test file is given):
    every copy of a question (as ``overlap`` compares them) goes to the same side, so a
    question sampled several times is not both trained on and tested on. Without
    repeated questions it is the seeded permutation's first share and the rest."""
    if not isinstance(data, OutcomeDataset):
        raise DataError(f"split_dataset splits an OutcomeDataset, got {type(data).__name__}")
    if not (is_finite_number(test_fraction) and 0 < test_fraction < 1):
        raise DataError(f"the test fraction must be between 0 and 1, got {test_fraction!r}")
    copies = question_copies(data.prompts)
    order = np.random.default_rng(check_seed(seed)).permutation(len(copies))
    cut = int(round(len(data) * (1 - test_fraction)))
    train: list[int] = []
    taken = 0
    while taken < len(order) and len(train) < cut:
        train += copies[order[taken]]
        taken += 1
    test = [i for g in order[taken:] for i in copies[g]]
    if not (cut > 0 and train and test):
        questions = (
            f" ({counted(len(copies), 'distinct question')}, each kept on one side)"
            if len(copies) < len(data)
            else ""
        )
        raise DataError(
            f"a test fraction of {test_fraction:g} leaves nothing to "
            f"{'train on' if cut == 0 else 'test on'} with {counted(len(data), 'prompt')}"
            + questions
        )
    return data.subset(train), data.subset(test)


def _router_names(routers: Any, router_options: Any) -> list[str]:
    """The outcome routers to evaluate (a list of names, not one bare name) after
    checking their options: a clear error before any work otherwise."""
    names = text_list(routers, "routers")
    if wrong := [n for n in names if not issubclass(ROUTERS.get(n), OutcomeRouter)]:
        others = [n for n in ROUTERS if n not in LEARNED_ROUTERS and issubclass(ROUTERS.get(n), OutcomeRouter)]  # fmt: skip
        raise DataError(
            f"router {wrong[0]!r} does not learn from outcome data; use one of "
            f"{', '.join([*LEARNED_ROUTERS, *others])}"
        )
    if router_options is None:
        return names
    if not isinstance(router_options, Mapping) or not all(
        isinstance(o, Mapping) for o in router_options.values()
    ):
        raise RouterLLMError(
            "router_options must map router names to their options, e.g. "
            f"{{'knn': {{'k': 5}}}}, got {router_options!r}"[:300]
        )
    if unused := [n for n in router_options if n not in names]:
        raise RouterLLMError(
            f"router_options for {', '.join(map(repr, unused))}, which is not evaluated "
            f"(routers: {', '.join(names)})"
        )
    return names


def outcome_candidates(data: OutcomeDataset, mean_cost: np.ndarray) -> list[Candidate]:
    """The routers' view of the data's models: sized in B params where the data says,
    else by their mean cost."""
    sizes = data.sizes()
    return [
        Candidate(m, float(sizes[j]) if sizes is not None else float(mean_cost[j]))
        for j, m in enumerate(data.models)
    ]


def embed(
    datasets: Sequence[OutcomeDataset], encoder: str, cache_dir: str | None = None
) -> list[np.ndarray]:
    from routerllm.encoders import CachedEncoder, create_encoder

    enc = CachedEncoder(create_encoder(encoder), cache_dir)
    return [enc.encode(d.prompts) for d in datasets]


def evaluate_routing(
    data: str | Path | OutcomeDataset,
    test: str | Path | OutcomeDataset | None = None,
    routers: Sequence[str] = LEARNED_ROUTERS,
    encoder: str = DEFAULT_ENCODER,
    cost: str = "auto",
    test_fraction: float = 0.2,
    seed: int = 0,
    mode: str = "lambda",
    embeddings: tuple[np.ndarray, np.ndarray] | None = None,
    router_options: dict[str, dict[str, Any]] | None = None,
    knobs: Literal["exact", "grid"] | None = None,
) -> RoutingEvaluation:
    """Train each router on ``data`` and evaluate it on ``test`` (or a held-out split);
    each is a file or an already loaded dataset. ``embeddings`` (x_data, x_test), one row
    per prompt of ``data`` and of ``test`` as given (so it needs a ``test``), stand for
    ``encoder``'s; the rows of test prompts removed as also in ``data`` are dropped too.
    ``knobs`` are ``sweep``'s: by default every interval of the rule's knob, ``"grid"``
    the former default grid (200 lambdas, 201 thresholds)."""
    routers = _router_names(routers, router_options)
    seed = check_seed(seed)
    check_named_knobs(knobs)
    if embeddings is not None and test is None:
        raise RouterLLMError(
            "embeddings are one row per prompt of data and of test: give a test set with them "
            "(a held-out split of data is made here, after they were computed)"
        )
    train = data if isinstance(data, OutcomeDataset) else load_outcomes(data)
    if test is None:
        train, test_set = split_dataset(train, test_fraction, seed)
    else:
        test_set = test if isinstance(test, OutcomeDataset) else load_outcomes(test)
        if missing := [m for m in train.models if m not in test_set.models]:
            # names that differ only in case or spaces ("GPT-4 ") read as the same one
            alike = [f"{t!r} for {m!r}" for m in missing for t in test_set.models
                     if normalise(t) == normalise(m)]  # fmt: skip
            raise DataError(
                f"{test_set.where} has no scores for {', '.join(missing)}, which the "
                f"training data {train.where} has: the routers choose among the training "
                f"data's models, so give a test set scored on each of them (or leave "
                f"--test out to hold out part of the training data)"
                + (f"; it names {', '.join(alike)}: rename to match exactly" if alike else "")
            )
        if extra := [m for m in test_set.models if m not in train.models]:
            log.warning(
                "%s: left out %s, which the training data (%s) does not have: the routers "
                "choose among the training data's models",
                test_set.where, ", ".join(extra), train.where,
            )  # fmt: skip
        if test_set.models != train.models:
            test_set = test_set.restrict_models(train.models)
        # A model's size and prices are one fact: a test file without a models.json
        # beside it (in another folder) takes the training data's
        if lacking := {m: i for m, i in train.info.items() if m not in test_set.info}:
            test_set = replace(test_set, info={**test_set.info, **lacking})
    kept = not_in(test_set, train)
    if embeddings is not None:
        x_train, x_test = embeddings
        if len(x_test) != len(test_set):
            raise RouterLLMError(
                f"embeddings: {len(x_test)} test rows for {len(test_set)} test prompts; give one "
                "row per prompt of test"
            )
        embeddings = (x_train, np.asarray(x_test)[kept])
    test_set, removed = test_set.subset(kept), len(test_set) - len(kept)
    if len(test_set) == 0:
        raise DataError("every test prompt also appears in the training data: nothing to evaluate")
    if removed:
        # counted in the result (removed_overlap), which eval-routing prints: not a warning
        log.info("removed %d test prompts that also appear in the training data", removed)
    cost_kind = train.cost_kind(cost)
    c_train, c_test = train.cost_matrix(cost_kind), test_set.cost_matrix(cost_kind)
    x_train, x_test = embeddings if embeddings is not None else embed([train, test_set], encoder)
    sizes = train.sizes()
    mean_cost = c_train.mean(axis=0)
    candidates = outcome_candidates(train, mean_cost)
    curves: dict[str, list[OperatingPoint]] = {}
    fit_seconds: dict[str, float] = {}
    selection: dict[str, Any] = {}
    predictions: dict[str, np.ndarray] = {}
    for name in routers:
        options = {"encoder": encoder, "mode": mode, "costs": mean_cost.tolist()}
        options.update((router_options or {}).get(name, {}))
        router = create_router(name, candidates, seed, **options)
        assert isinstance(router, OutcomeRouter)
        start = time.perf_counter()
        router.fit_dataset(train, x_train)
        fit_seconds[name] = time.perf_counter() - start
        order = [router.model_names.index(m) for m in train.models]
        predictions[name] = predicted = router.predict(x_test)[:, order]
        curves[name] = sweep(
            predicted,
            test_set.scores,
            c_test,
            mode=mode,  # type: ignore[arg-type]
            knobs=knobs,
            decision_costs=mean_cost,
        )
        if router.selection:
            selection[name] = {k: v for k, v in router.selection.items() if k != "candidates"}
    size_list = None if sizes is None else [float(x) for x in sizes]
    report = routing_report(curves, test_set.scores, c_test, size_list, model_names=train.models)
    return RoutingEvaluation(
        report,
        curves,
        len(train),
        len(test_set),
        removed,
        cost_kind,
        train.models,
        test_set.scores,
        c_test,
        mean_cost,
        fit_seconds,
        selection,
        predictions,
        mode,
        knobs,
    )


def compare_routers(
    evaluation: RoutingEvaluation,
    resamples: int = 200,
    seed: int = 0,
    reference: str | None = None,
) -> dict[str, Any]:
    """How sure the evaluation's ranking is: a paired bootstrap over the test prompts
    (each resample draws them again with replacement, the same draw for every router,
    whose predictions stay as they were: the training set is not resampled).

    ``reference`` (default: the first router evaluated) against each other router:
    its AIQ minus theirs on the test prompts and the 90 % interval of that difference
    over the resamples, the share of resamples where its AIQ is higher, and the share
    where it reaches the best single model's accuracy at a lower cost (never reaching
    it counts as an infinite cost)."""
    names = list(evaluation.predicted)
    if len(names) < 2:
        raise RouterLLMError("comparing routers needs at least two evaluated routers")
    reference = names[0] if reference is None else reference
    if reference not in names:
        raise RouterLLMError(
            f"reference {reference!r} was not evaluated; evaluated: {', '.join(names)}"
        )
    if not is_integer(resamples) or not 1 <= resamples <= MAX_RESAMPLES:
        raise RouterLLMError(
            f"resamples must be a whole number from 1 to {MAX_RESAMPLES:,}, got {resamples!r}"
        )
    rng = np.random.default_rng(check_seed(seed))
    n = len(evaluation.test_scores)
    others = [name for name in names if name != reference]
    aiq, cost = np.zeros((resamples, len(names))), np.zeros((resamples, len(names)))
    for r in range(resamples):
        idx = rng.integers(0, n, n)
        scores, costs = evaluation.test_scores[idx], evaluation.test_costs[idx]
        curves = {
            name: sweep(p[idx], scores, costs, mode=evaluation.mode,  # type: ignore[arg-type]
                        knobs=evaluation.knobs, decision_costs=evaluation.decision_costs)
            for name, p in evaluation.predicted.items()
        }  # fmt: skip
        rows = routing_report(curves, scores, costs)["rows"]
        aiq[r] = [rows[name]["aiq"] for name in names]
        cost[r] = [_or_inf(rows[name]["cost_to_best_accuracy"]) for name in names]
    ref = names.index(reference)
    point = evaluation.report["rows"]
    against = {}
    for name in others:
        j = names.index(name)
        diff = aiq[:, ref] - aiq[:, j]
        against[name] = {
            "aiq_diff": point[reference]["aiq"] - point[name]["aiq"],
            "aiq_diff_90ci": [float(v) for v in np.percentile(diff, [5, 95])],
            "share_aiq_higher": float((diff > 0).mean()),
            "share_best_accuracy_cheaper": float((cost[:, ref] < cost[:, j]).mean()),
        }
    return {"reference": reference, "resamples": resamples, "seed": seed, "against": against}


def _or_inf(cost: float | None) -> float:
    return math.inf if cost is None else cost


def plot(evaluation: RoutingEvaluation, path: str | Path, title: str = "Quality vs cost") -> Path:
    """The quality-cost curves of every evaluated router, as a PNG."""
    from routerllm.eval.plots import plot_quality_cost

    refs = references(evaluation.test_scores, evaluation.test_costs, evaluation.models)
    return plot_quality_cost(evaluation.curves, refs, path, title)
