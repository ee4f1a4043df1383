"""Outcome datasets built in memory and read from files: mistakes are clear DataErrors."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from routerllm.config import LimitsConfig
from routerllm.data.outcome_files import load_model_info, load_outcomes
from routerllm.data.outcomes import ModelInfo, OutcomeDataset, overlap
from routerllm.exceptions import DataError

from .conftest import BENCHMARKS, benchmark_in_process

SCORES = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


@pytest.fixture
def ds() -> OutcomeDataset:
    return OutcomeDataset(["a", "b", "c"], ["m1", "m2"], SCORES, SCORES + 1, [["x", "y"]] * 3)


def test_subset_takes_positions_or_a_boolean_mask(ds: OutcomeDataset) -> None:
    assert ds.subset([True, False, True]).prompts == ["a", "c"]
    picked = ds.subset(ds.scores[:, 0] > 0)
    assert picked.prompts == ["a", "c"] and picked.costs.tolist() == [[2, 1], [2, 2]]
    assert ds.subset(np.array([2, 0])).prompts == ["c", "a"]
    assert ds.subset([-1]).prompts == ["c"]  # numpy's negative positions
    assert len(ds.subset([])) == 0


@pytest.mark.parametrize(
    ("index", "match"),
    [
        ([True, False], "one value per prompt"),
        ([5], "index 5 is out of range"),
        ([-4], "index -4 is out of range"),
        (np.array([0.7]), "integer positions"),
        (["a"], "integer positions"),
        (None, "integer positions"),
        ([[0, 1]], "integer positions"),
        ([[0, 1], [0]], "integer positions"),
    ],
)
def test_subset_refuses_other_indices(ds: OutcomeDataset, index: object, match: str) -> None:
    with pytest.raises(DataError, match=match):
        ds.subset(index)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scores": "x"}, "scores must be an"),
        ({"scores": [[1, 0], [1]]}, "scores must be an"),
        ({"scores": {"a": 1}}, "scores must be an"),
        ({"costs": "x"}, "costs must be an"),
        ({"prompts": None}, "prompts must be a list"),
        ({"prompts": "abc"}, "prompts must be a list of strings, not a single string"),
        ({"prompts": [1, 2, 3]}, r"prompts\[0\] is int"),
        ({"models": ["m1", "m1"]}, "models are named more than once: m1"),
        ({"models": []}, "models must name at least one model"),
        ({"responses": [["x"]]}, "responses must be 3 lists"),
        ({"responses": ["xy", "xy", "xy"]}, "responses must be 3 lists"),
        ({"info": [1]}, "info must map"),
    ],
)
def test_constructor_mistakes_are_data_errors(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"prompts": ["a", "b", "c"], "models": ["m1", "m2"], "scores": SCORES}
    with pytest.raises(DataError, match=f"^outcome dataset: {match}"):
        OutcomeDataset(**{**args, **kwargs})  # type: ignore[arg-type]


def test_dataset_operations_refuse_what_is_not_a_dataset(ds: OutcomeDataset) -> None:
    with pytest.raises(DataError, match="at least one model"):
        ds.restrict_models([])
    with pytest.raises(DataError, match="not a single string"):
        ds.restrict_models("m1")
    with pytest.raises(DataError, match="only concat an OutcomeDataset"):
        ds.concat([1])  # type: ignore[arg-type]
    with pytest.raises(DataError, match="two OutcomeDatasets"):
        overlap(ds, None)  # type: ignore[arg-type]
    assert ds.restrict_models(["m2"]).responses == [["y"]] * 3
    assert ds.info == {} and OutcomeDataset(["a"], ["m"], [[1]], info={"m": ModelInfo("m", 7)})


def write_csv(path: Path, header: list[str], rows: list[list[object]], bom: bool = False) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_files_saved_with_a_byte_order_mark_load(tmp_path: Path) -> None:
    excel = write_csv(tmp_path / "excel.csv", ["prompt", "m", "m|total_cost"], [["hi", 1, 0.5]],
                      bom=True)  # fmt: skip
    assert excel.read_bytes().startswith(b"\xef\xbb\xbf")
    assert load_outcomes(excel).prompts == ["hi"]
    scores = tmp_path / "scores.json"
    scores.write_text('[{"question": "q", "scores": {"m": 1}}]', encoding="utf-8-sig")
    (tmp_path / "models.json").write_text('{"m": {"size": "7B"}}', encoding="utf-8-sig")
    loaded = load_outcomes(scores)
    assert loaded.models == ["m"] and loaded.sizes().tolist() == [7.0]


def test_a_csv_with_a_model_twice_is_refused(tmp_path: Path) -> None:
    twice = write_csv(tmp_path / "twice.csv", ["prompt", "m", "m|total_cost", "m", "m|total_cost"],
                      [["hi", 1, 0.5, 0, 0.2]])  # fmt: skip
    with pytest.raises(DataError, match="columns named more than once: m, m\\|total_cost"):
        load_outcomes(twice)


@pytest.mark.parametrize(
    ("name", "text", "key"),
    [  # JSON keeps the last of a key given twice: model m would score 0, size 70B
        ("scores.json", '[{"question": "q", "scores": {"m": 1, "n": 1, "m": 0}}]', "m"),
        ("scores.json", '[{"question": "q", "question": "r", "scores": {"m": 1}}]', "question"),
        ("models.json", '{"m": {"size": "7B"}, "m": {"size": "70B"}}', "m"),
    ],
)
def test_a_json_object_with_a_key_twice_is_refused(
    tmp_path: Path, name: str, text: str, key: str
) -> None:
    (tmp_path / "scores.json").write_text('[{"question": "q", "scores": {"m": 1}}]')
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError) as e:
        load_outcomes(tmp_path / "scores.json")
    assert str(e.value).startswith(f"{tmp_path / name}: the key {key!r} is given twice"), e.value
    assert "keep the one you mean" in str(e.value)


def test_a_question_given_twice_is_kept_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same question (case and spaces folded, as the train/test overlap compares
    them) twice, with different scores, was accepted without a word: repeated samples
    are legitimate outcome data, so the file still loads, but a warning gives the count
    and an example, in both formats."""
    rows = [["Sort a list", 1, 1], ["Prove it", 0, 1], ["sort  a LIST", 0, 1],
            ["Add", 1, 1], ["Prove it", 0, 1]]  # fmt: skip
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps([{"question": q, "scores": {"m": a, "n": b}} for q, a, b in rows]))
    table = write_csv(tmp_path / "bench.csv", ["prompt", "m", "m|total_cost", "n", "n|total_cost"],
                      [[q, a, 0.1, b, 0.2] for q, a, b in rows])  # fmt: skip
    for path, row in ((scores, "item"), (table, "data row")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, "routerllm.data.outcome_files"):
            assert len(load_outcomes(path)) == 5  # nothing dropped
        assert (
            f"{path}: 2 question(s) given more than once (2 repeated {row}(s), 1 with scores "
            f"that differ from the first's), e.g. {row}s 1 and 3: 'Sort a list'; all are kept"
        ) in caplog.text
    caplog.clear()
    scores.write_text(json.dumps([{"question": q, "scores": {"n": b}} for q, _, b in rows[:4]]))
    with caplog.at_level(logging.WARNING, "routerllm.data.outcome_files"):
        load_outcomes(scores)  # the same scores: a repeat still
    assert "(1 repeated item(s), 0 with scores that differ" in caplog.text
    caplog.clear()
    scores.write_text(json.dumps([{"question": q, "scores": {"m": a}} for q, a, _ in rows[1:4]]))
    with caplog.at_level(logging.WARNING, "routerllm.data.outcome_files"):
        load_outcomes(scores)
    assert not caplog.text  # each question once: nothing to say


def test_a_model_not_scored_on_every_item_is_left_out_naming_the_item(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ragged.json"
    items = [{"question": f"q{i}", "scores": {"m": 1, "n": 0}} for i in range(5)]
    del items[2]["scores"]["n"], items[4]["scores"]["n"]
    path.write_text(json.dumps(items))
    with caplog.at_level(logging.WARNING, "routerllm.data.outcome_files"):
        assert load_outcomes(path).models == ["m"]
    assert "left out n, not scored on every question (n missing from item 3 and 1 other(s))" in caplog.text  # fmt: skip
    items[1]["scores"] = {}  # then no model is left
    path.write_text(json.dumps(items))
    with pytest.raises(DataError, match=r"no model is scored on every question \(m missing from item 2 and 0 other\(s\); n missing from item 2 and 2 other\(s\)\); give every item"):  # fmt: skip
        load_outcomes(path)


def test_an_outcome_file_with_no_score_at_all_says_so(tmp_path: Path) -> None:
    """Every item's `scores` empty read "no model is scored on every question (); ...",
    an empty parenthesis where the items lacking a model are named."""
    path = tmp_path / "unscored.json"
    path.write_text(
        json.dumps([{"question": "q1", "scores": {}}, {"question": "q2", "scores": {}}])
    )
    with pytest.raises(DataError) as e:
        load_outcomes(path)
    assert str(e.value) == (
        f"{path}: no model is scored on every question (every item's `scores` is empty); "
        "give every item a score for each model"
    )


def test_spaces_around_a_csvs_column_names_are_not_part_of_them(tmp_path: Path) -> None:
    path = tmp_path / "spaced.csv"
    path.write_text("prompt , a, a|total_cost\nhi,1,0.5\n")
    loaded = load_outcomes(path)
    assert (loaded.prompts, loaded.models, loaded.costs.tolist()) == (["hi"], ["a"], [[0.5]])  # type: ignore[union-attr]
    path.write_text("prompt,a, a ,a|total_cost\nhi,1,0,0.5\n")
    with pytest.raises(DataError, match="columns named more than once: a$"):
        load_outcomes(path)


def test_a_csv_row_longer_than_the_header_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "long.csv", ["prompt", "m", "m|total_cost"],
                     [["hi", 1, 0.5], ["a, b", 1, 0.5, "extra"]])  # fmt: skip
    with pytest.raises(DataError, match="data row 2: more cells than the header has columns"):
        load_outcomes(path)
    for cells in (["[]", 1, 0.5], ["x", 1, 0.5]):  # an empty prompt; a model named ""
        header = (
            ["prompt", "m", "m|total_cost"] if cells[0] == "[]" else ["prompt", "", "|total_cost"]
        )
        path = write_csv(tmp_path / "bad.csv", header, [cells])
        with pytest.raises(DataError, match="prompt 1 is empty|a model's name is empty"):
            load_outcomes(path)


def test_a_csv_row_shorter_than_the_header_or_another_separator_says_so(tmp_path: Path) -> None:
    """A row cut short said "`m|total_cost` is None, not a number" (Python's word for the
    missing cell); a file separated by semicolons (as a spreadsheet writes CSV where the
    decimal mark is a comma) or tabs said only that it was not a RouterBench CSV."""
    header = ["prompt", "m", "m|total_cost"]
    path = write_csv(tmp_path / "short.csv", header, [["hi", 1, 0.5], ["ho", 1], ["x"]])
    with pytest.raises(DataError) as err:
        load_outcomes(path)
    assert str(err.value) == (
        f"{path}, data row 2: fewer cells than the header has columns (2 row(s) in all); "
        "a row cut short?"
    )
    for separator, name in ((";", "semicolons"), ("\t", "tabs")):
        path = tmp_path / "other.csv"
        path.write_text(f"{separator.join(header)}\nhi{separator}1{separator}0,5\n")
        with pytest.raises(DataError) as err:
            load_outcomes(path)
        assert str(err.value) == (
            f"{path}: its columns are separated by {name}; a RouterBench CSV's are separated "
            "by commas: save it so"
        )


def test_a_prompt_that_is_not_utf8_text_is_refused_when_the_file_loads(tmp_path: Path) -> None:
    """A lone surrogate (JSON's "\\ud800", or one in a CSV's list literal) loaded, and the
    default encoder's tokenizer failed on it with a TypeError traceback."""
    scores = tmp_path / "scores.json"
    scores.write_text('[{"question": "q", "scores": {"m": 1}}, '
                      '{"question": "bad \\ud800", "scores": {"m": 0}}]')  # fmt: skip
    with pytest.raises(DataError, match="scores.json: prompt 2 is not valid UTF-8 text .* "
                       "at character 4; 1 prompt.s. in all"):  # fmt: skip
        load_outcomes(scores)
    literal = write_csv(tmp_path / "literal.csv", ["prompt", "m", "m|total_cost"],
                        [["['bad \\udfff']", 1, 0.5]])  # fmt: skip
    with pytest.raises(DataError, match="literal.csv: prompt 1 is not valid UTF-8 text"):
        load_outcomes(literal)


def test_a_csv_holds_prompts_as_long_as_the_config_allows(tmp_path: Path) -> None:
    longest = "x" * LimitsConfig().max_prompt_chars
    path = write_csv(tmp_path / "long.csv", ["prompt", "m", "m|total_cost"],
                     [[str([longest]), 1, 0.5]])  # fmt: skip
    assert load_outcomes(path).prompts == [longest]


def test_model_metadata_mistakes_are_reported(tmp_path: Path) -> None:
    meta = tmp_path / "models.json"
    for size in ('"0B"', '"0.0 b"', "0", '"1e999B"', '"0e5B"'):
        meta.write_text(f'{{"m": {{"size": {size}}}}}')
        with pytest.raises(DataError, match="is not a size in billions"):
            load_model_info(meta)
    meta.write_text('{"m": 7}')
    with pytest.raises(DataError, match='m: expected an object such as {"size": "7B"}, got 7'):
        load_model_info(meta)


@pytest.mark.parametrize("path", [None, 5, ["a.csv"]])
def test_paths_that_are_not_paths_are_data_errors(path: object, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="outcome file must be a str or a Path"):
        load_outcomes(path)  # type: ignore[arg-type]
    if path is None:  # no models_path: the models.json beside the file, if any
        return
    scores = tmp_path / "scores.json"
    scores.write_text('[{"question": "q", "scores": {"m": 1}}]')
    with pytest.raises(DataError, match="model metadata file must be a str or a Path"):
        load_outcomes(scores, models_path=path)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("meta", "named"),
    [(ModelInfo("m", size_b=-7.0), "size_b -7.0"), (ModelInfo("m", size_b="big"), "size_b 'big'"),  # type: ignore[arg-type]
     (ModelInfo("m", input_price=float("inf")), "input_price inf")],
)  # fmt: skip
def test_model_info_of_the_wrong_kind_is_refused(meta: ModelInfo, named: str) -> None:
    with pytest.raises(DataError, match=f"model m: {named}"):
        OutcomeDataset(["hi"], ["m"], [[1.0]], info={"m": meta})


def test_a_price_cost_names_the_models_without_prices(tmp_path: Path) -> None:
    """The message said "give a models.json" when one was there, with sizes only."""
    scores = tmp_path / "scores.json"
    scores.write_text('[{"question": "q", "scores": {"m1": 1, "m2": 0}}]')
    (tmp_path / "models.json").write_text(
        '{"m1": {"size": "7B", "input_price": 0.1, "output_price": 0.2}, "m2": {"size": "70B"}}'
    )
    data = load_outcomes(scores)
    assert data.cost_matrix("size").tolist() == [[7.0, 70.0]]
    with pytest.raises(DataError, match=r"price unknown for m2; give each an input_price and"):
        data.cost_matrix("price")


def test_costs_whose_mean_overflows_are_a_clear_error(tmp_path: Path) -> None:
    """Per-call costs or sizes near 1e308 gave each model an infinite mean cost, and
    eval-routing an error about a router's params_b being inf."""
    scores = tmp_path / "scores.json"
    scores.write_text('[{"question": "q1", "scores": {"m1": 1, "m2": 0}},'
                      ' {"question": "q2", "scores": {"m1": 0, "m2": 1}}]')  # fmt: skip
    (tmp_path / "models.json").write_text(
        '{"m1": {"size": 1, "input_price": 1, "output_price": 1},'
        ' "m2": {"size": 1e308, "input_price": 1e308, "output_price": 1e308}}'
    )
    data = load_outcomes(scores)
    for kind in ("size", "price"):
        with pytest.raises(DataError, match=f"the models' {kind}s as costs are too large"):
            data.cost_matrix(kind)
    with pytest.raises(DataError, match="^outcome dataset: costs are too large"):
        OutcomeDataset(["q1", "q2"], ["m"], [[1], [0]], costs=[[1e308], [1e308]])
    assert OutcomeDataset(["q1", "q2"], ["m"], [[1], [0]], costs=[[1e307], [1e307]])


@pytest.fixture(scope="module")
def torch_missing(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which ``import torch`` fails, as without the hf extra: a
    benchmark's --help and its refusal of an argument must not wait for torch (4-7 s to
    import on 2 cores, loss_ablation's and router_latency's every run did)."""
    import os

    stub = tmp_path_factory.mktemp("no_torch") / "torch"
    stub.mkdir()
    (stub / "__init__.py").write_text(
        'raise ImportError("torch imported before the arguments were checked")\n'
    )
    paths = [str(stub.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


# Runs each benchmark named (argv: [script, args...], a list of them on stdin) as
# `python script args` runs it, one after another in this one process, and writes each
# one's exit status, stdout and stderr to the JSON file OUT_PATH.
_RUN_BENCHMARKS = """
import contextlib, io, json, logging, runpy, sys, traceback
results = []
for argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    sys.argv, sys.path[0] = argv, argv[0].rsplit("/", 1)[0]
    logging.root.handlers, status = [], 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as e:  # as Python exits: None is 0, a message is 1
            status = e.code if isinstance(e.code, int) else int(e.code is not None)
            if status and not isinstance(e.code, int):
                print(e.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            status = 1
    results.append([status, out.getvalue(), err.getvalue()])
with open(OUT_PATH, "w") as f:
    json.dump(results, f)
"""


@pytest.fixture(scope="module")
def torch_free_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty folder, the --data-dir or --run of the runs without torch."""
    return tmp_path_factory.mktemp("torch_free")


@pytest.fixture(scope="module")
def without_torch(
    torch_missing: dict[str, str], torch_free_dir: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``python benchmarks/<name>.py args`` where ``import torch`` fails: what it printed
    and its status. Every run the tests below make is made at once, in one process
    (started the first time one is asked for): a process each (62) spent 1-2 s
    importing the config, CodeCarbon and pandas again. One process checks what a process
    each did: torch cannot be imported in it, by any benchmark, so a benchmark that
    imports it before its arguments are read fails there as in its own (a module the
    runs before it imported without torch imports none)."""
    out = torch_free_dir.parent / f"{torch_free_dir.name}-runs.json"
    runs = [[str(BENCHMARKS / f"{name}.py"), *argv] for name, argv in _torch_free_runs(torch_free_dir)]  # fmt: skip
    code = f"OUT_PATH = {str(out)!r}\n{_RUN_BENCHMARKS}"
    subprocess.run([sys.executable, "-c", code], input=json.dumps(runs), env=torch_missing,
                   text=True, capture_output=True, check=True, timeout=600)  # fmt: skip
    done = {
        (Path(argv[0]).stem, tuple(argv[1:])): subprocess.CompletedProcess(argv, *result)
        for argv, result in zip(runs, json.loads(out.read_text()), strict=True)
    }

    def run(name: str, *argv: str) -> subprocess.CompletedProcess[str]:
        assert (name, argv) in done, f"add {name} {argv} to _torch_free_runs"
        return done[name, argv]

    return run


DATA_BENCHMARKS = (
    "decision_rules", "ensemble_routing", "feedback_learning", "learned_routers", "loss_ablation",
    "moe_defaults", "quality_selection", "routing_features", "routing_targets",
)  # fmt: skip


@pytest.mark.parametrize("name", DATA_BENCHMARKS)
def test_a_benchmark_on_the_outcome_data_fails_clearly_without_it(
    name: str, torch_free_dir: Path, without_torch: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """decision_rules said the data was missing and exited 0; loss_ablation said nothing,
    trained on the synthetic task alone and exited 0 (with --tasks outcome: no results)."""
    missing = torch_free_dir / "none"
    out = without_torch(name, "--data-dir", str(missing))
    assert out.returncode == 2, out.stderr[-500:]
    assert f"no outcome data at {missing}" in out.stderr and "Traceback" not in out.stderr


SEED_OPTIONS = [
    ("decision_rules", "--seeds"), ("ensemble_routing", "--seeds"), ("feedback_learning", "--seeds"),
    ("learned_routers", "--seeds"), ("loss_ablation", "--seeds"), ("moe_defaults", "--seeds"),
    ("serving_gate", "--seed"), ("train_default_complexity", "--seed"),
]  # fmt: skip


def _seed_run(name: str, option: str, folder: Path) -> tuple[str, ...]:
    # train_default_complexity reads nothing: it trains on synthetic prompts
    inputs = {"serving_gate": ["--run", str(folder / "run")], "train_default_complexity": []}
    return (*inputs.get(name, ["--data-dir", str(folder)]), option, "-1")


@pytest.mark.parametrize(("name", "option"), SEED_OPTIONS)
def test_a_benchmark_refuses_a_seed_numpy_cannot_take_before_it_runs(
    name: str,
    option: str,
    torch_free_dir: Path,
    without_torch: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """A negative seed (or one past 2**32 - 1) was a traceback from numpy or the router
    once the data was read and, with several --seeds, after the seeds before it had run."""
    out = without_torch(name, *_seed_run(name, option, torch_free_dir))
    assert out.returncode == 2, out.stderr[-500:]
    assert out.stderr.strip().splitlines()[-1] == (
        f"{name}.py: error: argument {option}: -1 is out of range: give 0 to 4,294,967,295"
    )


@pytest.mark.parametrize("warm", ["0", "-5"])
def test_the_feedback_benchmark_refuses_a_warm_start_size_below_one(
    warm: str, tmp_path: Path
) -> None:
    """--warm -5 warm-started the router on all the training prompts but 5 (a [:-5]
    slice) and streamed those 5; --warm 0 silently used the default size."""
    out = benchmark_in_process("feedback_learning", "--data-dir", str(tmp_path / "none"), "--warm", warm)  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .endswith(f"error: argument --warm: {warm} is out of range: give a whole number >= 1")
    )


def _small_mbpp_set(data_dir: Path, test_cost_b: float = 0.01) -> None:
    """A small RouterBench-MBPP-shaped set under ``data_dir`` (two models, 40 train and 12
    test prompts, seeded outcomes; a call costs 0.001 on a, 0.01 on b, ``test_cost_b`` on b
    in the test set): a benchmark's smoke run on the shared data's layout."""
    rng = np.random.default_rng(0)
    header = ["", "sample_id", "prompt", "eval_name", "a", "a|total_cost", "b", "b|total_cost",
              "oracle_model_to_route_to"]  # fmt: skip
    folder = data_dir / "routerbench_mbpp"
    folder.mkdir()
    for file, n, cost_b in (("train.csv", 40, 0.01), ("test.csv", 12, test_cost_b)):
        rows = [[i, f"{file}{i}", repr([f"write function {file} {i}"]), "mbpp",
                 int(rng.integers(2)), 0.001, int(rng.integers(2)), cost_b, "a"] for i in range(n)]  # fmt: skip
        write_csv(folder / file, header, rows)


@pytest.mark.parametrize(
    ("argv", "given"),
    [(["--warm", "40"], "argument --warm: 40"),
     (["--warm", "1000000000000"], "argument --warm: 1000000000000"),
     ([], "the default --warm 50")],
)  # fmt: skip
def test_the_feedback_benchmark_refuses_a_warm_start_that_leaves_nothing_to_stream(
    argv: list[str], given: str, tmp_path: Path
) -> None:
    """--warm at or above the training set's size (or the set's default warm start, 50
    prompts, on a smaller set) warm-started the router on all of it and streamed
    nothing: a table of nan, status 0. Refused in one line once the set is read, before
    any prompt is embedded (a set of 40 training prompts here)."""
    from .conftest import benchmark_in_process

    _small_mbpp_set(tmp_path)
    out = benchmark_in_process("feedback_learning", "--data-dir", str(tmp_path), "--datasets",
                               "routerbench_mbpp", "--encoder", "hashing", *argv)  # fmt: skip
    assert (out.returncode, out.stdout) == (2, ""), out.stderr[-500:]
    assert out.stderr.strip().splitlines()[-1] == (
        f"feedback_learning.py: error: {given} leaves no prompt to stream: "
        "routerbench_mbpp has 40 training prompts; give at most 39"
    )


def test_the_feedback_benchmark_runs_and_names_the_seeds_it_ran(tmp_path: Path) -> None:
    """Its header said "seeds 1" for ``--seeds 7``: the count, read as the seed, and its
    --json kept no seed at all. A smoke run on a small MBPP-shaped set (hashing encoder)."""
    _small_mbpp_set(tmp_path)
    argv = ["--data-dir", str(tmp_path), "--datasets", "routerbench_mbpp", "--encoder",
            "hashing", "--warm", "10", "--seeds", "7"]  # fmt: skip
    out = benchmark_in_process("feedback_learning", *argv)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-800:]
    assert "hashing, seeds [7]" in out.stdout.splitlines()[2]  # after the machine, a blank
    out = benchmark_in_process("feedback_learning", *argv, "--json")
    assert out.returncode == 0, out.stderr[-800:]
    assert json.loads(out.stdout)["routerbench_mbpp"]["seed_values"] == [7]


def test_decision_rules_runs_on_the_one_dataset_asked(tmp_path: Path) -> None:
    """``--seeds 0`` still ran both sets (over 4 minutes): there was no --datasets, and a
    folder holding one set only was refused. A smoke run on a small MBPP-shaped set.

    Its cost shares are of the test set's costliest model's mean cost, as the other
    routing benchmarks' are: they were of the training set's (b costs 0.01 there, 0.02
    on test, so a share of 2 where every prompt went to b). A share s is then a mean
    test cost 0.02 s = 0.001 + 0.019 f with f the share of the 12 prompts sent to b."""
    _small_mbpp_set(tmp_path, test_cost_b=0.02)
    argv = ["--data-dir", str(tmp_path), "--datasets", "routerbench_mbpp", "--seeds", "0",
            "--targets", "max_cost=0.5", "--json"]  # fmt: skip
    out = benchmark_in_process("decision_rules", *argv)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-800:]
    results = json.loads(out.stdout)
    assert list(results) == ["routerbench_mbpp"]
    assert list(results["routerbench_mbpp"]["0"]) == ["max_cost=0.5"]
    for way, row in results["routerbench_mbpp"]["0"]["max_cost=0.5"].items():
        to_b = 12 * (0.02 * row["test_cost_share"] - 0.001) / 0.019  # prompts sent to b
        assert to_b == pytest.approx(round(to_b), abs=1e-6) and 0 <= round(to_b) <= 12, way


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [("--knob", "-5", ">= 0"), ("--knob", "nan", ">= 0"), ("--explore", "-1", ">= 0"),
     ("--explore", "inf", ">= 0"), ("--ridge", "0", ">= 1e-06")],
)  # fmt: skip
def test_the_feedback_benchmark_refuses_a_knob_explore_or_ridge_the_router_cannot_take(
    option: str, value: str, allowed: str, tmp_path: Path
) -> None:
    """--ridge 0, --explore -1 or --knob nan were a RouterLLMError traceback once the data
    was read and embedded; --knob -5 ran, favouring the costly models, and printed
    utilities above 1."""
    out = benchmark_in_process("feedback_learning", "--data-dir", str(tmp_path / "none"), option, value)  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"feedback_learning.py: error: argument {option}: {value} must be a finite number {allowed}"
    )


ENCODER_OPTIONS = [
    ("quality_selection", "--encoder"), ("feedback_learning", "--encoder"),
    ("routing_targets", "--encoders"), ("train_default_complexity", "--encoder"),
    ("router_latency", "--encoders"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "option"), ENCODER_OPTIONS)
def test_a_benchmark_refuses_an_unknown_encoder_before_it_runs(
    name: str, option: str, without_torch: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """An unknown encoder was a traceback (UnknownNameError) after the data was read,
    and after whole datasets with the encoders before it (routing_targets), or after
    training and timing three routers on each encoder before it (router_latency)."""
    out = without_torch(name, option, "bogus")
    assert out.returncode == 2, out.stderr[-500:]
    last = out.stderr.strip().splitlines()[-1]
    assert last == (
        f"{name}.py: error: argument {option}: unknown encoder 'bogus'; valid names: hashing, "
        "hf, minilm, minilm-onnx, minilm-static, static"
    )


@pytest.mark.parametrize(
    ("name", "argv", "error"),
    [("quality_selection", ["--resplits", "0"], "argument --resplits: 0 is out of range: give 1 to 100"),
     ("routing_targets", ["--bootstrap", "0"], "--bootstrap: 1 to 10,000 resamples"),
     ("routing_targets", ["--resplits", "-1"], "argument --resplits: -1 is out of range: give 0 to 100")],
)  # fmt: skip
def test_a_benchmark_refuses_a_count_it_cannot_use_before_it_runs(
    name: str, argv: list[str], error: str, tmp_path: Path
) -> None:
    """quality_selection --resplits 0 ended in a KeyError traceback after reading the
    data; routing_targets --bootstrap 0 in a RouterLLMError one after embedding a set."""
    out = benchmark_in_process(name, "--data-dir", str(tmp_path), *argv)
    assert out.returncode == 2, out.stderr[-500:]
    assert out.stderr.strip().splitlines()[-1] == f"{name}.py: error: {error}"


REFUSED_NUMBERS = [
     ("quality_selection", ["--shares", "0", "-1"], "argument --shares: -1 must be a finite number >= 0"),
     ("quality_selection", ["--shares", "nan"], "argument --shares: nan must be a finite number >= 0"),
     ("serving_gate", ["--run", "none", "--budget", "-1"], "argument --budget: -1 must be a finite number > 0"),
     ("serving_gate", ["--run", "none", "--budget", "inf"], "argument --budget: inf must be a finite number > 0"),
     ("loss_ablation", ["--learning-rate", "0"], "argument --learning-rate: 0 must be a finite number > 0"),
     ("loss_ablation", ["--learning-rate", "1e39"], "argument --learning-rate: 1e39 is too large: give at most 3.4e+38"),
     ("loss_ablation", ["--n", "-4"], "argument --n: -4 is out of range: give 1 to 1,000,000"),
     ("loss_ablation", ["--epochs", "0"], "argument --epochs: 0 is out of range: give 1 to 10,000"),
     ("loss_ablation", ["--warmup", "-1"], "argument --warmup: -1 is out of range: give a whole number >= 0"),
     ("loss_ablation", ["--max-length", "0"], "argument --max-length: 0 is out of range: give a whole number >= 1"),
     # hashing and 40 prompts: fast, and failing before the packaged asset is written
     ("train_default_complexity", ["--encoder", "hashing", "--n", "40", "--C", "-1"], "argument --C: -1 must be a finite number > 0"),
     ("train_default_complexity", ["--encoder", "hashing", "--n", "40", "--C", "nan"], "argument --C: nan must be a finite number > 0"),
     ("train_default_complexity", ["--encoder", "hashing", "--n", "-4"], "argument --n: -4 is out of range: give 1 to 1,000,000"),
     ("encoder_latency", ["--prompts", "8", "--repeats", "1", "--threads", "0"], "argument --threads: 0 is out of range: give 1 to 512"),
     ("quantization", ["--model", "nope", "--threads", "-1"], "argument --threads: -1 is out of range: give 1 to 512"),
     ("router_latency", ["--encoders", "static", "--n", "601"], "--n: at most 600, the synthetic prompts not trained on"),
     ("measure_local_models", ["--prompt-tokens", "250", "0"], "argument --prompt-tokens: 0 is out of range: give 1 to 2,147,483,647"),
     ("prompt_state_cost", ["--max-new-tokens", "0"], "argument --max-new-tokens: 0 is out of range: give 1 to 2,147,483,647"),
     # 2 prompts split 2/0/0 (8 split 8/0/0 until 2026-12-06, now 6/1/1)
     ("loss_ablation", ["--tasks", "synthetic", "--seeds", "0", "--epochs", "1", "--n", "2"],
      "--n 2: too few prompts to leave any for validation and test; give more"),
     ("train_default_complexity", ["--encoder", "hashing", "--n", "2"],
      "--n 2: too few prompts to leave any for the test split; give more")]  # fmt: skip


@pytest.mark.parametrize(("name", "argv", "error"), REFUSED_NUMBERS)
def test_a_benchmark_refuses_a_number_it_cannot_use_before_it_runs(
    name: str,
    argv: list[str],
    error: str,
    without_torch: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """quality_selection --shares -1 (or nan) was a RouterLLMError traceback once the
    data was read, split and embedded; serving_gate --budget -1 was refused only after
    the run was read and its answers checked; loss_ablation --learning-rate 0, --n -4 or
    --max-length 0 were a traceback once the data was read and MiniLM loaded;
    train_default_complexity --C -1 one from scikit-learn once the prompts were embedded;
    encoder_latency --threads 0 one from torch once MiniLM loaded; quantization --threads 0
    ran llama.cpp on its default count and printed "0 threads"; router_latency --n 1000
    timed 600 prompts (its --json did not say how many); an --n of 8 left no test
    prompt: loss_ablation trained MiniLM, then died on an empty accuracy,
    train_default_complexity on scikit-learn's ValueError."""
    out = without_torch(name, *argv)
    assert out.returncode == 2, out.stderr[-500:]
    assert out.stderr.strip().splitlines()[-1] == f"{name}.py: error: {error}"


def test_training_the_default_complexity_classifier_replaces_the_packaged_one_only_asked() -> None:
    """Every run of train_default_complexity.py replaced the packaged classifier, a trial
    one on 40 prompts too (the shipped asset is kept on purpose: figures were measured
    with it). Without --write it prints its accuracy and writes nothing."""
    from routerllm.routers.complexity import default_model_dir

    asset = {p.name: p.read_bytes() for p in default_model_dir().iterdir()}
    out = benchmark_in_process("train_default_complexity", "--encoder", "hashing", "--n", "40")
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip().endswith("(not written: give --write to replace the packaged classifier)")  # fmt: skip
    assert {p.name: p.read_bytes() for p in default_model_dir().iterdir()} == asset


def test_the_prompt_state_benchmark_refuses_a_negative_count_of_problems() -> None:
    """--n -1 took every HumanEval problem but the last ([:-1]) and ran three passes of
    the model over the 163 of them."""
    out = benchmark_in_process("prompt_state_cost", "--n", "-1")
    assert out.returncode == 2, out.stderr[-500:]
    assert out.stderr.strip().splitlines()[-1] == (
        "prompt_state_cost.py: error: argument --n: -1 is out of range: give a whole number >= 1"
    )


@pytest.mark.slow  # ~3 s on 2 cores: three greedy passes of SmolLM2-135M
def test_the_prompt_state_benchmark_caps_the_answers_at_max_new_tokens() -> None:
    """Every answer ran to its prompting style's 512 tokens: with SmolLM2 (which rarely
    stops early) even ``--n 2`` took minutes."""
    # In this process (what is checked is its output, not a process of its own), on one
    # llama.cpp thread: on a thread a core, the benchmark's default, the two spun at
    # llama.cpp's barriers while the suite shares the cores (load 7, 2026-12-07: this test
    # alone 45.1 s of CPU with a process on two threads, 11.7 s in this one on one)
    argv = ["--model", "smollm2-135m", "--n", "1", "--max-new-tokens", "4", "--threads", "1"]
    out = benchmark_in_process("prompt_state_cost", *argv)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-800:]
    header = out.stdout.splitlines()[1]
    assert header.startswith("smollm2-135m, 1 problems, max_new_tokens 4 (longest answer: ")
    assert 1 <= int(header.split("longest answer: ")[1].split()[0]) <= 4


@pytest.mark.parametrize(
    ("name", "hint"), [("routing_features", ""), ("learned_routers", ", or leave its set out of --datasets")]
)  # fmt: skip
def test_a_benchmark_finds_a_missing_set_before_it_runs(
    name: str, hint: str, tmp_path: Path
) -> None:
    """With one set's files missing, routing_features computed LLMRouter for 4 minutes,
    then died with a DataError traceback on RouterBench MBPP."""
    (tmp_path / "llmrouter").mkdir()
    for file in ("train.json", "test.json"):
        (tmp_path / "llmrouter" / file).write_text("[]")
    out = benchmark_in_process(name, "--data-dir", str(tmp_path))
    assert out.returncode == 2, out.stderr[-500:]
    missing = "routerbench_mbpp/train.csv, routerbench_mbpp/test.csv"
    assert out.stderr.strip() == f"no {missing} in {tmp_path} (give --data-dir{hint})"


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


HELP_STATES = [
     ("carbon_predictor", "--max-new-tokens MAX_NEW_TOKENS (default: 128)"),
     ("decision_rules", "--seeds SEEDS [SEEDS ...] (default: [0, 1, 2])"),
     ("encoder_latency", "--threads THREADS (default: 2)"),
     ("ensemble_routing", "--targets TARGETS [TARGETS ...] (default: ['quality=0.95', 'max_cost=0.5'])"),
     ("feedback_learning", "--knob KNOB (default: 0.1) --explore EXPLORE (default: 0.1)"),
     ("learned_routers", "--seeds SEEDS [SEEDS ...] (default: [0, 1, 2])"),
     ("loss_ablation", "--learning-rate LEARNING_RATE (default: 5e-05)"),
     ("measure_local_models", "--config CONFIG (default: local)"),
     ("moe_defaults", "--seeds SEEDS [SEEDS ...] (default: [1, 2, 3])"),
     ("prompt_state_cost", "--n N HumanEval problems (the first n; more than 164: all) (default: 24)"),
     ("prompt_state_cost", "--max-new-tokens MAX_NEW_TOKENS the most tokens per answer (default: the model's prompting style's, 512 for qwen2.5-coder-0.5b)"),
     ("decision_rules", "--datasets {llmrouter,routerbench_mbpp} [{llmrouter,routerbench_mbpp} ...] (default: ['llmrouter', 'routerbench_mbpp'])"),
     ("quality_selection", "--shares SHARES [SHARES ...] (default: [0.0, 3.0, 10.0, 30.0])"),
     ("quantization", "--tokens TOKENS standard-library tokens scored (default: 4096)"),
     ("report_scaling", "--sizes SIZES [SIZES ...] requests in the log, 500 to 10,000,000 (default: [10000, 50000, 100000])"),
     ("router_latency", "--n N prompts to time, at most 600 (default: 600)"),
     ("routing_features", f"--data-dir DATA_DIR (default: {SHARED_DATA})"),
     ("routing_targets", "--bootstrap BOOTSTRAP (default: 200)"),
     ("server_overhead", "--model MODEL (default: smollm2-135m)"),
     ("serving_gate", "--budget BUDGET (default: 0.7)"),
     ("train_default_complexity", "--C C (default: 10.0)")]  # fmt: skip


@pytest.mark.parametrize(("name", "states"), HELP_STATES)
def test_a_benchmarks_help_states_its_defaults(
    name: str, states: str, without_torch: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """No benchmark's --help said what an option left out would be: only the options'
    names (a default was in its module docstring's usage line, if anywhere)."""
    out = without_torch(name, "--help")
    assert out.returncode == 0, out.stderr[-500:]
    assert states in " ".join(out.stdout.split())
    assert "(default: None)" not in out.stdout and "(default: False)" not in out.stdout


def test_a_csv_column_not_read_is_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model's score column without its `|total_cost` column (or its answers without
    either) was left out without a word: the routers then chose among fewer models."""
    header = ["", "sample_id", "prompt", "eval_name", "a", "a|total_cost", "a|model_response",
              "b", "c|model_response", "oracle_model_to_route_to"]  # fmt: skip
    path = write_csv(
        tmp_path / "bench.csv", header, [[0, "s", "hi", "e", 1, 0.5, "x", 1, "y", "a"]]
    )
    with caplog.at_level(logging.WARNING, "routerllm.data.outcome_files"):
        assert load_outcomes(path).models == ["a"]
    assert (
        f"{path}: left out 2 column(s), b, c|model_response: only `prompt` and each model's "
        "`<model>`, `<model>|total_cost` and `<model>|model_response` are read"
    ) in caplog.text
    caplog.clear()
    path = write_csv(tmp_path / "full.csv", header[:7] + header[-1:], [[0, "s", "hi", "e", 1, 0.5, "x", "a"]])  # fmt: skip
    with caplog.at_level(logging.WARNING, "routerllm.data.outcome_files"):
        load_outcomes(path)
    assert not caplog.text  # RouterBench's own columns: nothing to say


def test_a_csv_the_csv_module_cannot_read_names_the_line(tmp_path: Path) -> None:
    """A cell over the field limit (as an unclosed quote makes of the rest of a file)
    said only "field larger than field limit (800000)", not where."""
    path = tmp_path / "quote.csv"
    cell = "x" * (LimitsConfig().max_prompt_chars * 4 + 1)
    path.write_text(f'prompt,m,m|total_cost\nhi,1,0.5\n"{cell}",1,0.5\n')
    with pytest.raises(DataError) as e:
        load_outcomes(path)
    assert str(e.value).startswith(
        f"{path}: cannot read CSV at line 3 (field larger than field limit (800000)); "
    ), e.value


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[{"question": "q", "scores": {"m": 1}}, null]',
         "item 2 is null, not an object with `question` and a `scores` mapping (1 item(s) in all)"),
        ('[{"question": "q", "scores": {"m": 1}}, [{"question": "r", "scores": {"m": 1}}]]',
         "item 2 is a list, not an object with `question` and a `scores` mapping (1 item(s) in "
         "all)"),
        ('[{"question": "q", "scores": [1, 0]}]',
         "item 1 has no `scores` mapping of model to score (1 item(s) in all); every item "
         "needs `question` and `scores`"),
        ('{"data": [{"question": "q", "scores": {"m": 1}}]}',
         "expected a non-empty JSON list of {question, scores} objects, got an object (keys: "
         "data)"),
        ('{"question": "q", "scores": {"m": 1}}\n{"question": "r", "scores": {"m": 0}}\n',
         "one JSON value a line (JSON Lines) in a .json file: name it .jsonl to read it so, "
         "or make it one JSON list of {question, scores} objects"),
    ],
)  # fmt: skip
def test_a_json_outcome_file_of_the_wrong_shape_names_the_item(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "scores.json"
    path.write_text(text)
    with pytest.raises(DataError) as e:
        load_outcomes(path)
    assert str(e.value) == f"{path}: {says}"


@pytest.mark.parametrize("cell", ["0_1", "1_000", " nan_ "])
def test_a_csv_number_with_an_underscore_is_refused_not_read_as_another(
    tmp_path: Path, cell: str
) -> None:
    """Python's float() reads "0_1" as 1.0 (digits grouped as in code): a score typed
    "0_1" was read as a success (until 2026-12-05). A CSV cell's number has no underscore."""
    header = ["prompt", "m", "m|total_cost"]
    path = write_csv(tmp_path / "grouped.csv", header, [["hi", cell, 0.5]])
    with pytest.raises(DataError, match=r"`m` is '.*', not a number"):
        load_outcomes(path)
    path = write_csv(tmp_path / "cost.csv", header, [["hi", 1, cell]])
    with pytest.raises(DataError, match=r"`m\|total_cost` is '.*', not a number"):
        load_outcomes(path)


def test_a_jsonl_outcome_file_reads_as_the_same_json_list(tmp_path: Path) -> None:
    """JSON Lines, one {question, scores} object a line, is how many routing datasets
    ship: it was refused (until 2026-12-05); it reads as the JSON list of the same items,
    blank lines skipped, with the costs and the models.json beside it."""
    items = [{"question": f"q{i}", "scores": {"m": i % 2, "n": 0.5}, "costs": {"m": 1, "n": 2}}
             for i in range(4)]  # fmt: skip
    (tmp_path / "scores.json").write_text(json.dumps(items))
    lines = tmp_path / "scores.jsonl"
    lines.write_text("\n".join(map(json.dumps, items[:2])) + "\n\n" + "\n".join(map(json.dumps, items[2:])) + "\n")  # fmt: skip
    (tmp_path / "models.json").write_text(json.dumps({"m": {"size": "7B"}, "n": {"size": 70}}))
    listed, read = load_outcomes(tmp_path / "scores.json"), load_outcomes(lines)
    assert read.prompts == listed.prompts == ["q0", "q1", "q2", "q3"]
    assert read.models == ["m", "n"] and read.scores.tolist() == listed.scores.tolist()
    assert read.costs is not None and read.costs.tolist() == [[1.0, 2.0]] * 4
    assert read.info["n"].size_b == 70.0 and read.source == str(lines)
    (tmp_path / "upper.JSONL").write_text(json.dumps(items[0]))
    assert load_outcomes(tmp_path / "upper.JSONL").prompts == ["q0"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"question": "q", "scores": {"m": 1}}\n\nnull\n',
         "line 3 is null, not an object with `question` and a `scores` mapping (1 line(s) in all)"),
        ('{"question": "q", "scores": {"m": 1}}\n{"question": "r", "scores": [1]}\n',
         "line 2 has no `scores` mapping of model to score (1 line(s) in all); every line "
         "needs `question` and `scores`"),
        ('{"question": "q", "scores": {"m": 1}}\n{"scores": {"m": 1}}\n',
         "line 2 has no `question` text (1 line(s) in all); every line needs a question string"),
        ('{"question": "q", "scores": {"m": 1}}\n{"question": "r", "scores": {"m": "1"}}\n',
         "line 2: `scores` of m is '1', not a number"),
        ('{"question": "q", "scores": {"m": 1}, "costs": {"m": 1}}\n\n'
         '{"question": "r", "scores": {"m": 1}}\n',
         "1 of 2 lines have `costs` (line 3 has none): give every line a cost for each "
         "model, or none"),
        ('{"question": "q", "scores": {"m": 1}}\n{"question": "r",\n',
         "line 2 is not valid JSON (Expecting property name enclosed in double quotes); a "
         "JSON Lines file holds one JSON object a line"),
        ('[{"question": "q", "scores": {"m": 1}}]\n',
         "line 1 is a list, not an object with `question` and a `scores` mapping (1 line(s) "
         "in all)"),
        ("\n\n", "no {question, scores} object: a JSON Lines file holds one a line"),
        ('{"text": "q", "label": 1}\n', "holds labelled prompts"),
    ],
)  # fmt: skip
def test_a_jsonl_outcome_file_of_the_wrong_shape_names_the_line(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "scores.jsonl"
    path.write_text(text)
    with pytest.raises(DataError) as e:
        load_outcomes(path)
    assert str(e.value).startswith(f"{path}") and says in str(e.value), e.value
    assert "\n" not in str(e.value)


def test_a_jsonl_files_repeated_question_and_unscored_model_name_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "scores.jsonl"
    items = [{"question": "Sort", "scores": {"m": 1, "n": 0}}, {"question": "Add", "scores": {"m": 1}},
             {"question": "sort", "scores": {"m": 0, "n": 1}}]  # fmt: skip
    path.write_text("\n".join(map(json.dumps, items[:2])) + "\n\n" + json.dumps(items[2]))
    with caplog.at_level(logging.WARNING, "routerllm.data.outcome_files"):
        assert load_outcomes(path).models == ["m"]
    assert "left out n, not scored on every question (n missing from line 2 and 0 other(s))" in caplog.text  # fmt: skip
    assert "e.g. lines 1 and 4: 'Sort'" in caplog.text


@pytest.mark.parametrize("name", ["scores.txt", "scores.yaml", "scores"])
def test_an_outcome_file_of_another_suffix_lists_the_accepted_ones(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_text('{"question": "q", "scores": {"m": 1}}\n')
    with pytest.raises(DataError) as e:
        load_outcomes(path)
    assert str(e.value) == (
        f"{path}: unknown outcome format; name the file .csv (RouterBench), .json (a list of "
        "{question, scores} objects) or .jsonl (one {question, scores} object a line)"
    )
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.jsonl").write_text("")
    with pytest.raises(DataError, match=r"is a directory: pass one outcome file \(here: a.jsonl\)"):
        load_outcomes(folder)


def test_overlap_finds_a_copy_whose_accents_are_written_decomposed() -> None:
    """A test prompt written with "e" and a combining accent (NFD, a macOS file) was not
    found in training data that composes it (until 2026-12-05): the same question to a
    router, so eval-routing scored a prompt it had trained on."""
    one = np.array([[1.0]])
    train = OutcomeDataset(["Le CAFE\u0301 coûte  combien ?"], ["m"], one)
    test = OutcomeDataset(
        ["le caf\u00e9 co\u00fbte combien ?", "autre"], ["m"], np.array([[1.0], [0.0]])
    )
    assert overlap(test, train) == [0]


def test_resplit_intervals_say_independent_and_corrected_and_no_nan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """routing_targets --resplits gave a t-interval that treats re-splits sharing their
    prompts as independent samples, labelled "90% CI"; with one split, NaN (not JSON).
    Now both intervals, by hand: values 1..4, s = 1.2910, t(0.95, 3) = 2.3534; the
    Nadeau-Bengio variance (1/4 + 0.25) s^2 doubles 1/4 s^2, so the half-width x sqrt 2."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    from outcome_data import ci_text, split_intervals

    ci = split_intervals([1.0, 2.0, 3.0, 4.0], 0.25)
    half = 2.353363434801823 * 1.2909944487358056 / 2
    assert ci["mean"] == 2.5
    assert ci["90ci"] == pytest.approx([2.5 - half, 2.5 + half])
    assert ci["90ci_corrected"] == pytest.approx([2.5 - half * 2**0.5, 2.5 + half * 2**0.5])
    one = split_intervals([0.01], 0.25)
    assert one == {"mean": 0.01, "90ci": None, "90ci_corrected": None}
    assert json.loads(json.dumps(one)) == one and ci_text(None) == "-"
    assert ci_text([-0.001, 0.02]) == "-0.0010..+0.0200"


def test_the_encoder_latency_table_lines_up_every_encoders_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``minilm-static`` (13 characters) overflowed its 12-character column: its row's
    columns sat one character right of the header's and of the other rows'."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    from encoder_latency import SPECS, latency_table

    rows = [{"encoder": s, "dim": 384, "load_s": 1.0, "p50_ms": 2.0, "p95_ms": 3.0,
             "batch64_texts_per_s": 100.0} for s in SPECS]  # fmt: skip
    lines = latency_table(rows)
    assert len(lines) == 1 + len(SPECS)
    assert len({len(line) for line in lines}) == 1, lines
    assert {line.index(" 384 ") for line in lines[1:]} == {lines[0].index(" dim ")}


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ({"question": " \t", "scores": {"m": 1}},
         "line 4 has an empty `question` (1 line(s) in all); every line needs text to route by"),
        ({"question": "r", "scores": {"m": 1.5}},
         "line 4: `scores` of m is 1.5, not a number in [0, 1] (1 = solved; 1 such value(s) "
         "in all)"),
        ({"question": "r", "scores": {"m": 1}, "costs": {"m": -2}},
         "line 4: `costs` of m is -2, not a finite non-negative number (1 such value(s) in all)"),
    ],
)  # fmt: skip
def test_a_bad_value_in_a_jsonl_file_with_blank_lines_names_its_line(
    tmp_path: Path, item: dict[str, object], says: str
) -> None:
    """The dataset counted prompts, not the file's lines: an empty question on line 4,
    after a blank line, was said to be "prompt 2" (until 2026-12-05)."""
    first = {"question": "q", "scores": {"m": 0}} | ({"costs": {"m": 1}} if "costs" in item else {})  # fmt: skip
    path = tmp_path / "scores.jsonl"
    path.write_text(json.dumps(first) + "\n\n\n" + json.dumps(item) + "\n")
    with pytest.raises(DataError) as e:
        load_outcomes(path)
    assert str(e.value) == f"{path}: {says}"


@pytest.mark.parametrize("name", ["scores.json.gz", "scores.jsonl.gz", "bench.csv.gz"])
def test_a_gzipped_outcome_file_is_said_to_be_compressed(tmp_path: Path, name: str) -> None:
    """Neither RouterBench (a pandas pickle) nor LLMRouter (JSON, JSON Lines) ships its
    outcome data gzipped, so it is not read; but "name the file .csv" made a user rename
    it, and the renamed file was "not UTF-8 text, byte 0x8b" (until 2026-12-05)."""
    body = b'[{"question": "q", "scores": {"m": 1}}]'
    path = tmp_path / name
    path.write_bytes(gzip.compress(body))
    with pytest.raises(DataError) as e:
        load_outcomes(path)
    plain = path.with_suffix("")
    assert str(e.value) == (
        f"{path}: gzip-compressed; decompress it first (gunzip -k {path}) and pass {plain}"
    )
    plain.write_bytes(gzip.compress(body))  # renamed, not decompressed
    with pytest.raises(DataError) as e:
        load_outcomes(plain)
    assert str(e.value) == f"{plain}: gzip-compressed, not text; decompress it first (gunzip)"


def test_routerbenchs_own_pickle_says_how_to_make_the_csv(tmp_path: Path) -> None:
    path = tmp_path / "routerbench_0shot.pkl"
    path.write_bytes(b"\x80\x04")
    with pytest.raises(DataError) as e:
        load_outcomes(path)
    assert str(e.value) == (
        f"{path}: a pickle (as RouterBench ships its data) is not read, as loading one can "
        'run code in it; where you trust it, save it as a CSV: python -c "import pandas; '
        f"pandas.read_pickle('{path}').to_csv('{path.with_suffix('.csv')}', index=False)\""
    )


def test_costs_for_a_model_no_question_scores_are_refused_as_in_a_csv(tmp_path: Path) -> None:
    """A `<model>|total_cost` column without the model's score column stops the CSV
    loader; in the {question, scores} format such costs were ignored without a word."""
    items = [{"question": f"q{i}", "scores": {"m": 1}, "costs": {"m": 1, "gpt-4": 3}}
             for i in range(3)]  # fmt: skip
    (path := tmp_path / "o.json").write_text(json.dumps(items), encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_outcomes(path)
    assert str(e.value) == (
        f"{path}: `costs` of gpt-4 but no scores (item 1 and 2 other(s)): a model needs "
        "scores to be routed to; give its scores, or leave its costs out"
    )
    (csv_path := tmp_path / "o.csv").write_text("prompt,m,m|total_cost,gpt-4|total_cost\nq,1,1,3\n")
    with pytest.raises(
        DataError, match=r"no score column for gpt-4 \(only `<model>\|total_cost`\)"
    ):
        load_outcomes(csv_path)


def _torch_free_runs(folder: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Every run of a benchmark the tests above make where torch cannot be imported."""
    runs = [(name, ("--data-dir", str(folder / "none"))) for name in DATA_BENCHMARKS]
    runs += [(name, _seed_run(name, option, folder)) for name, option in SEED_OPTIONS]
    runs += [(name, (option, "bogus")) for name, option in ENCODER_OPTIONS]
    runs += [(name, tuple(argv)) for name, argv, _ in REFUSED_NUMBERS]
    runs += [(name, ("--help",)) for name in dict(HELP_STATES)]
    return runs
