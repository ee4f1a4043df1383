"""HumanEval's answers and models' loads measured while other processes used more than
``CONTENDED_SHARE`` of the machine's CPU (``carbon/cpu_share.py``): the run's warnings of
them, results.json's ``contended_generations``, and a stored load measured again
(``--remeasure-contended``: :data:`REMEASURE_OPTION`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from routerllm.exceptions import RouterLLMError

if TYPE_CHECKING:
    from routerllm.carbon.meter import Measurement
    from routerllm.eval.result_store import ResultStore
    from routerllm.system import RouterLLM

#: The option of ``routerllm humaneval`` that generates and measures again the stored
#: answers and models' loads measured under contention.
REMEASURE_OPTION = "--remeasure-contended"


def contended_warning(model: str, task_id: str, share: float | None) -> str:
    """The run's one warning that an answer was measured while other processes used
    more than ``CONTENDED_SHARE`` of the machine's CPU (``share``)."""
    return _contended_text(
        f"{model}'s answer to {task_id} was generated", share,
        "report.md names every such answer", "generate and measure them again", "said once",
    )  # fmt: skip


def contended_load_warning(model: str, share: float | None) -> str:
    """The run's one warning that a model's load it stores was measured while other
    processes used more than ``CONTENDED_SHARE`` of the machine's CPU (``share``); the
    answers' warning (:func:`contended_warning`) is said once a run besides."""
    return _contended_text(
        f"{model}'s load was measured", share,
        "every system that loads it counts that load (its model_loading in results.json and "
        "report.md's component breakdown)",
        "load and measure again every load stored so", "said once a run for the loads",
    )  # fmt: skip


def _contended_text(what: str, share: float | None, named: str, again: str, once: str) -> str:
    from routerllm.carbon.cpu_share import CONTENDED_SHARE

    return (
        f"{what} while other processes used {share or 0.0:.0%} of the machine's CPU (above "
        f"{CONTENDED_SHARE:.0%}): its measured energy includes their work, and it ran "
        f"slower; {named}. Once the machine is quiet, run the same command with "
        f"{REMEASURE_OPTION} to {again} ({once})"
    )


def remeasured_load(system: RouterLLM, model: str) -> Measurement:
    """``model`` loaded to measure its load again, as a request to it loads it (the same
    meter and component: ``ModelCalls.measured_load``), then unloaded; a load that fails
    is a clear error (its stored load kept: nothing is written here)."""
    system.manager.unload(model)  # loaded already, it would measure no load
    try:
        loading = system.calls.measured_load(model)
    except RouterLLMError as e:
        raise RouterLLMError(
            f"{model} failed to load as {REMEASURE_OPTION} measured its load again ({e}); its "
            f"stored load is kept"
        ) from e
    system.manager.unload(model)
    return loading


def contended_generations(
    store: ResultStore, models: Sequence[str], task_ids: Sequence[str]
) -> dict[str, Any]:
    """results.json's ``contended_generations``: the reported generations measured while
    other processes used more than ``CONTENDED_SHARE`` of the machine's CPU (model,
    task_id, that share), and how many were stored without that share (not Linux, or
    stored before it was recorded)."""
    from routerllm.carbon.cpu_share import CONTENDED_SHARE, contended

    shares = store.others_cpu_shares(models, task_ids)
    return {
        "above_share": CONTENDED_SHARE,
        "generations": [
            {"model": m, "task_id": t, "others_cpu_share": share}
            for (m, t), share in shares.items()
            if contended(share)
        ],
        "not_recorded": sum(share is None for share in shares.values()),
    }
