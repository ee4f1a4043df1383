"""Cross-validation of the learned routers over the problems of a HumanEval run:
the folds (:func:`fold_ids`), each fold's router trained on the other folds with its
training problems' out-of-fold predictions (:func:`fold_routers`, also the gated
cascade's when it reads no prompt states), and the problems routed by them
(:func:`cross_validated`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from routerllm.carbon.meter import Measurement, weighted_share
from routerllm.gate_models import measured_means, out_of_fold
from routerllm.system import RouterLLM


def fold_ids(n: int, folds: int, seed: int, train_only: int = 0) -> np.ndarray:
    """The cross-validation fold of each of ``n`` problems (the same for every router),
    then -1 for ``train_only`` problems appended after them (another problem set's),
    which train every fold's routers and are never tested."""
    tested = np.random.default_rng(seed).permutation(n) % folds
    return np.concatenate([tested, np.full(train_only, -1)]).astype(int)


@dataclass
class Fold:
    """One cross-validation fold: a router trained on the other folds, and what a knob
    or threshold may be calibrated on without touching the test fold."""

    train: np.ndarray  # indices of the training problems
    test: np.ndarray  # indices of the test problems
    router: Any  # an OutcomeRouter fitted on ``train``
    X: np.ndarray  # every problem's embedding
    #: (len(train), m) predicted success of each training problem by a router of the
    #: same kind trained without it (inner cross-validation), columns in ``models`` order:
    #: what the router predicts for problems it did not see, unlike its own predictions
    #: on its training problems, which are too sure of themselves.
    oof_train: np.ndarray
    #: The measured build of the encoder the folds' routers share (loading: a one-time
    #: cost, not any request's routing), on the fold that built it; None on the others.
    encoder_load: Measurement | None = None


def fold_routers(
    name: str,
    system: RouterLLM,
    prompts: Sequence[str],
    scores: np.ndarray,
    costs: np.ndarray,
    models: Sequence[str],
    folds: int,
    seed: int,
    encoder: str | None = None,
    options: dict[str, Any] | None = None,
    train_only: int = 0,
    measured: np.ndarray | None = None,
) -> Iterator[Fold]:
    """K-fold over problems: for each fold, the router ``name`` (with ``options``) trained
    on the other folds, with their mean per-model costs as its costs (over the answers
    ``measured``: :func:`measured_means`), and its
    training problems' out-of-fold predictions (the same k-fold within them; with
    fewer than 2 training problems, its own predictions on them). The last
    ``train_only`` problems are in every fold's training problems (:func:`fold_ids`).
    The routers share one encoder, built (and measured) once, before anything is routed."""
    from routerllm.routers.base import create_router
    from routerllm.routers.outcome import OutcomeRouter

    candidates = [c for c in system.config.models if c.name in models]
    X: np.ndarray | None = None
    first: OutcomeRouter | None = None
    load: Measurement | None = None

    def trained(idx: np.ndarray, cost_idx: np.ndarray) -> OutcomeRouter:
        nonlocal X, first, load
        mean_cost = measured_means(costs[cost_idx], None if measured is None else measured[cost_idx], models)  # fmt: skip
        router = create_router(name, candidates, seed, costs=[float(mean_cost[list(models).index(c.name)]) for c in candidates],
                               **(options or {}), **({"encoder": encoder} if encoder else {}))  # fmt: skip
        assert isinstance(router, OutcomeRouter)
        if first is None:
            # its build (a table read, a model loaded) is loading, not a fold's routing
            with system.meter.measure("model_loading") as slot:
                router.embed(prompts[:1])
            first, load = router, slot.result
            X = router.embed(prompts)  # once: every router uses the same encoder
        else:
            router.share_encoder(first)
        assert X is not None
        router.fit(None, scores[idx], models, X[idx], questions=[prompts[i] for i in idx])
        return router

    def predicted(router: OutcomeRouter, idx: np.ndarray) -> np.ndarray:
        assert X is not None
        return router.predict(X[idx])[:, [router.model_names.index(m) for m in models]]

    fold = fold_ids(len(prompts) - train_only, folds, seed, train_only)
    for f in range(folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        router = trained(tr, tr)

        def inner(fit_on: np.ndarray, idx: np.ndarray, tr: np.ndarray = tr) -> np.ndarray:
            # its costs are the outer fold's training problems' means (a subset may lack a
            # measured answer of a model): the quality router's candidate choice weighs
            # them; no test fold's problem is among them
            return predicted(trained(fit_on, tr), idx)

        oof = out_of_fold(tr, folds, seed, inner)
        assert X is not None
        yield Fold(tr, te, router, X, oof, load if f == 0 else None)


@dataclass
class CrossValidated:
    """What :func:`cross_validated` routed."""

    choices: list[str]
    router_cost: tuple[float, float, float]  # measured inference: s, kWh, kg CO2
    predicted: np.ndarray  # (n, m) out-of-fold predicted success, in ``models`` order
    known: np.ndarray  # (n, m) the per-model costs each problem's router knew
    #: (n, m) each problem's chance of going to each model: the fixed mix where its
    #: fold's calibration fell back to one (MISSION M3.9), the two settings' choices
    #: weighted by their shares where it mixed two, else 1 for the model chosen
    policy: np.ndarray
    mixed_folds: int  # folds whose router drew from a fixed mix
    two_setting_folds: int  # folds whose router drew between two knob settings
    rules: list[str]  # each fold's decision rule, as its calibration chose it
    router_measured: bool = True  # whether a fold's router inference was measured
    #: the measured one-time build of the routers' shared encoder: s, kWh, kg CO2
    encoder_load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    encoder_load_measured: bool = False
    #: the share of the machine's CPU other processes used as the folds' routers routed
    #: (their blocks together), and as the encoder was built; None: not known
    router_share: float | None = None
    encoder_load_share: float | None = None

    @property
    def rule(self) -> str:
        """The decision rule most folds' calibration chose (ties: the first fold's)."""
        return max(dict.fromkeys(self.rules), key=self.rules.count)


def cross_validated(
    name: str,
    system: RouterLLM,
    prompts: Sequence[str],
    scores: np.ndarray,
    costs: np.ndarray,
    models: Sequence[str],
    folds: int,
    seed: int,
    encoder: str | None = None,
    calibration: str = "max_cost=0.7",
    train_only: int = 0,
    two_settings: bool = False,
    measured: np.ndarray | None = None,
) -> CrossValidated:
    """Route each fold's problems with a router trained on the other folds
    (:func:`fold_routers`). The decision rule and its knob are calibrated to
    ``calibration`` (see ``OutcomeRouter.calibrate``; by default the best pass rate
    within 70 % of the costliest model's energy) on the training folds only, by their
    out-of-fold predictions (``Fold.oof_train``); where the router does worse there than a fixed
    random mix of the models at the same cost, it draws from that mix instead.
    ``known`` holds the costs each problem's router knew (its training folds' means over
    the answers ``measured``, (n, m): False where CodeCarbon failed; None: every one was),
    for the quality-energy curve. The last ``train_only`` problems only train (every
    fold's router); what is returned is about the others."""
    n = len(prompts) - train_only
    choices = [""] * len(prompts)
    predicted, known = np.zeros_like(scores), np.zeros_like(costs)
    policy, mixed, two, rules = np.zeros_like(scores), 0, 0, []
    spent, router_measured = np.zeros(3), False
    routing: list[Measurement] = []
    load: Measurement | None = None
    options = {"folds": 3} if name == "quality" else {}  # its own selection: 3-fold
    for fold in fold_routers(name, system, prompts, scores, costs, models, folds, seed, encoder, options, train_only, measured):  # fmt: skip
        tr, te, router, X = fold.train, fold.test, fold.router, fold.X
        if fold.encoder_load is not None:
            load = fold.encoder_load
        router.calibrate(
            X[tr], scores[tr], calibration, models, predicted=fold.oof_train,
            two_settings=two_settings,
        )  # fmt: skip
        rules.append(router.mode)
        with system.meter.measure("router_inference") as slot:
            decisions = router.route_batch([prompts[int(i)] for i in te])
        spent += [slot.result.duration_s, slot.result.energy_kwh, slot.result.co2_kg]
        router_measured = router_measured or slot.result.measured
        routing.append(slot.result)
        order = [router.model_names.index(m) for m in models]
        predicted[te] = router.predict(X[te])[:, order]
        known[te] = router.costs[order]
        for i, d in zip(te, decisions, strict=True):
            choices[i] = d.model
        policy[te] = router.policy(X[te])[:, order]
        mixed += router.mix is not None
        two += router.mix is None and router.second_knob is not None
    cost = (float(spent[0]), float(spent[1]), float(spent[2]))
    assert load is not None  # the first fold built the encoder
    return CrossValidated(
        choices[:n], cost, predicted[:n], known[:n], policy[:n], mixed, two, rules, router_measured,
        (load.duration_s, load.energy_kwh, load.co2_kg), load.measured, weighted_share(routing),
        load.others_cpu_share,
    )  # fmt: skip
