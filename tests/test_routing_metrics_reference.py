"""The routing metrics against an independent reference implementation, written here
straight from the papers' definitions (simple and slow), on many seeded random cases,
and metamorphic properties that hold whatever the numbers.

Definitions the reference follows:

* RouterBench (Hu et al. 2024, sec. 3): a router's quality at cost c is the best that a
  random mix of its operating points reaches at mean cost at most c ("non-decreasing
  convex hull"); AIQ = (1 / (c_max - c_min)) * integral of that over [c_min, c_max].
* RouteLLM (Ong et al. 2024, sec. 3.3): PGR = (r(router) - r(weak)) / (r(strong) -
  r(weak)); APGR = the integral of PGR over the share of calls to the strong model in
  [0, 1]; CPT(x%) = the smallest share of calls to the strong model with PGR >= x.
  RouterLLM takes the share of the cost gap s = (c - C_w) / (C_s - C_w) (README,
  "Routing metrics"), and joins every router with the weak model's point.

The reference's quality at c is a maximum over every pair of points (no hull
algorithm); its integrals are Simpson's rule between the points' costs (exact for the
piecewise-linear curve, and close if it were not); CPT and cost-to-accuracy are found
by bisection, not by solving a segment.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from routerllm.eval.curves import (
    OperatingPoint,
    acc_at_half_best_cost,
    aiq,
    apgr,
    cost_to_accuracy,
    cost_to_accuracy_one_setting,
    cpt,
    max_accuracy,
    pgr,
)
from routerllm.eval.routing_metrics import routing_report, sweep

from .conftest import cli_in_process

P = OperatingPoint


# --- the reference ---------------------------------------------------------------------


def ref_quality(points: Sequence[P], c: float) -> float | None:
    """The best quality of a random mix of two of ``points`` at mean cost <= c (None if
    none is that cheap). Two suffice: a linear objective over the convex hull cut by
    the half-plane cost <= c peaks on a hull edge or at a point (Caratheodory in 2-D)."""
    best: float | None = None
    for p, q in itertools.product(points, repeat=2):
        if p.cost > q.cost or c < p.cost:
            continue  # each pair once, cheaper first; p alone is already too dear
        if c >= q.cost:
            value = max(p.quality, q.quality)
        else:  # mix with the largest affordable share t of q; quality is linear in t
            t = (c - p.cost) / (q.cost - p.cost)
            value = max(p.quality, p.quality + t * (q.quality - p.quality))
        best = value if best is None else max(best, value)
    return best


def ref_integral(
    f: Callable[[float], float | None], knots: Sequence[float], a: float, b: float
) -> float:
    """Integral of f over [a, b] by Simpson's rule between sorted knots (f None -> 0)."""
    xs = sorted({a, b, *(k for k in knots if a < k < b)})
    total = 0.0
    for x0, x1 in zip(xs, xs[1:], strict=False):
        mid = f((x0 + x1) / 2)
        if mid is None:  # undefined on the open piece: it lies below the first point
            continue
        y0, y1 = f(x0), f(x1)  # defined: the first point's cost is a knot
        assert y0 is not None and y1 is not None
        total += (x1 - x0) / 6 * (y0 + 4 * mid + y1)
    return total


def ref_aiq(points: Sequence[P], lo: float, hi: float, anchor: P | None = None) -> float:
    pts = [*points, *([anchor] if anchor else [])]
    if hi == lo:
        return ref_quality(pts, lo) or 0.0
    return ref_integral(lambda c: ref_quality(pts, c), [p.cost for p in pts], lo, hi) / (hi - lo)


def ref_pgr(points: Sequence[P], weak: P, strong: P, s: float) -> float | None:
    if not has_gap(weak, strong):
        return None
    q = ref_quality([*points, weak], weak.cost + s * (strong.cost - weak.cost))
    return None if q is None else (q - weak.quality) / (strong.quality - weak.quality)


def has_gap(weak: P, strong: P) -> bool:
    return strong.quality > weak.quality and strong.cost > weak.cost


def ref_apgr(points: Sequence[P], weak: P, strong: P) -> float | None:
    if not has_gap(weak, strong):
        return None
    knots = [(p.cost - weak.cost) / (strong.cost - weak.cost) for p in points]
    return ref_integral(lambda s: ref_pgr(points, weak, strong, s), knots, 0.0, 1.0)


def bisect_first(ok: Callable[[float], bool], lo: float, hi: float) -> float | None:
    """The smallest x in [lo, hi] with ok(x), ok non-decreasing; None if not ok(hi)."""
    if not ok(hi):
        return None
    if ok(lo):
        return lo
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


SLACK = 1e-9  # against float rounding at a target met exactly (ties in the cases below)


def ref_cpt(points: Sequence[P], weak: P, strong: P, x: float) -> float | None:
    if not has_gap(weak, strong):
        return None

    def reached(s: float) -> bool:
        value = ref_pgr(points, weak, strong, s)
        return value is not None and value >= x - SLACK

    s = bisect_first(reached, 0.0, 1.0)
    return None if s is None else 100 * s


def ref_cost_to(
    points: Sequence[P], target: float, reference_cost: float, anchor: P
) -> float | None:
    pts = [*points, anchor]
    top = max(p.cost for p in pts)

    def reached(c: float) -> bool:
        q = ref_quality(pts, c)
        return q is not None and q >= target - SLACK

    c = bisect_first(reached, min(p.cost for p in pts), top)
    return None if c is None or reference_cost <= 0 else c / reference_cost


# --- random cases ------------------------------------------------------------------------


def random_points(rng: random.Random, kind: str) -> list[P]:
    n = 1 if kind == "single" else rng.randint(1, 7)
    if kind == "grid":  # ties in cost and in quality
        return [P(float(rng.randint(0, 4)), rng.randint(0, 8) / 8) for _ in range(n)]
    if kind == "one_cost":
        return [P(2.0, rng.random()) for _ in range(n)]
    if kind == "decades":  # costs over twelve orders of magnitude
        return [P(10 ** rng.uniform(-6, 6), rng.random()) for _ in range(n)]
    return [P(rng.uniform(0, 10), rng.random()) for _ in range(n)]


KINDS = ("uniform", "grid", "single", "one_cost", "decades")


def cases(count: int, seed: int) -> list[tuple[str, list[P], P, P]]:
    """(kind, router points, weak, strong): weak and strong drawn over the points' cost
    range, so that a curve crosses the strong model, runs past it, or starts below the
    weak one."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        points = random_points(rng, kind)
        if kind == "grid":
            weak = P(float(rng.randint(0, 2)), rng.randint(0, 4) / 8)
            strong = P(float(rng.randint(2, 4)), rng.randint(3, 8) / 8)
        elif kind == "decades":
            weak = P(10 ** rng.uniform(-6, 0), rng.random() / 2)
            strong = P(10 ** rng.uniform(0, 6), 0.5 + rng.random() / 2)
        else:  # the gap may be empty (no PGR) where strong is no better than weak
            weak = P(rng.uniform(0, 5), rng.uniform(0, 0.6))
            strong = P(rng.uniform(5, 10), rng.uniform(0.4, 1))
        out.append((kind, points, weak, strong))
    return out


def same(a: float | None, b: float | None, tol: float = 1e-7) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


CASES = cases(600, seed=20261207)


@pytest.mark.parametrize("kind", KINDS)
def test_aiq_agrees_with_the_reference(kind: str) -> None:
    for _, points, weak, strong in (c for c in CASES if c[0] == kind):
        lo, hi = weak.cost, max(strong.cost, weak.cost)
        assert same(aiq(points, lo, hi, anchor=weak), ref_aiq(points, lo, hi, weak)), points
        # without an anchor, over a range that may start below the curve (Q = 0 there)
        assert same(aiq(points, 0.0, hi), ref_aiq(points, 0.0, hi)), points
        assert same(aiq(points, lo, lo, anchor=weak), ref_aiq(points, lo, lo, weak)), points


@pytest.mark.parametrize("kind", KINDS)
def test_apgr_pgr_and_cpt_agree_with_the_reference(kind: str) -> None:
    for _, points, weak, strong in (c for c in CASES if c[0] == kind):
        assert same(apgr(points, weak, strong), ref_apgr(points, weak, strong)), points
        for s in (0.0, 0.1, 0.5, 0.77, 1.0):
            assert same(pgr(points, weak, strong, s), ref_pgr(points, weak, strong, s)), points
        for x in (0.5, 0.8, 1.0):
            assert same(cpt(points, weak, strong, x), ref_cpt(points, weak, strong, x), 1e-6), (
                points,
                weak,
                strong,
                x,
            )


@pytest.mark.parametrize("kind", KINDS)
def test_the_other_curve_metrics_agree_with_the_reference(kind: str) -> None:
    for _, points, weak, strong in (c for c in CASES if c[0] == kind):
        assert max_accuracy(points) == max(p.quality for p in points)
        half = 0.5 * strong.cost
        assert same(
            acc_at_half_best_cost(points, strong, anchor=weak), ref_quality([*points, weak], half)
        )
        for target in (0.95 * strong.quality, strong.quality):
            assert same(
                cost_to_accuracy(points, target, strong.cost, anchor=weak),
                ref_cost_to(points, target, strong.cost, weak),
                1e-6,
            ), (points, weak, target)
            one = [p.cost for p in [*points, weak] if p.quality >= target - SLACK]
            expected = min(one) / strong.cost if one else None
            got = cost_to_accuracy_one_setting(points, target, strong.cost, anchor=weak)
            assert same(got, expected), points


# --- routing_report on outcome data against the reference -------------------------------


def random_outcomes(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Few prompts and 0/1 scores (ties in quality are common); per-model or per-prompt
    costs, some equal (ties in cost), some zero."""
    n, m = int(rng.integers(2, 7)), int(rng.integers(2, 4))
    scores = rng.integers(0, 2, size=(n, m)).astype(float)
    if rng.random() < 0.5:
        costs = rng.choice([0.0, 1.0, 2.0, 5.0], size=m)
    else:
        costs = rng.uniform(0.0, 3.0, size=(n, m)) * rng.choice([1.0, 10.0], size=m)
    return scores, costs


def every_choice(scores: np.ndarray, costs: np.ndarray) -> list[P]:
    """The point of every vector of per-prompt choices (m ** n of them)."""
    n, m = scores.shape
    out = []
    for choice in itertools.product(range(m), repeat=n):
        pairs = list(enumerate(choice))
        out.append(
            P(sum(costs[i, j] for i, j in pairs) / n, sum(scores[i, j] for i, j in pairs) / n)
        )
    return out


def ref_references(scores: np.ndarray, costs: np.ndarray) -> tuple[list[P], int, int, P]:
    """Single-model points, the cheapest and best model (README's tie rules), and the
    oracle by brute force over every choice vector: the cheapest one of highest quality."""
    c = np.broadcast_to(costs, scores.shape)
    singles = [P(float(c[:, j].mean()), float(scores[:, j].mean())) for j in range(scores.shape[1])]
    order = range(len(singles))
    cheapest = min(order, key=lambda j: (singles[j].cost, -singles[j].quality, j))
    top = max(p.quality for p in singles)
    best = min((j for j in order if singles[j].quality >= top - 1e-12),
               key=lambda j: (singles[j].cost, -singles[j].quality, j))  # fmt: skip
    every = every_choice(scores, c)
    q_max = max(p.quality for p in every)
    oracle_cost = min(p.cost for p in every if p.quality >= q_max - 1e-12)
    return singles, cheapest, best, P(oracle_cost, q_max)


def ref_row(points: Sequence[P], singles: list[P], weak: P, strong: P) -> dict[str, float | None]:
    lo, hi = min(p.cost for p in singles), max(p.cost for p in singles)
    return {
        "aiq": ref_aiq(points, lo, hi, weak),
        "apgr": ref_apgr(points, weak, strong),
        "cpt50": ref_cpt(points, weak, strong, 0.5),
        "cpt80": ref_cpt(points, weak, strong, 0.8),
        "max_accuracy": max(p.quality for p in points),
        "acc_at_half_best_cost": ref_quality([*points, weak], 0.5 * strong.cost),
        "cost_to_95": ref_cost_to(points, 0.95 * strong.quality, strong.cost, weak),
        "cost_to_best_accuracy": ref_cost_to(points, strong.quality, strong.cost, weak),
    }


def test_routing_report_agrees_with_the_reference_on_random_outcome_data() -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        scores, costs = random_outcomes(rng)
        singles, cheapest, best, oracle = ref_references(scores, costs)
        weak, strong = singles[cheapest], singles[best]
        predicted = rng.random(scores.shape)
        routers = {
            "lambda": sweep(predicted, scores, costs),
            "threshold": sweep(predicted, scores, costs, mode="threshold"),
        }
        report = routing_report(routers, scores, costs)
        assert (
            report["cheapest"]["cost"] == weak.cost
            and report["best_single"]["quality"] == strong.quality
        )
        assert (
            same(report["oracle"]["cost"], oracle.cost)
            and report["oracle"]["quality"] == oracle.quality
        )
        expected_rows = {
            **routers,
            "oracle": [oracle],
            "mix_hull": singles,
            "best_single": [strong],
        }
        for name, points in expected_rows.items():
            got, want = report["rows"][name], ref_row(points, singles, weak, strong)
            for metric, value in want.items():
                assert same(got[metric], value, 1e-6), (name, metric, scores, costs)


# --- metamorphic properties --------------------------------------------------------------


def report_of(
    scores: np.ndarray, costs: np.ndarray, predicted: np.ndarray
) -> dict[str, dict[str, float | None]]:
    points = sweep(predicted, scores, costs)
    rows = routing_report({"router": points}, scores, costs)["rows"]
    return {
        name: {k: v for k, v in row.items() if k not in ("kind", "n_points")}
        for name, row in rows.items()
    }


@pytest.mark.parametrize("k", [2.0**-10, 7.0, 1e6])
def test_scaling_every_cost_leaves_every_metric_unchanged(k: float) -> None:
    """AIQ is a mean quality, APGR and CPT read shares of the cost gap and the cost_to_*
    figures shares of the best model's cost: none has a unit of cost."""
    rng = np.random.default_rng(11)
    for _ in range(30):
        scores, costs = random_outcomes(rng)
        predicted = rng.random(scores.shape)
        base, scaled = report_of(scores, costs, predicted), report_of(scores, costs * k, predicted)
        assert base.keys() == scaled.keys()
        for name in base:
            for metric in base[name]:
                assert same(base[name][metric], scaled[name][metric], 1e-9), (name, metric)


def test_a_dominated_point_or_one_under_the_hull_leaves_aiq_and_apgr_unchanged() -> None:
    rng = random.Random(5)
    for _, points, weak, strong in CASES[:300]:
        before = (aiq(points, weak.cost, strong.cost, anchor=weak), apgr(points, weak, strong))
        p = rng.choice(points)
        dominated = P(p.cost + rng.uniform(0, 3), p.quality - rng.uniform(0, p.quality))
        q = rng.choice(points)
        t = rng.random()  # a random mix of two points, pulled down: under the hull
        under = P(
            (1 - t) * p.cost + t * q.cost, ((1 - t) * p.quality + t * q.quality) * rng.random()
        )
        for extra in (dominated, under, p):
            after = (
                aiq([*points, extra], weak.cost, strong.cost, anchor=weak),
                apgr([*points, extra], weak, strong),
            )
            assert same(after[0], before[0], 1e-12) and same(after[1], before[1], 1e-12), (
                points,
                extra,
            )


def curve_metrics(points: Sequence[P], weak: P, strong: P) -> tuple[float | None, ...]:
    return (
        aiq(points, weak.cost, strong.cost, anchor=weak),
        apgr(points, weak, strong),
        cpt(points, weak, strong, 0.5),
        cpt(points, weak, strong, 0.8),
        acc_at_half_best_cost(points, strong, anchor=weak),
        cost_to_accuracy(points, strong.quality, strong.cost, anchor=weak),
    )


def test_the_order_of_the_points_changes_nothing() -> None:
    rng = random.Random(9)
    for _, points, weak, strong in CASES[:300]:
        shuffled = rng.sample(points, len(points))
        assert curve_metrics(points, weak, strong) == curve_metrics(shuffled, weak, strong)


def test_no_router_beats_the_per_prompt_oracle_frontier() -> None:
    """The best a router can do at each cost is a random mix of per-prompt choice vectors
    (every one enumerated here): no router's AIQ is above that frontier's, and no
    router's point above the oracle's quality. The oracle *row* is one point, the
    cheapest vector of highest quality, joined with the cheapest model: a router can
    score a higher AIQ than that line (README, "Routing metrics"), as below."""
    rng = np.random.default_rng(3)
    for _ in range(40):
        scores, costs = random_outcomes(rng)
        every = every_choice(scores, np.broadcast_to(costs, scores.shape))
        report = routing_report(
            {"router": sweep(rng.random(scores.shape), scores, costs)}, scores, costs
        )
        lo, hi = report["cost_range"]
        weak = P(report["cheapest"]["cost"], report["cheapest"]["quality"])
        assert report["rows"]["router"]["aiq"] <= aiq(every, lo, hi, anchor=weak) + 1e-12
        for name, row in report["rows"].items():
            assert row["max_accuracy"] <= report["oracle"]["quality"] + 1e-12, name
    # A: cost 0, B: cost 1, C: cost 10. Prompt 0 only B solves, prompt 1 only C. The
    # oracle (B, C) is (5.5, 1): its line from A's (0, 0) reaches 1 at 5.5. A router
    # that sends prompt 0 to B reaches (0.5, 0.5) first. AIQ over [0, 10]:
    # oracle (5.5 * 1/2 + 4.5) / 10 = 0.725; router (0.5 * 0.25 + 5 * 0.75 + 4.5) / 10 = 0.8375.
    scores = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    report = routing_report({"router": [P(0.5, 0.5), P(5.5, 1.0)]}, scores, [0.0, 1.0, 10.0])
    assert same(report["rows"]["oracle"]["aiq"], 0.725)
    assert same(report["rows"]["router"]["aiq"], 0.8375)


def test_apgr_of_the_weak_model_alone_is_0_and_of_a_free_strong_model_is_1() -> None:
    """RouteLLM: PGR = 0 at the weak model's quality and 1 at the strong model's. The
    weak model alone recovers nothing at every share: APGR 0. The strong model alone is
    one point at share 1 (PGR 1 there); joined with the weak model its curve is the
    random mix of the two, whose APGR is 0.5, as RouteLLM's random router's (its sec.
    5.1). A router at the strong model's quality for the weak model's cost: APGR 1."""
    for _, _, weak, strong in CASES:
        if not has_gap(weak, strong):
            continue
        assert apgr([weak], weak, strong) == 0.0 and cpt([weak], weak, strong, 0.5) is None
        assert same(pgr([strong], weak, strong, 1.0), 1.0)
        assert same(apgr([strong], weak, strong), 0.5) and same(
            cpt([strong], weak, strong, 0.5), 50.0
        )
        ideal = [P(weak.cost, strong.quality)]
        assert same(apgr(ideal, weak, strong), 1.0) and cpt(ideal, weak, strong, 1.0) == 0.0


# --- eval-routing --json end to end ------------------------------------------------------

# Four prompts, repeated: a costs 0.1 a call, b 0.5, c 1 (3 on the third prompt).
#   p0: a b c solve it;  p1: b c;  p2: c (c costs 3 here);  p3: none
PATTERN = [((1, 0.1), (1, 0.5), (1, 1.0)), ((0, 0.1), (1, 0.5), (1, 1.0)),
           ((0, 0.1), (0, 0.5), (1, 3.0)), ((0, 0.1), (0, 0.5), (0, 1.0))]  # fmt: skip


def write_routerbench_csv(path: Path, prefix: str, n: int) -> Path:
    header = ["prompt", "a", "a|total_cost", "b", "b|total_cost", "c", "c|total_cost"]
    lines = [",".join(header)]
    for i in range(n):
        cells = [f"{prefix} question number {i}"]
        for score, cost in PATTERN[i % 4]:
            cells += [str(score), str(cost)]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_eval_routing_json_on_a_hand_made_routerbench_csv(tmp_path: Path) -> None:
    """Singles: a (0.1, 0.25), b (0.5, 0.5), c (1.5, 0.75): cheapest a, best c, AIQ over
    [0.1, 1.5] (width 1.4), gap 0.5. b is above the line a -> c, so the mix hull is a, b,
    c (slopes 0.625 then 0.25). Oracle: p0 a, p1 b, p2 c, p3 a (none solves it: the
    cheapest) -> cost (0.1 + 0.5 + 3 + 0.1) / 4 = 0.925, quality 0.75. kNN (k = 10) on 8
    training prompts predicts their means, (0.25, 0.5, 0.75), on every prompt: each knob
    sends every prompt to one model, so its points are a, b, c, as the mix hull's."""
    train = write_routerbench_csv(tmp_path / "train.csv", "train", 8)
    test = write_routerbench_csv(tmp_path / "test.csv", "test", 4)
    proc = cli_in_process(
        "eval-routing", "--data", str(train), "--test", str(test), "--routers", "knn",
        "--encoder", "hashing", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["cost"] == "call" and out["cost_range"] == [0.1, 1.5]
    assert (out["cheapest"]["name"], out["best_single"]["name"]) == ("a", "c")
    assert same(out["oracle"]["cost"], 0.925) and out["oracle"]["quality"] == 0.75
    hull = {
        # (0.4 * 0.375 + 1.0 * 0.625) / 1.4 = 0.775 / 1.4; APGR = (that - 0.25) / 0.5
        "aiq": 0.775 / 1.4, "apgr": 17 / 28,
        # Q = 0.5 at b, s = 0.4 / 1.4; Q = 0.65 on b -> c at c = 1.1, s = 1 / 1.4
        "cpt50": 100 * 2 / 7, "cpt80": 100 * 5 / 7, "max_accuracy": 0.75,
        "acc_at_half_best_cost": 0.5625,  # Q(0.75) = 0.5 + 0.25 * 0.25
        "cost_to_95": 0.9,  # 0.95 * 0.75 = 0.7125 at c = 1.35; / 1.5
        "cost_to_best_accuracy": 1.0, "cost_to_95_one_setting": 1.0,
        "cost_to_best_accuracy_one_setting": 1.0,
    }  # fmt: skip
    oracle = {
        # a (0.1, 0.25) -> (0.925, 0.75), flat: (0.825 * 0.5 + 0.575 * 0.75) / 1.4
        "aiq": 0.84375 / 1.4, "apgr": (0.84375 / 1.4 - 0.25) / 0.5,
        "cpt50": 100 * 0.4125 / 1.4, "cpt80": 100 * 0.66 / 1.4,  # 0.5 and 0.8 of 0.825
        "acc_at_half_best_cost": 0.25 + 0.5 * 0.65 / 0.825,
        "cost_to_95": (0.1 + 0.925 * 0.825) / 1.5, "cost_to_best_accuracy": 0.925 / 1.5,
        "cost_to_95_one_setting": 0.925 / 1.5,
    }  # fmt: skip
    best = {  # the line a -> c: PGR(s) = s
        "aiq": 0.5, "apgr": 0.5, "cpt50": 50.0, "cpt80": 80.0,
        "acc_at_half_best_cost": 0.25 + 0.5 * 0.65 / 1.4,
        "cost_to_95": (0.1 + 0.925 * 1.4) / 1.5,
    }  # fmt: skip
    random_row = {  # (0.7, 0.5): a -> it over [0.1, 0.7], flat after
        "aiq": (0.6 * 0.375 + 0.8 * 0.5) / 1.4, "apgr": ((0.625 / 1.4) - 0.25) / 0.5,
        "cpt50": 100 * 0.6 / 1.4, "cpt80": None, "cost_to_95": None,
    }  # fmt: skip
    expected = {"knn": hull, "mix_hull": hull, "oracle": oracle, "best_single": best,
                "random": random_row, "cheapest": {"aiq": 0.25, "apgr": 0.0, "cpt50": None}}  # fmt: skip
    for row, metrics in expected.items():
        for metric, value in metrics.items():
            assert same(out["routers"][row][metric], value, 1e-12), (row, metric)


@pytest.mark.parametrize(
    ("points", "weak", "strong"),
    [
        ([P(1.0, 0.5)], P(1.0, 0.5), P(1.0, 0.5)),  # one point, weak = strong
        ([P(2.0, 0.3), P(2.0, 0.3)], P(2.0, 0.1), P(2.0, 0.9)),  # one cost for everything
        ([P(0.0, 0.0)], P(0.0, 0.0), P(0.0, 1.0)),  # all free
        ([P(0.0, 1.0), P(5.0, 0.0)], P(0.0, 0.0), P(5.0, 1.0)),  # non-monotone, free best
        ([P(1e-300, 0.2), P(1e300, 0.9)], P(1e-300, 0.1), P(1e300, 0.8)),  # 600 decades
    ],
)
def test_degenerate_inputs_give_numbers_or_none_as_the_reference(
    points: list[P], weak: P, strong: P
) -> None:
    """No NaN and no error where the definitions leave a metric undefined (no gap, no
    cost range): None there, as the reference, and the reference's number elsewhere."""
    lo, hi = weak.cost, max(weak.cost, strong.cost)
    got = [aiq(points, lo, hi, anchor=weak), apgr(points, weak, strong)]
    want = [ref_aiq(points, lo, hi, weak), ref_apgr(points, weak, strong)]
    got += [cpt(points, weak, strong, x) for x in (0.5, 0.8)]
    want += [ref_cpt(points, weak, strong, x) for x in (0.5, 0.8)]
    for g, w in zip(got, want, strict=True):
        assert g is None or g == g  # not NaN
        assert same(g, w, 1e-7), (got, want)
