"""`routerllm <command>`: a thin layer over ``RouterLLM``.

Every command accepts ``--config PATH`` (or a packaged config name) and
``--json`` (one JSON object on stdout). User mistakes print one line on
stderr and exit 2; nothing already logged is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from routerllm.exceptions import (
    ModelUnavailableError,
    OutputError,
    PromptError,
    RequestLogError,
    RouterLLMError,
    UnknownNameError,
)
from routerllm.strict_json import json_text

EXIT_USER_ERROR = 2
#: A reader closed stdout (``| head``): the status of a command that SIGPIPE ended.
EXIT_BROKEN_PIPE = 128 + 13
#: Ctrl-C's status, and SIGTERM's: a command stopped by either says what it kept.
EXIT_INTERRUPTED = 128 + 2
EXIT_TERMINATED = 128 + 15
API_KEY_ENV = "ROUTERLLM_API_KEY"
"""The server's API key (``routerllm serve``), read from the environment, never from argv."""


def _load(args: argparse.Namespace) -> Any:
    from routerllm.config import load_config

    return load_config(args.config)


def _system(args: argparse.Namespace) -> Any:
    from routerllm.system import RouterLLM

    return RouterLLM(_configured(args))


def _configured(args: argparse.Namespace) -> Any:
    """The config with the command's options (``--router``, ``--cascade``...) applied."""
    config = _load(args)
    if getattr(args, "router", None) and not _saved_there(args.router, config.router.path):
        from routerllm.registry import ROUTERS

        if args.router not in ROUTERS:  # said as given: not the config's router.name
            raise UnknownNameError("router", args.router, ROUTERS.names(), "--router")
        # the config's options are its own router's: a saved one's where it loads from path
        if args.router != config.router.name or config.router.path:
            config.router.options = {}
        config.router.learn = False  # a router by name has no folder to learn into
        config.router.path = None
        config.router.name = args.router
    if getattr(args, "cascade", False) or getattr(args, "gate", None):
        config.cascade.enabled = True
    if getattr(args, "gate", None):
        config.cascade.gate = args.gate
    if getattr(args, "as_written", False):
        config.generation.complete_stubs = False
    return config


def _saved_there(name: str, path: str | None) -> bool:
    """Whether ``path`` (a config's ``router.path``) holds a saved router ``name``: the
    config's own router, then, used as configured (its ``router.name`` may be left at
    the default)."""
    from routerllm.routers.base import saved_router_name

    return path is not None and saved_router_name(Path(path) / "config.json") == name


def _stdin(what: str) -> TextIO:
    """stdin, to read prompts from: bytes that are not UTF-8 reach the prompt check (a
    one-line error) under any locale, as under a C one, instead of a UnicodeDecodeError;
    a closed stdin is refused."""
    if sys.stdin is None:
        raise RouterLLMError(f"stdin is closed: {what}")
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="surrogateescape")
    return sys.stdin


#: The most bytes of a line a terminal passes on (Linux's line discipline holds 4,096,
#: the newline one of them); it drops the rest of a longer line.
TERMINAL_LINE_BYTES = 4095


def cut_by_the_terminal(line: str, stdin: TextIO, where: str) -> str:
    """Why ``line`` (``where``: "the line", "line 2"), read from ``stdin``, is not asked
    where that is a terminal: as long as the terminal passes on, it was likely cut there,
    and the answer would be to a part of the prompt ("" where it is shorter)."""
    if not sys.platform.startswith("linux") or not stdin.isatty():
        return ""
    size = len(line.rstrip("\r\n").encode(stdin.encoding or "utf-8", "surrogateescape"))
    if size < TERMINAL_LINE_BYTES:
        return ""
    return (
        f"{where} is {size:,} bytes, as many as a terminal passes on: the rest of a longer "
        f"prompt was cut off, so it is not asked; give a long prompt with routerllm route - < FILE"
    )


def require_stdout(what: str) -> None:
    """A closed stdout (``>&-``) refused before any model runs: Python prints nowhere
    without a word, so the answers, paid for and logged, would be lost."""
    if sys.stdout is None:
        raise RouterLLMError(
            f"stdout is closed: {what} nowhere; redirect it to a file (> /dev/null to discard it)"
        )


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as one JSON object with ``--json``, else ``text``."""
    print(json_text(payload, indent=2) if args.json else text)


def _requests_logged(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    return "interrupted; completed requests are in the log"


def requests_answered(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    """demo's Ctrl-C line: it counts its answers in ``args.answered``; before the first
    (the models loading, the warm-up, which is not logged) the log holds none of them.
    ``--interactive`` warms nothing up: before its first answer, the first prompt's."""
    if not getattr(args, "answered", 0) and getattr(args, "interactive", False):
        return "interrupted before any prompt was answered: nothing was logged"
    if not getattr(args, "answered", 0):
        return (
            "interrupted before any request was answered (the models loading or warming "
            "up): nothing was logged; rerun the command"
        )
    return _requests_logged(args, error)


def nothing_written(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    """The Ctrl-C line of a command that only reads (models, report, test, eval-routing
    without --plot): a bare "interrupted" left the user to wonder what was lost."""
    return "interrupted: this command saves no results, so nothing was lost; rerun it"


def _result_lines(index: int, result: Any, tier: str) -> list[str]:
    from routerllm.carbon.meter import CACHED, NO_USAGE, NOT_MEASURED
    from routerllm.carbon.report_text import fmt_g, fmt_kwh, not_measured_text

    # carbon tracking off measures nothing (method "none"): its zeros are not 0 g of CO2;
    # a cached answer's unspent parts (method "cache") say nothing of its routing's
    measured = {n: m.method != NOT_MEASURED for n, m in result.components.items()}
    generation = result.components.get("llm_inference")
    # a remote endpoint that did not say how many tokens it generated: its 0s are no count
    unknown = generation is not None and generation.method == NO_USAGE
    tokens = (
        "tokens not reported by the endpoint"
        if unknown
        else f"{result.prompt_tokens} in / {result.completion_tokens} out tokens"
    )
    others = [n for n, m in result.components.items() if m.method not in (CACHED, NO_USAGE)]
    if any(measured[n] for n in others):
        energy = f"{fmt_kwh(result.energy_kwh)}  CO2 {fmt_g(result.co2_kg)}"
        energy += " (and the generation's, not known)" if unknown else ""
    elif unknown:
        energy = "energy and CO2 not known"
    else:
        energy = not_measured_text(m.method for m in result.components.values())
    head = (
        f"[{index}] {tier:<6} {result.model:<20} conf {result.confidence:.2f}  "
        f"{tokens}  {result.latency_s:.2f} s  {energy}"
    )
    parts = "  ".join(
        f"{name}: {m.duration_s:.2f} s "
        + (
            "energy not known (no token usage)"
            if m.method == NO_USAGE
            else f"{m.energy_kwh:.2e} kWh {m.co2_kg * 1000:.2e} g"
            if measured[name]
            else "not measured"
        )
        for name, m in result.components.items()
    )
    if (p := result.predicted) is not None and p.model == result.model:
        parts += f"  (predicted {fmt_kwh(p.energy_kwh)}, CO2 {fmt_g(p.co2_kg)})"
    reply = " ".join(result.text.split())
    reply = reply[:150] + ("..." if len(reply) > 150 else "")
    return [head, f"     why: {result.reason}", f"     {parts}", f"     -> {reply}"]


# -- commands --------------------------------------------------------------
def cmd_route(args: argparse.Namespace) -> int:
    from routerllm.backends.base import GenerationRequest
    from routerllm.backends.interrupts import CANCELLED, ctrl_c_stops_the_answer

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
    with _system(args) as system:
        req = GenerationRequest(prompt, max_new_tokens=args.max_new_tokens)
        logged = system.log.count()
        try:
            # Ctrl-C stops the answer, which is kept (logged as cancelled with its energy)
            with ctrl_c_stops_the_answer():
                result = system.generate(req, model=args.model)
        except KeyboardInterrupt:  # a second Ctrl-C, or SIGTERM: logged already, or not
            args.answered = int(system.log.count() > logged)
            raise
        except RequestLogError as e:
            if e.result is not None:  # paid for, not logged: printed, then the error
                _print_routed(args, system, e.result)
            raise
        args.answered = 1
        _print_routed(args, system, result)
    if result.finish_reason == CANCELLED:
        print(
            "interrupted: the answer so far is printed above and logged as cancelled, with "
            "the energy it used",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def _print_routed(args: argparse.Namespace, system: Any, result: Any) -> None:
    emit(args, result.to_dict(), _answer_text(1, system, result))


def _answer_text(index: int, system: Any, result: Any) -> str:
    """An answer as ``route`` and ``demo --interactive`` print it: its text, then its
    model, carbon and tokens lines (``_result_lines``), and where Ctrl-C stopped it, so."""
    from routerllm.backends.interrupts import CANCELLED

    lines = _result_lines(index, result, system.config.model(result.model).tier)[:3]
    if result.finish_reason == CANCELLED:
        lines.append("     (stopped by Ctrl-C: the answer so far, logged as cancelled)")
    return "\n".join([result.text.strip(), "", *lines])


def _answer_logged(args: argparse.Namespace, error: KeyboardInterrupt) -> str:
    """route's Ctrl-C line: its one answer is in the log, or nothing is (a second Ctrl-C
    before the answer stopped; the first stops it, and it is kept)."""
    if getattr(args, "answered", 0):
        return "interrupted; the answer is in the request log"
    return "interrupted before the answer was logged: nothing was kept; rerun the command"


def cmd_models(args: argparse.Namespace) -> int:
    from routerllm.manager import LLMManager, gb_up
    from routerllm.model_files import effective_context

    config = _load(args)
    manager = LLMManager(config)
    cap = config.budgets.routed_cap()
    rows = []
    for m in config.models_by_size():
        reason = manager.availability(m.name)
        backend = manager.backend(m.name)
        rows.append(
            {
                "name": m.name,
                "tier": m.tier,
                "backend": m.backend,
                "params_b": m.params_b,
                "class_id": m.class_id,
                "memory_gb": backend.memory_gb,
                # what the manager counts against memory_budget_gb (0: served elsewhere)
                "kv_cache_gb": backend.kv_cache_gb_estimate if backend.measured_locally else 0.0,
                "counted_gb": manager.local_gb(m.name),
                "context_length": m.context_length,
                "effective_context": effective_context(m),
                "gpus": m.gpus,
                "available": reason is None,
                "reason": reason or "",
                "routed": reason is None and (cap is None or m.params_b <= cap),
            }
        )
    lines = [
        f"config: {config.source}",
        f"{'model':<22}{'tier':<8}{'backend':<13}{'params':>8}{'memory':>11}{'context':>11}  available",
    ]
    for r in rows:
        status = "yes" if r["available"] else f"no: {r['reason']}"
        if r["available"] and not r["routed"]:
            status += f" (over the budgets' cap of {cap:g}B: only when asked by name)"
        if r["effective_context"] < r["context_length"]:
            status += f" (runs at its GGUF's context of {r['effective_context']} tokens, under the configured {r['context_length']})"  # fmt: skip
        memory = f"{gb_up(r['counted_gb'])} GB" if r["counted_gb"] else "-"
        lines.append(
            f"{r['name']:<22}{r['tier']:<8}{r['backend']:<13}{r['params_b']:>7g}B"
            f"{memory:>11}{r['effective_context']:>11}  {status}"
        )
    lines.append(
        f"memory: as counted against manager.memory_budget_gb ({manager.budget_gb:g} GB), "
        f"a llama_cpp model's estimated KV cache included"
    )
    emit(args, {"config": config.source, "models": rows}, "\n".join(lines))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from routerllm.carbon.log_rows import utc_timestamp
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines

    config = _load(args)
    if args.since:
        utc_timestamp(args.since)  # a bad date is the first thing to hear about
    rep = logged_report(config, args.since, args.tag)
    lines = [f"request log: {config.log.path}", *_nothing_selected(args, config, rep), *report_lines(rep)]  # fmt: skip
    emit(args, {"log": config.log.path, **rep.as_dict()}, "\n".join(lines))
    return 0


def _nothing_selected(args: argparse.Namespace, config: Any, rep: Any) -> list[str]:
    """Where ``--since`` or ``--tag`` selected no request, a line that says so and what
    the log holds (a report of zeros alone reads like a log with nothing in it)."""
    from routerllm.carbon.log_rows import utc_timestamp
    from routerllm.carbon.report_text import counted
    from routerllm.carbon.request_log import RequestLog

    if rep.totals.requests or not (args.since or args.tag):
        return []
    with RequestLog(config.log.path, read_only=True) as log:
        n, first, last = log.span()
    asked = [f"at or after {utc_timestamp(args.since)} (UTC)"] if args.since else []
    asked += [f"tagged {args.tag!r}"] if args.tag else []
    held = f"it holds {counted(n, 'request')}, from {first} to {last}" if n else "it holds none"
    return [f"no logged request is {' and '.join(asked)}: {held}"]


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from routerllm.manager import LLMManager
    from routerllm.server.app import TAG
    from routerllm.server.options import cors_origins, waiting_cap
    from routerllm.server.serving import listen, serve, stop_signals_held
    from routerllm.system import RouterLLM

    api_key = os.environ.get(API_KEY_ENV)
    if api_key is not None and not api_key.strip():
        raise RouterLLMError(f"{API_KEY_ENV} is empty: set a key, or unset it to serve without one")
    cors = cors_origins(args.cors_origin)  # a mistake said before the models load
    waiting_cap(args.max_waiting)
    # the address first: a busy port or a bad --host is said before the models load (a
    # client that connects while they load waits its turn in the socket's backlog)
    with listen(args.host, args.port) as sock:
        config = _configured(args)
        manager = LLMManager(config)
        # none that can run: said before the system opens its log, which a start refused
        # here left behind, empty, where the config points
        models = manager.runnable_models()
        closing = contextlib.ExitStack()  # its signals held until the system has closed
        with closing, RouterLLM(config, manager=manager) as system:
            host, port = sock.getsockname()[:2]
            url = f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"
            text = (
                f"RouterLLM serving {url} (OpenAI API): model 'auto' is routed by "
                f"{system.router.name!r}; also {', '.join(models)}\n"
                f"carbon: {system.meter.method}; requests logged to {system.config.log.path} "
                f"(tag {TAG!r}); Ctrl-C stops"
            )
            info = {"url": url, "router": system.router.name, "models": models}
            try:
                system.scope.routable()
            except ModelUnavailableError as e:  # models asked by name are still served
                print(f"warning: {e}; model 'auto' is refused until one is, models named in a "
                      f"request are served", file=sys.stderr)  # fmt: skip
            if api_key is None and host not in ("127.0.0.1", "::1"):
                print(f"warning: serving on {host} without an API key ({API_KEY_ENV}): anyone "
                      f"who can reach this port can use the models", file=sys.stderr)  # fmt: skip
            if api_key is None and "*" in cors:
                print(f"warning: --cors-origin '*' without an API key ({API_KEY_ENV}): any web "
                      f"page open in a browser that can reach this port can use the models", file=sys.stderr)  # fmt: skip
            # one line, once requests are answered (and SIGTERM stops gracefully): scripts wait for it
            try:
                serve(system, sock, api_key, lambda: print(json.dumps(info) if args.json else text, flush=True), cors, args.max_waiting)  # fmt: skip
            finally:  # serving has stopped: the close below is not cut short by a stop signal
                closing.enter_context(stop_signals_held())
    # SIGTERM or SIGHUP (Ctrl-C says it in main); after a hangup the terminal, and stderr
    # with it, may be gone (EIO): the server stopped as it should, its status says so
    with contextlib.suppress(OSError):
        print(_server_stopped(args, None), file=sys.stderr)
    return 0


def _server_stopped(args: argparse.Namespace, error: KeyboardInterrupt | None) -> str:
    return "server stopped; every answered request is in the log"


# -- parser ----------------------------------------------------------------
class _CommandParser(argparse.ArgumentParser):
    """A command's parser: ``route -x`` is ``-x`` taken for an option, and the prompt
    said to be missing; ``route "-v or --verbose?"`` is ``-v`` given an argument it
    ignores. The error says how to give such a prompt."""

    def error(self, message: str) -> NoReturn:
        takes_a_prompt = any(action.dest == "prompt" for action in self._actions)
        if "required: prompt" in message or (
            takes_a_prompt and "ignored explicit argument" in message
        ):
            message += (
                f"; a prompt that starts with '-' goes after '--': {self.prog} [options] -- PROMPT"
            )
        super().error(message)

    def unrecognized(self, extras: Sequence[str], prompt: str | None) -> NoReturn:
        """Arguments this command does not take, said by it (after its usage, not the
        list of commands): an option misspelt with the one meant (``--confg``: did you
        mean ``--config``?), words after the prompt with how to give several."""
        import difflib

        message = f"unrecognized arguments: {' '.join(extras)}"
        options = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        for extra in extras:
            if extra.startswith("--") and (
                close := difflib.get_close_matches(
                    extra.partition("=")[0], options, n=1, cutoff=0.75
                )
            ):
                message += f" (did you mean {close[0]}?)"
                break
        # only words: an unknown option's value would read as one
        if prompt is not None and not any(e.startswith("-") for e in extras):
            message += f'; a prompt of several words goes in quotes: {self.prog} "{prompt} {extras[0]} ..."'  # fmt: skip
        self.error(message)


class _TopParser(argparse.ArgumentParser):
    """``routerllm``'s own parser: a misspelt command is offered the one meant, not
    only the list of all eleven."""

    def error(self, message: str) -> NoReturn:
        import difflib
        import re

        given = re.search(r"invalid choice: '([^']*)'", message)
        commands = next((list(a.choices) for a in self._actions if isinstance(a.choices, dict)), [])
        if given and (
            close := difflib.get_close_matches(given.group(1), commands, n=1, cutoff=0.75)
        ):
            message += f"; did you mean {close[0]!r}?"
        super().error(message)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``argv`` parsed; arguments the command does not take are refused by the command
    (its usage, a close option), where argparse had ``routerllm`` refuse them."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        commands = next(a.choices for a in parser._actions if isinstance(a.choices, dict))
        commands[args.command].unrecognized(extras, getattr(args, "prompt", None))
    return args


def build_parser() -> argparse.ArgumentParser:
    from routerllm import demo_cli, humaneval_cli, learn_cli
    from routerllm.cli_args import max_new_tokens_arg

    # output: the options of every command; common: those of a command that reads a config
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    common = argparse.ArgumentParser(add_help=False, parents=[output])
    common.add_argument(
        "--config",
        default=None,
        help="YAML path or packaged name (local, development, production); default: $ROUTERLLM_CONFIG or local",
    )

    parser = _TopParser(
        prog="routerllm",
        description="Route LLM requests to the smallest capable model; measure energy, CO2 and cost.",
    )
    sub: Any = parser.add_subparsers(dest="command", required=True, parser_class=_CommandParser)

    demo_cli.add_parser(sub, common)

    route = sub.add_parser(
        "route", parents=[common], help="route and answer one prompt ('-' reads stdin)"
    )
    route.add_argument("prompt")
    route.add_argument("--router", help="router name (default: the config's)")
    route.add_argument("--model", help="skip routing and use this model")
    route.add_argument(
        "--max-new-tokens",
        type=max_new_tokens_arg,
        default=None,
        help="most tokens to generate (default: the config's generation.max_new_tokens; "
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

    models = sub.add_parser(
        "models", parents=[common], help="list configured models and whether each can run here"
    )
    models.set_defaults(func=cmd_models, interrupted=nothing_written)

    report = sub.add_parser(
        "report", parents=[common], help="totals read back from the request log"
    )
    report.add_argument("--since", help="only requests at or after this ISO timestamp")
    report.add_argument("--tag", help="only requests with this tag (e.g. demo, demo-baseline)")
    report.set_defaults(func=cmd_report, interrupted=nothing_written)

    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="an OpenAI-compatible HTTP server: model 'auto' is routed, a model's name goes "
        "to that model; every request measured and logged",
        description="Serve the config's models over the OpenAI API (/v1/chat/completions, "
        "/v1/completions, /v1/models). With $ROUTERLLM_API_KEY set, every request needs "
        "Authorization: Bearer <key>.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")  # fmt: skip
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free one)")  # fmt: skip
    serve.add_argument("--router", help="router name (default: the config's)")
    serve.add_argument("--cascade", action="store_true", help="as for route (config: cascade.enabled)")  # fmt: skip
    serve.add_argument("--gate", metavar="DIR", help="as for route (config: cascade.gate)")
    serve.add_argument("--as-written", action="store_true", help="as for route (config: generation.complete_stubs)")  # fmt: skip
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN", help="let browser pages from ORIGIN (http://localhost:3000; * for any) call the server; repeatable (default: none)")  # fmt: skip
    serve.add_argument("--max-waiting", type=int, metavar="N", help="refuse a request (503, server_busy) while N others already wait their turn behind the one generating (0: any that would wait; default: no cap)")  # fmt: skip
    serve.set_defaults(func=cmd_serve, interrupted=_server_stopped, sigterm_as_ctrl_c=False)

    learn_cli.add_parsers(sub, common, output)
    humaneval_cli.add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_stdout()
    args = _parse(build_parser(), argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quieted = [] if args.verbose else _quiet_third_party()
    stdout = sys.stdout
    if stdout is not None:  # a closed one is refused by the commands that print answers
        sys.stdout = _NamedStdout(stdout)  # type: ignore[assignment]
    from routerllm.backends.interrupts import sigterm_as_interrupt

    # SIGTERM (a `kill`, a service manager's stop, `timeout`) stops a command as Ctrl-C
    # does, where it ended the process at once, saying nothing of what was kept; serve
    # stops on it its own way (the request in progress answered and logged, status 0)
    sigterm = sigterm_as_interrupt() if getattr(args, "sigterm_as_ctrl_c", True) else contextlib.nullcontext(bool)  # fmt: skip
    try:
        with sigterm as terminated:  # its handler kept while the line below is printed
            try:
                return _run(args)
            except KeyboardInterrupt as e:
                # What was kept, and how to go on, depends on the command.
                interrupted = getattr(args, "interrupted", None)
                print(interrupted(args, e) if interrupted else "interrupted", file=sys.stderr)
                return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED
    finally:  # an in-process caller's environment (and its children's) as it was
        sys.stdout = stdout
        for name in quieted:
            os.environ.pop(name, None)


def _run(args: argparse.Namespace) -> int:
    """The command's status, or that of the error it stopped on, said in one line."""
    try:
        _refuse_empty_options(args)
        if getattr(args, "interrupted", None) is nothing_written:  # its output is all it gives
            require_stdout("the output would be printed")
        status = int(args.func(args))
        if sys.stdout is not None:  # closed (>&-): what a command saves is in its files
            sys.stdout.flush()  # a full disk said here, not by Python as it exits (status 120)
        return status
    except OutputError as e:
        _drop_stdout()  # what is still buffered would fail again as Python exits
        print(f"error: {e}; {_output_kept(args)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except RouterLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # the reader of stdout went away (`routerllm demo | head -3`)
        _drop_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as e:  # unwritable log directory, full disk...
        print(f"error: {_os_error(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except UnicodeEncodeError as e:  # bytes that are not UTF-8 in an argument (a --tag)
        print(
            f"error: {str(e.object)[:80]!r} is not valid UTF-8 text (undecodable bytes at "
            f"character {e.start}); convert it to UTF-8 first",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR


class _NamedStdout:
    """stdout while a command runs: a write that fails (a full disk: ``> /dev/full``)
    raises ``OutputError``, which names stdout; an ``OSError`` without a file name said
    only "No space left on device", as if the log's disk were full. A reader that has
    gone (``BrokenPipeError``) is left to main, which ends quietly."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _output_error(e) from e

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _output_error(e) from e

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding...
        return getattr(self._stream, name)


def _output_error(e: OSError) -> OutputError:
    reason = e.strerror.lower() if e.strerror else str(e)
    return OutputError(f"the output could not be written to stdout: {reason}")


def _output_kept(args: argparse.Namespace) -> str:
    """What a command whose output could not be written kept (said as its Ctrl-C line
    says it)."""
    interrupted = getattr(args, "interrupted", None)
    if interrupted in (_requests_logged, requests_answered, _server_stopped, _answer_logged):
        return "the requests answered are in the request log"
    if interrupted is nothing_written:
        return "this command saves no results, so nothing was lost; rerun it with stdout elsewhere"
    return "what the command saved before is kept"


def _quiet_third_party() -> list[str]:
    """Without -v, stderr holds our own progress, warnings and errors, not the progress
    bars ("Loading weights") and notices of transformers and huggingface_hub. They read
    these settings when first imported, which is later (lazily), so nothing is imported
    here; a setting the user gave is kept. The names set here, for main to unset."""
    quiet = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    unset = [name for name in quiet if name not in os.environ]
    os.environ.update({name: quiet[name] for name in unset})
    return unset


def _tolerant_stdout() -> None:
    """Text stdout cannot encode (a model's answer in Cyrillic under a Latin-1 locale, or
    redirected to a file on Windows) is written escaped, as Python writes it to stderr,
    not a UnicodeEncodeError that lost the answer and blamed the arguments."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")


def _drop_stdout() -> None:
    """Quiet, as other commands are when their reader has closed the pipe: what is still
    buffered for stdout goes nowhere, not into an 'Exception ignored' line at exit."""
    if sys.stdout is None:
        return
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (captured)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _refuse_empty_options(args: argparse.Namespace) -> None:
    """An option given as empty text (an unset shell variable: ``--out "$DIR"``) is a
    mistake, not the option left out: ``--out ""`` would write into the current folder.
    The prompt has its own message (``route``)."""
    for dest, value in vars(args).items():
        if dest != "prompt" and isinstance(value, str) and not value.strip():
            raise RouterLLMError(
                f"--{dest.replace('_', '-')} is empty: give a value, or leave the option out"
            )


def _os_error(e: OSError) -> str:
    """The OS error in words, naming the path it concerns."""
    if isinstance(e, FileExistsError) and e.filename and not Path(e.filename).is_dir():
        return f"{e.filename} exists and is not a directory"
    if e.strerror and e.filename:
        return f"{e.filename}: {e.strerror.lower()}"
    return str(e)


if __name__ == "__main__":
    # ``python -m routerllm.cli``: the module the commands import (``routerllm.cli``, a
    # second copy of this one) runs, so that both see the same functions
    from routerllm.cli import main as _main

    raise SystemExit(_main())
