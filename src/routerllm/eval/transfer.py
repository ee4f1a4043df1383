"""Another problem set's run as training data for the experiment's routers and gate.

``routerllm humaneval --train-on DIR`` adds the problems of an earlier run in
``DIR`` (e.g. MBPP, run with ``--problems mbpp.jsonl --out DIR``) to the training
problems of every cross-validation fold; they are never tested. With
``--folds 1`` they are the only training problems and every problem of this run
is a test problem: a router or gate designed and trained on one benchmark,
judged on another it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routerllm.eval.humaneval_run import ResultStore
from routerllm.exceptions import RouterLLMError


@dataclass(frozen=True)
class TrainingRun:
    """What an earlier run in ``source`` measured, in ladder order: training data only."""

    source: str
    task_ids: list[str]
    prompts: list[str]
    entry_points: list[str]
    scores: np.ndarray  # (e, m) passed, per model
    energy: np.ndarray  # (e, m) generation kWh, per model
    medium_tokens: np.ndarray  # (e, 2) the medium model's prompt and answer tokens
    medium_completions: list[str]
    medium_states: np.ndarray | None  # (e, d) its hidden states of the prompts, if stored

    def __len__(self) -> int:
        return len(self.task_ids)

    def failed_examples(self) -> np.ndarray:
        """Whether the medium model's answer fails its prompt's own examples (the
        cascade's check), per problem."""
        from routerllm.eval.prompt_examples import verify_completion

        verdicts = [
            verify_completion(p, e, c).verdict
            for p, e, c in zip(
                self.prompts, self.entry_points, self.medium_completions, strict=True
            )
        ]
        return np.array([v == "failed" for v in verdicts], dtype=bool)


def load_training_run(
    run_dir: str | Path, ladder: list[str], medium: str, exclude: set[str]
) -> TrainingRun:
    """The run stored in ``run_dir`` (its ``results.sqlite``), which must hold every
    model of ``ladder`` on every one of its problems; problems whose task_id is in
    ``exclude`` (this run's own) are refused, so nothing is both trained and tested."""
    path = Path(run_dir) / "results.sqlite"
    if not path.is_file():
        raise RouterLLMError(
            f"--train-on {run_dir}: no results.sqlite there; make that run first "
            f"(routerllm humaneval --problems FILE --out {run_dir})"
        )
    store = ResultStore(path)
    try:
        problems = store.problems()
        if not problems:
            raise RouterLLMError(
                f"--train-on {run_dir}: the run does not record its prompts (an older RouterLLM "
                f"made it); run the same routerllm humaneval command on it again (nothing is "
                f"regenerated) to record them"
            )
        ids = [t for t, _, _ in problems]
        if shared := sorted(set(ids) & exclude):
            raise RouterLLMError(
                f"--train-on {run_dir}: {len(shared)} of its problems are also in this run "
                f"({', '.join(shared[:3])}...); train on another problem set"
            )
        outcomes = {m: store.outcomes(m) for m in ladder}
        if absent := [m for m in ladder if not outcomes[m]]:
            raise RouterLLMError(
                f"--train-on {run_dir}: it was made with other models "
                f"({', '.join(store.models()) or 'none'}) "
                f"and has no generations of {', '.join(absent)}; train on a run of this "
                f"config's ladder"
            )
        for m in ladder:
            if missing := [t for t in ids if t not in outcomes[m]]:
                raise RouterLLMError(
                    f"--train-on {run_dir}: it has no generations of {m} for {len(missing)} of its "
                    f"{len(ids)} problems; finish that run first (the same command resumes it)"
                )
        completions = store.completions(medium)
        return TrainingRun(
            source=str(run_dir),
            task_ids=ids,
            prompts=[p for _, p, _ in problems],
            entry_points=[e for _, _, e in problems],
            scores=np.array([[float(outcomes[m][t].passed) for m in ladder] for t in ids]),
            energy=np.array([[outcomes[m][t].gen_kwh for m in ladder] for t in ids]),
            medium_tokens=np.array(
                [
                    [outcomes[medium][t].prompt_tokens, outcomes[medium][t].completion_tokens]
                    for t in ids
                ]
            ),
            medium_completions=[completions[t] for t in ids],
            medium_states=store.prompt_states(medium, ids),
        )
    finally:
        store.close()
