"""The README quotes many of the code's constants, bounds and config defaults with their
values ("`serving.WRITE_TIMEOUT_S`, 30 s", "`max_new_tokens` 1024"). Each one it quotes is
listed here with the phrase that states it, so that changing the value in the code fails
this test until the README says the new one, and every UPPER_CASE name the README puts
in backticks must still exist in the code (a renamed or removed constant fails).

What this cannot see: a value the README states in a phrase not listed below (it checks
that every constant the README names in backticks is listed), nor a figure that is a
measurement rather than a constant."""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from routerllm import config as config_module
from routerllm import config_sections

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "routerllm"
README = (ROOT / "README.md").read_text(encoding="utf-8")
# a phrase wraps where the README's lines do: compared with every run of spaces one space
FLAT = " ".join(README.split())

# ---- how the README writes a value


def plain(v: float) -> str:
    """30.0 as "30", 0.1 as "0.1"."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def thousands(v: float) -> str:
    assert float(v).is_integer(), v
    return f"{int(v):,}"


def percent(v: float) -> str:
    return f"{plain(round(v * 100, 9))} %"


def mib(v: float) -> str:
    return plain(v / 2**20)


def kilo(v: float) -> str:
    return plain(v / 1000)


def scientific(v: float) -> str:
    """1e9, 1e-6: a power of ten as the README writes it."""
    exponent = round(math.log10(v))
    assert 10.0**exponent == v, f"{v} is no power of ten"
    return f"1e{exponent}"


def power_of_ten(v: float) -> str:
    return "10^" + scientific(v)[2:]


def minutes_in_words(v: float) -> str:
    words = {1: "one", 2: "two", 5: "five", 10: "ten", 15: "fifteen", 30: "thirty"}
    return words[int(v // 60)] if v % 60 == 0 and v // 60 in words else f"{plain(v)} s"


def grams(v: float) -> str:
    """kg as whole grams where above 10 g (244 g/km), else to 3 significant figures."""
    g = v * 1000
    return str(round(g)) if g >= 10 else f"{g:.3g}"


def yaml_value(v: object) -> str:
    return str(v).lower() if isinstance(v, bool) else plain(v) if isinstance(v, float) else str(v)


Format = Callable[[Any], str]

# (README phrase, with {} for each value in order; the values' "module:NAME"; how written)
CONSTANTS: list[tuple[str, tuple[str, ...], Format]] = [
    # SQLite files
    ("keeping the log locked past the {} s busy timeout", ("sqlite_busy:BUSY_TIMEOUT_S",), plain),
    ("is tried for {} s first, as `report` tries the request log (`sqlite_busy.FIRST_TRY_S`)",
     ("sqlite_busy:FIRST_TRY_S",), plain),
    # train-gate's checks kept
    ("it keeps at most {} checks, the oldest dropped first", ("eval.kept_checks:MAX_ENTRIES",), thousands),
    ("per machine in `$ROUTERLLM_CACHE/{}` (`eval/kept_checks.py`)", ("eval.kept_checks:CHECKS_FILE",), str),
    # the server
    ("waiting to be sent for {} s (`serving.WRITE_TIMEOUT_S`", ("server.serving:WRITE_TIMEOUT_S",), plain),
    ("a body not sent within {} s 408, headers not all sent within {} s of the connection's opening",
     ("server.bodies:BODY_TIMEOUT_S", "server.serving:HEADERS_TIMEOUT_S"), plain),
    ("and {} more (`listener.RESERVED_FDS`)", ("server.listener:RESERVED_FDS",), plain),
    ("closed once the client's request is read (at most {} s, `listener.LINGER_S`",
     ("server.listener:LINGER_S",), plain),
    ("The default is half the cap, at least {} and at most {}:",
     ("server.listener:CLIENT_SHARE_LEAST", "server.listener:CLIENT_SHARE_MOST"), thousands),
    ("at most {} refused connections linger at once, and none in the cap's last {} places",
     ("server.listener:LINGERING_MOST", "server.listener:LINGERING_MOST"), plain),
    ("`Retry-After` is over {} s (an hourly or daily budget spent", ("server.protocol:RETRY_AFTER_HONOURED_S",),
     plain),
    ("`x-should-retry: false` where it is over {} s", ("server.protocol:RETRY_AFTER_HONOURED_S",), plain),
    ("`limits.max_prompt_chars` plus {} MiB", ("server.app:BODY_SLACK_BYTES",), mib),
    ("`stop` (at most {} sequences of at most {} characters",
     ("server.protocol:MAX_STOP_SEQUENCES", "server.protocol:MAX_STOP_CHARS"), thousands),
    # measured under contention
    ("`Measurement.contended` is true above {} (`CONTENDED_SHARE`)", ("carbon.cpu_share:CONTENDED_SHARE",), percent),
    ("for a block shorter than {} CPU-seconds,", ("carbon.cpu_share:MIN_CPU_S",), plain),
    ("generated while other processes used more than {} of the machine's CPU (`above_share`",
     ("carbon.cpu_share:CONTENDED_SHARE",), percent),
    ("`report.md` names them (the first {};", ("eval.humaneval_markdown:NAMED_CONTENDED",), plain),
    ("whose logged `others_cpu_share` is over {} (`CONTENDED_SHARE`)", ("carbon.cpu_share:CONTENDED_SHARE",), percent),
    ("and names the latest {} (`CONTENDED_NAMED`)", ("carbon.report:CONTENDED_NAMED",), plain),
    ("past {}, the second line starts `the latest {}:`", ("carbon.report:CONTENDED_NAMED",) * 2, plain),
    ("where it is not: not Linux, a block shorter than {} CPU-seconds", ("carbon.cpu_share:MIN_CPU_S",), plain),
    ("FROM requests WHERE others_cpu_share > {}`", ("carbon.cpu_share:CONTENDED_SHARE",), plain),
    ("`contended`, true above {}: its energy", ("carbon.cpu_share:CONTENDED_SHARE",), percent),
    ("under contention: other processes used over {} of the machine's CPU as they ran",
     ("carbon.cpu_share:CONTENDED_SHARE",), percent),
    ("were measured while other processes used over {} of the machine's CPU (`contended`",
     ("carbon.cpu_share:CONTENDED_SHARE",), percent),
    ("readings 24x the quiet rate are left out as far (over {}x", ("carbon.predictor:FAR",), plain),
    # backends and models
    ("or over {} MiB (read no further; decoded, for a compressed one, so a gzip bomb is refused once {} MiB",
     ("backends.http_transport:MAX_RESPONSE_BYTES",) * 2, mib),
    ("not a whole number from 0 to {},", ("backends.openai_answer:MAX_USAGE_TOKENS",), power_of_ten),
    ("at most {} open,", ("backends.llama_prompt:MAX_VOCABS",), plain),
    ("it keeps at most {} vocabularies (the oldest written dropped first)", ("backends.llama_control_cache:MAX_ENTRIES",), plain),
    ("a text of over `ON_CALLERS_STACK` ({} characters)", ("backends.llama_prompt:ON_CALLERS_STACK",), thousands),
    ("`STACK_PER_CHAR` ({} bytes a character,", ("backends.llama_prompt:STACK_PER_CHAR",), plain),
    ("whose stack is {} MiB plus", ("backends.llama_prompt:STACK_BASE",), mib),
    ("`MAX_TOKENIZED_CHARS` ({} characters,", ("backends.llama_prompt:MAX_TOKENIZED_CHARS",), thousands),
    ("a stack of {} MiB, `MAX_TOKENIZER_STACK`", ("backends.llama_prompt:MAX_TOKENIZER_STACK",), mib),
    ("its load failed (tried again {} s after", ("manager:RECHECK_S",), plain),
    # checks.py bounds and the CLI's
    ("`train --epochs`: 1 to {};", ("checks:MAX_EPOCHS",), thousands),
    ("`demo --repeats`: 1 to {};", ("demo_cli:MAX_REPEATS",), thousands),
    ("`train-gate --folds`: {} to {};", ("checks:MIN_GATE_FOLDS", "checks:MAX_GATE_FOLDS"), plain),
    ("`generate-data --n`: {} to {},", ("data.synthetic:MIN_DATASET_SIZE", "checks:MAX_SYNTHETIC_PROMPTS"),
     thousands),
    ("every `--seed`: 0 to {})", ("checks:MAX_SEED",), thousands),
    ("`humaneval --cascade-budget 11` (at most {})", ("checks:MAX_CASCADE_BUDGET",), plain),
    ("`generate-data --n` makes at most {} synthetic prompts (`checks.MAX_SYNTHETIC_PROMPTS`)",
     ("checks:MAX_SYNTHETIC_PROMPTS",), thousands),
    ("synthetic prompts (`--n`) at most {} as `generate-data`'s, timed repeats (`--repeat`, `--repeats`, "
     "`--rounds`) 1 to {}, the requests of `server_overhead` and `streaming` (`--n`) at most {}, a request "
     "log's `--sizes` at most {}, `budget_overhead`'s timed checks (`--requests`) at most {}, "
     "`encoder_latency`'s `--prompts` at most {}, re-splits (`quality_selection --resplits`, 1 to {}; "
     "`routing_targets --resplits`, 0 to {}), `serving_gate --folds` {} to {} as `train-gate`'s",
     ("checks:MAX_SYNTHETIC_PROMPTS", "checks:MAX_TIMED_REPEATS", "checks:MAX_BENCHMARK_REQUESTS",
      "checks:MAX_BENCHMARK_LOG_ROWS", "checks:MAX_TIMED_CHECKS", "checks:MAX_ENCODER_PROMPTS",
      "checks:MAX_RESPLITS", "checks:MAX_RESPLITS", "checks:MIN_GATE_FOLDS", "checks:MAX_GATE_FOLDS"),
     thousands),
    ("the energy and CO2 figures per token at most {} a token, the token prices at # most {} (1,000 USD "
     "a token), params_b {} (a thousand parameters) to {}",
     ("checks:MAX_KWH_PER_TOKEN", "checks:MAX_USD_PER_1M_TOKENS", "checks:MIN_PARAMS_B",
      "checks:MAX_PARAMS_B"), lambda v: thousands(v) if v == 1000 else scientific(v)),
    ("default every core, at most {}, llama.cpp's maximum", ("checks:MAX_THREADS",), plain),
    ("a line of {} bytes or more", ("cli:TERMINAL_LINE_BYTES",), thousands),
    # the rules router
    ("counts a Chinese character as 1/{} of a word (`CJK_CHARS_PER_WORD`), a Japanese kana as "
     "1/{} (`KANA_PER_WORD`; its Chinese characters count as Chinese ones) and a Korean word "
     "as 1/{} (`KOREAN_WORDS_PER_WORD`)",
     ("routers.rules:CJK_CHARS_PER_WORD", "routers.rules:KANA_PER_WORD",
      "routers.rules:KOREAN_WORDS_PER_WORD"), plain),
    # the cascade's reading of a request and of an answer
    ("at most `MAX_EXAMPLES` ({}) examples of a function", ("eval.prompt_examples:MAX_EXAMPLES",), plain),
    ("stop at `MAX_COMPILED_CHARS` ({} characters", ("eval.cut_compiler:MAX_COMPILED_CHARS",), thousands),
    # override rules
    ("repeats its parts over {} times", ("overrides:MAX_PATTERN_COPIES",), thousands),
    ("with a time limit of {} s a prompt (`PATTERN_TIMEOUT_S`)", ("overrides:PATTERN_TIMEOUT_S",), plain),
    ("its pattern took over {} s on this prompt", ("overrides:PATTERN_TIMEOUT_S",), plain),
    ("All the rules' patterns together have {} s a prompt (`PATTERNS_TIMEOUT_S`)",
     ("overrides:PATTERNS_TIMEOUT_S",), plain),
    ("the rules' patterns took over {} s together", ("overrides:PATTERNS_TIMEOUT_S",), plain),
    # the report's recommendations
    ("at least {} (`REPEATED_SHARE`)", ("carbon.recommend_base:REPEATED_SHARE",), percent),
    ("is more than {} (`LOADING_SHARE`)", ("carbon.recommend_base:LOADING_SHARE",), percent),
    ("at least {} (`CUT_SHARE`)", ("carbon.recommend_base:CUT_SHARE",), percent),
    ("over at least {} (`CUT_MIN_REQUESTS`)", ("carbon.recommend_base:CUT_MIN_REQUESTS",), plain),
    ("is more than {} (`ROUTER_SHARE`", ("carbon.recommend_base:ROUTER_SHARE",), percent),
    ("more than {} (`LARGEST_SHARE`)", ("carbon.recommend_base:LARGEST_SHARE",), percent),
    ("of at least {} (`LARGEST_MIN_REQUESTS`", ("carbon.recommend_base:LARGEST_MIN_REQUESTS",), plain),
    ("at least {} (`ESTIMATED_SHARE`)", ("carbon.recommend_base:ESTIMATED_SHARE",), percent),
    # carbon
    ("at most every {} minutes while it goes on", ("carbon.codecarbon_meter:FAILURE_REPEAT_S",),
     minutes_in_words),
    ("from the log (its latest {} answered requests", ("carbon.predictor:HISTORY",), plain),
    ("the output length as the {} quantile of the output lengths of the model's {} logged requests "
     "nearest in prompt length", ("carbon.predictor:QUANTILE", "carbon.predictor:NEIGHBOURS"), plain),
    ("a model with fewer than {} logged requests is predicted so", ("carbon.predictor:MIN_HISTORY",), plain),
    ("(km by an average car at {} g/km and smartphone charges at {} g",
     ("carbon.report:KG_CO2_PER_KM_CAR", "carbon.report:KG_CO2_PER_SMARTPHONE_CHARGE"), grams),
    # routers, feedback, gates and metrics
    ("The system remembers the last {} routed requests", ("feedback:MAX_REMEMBERED",), thousands),
    ("saved back to its folder every {} learned scores", ("feedback:SAVE_EVERY",), plain),
    ("learns (every {} scores, and at close)", ("feedback:SAVE_EVERY",), plain),
    ("A weight is a number > 0, at most {} (default 1)", ("routers.ensemble:MAX_WEIGHT",), power_of_ten),
    ("A file written in the last {} seconds (`GateWeights.SETTLED_S`", ("served_gate:GateWeights.SETTLED_S",),
     plain),
    ("is less than {} better than the cheapest (`TINY_GAP`)", ("eval.routing_metrics:TINY_GAP",), plain),
    ("the lambda sweep took {} values", ("eval.routing_metrics:N_LAMBDAS",), plain),
    ("percentile of {} resamples", ("eval.paired:RESAMPLES",), thousands),
    ("read on the first {} characters", ("data.policy_labels:IDK_WINDOW",), plain),
    ("linear warmup of {} steps", ("training.trainer:DEFAULT_WARMUP_STEPS",), plain),
    ("router's `max_length` ({} unless given)", ("routers.classifier:DEFAULT_MAX_LENGTH",), plain),
    ("the held-out prompts are dealt into {} folds (`cross_fit.FOLDS`", ("routers.cross_fit:FOLDS",), plain),
    ("`calibrate(..., signal_se={})`, the default `calibration.SIGNAL_SE`", ("routers.calibration:SIGNAL_SE",),
     lambda v: f"{v:.1f}"),
    # encoders
    ("read its first {} tokens (as sentence-transformers does), `hf:` its first {}",
     ("encoders.minilm:MINILM_MAX_LENGTH", "encoders.hf:DEFAULT_MAX_LENGTH"), plain),
    ("(the packaged all-MiniLM-L6-v2, mean-pooled, {}-d)", ("encoders.minilm:MINILM_DIM",), plain),
    # the sandbox
    ("size ({} MiB a file;", ("eval.sandbox:MAX_FILE_BYTES",), mib),
    ("Output beyond {} kB kills the run", ("eval.sandbox:MAX_OUTPUT_BYTES",), kilo),
    ("reported in {} kB at most", ("eval.sandbox_runner:REPORT_BYTES",), kilo),
    # the config file
    ("A file over {} MiB", ("config_yaml:MAX_CONFIG_BYTES",), mib),
]  # fmt: skip


def _config_models() -> dict[str, type[BaseModel]]:
    return {
        name: obj
        for module in (config_module, config_sections)
        for name, obj in vars(module).items()
        if isinstance(obj, type) and issubclass(obj, BaseModel)
    }


MODELS = _config_models()


def _default(model: str, field: str) -> Any:
    return MODELS[model].model_fields[field].default


def _bound(model: str, field: str, kind: str) -> Any:
    """A field's ``le``/``ge``/``gt`` as its pydantic metadata gives it."""
    (bound,) = [
        getattr(m, kind) for m in MODELS[model].model_fields[field].metadata if hasattr(m, kind)
    ]
    return bound


# (README phrase with {} for each value; the values, as ("Model", "field") for a default or
# ("Model", "field", "le") for a bound; how written). From "Model entries" and "Other
# sections and paths" under "Configuration", "Request cache" and "Override rules".
CONFIG: list[tuple[str, tuple[tuple[str, ...], ...], Format]] = [
    ("`router` (`name`, default `{}`; `seed`, default {};",
     (("RouterSettings", "name"), ("RouterSettings", "seed")), yaml_value),
    ("`learn`, default {}:", (("RouterSettings", "learn"),), yaml_value),
    ("`cascade` (`enabled`, default {}; `timeout_s`, default {};",
     (("CascadeConfig", "enabled"), ("CascadeConfig", "timeout_s")), yaml_value),
    ("`generation` (temperature {}, at most {} as in the OpenAI API, here and in a request; top_p {} "
     "(over 0, at most 1), max_new_tokens {}, repetition_penalty {}, seed {};",
     (("GenerationConfig", "temperature"), ("GenerationConfig", "temperature", "le"),
      ("GenerationConfig", "top_p"), ("GenerationConfig", "max_new_tokens"),
      ("GenerationConfig", "repetition_penalty"), ("GenerationConfig", "seed")), yaml_value),
    ("`complete_stubs`, default {}:", (("GenerationConfig", "complete_stubs"),), yaml_value),
    ("default {}, at most {} (a request's cost stays finite)",
     (("CarbonConfig", "electricity_price_usd_per_kwh"), ("CarbonConfig", "electricity_price_usd_per_kwh", "le")),
     lambda v: thousands(v) if v >= 1000 else yaml_value(v)),
    ("`carbon` (`enabled`, default {}; `country_iso_code`, three letters, default `{}`; `output_dir`, "
     "default `{}`; `electricity_price_usd_per_kwh`, default {},",
     (("CarbonConfig", "enabled"), ("CarbonConfig", "country_iso_code"), ("CarbonConfig", "output_dir"),
      ("CarbonConfig", "electricity_price_usd_per_kwh")), yaml_value),
    ("`tracking_mode`, `{}` (default)", (("CarbonConfig", "tracking_mode"),), yaml_value),
    ("`log.path` (default `{}`)", (("LogConfig", "path"),), yaml_value),
    ("(`memory_budget_gb`, default {};", (("ManagerConfig", "memory_budget_gb"),), yaml_value),
    ("default every core, at most {}, llama.cpp's maximum", (("ManagerConfig", "n_threads", "le"),),
     yaml_value),
    ("`limits.max_prompt_chars` (default {})", (("LimitsConfig", "max_prompt_chars"),), thousands),
    # the model entry's commented YAML block
    ("# code | text | general (default {};", (("ModelConfig", "category"),), yaml_value),
    ("params_b {} (a thousand parameters) to {}",
     (("ModelConfig", "params_b", "ge"), ("ModelConfig", "params_b", "le")), scientific),
    ("load_in_4bit (default {}), gpus (GPUs needed, default {})",
     (("ModelConfig", "load_in_4bit"), ("ModelConfig", "gpus")), yaml_value),
    ("timeout_s (per attempt, default {}, at # most {}), max_retries (default {}, at most {})",
     (("ModelConfig", "timeout_s"), ("ModelConfig", "timeout_s", "le"), ("ModelConfig", "max_retries"),
      ("ModelConfig", "max_retries", "le")), lambda v: thousands(v) if v > 1000 else yaml_value(v)),
    ("context_length: {} # tokens (default {}), {} to 2**31 - 1",
     (("ModelConfig", "context_length"), ("ModelConfig", "context_length"),
      ("ModelConfig", "context_length", "gt")), lambda v: plain(v + 1 if v == 16 else v)),
    ("cost_per_1m_input_usd: {} # token prices", (("ModelConfig", "cost_per_1m_input_usd"),), yaml_value),
    # the request cache
    ("max_entries: {} # least recently used out first (1 to {})",
     (("CacheConfig", "max_entries"), ("CacheConfig", "max_entries", "le")),
     lambda v: thousands(v) if v > 1000 else yaml_value(v)),
    ("ttl_s: {} # an answer is served from the cache for a day", (("CacheConfig", "ttl_s"),), yaml_value),
    # budgets and override rules
    ("`step: 0` or beyond {} either way", (("OverrideRule", "step", "le"),), yaml_value),
    ("a blank name or one over {} characters", (("OverrideRule", "name", "max_length"),), yaml_value),
]  # fmt: skip


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


@functools.cache
def _assigned(path: Path) -> dict[str, Any]:
    """The module's constants (and its classes', as "Class.NAME") whose value its source
    computes from literals and its earlier constants: read without importing the module
    (the trainer's imports torch, seconds)."""
    values: dict[str, Any] = {}

    def run(body: list[ast.stmt], prefix: str, scope: dict[str, Any]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.ClassDef):
                run(stmt.body, f"{prefix}{stmt.name}.", dict(scope))
            if not isinstance(stmt, ast.Assign | ast.AnnAssign) or stmt.value is None:
                continue
            try:
                value = eval(compile(ast.Expression(stmt.value), str(path), "eval"), {"__builtins__": {}}, scope)  # fmt: skip
            except Exception:  # a name imported, or a call: not a constant of its own
                continue
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
            names = [target] if isinstance(target, ast.Name) else getattr(target, "elts", [])
            parts = [value] if isinstance(target, ast.Name) else list(value)
            for node, part in zip(names, parts, strict=False):
                if isinstance(node, ast.Name):
                    scope[node.id] = part
                    values[prefix + node.id] = part

    run(_tree(path).body, "", {})
    return values


def _value(path: str) -> Any:
    """ "module:NAME" or "module:Class.NAME" under routerllm, as its source assigns it, else
    as the module has it once imported (a value computed from an imported name)."""
    module, name = path.split(":")
    file = SRC.joinpath(*module.split(".")).with_suffix(".py")
    if name in _assigned(file):
        return _assigned(file)[name]
    obj: Any = importlib.import_module(f"routerllm.{module}")
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _missing(phrase: str, values: list[Any], fmt: Format) -> str | None:
    written = phrase.format(*(fmt(v) for v in values))
    return None if written in FLAT else written


@pytest.mark.parametrize("phrase, paths, fmt", CONSTANTS, ids=[p[:50] for p, _, _ in CONSTANTS])
def test_the_readme_states_each_constant_as_the_code_has_it(
    phrase: str, paths: tuple[str, ...], fmt: Format
) -> None:
    missing = _missing(phrase, [_value(p) for p in paths], fmt)
    assert missing is None, f"README lacks {missing!r}: update it to the code's {paths}"


@pytest.mark.parametrize("phrase, fields, fmt", CONFIG, ids=[p[:50] for p, _, _ in CONFIG])
def test_the_readme_states_each_config_default_as_the_models_have_it(
    phrase: str, fields: tuple[tuple[str, ...], ...], fmt: Format
) -> None:
    values = [_bound(*f) if len(f) == 3 else _default(*f) for f in fields]
    missing = _missing(phrase, values, fmt)
    assert missing is None, f"README lacks {missing!r}: update it to config's {fields}"


# (README phrase with {}; the command and its option's dest; how written): `--help`'s defaults
CLI: list[tuple[str, str, str, Format]] = [
    ("`--max-new-tokens N` (default {})", "demo", "max_new_tokens", plain),
    ("(`--folds`, 2 to 20, {} by default;", "train-gate", "folds", plain),
    ("cross-validation over problems (default {}, leave-one-out", "humaneval", "folds", plain),
]


@functools.cache
def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from routerllm.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.mark.parametrize("phrase, command, dest, fmt", CLI, ids=[c[0][:50] for c in CLI])
def test_the_readme_states_each_command_line_default_as_the_parser_has_it(
    phrase: str, command: str, dest: str, fmt: Format
) -> None:
    (default,) = [a.default for a in _subcommands()[command]._actions if a.dest == dest]
    missing = _missing(phrase, [default], fmt)
    assert missing is None, f"README lacks {missing!r}: update it to `{command}`'s default"


def _parameter_default(module: str, function: str, parameter: str) -> Any:
    """A keyword's default as ``Class.method`` (or a function) of ``module`` writes it,
    read from the source: importing a router's module to read one number is not needed."""
    tree = _tree(SRC.joinpath(*module.split(".")).with_suffix(".py"))
    *owner, name = function.split(".")
    scope = tree.body
    if owner:
        (scope,) = [n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner[0]]
    (fn,) = [n for n in scope if isinstance(n, ast.FunctionDef) and n.name == name]
    positional = fn.args.posonlyargs + fn.args.args
    pairs = list(
        zip(positional[len(positional) - len(fn.args.defaults) :], fn.args.defaults, strict=True)
    )
    pairs += [
        (a, d)
        for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults, strict=True)
        if d is not None
    ]
    (default,) = [ast.literal_eval(d) for a, d in pairs if a.arg == parameter]
    return default


# (README phrase with {}; module, function and keyword whose default it states; how written)
OPTIONS: list[tuple[str, tuple[str, str, str], Format]] = [
    ("(precision `ridge`, default {})", ("routers.feedback", "FeedbackRouter.__init__", "ridge"), plain),
    ("the spread scaled by `explore` (default {};", ("routers.feedback", "FeedbackRouter.__init__", "explore"),
     plain),
]  # fmt: skip


@pytest.mark.parametrize("phrase, where, fmt", OPTIONS, ids=[o[0][:50] for o in OPTIONS])
def test_the_readme_states_each_router_option_default_as_the_code_has_it(
    phrase: str, where: tuple[str, str, str], fmt: Format
) -> None:
    missing = _missing(phrase, [_parameter_default(*where)], fmt)
    assert missing is None, f"README lacks {missing!r}: update it to {where}'s default"


# ---- every UPPER_CASE name the README backticks exists

# `NAME`, `module.NAME`, `Class.NAME`, `$NAME` or `NAME=value`, NAME with an underscore
BACKTICKED = re.compile(r"`\$?(?:(\w+)\.)?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=[^`\s]*)?`")
# llama.cpp's types (`x.Q8_0`: a model named as a converted file ends), not names in code
QUANT_TYPE = re.compile(r"I?Q\d\w*|[BF]F?\d+")
# named by the README from a package the code reads, not from the code: the package's
OUTSIDE = {"GGML_QUANT_SIZES": "gguf"}  # checked against ggml's block structs


@functools.cache
def _sources() -> dict[Path, str]:
    files = [*sorted(SRC.rglob("*.py")), ROOT / "tests" / "conftest.py", ROOT / "dev.py"]
    return {path: path.read_text(encoding="utf-8") for path in files}


def _defined(name: str) -> dict[str, Path]:
    """Where ``name`` is assigned at module or class level: the module's file stem or the
    class's name, each with its file."""
    owners: dict[str, Path] = {}
    for path in (p for p, text in _sources().items() if name in text):  # parse only those
        scopes: list[tuple[str, list[ast.stmt]]] = [(path.stem, _tree(path).body)]
        while scopes:
            owner, body = scopes.pop()
            for stmt in body:
                if isinstance(stmt, ast.ClassDef):
                    scopes.append((stmt.name, stmt.body))
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []  # fmt: skip
                if any(
                    isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)
                ):
                    owners[owner] = path
    return owners


def _used(name: str) -> bool:
    """Whether the code uses ``name`` other than by defining it: in a string (an
    environment variable), as an attribute (`resource.RLIMIT_NOFILE`) or an import;
    a comment does not count."""
    for path in (p for p, text in _sources().items() if name in text):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found = name in re.findall(r"[A-Z][A-Z0-9_]+", node.value)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                found = name in (alias.name.rsplit(".", 1)[-1] for alias in node.names)
            else:
                found = isinstance(node, ast.Attribute) and node.attr == name
            if found:
                return True
    return False


def _readme_names() -> list[tuple[str | None, str]]:
    found = {(m[1], m[2]) for m in BACKTICKED.finditer(README) if not QUANT_TYPE.fullmatch(m[2])}
    return sorted(found, key=lambda qn: (qn[1], qn[0] or ""))


def test_every_upper_case_name_the_readme_backticks_exists_in_the_code() -> None:
    names = _readme_names()
    assert len(names) >= 30, names  # the pattern still finds what the README names
    gone = []
    for qualifier, name in names:
        if qualifier is not None:  # `serving.WRITE_TIMEOUT_S`: defined in that module or class
            if qualifier not in _defined(name):
                gone.append(f"{qualifier}.{name}")
        elif name in OUTSIDE:
            if not hasattr(importlib.import_module(OUTSIDE[name]), name):
                gone.append(f"{OUTSIDE[name]}.{name}")
        elif not _defined(name) and not _used(name):
            gone.append(name)
    assert not gone, f"the README names what the code no longer has: {gone}"


def test_every_numeric_constant_the_readme_names_has_its_value_checked() -> None:
    """A constant newly named in the README is added to CONSTANTS with the phrase that
    states its value, so that value is checked too."""
    checked = {p.split(":")[1].rsplit(".", 1)[-1] for _, paths, _ in CONSTANTS for p in paths}
    numeric = []
    for _, name in _readme_names():
        for owner, path in _defined(name).items():
            value = _assigned(path).get(name if owner == path.stem else f"{owner}.{name}")
            if (
                SRC in path.parents
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                numeric.append(name)
    assert len(numeric) >= 15, numeric
    assert sorted(set(numeric) - checked) == []
