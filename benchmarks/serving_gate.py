"""The gated cascade served: a gate trained on some problems of a ``routerllm humaneval``
run serves the others through ``RouterLLM.generate``, with the real models.

The run's problems are split into cross-validation folds as the experiment splits
them (``--folds``, ``--seed``); the gate is trained on every fold but ``--fold``
(``gate_from_run(..., only=...)``, what ``routerllm train-gate`` does on all), and
each held-out problem is then asked twice in this process, in the run's prompting
style: once of the heavy model alone (direct-heavy, the peer), once through the
serving cascade with the gate (the medium model answers, its answer is checked on
the prompt's examples, an unverified one goes to the heavy model where the gate
lets it: a failed one, or with ``--raw``, as the experiment does, a function
stub's without examples). Every answer is run on the problem's hidden tests.
Printed: pass@1 and
measured energy of direct-heavy, of the gated cascade and of the ungated cascade
(the gated one's answers, with the heavy model's answer wherever the check failed),
as shares of direct-heavy's energy measured in this same run; and whether serving
made the experiment's decisions (the same answers as the run stored, the same
gate decisions as the gate makes on the run's stored states). With ``--raw`` each
problem is sent as its bare prompt, as ``routerllm route "$(cat task.py)"`` sends
it, and the system asks it as a function stub in each model's code style
(``routerllm/stubs.py``); with ``--as-written`` too, the bare prompt goes to the
models as it is (``generation.complete_stubs`` off, the chat template alone, at
temperature 0): states the gate was not trained on.

    .venv/bin/python benchmarks/serving_gate.py --run runs/humaneval [--fold 0] [--budget 0.7] [--raw [--as-written]]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from routerllm.backends.base import GenerationRequest
from routerllm.carbon.meter import create_meter
from routerllm.cli_args import (
    GATE_FOLDS_RANGE,
    DefaultsHelpFormatter,
    count_arg,
    gate_folds_arg,
    positive_number,
    seed_arg,
)
from routerllm.config import load_config
from routerllm.eval.codegen import CHAT_STYLE, build_request, extract_completion, style_for
from routerllm.eval.cross_validation import fold_ids
from routerllm.eval.humaneval_run import problems_subset
from routerllm.eval.result_store import ResultStore
from routerllm.eval.sandbox import check_problem
from routerllm.eval.transfer import gate_from_run
from routerllm.exceptions import RouterLLMError
from routerllm.system import RouterLLM


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter
    )
    ap.add_argument("--run", required=True, help="a routerllm humaneval run (with prompt states)")
    ap.add_argument("--problems", help="the run's problem file, if not the packaged HumanEval")
    ap.add_argument("--fold", type=int, default=0, help="the held-out fold")
    # train-gate's folds: the gate is trained as train-gate trains it, on all folds but one
    ap.add_argument("--folds", type=gate_folds_arg, default=5, help=f"the experiment's folds, {GATE_FOLDS_RANGE}")  # fmt: skip
    ap.add_argument("--seed", type=seed_arg, default=0)
    ap.add_argument("--budget", type=positive_number, default=0.7)
    ap.add_argument("--limit", type=count_arg, default=None, help="serve only the first N held out")
    ap.add_argument(
        "--raw",
        action="store_true",
        help="send each problem's bare prompt, as `routerllm route` does, not a request "
        "built in the run's style",
    )
    ap.add_argument(
        "--as-written",
        action="store_true",
        help="with --raw: the bare prompt goes to the models as it is (the chat template alone, "
        "the config's generation settings at temperature 0), not as a function stub",
    )
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    if args.as_written and not args.raw:
        ap.error("--as-written goes with --raw")
    if not 0 <= args.fold < args.folds:  # another serves nothing, its gate trained on every problem
        ap.error(f"--fold: 0 to {args.folds - 1}, one of the --folds {args.folds}")

    config = load_config("local")
    ladder = [m.name for m in config.models_by_size()]
    medium, heavy = ladder[len(ladder) // 2], ladder[-1]
    try:
        problems = problems_subset(None, args.seed, args.problems, config.limits.max_prompt_chars)
        path = Path(args.run) / "results.sqlite"
        if not path.is_file():
            raise RouterLLMError(f"--run {args.run}: no results.sqlite there; give a humaneval run")
        store = ResultStore(path, read_only=True, option="--run")  # an input: never written
        try:
            recorded = [t for t, _, _ in store.problems()]
            stored = {m: store.completions(m) for m in (medium, heavy)}
            first = store.outcomes(medium)
            states = store.prompt_states(medium, recorded)
        finally:
            store.close()
        by_id = {p.task_id: p for p in problems}
        if missing := [t for t in recorded if t not in by_id]:
            raise RouterLLMError(
                f"--run {args.run}: {len(missing)} of its problems ({missing[0]}, ...) are not in "
                f"{args.problems or 'the packaged HumanEval'}; give --problems the run's problem file"
            )
        problems = [by_id[t] for t in recorded]  # the run's order, as the experiment folds it
        fold = fold_ids(len(problems), args.folds, args.seed)
        train = {p.task_id for p, f in zip(problems, fold, strict=True) if f != args.fold}
        held = [i for i, f in enumerate(fold) if f == args.fold][: args.limit]
        meter = create_meter(config.carbon)
        try:  # the checks measured as train-gate measures them
            gate = gate_from_run(args.run, ladder, args.budget, args.folds, args.seed, train, meter)
        finally:
            meter.close()
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"gate {medium} -> {heavy}, trained on {len(train)} problems, budget {args.budget:.0%}; "
          f"serving the {len(held)} problems of fold {args.fold}", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="serving-gate-") as scratch:
        work = Path(scratch)
        config.generation.temperature = 0.0
        config.generation.complete_stubs = not args.as_written
        config.log.path = str(work / "requests.sqlite")
        config.carbon.output_dir = str(work / "carbon")
        config.cascade.enabled = True
        config.cascade.gate = str(gate.save(work / "gate"))
        rows = []
        start = time.perf_counter()
        with RouterLLM(config) as system:
            for i in held:
                p = problems[i]
                request = build_request(p, style_for(medium))
                assert build_request(p, style_for(heavy)) == request  # one style for both
                if args.raw:
                    request = GenerationRequest(p.prompt)
                direct = system.generate(request, model=heavy, tag="direct-heavy")
                served = system.generate(request, model=medium, tag="gated-cascade")
                row: dict[str, object] = {"task_id": p.task_id}
                for name, r in (("direct", direct), ("served", served)):
                    text, style = r.text, style_for(r.model)
                    if args.as_written:
                        style = CHAT_STYLE
                    elif args.raw:  # the completed function: the model wrote what follows the stub
                        assert text.startswith(p.prompt), "a stub's answer starts with the stub"
                        text = text[len(p.prompt) :]
                    completion = extract_completion(p, text, style)
                    row[name] = {
                        "model": r.model,
                        "passed": check_problem(p, completion).status == "passed",
                        "kwh": r.components["llm_inference"].energy_kwh,
                        "router_kwh": r.components["router_inference"].energy_kwh,
                        "same_as_run": completion == stored[r.model][p.task_id],
                    }
                reason = served.reason
                row["failed_check"] = f"{medium}'s answer failed" in reason
                weighed = row["failed_check"] or f"{medium}'s answer could not be checked" in reason
                row["escalated"] = served.model == heavy
                if weighed and states is not None and not args.as_written:
                    # the gate's decision on the run's stored state and tokens of this answer
                    o = first[p.task_id]
                    row["offline_gate"] = gate.decide(tuple(states[i]), o.prompt_tokens, o.completion_tokens).escalate  # fmt: skip
                rows.append(row)
                print(f"{p.task_id}: direct {row['direct']['passed']}, served by {served.model} "
                      f"{row['served']['passed']} | {reason[-140:]}", flush=True)  # fmt: skip
        wall = time.perf_counter() - start
        report(rows, wall, args)
        return 0


def report(rows: list[dict], wall: float, args: argparse.Namespace) -> None:
    n = len(rows)
    d_kwh = sum(r["direct"]["kwh"] for r in rows)
    gated_kwh = sum(r["served"]["kwh"] + r["served"]["router_kwh"] for r in rows)
    # ungated: also the heavy model's answer (as measured for direct-heavy) where withheld
    withheld = [r for r in rows if r["failed_check"] and not r["escalated"]]
    ungated_kwh = gated_kwh + sum(r["direct"]["kwh"] for r in withheld)
    ungated_pass = sum(
        r["direct"]["passed"] if r["failed_check"] else r["served"]["passed"] for r in rows
    )
    figures = {
        "problems": n,
        "direct-heavy": {"pass@1": sum(r["direct"]["passed"] for r in rows) / n, "kwh": d_kwh},
        "cascade (ungated)": {
            "pass@1": ungated_pass / n,
            "kwh": ungated_kwh,
            "escalated": sum(r["failed_check"] for r in rows),
        },  # fmt: skip
        "gated cascade (served)": {
            "pass@1": sum(r["served"]["passed"] for r in rows) / n,
            "kwh": gated_kwh,
            "escalated": sum(r["escalated"] for r in rows),
        },  # fmt: skip
        "answers as stored in the run": sum(
            r["direct"]["same_as_run"] + r["served"]["same_as_run"] for r in rows
        ),
        "answers compared": 2 * n,
        "gate decisions as on the stored states": sum(
            r["offline_gate"] == r["escalated"] for r in rows if "offline_gate" in r
        ),
        "gate decisions": sum("offline_gate" in r for r in rows),
        "wall_s": wall,
    }
    asked = (
        "bare prompts, as written (chat template alone)"
        if args.as_written
        else "bare prompts, asked as function stubs"
        if args.raw
        else "requests built in the run's style"
    )
    print(f"\n{n} held-out problems (fold {args.fold} of {args.folds}, seed {args.seed}), "
          f"{asked}, budget {args.budget:.0%}, {wall:.0f} s")  # fmt: skip
    print("| system | pass@1 | generation + router kWh | share of direct-heavy | escalated |")
    print("|---|---|---|---|---|")
    for name in ("direct-heavy", "cascade (ungated)", "gated cascade (served)"):
        f = figures[name]
        print(f"| {name} | {f['pass@1']:.3f} | {f['kwh']:.3e} | {f['kwh'] / d_kwh:.1%} | "
              f"{f.get('escalated', '-')} |")  # fmt: skip
    print(f"answers identical to the run's stored ones: {figures['answers as stored in the run']}"
          f" of {figures['answers compared']}; gate decisions as on the run's stored states: "
          f"{figures['gate decisions as on the stored states']} of {figures['gate decisions']}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, **figures}, indent=2), encoding="utf-8"
        )


if __name__ == "__main__":
    raise SystemExit(main())
