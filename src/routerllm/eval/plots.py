"""Quality/cost plots of routers against the reference rows (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from routerllm.eval.curves import OperatingPoint, check_points, router_curve
from routerllm.eval.routing_metrics import References
from routerllm.exceptions import (
    MissingDependencyError,
    RouterLLMError,
    cannot_import,
    missing_dependency,
    os_reason,
)
from routerllm.files import written_atomically
from routerllm.path_checks import file_in_the_way, what_is


def check_png_path(path: str | Path, what: str = "the plot") -> Path:
    """``path`` as a Path, or a clear error when it cannot take a PNG: another suffix
    (a PNG written to ``results.json`` would mislead, or replace data) or a folder."""
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise RouterLLMError(f"{what} {out} is written as a PNG: give a path ending in .png")
    if out.is_dir():
        raise RouterLLMError(f"{what} {out} is a folder: give a .png file path")
    if (above := file_in_the_way(out.parent)) is not None:
        raise RouterLLMError(f"{what} {out} is under {above}, which is {what_is(above)}")
    return out


def save_png(fig: Any, out: Path, dpi: float | str = "figure") -> None:
    """``fig`` written to ``out`` as a PNG, whole or not at all (a Ctrl-C part-way leaves
    the plot there before); a write that fails (a full disk) is said naming the plot:
    matplotlib's OSError names no file ("[Errno 28] No space left on device")."""
    try:
        with written_atomically(out) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    except OSError as e:
        raise RouterLLMError(f"cannot write the plot {out}: {os_reason(e)}") from e


def require_matplotlib(plot: str, remedy: str) -> None:
    """Fail now, before the work a ``plot`` draws, where matplotlib is not installed (or
    fails to import: :func:`~routerllm.exceptions.cannot_import`): the
    figures it would draw were lost with the error. ``remedy`` says how to do without."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        broken = cannot_import("matplotlib", "learn", e)
        why = (
            broken[1]
            if broken
            else "is not installed: install it with pip install 'routerllm[learn]'"
        )
        raise MissingDependencyError(
            f"{plot} needs matplotlib, which {why}, or {remedy} (nothing was run)"
        ) from e


def _point_marker(costs: Sequence[float], marker: str) -> str | None:
    """``marker`` for a curve all of one cost (every model costs the same, or there is
    one model): drawn as a line from a point to itself, it would be invisible, named in
    the legend only (drawn over the single models' dots: it is often one of them). None
    (a line) otherwise."""
    return marker if max(costs) == min(costs) else None


def plot_quality_cost(
    curves: Mapping[str, Sequence[OperatingPoint]],
    references: References,
    path: str | Path,
    title: str = "Quality vs cost",
) -> Path:
    """Write a PNG of each router's curve against the single models, oracle and mix hull.

    Each router is drawn as its raw points (markers) and the curve it is scored on
    (``router_curve`` anchored at the cheapest model, a solid line). Single models are
    labelled dots, the oracle a star, the random-choice point a cross, and the mix hull
    (the best fixed mix of single models) a dashed line, extended flat to the right edge;
    a curve all of one cost (every model costs the same) is drawn as a marker.
    Uses the Agg canvas directly, so it never changes pyplot's backend. Returns the path.
    """
    out = check_png_path(path)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise missing_dependency("matplotlib", "learn", e) from e

    anchor = references.singles[references.cheapest]
    all_points = [*references.singles, references.oracle, references.random]
    for name, points in curves.items():
        all_points.extend(check_points(points, f"points of router {name!r}"))
    right = max(p.cost for p in all_points)

    fig = Figure(figsize=(7.0, 5.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, points in curves.items():
        curve = router_curve(points, anchor)
        xs = [p.cost for p in curve] + [right]
        ys = [p.quality for p in curve] + [curve[-1].quality]
        marker = _point_marker(xs, "D")
        (line,) = ax.plot(xs, ys, "-", linewidth=1.8, label=name, marker=marker,
                          zorder=3 if marker else None)  # fmt: skip
        ax.plot(
            [p.cost for p in points],
            [p.quality for p in points],
            "o",
            markersize=3,
            alpha=0.5,
            color=line.get_color(),
        )
    hull = references.mix_hull
    ax.plot(
        [p.cost for p in hull] + [right],
        [p.quality for p in hull] + [hull[-1].quality],
        "--",
        color="gray",
        label="mix of single models",
        marker=_point_marker([p.cost for p in hull] + [right], "s"),
        fillstyle="none",
    )
    for name, p in zip(references.model_names, references.singles, strict=True):
        ax.plot([p.cost], [p.quality], "o", color="black")
        ax.annotate(name, (p.cost, p.quality), textcoords="offset points", xytext=(5, -10))
    ax.plot(
        [references.oracle.cost],
        [references.oracle.quality],
        "*",
        markersize=12,
        color="gold",
        markeredgecolor="black",
        label="oracle",
    )
    ax.plot([references.random.cost], [references.random.quality], "x", color="red", label="random")
    ax.set_xlabel("mean cost per prompt")
    ax.set_ylabel("mean quality")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    save_png(fig, out)
    return out
