"""The benchmark scripts as the README ("Benchmarks" -> "The scripts"), docs/experiments.md
and the scripts' own docstrings give them: every script is listed and every listed script
exists; every command line quoted for a table parses with the script's real parser (flags
and values); a ``[--option value]`` of a usage line is the option's default; ``a|b|c`` are
all its choices. Parse only: no benchmark runs."""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
README = (ROOT / "README.md").read_text(encoding="utf-8")
# the scripts, not the modules they share (machine.py, outcome_data.py, ...)
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if "__main__" in p.read_text("utf-8"))


def _scripts_section() -> str:
    start = README.index("\n### The scripts\n")
    return README[start : README.index("\n### ", start + 1)]


def _quoted() -> list[tuple[str, str, str]]:
    """(where, script, its options) of each command line quoted with a script's name:
    README's and docs/experiments.md's code spans, each script's docstring usage."""
    quoted = []
    for doc in ("README.md", "docs/experiments.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        for m in re.finditer(r"`(?:benchmarks/)?(\w+)\.py\b([^`]*)`", text):
            if m[1] in SCRIPTS and m[2].strip():
                quoted.append((f"{doc}:{text.count(chr(10), 0, m.start()) + 1}", m[1], m[2]))
    for name in SCRIPTS:
        docstring = ast.get_docstring(ast.parse((BENCHMARKS / f"{name}.py").read_text("utf-8")))
        usage = re.search(rf"benchmarks/{name}\.py(.*(?:\n {{4,}}.*)*)", docstring or "")
        assert usage, f"{name}.py's docstring has no usage line"
        quoted.append((f"{name}.py's docstring", name, usage[1].replace("\\\n", " ")))
    return quoted


QUOTED = _quoted()
_PARSERS: dict[str, argparse.ArgumentParser] = {}


class _Built(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def _parser(name: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser the script's ``main()`` builds, taken where it would parse its argv."""
    if name not in _PARSERS:
        monkeypatch.syspath_prepend(str(BENCHMARKS))
        module = __import__(name)

        def built(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
            raise _Built(self)

        with monkeypatch.context() as patch:
            patch.setattr(argparse.ArgumentParser, "parse_args", built)
            with pytest.raises(_Built) as caught:
                module.main()
        _PARSERS[name] = caught.value.parser
    return _PARSERS[name]


def _groups(options: str) -> list[tuple[str, list[str], bool, bool]]:
    """(flag, values, in brackets, values literal) of each option of a usage line;
    N is a count, NAME, DIR, FILE other placeholders, `...` more of the same."""
    groups: list[tuple[str, list[str], bool, bool]] = []
    for m in re.finditer(r"--[a-z][\w-]*|[^\s\[\]]+", options):
        depth = options.count("[", 0, m.start()) - options.count("]", 0, m.start())
        if m[0].startswith("--"):
            groups.append((m[0], [], depth > 0, True))
        elif groups:
            flag, values, bracketed, literal = groups[-1]
            placeholder = re.fullmatch("[A-Z]+", m[0]) is not None
            literal = literal and m[0] != "..." and not placeholder
            if m[0] != "...":
                values.append({"N": "3"}.get(m[0], "x") if placeholder else m[0])
            groups[-1] = (flag, values, bracketed, literal)
    return groups


def _parse(parser: argparse.ArgumentParser, argv: list[str], where: str) -> argparse.Namespace:
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: {' '.join(argv)}: {stderr.getvalue().strip()}")


def test_every_script_is_listed_and_every_listed_script_exists() -> None:
    listed = re.findall(r"^- `benchmarks/(\w+)\.py", _scripts_section(), re.M)
    assert len(listed) == len(set(listed)), "a script listed twice"
    assert sorted(listed) == SCRIPTS
    for named in set(re.findall(r"benchmarks/\w+\.py", README)):
        assert (ROOT / named).is_file(), f"README names {named}, which is not there"


def test_the_command_lines_these_tests_check_are_found() -> None:
    assert len(QUOTED) >= 2 * len(SCRIPTS)


@pytest.mark.parametrize(("where", "name", "options"), QUOTED, ids=[q[0] for q in QUOTED])
def test_every_quoted_command_line_parses_and_states_defaults(
    where: str, name: str, options: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = _parser(name, monkeypatch)
    groups = _groups(options)
    by_flag = parser._option_string_actions
    for flag, _, _, _ in groups:
        assert flag in by_flag, f"{where}: {name}.py takes no {flag}"
    # alternatives a|b|c: all the option's choices, no other; one of them stands for all
    argv, required = [], []
    for flag, values, bracketed, _ in groups:
        alternatives = [v.split("|") for v in values if "|" in v]
        if alternatives:
            assert set(alternatives[0]) == set(by_flag[flag].choices or ()), where
        if values or by_flag[flag].nargs == 0:
            words = [flag, *(v.split("|")[0] for v in values)]
            argv += words
            required += [] if bracketed else words
    _parse(parser, argv, where)
    defaults = _parse(parser, required, where)
    for flag, values, bracketed, literal in groups:
        if bracketed and literal and values and "|" not in " ".join(values):
            dest = by_flag[flag].dest
            stated = getattr(_parse(parser, [*required, flag, *values], where), dest)
            if flag == "--data-dir":  # ../shared/data: beside the checkout, as the default
                stated = str((ROOT / stated).resolve())
            assert stated == getattr(defaults, dest), (
                f"{where}: [{flag} {' '.join(values)}], but {name}.py's default is "
                f"{getattr(defaults, dest)!r}"
            )


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_scripts_help_says_what_it_measures_in_whole_sentences(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--help gave the docstring's first line, cut mid-sentence in 9 of them ("...
    and whether"); synthetic_data's gave the whole docstring, its usage line run in."""
    description = _parser(name, monkeypatch).description or ""
    docstring = ast.get_docstring(ast.parse((BENCHMARKS / f"{name}.py").read_text("utf-8")))
    assert description == (docstring or "").split("\n\n")[0]
    assert description.endswith((".", "?")), description


EXPERIMENTS = (ROOT / "docs" / "experiments.md").read_text(encoding="utf-8")


# README's and docs/experiments.md's CAPS placeholders: what each stands for
PLACEHOLDERS = {
    "N": "3",
    "K": "3",
    "S": "0",
    "DIR": "runs/x",
    "NEW_DIR": "runs/new",
    "WHEN": "2026-09-01",
}


def _stood_for(text: str) -> str:
    """``text`` with each <...> placeholder replaced by what it stands for."""
    from routerllm.eval.humaneval_report import DEFAULT_SYSTEMS

    stands_for = {"the default systems": ",".join(DEFAULT_SYSTEMS)}
    return re.sub(r"<([^<>]*)>", lambda p: stands_for[p[1]], text)


def _experiments_cli_lines() -> list[tuple[str, str]]:
    """(where, arguments) of each `routerllm COMMAND ...` docs/experiments.md quotes,
    a code span over two lines included; <the default systems> and DIR, N, K, S are
    placeholders (another <...> is a KeyError: say here what it stands for)."""
    found = []
    for m in re.finditer(r"`routerllm ([a-z][^`]*)`", EXPERIMENTS):
        args = _stood_for(m[1].replace("\n", " "))
        found.append((f"docs/experiments.md:{EXPERIMENTS.count(chr(10), 0, m.start()) + 1}", args))
    return found


def test_the_experiments_quote_routerllm_command_lines() -> None:
    assert len(_experiments_cli_lines()) >= 2


@pytest.mark.parametrize(("where", "args"), _experiments_cli_lines(), ids=lambda v: str(v))
def test_every_routerllm_command_line_the_experiments_quote_parses(where: str, args: str) -> None:
    """The CLI's commands there, as a reader would run them: a run re-reported over
    folds and seeds quoted without its required --out could not run as written."""
    from routerllm.cli import build_parser

    argv = [PLACEHOLDERS.get(word, word) for word in args.split()]
    _parse(build_parser(), argv, where)


# README's `routerllm ...` commands, read as a shell reads them (quotes, `\` line ends,
# comments; after VAR=value, `nohup`, a `|`), parsed by the CLI's parser; nothing runs.
# Whole: each one a ```bash/sh/console or indented code block runs, and each inline
# span with arguments, unless it is a fragment: cut short with `...`, ending in an option
# without its value (`routerllm report --since`), or naming alternatives
# (`routerllm route/demo/serve --router ensemble`). A whole one parses as written, its
# required options included; a fragment's command and options exist and its values are
# accepted, its command's required options left out; a span that names a command
# alone (`routerllm report`) names a real one. README writes placeholders in CAPS
# (`--out DIR`) and <...>: each stands for a value of its kind, parsed by the option's
# own type (another is a KeyError: say here what it stands for); `routerllm COMMAND`
# stands for every command.
_FENCED = re.compile(r"^( *)```(?:(bash|sh|shell|console)|\w*)\n(.*?)^\1```", re.M | re.S)
_INDENTED = re.compile(r"(?<=\n\n)(?: {4}.*\n)+")
_SPAN = re.compile(r"(`+)(?!`)((?:(?!\n\s*\n).)+?)(?<!`)\1(?!`)", re.S)


def _shell_commands(line: str) -> list[list[str]]:
    """The words of each `routerllm ...` of a shell line, without the program's name,
    its <...> placeholders replaced; a line that is no shell's (an error message, a
    path, a Python name): none."""
    commands = _shell_words(line)
    return _shell_words(_stood_for(line)) if commands else commands


def _shell_words(line: str) -> list[list[str]]:
    import shlex

    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote: prose, not a command
        return []
    commands, segment = [], []
    for word in [*words, ";"]:
        if not set(word) <= set("|&;()<>"):
            segment.append(word)
            continue
        while segment and (
            re.fullmatch(r"[A-Z_]+=\S*|nohup", segment[0]) or segment[:2] == ["python", "-m"]
        ):
            segment = segment[2 if segment[0] == "python" else 1 :]
        if segment and segment[0] in ("routerllm", ".venv/bin/routerllm"):
            commands.append(segment[1:])
        segment = []
    return commands


def _readme_cli_lines() -> tuple[
    list[tuple[str, list[str]]], list[tuple[str, list[str]]], dict[str, int]
]:
    """(where, arguments) of README's whole `routerllm` commands and of its fragments,
    and how many lines and spans each rule took and left."""
    counts = dict.fromkeys(
        ("shell lines", "shell lines running no routerllm", "other code blocks, not read",
         "inline spans", "inline spans no routerllm command", "inline: the program alone",
         "inline: a command named", "inline: fragments", "inline: whole"), 0)  # fmt: skip
    whole: list[tuple[str, list[str]]] = []
    fragments: list[tuple[str, list[str]]] = []

    def where(start: int) -> str:
        return f"README.md:{README.count(chr(10), 0, start) + 1}"

    def blank(m: re.Match[str]) -> str:  # the positions kept, for where()
        return re.sub(r"[^\n]", " ", m[0])

    blocks = [(m.start(3), m[3]) for m in _FENCED.finditer(README) if m[2]]
    counts["other code blocks, not read"] = sum(not m[2] for m in _FENCED.finditer(README))
    prose = _FENCED.sub(blank, README)
    blocks += [(m.start(), m[0]) for m in _INDENTED.finditer(prose)]
    prose = _INDENTED.sub(blank, prose)
    for start, body in blocks:
        for line in re.finditer(r"^(?:\$ )?((?:.*\\\n)*.*\S.*)$", body, re.M):
            commands = _shell_commands(line[1].replace("\\\n", " "))
            counts["shell lines"] += 1
            counts["shell lines running no routerllm"] += not commands
            whole += [(where(start + line.start()), c) for c in commands]
    for m in _SPAN.finditer(prose):
        counts["inline spans"] += 1
        commands = _shell_commands(re.sub(r"\s+", " ", m[2]))
        counts["inline spans no routerllm command"] += not commands
        for args in commands:
            if args in ([], ["..."]):
                counts["inline: the program alone"] += 1
                continue
            if len(args) == 1:
                rule = "inline: a command named"
            elif args[-1] == "..." or args[-1].startswith("--") or "/" in args[0]:
                rule = "inline: fragments"
            else:
                rule = "inline: whole"
            counts[rule] += 1
            (whole if rule == "inline: whole" else fragments).append((where(m.start()), args))
    return whole, fragments, counts


README_WHOLE, README_FRAGMENTS, README_COUNTS = _readme_cli_lines()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _argv(args: list[str], commands: list[str]) -> list[list[str]]:
    """The command lines ``args`` stands for: COMMAND each command, a/b/c each of a, b,
    c; a CAPS word a value of its kind."""
    names = commands if args[0] == "COMMAND" else args[0].split("/")
    rest = [PLACEHOLDERS[w] if re.fullmatch(r"[A-Z][A-Z0-9_]*", w) else w for w in args[1:]]
    return [[name, *rest] for name in names]


def test_readme_quotes_routerllm_commands_and_each_rule_takes_some() -> None:
    """A rule that took nothing, or every span, would check nothing. (2026-12-06: 54
    whole commands in code blocks, 17 whole inline, 11 fragments, 44 commands named.)"""
    counts = README_COUNTS
    assert counts["inline: whole"] >= 10 and len(README_WHOLE) >= 60
    assert counts["inline: fragments"] >= 5 and counts["inline: a command named"] >= 30
    # a shell line runs no routerllm only where it runs something else (dev.py, curl)
    assert counts["shell lines running no routerllm"] <= 6


@pytest.mark.parametrize(("where", "args"), README_WHOLE, ids=lambda v: str(v))
def test_every_whole_routerllm_command_the_readme_quotes_parses(
    where: str, args: list[str]
) -> None:
    """As a reader would run it: `[--json]` in a code block, or a command quoted in
    prose without its required --out, could not run as written."""
    from routerllm.cli import build_parser

    for argv in _argv(args, list(_subparsers(build_parser()))):
        _parse(build_parser(), argv, where)


@pytest.mark.parametrize(("where", "args"), README_FRAGMENTS, ids=lambda v: str(v))
def test_every_routerllm_fragment_the_readme_quotes_names_real_options(
    where: str, args: list[str]
) -> None:
    from routerllm.cli import build_parser

    for argv in _argv(args, list(_subparsers(build_parser()))):
        parser = build_parser()
        commands = _subparsers(parser)
        assert argv[0] in commands, f"{where}: routerllm has no command {argv[0]}"
        command = commands[argv[0]]
        for action in command._actions:
            action.required = False
        for group in command._mutually_exclusive_groups:
            group.required = False
        argv = argv[:-1] if argv[-1] == "..." else argv
        named = command._option_string_actions.get(argv[-1])
        if argv[-1] in ("-h", "--help"):
            with pytest.raises(SystemExit) as ended, contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(argv)
            assert ended.value.code == 0, where
            continue
        if named is not None and named.nargs != 0:
            argv = argv[:-1]  # the option named, its value not given
        _parse(parser, argv, where)
