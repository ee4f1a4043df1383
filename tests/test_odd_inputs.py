"""Files a user names for a command to read (the config, data and problem files) that
are named pipes or devices: one clear error line (exit 2 at the CLI) before anything
opens them, never a wait for a writer that never comes, or a read that never ends.
A pipe another command writes (``--data <(command)``) is read as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .test_cli import assert_one_line_error
from .test_damaged_saves import ODD, in_time, put_odd

#: Reads (or opens) each ``kind=path`` given with the reader of that kind: prints each
#: one's error as a JSON string (or "loaded"). The request log and the HumanEval results
#: store are opened to write (``log-w``, ``store-w``) or to read (``log-r``, ``store-r``),
#: the log also to write with the emissions CSV ``csv=PATH`` (its database beside it).
READ = """
import json, sys
from routerllm.carbon.request_log import RequestLog
from routerllm.config import load_config
from routerllm.data.humaneval import load_humaneval
from routerllm.data.labeled import load_json
from routerllm.data.mbpp import load_code_problems
from routerllm.data.outcome_files import load_model_info, load_outcomes
from routerllm.data.tiny_codes import load_tiny_codes
from routerllm.eval.result_store import ResultStore
from routerllm.exceptions import RouterLLMError
read = {"config": load_config, "outcomes": load_outcomes, "models": load_model_info,
        "labelled": load_json, "tiny-codes": load_tiny_codes, "humaneval": load_humaneval,
        "problems": load_code_problems,
        "log-w": lambda p: RequestLog(p).close(),
        "log-r": lambda p: RequestLog(p, read_only=True).close(),
        "csv": lambda p: RequestLog(p.replace(".csv", ".sqlite"), p).close(),
        "store-w": lambda p: ResultStore(p).close(),
        "store-r": lambda p: ResultStore(p, read_only=True).close()}
for arg in sys.argv[1:]:
    kind, path = arg.split("=", 1)
    try:
        read[kind](path)
    except RouterLLMError as e:
        print(json.dumps(str(e)))
    else:
        print("loaded")
"""
#: Each reader, and a file name it reads (its format is told by the name).
FILES = [
    ("config", "config.yaml"),
    ("outcomes", "outcomes.json"),
    ("outcomes", "outcomes.csv"),
    ("models", "models.json"),
    ("labelled", "labelled.json"),
    ("tiny-codes", "tiny.jsonl"),
    ("tiny-codes", "tiny.csv"),
    ("humaneval", "problems.jsonl"),
    ("humaneval", "problems.jsonl.gz"),
    ("problems", "mbpp.json"),
]


def read_errors(args: list[str]) -> list[str]:
    """What READ printed for each of ``args``: an error, or "loaded"."""
    proc = in_time("-c", READ, *args)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) if line != "loaded" else line for line in proc.stdout.splitlines()]


def test_a_config_or_data_file_that_is_a_named_pipe_or_a_device_is_refused(
    tmp_path: Path,
) -> None:
    """A FIFO or a link to /dev/zero as a data file hung the reader (open() waited for a
    writer, or the read never ended); as the config it was "config file not found"."""
    args, expected = [], []
    for odd, said in ODD.items():
        for kind, name in FILES:
            (folder := tmp_path / f"{kind}-{odd}").mkdir(exist_ok=True)
            put_odd(path := folder / name, odd)
            link = " (a link to /dev/zero)" if odd == "dev-zero" else ""
            args.append(f"{kind}={path}")
            expected.append(f"{path}{link} {said}: ")
    # the models.json beside an outcome file is read too
    (folder := tmp_path / "beside").mkdir()
    (folder / "outcomes.json").write_text(json.dumps([{"question": "q", "scores": {"a": 1}}]))
    put_odd(folder / "models.json", "fifo")
    args.append(f"outcomes={folder / 'outcomes.json'}")
    expected.append(f"{folder / 'models.json'} {ODD['fifo']}: ")
    for error, needle, arg in zip(read_errors(args), expected, args, strict=True):
        assert "\n" not in error and error.startswith(needle), (arg, error)


def test_the_cli_refuses_a_config_or_data_file_that_is_a_named_pipe_in_one_line(
    tmp_path: Path,
) -> None:
    put_odd(fifo := tmp_path / "in.json", "fifo")
    put_odd(zero := tmp_path / "zero.yaml", "dev-zero")
    config = ["--config", str(zero)]
    for argv, needle in [
        (["models", *config], f"{zero} (a link to /dev/zero) {ODD['dev-zero']}: "),
        (["train", "--data", str(fifo), "--out", str(tmp_path / "o"), "--encoder", "hashing"],
         f"{fifo} {ODD['fifo']}: "),
        (["eval-routing", "--data", str(fifo)], f"{fifo} {ODD['fifo']}: "),
    ]:  # fmt: skip
        assert_one_line_error(in_time("-m", "routerllm.cli", *argv), needle)
    assert not (tmp_path / "o").exists()


def test_a_data_file_that_another_command_writes_through_a_pipe_is_read(tmp_path: Path) -> None:
    """``--data <(command)``: the shell gives /dev/fd/63, a pipe without a name in any
    folder, which ends when the command does."""
    rows = [{"text": f"prompt {i}", "label": i % 4} for i in range(8)]
    (data := tmp_path / "d.json").write_text(json.dumps(rows))
    code = "import sys; from routerllm.data.labeled import load_json; print(len(load_json(sys.argv[1])))"
    proc = subprocess.run(
        ["bash", "-c", '"$0" -c "$1" <(cat "$2")', sys.executable, code, str(data)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.stdout.split() == ["8"], proc.stderr


def test_a_request_log_or_its_wal_that_is_a_named_pipe_or_a_device_is_refused(
    tmp_path: Path,
) -> None:
    """``log.path``, or the -wal or -shm file SQLite opens beside it, made a FIFO or a
    link to /dev/zero: opening the log waited for a writer, or read, forever."""
    from routerllm.carbon.request_log import RequestLog

    def make(db: Path) -> None:  # a log there already, beside which SQLite finds the odd file
        RequestLog(db).close()

    assert_databases_refused(tmp_path, "requests.sqlite", ("", "-wal", "-shm"), "log", make)


def test_report_refuses_a_request_log_that_is_a_named_pipe_in_one_line(tmp_path: Path) -> None:
    from .conftest import tiny_config_dict, write_config

    put_odd(log := tmp_path / "requests.sqlite", "fifo")
    config = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = in_time("-m", "routerllm.cli", "report", "--config", str(config))
    assert_one_line_error(proc, f"{log} {ODD['fifo']}: ")


def test_an_emissions_csv_that_is_a_named_pipe_or_a_device_is_refused(tmp_path: Path) -> None:
    """The emissions CSV the request log appends to (in ``carbon.output_dir``), made a
    FIFO or a link to /dev/zero: its header's check waited for a writer, or read forever."""
    args, expected = [], []
    for odd, said in ODD.items():
        put_odd(csv := tmp_path / f"{odd}.csv", odd)
        link = " (a link to /dev/zero)" if odd == "dev-zero" else ""
        args.append(f"csv={csv}")
        expected.append(f"{csv}{link} {said}: remove it, or choose another carbon.output_dir")
    assert read_errors(args) == expected


def test_a_results_store_or_its_journal_that_is_a_named_pipe_or_a_device_is_refused(
    tmp_path: Path,
) -> None:
    """A run's ``results.sqlite`` (``humaneval --out``, a gate's training run), or the
    -wal or -shm file beside it, made a FIFO or a link to /dev/zero: opening the store
    waited for a writer, or read, forever."""
    assert_databases_refused(tmp_path, "results.sqlite", ("", "-wal"), "store")


def assert_databases_refused(
    tmp_path: Path, name: str, suffixes: tuple[str, ...], kind: str, make: Any = None
) -> None:
    """Each of the database ``name`` and the files SQLite opens beside it (``suffixes``),
    made each odd kind of file in a folder of its own (beside a database ``make`` wrote
    first, for a suffix), is refused when READ opens the database of ``kind`` to write
    (``KIND-w=PATH``) and to read (``KIND-r=PATH``): one line naming the odd file."""
    args, expected = [], []
    for odd, said in ODD.items():
        for suffix in suffixes:
            for mode in "wr":
                (folder := tmp_path / f"{odd}{suffix}-{mode}").mkdir()
                if suffix and make is not None:
                    make(folder / name)
                put_odd(odd_file := folder / f"{name}{suffix}", odd)
                link = " (a link to /dev/zero)" if odd == "dev-zero" else ""
                args.append(f"{kind}-{mode}={folder / name}")
                expected.append(f"{odd_file}{link} {said}: ")
    for error, needle, arg in zip(read_errors(args), expected, args, strict=True):
        assert "\n" not in error and error.startswith(needle), (arg, error)
