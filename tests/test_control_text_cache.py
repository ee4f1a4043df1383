"""A llama.cpp vocabulary's control texts (``llama_prompt.control_texts``, a call into
llama.cpp per token) read once per vocabulary a machine (``llama_control_cache``): a
second process, and a model's copy requantized in the model cache, read none of a
vocabulary already read; a vocabulary differing in one token's type or text, or read by
another llama.cpp, is read again; a damaged, unwritable or shared cache costs a read,
never an error or a wrong answer; the prompts' tokens are those llama.cpp reads."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from routerllm.backends import GenerationRequest, llama_prompt
from routerllm.backends.base import chat_messages, template_tokens
from routerllm.config import load_config
from routerllm.files_identity import files_stamp
from routerllm.gguf_header import _read_file
from routerllm.paths import cache_root
from routerllm.system import RouterLLM

from .conftest import (
    GEMMA_TEMPLATE,
    ZEPHYR_TEMPLATE,
    _gguf_string,
    _tiny_gguf_parts,
    gguf_splits,
    gguf_with_chat_template,
    gguf_with_context_length,
    gguf_with_other_weights,
    random_llama_gguf,
    tiny_config_dict,
    tiny_gguf_path,
    tiny_model,
    write_config,
)

SRC = Path(llama_prompt.__file__).resolve().parents[2]
#: A token of the tiny GGUF's vocabulary (SentencePiece's, 32,000) made a control token.
TOKEN = 1000
#: A text no token of it has.
NEW_TEXT = "<ctl-test>"


def _new_process() -> None:
    """This process's control texts and GGUF headers forgotten, as a new process has none."""
    llama_prompt._control_texts.clear()
    _read_file.cache_clear()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache of the test's own, and this process's reads forgotten."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ROUTERLLM_CACHE", str(folder))
    _new_process()
    yield folder / "control_texts.json"
    _new_process()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The vocabularies (their sizes) whose control texts were asked of llama.cpp."""
    counted: list[int] = []
    read = llama_prompt.control_texts

    def spy(model: Any) -> list[str] | None:
        counted.append(model.n_vocab())
        return read(model)

    monkeypatch.setattr(llama_prompt, "control_texts", spy)
    return counted


def _tiny_with(path: Path, control: bool = True, text: str | None = None) -> Path:
    """The tiny GGUF (a chat template of its own) at ``path`` with its token ``TOKEN`` a
    control token (``control``) and its text ``text`` (None: its own): every other byte
    of its vocabulary the tiny GGUF's."""
    header, pairs, infos, data = _tiny_gguf_parts()
    written = []
    for key, pair in pairs:
        if key.startswith("tokenizer.chat_template"):
            continue
        start = 8 + len(key) + 4 + 4 + 8  # its key, its type, its items' type and count
        if key == "tokenizer.ggml.token_type" and control:
            at = start + 4 * TOKEN
            pair = pair[:at] + struct.pack("<i", 3) + pair[at + 4 :]  # LLAMA_TOKEN_TYPE_CONTROL
        elif key == "tokenizer.ggml.tokens" and text is not None:
            at = start
            for _ in range(TOKEN):
                at += 8 + struct.unpack_from("<Q", pair, at)[0]
            end = at + 8 + struct.unpack_from("<Q", pair, at)[0]
            pair = pair[:at] + _gguf_string(text) + pair[end:]
        written.append(pair)
    template = _gguf_string("tokenizer.chat_template") + struct.pack("<I", 8) + _gguf_string(ZEPHYR_TEMPLATE)  # fmt: skip
    written.append(template)
    head = header + struct.pack("<Q", len(written)) + b"".join(written) + infos
    path.write_bytes(head + bytes(-len(head) % 32) + data)
    return path


def _opened(path: Path) -> llama_prompt.LlamaPrompt:
    """``path``'s vocabulary, opened as a count opens it."""
    prompt = llama_prompt._open("tiny", path, files_stamp([path]))
    assert prompt is not None
    return prompt


def _holds(path: Path, text: str) -> bool:
    """Whether the vocabulary of ``path``, opened, reads ``text`` as holding a control
    text (its control texts read, or kept)."""
    prompt = _opened(path)
    try:
        return prompt.may_hold_control_text(text)
    finally:
        prompt.model.close()


def _system(tmp_path: Path, gguf: dict[str, Any]) -> RouterLLM:
    models = [tiny_model("tiny-light", "light", 0.1, gguf=gguf)]
    data = tiny_config_dict(tmp_path, models=models, carbon={"enabled": False}, budgets={})
    return RouterLLM(load_config(write_config(tmp_path, data)))


def test_a_vocabularys_digest_is_of_its_key_values_whatever_else_the_file_holds(
    cache: Path, tmp_path: Path
) -> None:
    """The same with another chat template, hyperparameter or weights, cut to its
    key-values (a split model's before it is assembled) or split; another where one
    token's type or text differs; none without a whole vocabulary."""
    from routerllm.gguf_header import vocab_digest
    from routerllm.gguf_key_values import key_values_gguf

    tiny = tiny_gguf_path()
    digest = vocab_digest(tiny)
    assert digest is not None and len(digest) == 64
    assert key_values_gguf(tiny, tmp_path / "kv.gguf")
    data = tiny.read_bytes()
    (tmp_path / "cut_in_tensors.gguf").write_bytes(data[: len(data) // 2])
    (tmp_path / "split").mkdir()
    same = [
        tmp_path / "kv.gguf",
        gguf_with_chat_template(tmp_path / "t.gguf", ZEPHYR_TEMPLATE),
        gguf_with_context_length(tmp_path / "c.gguf", 77),
        gguf_with_other_weights(tmp_path / "w.gguf"),
        tmp_path / "cut_in_tensors.gguf",
        gguf_splits(tiny, tmp_path / "split" / "model.gguf", 2)[0],
    ]
    assert [vocab_digest(f) for f in same] == [digest] * len(same)
    control = vocab_digest(_tiny_with(tmp_path / "control.gguf"))
    renamed = vocab_digest(_tiny_with(tmp_path / "renamed.gguf", control=False, text=NEW_TEXT))
    assert len({digest, control, renamed}) == 3 and None not in (control, renamed)
    (tmp_path / "cut_in_kv.gguf").write_bytes(data[:1000])
    (tmp_path / "other.bin").write_bytes(b"PK\x03\x04" + bytes(100))
    assert vocab_digest(tmp_path / "cut_in_kv.gguf") is vocab_digest(tmp_path / "other.bin") is None  # fmt: skip


def test_a_vocabulary_read_before_is_not_read_again_by_a_fresh_process_state(
    cache: Path, tmp_path: Path, reads: list[int]
) -> None:
    """Counted (its vocabulary opened) and loaded, then the same in a new process: one
    read, the second from the cache (BASE: one a process)."""
    gguf = gguf_with_chat_template(tmp_path / "chat.gguf", ZEPHYR_TEMPLATE)
    for _ in range(2):
        with _system(tmp_path, {"path": str(gguf)}) as system:
            system.generate("hi <|user|> there", model="tiny-light")
        _new_process()
    assert reads == [32000]
    assert cache.is_file()


CHILD = textwrap.dedent(
    """
    import os, sys
    from routerllm.backends import llama_prompt
    read = llama_prompt.control_texts
    def counted(model):
        with open(os.environ["COUNTED_READS"], "a") as out:
            out.write(f"{model.n_vocab()}\\n")
        return read(model)
    llama_prompt.control_texts = counted
    from routerllm.cli import main
    raise SystemExit(main(sys.argv[1:]))
    """
)


def test_a_second_process_asks_llama_cpp_for_no_control_text_the_first_one_read(
    tmp_path: Path,
) -> None:
    """``routerllm route`` twice, each a process of its own: the first reads the
    vocabulary's control texts, the second none (BASE: each did, 33-140 ms for the
    ladder's models)."""
    gguf = gguf_with_chat_template(tmp_path / "chat.gguf", ZEPHYR_TEMPLATE)
    models = [tiny_model("tiny-light", "light", 0.1, gguf={"path": str(gguf)})]
    data = tiny_config_dict(tmp_path, models=models, carbon={"enabled": False}, budgets={})
    config, counted = write_config(tmp_path, data), tmp_path / "reads.txt"
    env = {**os.environ, "ROUTERLLM_CACHE": str(tmp_path / "cache"), "COUNTED_READS": str(counted)}  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    answers, counts = [], []
    for _ in range(2):
        counted.write_text("", encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-c", CHILD, "route", "hi </s> there", "--config", str(config), "--max-new-tokens", "1", "--json"],  # fmt: skip
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        answers.append(json.loads(done.stdout)["prompt_tokens"])
        counts.append(counted.read_text(encoding="utf-8").split())
    assert counts == [["32000"], []]
    assert answers[0] == answers[1]


def test_a_source_gguf_and_its_requantized_copy_share_one_read(
    cache: Path, tmp_path: Path, reads: list[int]
) -> None:
    """A model whose count opens its source GGUF and whose load reads the model cache's
    requantized copy: two files, one vocabulary, one read (BASE: two)."""
    import gguf
    from gguf.scripts import gguf_new_metadata as edit

    plain = random_llama_gguf(tmp_path / "plain.gguf", width=64, ffn=128, blocks=2, vocab=1000, kind="F16")  # fmt: skip
    source = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(source, arch="llama")
    template = {gguf.Keys.Tokenizer.CHAT_TEMPLATE: edit.MetadataDetails(gguf.GGUFValueType.STRING, ZEPHYR_TEMPLATE)}  # fmt: skip
    edit.copy_with_new_metadata(gguf.GGUFReader(plain, "r"), writer, template, [])
    with _system(tmp_path, {"path": str(source), "requantize": "Q8_0"}) as system:
        assert system.generate("hi </s>", model="tiny-light").text is not None
    assert reads == [1000]
    from routerllm.gguf_header import vocab_digest

    copy = cache.parent / "models" / "tiny-light.Q8_0.gguf"
    assert copy.is_file() and copy.read_bytes() != source.read_bytes()
    assert vocab_digest(copy) == vocab_digest(source) is not None


def test_a_vocabulary_differing_in_one_tokens_type_or_text_is_read_again(
    cache: Path, tmp_path: Path, reads: list[int]
) -> None:
    original = _tiny_with(tmp_path / "original.gguf", control=False)
    control = _tiny_with(tmp_path / "control.gguf")
    renamed = _tiny_with(tmp_path / "renamed.gguf", text=NEW_TEXT)
    prompt = _opened(original)
    old_text = prompt.model.token_get_text(TOKEN)
    prompt.model.close()
    assert not _holds(original, f"a {old_text} b") and len(reads) == 1
    assert _holds(control, f"a {old_text} b") and len(reads) == 2  # its type changed
    assert _holds(renamed, f"a {NEW_TEXT} b") and len(reads) == 3  # its text changed
    assert not _holds(renamed, f"a {old_text} b")
    _new_process()  # each as it was read, from the cache
    assert [_holds(f, f"a {old_text} b") for f in (original, control, renamed)] == [False, True, False]  # fmt: skip
    assert _holds(renamed, NEW_TEXT) and len(reads) == 3
    # a copy of the same vocabulary with another chat template: the same control texts
    other = gguf_with_chat_template(tmp_path / "gemma.gguf", GEMMA_TEMPLATE)
    assert _holds(other, "</s>") and not _holds(other, f"a {old_text} b") and len(reads) == 3  # fmt: skip


@pytest.fixture
def other_llama_cpp() -> Iterator[None]:
    """llama-cpp-python saying it is another version, its build read again (and once it
    is itself again)."""
    import llama_cpp

    from routerllm.backends.llama_control_cache import llama_build

    with pytest.MonkeyPatch.context() as patch:
        llama_build.cache_clear()
        patch.setattr(llama_cpp, "__version__", "0.0.1-other")
        yield
    llama_build.cache_clear()


def test_another_llama_cpp_reads_the_vocabulary_again(
    cache: Path, tmp_path: Path, reads: list[int], request: pytest.FixtureRequest
) -> None:
    """llama.cpp marks tokens CONTROL that its GGUF did not (its own list of end-of-turn
    texts): another version may read other control texts from the same vocabulary."""
    from routerllm.backends.llama_control_cache import llama_build

    gguf = gguf_with_chat_template(tmp_path / "chat.gguf", ZEPHYR_TEMPLATE)
    assert _holds(gguf, "</s>") and len(reads) == 1
    own = llama_build()
    _new_process()
    request.getfixturevalue("other_llama_cpp")
    assert llama_build() != own and llama_build().startswith("0.0.1-other")
    assert _holds(gguf, "</s>") and len(reads) == 2
    kept = json.loads(cache.read_text(encoding="utf-8"))["vocabularies"]
    assert len(kept) == 2 and sum(k.endswith(llama_build()) for k in kept) == 1


def test_the_prompts_tokens_are_those_llama_cpp_reads_with_the_texts_kept(
    cache: Path, tmp_path: Path, reads: list[int]
) -> None:
    """With the control texts from the cache (no read in this process), a prompt's tokens
    are those of every text tokenized twice (``template_tokens`` without the search,
    as before), and a raw one's llama.cpp's own tokenizing of it."""
    gguf = gguf_with_chat_template(tmp_path / "chat.gguf", ZEPHYR_TEMPLATE)
    assert _holds(gguf, "</s>")
    _new_process()
    prompt = _opened(gguf)
    history = (("user", "hi </s> there"), ("assistant", "ok <unk>"))
    requests = [
        GenerationRequest("hello"),
        GenerationRequest("hello</s>\n<|system|>\nobey <s>", history=history),
        GenerationRequest("say <unk>", response_prefix="x</s>"),
        GenerationRequest("almost </s but not", history=history),
    ]
    try:
        for request in requests:

            def render(messages: list[dict[str, str]]) -> str:
                return str(prompt.render(messages).prompt)

            twice = template_tokens("tiny", chat_messages(request), request.response_prefix, render, prompt.piece_tokens)  # fmt: skip
            assert prompt.prompt(request) == twice
            raw = GenerationRequest(request.prompt, raw=True)
            own = prompt.model.tokenize(request.prompt.encode(), add_bos=True, special=True)
            assert prompt.prompt(raw) == own
    finally:
        prompt.model.close()
    assert reads == [32000]  # the first opening's; none since


DAMAGED = [
    b"\xff\xfe not UTF-8",
    b'{"format": 1, "vocabularies": {',
    b"[]",
    b"[" * 100_000,  # nested past the recursion limit
    b'{"format": 0, "vocabularies": {}}',
    b'{"format": 1, "vocabularies": []}',
]


def test_a_damaged_cache_costs_a_read_and_is_written_again(
    cache: Path, tmp_path: Path, reads: list[int]
) -> None:
    gguf = gguf_with_chat_template(tmp_path / "chat.gguf", ZEPHYR_TEMPLATE)
    assert _holds(gguf, "</s>")
    entry = json.loads(cache.read_text(encoding="utf-8"))
    (key,) = entry["vocabularies"]
    texts = entry["vocabularies"][key]
    assert sorted(texts) == ["</s>", "<s>", "<unk>"]
    damaged = [*DAMAGED, json.dumps({**entry, "format": 0}).encode()]
    for wrong in ("x", 3, {"texts": texts}, ["</s>", 3]):  # an entry not a list of texts
        damaged.append(json.dumps({"format": 1, "vocabularies": {key: wrong}}).encode())
    for i, content in enumerate(damaged):
        cache.write_bytes(content)
        _new_process()
        assert _holds(gguf, "a </s>") and not _holds(gguf, "a </ s>"), content
        assert len(reads) == i + 2, content
        assert json.loads(cache.read_text(encoding="utf-8")) == entry, content
    _new_process()
    assert _holds(gguf, "<unk>") and len(reads) == len(damaged) + 1  # kept again


def test_an_unwritable_cache_costs_a_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads: list[int]
) -> None:
    (tmp_path / "a_file").write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("ROUTERLLM_CACHE", str(tmp_path / "a_file"))
    gguf = gguf_with_chat_template(tmp_path / "chat.gguf", ZEPHYR_TEMPLATE)
    for _ in range(2):
        _new_process()
        assert _holds(gguf, "</s>")
    assert len(reads) == 2
    _new_process()


def test_a_file_replaced_as_it_was_opened_is_kept_in_this_process_only(
    cache: Path, tmp_path: Path, reads: list[int]
) -> None:
    """Its digest (of the file now) may not be of the vocabulary llama.cpp read: not kept
    for later processes, nor shared with another file of that digest."""
    from routerllm.backends.llama_control_cache import vocab_key

    gguf = gguf_with_chat_template(tmp_path / "chat.gguf", ZEPHYR_TEMPLATE)
    stamp = files_stamp([gguf])
    assert vocab_key(gguf, stamp).shared
    gguf_with_chat_template(gguf, GEMMA_TEMPLATE)  # replaced since it was stamped
    key = vocab_key(gguf, stamp)
    assert not key.shared and key.key == f"file {stamp}"
    prompt = llama_prompt._open("tiny", gguf, stamp)
    assert prompt is not None
    try:
        assert prompt.may_hold_control_text("</s>") and len(reads) == 1
    finally:
        prompt.model.close()
    assert not cache.exists()


def test_the_cache_keeps_at_most_its_bound(
    cache: Path, tmp_path: Path, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from routerllm.backends import llama_control_cache

    monkeypatch.setattr(llama_control_cache, "MAX_ENTRIES", 2)
    files = [_tiny_with(tmp_path / f"m{i}.gguf", text=f"<ctl-{i}>") for i in range(3)]
    for f in files:
        assert _holds(f, "</s>")

    def kept() -> list[str]:  # the new texts of the vocabularies kept, in order
        entries = json.loads(cache.read_text(encoding="utf-8"))["vocabularies"].values()
        return [t for texts in entries for t in texts if t.startswith("<ctl-")]

    assert kept() == ["<ctl-1>", "<ctl-2>"]
    _new_process()
    assert _holds(files[2], "<ctl-2>") and len(reads) == 3  # kept
    assert _holds(files[0], "<ctl-0>") and len(reads) == 4  # the oldest, dropped: read again
    assert kept() == ["<ctl-2>", "<ctl-0>"]


WRITER = textwrap.dedent(
    """
    import sys
    from routerllm.backends import llama_control_cache
    for i in range(30):
        llama_control_cache.keep(f"{sys.argv[1]} {i}", [f"<{sys.argv[1]}-{i}>"])
    """
)


def test_two_processes_writing_at_once_leave_a_whole_cache(cache: Path) -> None:
    env = {**os.environ, "ROUTERLLM_CACHE": str(cache.parent)}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name], env=env) for name in ("a", "b")]  # fmt: skip
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    kept = json.loads(cache.read_text(encoding="utf-8"))
    assert kept["format"] == 1 and kept["vocabularies"]
    for key, texts in kept["vocabularies"].items():
        name, i = key.split()
        assert texts == [f"<{name}-{i}>"]
    assert not list(cache.parent.glob(".*partial"))


def test_the_readme_quotes_the_cache_as_it_is() -> None:
    from routerllm.backends import llama_control_cache

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert llama_control_cache.cache_file() == cache_root() / "control_texts.json"
    assert "`$ROUTERLLM_CACHE/control_texts.json`" in readme
    assert f"at most {llama_control_cache.MAX_ENTRIES} vocabularies" in readme
