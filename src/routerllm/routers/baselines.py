"""Reference routers: random, always-largest, always-smallest."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from routerllm.routers.base import CandidateModel, Router, RoutingDecision, prompt_list


class RandomRouter(Router):
    """Uniform choice among the available models; confidence uniform in [0.5, 1.0]. Seedable."""

    name = "random"

    def __init__(self, models: Sequence[CandidateModel], seed: int = 0) -> None:
        super().__init__(models, seed)
        self.rng = np.random.default_rng(seed)

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        return self._draw(len(prompts), np.ones(len(self.models), dtype=bool))[0]

    def _draw(self, n: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        candidates = np.flatnonzero(mask)
        picks = self.rng.choice(candidates, size=n)
        several = len(candidates) > 1
        conf = self.rng.uniform(0.5, 1.0, size=n) if several else np.ones(n)
        scores = np.zeros((n, len(self.models)))
        if several:
            scores[:, candidates] = ((1.0 - conf) / (len(candidates) - 1))[:, None]
        scores[np.arange(n), picks] = conf
        return scores, picks, conf

    def route_batch(
        self, prompts: Sequence[str], allowed: Sequence[str] | None = None
    ) -> list[RoutingDecision]:
        prompts = prompt_list(prompts)
        scores, picks, conf = self._draw(len(prompts), self._mask(allowed))
        return [
            RoutingDecision(
                model=self.model_names[int(p)],
                confidence=float(c),
                reason="uniform random choice",
                router=self.name,
                scores={n: float(s) for n, s in zip(self.model_names, row, strict=True)},
            )
            for p, c, row in zip(picks, conf, scores, strict=True)
        ]


class _FixedRouter(Router):
    """Always the same end of the size ladder (among available models)."""

    largest: bool

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        n, m = len(prompts), len(self.models)
        # Strictly monotone in size so masking falls back to the next size.
        ranks = np.arange(1, m + 1, dtype=np.float64)
        row = ranks if self.largest else ranks[::-1]
        return np.tile(row / row.sum(), (n, 1))

    def _decide(self, prompt: str, row: np.ndarray, mask: np.ndarray) -> RoutingDecision:
        decision = super()._decide(prompt, row, mask)
        return RoutingDecision(
            decision.model, 1.0, self.explain(prompt, row), self.name, decision.scores
        )


class LargestRouter(_FixedRouter):
    """Sends everything to the largest available model (the baseline routing is compared to)."""

    name = "largest"
    largest = True

    def explain(self, prompt: str, row: np.ndarray) -> str:
        return "always the largest available model"


class SmallestRouter(_FixedRouter):
    """Sends everything to the smallest available model."""

    name = "smallest"
    largest = False

    def explain(self, prompt: str, row: np.ndarray) -> str:
        return "always the smallest available model"
