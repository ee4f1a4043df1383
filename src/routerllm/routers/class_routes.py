"""Which candidate model serves each prompt class or tier, and why a router that adds up
its classes' probabilities per model chose the model it chose: shared by the classifier,
complexity and policy routers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from routerllm.config import TIER_ORDER
from routerllm.routers.base import CandidateModel


def class_routes(
    models: Sequence[CandidateModel], class_tiers: Sequence[str]
) -> list[tuple[int, str]]:
    """For each class, (index in ``models`` of the model that serves it, why).

    ``models`` must be sorted smallest first (as ``Router.models`` is). A model
    whose ``class_id`` is the class wins (the smallest of several); else the
    smallest model of the class's tier; else the smallest of the nearest tier,
    the bigger tier on a tie (a bigger model is the safer fallback).
    """
    tiers = [TIER_ORDER.get(m.tier, 1) for m in models]
    routes = []
    for c, tier in enumerate(class_tiers):
        by_id = [i for i, m in enumerate(models) if m.class_id == c]
        if by_id:
            routes.append((by_id[0], f"class_id {c}"))
            continue
        routes.append(tier_route(models, tier, tiers))
    return routes


def tier_route(
    models: Sequence[CandidateModel], tier: str, tiers: Sequence[int] | None = None
) -> tuple[int, str]:
    """(index in ``models`` of the model that serves ``tier``, why): the smallest
    model of that tier, else the smallest of the nearest tier, the bigger tier on a
    tie. ``models`` sorted smallest first; ``class_id`` plays no part."""
    if tiers is None:
        tiers = [TIER_ORDER.get(m.tier, 1) for m in models]
    target = TIER_ORDER[tier]
    best = min(range(len(models)), key=lambda i: (abs(tiers[i] - target), -tiers[i], i))
    return best, f"{tier} tier" if tiers[best] == target else f"nearest to {tier}"


def class_reason(
    labels: Sequence[str], probs: np.ndarray, model_of: Sequence[int], chosen: int, model: str
) -> str:
    """Why a router that adds up its classes' probabilities per model chose model
    ``chosen`` (named ``model``): the classes it serves, most likely first.

    The decision is by the sum, so the single most likely class may point to
    another model than the one chosen; the reason names the classes that won."""
    served = sorted((j for j, m in enumerate(model_of) if m == chosen), key=lambda j: -probs[j])
    if not served:  # no class maps there: a fallback decided it
        return f"-> {model} (no class maps to it)"
    parts = " + ".join(f"{labels[j]} (p={probs[j]:.2f})" for j in served)
    together = f", p={float(probs[served].sum()):.2f} together" if len(served) > 1 else ""
    return f"{'class' if len(served) == 1 else 'classes'} {parts} -> {model}{together}"
