"""tiny-codes loader: real column names in every file format, mapping, balancing, splits."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from routerllm.data.synthetic import check_leakage
from routerllm.data.tiny_codes import audience_class, load_tiny_codes
from routerllm.exceptions import DataError, MissingDependencyError

COLUMNS = [
    "prompt",
    "main_topic",
    "subtopic",
    "adjective",
    "action_verb",
    "scenario",
    "target_audience",
    "programming_language",
    "common_sense_topic",
    "idx",
    "response",
]
# 12 beginners, 10 experts, 15 professionals, 4 others (dropped), spelled as the data does.
AUDIENCES = (
    ["Beginners"] * 6
    + ["Engineer for Beginners"] * 6
    + ["Experts"] * 5
    + ["experts"] * 5
    + ["Professionals"] * 10
    + ["Decision Making for Professionals"] * 5
    + ["Students"] * 3
    + [""]
)


def tiny_rows() -> list[dict[str, Any]]:
    rows = []
    for i, audience in enumerate(AUDIENCES):
        rows.append(
            {
                "prompt": f"Build a Rust module snippet that Updates Extreme Hygiene #{i} "
                f"for {audience}. Handle different cases with if/else statements.",
                "main_topic": "Hygiene",
                "subtopic": "Hand washing",
                "adjective": "Extreme",
                "action_verb": "Update",
                "scenario": "for Decision Making",
                "target_audience": audience,
                "programming_language": "Rust",
                "common_sense_topic": "Safety",
                "idx": i,
                "response": 'fn main() {\n    println!("hi, \\"quoted\\"");\n}\n',
            }
        )
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    name = path.name
    if name.endswith(".jsonl.gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    elif name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif name.endswith(".columns.json"):
        path.write_text(
            json.dumps({c: [r.get(c) for r in rows] for c in rows[0]}), encoding="utf-8"
        )
    elif name.endswith(".json"):
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif name.endswith(".csv"):
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


FORMATS = ["data.jsonl", "data.jsonl.gz", "data.json", "data.columns.json", "data.csv"]


@pytest.mark.parametrize("name", FORMATS)
def test_formats_map_balance_and_split(tmp_path: Path, name: str) -> None:
    ds = load_tiny_codes(write_rows(tmp_path / name, tiny_rows()), seed=0)
    assert ds.rows_read == len(AUDIENCES)
    assert ds.dropped_audiences == {"Students": 3, "": 1}
    assert ds.class_counts_before == {3: 12, 2: 10, 0: 15}
    assert Counter(i.label for i in ds.full) == {0: 10, 2: 10, 3: 10}
    assert (len(ds.train), len(ds.val), len(ds.test)) == (24, 3, 3)
    for part, per_class in ((ds.train, 8), (ds.val, 1), (ds.test, 1)):
        assert Counter(i.label for i in part) == {0: per_class, 2: per_class, 3: per_class}
    assert check_leakage(ds.train, ds.val, ds.test).ok
    for item in ds.full:
        assert item.source == "tiny-codes"
        audience = item.text.split(" for ", 1)[1].split(".")[0]
        assert (
            item.label
            == {"beginners": 3, "experts": 2, "professionals": 0}[audience.split()[-1].lower()]
        )


def test_every_format_gives_the_same_dataset(tmp_path: Path) -> None:
    loaded = [load_tiny_codes(write_rows(tmp_path / n, tiny_rows()), seed=4) for n in FORMATS]
    assert all(d.full == loaded[0].full and d.test == loaded[0].test for d in loaded)
    other_seed = load_tiny_codes(tmp_path / FORMATS[0], seed=5)
    assert other_seed.full != loaded[0].full  # balancing draws a different professional subset


@pytest.mark.parametrize("name", FORMATS)
def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path, name: str) -> None:
    """Excel and Windows tools start UTF-8 files with one: it was read as part of
    ``prompt`` (CSV: "missing column prompt"), or made line 1 invalid JSON."""
    plain = write_rows(tmp_path / name, tiny_rows())
    marked = tmp_path / f"bom-{name}"
    if name.endswith(".gz"):
        with gzip.open(plain, "rb") as f:
            data = f.read()
        marked.write_bytes(gzip.compress(b"\xef\xbb\xbf" + data))
    else:
        marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert load_tiny_codes(marked, seed=3).full == load_tiny_codes(plain, seed=3).full


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        path.write_bytes(b"PAR1 not really")
        with pytest.raises(MissingDependencyError, match="pip install pyarrow"):
            load_tiny_codes(path)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(tiny_rows()), path)
    jsonl = load_tiny_codes(write_rows(tmp_path / "data.jsonl", tiny_rows()))
    assert load_tiny_codes(path).full == jsonl.full


@pytest.mark.parametrize("compression", ["none", "snappy", "zstd"])
def test_a_damaged_parquet_file_is_one_clear_error(tmp_path: Path, compression: str) -> None:
    """Bytes damaged past the footer (a bad disk, an interrupted copy patched up) were
    found only as the rows were read: pyarrow's OSError ("Corrupt snappy compressed
    data", naming no file), ArrowInvalid or UnicodeDecodeError (tracebacks)."""
    pq = pytest.importorskip("pyarrow.parquet")
    import random

    import pyarrow as pa

    good = tmp_path / "good.parquet"
    rows = [r | {"prompt": f"{r['prompt']} {'x' * 60} {n}"} for n, r in enumerate(tiny_rows() * 40)]
    pq.write_table(pa.Table.from_pylist(rows), good, compression=compression)
    raw, rng = good.read_bytes(), random.Random(0)
    damaged = tmp_path / "damaged.parquet"
    refused = 0
    for _ in range(25):
        data, start = bytearray(raw), rng.randrange(4, len(raw) // 2)
        for k in range(start, start + rng.randrange(1, 64)):
            data[k] ^= rng.randrange(1, 256)
        damaged.write_bytes(data)
        try:
            load_tiny_codes(damaged)
        except DataError as e:
            refused += 1
            assert str(damaged) in str(e) and "\n" not in str(e)
    assert refused > 10  # most damage is found, as a DataError naming the file


def test_audience_matching() -> None:
    assert audience_class("Beginners") == 3
    assert audience_class("EXPERTS") == 2
    assert audience_class("Analysis for Professionals") == 0
    assert audience_class("Students") is None
    assert audience_class("Beginners and Experts") is None  # ambiguous: dropped


def test_duplicates_and_cap(tmp_path: Path) -> None:
    rows = tiny_rows()
    path = write_rows(tmp_path / "dup.jsonl", rows + rows[:2])
    ds = load_tiny_codes(path, max_per_class=5)
    assert ds.duplicates == 2
    assert Counter(i.label for i in ds.full) == {0: 5, 2: 5, 3: 5}
    assert len({i.text for i in ds.full}) == 15


@pytest.mark.parametrize("name", ["bad.jsonl", "bad.csv", "bad.json"])
def test_missing_columns_name_the_columns_found(tmp_path: Path, name: str) -> None:
    rows = [{"instruction": "Write code", "audience": "Experts"}]
    with pytest.raises(
        DataError, match="prompt, target_audience; columns found: instruction, audience"
    ):
        load_tiny_codes(write_rows(tmp_path / name, rows))
    rows = [{"prompt": "Write code", "audience": "Experts"}]
    with pytest.raises(
        DataError, match="column.s. target_audience; columns found: prompt, audience"
    ):
        load_tiny_codes(write_rows(tmp_path / name, rows))


def test_a_header_only_csv_without_the_columns_names_the_columns_found(tmp_path: Path) -> None:
    """The columns were checked on the first row only: a header of other columns and no
    rows said "no rows for audience(s) ...", as if the columns were right."""
    header_only = tmp_path / "header.csv"
    header_only.write_text("instruction,audience\n", encoding="utf-8")
    with pytest.raises(DataError, match="prompt, target_audience; columns found: instruction, audience$"):  # fmt: skip
        load_tiny_codes(header_only)


def test_a_json_file_as_datasets_or_pandas_writes_it_by_default_says_how_to_read_it(
    tmp_path: Path,
) -> None:
    """``datasets``' ``to_json("tiny-codes.json")`` writes JSON Lines, pandas'
    ``to_json`` an object of ``{row index: value}`` columns: they were "not valid JSON
    (Extra data: line 2 column 1 (char 412))" and "expected a list of rows or a mapping
    of column lists"."""
    rows = tiny_rows()
    lines = write_rows(tmp_path / "lines.jsonl", rows).rename(tmp_path / "tiny-codes.json")
    with pytest.raises(DataError, match=r"one JSON object a line \(JSON Lines.*name it \.jsonl"):
        load_tiny_codes(lines)
    by_index = {c: {str(i): r[c] for i, r in enumerate(rows)} for c in rows[0]}
    columns = tmp_path / "pandas.json"
    columns.write_text(json.dumps(by_index), encoding="utf-8")
    with pytest.raises(DataError, match="orient='records'"):
        load_tiny_codes(columns)


def test_a_json_of_empty_columns_reads_no_rows(tmp_path: Path) -> None:
    """{"prompt": [], "target_audience": []} said "1 rows read; 1 without a text
    prompt": a placeholder row, made for the column check, was counted as data."""
    empty = tmp_path / "empty.json"
    empty.write_text('{"prompt": [], "target_audience": [], "response": []}')
    with pytest.raises(DataError, match=r"\(0 rows read; 0 without a text prompt;"):
        load_tiny_codes(empty)
    empty.write_text('{"prompt": [], "audience": []}')
    with pytest.raises(DataError, match="target_audience; columns found: prompt, audience$"):
        load_tiny_codes(empty)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_tiny_codes(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="unsupported format"):
        load_tiny_codes(_touch(tmp_path / "data.txt"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "a", "target_audience": "Experts"}\n{not json\n')
    with pytest.raises(DataError, match="cannot read JSON lines"):
        load_tiny_codes(broken)
    only_experts = [r for r in tiny_rows() if "xpert" in r["target_audience"]]
    with pytest.raises(DataError, match="no rows for audience.s. beginner, professional"):
        load_tiny_codes(write_rows(tmp_path / "experts.jsonl", only_experts))


def test_a_csv_with_a_used_column_twice_is_refused(tmp_path: Path) -> None:
    """csv.DictReader kept the last `prompt` column only: here an empty one, so every
    row was dropped as without a prompt (or, with other text, trained on the wrong one)."""
    path = tmp_path / "data.csv"
    for header, extra, ok in ((["prompt"], [""], False), (["idx", "idx"], [1, 2], True)):
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["prompt", "target_audience", *header])
            writer.writerows([r["prompt"], r["target_audience"], *extra] for r in tiny_rows())
        if ok:  # columns not used may repeat
            assert load_tiny_codes(path).rows_read == len(tiny_rows())
            continue
        with pytest.raises(DataError, match="data.csv: columns named more than once: prompt;"):
            load_tiny_codes(path)


@pytest.mark.parametrize("name", ["data.jsonl", "data.json"])
def test_a_row_that_names_a_key_twice_is_refused(tmp_path: Path, name: str) -> None:
    """JSON kept the last `prompt` of such a row, silently, as the other data readers
    refuse to (a CSV's column named twice is refused too)."""
    lines = [json.dumps(r) for r in tiny_rows()]
    lines[3] = '{"prompt": "Write a loop", "target_audience": "Experts", "prompt": ""}'
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n" if name.endswith("l") else f"[{', '.join(lines)}]")
    where = "line 4: the key" if name.endswith("l") else "the key"
    with pytest.raises(DataError, match=f"{name}: {where} 'prompt' is given twice in one object"):
        load_tiny_codes(path)


def _touch(path: Path) -> Path:
    path.write_text("", encoding="utf-8")
    return path


def test_rows_lost_as_repeats_are_counted_when_an_audience_ends_up_empty(tmp_path: Path) -> None:
    # 30 prompts, each asked for all three audiences: only the beginners' rows survive.
    rows = [
        {"prompt": f"Write a Rust snippet #{i}", "target_audience": audience}
        for i in range(30)
        for audience in ("Beginners", "Experts", "Professionals")
    ]
    rows.append({"prompt": "Write a poem", "target_audience": "Students"})
    rows += [{"prompt": p, "target_audience": "Experts"} for p in (None, 3, "  ")]
    with pytest.raises(DataError) as err:
        load_tiny_codes(write_rows(tmp_path / "repeats.jsonl", rows))
    assert str(err.value) == (
        f"{tmp_path / 'repeats.jsonl'}: no rows for audience(s) expert, professional (94 rows "
        "read; 3 without a text prompt; 60 dropped as repeats of an earlier row's prompt: expert 30, professional 30; "
        "other audiences dropped: 'Students' 1); balancing needs all three"
    )


def test_a_prompt_that_is_not_utf8_text_names_its_row(tmp_path: Path) -> None:
    """A lone surrogate (JSON's "\\ud800") was read, then writing the splits failed with a
    message quoting the JSON being written, naming neither the file nor the row."""
    rows = tiny_rows()
    rows[5] = {**rows[5], "prompt": "Write \ud800 code"}
    with pytest.raises(DataError, match=r"data.jsonl: row 5: prompt is not valid UTF-8 text"):
        load_tiny_codes(write_rows(tmp_path / "data.jsonl", rows))


@pytest.mark.parametrize("name", ["data.jsonl", "data.jsonl.gz"])
def test_a_broken_json_line_is_named_by_its_line_in_the_file(tmp_path: Path, name: str) -> None:
    """Not the JSON decoder's position within that line (always line 1)."""
    lines = [json.dumps(r) for r in tiny_rows() * 2]  # 82 lines
    lines[60 - 1] = '{not json, "prompt": "x"}'
    lines.insert(10, "")  # blank lines count as lines of the file too
    path = tmp_path / name
    text = "\n".join(lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    with pytest.raises(DataError) as err:
        load_tiny_codes(path)
    assert str(err.value) == (
        f"{path}: cannot read JSON lines: line 61 is not valid JSON (Expecting property name "
        "enclosed in double quotes at column 2); fix or delete that line"
    )


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_truncated_or_damaged_gzip_file_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    """An interrupted copy of a .jsonl.gz raised gzip's EOFError (or zlib.error for
    damaged bytes) as a traceback from generate-data, not a DataError."""
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in tiny_rows() * 20).encode())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data = data[:200] + bytes(b ^ 0xFF for b in data[200:260]) + data[260:]
    path = tmp_path / "data.jsonl.gz"
    path.write_bytes(data)
    with pytest.raises(DataError, match="data.jsonl.gz: cannot read JSON lines: the gzip file is truncated or damaged"):  # fmt: skip
        load_tiny_codes(path)


@pytest.mark.parametrize(
    ("row", "said"),
    [
        # an unquoted comma in the prompt: every later cell shifted one column right
        ("Explain sorting to beginners, for Experts,Professionals", "more cells than the header"),
        ("Write a parser for Beginners", "fewer cells than the header"),
    ],
)
def test_a_csv_row_of_another_width_is_refused_by_its_line(
    tmp_path: Path, row: str, said: str
) -> None:
    """csv.DictReader put a long row's extra cells aside and filled a short row's with
    None: the row was trained on with a label from another cell, or dropped unseen."""
    path = tmp_path / "data.csv"
    rows = tiny_rows()
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(rows[0])  # its response spans four lines
        f.write("\r\n")  # a blank line, which is skipped
        f.write(",".join([row, *[""] * (len(COLUMNS) - 2)]) + "\r\n")
        writer.writerows(rows[1:])
    with pytest.raises(DataError, match=rf"data.csv, line 7: {said} .*quot"):
        load_tiny_codes(path)
