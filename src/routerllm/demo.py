"""The offline demo: built-in prompts routed to the local ladder, and the same
prompts sent to the largest model, both measured for real."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from routerllm.backends.base import GenerationRequest
from routerllm.routers.base import create_router
from routerllm.system import RoutedResult, RouterLLM

DEMO_PROMPTS: tuple[str, ...] = (
    "Translate 'hello' to French.",
    "What is a Python list?",
    "Write a haiku about the sea.",
    "Explain the difference between TCP and UDP.",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Implement a thread-safe LRU cache in Python with get and put methods, "
    "and explain the time complexity of each operation.",
)


@dataclass(frozen=True)
class DemoRun:
    routed: list[RoutedResult]
    baseline: list[RoutedResult]  # empty when the baseline was skipped


def run_demo(
    system: RouterLLM,
    prompts: tuple[str, ...] = DEMO_PROMPTS,
    max_new_tokens: int = 128,
    baseline: bool = True,
    on_result: Callable[[str, RoutedResult], None] | None = None,
) -> DemoRun:
    """Route every prompt, then (optionally) run the same prompts on the largest model."""
    requests = [GenerationRequest(p, max_new_tokens=max_new_tokens) for p in prompts]
    routed = []
    for req in requests:
        routed.append(system.generate(req, tag="demo"))
        if on_result:
            on_result("routed", routed[-1])
    largest_runs = []
    if baseline:
        # Start the baseline cold too, so both runs pay for loading their models.
        system.manager.close()
        largest = create_router("largest", system.config.models)
        for req in requests:
            largest_runs.append(system.generate(req, router=largest, tag="demo-baseline"))
            if on_result:
                on_result("baseline", largest_runs[-1])
    return DemoRun(routed, largest_runs)
