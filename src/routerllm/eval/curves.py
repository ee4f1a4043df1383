"""Quality/cost curves and the metrics computed on them (RouterBench AIQ, RouteLLM APGR/CPT).

A router is a set of operating points (cost, quality), one per knob value. It is scored
on its *curve*: ``router_curve(points, anchor)``, the non-decreasing upper convex hull
of its points together with an anchor point, the cheapest single model's point in
``routing_report``. Adding the anchor makes every metric defined from the cheapest
model's cost up and applies one convention to every router and reference row: any
router can be mixed with always calling the cheapest model. Q(c) = ``quality_at(curve,
c)``: linear between the curve's points, constant after the last one, undefined
before the first.

Definitions (weak = the cheapest model (C_w, Q_w), strong = the best single model
(C_s, Q_s)):

* AIQ over [a, b] = (1 / (b - a)) * integral from a to b of Q(c) dc, computed exactly
  (Q is piecewise linear); Q counts as 0 where it is undefined (c below the curve's
  first point, which can only happen when a is below the anchor's cost). When a == b,
  AIQ = Q(a). ``routing_report`` uses a = cheapest and b = most expensive single
  model's mean cost.
* Share of the strong model's cost s = (c - C_w) / (C_s - C_w); PGR(s) =
  (Q(C_w + s (C_s - C_w)) - Q_w) / (Q_s - Q_w), not clipped (it exceeds 1 when the
  router beats the strong model).
* APGR = the area under PGR(s) over s in [0, 1], computed exactly as AIQ is: (the mean
  of Q over [C_w, C_s] - Q_w) / (Q_s - Q_w). Before 2026-12-06 it was a trapezoid rule
  on s = 0, 0.01, ..., 1, which cuts the corners that fall between grid points: 0.0002
  to 0.0007 lower for routers and the mix hull on the real outcome data, 0.0025 for a
  curve that recovers the whole gap at s = 0.005.
* CPT(x) = 100 * min{s in [0, 1] : PGR(s) >= x}, exact; None when
  PGR(s) < x for every s in [0, 1].
* APGR, PGR and CPT are None when Q_s == Q_w (there is no gap to recover).
* max_accuracy = the highest quality among the router's own points (anchor excluded).
* acc_at_half_best_cost = Q(0.5 * C_s); None where Q is undefined.
* cost_to_accuracy(target) = min{c : Q(c) >= target} / C_s; None when the curve never
  reaches target or C_s == 0. cost_to_95 uses target 0.95 * Q_s and
  cost_to_best_accuracy target Q_s.

Comparisons "Q >= target" allow 1e-12 of floating-point slack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from routerllm.checks import is_finite_number
from routerllm.exceptions import RouterLLMError


@dataclass(frozen=True)
class OperatingPoint:
    """One point of a quality/cost curve.

    ``cost`` is the mean cost per prompt of the chosen models, ``quality`` the mean
    real score of the chosen models, ``knob`` the setting (lambda, threshold) that
    produced it, or None for fixed references.
    """

    cost: float
    quality: float
    knob: float | None = None


def check_points(points: Sequence[OperatingPoint], what: str = "points") -> list[OperatingPoint]:
    """Validate a non-empty sequence of OperatingPoint with finite cost and quality."""
    if isinstance(points, OperatingPoint | str | bytes) or not isinstance(points, Iterable):
        raise RouterLLMError(f"{what} must be a list of OperatingPoint values, got {points!r:.80}")
    pts = list(points)
    if not pts:
        raise RouterLLMError(f"{what} must contain at least one OperatingPoint")
    for p in pts:
        if not isinstance(p, OperatingPoint):
            raise RouterLLMError(f"{what} must be OperatingPoint values; got {type(p).__name__}")
        if not (is_finite_number(p.cost) and is_finite_number(p.quality)):
            raise RouterLLMError(f"{what} must have finite numbers as cost and quality; got {p}")
    return pts


def check_numbers(**values: object) -> None:
    """A clear error naming the first of ``values`` that is not a finite number."""
    for name, value in values.items():
        if not is_finite_number(value):
            raise RouterLLMError(f"{name} must be a finite number, got {value!r:.60}")


def upper_hull(points: Sequence[OperatingPoint]) -> list[OperatingPoint]:
    """The non-decreasing upper convex hull of (cost, quality) points, sorted by cost.

    Definition: take the upper convex hull of the points (from the cheapest point, the
    best one among equal costs, to the most expensive), then make it non-decreasing in
    cost by carrying the running maximum of quality, as RouterBench's AIQ does. Points
    after the first highest-quality one are dropped: the curve is constant from there
    on (``quality_at``), which is exactly what carrying the running maximum gives.
    Points on a hull segment (collinear) are dropped too. The curve is the highest
    quality that a random mix of the points reaches at mean cost at most c.
    """
    pts = sorted(check_points(points), key=lambda p: (p.cost, -p.quality))
    hull: list[OperatingPoint] = []
    for p in pts:
        if hull and p.cost == hull[-1].cost:
            continue  # same cost, lower or equal quality
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b is on or below the segment a -> p: it is not a hull vertex.
            if (b.cost - a.cost) * (p.quality - a.quality) >= (b.quality - a.quality) * (
                p.cost - a.cost
            ):
                hull.pop()
            else:
                break
        hull.append(p)
    peak = int(np.argmax([p.quality for p in hull]))
    return hull[: peak + 1]


def quality_at(hull: Sequence[OperatingPoint], cost: float) -> float | None:
    """The quality of a curve (the output of ``upper_hull``) at ``cost``.

    Linear interpolation between the curve's points; constant (the last point's quality)
    after the last point; None before the first point, where the curve is undefined.
    """
    h = check_points(hull, "hull")
    check_numbers(cost=cost)
    if cost < h[0].cost:
        return None
    xs = np.array([p.cost for p in h])
    ys = np.array([p.quality for p in h])
    return float(np.interp(cost, xs, ys))


def mix_at(points: Sequence[OperatingPoint], cost: float) -> dict[int, float] | None:
    """The best fixed random mix of ``points`` (e.g. the single models) at mean cost at
    most ``cost``: {index of a point: probability}, the one or two ``upper_hull``
    vertices around ``cost``, so that the mix's quality is ``quality_at(hull, cost)``.
    None below the cheapest point."""
    pts = check_points(points)
    check_numbers(cost=cost)
    hull = upper_hull(pts)
    if cost < hull[0].cost:
        return None
    index = [pts.index(v) for v in hull]
    for k in range(len(hull) - 1):
        a, b = hull[k], hull[k + 1]
        if a.cost <= cost < b.cost:
            t = (cost - a.cost) / (b.cost - a.cost)
            return {i: w for i, w in ((index[k], 1.0 - t), (index[k + 1], t)) if w > 0}
    return {index[-1]: 1.0}


def first_cost_reaching(hull: Sequence[OperatingPoint], quality: float) -> float | None:
    """The smallest cost at which a non-decreasing curve reaches ``quality`` (1e-12 slack).

    None when the curve's highest quality is below ``quality``.
    """
    h = check_points(hull, "hull")
    check_numbers(quality=quality)
    target = quality - 1e-12
    if h[0].quality >= target:
        return h[0].cost
    for a, b in zip(h, h[1:], strict=False):
        if b.quality >= target:
            frac = (quality - a.quality) / (b.quality - a.quality)
            return a.cost + min(max(frac, 0.0), 1.0) * (b.cost - a.cost)
    return None


def router_curve(
    points: Sequence[OperatingPoint], anchor: OperatingPoint | None = None
) -> list[OperatingPoint]:
    """The curve a router is scored on: ``upper_hull`` of its points plus the anchor."""
    pts = check_points(points)
    return upper_hull([*pts, anchor] if anchor is not None else pts)


def _mean_quality(curve: Sequence[OperatingPoint], a: float, b: float) -> float:
    """Exact mean of Q(c) over [a, b], a < b (Q = 0 before the curve's first point).

    Each piece's width is taken as a share of b - a and each point's height by its
    share of its segment, both in [0, 1]: a slope or an area over subnormal cost
    differences (5e-324) overflows to inf (inf * 0 = NaN) or underflows to 0.
    """
    total = 0.0
    for p, q in zip(curve, curve[1:], strict=False):
        lo, hi = max(a, p.cost), min(b, q.cost)
        if hi > lo:
            rise, run = q.quality - p.quality, q.cost - p.cost
            y_lo = p.quality + rise * ((lo - p.cost) / run)
            y_hi = p.quality + rise * ((hi - p.cost) / run)
            total += ((hi - lo) / (b - a)) * (y_lo + y_hi) / 2.0
    lo = max(a, curve[-1].cost)
    if b > lo:
        total += ((b - lo) / (b - a)) * curve[-1].quality
    return total


def aiq(
    points: Sequence[OperatingPoint],
    cost_min: float,
    cost_max: float,
    anchor: OperatingPoint | None = None,
) -> float:
    """RouterBench's Average Improvement in Quality over [cost_min, cost_max] (module doc)."""
    check_numbers(cost_min=cost_min, cost_max=cost_max)
    if cost_max < cost_min:
        raise RouterLLMError(
            f"need finite cost_min <= cost_max; got cost_min={cost_min}, cost_max={cost_max}"
        )
    curve = router_curve(points, anchor)
    if cost_max == cost_min:
        q = quality_at(curve, cost_min)
        return 0.0 if q is None else q
    return _mean_quality(curve, cost_min, cost_max)


def _gap(weak: OperatingPoint, strong: OperatingPoint) -> tuple[float, float] | None:
    """(C_s - C_w, Q_s - Q_w), or None when there is no quality gap to recover."""
    check_points([weak, strong], "weak/strong")
    dq, dc = strong.quality - weak.quality, strong.cost - weak.cost
    return None if dq <= 0 or dc <= 0 else (dc, dq)


def pgr(
    points: Sequence[OperatingPoint], weak: OperatingPoint, strong: OperatingPoint, share: float
) -> float | None:
    """RouteLLM's Performance Gap Recovered at share s of the strong model's cost."""
    check_numbers(share=share)
    gap = _gap(weak, strong)
    if gap is None:
        return None
    q = quality_at(router_curve(points, weak), weak.cost + share * gap[0])
    return None if q is None else (q - weak.quality) / gap[1]


def apgr(
    points: Sequence[OperatingPoint], weak: OperatingPoint, strong: OperatingPoint
) -> float | None:
    """Average PGR: the exact area under PGR(s) over s in [0, 1] (module doc)."""
    gap = _gap(weak, strong)
    if gap is None:
        return None
    # PGR is affine in Q and s in c: its mean over [0, 1] is that of Q over [C_w, C_s]
    mean_q = _mean_quality(router_curve(points, weak), weak.cost, strong.cost)
    return (mean_q - weak.quality) / gap[1]


def cpt(
    points: Sequence[OperatingPoint], weak: OperatingPoint, strong: OperatingPoint, x: float
) -> float | None:
    """Call-Performance Threshold: 100 * the smallest s in [0, 1] with PGR(s) >= x."""
    check_numbers(x=x)
    gap = _gap(weak, strong)
    if gap is None:
        return None
    c = first_cost_reaching(router_curve(points, weak), weak.quality + x * gap[1])
    if c is None:
        return None
    s = max(0.0, (c - weak.cost) / gap[0])
    return None if s > 1.0 + 1e-12 else 100.0 * min(s, 1.0)


def max_accuracy(points: Sequence[OperatingPoint]) -> float:
    """The highest quality among the router's own points."""
    return max(p.quality for p in check_points(points))


def acc_at_half_best_cost(
    points: Sequence[OperatingPoint], best: OperatingPoint, anchor: OperatingPoint | None = None
) -> float | None:
    """Q(0.5 * C_best) on the router's curve; None where the curve is undefined."""
    check_points([best], "best")
    return quality_at(router_curve(points, anchor), 0.5 * best.cost)


def cost_to_accuracy(
    points: Sequence[OperatingPoint],
    target: float,
    reference_cost: float,
    anchor: OperatingPoint | None = None,
) -> float | None:
    """min{c : Q(c) >= target} / reference_cost; None if never reached or reference_cost <= 0.

    Read off the hull, so the cost may be that of a random mix of two knob settings
    (see :func:`cost_to_accuracy_one_setting` for what one setting reaches)."""
    check_numbers(target=target, reference_cost=reference_cost)
    c = first_cost_reaching(router_curve(points, anchor), target)
    return None if c is None or reference_cost <= 0 else c / reference_cost


def cost_to_accuracy_one_setting(
    points: Sequence[OperatingPoint],
    target: float,
    reference_cost: float,
    anchor: OperatingPoint | None = None,
) -> float | None:
    """The cost of the cheapest single operating point (one knob setting, or the
    ``anchor``, the cheapest model alone) whose quality reaches ``target``, divided by
    ``reference_cost``: what a router reaches without mixing two settings. None if no
    point reaches it or reference_cost <= 0."""
    check_numbers(target=target, reference_cost=reference_cost)
    pts = check_points(points, "points") + ([] if anchor is None else [anchor])
    costs = [p.cost for p in pts if p.quality >= target - 1e-12]
    return None if not costs or reference_cost <= 0 else min(costs) / reference_cost


def share_above_line(
    points: Sequence[OperatingPoint], start: OperatingPoint, end: OperatingPoint
) -> float:
    """The share of the cost range [start.cost, end.cost] over which the router's curve
    (``upper_hull`` of ``points``, without an anchor) lies strictly above the straight
    line from ``start`` to ``end``: the random mix of two models (e.g. direct-medium and
    direct-heavy), which a router must beat to be worth more than mixing them. Exact
    (both are piecewise linear); 1e-12 of slack, so a curve on the line is not above it;
    the curve is not above where it is undefined (below its cheapest point)."""
    check_points([start, end], "start/end")
    if not end.cost > start.cost:
        raise RouterLLMError(f"the line needs start.cost < end.cost; got {start.cost}, {end.cost}")
    hull = upper_hull(points)
    a, b = start.cost, end.cost
    xs = sorted({a, b, *(p.cost for p in hull if a < p.cost < b)})

    def above(c: float) -> float | None:
        q = quality_at(hull, c)
        line = start.quality + (end.quality - start.quality) * ((c - a) / (b - a))
        return None if q is None else q - line - 1e-12

    total = 0.0
    for x0, x1 in zip(xs, xs[1:], strict=False):
        if x0 < hull[0].cost < x1:  # the curve starts inside this piece
            x0 = hull[0].cost
        d0, d1 = above(x0), above(x1)
        if d0 is None or d1 is None:
            continue
        if d0 > 0 and d1 > 0:
            total += x1 - x0
        elif d0 > 0 or d1 > 0:  # crosses the line once: the positive part's length
            pos, neg = max(d0, d1), min(d0, d1)
            total += (x1 - x0) * pos / (pos - neg)
    return total / (b - a)
