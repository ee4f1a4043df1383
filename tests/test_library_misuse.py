"""The library's entry points that the README names, called as a new user may call them
by mistake (a config's name where a loaded config is taken, a system's config left out,
YAML text where a path is taken, a closed system entered again): each is one
``RouterLLMError`` line that says what to give, raised before anything is opened, never
a bare ``AttributeError`` or ``TypeError`` from deep inside."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from routerllm.carbon.codecarbon_meter import CodeCarbonMeter
from routerllm.carbon.meter import check_country
from routerllm.carbon.report import logged_report
from routerllm.config import AppConfig, load_config
from routerllm.exceptions import ConfigError, RouterLLMError
from routerllm.manager import LLMManager
from routerllm.system import RouterLLM


def _one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("local", r"got str; load a YAML file or a packaged config with load_config\('local'\)"),
        (None, r"got NoneType; load a YAML file or a packaged config with load_config\('local'\)"),
        ({"models": []}, r"got dict; check a dict with AppConfig.model_validate\(data\)"),
    ],
    ids=["name", "none", "dict"],
)
@pytest.mark.parametrize("taker", ["LLMManager", "logged_report"])
def test_what_takes_a_loaded_config_refuses_anything_else_in_one_line(
    taker: str, given: object, says: str
) -> None:
    """``LLMManager(config)`` and ``logged_report(config)``, as the README shows them,
    given a config's name, None or a dict: a bare AttributeError ("'str' object has no
    attribute 'manager'", "... 'carbon'") from deep inside each, until 2026-12-07."""
    take: Callable[[object], object] = {"LLMManager": LLMManager, "logged_report": logged_report}[taker]  # fmt: skip
    with pytest.raises(ConfigError, match=f"^{taker} takes a loaded config \\(an AppConfig\\), {says}") as e:  # fmt: skip
        take(given)
    _one_line(e.value)


def test_a_system_given_for_its_config_is_told_to_give_its_config(system: RouterLLM) -> None:
    # the README's `logged_report(system.config)` with `.config` left out
    with pytest.raises(ConfigError, match=r"got RouterLLM; give its config: logged_report\(system.config\)"):  # fmt: skip
        logged_report(system)  # type: ignore[arg-type]
    assert logged_report(system.config).totals.requests == 0  # the log exists: empty


def test_routerllm_itself_still_points_a_name_to_from_config() -> None:
    # its message, from the same check, keeps its own way to load one
    with pytest.raises(ConfigError, match=r"RouterLLM takes a loaded config .*RouterLLM.from_config\('local'\)"):  # fmt: skip
        RouterLLM("local")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"got dict; check a dict with AppConfig.model_validate"):
        RouterLLM({"models": []})  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["models:\n  - name: x\n", "models: [\n", "{models: []}\n"])
@pytest.mark.parametrize("load", [load_config, RouterLLM.from_config], ids=["load_config", "from_config"])  # fmt: skip
def test_yaml_text_given_for_a_config_path_is_said_in_one_line(
    load: Callable[[str], object], text: str
) -> None:
    """The text of a config, malformed or not, given where its path is taken: it was
    "config file not found: " and the text itself, over several lines."""
    with pytest.raises(ConfigError) as e:
        load(text)
    message = _one_line(e.value)
    assert message.startswith("a config path holds a line break: is it YAML text? ")
    assert "write it to a file and give its path, or give AppConfig.model_validate(yaml.safe_load(text))" in message  # fmt: skip


def test_a_closed_system_is_refused_as_it_is_entered_again(tiny_config: AppConfig) -> None:
    """``with system:`` a second time: it was entered, and refused only at its first
    request, or never where the block made none."""
    with RouterLLM(tiny_config) as system:
        system.route("hi")
    with (
        pytest.raises(RouterLLMError, match="^this RouterLLM is closed; create a new one$"),
        system,
    ):
        pytest.fail("the block of a closed system ran")
    system.close()  # closing again stays harmless


@pytest.mark.parametrize("country", [None, 840, b"FRA"], ids=["none", "number", "bytes"])
def test_a_country_that_is_not_text_is_one_config_error(country: object) -> None:
    """``CodeCarbonMeter(country)`` (README: ``CodeCarbonMeter("FRA")``) given no text: a
    bare AttributeError ("'NoneType' object has no attribute 'upper'")."""
    for make in (check_country, CodeCarbonMeter):
        with pytest.raises(ConfigError, match=r"country_iso_code must be an ISO 3166 alpha-3 code such as FRA .*got") as e:  # fmt: skip
            make(country)  # type: ignore[arg-type]
        _one_line(e.value)


def test_an_unknown_tracking_mode_is_refused_before_codecarbon_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """It was CodeCarbon's "Tracker not initialized" logged, then a bare AttributeError
    ("... has no attribute '_tasks'") from inside CodeCarbon."""
    with pytest.raises(ConfigError, match=r"tracking_mode must be 'machine' or 'process' \(carbon.tracking_mode\), got 'proces'"):  # fmt: skip
        CodeCarbonMeter("FRA", tracking_mode="proces")
    assert not caplog.records


@pytest.fixture
def closed_system(tiny_config: AppConfig) -> RouterLLM:
    system = RouterLLM(tiny_config)
    system.close()
    return system


def test_the_server_takes_an_open_system_and_a_port_number(
    tiny_config: AppConfig, closed_system: RouterLLM
) -> None:
    """``create_app(system)``, ``serve(system, sock)`` and ``listen(host, port)``, as the
    README names them: a config or its name for the system was a bare AttributeError
    ("'str' object has no attribute 'config'"), a closed system made an app that refused
    every request, and a port given as text a bare TypeError."""
    from routerllm.server.app import create_app
    from routerllm.server.serving import listen, serve

    with socket.socket() as sock:
        for given in ("local", None, tiny_config):
            for taker, call in (("create_app", lambda: create_app(given)), ("serve", lambda: serve(given, sock))):  # type: ignore[arg-type]  # noqa: B023  # fmt: skip
                with pytest.raises(RouterLLMError, match=f"^{taker} takes a RouterLLM, got {type(given).__name__}; make one with RouterLLM.from_config") as e:  # fmt: skip
                    call()
                _one_line(e.value)
    with pytest.raises(RouterLLMError, match="^this RouterLLM is closed; create a new one$"):
        create_app(closed_system)
    with pytest.raises(RouterLLMError, match=r"^port must be a whole number from 0 to 65535, got '8000'$"):  # fmt: skip
        listen("127.0.0.1", "8000")  # type: ignore[arg-type]


def test_the_right_objects_still_work(tiny_config: AppConfig) -> None:
    manager = LLMManager(tiny_config)
    assert manager.available_models() == [m.name for m in tiny_config.models]
    manager.close()
    assert check_country("fra") == "FRA"


@pytest.mark.parametrize(
    ("given", "meant"),
    [("developement", "development"), ("Local", "local"), ("production.yaml", "production")],
)
def test_a_misspelt_packaged_config_name_is_told_the_name_it_is_near(given: str, meant: str) -> None:  # fmt: skip
    with pytest.raises(ConfigError, match=f"^config file not found: {given} \\(did you mean '{meant}'\\?\\); give a YAML path or one of: local, development, production$"):  # fmt: skip
        load_config(given)
    with pytest.raises(ConfigError, match=r"^config file not found: no/such/locale\.yaml; give"):
        load_config("no/such/locale.yaml")  # a path, not a name: no name is suggested


def test_route_takes_a_request_as_generate_and_predict_do(system: RouterLLM) -> None:
    """``route(GenerationRequest(...))`` was "prompt must be text, got GenerationRequest",
    where ``generate`` and ``predict`` take one: it routes the request's prompt (the
    newest message, as ``generate`` does), its whole length checked as there."""
    from routerllm.backends.base import GenerationRequest
    from routerllm.exceptions import PromptError

    turns = (("user", "How do I reverse a list?"), ("assistant", "Use reversed()."))
    asked = GenerationRequest("Write a quicksort in Python", history=turns)
    assert system.route(asked) == system.route("Write a quicksort in Python")
    assert system.route(asked).model == system.generate(asked).model
    limit = system.config.limits.max_prompt_chars
    with pytest.raises(PromptError, match="over the limit"):
        system.route(GenerationRequest("hi", system="x" * limit))
