"""`routerllm <command>`: a thin layer over ``RouterLLM``.

Every command accepts ``--json`` (JSON on stdout), and every one that reads a config
(all but generate-data and eval-routing) ``--config PATH`` (or a packaged config name). User mistakes print one line on
stderr and exit 2; nothing already logged is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from routerllm.exceptions import (
    OutputError,
    RouterLLMError,
    UnknownNameError,
    os_reason,
)
from routerllm.progress import progress_style
from routerllm.strict_json import json_text

if TYPE_CHECKING:
    from routerllm.cli_closing import ClosingPresses

EXIT_USER_ERROR = 2
#: A reader closed stdout (``| head``): the status of a command that SIGPIPE ended.
EXIT_BROKEN_PIPE = 128 + 13
#: Ctrl-C's status, and SIGTERM's: a command stopped by either says what it kept.
EXIT_INTERRUPTED = 128 + 2
EXIT_TERMINATED = 128 + 15


def _load(args: argparse.Namespace) -> Any:
    from routerllm.config import load_config

    return load_config(args.config)


def _system(args: argparse.Namespace, prompt: str | None = None) -> Any:
    # the config, route's --model and its prompt's length, checked before the system's
    # imports and the start of its meter (CodeCarbon's hardware probe), which make the
    # log and the emissions folder: a mistake is said at once, leaving nothing behind
    config = _configured(args)
    if getattr(args, "model", None):
        config.model(args.model)
    if prompt is not None:
        from routerllm.request_checks import checked_prompt

        checked_prompt(prompt, config.limits.max_prompt_chars)
    from routerllm.system import RouterLLM

    return RouterLLM(config)


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
        # one of the command's own options left over: given after '--', where it is text
        if given := next((e for e in extras if e.partition("=")[0] in options), None):
            self.error(
                f"{message}; options go before '--': {self.prog} [options] -- PROMPT "
                f"({given.partition('=')[0]} given after it)"
            )
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
    only the list of them all."""

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
    commands = next(a.choices for a in parser._actions if isinstance(a.choices, dict))
    if extras:
        commands[args.command].unrecognized(extras, getattr(args, "prompt", None))
    # a range that depends on another option (generate-data's --n, train's classifier
    # numbers): refused as an argument type refuses one, with the usage, before any work
    if (check := getattr(args, "check_ranges", None)) is not None:
        try:
            check(args)
        except argparse.ArgumentTypeError as e:
            commands[args.command].error(str(e))
    return args


def build_parser() -> argparse.ArgumentParser:
    from routerllm import demo_cli, humaneval_cli, learn_cli, report_cli, route_cli, serve_cli

    # output: the options of every command; common: those of a command that reads a config
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "--json",
        action="store_true",
        help="print JSON on stdout, not text: one object (demo --interactive: one a line)",
    )
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
        epilog="`routerllm COMMAND --help` gives a command's options; README.md explains each "
        "command, with examples.",
    )
    sub: Any = parser.add_subparsers(dest="command", required=True, parser_class=_CommandParser)

    demo_cli.add_parser(sub, common)

    route_cli.add_parser(sub, common)
    report_cli.add_parsers(sub, common)
    serve_cli.add_parser(sub, common)

    learn_cli.add_parsers(sub, common, output)
    humaneval_cli.add_parsers(sub, common)
    for listed in sub._choices_actions:  # `routerllm X --help` says what X does, as `--help` does
        command = sub.choices[listed.dest]
        command.description = command.description or f"{listed.help[0].upper()}{listed.help[1:]}."
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``routerllm argv`` and give its exit status. Without ``argv``, the command is
    the process's own (``sys.argv``: the ``routerllm`` script, ``python -m routerllm``),
    and the process ends here once it is done (``cli_closing``): a Ctrl-C while it
    closes is said in one line, status 130."""
    from routerllm.cli_closing import ClosingPresses

    closing = ClosingPresses()
    try:
        status = _command_status(argv, closing)
    except SystemExit as e:  # argparse's usage error, --help
        if argv is not None or not isinstance(e.code, int | None):
            closing.stop()
            raise
        status = e.code or 0
    except BaseException:  # a bug's traceback: an in-process caller's handlers as they were
        closing.stop()
        raise
    if argv is None:
        closing.end_process(status)
    closing.stop()
    return closing.status(status)


def _command_status(argv: Sequence[str] | None, closing: ClosingPresses) -> int:
    _tolerant_stdout()
    try:  # the command's modules import here: a Ctrl-C in them has nothing to stop yet
        args = _parse(build_parser(), argv)
    except KeyboardInterrupt:
        print("interrupted before the command started: nothing was done", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not getattr(args, "sigterm_as_ctrl_c", True):
        closing.without_sigterm()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quieted = [] if args.verbose else _quiet_third_party()
    stdout = sys.stdout
    if stdout is not None:  # a closed one is refused by the commands that print answers
        sys.stdout = _NamedStdout(stdout)  # type: ignore[assignment]
    # light (signal only): what imports pydantic and the config's models, or more, comes
    # after it, under the handling below
    from routerllm.backends.interrupts import sigterm_as_interrupt

    # SIGTERM (a `kill`, a service manager's stop, `timeout`) stops a command as Ctrl-C
    # does, where it ended the process at once, saying nothing of what was kept; serve
    # stops on it its own way (the request in progress answered and logged, status 0)
    sigterm = sigterm_as_interrupt() if getattr(args, "sigterm_as_ctrl_c", True) else contextlib.nullcontext(bool)  # fmt: skip
    try:
        with sigterm as terminated:  # its handler kept while the line below is printed
            try:
                return _run(args, closing)
            except KeyboardInterrupt as e:
                try:  # a second press as the line is said: recorded, not a traceback
                    closing.start()
                except KeyboardInterrupt as again:
                    closing.raised(again)
                # What was kept, and how to go on, depends on the command.
                interrupted = getattr(args, "interrupted", None)
                line = interrupted(args, e) if interrupted else "interrupted"
                print(_with_failure(line, e), file=sys.stderr)
                return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED
    finally:  # an in-process caller's environment (and its children's) as it was
        try:  # SIGTERM's too, which the block above has just put back
            closing.start()
        except KeyboardInterrupt as e:
            closing.raised(e)
        sys.stdout = stdout
        for name in quieted:
            os.environ.pop(name, None)


def _with_failure(line: str, error: KeyboardInterrupt) -> str:
    """A command's Ctrl-C ``line``, with the error its work had also failed in as Ctrl-C
    came (a save whose rename failed: a full disk), which was otherwise not said."""
    from routerllm.backends.interrupts import failure_of

    failure = failure_of(error)
    if isinstance(failure, OSError):
        return f"{line} (it had also failed: {_os_error(failure)})"
    if isinstance(failure, RouterLLMError) and str(failure) not in line:
        return f"{line} (it had also failed: {failure})"
    return line


def _run(args: argparse.Namespace, closing: ClosingPresses) -> int:
    """The command's status, or that of the error it stopped on, said in one line; from
    the command's return on, a Ctrl-C is recorded by ``closing`` (``cli_closing``)."""
    try:
        _refuse_empty_options(args)
        progress_style()  # a mistyped $ROUTERLLM_PROGRESS said before hours of work, not after
        if getattr(args, "interrupted", None) is nothing_written:  # its output is all it gives
            require_stdout("the output would be printed")
        status = args.func(args)
        try:  # next, nothing between: a press before it was raised in the command
            closing.start()
        except KeyboardInterrupt as e:  # pressed as the command returned: after its work
            closing.raised(e)
        status = int(status)
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
    return OutputError(f"the output could not be written to stdout: {os_reason(e)}")


def _output_kept(args: argparse.Namespace) -> str:
    """What a command whose output could not be written kept (said as its Ctrl-C line
    says it)."""
    from routerllm.route_cli import _answer_logged
    from routerllm.serve_cli import _server_stopped

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
