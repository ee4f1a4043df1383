"""Calibration's figures against prompts it never saw: how far the held-out figures at
the chosen knob (``quality``, ``lead_over_mix``: measured where the knob was chosen)
overstate what the router does on new prompts, against the cross-fitted ones
(``cross_fitted_quality``, ``cross_fitted_lead_over_mix``: each held-out prompt routed
by a knob chosen without it), and which fall-back rule does best on new prompts.

Generated outcome data, where the truth is known: 4 models (costs 1, 3, 10, 30); of
the prompts, a share ``--signals`` follow a keyword (those naming "kernel" solved by
the two cheapest models, the others by the dearest, the third by chance), the rest
are solved by each model at its own rate (0.35, 0.5, 0.65, 0.75) at random, which
no prompt tells. ``--train`` prompts (20 % held out to calibrate on) and 2,000 new
ones per seed; the quality router with the hashing encoder. Real data (``--data-dir``,
where present): each ../shared/data set's quality router (``minilm-static``) trained on
80 % of train and calibrated on the other 20 % per split seed, the test set untouched;
``--signals`` with no value runs these alone (an error where they are missing).

Printed per data set and target, means over the seeds: the knob's quality on the
held-out prompts, cross-fitted and on the new prompts (with the bias and RMSE of each
estimate), its lead over the best fixed mix of single models at its cost the same
three ways; then for each fall-back rule (the held-out lead over 2 standard errors,
calibration's until 2026-12-07; the cross-fitted lead over each of ``--signal-se``
standard errors and calibration's default, ``SIGNAL_SE``) how often it falls back; of the
router as it then routes (the knob, or the mix it falls back to: its expected figures)
the new prompts' cost, how often it meets the target there, its quality and its gain
over the mix at the knob's cost (0 where it falls back), each of these two with its
standard error over the seeds, the worst seed's gain, and the gain minus the default
rule's, paired by seed (with its standard error); and calibration's mean time.
Generated seeds are independent draws; split seeds of a real set share its prompts, so
their standard errors are too small.

``--shift`` (for new prompts unlike the held-out ones, as LLMRouter's test prompts are)
adds, per run and on average: the knob's mean predicted and actual quality, and the best
held-out model's, on the held-out and the new prompts (does the router's own prediction
see the new prompts' shift?); and for a quality target, the new prompts' quality, cost
and target met of the knob chosen as calibration does, of one chosen on the new prompts'
predictions (unlabelled: the cheapest setting whose predicted quality there reaches the
target share of the best model's predicted one, raw or with each prediction's bias at
that setting measured on the held-out prompts taken off), and of one chosen on the
held-out prompts for a quality raised in steps until its cross-fitted quality reaches
the target by a margin of 0, 1 or 2 standard errors (``MARGINS``). ``--json`` then
keeps each run's figures (``each_run``), so runs of several processes can be pooled.

    .venv/bin/python benchmarks/calibration_estimate.py [--signals 0 0.25 0.5 1]
        [--train 300] [--seeds 0 1 2 3 4 5 6 7 8 9] [--data-dir ../shared/data]
        [--datasets llmrouter routerbench_mbpp] [--real-seeds 0 1 2]
        [--targets max_cost=0.5 quality=0.95] [--signal-se 0 1 1.5 2] [--shift] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import machine, machine_line
from outcome_data import (
    add_data_dir_argument,
    add_datasets_argument,
    calibration_split,
    data_dir,
    load_pair,
)

from routerllm.cli_args import (
    DefaultsHelpFormatter,
    calibration_target_arg,
    number_at_least,
    seed_arg,
)
from routerllm.data.outcomes import OutcomeDataset
from routerllm.encoders import CachedEncoder, create_encoder
from routerllm.eval.curves import mix_at
from routerllm.eval.outcome_eval import outcome_candidates, split_dataset
from routerllm.eval.routing_metrics import evaluate_choices
from routerllm.routers.base import create_router
from routerllm.routers.calibration import (
    SIGNAL_SE,
    ahead_of_mix,
    choose_setting,
    keeps_routing,
    knob_rows,
    parse_target,
    routed_outcomes,
)
from routerllm.routers.cross_fit import FOLDS, fold_of, row_groups
from routerllm.routers.decision import MODES, cheapness_rank, choose
from routerllm.routers.outcome import DEFAULT_ENCODER, OutcomeRouter
from routerllm.routers.outcome_checks import outcome_columns

MODELS = ["tiny", "small", "mid", "big"]
COSTS = np.array([1.0, 3.0, 10.0, 30.0])
ACCURACY = np.array([0.35, 0.5, 0.65, 0.75])
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "omega",
    "river",
    "stone",
    "cloud",
    "paper",
    "glass",
    "table",
    "orange",
    "violet",
]
NEW_PROMPTS = 2000
#: the held-out lead's rule, calibration's until 2026-12-07, weighed beside the others
HELD_OUT_RULE = ("held-out > 2 SE", ("held_out", 2.0))
#: standard errors no lead exceeds: calibrated so, a router gives the mix it falls back to
ALWAYS = 1e9


def generated(signal: float, n: int, rng: np.random.Generator) -> OutcomeDataset:
    """``n`` prompts, a share ``signal`` of them with outcomes a keyword decides."""
    kernel, follows = rng.random(n) < 0.5, rng.random(n) < signal
    scores = (rng.random((n, 4)) < ACCURACY).astype(float)
    scores[follows] = 0.0
    scores[follows & kernel, :2] = 1.0
    scores[follows & ~kernel, 3] = 1.0
    scores[follows, 2] = rng.random(int(follows.sum())) < 0.5
    prompts = [
        f"q{i} " + " ".join(rng.choice(WORDS, 8)) + (" kernel" if k else "")
        for i, k in enumerate(kernel)
    ]
    costs = np.broadcast_to(COSTS, scores.shape).copy()
    return OutcomeDataset(prompts, MODELS, scores, costs=costs)


def reached(
    target: str, quality: float, cost: float, test: OutcomeDataset, costs: np.ndarray
) -> bool | None:
    """Whether a router scoring ``quality`` at mean ``cost`` on the new prompts ``test``
    (``costs``: their per-call costs) meets ``target`` there: a budget against the dearest
    model's mean cost, a quality against the best model's; None for a share target."""
    kind, goal = parse_target(target, test.models)
    if kind == "max_cost":
        return bool(cost <= goal * costs.mean(axis=0).max() + 1e-12)
    if kind == "quality":
        return bool(quality >= goal * test.scores.mean(axis=0).max() - 1e-12)
    return None


def measure(
    router: OutcomeRouter,
    held: tuple[np.ndarray, OutcomeDataset],
    test: OutcomeDataset,
    costs: np.ndarray,
    target: str,
    shift: bool = False,
) -> dict[str, Any]:
    """Calibrate ``router`` on ``held`` (embeddings, data); the knob's, the fixed mix's
    at its cost and the fallback's figures on the new prompts ``test`` (``costs``: their
    per-call costs). Calibrated to fall back whatever its lead, so that it gives the mix
    any rule falls back to; the knob and the leads do not depend on the rule."""
    x_held, held_out = held
    if test.models != held_out.models:
        raise SystemExit(f"the test set's models {test.models} are not the training set's")
    scores = test.scores
    start = time.process_time()
    cal = router.calibrate(x_held, held_out.scores, target, held_out.models, signal_se=ALWAYS)
    seconds = time.process_time() - start
    fallback = cal["fallback_mix"]
    router.set_mix(None)  # the knob's own choices on the new prompts
    names = router.model_names
    chosen = np.array([held_out.models.index(d.model) for d in router.route_batch(test.prompts)])
    knob = evaluate_choices(chosen, scores, costs)
    held_costs = np.broadcast_to(
        router.costs[[names.index(m) for m in held_out.models]], held_out.scores.shape
    )
    singles = [evaluate_choices(np.full(len(held_out), j), held_out.scores, held_costs)
               for j in range(len(held_out.models))]  # fmt: skip
    weights = mix_at(singles, cal["cost"])  # the mix calibration compares the knob with
    drawn = (
        math.nan if weights is None else sum(w * scores[:, j].mean() for j, w in weights.items())
    )
    if fallback is None:  # no mix to fall back to: every rule routes
        mix_quality = mix_cost = math.nan
    else:
        at = [test.models.index(m) for m in fallback]
        mix_quality = sum(
            w * scores[:, j].mean() for j, w in zip(at, fallback.values(), strict=True)
        )
        mix_cost = sum(w * costs[:, j].mean() for j, w in zip(at, fallback.values(), strict=True))
    top = float(costs.mean(axis=0).max())
    figures = shift_figures(router, held, test, costs, target) if shift else None
    return {
        "shift": figures,
        "held_out": cal["quality"], "cross_fitted": cal["cross_fitted_quality"],
        "test": knob.quality, "test_cost": knob.cost / top,
        "test_reached": reached(target, knob.quality, knob.cost, test, costs),
        "lead": {"held_out": cal["lead_over_mix"], "cross_fitted": cal["cross_fitted_lead_over_mix"],
                 "test": knob.quality - drawn},
        "se": {"held_out": cal["lead_standard_error"], "cross_fitted": cal["cross_fitted_lead_standard_error"]},
        "mix_test": mix_quality, "mix_test_cost": mix_cost / top,
        "mix_reached": None if fallback is None else reached(target, mix_quality, mix_cost, test, costs),
        "seconds": seconds,
    }  # fmt: skip


#: --shift: the margins (standard errors of the cross-fitted quality's shortfall) weighed
#: and the step of the quality the knob is chosen for while a margin is not met.
MARGINS = (0.0, 1.0, 2.0)
MARGIN_STEP = 0.005


def knob_figures(
    predicted: np.ndarray, scores: np.ndarray, costs: np.ndarray, pick: Any
) -> tuple[float, float]:
    """The mean outcome ``scores`` (or predictions, passed as scores) and mean ``costs``
    of the choices at setting ``pick`` (calibration's ``Row``) by ``predicted``."""
    rank = cheapness_rank(costs)
    at = choose(predicted, costs, pick[4], pick[0], rank=rank)
    rows = np.arange(len(scores))
    return float(scores[rows, at].mean()), float(costs[rows, at].mean())


def unlabelled_pick(
    held: tuple[np.ndarray, np.ndarray],
    new: np.ndarray,
    costs: np.ndarray,
    goal: float,
    modes: tuple[str, ...],
    corrected: bool,
) -> Any:
    """The cheapest setting whose predicted quality on the unlabelled prompts (their
    predictions ``new``) reaches ``goal`` of the best single model's predicted there;
    ``corrected``: each prediction's bias at that setting (and each model's) measured on
    the held-out prompts (``held``: predictions, outcomes) taken off. The best-estimated
    setting where none reaches it."""
    ph, yh = held
    cu, ch = np.broadcast_to(costs, new.shape), np.broadcast_to(costs, ph.shape)
    bias = ph.mean(axis=0) - yh.mean(axis=0) if corrected else np.zeros(len(costs))
    need = goal * float((new.mean(axis=0) - bias).max())
    rows = sorted(knob_rows(new, new, cu, cheapness_rank(cu), modes), key=lambda r: r[1])
    best: tuple[float, Any] | None = None
    for row in rows:
        est = row[2]
        if corrected:
            at = choose(ph, ch, row[4], row[0], rank=cheapness_rank(ch))
            i = np.arange(len(ph))
            est -= float((ph[i, at] - yh[i, at]).mean())
        if est >= need - 1e-12:
            return row
        best = max(best or (est, row), (est, row), key=lambda e: e[0])
    assert best is not None
    return best[1]


def margin_pick(
    held: tuple[np.ndarray, np.ndarray],
    costs: np.ndarray,
    goal: float,
    modes: tuple[str, ...],
    margin: float,
    fold: np.ndarray,
) -> tuple[Any, float]:
    """The setting chosen on the held-out prompts (``held``: predictions, outcomes) for
    the least quality, from ``goal`` up by ``MARGIN_STEP``, whose cross-fitted quality
    reaches ``goal`` of the best model's by ``margin`` standard errors (each prompt's
    outcome minus ``goal`` times the best model's, paired); and that quality asked."""
    ph, yh = held
    ch = np.broadcast_to(costs, ph.shape)
    rank = cheapness_rank(ch)
    top = float(costs.max())
    folds = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in np.unique(fold)]
    fold_rows = [knob_rows(ph[on], yh[on], ch[on], rank[on], modes) for on, _ in folds]
    rows = knob_rows(ph, yh, ch, rank, modes)
    needed = goal * yh[:, int(yh.mean(axis=0).argmax())]
    asked = goal
    while True:
        routed = np.empty(len(yh))
        for (on, off), swept in zip(folds, fold_rows, strict=True):
            _, pick, _ = choose_setting(swept, yh[on], "quality", asked, None, top, modes, False)
            routed[off] = routed_outcomes(ph[off], yh[off], ch[off], rank[off], pick, None)[0]
        short = routed - needed
        if (
            short.mean() - margin * short.std(ddof=1) / math.sqrt(len(short)) >= -1e-12
            or asked >= 1
        ):
            return choose_setting(rows, yh, "quality", asked, None, top, modes, False)[1], asked
        asked = min(1.0, asked + MARGIN_STEP)


def shift_figures(
    router: OutcomeRouter,
    held: tuple[np.ndarray, OutcomeDataset],
    test: OutcomeDataset,
    costs: np.ndarray,
    target: str,
) -> dict[str, Any]:
    """For ``--shift``: the calibrated knob's predicted and actual quality (and the best
    held-out model's) on the held-out and the new prompts; for a quality target, the new
    prompts' quality, cost and target met of the knob chosen as calibration does, on the
    new prompts' predictions (``unlabelled``, with and without the held-out bias taken
    off) and with each of ``MARGINS``. Nothing here reads the new prompts' outcomes
    but to score a setting already chosen."""
    x_held, held_out = held
    names = router.model_names
    yh = outcome_columns(held_out.scores, held_out.models, names, "outcomes")
    yt = outcome_columns(test.scores, test.models, names, "outcomes")
    ct = outcome_columns(costs, test.models, names, "costs")
    ph, pt = router.predict(x_held), router.predict_prompts(test.prompts)
    cost_h, cost_t = (
        np.broadcast_to(router.costs, ph.shape),
        np.broadcast_to(router.costs, pt.shape),
    )
    best = int(yh.mean(axis=0).argmax())
    knob = (router.knob, 0.0, 0.0, None, router.mode)
    out: dict[str, Any] = {}
    for where, p, y, c in (("held_out", ph, yh, cost_h), ("test", pt, yt, cost_t)):
        out[where] = {"predicted": knob_figures(p, p, c, knob)[0],
                      "actual": knob_figures(p, y, c, knob)[0],
                      "best_predicted": float(p[:, best].mean()),
                      "best_actual": float(y[:, best].mean())}  # fmt: skip
    kind, goal = parse_target(target, names)
    if kind != "quality":
        return out
    top, need = float(ct.mean(axis=0).max()), goal * float(yt.mean(axis=0).max())
    modes = tuple(MODES)
    fold = fold_of(row_groups(x_held, len(yh)), FOLDS, router.seed or 0)
    picks: dict[str, tuple[Any, float]] = {"calibration": (knob, goal)}
    for corrected, name in ((False, "unlabelled raw"), (True, "unlabelled")):
        picks[name] = (unlabelled_pick((ph, yh), pt, router.costs, goal, modes, corrected), goal)
    for margin in MARGINS:
        picks[f"margin {margin:g} SE"] = margin_pick(
            (ph, yh), router.costs, goal, modes, margin, fold
        )
    options = {}
    for name, (pick, asked) in picks.items():
        at = choose(pt, cost_t, pick[4], pick[0], rank=cheapness_rank(cost_t))
        i = np.arange(len(yt))
        quality, cost = float(yt[i, at].mean()), float(ct[i, at].mean())
        options[name] = {"quality": quality, "cost": cost / top, "met": bool(quality >= need - 1e-12),
                         "asked": asked, "knob": pick[0], "mode": pick[4]}  # fmt: skip
    out["options"], out["need"] = options, need
    return out


def shift_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """``--shift``'s figures over the runs: the means of the knob's and the best
    held-out model's predicted and actual quality on the held-out and the new prompts;
    for a quality target each way of choosing the knob's share of runs meeting the target
    on the new prompts, its mean cost there, mean quality and mean quality over the
    quality needed."""
    shifts = [r["shift"] for r in runs]
    out: dict[str, Any] = {
        where: {k: float(np.mean([s[where][k] for s in shifts])) for k in shifts[0][where]}
        for where in ("held_out", "test")
    }
    if "options" in shifts[0]:
        out["options"] = {
            name: {
                "met": float(np.mean([s["options"][name]["met"] for s in shifts])),
                "cost": float(np.mean([s["options"][name]["cost"] for s in shifts])),
                "quality": float(np.mean([s["options"][name]["quality"] for s in shifts])),
                "over_need": float(
                    np.mean([s["options"][name]["quality"] - s["need"] for s in shifts])
                ),
            }
            for name in shifts[0]["options"]
        }
    return out


def show_shift(runs: list[dict[str, Any]], s: dict[str, Any]) -> None:
    """``--shift``'s lines: each run's, then ``shift_summary``'s."""

    def line(f: dict[str, Any]) -> str:
        h, t = f["held_out"], f["test"]
        return (f"knob predicted {h['predicted']:.4f} / actual {h['actual']:.4f} held-out, "
                f"{t['predicted']:.4f} / {t['actual']:.4f} new; best model predicted "
                f"{h['best_predicted']:.4f} / actual {h['best_actual']:.4f} held-out, "
                f"{t['best_predicted']:.4f} / {t['best_actual']:.4f} new")  # fmt: skip

    def options(o: dict[str, Any], need: float | None) -> str:
        if need is None:
            return "; ".join(f"{n} met {v['met']:.0%} cost {v['cost']:.1%} quality "
                             f"{v['quality']:.4f} ({v['over_need']:+.4f})"
                             for n, v in o.items())  # fmt: skip
        return "; ".join(f"{n} {v['quality']:.4f} at {v['cost']:.1%}{' met' if v['met'] else ''}"
                         for n, v in o.items())  # fmt: skip

    for i, r in enumerate(runs):
        f = r["shift"]
        print(f"      run {i}: {line(f)}")
        if "options" in f:
            print(f"        needed {f['need']:.4f}: {options(f['options'], f['need'])}")
    print(f"    shift, means: {line(s)}")
    if "options" in s:
        print(f"    shift, means: {options(s['options'], None)}")


def rule_name(signal_se: float) -> str:
    return "cross-fit > 0" if signal_se == 0 else f"cross-fit > {signal_se:g} SE"


def fall_back_rules(signal_se: list[float]) -> dict[str, tuple[str, float]]:
    """name -> (which lead, standard errors): the held-out rule of before, and the
    cross-fitted lead over each of ``signal_se`` and calibration's default."""
    rules = dict([HELD_OUT_RULE])
    for se in sorted({*signal_se, SIGNAL_SE}):
        rules[rule_name(se)] = ("cross_fitted", se)
    return rules


def mean_se(values: np.ndarray) -> tuple[float, float]:
    """The mean of ``values`` (NaN left out) and its standard error, sample sd / sqrt(n):
    NaN below two values."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), se


def rules(runs: list[dict[str, Any]], signal_se: list[float]) -> dict[str, dict[str, float]]:
    """Each fall-back rule's share of fallbacks; of the router as it then routes (the
    knob, or the mix it falls back to) the new prompts' mean cost (a share of the dearest
    model's) and share of runs meeting the target there (None: a share target); over the
    runs (seeds) the mean and standard error of its new prompts' quality and of its gain
    over the mix at the knob's cost (0 where it falls back), the worst gain, and the gain
    minus calibration's default rule's (paired by run, with its standard error). A run
    without a mix to fall back to routes."""
    gains: dict[str, np.ndarray] = {}
    out: dict[str, dict[str, Any]] = {}
    for name, (which, se) in fall_back_rules(signal_se).items():
        ahead = ahead_of_mix if which == "held_out" else keeps_routing
        routes = [np.isnan(r["mix_test"]) or ahead(r["lead"][which], r["se"][which], se)
                  for r in runs]  # fmt: skip
        pairs = list(zip(runs, routes, strict=True))
        quality = [r["test"] if go else r["mix_test"] for r, go in pairs]
        cost = [r["test_cost"] if go else r["mix_test_cost"] for r, go in pairs]
        met = [r["test_reached"] if go else r["mix_reached"] for r, go in pairs]
        gains[name] = np.array([r["lead"]["test"] if go else 0.0 for r, go in pairs])
        q, q_se = mean_se(np.array(quality))
        gain, gain_se = mean_se(gains[name])
        worst = math.nan if np.isnan(gains[name]).all() else float(np.nanmin(gains[name]))
        out[name] = {"falls_back": 1 - float(np.mean(routes)), "cost": float(np.mean(cost)),
                     "reached": None if None in met else float(np.mean(met)),
                     "quality": q, "quality_se": q_se, "gain": gain, "gain_se": gain_se,
                     "worst_gain": worst}  # fmt: skip
    default = gains[rule_name(SIGNAL_SE)]
    for name, gain in gains.items():
        out[name]["gain_vs_default"], out[name]["gain_vs_default_se"] = mean_se(gain - default)
    return out


def summary(runs: list[dict[str, Any]], signal_se: list[float]) -> dict[str, Any]:
    test = np.array([r["test"] for r in runs])
    out: dict[str, Any] = {"runs": len(runs), "test_quality": float(test.mean())}
    for which in ("held_out", "cross_fitted"):
        error = np.array([r[which] for r in runs]) - test
        lead = np.array([r["lead"][which] - r["lead"]["test"] for r in runs])
        out[which] = {"quality": float(np.mean([r[which] for r in runs])),
                      "bias": float(error.mean()), "rmse": float(np.sqrt((error**2).mean())),
                      "lead": float(np.nanmean([r["lead"][which] for r in runs])),
                      "lead_bias": float(np.nanmean(lead))}  # fmt: skip
    out["test_lead"] = float(np.nanmean([r["lead"]["test"] for r in runs]))
    out["rules"] = rules(runs, signal_se)
    out["calibrate_cpu_s"] = float(np.mean([r["seconds"] for r in runs]))
    return out


def calibrated_runs(
    router: OutcomeRouter,
    held: tuple[np.ndarray, OutcomeDataset],
    test: OutcomeDataset,
    costs: np.ndarray,
    targets: list[str],
    runs: dict[str, list[dict[str, Any]]],
    shift: bool = False,
) -> None:
    """``measure`` the fitted ``router`` at each target, appended to ``runs[target]``."""
    for target in targets:
        runs.setdefault(target, []).append(measure(router, held, test, costs, target, shift))


def generated_runs(
    signal: float, train: int, seeds: list[int], targets: list[str], shift: bool = False
) -> dict[str, list[dict[str, Any]]]:
    encoder = create_encoder("hashing")
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        data, test = generated(signal, train, rng), generated(signal, NEW_PROMPTS, rng)
        fit_on, held_out = split_dataset(data, 0.2, seed)
        router = create_router("quality", outcome_candidates(data, COSTS), seed,
                               encoder="hashing", costs=COSTS.tolist())  # fmt: skip
        assert isinstance(router, OutcomeRouter)
        router.fit_dataset(fit_on, encoder.encode(fit_on.prompts))
        held = (encoder.encode(held_out.prompts), held_out)
        calibrated_runs(router, held, test, test.cost_matrix("call"), targets, runs, shift)
    return runs


def real_runs(
    root: Path,
    name: str,
    seeds: list[int],
    targets: list[str],
    encoder: Any,
    shift: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    train, test = load_pair(root, name)
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        split = calibration_split(train, test, seed)
        router = create_router("quality", split.candidates, seed, encoder=DEFAULT_ENCODER,
                               costs=split.mean_cost.tolist())  # fmt: skip
        assert isinstance(router, OutcomeRouter)
        router.fit_dataset(split.fit_on, encoder.encode(split.fit_on.prompts))
        held = (encoder.encode(split.held_out.prompts), split.held_out)
        calibrated_runs(router, held, test, split.test_costs, targets, runs, shift)
    return runs


def show(title: str, s: dict[str, Any]) -> None:
    h, c = s["held_out"], s["cross_fitted"]
    print(f"{title}: {s['runs']} runs; knob quality held-out {h['quality']:.4f} (bias "
          f"{h['bias']:+.4f}, RMSE {h['rmse']:.4f}), cross-fitted {c['quality']:.4f} (bias "
          f"{c['bias']:+.4f}, RMSE {c['rmse']:.4f}), new prompts {s['test_quality']:.4f}; "
          f"lead over the mix held-out {h['lead']:+.4f}, cross-fitted {c['lead']:+.4f}, new "
          f"prompts {s['test_lead']:+.4f}; calibration {s['calibrate_cpu_s']:.2f} CPU s")  # fmt: skip
    for name, r in s["rules"].items():
        met = "" if r["reached"] is None else f", target met {r['reached']:.0%}"
        print(f"    {name:<18} falls back {r['falls_back']:>4.0%}, cost {r['cost']:.1%}{met}, "
              f"quality {r['quality']:.4f} ± {r['quality_se']:.4f}, gain over the mix "
              f"{r['gain']:+.4f} ± {r['gain_se']:.4f} (worst {r['worst_gain']:+.4f}), "
              f"minus {rule_name(SIGNAL_SE)}'s {r['gain_vs_default']:+.4f} "
              f"± {r['gain_vs_default_se']:.4f}")  # fmt: skip


def report(
    results: dict[str, Any], key: str, runs: list[dict[str, Any]], args: argparse.Namespace
) -> None:
    """``runs``' summary into ``results[key]`` (with ``--shift`` its figures and the runs
    themselves, for pooling runs of several processes), printed unless ``--json``."""
    results[key] = summary(runs, args.signal_se)
    if args.shift:
        results[key]["shift"] = shift_summary(runs)
        results[key]["each_run"] = runs
    if not args.json:
        show(key, results[key])
        if args.shift:
            show_shift(runs, results[key]["shift"])


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--signals", type=float, nargs="*", default=[0.0, 0.25, 0.5, 1.0],
                    help="the generated sets' shares of prompts a keyword tells the right "
                    "model of; none (--signals alone): the real data sets only")  # fmt: skip
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--seeds", type=seed_arg, nargs="+", default=list(range(10)))
    add_data_dir_argument(ap)
    add_datasets_argument(ap)
    ap.add_argument("--real-seeds", type=seed_arg, nargs="+", default=[0, 1, 2])
    ap.add_argument("--targets", nargs="+", type=calibration_target_arg,
                    default=["max_cost=0.5", "quality=0.95"])  # fmt: skip
    ap.add_argument("--signal-se", type=number_at_least(0), nargs="+", default=[0.0, 1.0, 1.5, 2.0],
                    help="the cross-fitted fall-back rules' standard errors (calibration's "
                    f"default, {SIGNAL_SE:g}, always)")  # fmt: skip
    ap.add_argument("--shift", action="store_true",
                    help="also the knob's predicted against actual quality on the held-out "
                    "and the new prompts, and a quality target met by choosing the knob on "
                    "the new prompts' predictions or with a margin (each run's figures, too, "
                    "in --json)")  # fmt: skip
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.signals and data_dir(args) is None:  # nothing to run: found now
        return 2
    # every calibration here falls back (ALWAYS), each with its warning: not news
    logging.getLogger("routerllm.routers.calibration").setLevel(logging.ERROR)
    results: dict[str, Any] = {"machine": machine()}
    if not args.json:
        print(machine_line())
    for signal in args.signals:
        by_target = generated_runs(signal, args.train, args.seeds, args.targets, args.shift)
        for target, runs in by_target.items():
            key = f"generated signal {signal:g}, {args.train} prompts, {target}"
            report(results, key, runs, args)
    root = Path(args.data_dir)
    if root.is_dir():
        encoder = CachedEncoder(create_encoder(DEFAULT_ENCODER))
        for name in args.datasets:
            by_target = real_runs(root, name, args.real_seeds, args.targets, encoder, args.shift)
            for target, runs in by_target.items():
                report(results, f"{name}, {target}", runs, args)
    elif not args.json:
        print(f"no outcome data at {root}: generated data only (give --data-dir)")
    if args.json:
        print(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
