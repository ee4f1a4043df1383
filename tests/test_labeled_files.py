"""Labelled-prompt files (``data.labeled.load_json``): odd but valid files load whole,
bad ones are one DataError naming the file and the item or line at fault."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from routerllm.data.labeled import LabeledPrompt, load_json, save_json
from routerllm.exceptions import DataError


def test_a_null_category_or_source_is_empty_not_the_word_none(tmp_path: Path) -> None:
    # pandas' to_json writes a missing value as null
    path = tmp_path / "p.json"
    path.write_text('[{"text": "a", "label": 1, "category": null, "source": null}]')
    assert load_json(path) == [LabeledPrompt("a", 1)]
    save_json(load_json(path), path)  # a round trip keeps it empty
    assert load_json(path) == [LabeledPrompt("a", 1)]


@pytest.mark.parametrize("field", ["category", "source"])
def test_a_category_or_source_that_is_not_text_is_refused(tmp_path: Path, field: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(f'[{{"text": "a", "label": 1}}, {{"text": "b", "label": 2, "{field}": {{"x": 1}}}}]')  # fmt: skip
    with pytest.raises(DataError, match=rf"p\.json: item 2: {field} must be a string .*got \{{'x': 1\}}"):  # fmt: skip
        load_json(path)


def test_crlf_and_a_byte_order_mark_load_as_plain_json(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(b'\xef\xbb\xbf[\r\n{"text": "a\\r\\nb", "label": 0},\r\n{"text": "c", "label": 3}\r\n]\r\n')  # fmt: skip
    assert load_json(path) == [LabeledPrompt("a\r\nb", 0), LabeledPrompt("c", 3)]


def test_json_lines_load_one_prompt_a_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "a", "label": 0, "category": "x"}\r\n\r\n{"text": "b", "label": 2}\n')  # fmt: skip
    assert load_json(path) == [LabeledPrompt("a", 0, "x"), LabeledPrompt("b", 2)]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            '{"text": "a", "label": 0}\n{"text": "b", "label": 9}\n',
            r"line 2: label must be an integer in 0\.\.3, got 9",
        ),  # fmt: skip
        ('{"text": "a", "label": 0}\n\n{"text": "b"\n', r"line 3 is not valid JSON"),
        ('{"text": "a", "label": 0}\n[1]\n', r"line 2 needs `text` and an integer `label`"),
        ('{"text": "a", "label": 0, "label": 1}\n', r"line 1: the key 'label' is given twice"),
    ],
)
def test_a_bad_json_line_is_named(tmp_path: Path, lines: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(lines)
    with pytest.raises(DataError, match=rf"p\.jsonl: {message}"):
        load_json(path)


def test_a_json_lines_file_not_utf8_or_missing_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"text": "a", "label": 0}\n{"text": "caf\xe9", "label": 0}\n')
    with pytest.raises(DataError, match=r"p\.jsonl: not UTF-8 text \(line 2: byte 0xe9\)"):
        load_json(path)
    with pytest.raises(DataError, match=r"not found: .*gone\.jsonl"):
        load_json(tmp_path / "gone.jsonl")


_SAVE_IN_ASCII_LOCALE = """
import sys
from pathlib import Path
from routerllm.data.labeled import LabeledPrompt, save_json, save_splits
items = [LabeledPrompt("r\\u00e9sum\\u00e9 \\u2713 \\u65e5\\u672c\\u8a9e", 1)]  # ASCII source
save_json(items, Path(sys.argv[1]) / "p.json")
save_splits({"train": items}, Path(sys.argv[1]))
"""


def test_prompts_beyond_ascii_are_saved_as_utf8_in_any_locale(tmp_path: Path) -> None:
    # a locale whose encoding is not UTF-8 (Windows' cp1252, LANG=C with UTF-8 mode off):
    # a prompt it cannot encode was a UnicodeEncodeError traceback, and one it can was
    # written in its encoding, which load_json (UTF-8) then refused as a damaged file
    import os
    import subprocess
    import sys

    import routerllm

    env = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0",
           "PYTHONPATH": str(Path(routerllm.__file__).parents[1])}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", _SAVE_IN_ASCII_LOCALE, str(tmp_path)],
        env=env, capture_output=True, text=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]
    for name in ("p.json", "train.json"):
        assert load_json(tmp_path / name) == [LabeledPrompt("résumé ✓ 日本語", 1)]


def test_a_gzipped_labelled_file_is_said_to_be_compressed(tmp_path: Path) -> None:
    """It was "not UTF-8 text (line 1: byte 0x8b); convert it to UTF-8" (until 2026-12-05)."""
    path = tmp_path / "p.json.gz"
    path.write_bytes(gzip.compress(b'[{"text": "a", "label": 0}]'))
    with pytest.raises(DataError) as e:
        load_json(path)
    assert str(e.value) == f"{path}: gzip-compressed, not text; decompress it first (gunzip)"
