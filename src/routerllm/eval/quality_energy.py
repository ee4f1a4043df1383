"""The quality router's quality-energy curve in ``routerllm humaneval``'s report: its
points over the knob, its share above the random mix of direct-medium and direct-heavy,
an expected energy over a router's draws, and quality_energy.png. An answer CodeCarbon
failed to measure has no known energy: a figure that would count it is None (null in
results.json), never its 0 kWh."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from routerllm.eval.humaneval_run import CASCADE, GATED_CASCADE
from routerllm.eval.plots import save_png
from routerllm.exceptions import missing_dependency

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Resolution of quality_energy.png.
DPI = 110


def quality_energy_curve(
    predicted: np.ndarray,
    scores: np.ndarray,
    energy: np.ndarray,
    known: np.ndarray,
    rule: str = "lambda",
    measured: np.ndarray | None = None,
) -> list[tuple[float | None, float]]:
    """(total generation kWh, pass@1) of the quality router over the knob of its decision
    ``rule``, on its out-of-fold predictions (each problem predicted by a router that
    never saw it), deciding by the per-model energies it ``known`` (its training folds'
    means) and scored with the measured ``energy``. A setting that chose an answer not
    ``measured`` (False where CodeCarbon failed; None: every one was) has None as its
    energy: no estimate is made of the part not measured, nor is it counted as 0 kWh.
    Sorted by energy, those of unknown energy last."""
    from routerllm.eval.routing_metrics import sweep

    points = sweep(predicted, scores, energy, mode=rule, decision_costs=known)  # type: ignore[arg-type]
    unknown = [False] * len(points)
    if measured is not None:
        # The same settings' choices (they depend on the predictions and the known costs
        # alone), costed by whether each chosen answer went unmeasured.
        flags = sweep(predicted, scores, (~measured).astype(float), mode=rule, decision_costs=known)  # type: ignore[arg-type]
        unknown = [f.cost > 0 for f in flags]
    found = {
        (None if u else p.cost * len(scores), p.quality)
        for p, u in zip(points, unknown, strict=True)
    }
    return sorted(found, key=lambda p: (p[0] is None, p[0] or 0.0, p[1]))


def expected_kwh(policy: np.ndarray, energy: np.ndarray, measured: np.ndarray) -> float | None:
    """The expected generation kWh of a router drawing each problem's model by ``policy``
    (n, m); None where it may draw an answer not ``measured`` (CodeCarbon failed): the
    expectation of an energy not known, which a 0 kWh for it would understate."""
    if (policy[~measured] > 0).any():
        return None
    return float((policy * energy).sum())


def above_mix(
    curve: list[tuple[float | None, float]],
    scores: np.ndarray,
    energy: np.ndarray,
    models: list[str],
    medium: str,
    heavy: str,
    measured: Collection[str] | None = None,
) -> float | None:
    """The share of the generation-energy range from direct-medium to direct-heavy over
    which ``curve`` lies above the straight line between them: the random mix of the two,
    which routing must beat (issue #4); None without a curve or such a range, where a point
    of the curve has no known energy (it may be a corner of its hull), or where medium's or
    heavy's generation was not measured (not in ``measured``, the models every one of whose
    answers was; None: every one): a total with a 0 kWh not known is no end of the line."""
    from routerllm.eval.curves import OperatingPoint, share_above_line

    if not curve or medium not in models or heavy not in models:
        return None
    if any(c is None for c, _ in curve):
        return None
    if measured is not None and not {medium, heavy} <= set(measured):
        return None
    ends = [OperatingPoint(float(energy[:, i].sum()), float(scores[:, i].mean())) for i in (models.index(medium), models.index(heavy))]  # fmt: skip
    if not ends[1].cost > ends[0].cost:
        return None
    return share_above_line([OperatingPoint(c, q) for c, q in curve if c is not None], *ends)


def not_drawn(curve: Collection[object], drawn: Collection[object]) -> str:
    """What a label says of a ``curve``'s points not ``drawn``: a point that spent an answer
    not measured has no place on the energy axis ("" where every one is drawn)."""
    if len(drawn) == len(curve):
        return ""
    return f"; {len(curve) - len(drawn)} of its {len(curve)} points not measured, not drawn"


def plot_curve(
    curve: list[tuple[float | None, float]],
    rows: list[dict[str, Any]],
    path: Path,
    rule: str = "lambda",
    mix_line: bool = True,
) -> None:
    """:func:`curve_figure` written to ``path`` as a PNG, whole or not at all."""
    fig = curve_figure(curve, rows, rule, mix_line)
    save_png(fig, path, DPI)


def curve_figure(
    curve: list[tuple[float | None, float]],
    rows: list[dict[str, Any]],
    rule: str = "lambda",
    mix_line: bool = True,
) -> Figure:
    """The quality router's ``curve`` (its points of known energy) against the systems'
    ``rows``; the medium-heavy mixing line where ``mix_line`` (both ends' every answer
    measured) and both rows' generation energy is known."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise missing_dependency("matplotlib", "learn", e) from e

    fig = Figure(figsize=(7, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    drawn = [(c, q) for c, q in curve if c is not None]
    left = not_drawn(curve, drawn)
    if drawn:
        xs, ys = zip(*drawn, strict=True)
        ax.plot(xs, ys, "-o", ms=3, label=f"quality router ({rule} sweep, cross-validated)"
                + left)  # fmt: skip
    direct = {r["system"]: r for r in rows if r["system"].startswith("direct-")}
    for name, r in direct.items():
        gen = r["components"]["llm_inference"]["energy_kwh"]
        if gen is None:  # not measured: no place on the energy axis
            continue
        ax.plot(gen, r["pass@1"], "ks")
        ax.annotate(name, (gen, r["pass@1"]), textcoords="offset points", xytext=(5, -10))
    marks = {CASCADE: ("r^", "cascade (medium, heavy when the examples fail)"),
             GATED_CASCADE: ("mv", "gated cascade at its energy budget")}  # fmt: skip
    for r in rows:
        gen = r["components"]["llm_inference"]["energy_kwh"]
        if r["system"] in marks and gen is not None:
            ax.plot(gen, r["pass@1"], marks[r["system"]][0], label=marks[r["system"]][1])
        if "gate" in r:
            gate_curve = [(kwh, pass1) for _, kwh, pass1 in r["gate"]["curve"]]
            if gate_drawn := [(c, q) for c, q in gate_curve if c is not None]:
                xs, ys = zip(*gate_drawn, strict=True)
                ax.plot(xs, ys, "m:", lw=1, label="gated cascade over budgets (each calibrated on training folds)"
                        + not_drawn(gate_curve, gate_drawn))  # fmt: skip
    pair = [direct[n] for n in ("direct-medium", "direct-heavy") if n in direct]
    kwhs = [r["components"]["llm_inference"]["energy_kwh"] for r in pair]
    if mix_line and len(pair) == 2 and None not in kwhs:  # a line to an unmeasured end has none
        ax.plot([float(k) for k in kwhs], [r["pass@1"] for r in pair], "k--", lw=1,
                label="random mix medium/heavy")  # fmt: skip
    ax.set_xlabel("generation energy, kWh (all problems)")
    ax.set_ylabel("pass@1")
    ax.set_title("HumanEval: quality vs energy" + ("" if drawn else f"\n(quality router{left})"))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # none where nothing labelled was drawn
        ax.legend(loc="lower right", fontsize=8)
    return fig
