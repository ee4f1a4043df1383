"""The rules router's and the math detection's decisions on English prompts, saved to a
file or compared with a saved one, and the rules router's time per prompt: what a change
to their word lists (``benchmarks/multilingual_routing.py``) does to English traffic.

The prompts: the demo's six, HumanEval's 164, 5,000 synthetic ones (seed 0) and, where
the outcome data is there (``--data-dir``), the LLMRouter questions and the RouterBench
MBPP prompts, train and test. Each prompt's decisions: the rules router's model on the
packaged ``local`` config, its score and the rules that fired, whether it is about code,
and the overrides' ``math``. ``--save`` writes them; ``--against`` a file saved before a
change prints, per set, how many prompts changed any decision and the first few that
did. The time: ``route_batch`` of all the prompts, ``--repeats`` times, in CPU ms a
prompt (the fastest and the median run; CPU time, which other work on a shared machine
stretches less than wall time) and the math detection's.

    .venv/bin/python benchmarks/rules_decisions.py [--save FILE] [--against FILE]
        [--data-dir ../shared/data] [--repeats 5] [--show 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from machine import machine_line
from outcome_data import DATASETS, add_data_dir_argument

from routerllm.cli_args import DefaultsHelpFormatter, count_arg
from routerllm.config import load_config
from routerllm.overrides import asks_for_math
from routerllm.routers.rules import RuleBasedRouter


def prompt_sets(data_dir: Path) -> dict[str, list[str]]:
    """Each set's English prompts, in file order (the outcome sets only where present)."""
    from routerllm.data.humaneval import load_humaneval
    from routerllm.data.outcome_files import load_outcomes
    from routerllm.data.synthetic import generate
    from routerllm.demo import DEMO_PROMPTS

    sets = {
        "demo": list(DEMO_PROMPTS),
        "humaneval": [p.prompt for p in load_humaneval()],
        "synthetic": [item.text for item in generate(5000, 0)],
    }
    for name, files in DATASETS.items():
        for file in files:
            if (data_dir / file).is_file():
                sets[f"{name} {Path(file).stem}"] = load_outcomes(data_dir / file).prompts
            else:
                print(f"no {data_dir / file}: its prompts left out (give --data-dir)")
    return sets


def decisions(router: RuleBasedRouter, prompts: list[str]) -> list[dict[str, object]]:
    """Each prompt's decisions (and its text, to tell a changed set from a changed rule)."""
    out = []
    for prompt, routed in zip(prompts, router.route_batch(prompts), strict=True):
        score, fired, is_code = router.analyse(prompt)
        out.append({
            "prompt": prompt, "model": routed.model, "score": score, "fired": fired,
            "code": is_code, "math": asks_for_math(prompt),
        })  # fmt: skip
    return out


def timing(router: RuleBasedRouter, prompts: list[str], repeats: int) -> dict[str, float]:
    """CPU ms a prompt: ``route_batch`` (fastest and median of ``repeats`` runs), math
    detection."""
    runs = []
    for _ in range(repeats):
        start = time.process_time()
        router.route_batch(prompts)
        runs.append((time.process_time() - start) * 1000 / len(prompts))
    start = time.process_time()
    for prompt in prompts:
        asks_for_math(prompt)
    math_ms = (time.process_time() - start) * 1000 / len(prompts)
    return {"route_min": min(runs), "route_median": statistics.median(runs), "math": math_ms}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--save", type=Path, help="write the decisions to this JSON file")
    ap.add_argument("--against", type=Path, help="compare with decisions saved before")
    add_data_dir_argument(ap)
    ap.add_argument("--repeats", type=count_arg, default=5, help="timed runs of route_batch")
    ap.add_argument("--show", type=int, default=5, help="changed prompts shown per set")
    args = ap.parse_args()
    saved = json.loads(args.against.read_text(encoding="utf-8")) if args.against else None
    router = RuleBasedRouter(load_config("local").models)
    sets = prompt_sets(Path(args.data_dir))
    now = {name: decisions(router, prompts) for name, prompts in sets.items()}
    print(machine_line())
    every = [p for prompts in sets.values() for p in prompts]
    times = timing(router, every, args.repeats)
    print(f"{len(every)} prompts: route_batch {times['route_min']:.3f} CPU ms a prompt (fastest of "
          f"{args.repeats}; median {times['route_median']:.3f}), math {times['math']:.3f} ms")  # fmt: skip
    changed_total = 0
    for name, rows in now.items():
        models = {m: sum(r["model"] == m for r in rows) for m in sorted({str(r["model"]) for r in rows})}  # fmt: skip
        line = f"{name}: {len(rows)} prompts, models {models}, math {sum(bool(r['math']) for r in rows)}"  # fmt: skip
        if saved is not None:
            before = saved.get(name)
            if before is None or [r["prompt"] for r in before] != [r["prompt"] for r in rows]:
                print(f"{line}; not in the saved file as they are now")
                continue
            changed = [(b, r) for b, r in zip(before, rows, strict=True) if b != r]
            changed_total += len(changed)
            line += f"; changed {len(changed)}"
            print(line)
            for b, r in changed[: args.show]:
                print(f"  {str(r['prompt'])[:90]!r}")
                for key in ("model", "score", "fired", "code", "math"):
                    if b[key] != r[key]:
                        print(f"    {key}: {b[key]} -> {r[key]}")
        else:
            print(line)
    if saved is not None:
        print(f"changed in all: {changed_total}")
    if args.save:
        args.save.write_text(json.dumps(now, ensure_ascii=False), encoding="utf-8")
        print(f"saved to {args.save}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
