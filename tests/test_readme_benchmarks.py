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


def _experiments_cli_lines() -> list[tuple[str, str]]:
    """(where, arguments) of each `routerllm COMMAND ...` docs/experiments.md quotes,
    a code span over two lines included; <the default systems> and DIR, N, K, S are
    placeholders (another <...> is a KeyError: say here what it stands for)."""
    from routerllm.eval.humaneval_report import DEFAULT_SYSTEMS

    stands_for = {"the default systems": ",".join(DEFAULT_SYSTEMS)}
    found = []
    for m in re.finditer(r"`routerllm ([a-z][^`]*)`", EXPERIMENTS):
        args = re.sub(r"<([^>]*)>", lambda p: stands_for[p[1]], m[1].replace("\n", " "))
        found.append((f"docs/experiments.md:{EXPERIMENTS.count(chr(10), 0, m.start()) + 1}", args))
    return found


def test_the_experiments_quote_routerllm_command_lines() -> None:
    assert len(_experiments_cli_lines()) >= 2


@pytest.mark.parametrize(("where", "args"), _experiments_cli_lines(), ids=lambda v: str(v))
def test_every_routerllm_command_line_the_experiments_quote_parses(where: str, args: str) -> None:
    """The CLI's commands there, as a reader would run them: a run re-reported over
    folds and seeds quoted without its required --out could not run as written."""
    from routerllm.cli import build_parser

    argv = [{"N": "3", "K": "3", "S": "0"}.get(word, word) for word in args.split()]
    _parse(build_parser(), argv, where)
