import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import BaseModel

from routerllm.config import (
    PACKAGED_CONFIGS,
    AppConfig,
    BudgetConfig,
    GGUFSource,
    LimitsConfig,
    ManagerConfig,
    load_config,
)
from routerllm.config_yaml import read_config_yaml
from routerllm.exceptions import ConfigError, UnknownNameError
from routerllm.system import RouterLLM

from .conftest import tiny_config_dict, write_config


@pytest.mark.parametrize("name", PACKAGED_CONFIGS)
def test_packaged_configs_load(name: str) -> None:
    config = load_config(name)
    assert config.models
    assert {m.tier for m in config.models} <= {"light", "medium", "heavy"}


def test_local_ladder_is_the_offline_default() -> None:
    config = load_config("local")
    assert [m.tier for m in config.models_by_size()] == ["light", "medium", "heavy"]
    assert all(m.backend == "llama_cpp" for m in config.models)
    assert all(m.energy_per_token_kwh and m.energy_per_token_kwh > 0 for m in config.models)


def test_the_local_ladder_fits_its_memory_budget_together() -> None:
    """The demo and HumanEval keep the three models loaded: once the manager counted
    each llama.cpp model's KV cache, 4.0 GB held 4.16 and loading the 1.5B evicted
    another. Without the model files here the KV caches count 0 and this checks less."""
    from routerllm.manager import LLMManager

    config = load_config("local")
    manager = LLMManager(config)
    need = sum(manager.local_gb(m.name) for m in config.models)
    assert need <= config.manager.memory_budget_gb


def test_production_has_multi_gpu_models() -> None:
    config = load_config("production")
    big = [m for m in config.models if m.params_b >= 100]
    assert len(big) == 3 and all(m.gpus >= 2 for m in big)


@pytest.mark.parametrize("name", PACKAGED_CONFIGS)
def test_packaged_models_state_their_context_length(name: str) -> None:
    """production.yaml gave none: its models had the default 4096, so a Llama-3.1
    prompt of 5,000 tokens was refused, and Falcon and BLOOM wrote past their 2048."""
    assert all("context_length" in m.model_fields_set for m in load_config(name).models)


def test_production_context_lengths_are_the_models_own() -> None:
    got = {m.name: m.context_length for m in load_config("production").models}
    assert got["llama-3.1-70b"] == got["llama-3.1-405b"] == 131072
    assert got["codellama-13b"] == got["codellama-34b"] == 16384
    assert got["falcon-180b"] == got["bloom-176b"] == 2048


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_an_empty_config_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty path used to read as the current directory ("config  is a directory").
    with pytest.raises(ConfigError, match="the config path is empty"):
        load_config("")
    monkeypatch.setenv("ROUTERLLM_CONFIG", "")  # an unset variable in a script
    assert load_config().source == load_config("local").source


def test_a_missing_config_from_the_environment_says_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A variable set long ago in a shell profile named a file the user never typed:
    # "config file not found: nope.yaml" alone sent them looking for a --config.
    monkeypatch.setenv("ROUTERLLM_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"nope\.yaml \(from \$ROUTERLLM_CONFIG\)"):
        load_config()
    monkeypatch.setenv("ROUTERLLM_CONFIG", str(tmp_path))
    with pytest.raises(ConfigError, match=r"\(from \$ROUTERLLM_CONFIG\) is a directory"):
        load_config()
    with pytest.raises(ConfigError) as given:  # a path the caller gave is theirs: no hint
        load_config(tmp_path / "nope.yaml")
    assert "ROUTERLLM_CONFIG" not in str(given.value)


@pytest.mark.parametrize("path", [{}, 123, b"local", ["local"]])
def test_a_config_path_of_another_type_is_a_clear_error(path: object) -> None:
    with pytest.raises(ConfigError, match=f"a config is a YAML path .*got {type(path).__name__}"):
        load_config(path)  # type: ignore[arg-type]


def test_a_config_given_as_a_dict_or_loaded_says_where_it_goes(tmp_path: Path) -> None:
    # a developer with the config built in code: it told them only what to do with an
    # AppConfig, never that a dict is checked by AppConfig.model_validate
    data = tiny_config_dict(tmp_path)
    with pytest.raises(ConfigError) as err:
        RouterLLM.from_config(data)  # type: ignore[arg-type]
    assert str(err.value) == (
        "a config is a YAML path or one of: local, development, production; got dict "
        "(a config built in code is checked by AppConfig.model_validate(data); give the "
        "AppConfig to RouterLLM(config))"
    )
    with pytest.raises(ConfigError, match=r"got AppConfig \(a loaded AppConfig goes to RouterLLM\(config\) directly\)$"):  # fmt: skip
        load_config(AppConfig.model_validate(data))  # type: ignore[arg-type]


@pytest.mark.parametrize("section", ["generation", "router"])
@pytest.mark.parametrize("seed", [-7, 2**40])
def test_seeds_out_of_range_are_refused(tmp_path: Path, section: str, seed: int) -> None:
    data = tiny_config_dict(tmp_path)
    data[section] = {"seed": seed}
    with pytest.raises(ConfigError, match=rf"{section}\.seed"):
        load_config(write_config(tmp_path, data))


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("models:\n  - name: a\n    tier: [light\n")
    with pytest.raises(ConfigError, match=r"malformed YAML \(line \d+"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("generation:\n  max_new_tokens: " + "9" * 5000 + "\n", "malformed YAML: .*digits"),
        ("models: " + "[" * 5000 + "]" * 5000 + "\n", "malformed YAML: nested too deeply"),
    ],
    ids=["5000-digit-integer", "5000-nested-lists"],
)
def test_yaml_python_cannot_read_is_malformed_not_a_traceback(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_utf16_config_loads_and_other_encodings_say_to_save_it_as_utf8(
    tmp_path: Path,
) -> None:
    """YAML is UTF-8 or UTF-16 with its byte-order mark (as Windows PowerShell writes a
    file): a UTF-16 config was refused with a raw codec error, as was a Latin-1 one."""
    text = write_config(tmp_path, tiny_config_dict(tmp_path)).read_text()
    path = tmp_path / "utf16.yaml"
    path.write_text(text, encoding="utf-16")
    assert [m.name for m in load_config(path).models] == ["tiny-light", "tiny-medium", "tiny-heavy"]  # fmt: skip
    path.write_bytes(text.replace("name: tiny-light", "name: caf\xe9", 1).encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte \d+: .*\); save the config as UTF-8"):  # fmt: skip
        load_config(path)
    path.write_text("models: \x00\n")  # decoded, but a character YAML refuses
    with pytest.raises(ConfigError, match="malformed YAML: unacceptable character #x0000"):
        load_config(path)


@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-be"])
def test_a_utf32_config_says_to_save_it_as_utf8(tmp_path: Path, encoding: str) -> None:
    """A UTF-32 config (PowerShell's ``Out-File -Encoding utf32``) was refused as
    "malformed YAML: unacceptable character #x0000", which said nothing of its encoding."""
    text = write_config(tmp_path, tiny_config_dict(tmp_path)).read_text()
    path = tmp_path / "utf32.yaml"
    bom = b"\x00\x00\xfe\xff" if encoding.endswith("be") else b""  # "utf-32" writes its own
    path.write_bytes(bom + text.encode(encoding))
    with pytest.raises(ConfigError, match=r"utf32\.yaml: UTF-32 text; save the config as UTF-8$"):
        load_config(path)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_a_config_in_utf16_or_utf32_without_a_bom_says_so(tmp_path: Path, encoding: str) -> None:
    """UTF-16 or UTF-32 without a byte-order mark was refused as "malformed YAML:
    unacceptable character #x0000", which did not say the encoding was the problem."""
    text = write_config(tmp_path, tiny_config_dict(tmp_path)).read_text()
    text = text.replace("name: tiny-light", "name: caf\xe9-\u8def", 1)  # not ASCII alone
    path = tmp_path / "wide.yaml"
    path.write_bytes(text.encode(encoding))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == (
        f"{path}: the file looks UTF-16 or UTF-32 without a byte-order mark: save it as UTF-8"
    )
    path.write_text(text, encoding="utf-16")  # with its mark: read as ever
    assert load_config(path).models[0].name == "caf\xe9-\u8def"


def _laughs(levels: int) -> str:
    """YAML whose aliases expand to 9**levels values from a few hundred bytes."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "".join(f"    {line}\n" for line in lines)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            _laughs(9),
            r"line \d+, column \d+\): its aliases \(\*name\) expand to over 1,000,000 values",
        ),
        ("    thresholds: &a [1, *a]\n", r"an alias \(\*name\) inside the value it names"),
    ],
    ids=["billion-laughs", "alias-in-itself"],
)
def test_aliases_that_expand_without_end_are_refused_when_the_config_loads(
    tmp_path: Path, options: str, message: str
) -> None:
    """Nine aliases of nine values each (a "billion laughs", 387 million values from
    600 bytes) in ``router.options`` loaded, then ``routerllm route`` took 7.7 GB and
    minutes to build the router; an alias in itself loaded as a list that holds itself."""
    text = write_config(tmp_path, tiny_config_dict(tmp_path)).read_text()
    path = tmp_path / "laughs.yaml"
    path.write_text(text.replace("router:\n  name: rules\n", f"router:\n  name: rules\n  options:\n{options}"))  # fmt: skip
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    path.write_text(text.replace("router:\n  name: rules\n", f"router:\n  name: rules\n  options:\n{_laughs(4)}"))  # fmt: skip
    assert len(load_config(path).router.options["a3"]) == 9  # aliases that expand a little


def test_a_config_of_megabytes_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A file given as ``--config`` by mistake (a dataset, a log): 50 MB of YAML took
    PyYAML 19 s to read, 2 MiB one second; a config is a few KB."""
    path = write_config(tmp_path, tiny_config_dict(tmp_path))
    with path.open("a") as f:
        f.write("# " + "x" * 2**21 + "\n")
    with pytest.raises(ConfigError, match=r"config\.yaml is 2\.1 MB: a config is a few KB of YAML"):
        load_config(path)


def test_a_key_given_twice_is_refused_not_overwritten(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: a second ``budgets:`` silently dropped
    the first's limits. A key after a merge (``<<: *anchor``) still overrides it."""
    path = write_config(tmp_path, tiny_config_dict(tmp_path))
    text = path.read_text()
    path.write_text(text + "budgets:\n  co2_kg: {daily: 0.5}\nbudgets:\n  level: relaxed\n")
    with pytest.raises(ConfigError, match=r"line \d+, column 1\): found duplicate key 'budgets'"):
        load_config(path)
    path.write_text(text.replace("  tier: light\n", "  tier: light\n  tier: heavy\n", 1))
    with pytest.raises(ConfigError, match="found duplicate key 'tier'"):
        load_config(path)
    gguf = tiny_config_dict(tmp_path)["models"][0]["gguf"]["path"]
    path.write_text(
        "models:\n"
        f"  - &light {{name: a, backend: llama_cpp, tier: light, params_b: 0.1, memory_gb: 0.1, gguf: {{path: '{gguf}'}}}}\n"
        "  - <<: *light\n    name: b\n    tier: heavy\n"
    )  # fmt: skip
    assert [(m.name, m.tier) for m in load_config(path).models] == [("a", "light"), ("b", "heavy")]


def _pure_python_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gains an item each time PyYAML's pure-Python reader starts reading a
    document."""
    reads: list[int] = []
    start = yaml.reader.Reader.__init__

    def counted(self: yaml.reader.Reader, stream: object) -> None:
        reads.append(1)
        start(self, stream)

    monkeypatch.setattr(yaml.reader.Reader, "__init__", counted)
    return reads


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
def test_configs_are_read_by_libyaml_and_its_refusals_again_by_pure_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyYAML's pure-Python reader took 8.5-12.5 ms a config, libyaml 1.7-2.2 ms, at every
    command's start and in every test that loads one. A document libyaml refuses is read
    again by the pure-Python loader: its error (words, line and column) is the answer."""
    import routerllm

    packaged = [Path(routerllm.__file__).parent / "configs" / f"{n}.yaml" for n in PACKAGED_CONFIGS]  # fmt: skip
    # as the pure-Python loader reads them
    expected = [yaml.load(path.read_bytes(), yaml.SafeLoader) for path in packaged]  # noqa: S506
    reads = _pure_python_reads(monkeypatch)
    assert [read_config_yaml(path) for path in packaged] == expected
    assert load_config(write_config(tmp_path, tiny_config_dict(tmp_path))).models
    assert reads == []
    path = tmp_path / "twice.yaml"
    path.write_text("a: 1\nb:\n  c: 2\n  c: 3\n")
    with pytest.raises(ConfigError, match=r"\(line 4, column 3\): found duplicate key 'c'"):
        read_config_yaml(path)
    path.write_text("models: \x00\n")
    with pytest.raises(ConfigError, match="malformed YAML: unacceptable character #x0000"):
        read_config_yaml(path)
    assert reads == [1, 1]  # each refusal read again


def test_configs_load_where_pyyaml_has_no_libyaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyYAML built without libyaml (no ``yaml.CSafeLoader``): its pure-Python reader."""
    from routerllm.config_yaml import _loaders

    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    _loaders.cache_clear()
    try:
        reads = _pure_python_reads(monkeypatch)
        assert [m.name for m in load_config(write_config(tmp_path, tiny_config_dict(tmp_path))).models] == ["tiny-light", "tiny-medium", "tiny-heavy"]  # fmt: skip
        assert reads == [1]
    finally:
        monkeypatch.undo()
        _loaders.cache_clear()


def test_validation_errors_name_the_field(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path)
    data["models"][0]["tier"] = "gigantic"
    data["models"][1]["memory_gb"] = -1
    data["models"][2]["memory_gb"] = float("inf")
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, data))
    msg = str(err.value)
    assert "models.0.tier" in msg and "models.1.memory_gb" in msg and "models.2.memory_gb" in msg


def test_a_bool_is_not_a_number_but_a_number_in_text_is(tmp_path: Path) -> None:
    """YAML reads `yes`/`on`/`true` as a bool, which pydantic would take as 1; and it
    reads `5e-7` (no dot) as text, which is still that number."""
    path = tmp_path / "c.yaml"
    data = tiny_config_dict(tmp_path)
    del data["manager"]["n_threads"]  # written below, as YAML's bool
    text = write_config(tmp_path, data).read_text()
    path.write_text(text.replace("manager:\n", "manager:\n  n_threads: yes\n", 1))
    with pytest.raises(ConfigError, match=r"manager\.n_threads: expected a number, not True$"):
        load_config(path)
    data = tiny_config_dict(tmp_path)
    data["models"][0]["energy_per_token_kwh"] = "5e-7"
    assert load_config(write_config(tmp_path, data)).models[0].energy_per_token_kwh == 5e-7


@pytest.mark.parametrize("threads", [10**20, 2**31 - 1, 513])
def test_a_thread_count_beyond_llama_cpps_is_refused(tmp_path: Path, threads: int) -> None:
    """A huge manager.n_threads aborted the process (std::bad_alloc in llama.cpp) when
    the first model loaded; it is refused with the config, naming the field."""
    data = tiny_config_dict(tmp_path, manager={"memory_budget_gb": 1.0, "n_threads": threads})
    with pytest.raises(ConfigError, match=r"manager\.n_threads: .*less than or equal to 512"):
        load_config(write_config(tmp_path, data))
    data["manager"]["n_threads"] = 512
    assert load_config(write_config(tmp_path, data)).manager.n_threads == 512


@pytest.mark.parametrize("length", [2**32 + 17, 2**31, 10**30])
def test_a_context_length_beyond_llama_cpps_is_refused(tmp_path: Path, length: int) -> None:
    """llama.cpp takes a 32-bit context length: 2**32 + 17 wrapped silently to a 17-token
    context (prompts refused as longer than "context 32 tokens" under a config of four
    billion); it is refused with the config, naming the field."""
    data = tiny_config_dict(tmp_path)
    data["models"][0]["context_length"] = length
    with pytest.raises(ConfigError, match=r"models\.0\.context_length: .*less than or equal to 2147483647"):  # fmt: skip
        load_config(write_config(tmp_path, data))
    data["models"][0]["context_length"] = 2**31 - 1
    assert load_config(write_config(tmp_path, data)).models[0].context_length == 2**31 - 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout_s", 1e12, "less than or equal to 86400"),
        ("max_retries", 40, "less than or equal to 20"),
    ],
)
def test_http_time_limits_are_bounded(
    tmp_path: Path, field: str, value: float, message: str
) -> None:
    """A day per attempt at most (socket timeouts overflow past time_t), 20 retries."""
    data = tiny_config_dict(tmp_path)
    data["models"][0] = {"name": "x", "backend": "openai_http", "tier": "light", "params_b": 1,
                         "memory_gb": 1, "base_url": "http://127.0.0.1:9/v1", "model_id": "m",
                         field: value}  # fmt: skip
    with pytest.raises(ConfigError, match=f"models.0.{field}: Input should be {message}"):
        load_config(write_config(tmp_path, data))


def test_backend_specific_fields_are_required(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path)
    data["models"][0] = {
        "name": "x",
        "backend": "openai_http",
        "tier": "light",
        "params_b": 1,
        "memory_gb": 1,
    }
    with pytest.raises(ConfigError, match="needs `base_url` and `model_id`"):
        load_config(write_config(tmp_path, data))


def test_duplicate_model_names_rejected(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path)
    data["models"][1]["name"] = data["models"][0]["name"]
    with pytest.raises(ConfigError, match="duplicate model names"):
        load_config(write_config(tmp_path, data))
    # "auto" asks the server to route: a model of that name could not be asked for
    data["models"][1]["name"] = "auto"
    with pytest.raises(ConfigError, match="a model is named 'auto', the name that asks the server to route"):  # fmt: skip
        load_config(write_config(tmp_path, data))


def test_unknown_key_and_top_level_shape(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path)
    data["routr"] = {}
    with pytest.raises(ConfigError, match="routr"):
        load_config(write_config(tmp_path, data))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path / "list.yaml")


def test_unknown_model_name_lists_valid(tiny_config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownNameError, match="valid names: tiny-heavy, tiny-light, tiny-medium"):
        tiny_config.model("gpt-9")


@pytest.mark.parametrize(
    ("section", "field", "value", "message"),
    [
        ("generation", "temperature", "hot", "valid number"),
        ("generation", "temperature", 50, "less than or equal to 2"),
        ("generation", "max_new_tokens", 0, "greater than 0"),
        ("limits", "max_prompt_chars", "x", "valid integer"),
        ("log", "path", None, "valid string"),
        ("log", "path", ":memory:", "not a file path"),
        ("router", "path", "", "at least 1 character"),
        ("generation", "temperature", True, "expected a number, not True"),
        ("generation", "seed", False, "expected a number, not False"),
    ],
)
def test_fields_set_in_code_are_checked_like_the_yaml(
    tmp_path: Path, section: str, field: str, value: object, message: str
) -> None:
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))
    part = getattr(config, section)
    before = getattr(part, field)
    with pytest.raises(ConfigError, match=f"cannot set .*{field} to .*{message}"):
        setattr(part, field, value)
    assert getattr(part, field) == before  # the config is left as it was
    config.generation.temperature = 1  # a good value still goes through
    assert config.generation.temperature == 1.0


def test_a_config_built_in_code_from_a_dict_is_checked_as_a_file_is(tmp_path: Path) -> None:
    """AppConfig(**data), AppConfig.model_validate(data) and a section made alone: a typo
    is one ConfigError line with the likely key, not pydantic's ValidationError."""
    data = tiny_config_dict(tmp_path)
    assert AppConfig.model_validate(data) == AppConfig(**data)  # a good dict goes through
    data["generation"] = {"temprature": 0.1}
    for build in (lambda: AppConfig(**data), lambda: AppConfig.model_validate(data)):
        with pytest.raises(ConfigError) as e:
            build()
        assert str(e.value) == (
            "invalid config: generation.temprature: unknown key (did you mean 'temperature'?)"
        )
    with pytest.raises(ConfigError, match=r"^invalid LimitsConfig: max_prompt_chars: .*integer"):
        LimitsConfig(max_prompt_chars="many")
    with pytest.raises(ConfigError, match="^invalid ManagerConfig: budget: unknown key"):
        ManagerConfig.model_validate({"budget": 3})


def test_a_config_read_from_json_in_code_is_checked_as_a_file_is(tmp_path: Path) -> None:
    """pydantic's other ways in, model_validate_json and model_validate_strings, gave its
    multi-line ValidationError (outside RouterLLMError) until 2026-12-05."""
    data = tiny_config_dict(tmp_path)
    assert AppConfig.model_validate_json(json.dumps(data)) == AppConfig(**data)
    data["generation"] = {"temprature": 0.1}
    with pytest.raises(ConfigError) as e:
        AppConfig.model_validate_json(json.dumps(data))
    assert str(e.value) == (
        "invalid config: generation.temprature: unknown key (did you mean 'temperature'?)"
    )
    with pytest.raises(ConfigError, match=r"^invalid config: \(top level\): Invalid JSON"):
        AppConfig.model_validate_json("{")
    with pytest.raises(ConfigError, match=r"^invalid LimitsConfig: max_prompt_chars: .*integer"):
        LimitsConfig.model_validate_strings({"max_prompt_chars": "many"})


def test_an_in_memory_log_is_refused(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path, log={"path": ":memory:"})
    with pytest.raises(ConfigError, match="log.path: .*':memory:' is not a file path"):
        load_config(write_config(tmp_path, data))


def test_a_path_from_the_home_folder_is_there_not_in_a_folder_named_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `log.path: ~/rl/requests.sqlite` was written to ./~/rl/ wherever a command ran
    from routerllm.system import RouterLLM

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    data = tiny_config_dict(
        tmp_path,
        log={"path": "~/rl/requests.sqlite"},
        carbon={"enabled": False, "output_dir": "~/rl/carbon"},
        cascade={"gate": "~/gates/he"},
    )
    config = load_config(write_config(tmp_path, data))
    assert config.log.path == str(home / "rl" / "requests.sqlite")
    assert config.carbon.output_dir == str(home / "rl" / "carbon")
    assert config.cascade.gate == str(home / "gates" / "he")
    config.router.path = "~/routers/knn"  # set in code too
    assert config.router.path == str(home / "routers" / "knn")
    config.router.path = None
    with RouterLLM(config):
        pass
    assert (home / "rl" / "requests.sqlite").is_file() and not (tmp_path / "~").exists()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("   ", "is blank"),
        (" tiny ", "has spaces around it"),
        ("tiny\n", "has spaces around it"),
        ("a\nb", "holds a control character"),
        ("a\tb", "holds a control character"),
        ("a\x00b", "holds a control character"),
        ("\x1b[31mred", "holds a control character"),
        ("tiny\u200b", "holds an invisible format character"),  # a zero-width space
        ("a\u202eb", "holds an invisible format character"),  # right-to-left override
        ("\ufefftiny", "holds an invisible format character"),  # a byte-order mark
    ],
)
def test_a_model_name_no_request_or_table_could_show_is_refused(
    tmp_path: Path, name: str, why: str
) -> None:
    """A blank name could not be asked for (the server and --model refuse a blank model);
    spaces around a name are invisible where it is printed; a control character broke the
    lines of route's, models' and report's tables (a newline, a tab) or drove the terminal
    (an escape sequence). Each was accepted until 2026-12-04."""
    data = tiny_config_dict(tmp_path)
    data["models"][0]["name"] = name
    with pytest.raises(ConfigError, match=f"models.0.name: a model's name {why}"):
        load_config(write_config(tmp_path, data))


@pytest.mark.parametrize("class_id", [-1, -4])
def test_a_negative_class_id_is_refused(tmp_path: Path, class_id: int) -> None:
    """A class_id names one of a classifier's classes, 0 and up: until 2026-12-05 a
    negative one loaded and silently matched no class."""
    data = tiny_config_dict(tmp_path)
    data["models"][0]["class_id"] = class_id
    with pytest.raises(ConfigError, match="models.0.class_id: Input should be greater than or equal to 0"):  # fmt: skip
        load_config(write_config(tmp_path, data))


def test_a_model_name_of_any_script_with_inner_spaces_and_slashes_is_kept(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path)
    names = ["é模型-1", "org/model name", "Ünïcode ✓"]
    for model, name in zip(data["models"], names, strict=True):
        model["name"] = name
    assert [m.name for m in load_config(write_config(tmp_path, data)).models] == names


@pytest.mark.parametrize(
    "sha256", ["xyz", "0" * 63, "sha256:" + "0" * 64, "g" * 64, "0" * 64 + " "]
)
def test_a_gguf_sha256_that_is_no_sha256_is_refused_when_the_config_loads(
    tmp_path: Path, sha256: str
) -> None:
    """Until 2026-12-04 it loaded, and the first request said the GGUF's own sha256 did
    not match it: "the file is corrupt: delete it and re-install", of a sound file."""
    data = tiny_config_dict(tmp_path)
    data["models"][0]["gguf"]["sha256"] = sha256
    with pytest.raises(ConfigError, match=r"models.0.gguf.sha256: .* is not a sha256 \(64 hexadecimal digits"):  # fmt: skip
        load_config(write_config(tmp_path, data))


def test_a_gguf_sha256_in_capitals_is_a_sha256(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path)
    data["models"][0]["gguf"]["sha256"] = "ABCDEF" + "0" * 58
    assert load_config(write_config(tmp_path, data)).models[0].gguf.sha256 == "ABCDEF" + "0" * 58  # type: ignore[union-attr]


def test_a_gguf_sha256_may_list_one_sha256_per_split(tmp_path: Path) -> None:
    data = tiny_config_dict(tmp_path)
    digests = ["a" * 64, "B" * 64, "0" * 64]
    data["models"][0]["gguf"]["sha256"] = digests
    assert load_config(write_config(tmp_path, data)).models[0].gguf.sha256 == digests  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sha256", "said"),
    [
        (
            ["a" * 64, "xyz"],
            r"models.0.gguf.sha256: entry 2 of 2: 'xyz' is not a sha256 \(64 hexadecimal digits",
        ),  # fmt: skip
        (
            [],
            r"models.0.gguf.sha256: an empty list: give one sha256 per split file, in order, or leave it out",
        ),  # fmt: skip
        (
            5,
            r"models.0.gguf.sha256: expected a sha256 or a list of them \(one per split file\), not 5$",
        ),  # fmt: skip
        ([5], r"models.0.gguf.sha256: entry 1 of 1: 5 is not a sha256"),
    ],
    ids=["bad-entry", "empty", "number", "number-entry"],
)
def test_a_gguf_sha256_list_that_is_not_of_sha256s_is_refused_when_the_config_loads(
    tmp_path: Path, sha256: object, said: str
) -> None:
    data = tiny_config_dict(tmp_path)
    data["models"][0]["gguf"]["sha256"] = sha256
    with pytest.raises(ConfigError, match=said):
        load_config(write_config(tmp_path, data))


def test_a_sha256_list_for_parts_is_refused_as_theirs_is_the_assembled_files() -> None:
    # parts are concatenated into one file, whose sha256 gguf.sha256 is: a list would
    # read as the parts' own, which nothing checks
    with pytest.raises(ConfigError, match=r"a sha256 of `parts` is the sha256 of the file they make together: give one sha256, not a list"):  # fmt: skip
        GGUFSource(parts=["a", "b"], sha256=["0" * 64, "1" * 64])


def test_a_section_left_empty_is_its_defaults_as_a_section_left_out_is(tmp_path: Path) -> None:
    """``budgets:`` with every setting under it commented out is YAML's null: until
    2026-12-04 refused ("Input should be a valid dictionary or instance of BudgetConfig"),
    a section within a section (``co2_kg:``) too. The models stay required."""
    data = tiny_config_dict(tmp_path)
    text = yaml.safe_dump({k: v for k, v in data.items() if k not in ("manager", "generation")})
    text += "budgets:\n  # co2_kg: {daily: 0.1}\ncache:\nmanager:\noverrides:\n"
    text += "generation:\n  max_new_tokens: 8\ncascade: {gate: ~}\n"
    path = tmp_path / "sections.yaml"
    path.write_text(text + "limits: ~\n")
    config = load_config(path)
    assert config.budgets == BudgetConfig() and config.manager == ManagerConfig()
    assert config.overrides == [] and config.limits == LimitsConfig()
    path.write_text(text + "limits: {co2_kg: ~}\n")  # an unknown key is still one
    with pytest.raises(ConfigError, match=r"limits.co2_kg: unknown key \(the keys here: max_prompt_chars\)"):  # fmt: skip
        load_config(path)
    data["budgets"] = {"co2_kg": None, "cost_usd": {"daily": None}}
    assert load_config(write_config(tmp_path, data)).budgets == BudgetConfig()
    data["models"] = None
    with pytest.raises(ConfigError, match="models: Input should be a valid list"):
        load_config(write_config(tmp_path, data))


def test_an_unknown_key_says_which_was_likely_meant(tmp_path: Path) -> None:
    """A misspelt key said "Extra inputs are not permitted", leaving the user to find the
    right one in the README; at any depth (a model entry's, a budget's)."""
    data = tiny_config_dict(tmp_path)
    data["budget"] = {"co2_kg": {"daily": 1.0}}
    data["models"][0]["memry_gb"] = 1.0
    data["budgets"] = {"co2_kg": {"dayly": 1.0}}
    data["overrides"] = [{"name": "r", "patern": "x", "model": "tiny-light"}]
    with pytest.raises(ConfigError) as e:
        load_config(write_config(tmp_path, data))
    for problem in (
        "budget: unknown key (did you mean 'budgets'?)",
        "models.0.memry_gb: unknown key (did you mean 'memory_gb'?)",
        "budgets.co2_kg.dayly: unknown key (did you mean 'daily'?)",
        "overrides.0.patern: unknown key (did you mean 'pattern'?)",
    ):
        assert problem in str(e.value)
    data = tiny_config_dict(tmp_path)
    data["zzz"] = 1
    with pytest.raises(ConfigError, match=r"zzz: unknown key \(the keys here: models, router, cascade, generation, carbon, log, manager, limits, budgets, cache, overrides\)"):  # fmt: skip
        load_config(write_config(tmp_path, data))


def test_a_source_key_in_the_file_is_refused(tmp_path: Path) -> None:
    """``source`` is where the config was loaded from, set by ``load_config``: written in
    the file it was taken and silently replaced by the file's path, as no other unknown
    key is."""
    data = tiny_config_dict(tmp_path)
    data["source"] = "production"
    with pytest.raises(ConfigError, match=r"source: unknown key \(.*the keys here: models, router, cascade, generation, carbon, log, manager, limits, budgets, cache, overrides\)"):  # fmt: skip
        load_config(write_config(tmp_path, data))
    # a loaded config written out (model_dump) loads again: its source is not in the dump
    config = load_config(write_config(tmp_path, tiny_config_dict(tmp_path)))
    assert config.source and "source" not in config.model_dump(mode="json")
    again = load_config(write_config(tmp_path, config.model_dump(mode="json"), "again.yaml"))
    assert again.model_dump() == config.model_dump() and again.source.endswith("again.yaml")


def _config_keys(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every key a config file may hold: (its dotted path, its name), a list's items' too."""
    for name, field in model.model_fields.items():
        if name == "source":  # set by load_config, refused in a file
            continue
        yield prefix + name, name
        # a section, an optional one or a list of them (list[ModelConfig])
        kinds = {field.annotation, *get_args(field.annotation)}
        for kind in {k for outer in kinds for k in (outer, *get_args(outer))}:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                yield from _config_keys(kind, f"{prefix}{name}.")


def _config_part(readme: str) -> str:
    """The README's configuration reference: "Configuration" (its models, other sections
    and override rules), "Carbon and cost budgets" and "Request cache"."""
    start = readme.index("\n## Configuration\n")
    return readme[start : readme.index("\n## Recommendations in the report\n", start)]


def _keys_not_named(text: str) -> list[str]:
    """The config keys ``text`` never names: as `key`, `section.key`, `key:` or in a
    YAML flow mapping (``{enabled: true, gate: ...}``)."""
    return [
        path
        for path, name in _config_keys(AppConfig)
        if not re.search(rf"`{re.escape(path)}`|`{name}`|\b{name}:|[{{ ]{name}[,) ]", text)
    ]


def test_every_config_key_is_in_the_readme() -> None:
    """The README's "Configuration" is the users' manual of the config: a key the code
    takes and the README never names (a model's quality_score, avg_latency_s) was a key no
    user could know of; named only elsewhere (a server or benchmark section), one no user
    reading the reference would find."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    missing = _keys_not_named(_config_part(readme))
    assert not missing, f"config keys README's configuration reference never names: {missing}"


def _remote(tmp_path: Path, **fields: object) -> dict[str, object]:
    """A config whose first model is an `openai_http` one with ``fields``."""
    data = tiny_config_dict(tmp_path)
    data["models"][0] = {"name": "x", "backend": "openai_http", "tier": "light", "params_b": 1,
                         "memory_gb": 1, "base_url": "http://127.0.0.1:9/v1", "model_id": "m",
                         **fields}  # fmt: skip
    return data


def test_a_remote_model_needs_no_memory_gb_and_a_local_one_does(tmp_path: Path) -> None:
    """A remote model's memory is its endpoint's: nothing counts it against
    manager.memory_budget_gb, yet until 2026-12-06 an openai_http entry without
    memory_gb was refused ("models.0.memory_gb: Field required")."""
    from routerllm.manager import LLMManager

    data = _remote(tmp_path)
    del data["models"][0]["memory_gb"]
    config = load_config(write_config(tmp_path, data))
    assert config.models[0].memory_gb is None
    assert LLMManager(config).local_gb("x") == 0.0
    data = tiny_config_dict(tmp_path)
    del data["models"][1]["memory_gb"]
    with pytest.raises(ConfigError, match=r"models.1: .*backend llama_cpp needs `memory_gb`"):
        load_config(write_config(tmp_path, data))


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("localhost:8000/v1", "has no scheme: give http://localhost:8000/v1 or https://"),
        ("127.0.0.1:8000/v1", "has no scheme: give http://127.0.0.1:8000/v1 or https://"),
        ("api.example.com/v1", "has no scheme: give http://api.example.com/v1 or https://"),
        ("ftp://127.0.0.1/v1", "is not an http:// or https:// URL"),
        ("file:///srv/v1", "is not an http:// or https:// URL"),
        ("http:///v1", "names no host"),
        ("http://127.0.0.1:99999/v1", "has a bad port"),
        ("http://127.0.0.1:80a/v1", "has a bad port"),
        ("http://127.0.0.1/v1?api-version=1", "has a query or fragment"),
        ("http://127.0.0.1/v1#x", "has a query or fragment"),
        ("http://127.0.0.1/my v1", "holds a space or control character"),
    ],
)
def test_a_base_url_requests_could_not_use_is_refused_when_the_config_loads(
    tmp_path: Path, base_url: str, why: str
) -> None:
    """Until 2026-12-04 each loaded; the model was then unavailable for a cause such as
    "unknown url type: localhost", or (ftp://, file://) asked something else than an HTTP
    server; a query was sent with the API's path appended to it."""
    with pytest.raises(ConfigError, match=f"models.0.base_url: base_url .*{why}") as err:
        load_config(write_config(tmp_path, _remote(tmp_path, base_url=base_url)))
    assert str(err.value).count("\n") == 0


def test_a_base_url_with_a_password_is_refused_without_showing_it(tmp_path: Path) -> None:
    data = _remote(tmp_path, base_url="http://me:s3cret@127.0.0.1/v1")
    with pytest.raises(ConfigError, match="models.0.base_url: base_url holds a user name or password") as err:  # fmt: skip
        load_config(write_config(tmp_path, data))
    assert "s3cret" not in str(err.value)


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8000/v1", "https://api.example.com/v1/", "HTTP://h/openai/v1"]
)
def test_a_base_url_with_a_path_or_a_trailing_slash_loads(tmp_path: Path, base_url: str) -> None:
    config = load_config(write_config(tmp_path, _remote(tmp_path, base_url=f" {base_url} ")))
    assert config.models[0].base_url == base_url


@pytest.mark.parametrize("name", ["sk-proj-abc123def456", "OPENAI API KEY", "A=B", "1KEY", ""])
def test_an_api_key_env_that_names_no_variable_is_refused_without_showing_it(
    tmp_path: Path, name: str
) -> None:
    """api_key_env names the variable, not the key: until 2026-12-04 a key written there
    loaded, and `routerllm models` printed it ("environment variable sk-... is not set")."""
    data = _remote(tmp_path, api_key_env=name)
    with pytest.raises(ConfigError, match="models.0.api_key_env: api_key_env names the environment variable") as err:  # fmt: skip
        load_config(write_config(tmp_path, data))
    if name:
        assert name not in str(err.value)


#: Made-up keys shaped as providers' keys that are letters, digits and _ alone (Groq's
#: gsk_ and 52 characters, Hugging Face's hf_ and 34, Together's 64 hex digits, Mistral's
#: 32 letters and digits): each reads as a variable's name.
KEYS_SHAPED_AS_NAMES = [
    "gsk_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0hIj3kLm6nOp9qRs2t",
    "hf_" + "aBcD3fGh6jKl9mNp2qRs5tUv8wXy1zAbCdE",
    "3f9a" * 16,
    "Zq7Lm2Xw9Rt4Yp6Vn1Bk8Hs3Jd5Gf0Ca",
    "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZaBcDeFgH",  # letters alone, of mixed case
]


@pytest.mark.parametrize(
    "key", KEYS_SHAPED_AS_NAMES, ids=["groq", "hf", "together", "mistral", "hf-letters"]
)
def test_an_api_key_that_reads_as_a_variables_name_is_refused_without_showing_it(
    tmp_path: Path, key: str
) -> None:
    """A key of letters, digits and _ alone written as api_key_env loaded as a variable's
    name until 2026-12-06, and was shown in every model's reason to be unavailable
    ("environment variable gsk_... (API key) is not set"): `routerllm models`, routing's
    errors, the server's log."""
    data = _remote(tmp_path, api_key_env=key)
    with pytest.raises(ConfigError, match="models.0.api_key_env: .*looks like an API key") as err:  # fmt: skip
        load_config(write_config(tmp_path, data))
    assert key not in str(err.value) and key[:12] not in str(err.value)


@pytest.mark.parametrize(
    "name",
    [
        "OPENAI_API_KEY",
        "my_team_key_2",
        "AZURE_OPENAI_API_KEY_WESTEUROPE",
        "GROQ_API_KEY",
        "_K",
        "AZUREOPENAIAPIKEYWESTEUROPE",
        "a_rather_long_lowercase_name_of_a_key_variable",
    ],  # fmt: skip
)
def test_an_api_key_env_that_names_a_variable_loads(tmp_path: Path, name: str) -> None:
    config = load_config(write_config(tmp_path, _remote(tmp_path, api_key_env=name)))
    assert config.models[0].api_key_env == name


def test_the_generation_defaults_are_the_missions_and_a_request_gets_them() -> None:
    # MISSION M2: temperature 0.3, top_p 0.9, max_new_tokens 1024, repetition_penalty 1.1
    from routerllm.backends.base import GenerationRequest, resolve_sampling
    from routerllm.config import GenerationConfig

    sampling = resolve_sampling(GenerationRequest(prompt="hi"), GenerationConfig())
    got = (sampling.temperature, sampling.top_p, sampling.max_new_tokens, sampling.repetition_penalty)  # fmt: skip
    assert got == (0.3, 0.9, 1024, 1.1)
