"""``routerllm route``: one prompt routed and answered; how an answer is printed, as
``route`` and ``demo`` print it. Registered on the main parser by ``routerllm.cli``."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from routerllm.cli import (
    EXIT_INTERRUPTED,
    _stdin,
    _system,
    cut_by_the_terminal,
    emit,
    require_stdout,
)
from routerllm.cli_args import MAX_NEW_TOKENS_RANGE, ROUTERS_BY_NAME, max_new_tokens_arg
from routerllm.exceptions import PromptError, RequestLogError, RouterLLMError, csv_only_warning

#: ``--router`` of route, demo and serve.
ROUTER_HELP = (
    f"a router by name: {ROUTERS_BY_NAME}; one that learns (classifier, quality, ...) as "
    "saved in the config's router.path (default: the config's router)"
)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    route = sub.add_parser(
        "route",
        parents=[common],
        help="route and answer one prompt ('-' reads stdin)",
        epilog="examples: README.md, 'Command line'",
    )
    route.add_argument(
        "prompt",
        help="the prompt, quoted; '-' reads it from stdin (several lines, a long one); one "
        "that starts with '-' goes after '--'",
    )
    route.add_argument("--router", help=ROUTER_HELP)
    route.add_argument(
        "--model",
        help="skip routing: this model of the config answers (routerllm models lists them); "
        "not with --router",
    )
    route.add_argument(
        "--max-new-tokens",
        type=max_new_tokens_arg,
        default=None,
        help=f"most tokens to generate, {MAX_NEW_TOKENS_RANGE} (default: the config's "
        "generation.max_new_tokens; "
        "for a function stub, its code style's: 512 on the local ladder)",
    )
    route.add_argument(
        "--cascade",
        action="store_true",
        help="check a code answer on the request's own examples (sandboxed) and ask the next "
        "larger model when it fails them (config: cascade.enabled)",
    )
    route.add_argument(
        "--gate",
        metavar="DIR",
        help="the cascade with a saved escalation gate (routerllm train-gate): an unverified answer "
        "(failed, or to a function stub without examples) is escalated only where it is worth "
        "its energy (config: cascade.gate)",
    )
    route.add_argument(
        "--as-written",
        action="store_true",
        help="send a prompt that is a bare function stub as it is, not in each model's code "
        "style (config: generation.complete_stubs)",
    )
    route.set_defaults(func=cmd_route, interrupted=_answer_logged)


def _result_lines(index: int, result: Any, tier: str) -> list[str]:
    from routerllm.backends.quoted_text import one_line
    from routerllm.carbon.meter import (
        CACHED,
        CODECARBON_FAILED,
        NOT_MEASURED,
        TOKENS_FROM_TEXT,
        WITHOUT_FIGURES,
    )
    from routerllm.carbon.report_text import fixed, not_measured_text
    from routerllm.carbon.units import co2, dollars, energy

    # carbon tracking off measures nothing (method "none"): its zeros are not 0 g of CO2;
    # a cached answer's unspent parts (method "cache") say nothing of its routing's
    # and a part CodeCarbon failed on logged 0 kWh, which is no measurement either
    measured = {n: m.method not in (NOT_MEASURED, CODECARBON_FAILED) for n, m in result.components.items()}  # fmt: skip
    generation = result.components.get("llm_inference")
    # a remote endpoint that did not say how many tokens it generated: its counts estimated
    # (a cascade's methods joined, the answering model's last)
    last = generation.method.split("+")[-1] if generation is not None else ""
    estimated = last in TOKENS_FROM_TEXT
    # a remote model's without per-token figures: its tokens are counted (or estimated),
    # its energy not
    figureless = last in WITHOUT_FIGURES
    tokens = f"{result.prompt_tokens} in / {result.completion_tokens} out tokens" + (
        " (estimated: not reported by the endpoint)" if estimated else ""
    )
    others = [n for n, m in result.components.items() if m.method not in (CACHED, *WITHOUT_FIGURES)]
    if any(measured[n] for n in others):
        spent = f"{energy(result.energy_kwh)}  CO2 {co2(result.co2_kg)}"
        spent += " (and the generation's, not known)" if figureless else ""
        if failed := [n for n in others if result.components[n].method == CODECARBON_FAILED]:
            spent += f" (and {', '.join(failed)}'s, not measured: CodeCarbon failed)"
    elif figureless:
        spent = "energy and CO2 not known"
    else:
        spent = not_measured_text(m.method for m in result.components.values())
    # as report's totals say it (and --json's cost_usd, null where this is not measured)
    cost = f"cost {dollars(result.cost_usd)}" if result.cost_known else "cost not measured"
    head = (
        f"[{index}] {tier:<6} {result.model:<20} conf {result.confidence:.2f}  "
        f"{tokens}  {fixed(result.latency_s, 2)} s  {spent}  {cost}"
    )
    # a routing of 1 ms is not "0.00 s" beside its energy: fixed shows it 1.00e-03 s
    parts = "  ".join(
        f"{name}: {fixed(m.duration_s, 2)} s "
        + (
            "energy not known (no energy figures)"
            if m.method in WITHOUT_FIGURES
            else f"{energy(m.energy_kwh)} {co2(m.co2_kg)}"
            if measured[name]
            else "not measured (CodeCarbon failed)"
            if m.method == CODECARBON_FAILED
            else "not measured"
        )
        for name, m in result.components.items()
    )
    if (p := result.predicted) is not None and p.model == result.model:
        parts += f"  (predicted {energy(p.energy_kwh)}, CO2 {co2(p.co2_kg)})"
    # measured or estimated, in the words of demo, serve and report; a cached part spent
    # nothing, and one not measured or of unknown energy is said so above
    said = {CACHED, NOT_MEASURED, *WITHOUT_FIGURES}
    if methods := sorted({m.method for m in result.components.values()} - said):
        parts += f"  carbon method: {', '.join(methods)}"
        if result.grid is not None:  # the grid its CO2 is of
            parts += f"  grid: {result.grid.label}"
    reply = one_line(result.text)  # a summary line: its controls escaped, never raw
    reply = reply[:150] + ("..." if len(reply) > 150 else "")
    # its energy may hold other processes' work (carbon/cpu_share.py), as report says it
    busy = [f"     measured under contention: other processes used {result.others_cpu_share:.0%} of the machine's CPU; its energy and time may be overstated"] if result.contended else []  # fmt: skip
    return [head, f"     why: {result.reason}", f"     {parts}", *busy, f"     -> {reply}"]


def cmd_route(args: argparse.Namespace) -> int:
    from routerllm.backends.base import GenerationRequest
    from routerllm.backends.interrupts import CANCELLED, ctrl_c_stops_the_answer
    from routerllm.request_checks import checked_prompt

    if args.model and args.router:  # else --router was ignored, or refused if untrained
        raise RouterLLMError(
            f"--model names the model that answers, without routing: --router {args.router} "
            f"would not be used; give one of them"
        )
    require_stdout("the answer would be printed")
    if args.prompt == "-":
        # a byte-order mark (a file saved by a Windows editor) is not part of the prompt:
        # kept, it hid the code from the router and a function stub from its check
        stdin = _stdin("give the prompt on stdin, or as the argument")
        prompt = stdin.read().removeprefix("\ufeff")
        if stdin.isatty():  # typed or pasted: a line the terminal cut is not the prompt
            for n, line in enumerate(prompt.split("\n"), 1):
                if cut := cut_by_the_terminal(line, stdin, f"line {n}"):
                    raise PromptError(cut, "prompt")
    else:
        prompt = args.prompt
    # An empty or binary prompt is refused before the system is built: building it made
    # logs/ and started CodeCarbon (3 s) for a mistake; its length, once the config is read.
    checked_prompt(prompt, sys.maxsize)
    with _system(args, prompt) as system:
        req = GenerationRequest(prompt, max_new_tokens=args.max_new_tokens)
        logged = system.log.count()
        unmirrored: RequestLogError | None = None
        try:
            # Ctrl-C stops the answer, which is kept (logged as cancelled with its energy)
            with ctrl_c_stops_the_answer() as pressed:
                result = system.generate(req, model=args.model)
        except KeyboardInterrupt:  # a second Ctrl-C, or SIGTERM: logged already, or not
            args.answered = int(system.log.count() > logged)
            raise
        except RequestLogError as e:
            if e.result is None:
                raise
            if not e.logged:  # paid for, not logged: printed, then the error
                _print_routed(args, system, e.result, pressed())
                raise
            # in the log (the budgets and the report have it), its CSV rows added by the
            # next process that opens it: a warning, status 0 (until 2026-12-07 status 2)
            result, unmirrored = e.result, e
        args.answered = 1
        _print_routed(args, system, result, pressed())
        if unmirrored is not None:
            print(f"warning: {csv_only_warning(unmirrored)}", file=sys.stderr)
    if result.finish_reason == CANCELLED:
        print(
            "interrupted: the answer so far is printed above and logged as cancelled, with "
            "the energy it used",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if pressed():  # once the answer was whole: its check killed, its escalation not made
        went = "; the cascade went no further (its reason says where it stopped)"
        print(
            "interrupted: the answer, whole, is printed above and logged as its model ended "
            f"it{went if system.config.cascade.enabled else ''}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def _print_routed(args: argparse.Namespace, system: Any, result: Any, pressed: bool) -> None:
    emit(args, result.to_dict(), _answer_text(1, system, result, pressed))


def _answer_text(index: int, system: Any, result: Any, pressed: bool = False) -> str:
    """An answer as ``route`` and ``demo --interactive`` print it: its text, then its
    model, carbon and tokens lines (``answer_figures``), and where Ctrl-C was ``pressed``
    during it, so. To a terminal, the text's control characters are shown escaped
    (``terminal_safe``); to a file or a pipe it is the model's text as it is."""
    text = result.text.strip()
    if sys.stdout is not None and sys.stdout.isatty():
        text = terminal_safe(text)
    return "\n".join([text, "", *answer_figures(index, system, result, pressed)])


def terminal_safe(text: str) -> str:
    """``text`` with each control character but a newline and a tab shown as its escape
    (``\\x1b``), as errors quote a server's text: a model's escape sequence written to a
    terminal would act on it (clear it, retitle the window, hide what follows)."""
    from routerllm.backends.quoted_text import CONTROL_CHARACTERS

    return CONTROL_CHARACTERS.sub(_escaped, text)


def answer_figures(index: int, system: Any, result: Any, pressed: bool = False) -> list[str]:
    """The lines printed below an answer's text (``_answer_text``); ``pressed``: Ctrl-C
    came during the answer (``ctrl_c_stops_the_answer``)."""
    from routerllm.backends.interrupts import CANCELLED

    # all but the reply's summary line (its text was printed above)
    lines = _result_lines(index, result, system.config.model(result.model).tier)[:-1]
    if result.finish_reason == CANCELLED:
        lines.append("     (stopped by Ctrl-C: the answer so far, logged as cancelled)")
    elif pressed:  # the answer was whole: a cascade's check stopped, its step up not made
        went = "; the cascade went no further" if system.config.cascade.enabled else ""
        lines.append(f"     (Ctrl-C came once the answer was whole: logged as its model ended it{went})")  # fmt: skip
    return lines


class TerminalText:
    """An answer's text written to a terminal piece by piece as it is generated
    (``GenerationRequest.on_text``), as ``_answer_text`` prints it whole: without its
    leading and trailing whitespace (a piece's last whitespace is held until text follows
    it), and each control character but a newline and a tab shown as its escape
    (``\\x1b``), as errors quote a server's text: a model's escape sequence would act on
    the terminal (clear it, retitle the window). Escaped one character at a time, a
    sequence split across two pieces is escaped as it is whole. ``shown``: whether
    anything was written."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write, self.held, self.shown = write, "", False

    def __call__(self, piece: str) -> None:
        text = self.held + piece
        if not self.shown:
            text = text.lstrip()
        body = text.rstrip()
        self.held = text[len(body) :]
        if body:
            self.write(terminal_safe(body))
            self.shown = True

    def end(self) -> None:
        """The answer's end: its last whitespace, held, is not written."""
        self.held = ""


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return char if char in "\n\t" else ascii(char)[1:-1]


def _answer_logged(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    """route's Ctrl-C line: its one answer is in the log, or nothing is (a second Ctrl-C
    before the answer stopped; the first stops it, and it is kept)."""
    if getattr(args, "answered", 0):
        return "interrupted; the answer is in the request log"
    return "interrupted before the answer was logged: nothing was kept; rerun the command"
