"""The gated cascade's gate: which unverified answers the larger model gets, within an
energy budget (``gated-cascade`` of ``routerllm humaneval``).

An unverified answer (it fails its prompt's examples, or the prompt has none) is
escalated where the larger
model's predicted success per expected kWh clears a threshold, the greedy rule
of a knapsack. The success is predicted from the first model's own hidden state
of the prompt (:func:`state_predictions`), else by the quality router; the
threshold is chosen on the training folds for the budget (:func:`gate_threshold`),
never on the test fold. Cross-validation itself (folds, out-of-fold predictions,
fold routers) is :mod:`routerllm.eval.cross_validation`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from routerllm.carbon.meter import Measurement, weighted_share
from routerllm.eval.cascade_overhead import Gate, GateCost
from routerllm.eval.cross_validation import Fold, fold_ids, fold_routers
from routerllm.gate import gate_threshold
from routerllm.gate_models import EnergyModel, SuccessModel, measured_means
from routerllm.system import RouterLLM

#: How the gate predicts success (``budget_gate``), by whether it reads prompt states.
PREDICTORS = {
    True: "a logistic regression on the first model's own hidden state of the prompt, "
    "mapped onto the unverified answers",
    False: "the quality router, from the prompt's embedding",
}

#: Budgets of the gated cascade's curve (shares of the heavy model's generation energy).
CURVE_BUDGETS = tuple(round(0.40 + 0.05 * i, 2) for i in range(13))


def state_predictions(
    states: np.ndarray,
    solved: np.ndarray,
    unverified: np.ndarray,
    folds: int,
    seed: int,
    train_only: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[], np.ndarray]]]:
    """Per cross-validation fold: its training and test problems, and the chance that
    the second model solves a problem whose first answer is unverified, predicted from the
    first model's ``states`` (n, d) of the prompts: for the training problems out of
    fold (the same k-fold within them), for the test problems by a call (to be
    metered as the gate's inference). ``solved`` is the second model's outcome.

    Two steps, both fitted on training problems only: a logistic regression of the
    second model's success over all problems, then a logistic map of its
    out-of-fold prediction onto the problems that were escalated (Platt scaling on
    the ``unverified`` ones): the gate decides among unverified answers only, and there the
    relation can differ, even in sign, from the one over all problems. The last
    ``train_only`` problems are in every fold's training problems (:func:`fold_ids`)."""
    fold = fold_ids(len(states) - train_only, folds, seed, train_only)
    for f in range(folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        model, p_train = SuccessModel.fit(states[tr], solved[tr], unverified[tr], folds, seed)

        def test(te: np.ndarray = te, model: SuccessModel = model) -> np.ndarray:
            return model(states[te])

        yield tr, te, p_train, test


def budget_gate(
    system: RouterLLM,
    prompts: Sequence[str],
    scores: np.ndarray,
    energy: np.ndarray,
    models: Sequence[str],
    first: str,
    then: str,
    folds: int,
    seed: int,
    encoder: str | None,
    budget: float,
    first_tokens: np.ndarray,
    states: np.ndarray | None = None,
    unverified_train_only: np.ndarray | None = None,
    measured: np.ndarray | None = None,
) -> Gate:
    """A gate for :func:`cascade` that keeps it within ``budget`` x ``then``'s energy.

    Per cross-validation fold, a predictor trained on the other folds gives the
    chance that ``then`` solves each test problem: from ``first``'s own hidden
    states of the prompts when given (``states``, (n, d): :func:`state_predictions`),
    else the quality router's prediction from the prompt's embedding. ``then``'s
    energy on it is expected from ``first_tokens`` (n, 2: the prompt and answer
    tokens of ``first``, known once it has answered; :class:`routerllm.gate_models.EnergyModel` fitted
    on the training folds' answers of ``then`` whose energy was ``measured``, (n, m) as
    ``energy``: False where CodeCarbon failed, its 0 kWh not known; None: every one was).
    An unverified answer is escalated when its predicted success
    per expected kWh clears a threshold: for a budget, escalating by that ratio buys
    the most expected solved problems per kWh (the greedy rule of a knapsack). The
    threshold is chosen on the training folds only (:func:`gate_threshold` on their
    out-of-fold predictions, with what the cascade spends a problem besides
    generating, which the gate is told a fold at a time from the checks of that fold's
    training problems (:class:`routerllm.eval.cascade_overhead.Gate`'s ``fold``),
    counted against the budget; an answer not
    measured read as its model's mean measured energy on the training folds:
    :func:`routerllm.gate_models.measured_means`, which refuses a model with none), never
    on the test fold.

    The same fold predictors, calibrated to each of ``CURVE_BUDGETS`` in turn, give
    the gated cascade's curve: (budget, generation kWh, pass@1) over the tested problems;
    its kWh is None where it spends an answer not measured (no estimate is made of it,
    nor is it counted as 0 kWh).

    With ``unverified_train_only`` (whether ``first``'s answer is unverified, for
    problems of another set appended after the tested ones in every array), those
    problems train every fold's predictor and threshold and are never tested; the
    gate is then called with the tested problems' ``unverified`` only (the checks of
    those problems, which the cascade does not run, are the caller's to give as
    ``Gate.train_only``)."""
    pair = [models.index(first), models.index(then)]
    solved, kwh = scores[:, pair], energy[:, pair]  # (n, 2): first, then
    known = np.ones_like(kwh, dtype=bool) if measured is None else measured[:, pair]
    extra = np.zeros(0, dtype=bool) if unverified_train_only is None else unverified_train_only
    n = len(prompts) - len(extra)  # the tested problems

    def predictions(
        unverified: np.ndarray,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[], np.ndarray]]]:
        if states is not None:
            yield from state_predictions(states, solved[:, 1], unverified, folds, seed, len(extra))
            return
        routers = fold_routers("quality", system, prompts, scores, energy, models, folds, seed,
                               encoder, train_only=len(extra), measured=measured)  # fmt: skip
        for fold in routers:
            k = fold.router.model_names.index(then)

            def test(fold: Fold = fold, k: int = k) -> np.ndarray:
                return np.asarray(fold.router.predict_prompts([prompts[int(x)] for x in fold.test])[:, k])  # fmt: skip

            yield fold.train, fold.test, fold.oof_train[:, pair[1]], test

    def gate(
        tested: np.ndarray, overhead_kwh: Sequence[float]
    ) -> tuple[np.ndarray, GateCost, dict[str, Any]]:
        unverified = np.concatenate([tested, extra])
        score, spent, per_fold = np.zeros(len(prompts)), np.zeros(3), []
        blocks: list[Measurement] = []
        for tr, te, p_train, p_test in predictions(unverified):
            # what an answer not measured is read as: refused where a model has none
            means = measured_means(kwh[tr], known[tr], [first, then])
            # the expected kWh: fitted on training problems, not routing, hence not metered
            fit = tr[known[tr, 1]]
            cost = EnergyModel.fit(first_tokens[fit], kwh[fit, 1])(first_tokens)
            with system.meter.measure("router_inference") as slot:
                score[te] = p_test() / cost[te]
            spent += [slot.result.duration_s, slot.result.energy_kwh, slot.result.co2_kg]
            blocks.append(slot.result)
            per_fold.append((tr, te, p_train / cost[tr], np.where(known[tr], kwh[tr], means)))

        def allowed_within(b: float) -> tuple[np.ndarray, list[float]]:
            allowed, thresholds = np.zeros(len(prompts), dtype=bool), []
            for f, (tr, te, score_train, kwh_train) in enumerate(per_fold):
                t = gate_threshold(
                    score_train, unverified[tr], solved[tr], kwh_train, b, overhead_kwh[f]
                )
                allowed[te] = score[te] >= t
                thresholds.append(t)
            return allowed, thresholds

        curve: list[tuple[float, float | None, float]] = []
        for b in CURVE_BUDGETS:
            esc = (unverified & allowed_within(b)[0])[:n]
            spent_kwh = kwh[:n, 0].sum() + kwh[:n][esc, 1].sum()
            pass1 = (solved[:n][~esc, 0].sum() + solved[:n][esc, 1].sum()) / n
            spent_known = bool(known[:n, 0].all() and known[:n][esc, 1].all())
            curve.append((b, float(spent_kwh) if spent_known else None, float(pass1)))
        allowed, thresholds = allowed_within(budget)
        allowed = allowed[:n]
        about = {"gate": {"budget": budget, "withheld": int((tested & ~allowed).sum()),
                          "budgeted_overhead_kwh_per_problem": list(overhead_kwh),
                          "predictor": PREDICTORS[states is not None],
                          "thresholds": [None if math.isinf(t) else t for t in thresholds],
                          "curve": curve}}  # fmt: skip
        share = weighted_share(blocks)  # the gate's blocks together, as one reading
        return allowed, (float(spent[0]), float(spent[1]), float(spent[2]), share), about

    return Gate(fold_ids(n, folds, seed), folds, gate)
