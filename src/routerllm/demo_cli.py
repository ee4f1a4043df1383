"""``routerllm demo``: the built-in prompts routed, then sent to the largest model as a
measured baseline, with carbon figures; ``--interactive`` routes the user's own prompts.
Registered on the main parser by ``routerllm.cli``."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from routerllm.cli import (
    EXIT_TERMINATED,
    _stdin,
    _system,
    cut_by_the_terminal,
    json_text,
    requests_answered,
    require_stdout,
)
from routerllm.cli_args import (
    MAX_NEW_TOKENS_RANGE,
    max_new_tokens_arg,
    whole_number_arg,
    whole_range,
)
from routerllm.exceptions import (
    BudgetExceededError,
    PromptError,
    RequestLogError,
    RouterLLMError,
    csv_only_warning,
)
from routerllm.route_cli import (
    ROUTER_HELP,
    TerminalText,
    _answer_text,
    _result_lines,
    answer_figures,
)

#: The most pairs of runs ``--repeats`` makes: each pair is two whole demos.
MAX_REPEATS = 100


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="route built-in prompts to the local models, with carbon figures",
        epilog="details: README.md, 'What the demo shows' and 'Command line'",
    )
    demo.add_argument(
        "--max-new-tokens",
        type=max_new_tokens_arg,
        default=128,
        help=f"most tokens to generate for each answer, {MAX_NEW_TOKENS_RANGE} (default: 128)",
    )
    demo.add_argument(
        "--no-baseline", action="store_true", help="skip the always-largest comparison run"
    )
    demo.add_argument("--router", help=ROUTER_HELP)
    demo.add_argument(
        "--repeats",
        # at most MAX_REPEATS: a few zeros too many made pair after pair of runs until Ctrl-C
        type=whole_number_arg(1, MAX_REPEATS),
        default=1,
        metavar="N",
        help="make both runs N times and give the spread of the comparison, "
        f"{whole_range(1, MAX_REPEATS)}; not with --no-baseline or --interactive (default: 1)",
    )
    demo.add_argument(
        "--interactive",
        action="store_true",
        help="route your own prompts, one a line from stdin, until :quit or end of input",
    )
    demo.set_defaults(func=cmd_demo, interrupted=requests_answered)


def _faster(speedup: float) -> str:
    if speedup <= 0:  # nothing timed
        return "speed not measured"
    ratio, word = (speedup, "faster") if speedup >= 1 else (1 / speedup, "slower")
    if f"{ratio:.1f}" == "1.0":  # "1.0x slower" says a difference the figure does not show
        return "about as fast"
    return f"{ratio:.1f}x {word}"


def cmd_demo(args: argparse.Namespace) -> int:
    from routerllm.answer_logging import refusal_log_errors_said_by_caller
    from routerllm.carbon.report import priced_by_tokens, summarize
    from routerllm.demo import DEMO_PROMPTS, run_demo, spread

    if args.repeats > 1 and (args.no_baseline or args.interactive):
        raise RouterLLMError(
            f"--repeats {args.repeats}: it makes the routed run and the always-largest "
            f"baseline N times to compare them: not with "
            f"{'--no-baseline' if args.no_baseline else '--interactive'}"
        )
    require_stdout("the answers would be printed")
    args.answered = 0  # what its Ctrl-C line says was logged (``requests_answered``)
    stdin = _stdin("give the prompts on stdin, one a line") if args.interactive else None
    # a refusal's row the log (or its emissions CSV) could not take: said by the demo's
    # own line (error: or warning:), not again by the library's warning
    with _system(args) as system, refusal_log_errors_said_by_caller():
        if stdin is not None:
            return _interactive(args, system, stdin)
        available = system.available_models()
        if not args.json:
            print(f"RouterLLM demo: config {system.config.source}, router {system.router.name!r}")
            print(
                f"carbon: {system.meter.method} (country {system.config.carbon.country_iso_code})"
            )
            print(f"models available here: {', '.join(available) or 'none'}")
            start = (
                "the routed run starts with no model loaded and pays for loading the models "
                "it uses, after a warm-up not charged to it"
                if args.no_baseline
                else "both runs start with no model loaded and pay for loading the models "
                "they use, after a warm-up charged to neither"
            )
            print(f"{start} (each local model loaded once and asked for one token)\n")
        counter = {"routed": 0, "baseline": 0}

        def show(kind: str, result: Any) -> None:
            counter[kind] += 1
            args.answered += 1
            if args.json:
                return
            if kind == "baseline" and counter[kind] == 1:
                print("\nSame prompts, everything sent to the largest model (measured baseline):")
            tier = system.config.model(result.model).tier
            lines = _result_lines(counter[kind], result, tier)
            print("\n".join(lines if kind == "routed" else lines[:1]), flush=True)

        run = run_demo(
            system, DEMO_PROMPTS, args.max_new_tokens, not args.no_baseline, show,
            repeats=args.repeats,
        )  # fmt: skip
        priced = priced_by_tokens(system.config.models)  # their $0 is known, measured or not
        routed = summarize(run.spent(), token_priced=priced)
        payload: dict[str, Any] = {
            "routed": [r.to_dict() for r in run.routed],
            "baseline": [r.to_dict() for r in run.baseline],
            "summary": routed.as_dict(),
        }
        # a run stopped at its first request: no table of zeros, as in the interactive one
        lines = ["", "Summary of the routed run", *_summary_lines(routed, "no request answered")]
        if run.warm_up is not None:
            payload["warm_up"] = run.warm_up.as_dict()
            lines.append(_warm_up_line(run.warm_up))
        comparison = run.comparison()
        if comparison is not None:
            payload["comparison"] = comparison
            payload["baseline_summary"] = summarize(run.baseline, token_priced=priced).as_dict()
            lines += _comparison_lines(comparison)
            if args.repeats > 1:
                payload["repeats"] = {"asked": args.repeats, "made": len(run.repeats), **spread(run.repeats), "runs": list(run.repeats)}  # fmt: skip
                if run.failed == "repeat":
                    payload["repeats"]["failed"] = str(run.error)
                lines.append(_spread_line(args.repeats, run.repeats, failed=run.failed == "repeat"))
        if run.routed_refused:  # what was answered stands; no baseline, no comparison
            payload["routed_refused"] = run.routed_refused
            lines.append(
                f"\nthe routed run stopped at request {len(run.routed) + 1} of "
                f"{len(DEMO_PROMPTS)}, refused by the budgets: {run.routed_refused}"
                + ("" if args.no_baseline else " (the always-largest baseline was not run)")
            )
        if run.baseline_refused:  # the routed run stands; without a whole baseline, no comparison
            payload["baseline_refused"] = run.baseline_refused
            lines.append(
                f"\nthe always-largest baseline stopped after {len(run.baseline)} of "
                f"{len(run.routed)} requests, refused by the budgets: {run.baseline_refused} "
                f"(--no-baseline skips it)"
            )
        if run.failed in ("routed", "baseline"):  # what was answered stands; the error last
            payload[f"{run.failed}_failed"] = str(run.error)
            done, of = (len(run.routed), len(DEMO_PROMPTS)) if run.failed == "routed" else (len(run.baseline), len(run.routed))  # fmt: skip
            lines.append(
                f"\nthe {'routed run' if run.failed == 'routed' else 'always-largest baseline'} "
                f"stopped after {done} of {of} requests, at a request that failed (its error on "
                f"stderr)"
                + (
                    "; the always-largest baseline was not run"
                    if run.failed == "routed" and not args.no_baseline
                    else ""
                )  # fmt: skip
            )
        lines.append(
            f"\nlogged to {system.config.log.path} and {system.config.carbon.output_dir}/emissions.csv"
        )
        if args.json:
            print(json_text(payload, indent=2))
        else:
            print("\n".join(lines), flush=True)
        if run.unmirrored or run.refusal_unmirrored:  # in the log: a warning, status 0
            warning = _unmirrored_text(run.unmirrored, run.refusal_unmirrored)
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        if run.error is not None:  # after what was measured: "error: ..." and status 2
            raise run.error
    return 0


#: The tag of the requests asked in ``demo --interactive`` (the request log's ``tag``).
INTERACTIVE_TAG = "interactive"

#: A line that looks like a session command (``:help``, ``:q``, ``:exit``): only ``:quit``
#: is one; the others are refused, not sent to a model as a prompt and paid for.
COMMAND_LIKE = re.compile(r":[A-Za-z]+")


def _interactive(args: argparse.Namespace, system: Any, stdin: TextIO) -> int:
    """``demo --interactive``: each line read is a prompt, routed and answered with its
    carbon figures, until end of input, ``:quit`` or Ctrl-C while it waits for a prompt
    (or SIGTERM: status 143); then the session's totals (Ctrl-C during an answer stops
    that answer: ``ctrl_c_stops_the_answer``); on a terminal, an answer is shown as it
    comes (``TerminalText``). A
    prompt the system refuses (too long, over a budget, a model that fails) is reported
    in one line and the session goes on."""
    from routerllm.backends.interrupts import Terminated
    from routerllm.carbon.report import priced_by_tokens, summarize

    terminal = stdin.isatty()
    ask = terminal and not args.json
    if not args.json:
        print(f"RouterLLM interactive demo: router {system.router.name!r}, models "
              f"{', '.join(system.available_models()) or 'none'}; one prompt a line, "
              f":quit or Ctrl-D ends", flush=True)  # fmt: skip
    results: list[Any] = []
    first = True
    status = 0
    while True:
        if ask:
            print("> ", end="", flush=True)
        try:
            line = stdin.readline()
        except KeyboardInterrupt as e:  # waiting for a prompt: the session ends
            if not args.json:  # off the "^C" line; --json stays one object a line
                print(flush=True)
            status = EXIT_TERMINATED if isinstance(e, Terminated) else 0  # SIGTERM's
            break
        if first:  # a byte-order mark (a Windows editor's) is not the prompt's, as in route -
            line, first = line.removeprefix("\ufeff"), False
        # no newline: the input ended after this line (on a terminal, Ctrl-D typed at
        # its end, twice: the first sends the line, the second ends it), its last prompt
        last = not line.endswith("\n")
        if last and ask:  # Ctrl-D echoes no newline: what follows starts off the typed line
            print(flush=True)
        if line.strip().lower() == ":quit":
            break
        if terminal and (cut := cut_by_the_terminal(line, stdin, "the line")):
            _print_error(args, PromptError(cut, "prompt"))
        elif COMMAND_LIKE.fullmatch(line.strip()):  # ":q", ":exit": no prompt to pay for
            _print_error(args, PromptError(
                f"{line.strip()} is not a command: :quit (or Ctrl-D) ends the session; "
                f"a prompt that is one word after ':' goes through routerllm route", "prompt"))  # fmt: skip
        elif line.strip():
            _answer(args, system, line, results)
        if last:
            break
    summary = summarize(results, token_priced=priced_by_tokens(system.config.models))
    if args.json:
        print(json_text({"summary": summary.as_dict()}))
    else:  # a session that answered nothing says so: it printed nothing before
        print("\n".join(["Summary of the session", *_summary_lines(summary, "no prompt answered")]))
    return status


def _summary_lines(summary: Any, none: str) -> list[str]:
    """A run's or session's totals; ``none`` where it answered nothing (no table of
    zeros), with the requests the budgets refused once routed, whose routing it spent."""
    from routerllm.carbon.report_text import refused_lines, totals_lines

    if summary.totals.requests:
        return totals_lines(summary)
    return [none, *refused_lines(summary.refused)]


def _answer(args: argparse.Namespace, system: Any, line: str, results: list[Any]) -> None:
    """``line`` asked as a prompt and its answer printed, added to ``results``; a prompt
    the system refuses, one ``error:`` line."""
    from routerllm.backends.base import GenerationRequest
    from routerllm.backends.interrupts import ctrl_c_stops_the_answer
    from routerllm.carbon.log_rows import REFUSED

    # on a terminal, the answer's text is shown as it comes (RouterLLM gives a cached or
    # a cascade's answer whole), its figures below it at the end
    live = TerminalText(_write) if not args.json and sys.stdout.isatty() else None
    # a line ends in "\r\n" from a Windows file: the "\r" is not the prompt's
    request = GenerationRequest(
        line.rstrip("\r\n"), max_new_tokens=args.max_new_tokens, on_text=live
    )
    error = None
    try:
        with ctrl_c_stops_the_answer() as pressed:
            result = system.generate(request, tag=INTERACTIVE_TAG)
    except RequestLogError as e:
        if e.result is None:
            _end_line(live)
            _print_error(args, e)
            return
        result, error = e.result, e  # paid for, not (wholly) logged: shown, then said
    except BudgetExceededError as e:
        _end_line(live)
        if e.result is not None:  # refused once routed: its routing, in the summary
            results.append(e.result)
        _print_error(args, e)
        if e.log_error is not None:  # its routing not logged: said as an answer's is
            _print_log_error(args, e.log_error, "refused request")
        return
    except RouterLLMError as e:
        _end_line(live)  # a failure mid-answer: its error below what was shown
        _print_error(args, e)
        return
    except KeyboardInterrupt:  # a second Ctrl-C: the session's line off what was shown
        _end_line(live)
        raise
    results.append(result)
    # the answers are numbered; the refused requests among ``results`` are not answers
    n = args.answered = sum(r.finish_reason != REFUSED for r in results)
    if args.json:
        print(json_text(result.to_dict()), flush=True)
    elif live is not None:
        live.end()
        figures = answer_figures(n, system, result, pressed())
        print("\n\n" + "\n".join(figures) + "\n", flush=True)
    else:
        print(_answer_text(n, system, result, pressed()) + "\n", flush=True)
    if error is not None:
        _print_log_error(args, error)


def _write(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def _end_line(live: TerminalText | None) -> None:
    """A line ended after an answer's text shown in part, before what is printed next."""
    if live is not None and live.shown:
        print(flush=True)


def _print_error(args: argparse.Namespace, error: RouterLLMError) -> None:
    print(json_text({"error": str(error)}) if args.json else f"error: {error}", flush=True)


def _print_log_error(
    args: argparse.Namespace, error: RequestLogError, what: str = "answer"
) -> None:
    """The session's line for a request whose row the log could not take (an error), or
    took while its emissions CSV could not (a warning: no row lost; until 2026-12-07 an
    ``error:`` line too)."""
    if not error.logged:
        _print_error(args, error)
        return
    text = csv_only_warning(error, what)
    print(json_text({"warning": text}) if args.json else f"warning: {text}", flush=True)


def _unmirrored_text(
    errors: Sequence[RequestLogError], refusal: RequestLogError | None = None
) -> str:
    """The demo's one warning for its answers (and the request the budgets refused once
    routed, ``refusal``) the log took but its emissions CSV did not."""
    from routerllm.carbon.report_text import counted

    if len(errors) + (refusal is not None) == 1:
        return csv_only_warning(refusal, "refused request") if refusal else csv_only_warning(errors[0])  # fmt: skip
    what = " and ".join(
        ([counted(len(errors), "answer")] if errors else [])
        + (["the refused request"] if refusal else [])  # fmt: skip
    )
    last = refusal if refusal is not None else errors[-1]
    return f"the emissions CSV could not record {what} (they are in the request log): {last}"


def _warm_up_line(warm_up: Any) -> str:
    from routerllm.carbon.units import energy

    spent = f", {energy(warm_up.energy_kwh)}" if warm_up.energy_kwh else ""
    return f"warm-up before the runs, in neither's figures: {warm_up.duration_s:.1f} s{spent}"


def _spread_line(asked: int, pairs: Sequence[dict[str, Any]], failed: bool = False) -> str:
    """The comparison over repeated pairs of runs: each figure's median and range;
    ``failed``: a request of the next pair failed (else the budgets stopped it)."""
    from routerllm.demo import spread

    figures = spread(pairs)
    stopped = "a request of the next failed, its error on stderr" if failed else "the budgets stopped one"  # fmt: skip
    made = f"{len(pairs)} pairs of runs" + (f" (of {asked} asked: {stopped})" if len(pairs) < asked else "")  # fmt: skip

    def pct(key: str, when: str) -> str:
        f = figures[key]
        if f is None:
            return f"CO2 not measured {when}"
        more = ", below 0: more" if f["min"] < 0 else ""
        return f"CO2 saved median {f['median']:.0%} ({f['min']:.0%} to {f['max']:.0%}{more}) {when}"

    speed = figures["speedup"]
    faster = f"speedup median {speed['median']:.1f}x ({speed['min']:.1f}x to {speed['max']:.1f}x)" if speed else "speed not measured"  # fmt: skip
    return f"over {made}, the first above: {pct('co2_saved_fraction', 'including model loading')}, {pct('co2_saved_fraction_warm', 'with models kept warm')}; {faster}"  # fmt: skip


def _comparison_lines(c: dict[str, Any]) -> list[str]:
    from routerllm.carbon.report_text import fixed, less
    from routerllm.carbon.units import co2, energy

    r, b = c["routed"], c["always_largest"]
    # energy and CO2 in the units that keep them readable (units), a time too small for
    # its decimals in scientific notation (fixed): never a figure spent shown as 0
    rows: list[tuple[str, str, Callable[[Any], str]]] = [
        ("energy", "energy_kwh", energy),
        ("CO2", "co2_kg", co2),
        ("energy, models warm", "warm_energy_kwh", energy),
        ("CO2, models warm", "warm_co2_kg", co2),
        ("time s", "time_s", lambda v: fixed(v, 1)),
        ("output tokens", "completion_tokens", "{}".format),
    ]
    lines = [
        "",
        f"{'versus always-largest (measured)':<34}{'routed':>14}{'always ' + c['largest_model']:>28}",
    ]
    for label, key, fmt in rows:
        cells = [fmt(v) if v is not None else "not measured" for v in (r[key], b[key])]
        lines.append(f"{label:<34}{cells[0]:>14}{cells[1]:>28}")

    def saved(fraction: float | None, when: str) -> str:
        return f"{less(fraction, 'CO2')} {when}" if fraction is not None else f"CO2 not measured {when}"  # fmt: skip

    if c["co2_saved_fraction"] is None:  # nothing measured: no saving to state
        saving = "CO2 not measured (carbon tracking off)"
    else:
        saving = f"{saved(c['co2_saved_fraction'], 'including model loading')}, {saved(c['co2_saved_fraction_warm'], 'with models kept warm')}"  # fmt: skip
    lines.append(
        f"routing: {saving}, {_faster(c['speedup'])} "
        f"(quality not scored here; answers of the small models are often worse)"
    )
    return lines
