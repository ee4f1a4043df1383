"""Labelled-prompt files (``data.labeled.load_json``): odd but valid files load whole,
bad ones are one DataError naming the file and the item or line at fault."""

from __future__ import annotations

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
