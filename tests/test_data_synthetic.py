"""The seeds' synthetic dataset: balance, sizes, determinism, no leakage, variety."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.cli import build_parser
from routerllm.data import synthetic
from routerllm.data.labeled import CLASS_NAMES, LabeledPrompt, load_json, save_json
from routerllm.data.synthetic import (
    MIN_DATASET_SIZE,
    TEMPLATES,
    Template,
    check_leakage,
    generate,
    near_duplicate_key,
    split,
    write_dataset,
)
from routerllm.exceptions import DataError


@pytest.fixture(scope="module")
def full() -> list[LabeledPrompt]:
    return generate()


def test_default_is_10000_balanced_unique(full: list[LabeledPrompt]) -> None:
    assert len(full) == 10_000
    assert Counter(i.label for i in full) == {0: 2500, 1: 2500, 2: 2500, 3: 2500}
    assert all(i.category == CLASS_NAMES[i.label] and i.source == "synthetic" for i in full)
    assert len({near_duplicate_key(i.text) for i in full}) == 10_000


def test_prompts_that_differ_in_a_language_named_with_a_symbol_are_two_prompts() -> None:
    """ "C++" and "C#" are not "C" with punctuation: the generator keeps both prompts."""
    keys = {near_duplicate_key(f"Build a URL shortener in {lang}.") for lang in ("C", "C++", "C#")}
    assert len(keys) == 3
    assert near_duplicate_key("Build it in C++!") == near_duplicate_key("build it, in c++")


def test_default_split_is_exactly_70_15_15_and_stratified(full: list[LabeledPrompt]) -> None:
    train, val, test = split(full)
    assert (len(train), len(val), len(test)) == (7_000, 1_500, 1_500)
    assert Counter(i.label for i in train) == dict.fromkeys(range(4), 1_750)
    assert Counter(i.label for i in val) == dict.fromkeys(range(4), 375)
    assert Counter(i.label for i in test) == dict.fromkeys(range(4), 375)
    assert sorted(map(repr, train + val + test)) == sorted(map(repr, full))


def test_a_class_size_that_does_not_divide_evenly_still_splits_70_15_15() -> None:
    # 50 a class: 7.5 for val and 7.5 for test; the half goes to each in turn, so
    # the splits are 140/30/30, not 140/32/28 (every tie to val).
    train, val, test = split(generate(200, seed=0))
    assert (len(train), len(val), len(test)) == (140, 30, 30)
    assert sorted(Counter(i.label for i in val).values()) == [7, 7, 8, 8]


@pytest.mark.parametrize("fractions", [(0.7, 0.15, 0.15), (0.8, 0.1, 0.1)])
def test_small_and_odd_class_sizes_split_by_the_fractions_in_all(
    fractions: tuple[float, float, float],
) -> None:
    """Each class's count in a split is its share rounded down or up, and so is each
    split's total: 7 balanced prompts went 7/0/0 (every class of 2 sent its 0.4 to
    train, never its 0.3 to val or test), 48 went 32/8/8, not 34/7/7 or so."""
    for n in range(1, 130):
        items = [LabeledPrompt(f"question {i} on topic {i * 7}", i % 4) for i in range(n)]
        parts = split(items, fractions)
        for j, part in enumerate(parts):
            assert abs(len(part) - n * fractions[j]) < 1, (n, [len(p) for p in parts])
            for label, size in Counter(i.label for i in items).items():
                got = sum(i.label == label for i in part)
                assert abs(got - size * fractions[j]) < 1, (n, label, j, got)


def test_a_whole_share_is_not_lost_to_float_error() -> None:
    """90 * 0.7 is 62.99999999999999 in floats: rounded down as it stands, a class of
    90 split after a class of 2 gave train 62 of its prompts, not its whole share, 63."""
    items = [LabeledPrompt(f"question {i} on topic {i * 7}", int(i >= 2)) for i in range(92)]
    train, val, test = split(items)
    assert [sum(i.label == 1 for i in part) for part in (train, val, test)] == [63, 14, 13]


def test_generated_prompts_and_each_split_come_in_mixed_class_order() -> None:
    """Not one class after another: `routerllm test` times the first 200 prompts of its
    data, and whoever reads the head of a file should see every class."""
    full = generate(400, seed=0)
    assert {i.label for i in full[:40]} == set(range(4))
    for part in split(full):
        assert {i.label for i in part[:40]} == set(range(4))


def test_the_seed_not_the_order_of_the_items_picks_each_split() -> None:
    """Items in class and file order, as the tiny-codes loader hands them over: another
    seed puts other prompts in the test split."""
    items = [LabeledPrompt(f"question {i} on topic {i * 7}", i // 30) for i in range(120)]
    chosen = [{i.text for i in split(items, seed=seed)[2]} for seed in (5, 6)]
    assert chosen[0] != chosen[1]


def test_uneven_sizes_stay_balanced() -> None:
    items = generate(10, seed=3)
    assert Counter(i.label for i in items) == {0: 3, 1: 3, 2: 2, 3: 2}
    train, val, test = split(items, (0.8, 0.1, 0.1))
    assert len(train) + len(val) + len(test) == 10


def test_same_seed_same_output_other_seed_differs(full: list[LabeledPrompt]) -> None:
    assert generate(400, seed=0) == generate(400, seed=0)
    assert generate(400, seed=0) != generate(400, seed=1)
    assert split(full, seed=5) == split(full, seed=5)
    assert split(full, seed=5)[1] != split(full, seed=6)[1]


def test_same_seed_writes_byte_identical_files_other_seed_other_files(tmp_path: Path) -> None:
    def written(name: str, seed: int) -> dict[str, bytes]:
        paths = write_dataset(tmp_path / name, 200, seed=seed).paths
        return {k: p.read_bytes() for k, p in paths.items()}

    first, again, other = written("a", 4), written("b", 4), written("c", 5)
    assert first == again
    assert all(first[k] != other[k] for k in first)


def test_no_exact_or_near_duplicates_across_splits(full: list[LabeledPrompt]) -> None:
    report = check_leakage(*split(full))
    assert report.ok, str(report)
    assert (report.exact, report.near) == ([], [])


def test_check_leakage_finds_exact_and_near_duplicates() -> None:
    a = LabeledPrompt("Explain entropy.", 2)
    near = LabeledPrompt("explain   ENTROPY", 2)
    other = LabeledPrompt("Translate hello into French.", 3)
    report = check_leakage([a, other], [a], [near])
    assert report.exact == [("train", "val", "Explain entropy.")]
    assert ("train", "test", "Explain entropy.", "explain   ENTROPY") in report.near
    assert ("val", "test", "Explain entropy.", "explain   ENTROPY") in report.near
    assert not report.ok
    assert str(report) == "1 exact and 2 near duplicates across splits"
    upper = LabeledPrompt("EXPLAIN ENTROPY.", 2)  # another case: near, not exact
    assert check_leakage([a], [upper], []).near == [("train", "val", a.text, upper.text)]
    assert check_leakage([a], [upper], []).exact == []


def test_a_prompt_that_is_only_a_greeting_or_thanks_is_its_own_request() -> None:
    """The generator's modifiers come off a request, but a prompt that is nothing else
    keeps its words: "Thanks!" and "Hello." are not one request."""
    only = [[LabeledPrompt(t, 3)] for t in ("Thanks!", "Hello.", "Please be concise.")]
    report = check_leakage(*only)
    assert report.ok, report.near


def test_check_leakage_finds_near_duplicates_that_differ_only_in_unicode_form() -> None:
    """The same text in another Unicode form (composed "é" or "e" and a combining
    accent, full-width letters, "ß" upper-cased to "SS", a no-break space) looks the
    same to a reader and to most tokenizers: until 2026-12-05 it was no duplicate."""
    pairs = [
        ('Translate "caf\u00e9" into German.', 'Translate "cafe\u0301" into German.'),
        ("Explain entropy.", "\uff25\uff58\uff50\uff4c\uff41\uff49\uff4e entropy."),
        ('What is the plural of "Stra\u00dfe"?', 'WHAT IS THE PLURAL OF "STRASSE"?'),
        ("Explain the CAP theorem.", "Explain\u00a0the CAP theorem."),
    ]
    for a, b in pairs:
        report = check_leakage([LabeledPrompt(a, 3)], [], [LabeledPrompt(b, 3)])
        assert report.near == [("train", "test", a, b)], (a, b)
        parts = split([LabeledPrompt(a, 3), LabeledPrompt(b, 3)] + generate(40, seed=0))
        assert check_leakage(*parts).ok


def test_split_keeps_near_duplicate_groups_together() -> None:
    base = generate(200, seed=1)
    # Copies of 20 prompts, re-cased and re-punctuated: they must land beside their original.
    dupes = [LabeledPrompt(i.text.upper().rstrip(".?!") + " !!", i.label) for i in base[:20]]
    train, val, test = split(base + dupes, seed=2)
    assert check_leakage(train, val, test).ok
    assert len(train) + len(val) + len(test) == 220


def test_split_keeps_one_request_with_other_modifiers_in_one_split() -> None:
    """The same request with another politeness, context or suffix ("Implement a
    stack in C#. Thanks!" in train, "I've been stuck on this for a while. Implement a
    stack in C#." in test) is a near-duplicate: the default dataset's 10,000 prompts
    hold 5,779 requests (5,734 before "C++" and "C#" were told apart), and 1,007 crossed
    splits before the split kept them together."""
    base = generate(200, seed=1, modifiers=False)
    wrapped = [
        LabeledPrompt(f"I'm new to this. {i.text} Thanks in advance!", i.label) for i in base
    ]
    polite = [
        LabeledPrompt(f"Could you please {i.text[0].lower()}{i.text[1:]}", i.label)
        for i in base[:40]
    ]
    parts = split(base + wrapped + polite, seed=2)
    where = {item.text: k for k, part in enumerate(parts) for item in part}
    assert [where[w.text] for w in wrapped] == [where[b.text] for b in base]
    assert [where[p.text] for p in polite] == [where[b.text] for b in base[:40]]
    assert check_leakage(*parts).ok
    report = check_leakage([base[0]], [wrapped[0]], [polite[0]])
    assert len(report.near) == 3 and not report.ok


def test_default_split_keeps_every_request_in_one_split(full: list[LabeledPrompt]) -> None:
    train, val, test = split(full)
    assert (len(train), len(val), len(test)) == (7_000, 1_500, 1_500)
    # the requests, without the generator's modifiers, of each split are disjoint
    requests = [{synthetic.request_key(i.text) for i in part} for part in (train, val, test)]
    assert not (requests[0] & requests[1] or requests[0] & requests[2] or requests[1] & requests[2])


def test_split_rejects_bad_fractions() -> None:
    with pytest.raises(DataError, match="fractions"):
        split(generate(8), (0.5, 0.5))
    with pytest.raises(DataError, match="fractions"):
        split(generate(8), (0.7, 0.2, 0.2))


def _template_regex(template: Template) -> re.Pattern[str]:
    core = template.pattern.rstrip(".?")
    parts = re.split(r"\{\w+\}", core)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.IGNORECASE)


def test_every_class_uses_many_templates_and_verbs(full: list[LabeledPrompt]) -> None:
    for label, templates in TEMPLATES.items():
        assert len(templates) >= 15
        texts = [i.text for i in full if i.label == label]
        used = {t.pattern for t in templates for x in texts[:600] if _template_regex(t).search(x)}
        assert len(used) >= 12, (label, len(used))
    keywords = {
        0: ["function", "implement", "algorithm", "debug", "fix", "unit tests", "script"],
        1: ["story", "article", "essay", "creative writing", "poem", "blog post", "speech"],
        2: ["explain", "analyze", "compare", "what is", "how does", "differences", "pros and cons"],
        3: ["translate", "convert", "simple", "quick", "basic", "calculate", "synonym"],
    }
    for label, words in keywords.items():
        texts = [i.text.lower() for i in full if i.label == label]
        for word in words:
            share = sum(word in t for t in texts) / len(texts)
            assert share > 0.01, (label, word, share)


def test_modifiers_make_prompts_natural_and_varied(full: list[LabeledPrompt]) -> None:
    texts = [i.text for i in full]
    assert any(t.startswith(("Please ", "Could you ")) for t in texts)
    assert any(t.endswith(("Thanks!", "ASAP please.")) for t in texts)
    plain = generate(200, seed=0, modifiers=False)
    assert not any(t.text.startswith(("Please ", "Hi! ")) for t in plain)
    # Articles agree with the word after them ("a inventory" would be a template bug).
    assert not [t for t in texts if re.search(r"\ba [aeio]", t.lower())]
    # No unfilled slot or doubled space.
    assert not [t for t in texts if "{" in t or "  " in t]


def test_a_singular_verb_takes_a_singular_subject() -> None:
    """ "How does noise-cancelling headphones work?", "What is circadian rhythms?",
    "Explain how the kidneys works": a slot that is the subject of
    "does", "is" or "works" takes no plural (words that end in s and are singular
    aside)."""
    singular_in_s = {"photosynthesis", "tectonics", "commons", "gps"}
    subject_slots = {
        slot
        for bank in TEMPLATES.values()
        for t in bank
        for slot in re.findall(r"(?:How does|How is|What is|[Ee]xplain how) \{(\w+)\}", t.pattern)
    }
    assert {"system", "concept"} <= subject_slots
    plural = [
        (slot, item)
        for slot in sorted(subject_slots)
        for item in synthetic.VOCAB[slot]
        if (last := item.split()[-1].lower()).endswith("s")
        and not last.endswith("ss")
        and last not in singular_in_s
    ]
    assert not plural


def test_too_few_templates_raise_data_error() -> None:
    one_each = {label: [Template(f"Hello {label} {{op}}.", label)] for label in range(4)}
    assert len(generate(16, templates=one_each, modifiers=False)) == 16  # 4 ops x 4 classes
    with pytest.raises(DataError, match="cannot produce 5 unique prompts"):
        generate(20, templates=one_each, modifiers=False)
    # Capacity is an upper bound: prompts shared with another class are found by trying.
    shared = {label: [Template("Hello {op}.", label)] for label in range(4)}
    with pytest.raises(DataError, match="produced only 0 unique prompts of the 1"):
        generate(5, templates=shared, modifiers=False)
    with pytest.raises(DataError, match="unique prompts"):
        generate(10**9)
    with pytest.raises(DataError, match="unknown slots"):
        Template("Write {nonsense}.", 0)


def test_more_prompts_than_the_tries_reach_are_refused_before_any_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """generate-data --n 8000000 was under the templates' capacity: it rendered
    classes 0 and 1 for minutes, then class 2 for an hour, to fail with "produced
    only ... unique prompts": rare combinations of modifiers hardly ever come."""

    def render(*args: object) -> str:
        raise AssertionError("rendered a prompt before refusing")

    monkeypatch.setattr(synthetic, "_render", render)
    with pytest.raises(
        DataError,
        match=r"class 2 \(general_purpose\) cannot produce 2000000 unique prompts \(about "
        r"804,6\d\d in the 100,001,000 tries it makes\)",
    ):
        generate(8_000_000)


def test_write_dataset_files_reload(tmp_path) -> None:
    written = write_dataset(tmp_path / "synthetic", n=400, seed=7)
    assert written.counts == {"full": 400, "train": 280, "val": 60, "test": 60}
    assert set(written.paths) == {"full", "train", "val", "test"}
    for name, path in written.paths.items():
        assert path.name == f"{name}.json"
        assert len(load_json(path)) == written.counts[name]
    assert load_json(written.paths["full"]) == generate(400, seed=7)
    parts = [load_json(written.paths[n]) for n in ("train", "val", "test")]
    assert check_leakage(*parts).ok


def test_write_dataset_never_replaces_existing_splits_unasked(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    mine = out / "train.json"
    mine.write_text('[{"text": "my hand-labelled prompt", "label": 0}]')
    before = mine.read_bytes()
    with pytest.raises(DataError, match="already holds train.json.*overwrite=True"):
        write_dataset(out, n=40)
    assert mine.read_bytes() == before and [p.name for p in out.iterdir()] == ["train.json"]
    written = write_dataset(out, n=40, overwrite=True)
    assert load_json(mine) == load_json(written.paths["train"]) and len(load_json(mine)) == 28
    (out / "test.json").unlink()
    (out / "test.json").mkdir()  # found before any split is written
    with pytest.raises(DataError, match="holds a folder named test.json, where a split file"):
        write_dataset(out, n=44, overwrite=True)
    assert len(load_json(mine)) == 28


@pytest.mark.parametrize(
    ("call", "when"), [("write_text", 3), ("replace", 2), ("replace", 3), ("replace", 4)]
)
def test_ctrl_c_while_the_splits_are_written_leaves_all_old_or_all_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, when: int
) -> None:
    """Ctrl-C while generate-data --overwrite wrote its splits left the first ones new
    and the others old (a train split beside a test split of another dataset, which
    could share prompts), or some of them missing. Ctrl-C is pressed (a real SIGINT)
    while the ``when``-th split is written, or the ``when``-th one is put in place."""
    out = tmp_path / "data"
    old = write_dataset(out, n=40, seed=1)
    before = {name: path.read_bytes() for name, path in old.paths.items()}
    owner, real = (Path, Path.write_text) if call == "write_text" else (os, os.replace)
    calls: list[int] = []

    def pressing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == when:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, call, pressing)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(out, n=44, seed=2, overwrite=True)
    monkeypatch.undo()
    after = {name: path.read_bytes() for name, path in old.paths.items()}
    changed = {name for name in after if after[name] != before[name]}
    assert changed == (set() if call == "write_text" else set(after))  # all old, or all new
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.json" for n in after)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    args = build_parser().parse_args(["generate-data", "--out", str(out)])
    assert args.interrupted(args, KeyboardInterrupt()) == (
        f"interrupted: {out} holds the split files it held before (or, stopped as they were "
        "put in place, all four new ones; never a mix); rerun the command to write them"
    )


@pytest.mark.parametrize(
    ("before", "failing", "said"),
    [
        (True, 1, "{out} holds the split files it held before"),
        (True, 3, "{out} now holds the new full.json, train.json beside the earlier val.json, test.json (not one dataset"),
        (False, 3, "{out} now holds the new full.json, train.json without val.json, test.json (not one dataset"),
    ],
)  # fmt: skip
def test_an_os_error_renaming_a_split_says_which_are_new(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    before: bool,
    failing: int,
    said: str,
) -> None:
    """An OS error (EIO, a file another user owns in a sticky folder) as generate-data put
    its staged splits in place was printed as an error about a temporary file that no
    longer exists (".val.json.x1y2.partial: input/output error"), and the library raised
    a bare OSError, though the folder could hold new splits beside old ones. Now one
    DataError line says which splits are new and which are not."""
    from routerllm.cli import main

    out = tmp_path / "data"
    if before:
        write_dataset(out, n=40, seed=1)
    real, calls = os.replace, []

    def renaming(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == failing:
            raise OSError(5, "Input/output error", str(src), None, str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", renaming)
    message = said.format(out=out)
    with pytest.raises(DataError, match=re.escape(message)):
        write_dataset(out, n=44, seed=2, overwrite=True)
    calls.clear()
    argv = ["generate-data", "--out", str(out), "--n", "44", "--seed", "2", "--overwrite"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    target = out / ("val.json" if failing == 3 else "full.json")
    assert err.startswith(f"error: cannot put {target} in place: Input/output error")
    assert message in err and len(err.splitlines()) == 1
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]  # none left behind


@pytest.mark.parametrize("n", [0, 8, MIN_DATASET_SIZE - 1, True, "40", 40.0])
def test_write_dataset_refuses_sizes_too_small_for_every_split(tmp_path: Path, n: object) -> None:
    out = tmp_path / "data"
    with pytest.raises(DataError, match=f"n must be an integer >= {MIN_DATASET_SIZE} so that"):
        write_dataset(out, n=n)  # type: ignore[arg-type]
    assert not out.exists()
    written = write_dataset(out, n=np.int64(MIN_DATASET_SIZE))
    for name in ("train", "val", "test"):
        assert {p.label for p in load_json(written.paths[name])} == set(range(len(CLASS_NAMES)))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: generate("10"), "n must be an integer"),
        (lambda: generate(None), "n must be an integer"),
        (lambda: generate(2.5), "n must be an integer"),
        (lambda: generate(True), "n must be an integer"),
        (lambda: generate(8, seed=-1), "seed must be"),
        (lambda: generate(8, seed="a"), "seed must be"),
        (lambda: generate(8, templates=[1, 2]), "templates must map"),
        (lambda: split(generate(8), (float("nan"), 0.5, 0.5)), "fractions"),
        (lambda: split(generate(8), "abc"), "fractions"),
        (lambda: split(["a", "b"]), r"items\[0\] is str"),
        (lambda: split("ab"), "items must be a list"),
        (lambda: check_leakage(None, [], []), "train must be a list"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_are_data_errors(call: Callable[[], object], match: str) -> None:
    with pytest.raises(DataError, match=match):
        call()


def test_numpy_numbers_and_generators_are_accepted() -> None:
    assert generate(np.int64(8), seed=np.int64(3)) == generate(8, seed=3)
    items = generate(40)
    assert [len(p) for p in split(items, np.array([0.5, 0.25, 0.25]))] == [20, 10, 10]
    assert len(generate(8, seed=np.random.default_rng(0))) == 8


def test_unwritable_paths_and_infinite_labels_are_data_errors(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(DataError, match="a_file is a file, not a directory"):
        write_dataset(tmp_path / "a_file", n=8)
    with pytest.raises(DataError, match="a_file exists and is not a directory"):
        save_json(generate(4), tmp_path / "a_file" / "train.json")
    assert (tmp_path / "a_file").read_text() == "mine"
    with pytest.raises(DataError, match="is a directory"):
        save_json(generate(4), tmp_path)
    infinite = tmp_path / "inf.json"
    infinite.write_text('[{"text": "a", "label": Infinity}]')
    with pytest.raises(DataError, match="item 1: label must be an integer in 0..3, got inf"):
        load_json(infinite)


def test_a_text_that_is_not_utf8_is_refused_when_the_file_loads(tmp_path: Path) -> None:
    """A lone surrogate (JSON's "\\ud800") loaded, and the encoder's tokenizer failed on it
    with a TypeError traceback (routerllm test, train)."""
    path = tmp_path / "test.json"
    path.write_text('[{"text": "a", "label": 1}, {"text": "b \\ud800", "label": 2}]')
    with pytest.raises(DataError, match="item 2: text is not valid UTF-8 .* at character 2"):
        load_json(path)
    with pytest.raises(DataError, match=r"items\[0\]: text is not valid UTF-8"):
        save_json([LabeledPrompt("\udfff", 1)], tmp_path / "train.json")
    assert not (tmp_path / "train.json").exists()


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([1, 2], r"items\[0\]: expected a LabeledPrompt, got int"),
        ("abc", "items must be a list of LabeledPrompt, got str"),
        ([LabeledPrompt("x", 5)], r"items\[0\]: label must be an integer in 0..3, got 5"),
        ([LabeledPrompt("x", 1), LabeledPrompt(" ", 1)], r"items\[1\]: text must be a non-empty"),
    ],
)
def test_only_labelled_prompts_are_written(tmp_path: Path, items: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        save_json(items, tmp_path / "train.json")  # type: ignore[arg-type]
    assert not (tmp_path / "train.json").exists()
    (tmp_path / "ok.json").write_text('[{"text": "a", "label": 1.0}, {"text": "", "label": 1}]')
    with pytest.raises(DataError, match="item 2: text must be a non-empty string"):
        load_json(tmp_path / "ok.json")
