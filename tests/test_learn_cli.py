"""The learning commands as a user runs them (real files, hashing encoder): in this process,
and through `python -m routerllm.cli` where the process matters (MiniLM's import-time quiet)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routerllm.cli import build_parser
from routerllm.eval.routing_metrics import METRICS

from .conftest import cli_in_process
from .test_cli import assert_one_line_error, assert_usage_error, run
from .test_outcome_routing import make_rows, write_json


def ok_json(*args: str) -> dict[str, Any]:
    """A command's --json output (run in this process: test_cli's :func:`run` starts one)."""
    proc = cli_in_process(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "synthetic"
    written = ok_json("generate-data", "--out", str(out), "--n", "400", "--seed", "3")
    assert written["counts"] == {"full": 400, "train": 280, "val": 60, "test": 60}
    return out


def test_train_test_and_resume_classifier(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "clf"
    common = [
        "--data",
        str(dataset),
        "--out",
        str(out),
        "--encoder",
        "hashing",
        "--batch-size",
        "32",
    ]
    first = ok_json("train", *common, "--epochs", "2", "--use-inter-intra-loss")
    assert first["loss"] == "inter_intra" and first["epochs_run"] == [1, 2]
    resumed = ok_json("train", *common, "--epochs", "6", "--use-inter-intra-loss", "--resume")
    assert resumed["epochs_run"] == [3, 4, 5, 6] and len(resumed["history"]) == 6
    report = ok_json("test", "--router-model", str(out), "--data", str(dataset / "test.json"))
    assert report["target"] == "class" and report["n"] == 60
    # 4 balanced classes: chance is 0.25 (sd 0.056 on 60 prompts); bag-of-words hashing is weak
    assert report["accuracy"] > 0.4
    assert report["latency_ms"]["p50_ms"] > 0 and report["throughput_per_s"] > 0
    assert len(report["confusion"]) == 4
    memory = report["memory"]  # measured over loading the router and predicting
    assert memory["rss_peak_bytes"] >= memory["rss_peak_increase_bytes"] >= 0
    assert memory["python_peak_bytes"] > 0
    rules = ok_json("test", "--router-type", "rules", "--data", str(dataset / "test.json"))
    assert rules["target"] == "tier" and rules["labels"] == ["light", "medium", "heavy"]


def test_classifier_default_encoder_and_bad_training_arguments(tmp_path: Path) -> None:
    # 40 prompts, not the module's 400: each of the three processes below encodes what it
    # trains or tests on with MiniLM, 1 s of its 6 s (idle) on 400; the rest is imports
    dataset = tmp_path / "data"
    assert ok_json("generate-data", "--out", str(dataset), "--n", "40")["counts"]["test"] == 6
    common = ["--data", str(dataset), "--out", str(tmp_path / "clf")]
    # no --encoder: the packaged MiniLM, in a process of its own: stderr as a user sees
    # it, with what transformers prints as it loads; each on one CPU (its torch threads
    # spin on cores shared with the suite's other worker: 49.7 s of CPU, now 29.8)
    proc = run("train", *common, "--epochs", "1", "--json", timeout=300, one_cpu=True)
    assert proc.returncode == 0, proc.stderr
    trained = json.loads(proc.stdout)
    assert trained["encoder"] == "minilm" and trained["epochs_run"] == [1]
    # transformers' "Loading weights" bar only with -v (until 2026-12-04 always)
    assert proc.stderr == ""
    test = ["test", "--router-model", str(tmp_path / "clf"), "--data", str(dataset / "test.json")]
    tested = run(*test, timeout=300, one_cpu=True)
    assert tested.returncode == 0 and tested.stderr == "", tested.stderr
    assert "Loading weights" in run(*test, "-v", timeout=300, one_cpu=True).stderr
    assert_usage_error(  # the option parser's: a loss is one of a list
        cli_in_process("train", *common, "--encoder", "hashing", "--loss", "nosuch"),
        "argument --loss: invalid choice: 'nosuch' (choose from 'ce', ",
    )
    for args, message in (
        (["--batch-size", "0"], "argument --batch-size: 0 is out of range"),
        (["--epochs", "-2"], "argument --epochs: -2 is out of range"),
    ):  # the classifier's numbers, read once the router is known: a usage error too
        assert_usage_error(cli_in_process("train", *common, "--encoder", "hashing", *args), message)


def test_a_max_share_target_of_equally_dear_models_is_refused_before_training(
    tmp_path: Path,
) -> None:
    train = write_json(tmp_path / "train.json", *make_rows(40, 0))
    sizes = {"small": "1B", "mid": "8B", "big": "8B"}  # mid and big equally dear by size
    (tmp_path / "models.json").write_text(json.dumps({m: {"size": s} for m, s in sizes.items()}))
    common = ["train", "--router", "logreg", "--data", str(train), "--encoder", "hashing"]
    assert_one_line_error(
        cli_in_process(*common, "--out", str(tmp_path / "x"), "--calibrate", "max_share=0.3"),
        "are equally the dearest (cost 8): name the one to cap, e.g. max_share:",
    )
    assert not (tmp_path / "x").exists()
    named = ok_json(*common, "--out", str(tmp_path / "y"), "--calibrate", "max_share:big=0.3")
    assert named["calibration"]["shares"]["big"] <= 0.3


def test_outcome_router_training_and_eval_routing(tmp_path: Path) -> None:
    train = write_json(tmp_path / "train.json", *make_rows(200, 0))
    (tmp_path / "t").mkdir()
    test = write_json(tmp_path / "t" / "test.json", *make_rows(60, 1))
    trained = ok_json(
        "train", "--router", "logreg", "--data", str(train), "--out", str(tmp_path / "lr"),
        "--encoder", "hashing", "--calibrate", "quality=0.95",
    )  # fmt: skip
    assert trained["calibration"]["target_reached"] and trained["train_size"] == 160
    assert trained["calibration"]["mode"] in ("lambda", "threshold")  # the better of the two
    assert (tmp_path / "lr" / "weights.npz").exists()
    for rule in ("lambda", "threshold"):  # --decision fixes the rule calibration sets the knob of
        fixed = ok_json(
            "train", "--router", "logreg", "--data", str(train), "--out", str(tmp_path / rule),
            "--encoder", "hashing", "--calibrate", "max_cost=0.5", "--decision", rule,
        )  # fmt: skip
        assert fixed["calibration"]["mode"] == rule
        assert json.loads((tmp_path / rule / "config.json").read_text())["options"]["mode"] == rule
    two = ok_json(
        "train", "--router", "logreg", "--data", str(train), "--out", str(tmp_path / "two"),
        "--encoder", "hashing", "--calibrate", "max_cost=0.5", "--two-settings",
    )  # fmt: skip
    saved = json.loads((tmp_path / "two" / "config.json").read_text())["options"]
    assert saved["second_share"] == two["calibration"]["second_share"]
    assert two["calibration"]["cost"] <= 0.5 * 70 + 1e-9
    assert_one_line_error(
        cli_in_process("train", "--router", "logreg", "--data", str(train), "--out", str(tmp_path / "x"),
            "--encoder", "hashing", "--two-settings"),
        "--two-settings is a way to --calibrate",
    )  # fmt: skip
    assert_one_line_error(
        cli_in_process("train", "--router", "logreg", "--data", str(train), "--out", str(tmp_path / "x"),
            "--encoder", "hashing", "--calibrate", "max_share=0.3", "--two-settings"),
        "a max_share target is met by one setting: leave out two_settings (--two-settings)",
    )  # fmt: skip
    assert not (tmp_path / "x").exists()
    png = tmp_path / "curves.png"
    ev = ok_json(
        "eval-routing", "--data", str(train), "--test", str(test), "--routers", "logreg,knn",
        "--encoder", "hashing", "--plot", str(png),
    )  # fmt: skip
    assert set(ev["routers"]) >= {"logreg", "knn", "oracle", "best_single"}
    for key in METRICS:
        assert key in ev["routers"]["logreg"]
    assert ev["best_single"]["name"] == "big" and ev["cost"] == "size"
    assert png.read_bytes()[:4] == b"\x89PNG"
    table = cli_in_process(
        "eval-routing", "--data", str(train), "--routers", "knn", "--encoder", "hashing"
    )
    assert table.returncode == 0 and "aiq" in table.stdout.lower() and "oracle" in table.stdout
    assert re.match(r"train \d+ prompts, test \d+ \(removed", table.stdout)
    # --bootstrap: the first router against the others, over resampled test prompts
    boot = ok_json(
        "eval-routing", "--data", str(train), "--test", str(test), "--routers", "logreg,knn",
        "--encoder", "hashing", "--bootstrap", "20",
    )  # fmt: skip
    knn = boot["bootstrap"]["against"]["knn"]
    assert boot["bootstrap"]["reference"] == "logreg" and boot["bootstrap"]["resamples"] == 20
    assert knn["aiq_diff"] == pytest.approx(
        boot["routers"]["logreg"]["aiq"] - boot["routers"]["knn"]["aiq"]
    )
    assert 0 <= knn["share_aiq_higher"] <= 1
    text = cli_in_process("eval-routing", "--data", str(train), "--test", str(test), "--routers",
               "logreg,knn", "--encoder", "hashing", "--bootstrap", "20")  # fmt: skip
    assert "vs knn: AIQ" in text.stdout and "resamples" in text.stdout
    assert_one_line_error(
        cli_in_process(
            "eval-routing", "--data", str(train), "--routers", "knn", "--bootstrap", "10"
        ),
        "there must be two routers or more",
    )
    assert_usage_error(
        cli_in_process("eval-routing", "--data", str(train), "--bootstrap", "20000"),
        "argument --bootstrap: 20000 is out of range: give 0 to 10,000",
    )


def test_eval_routing_says_why_a_metric_is_undefined_on_every_row(tmp_path: Path) -> None:
    prompts, scores = make_rows(40, 0)
    train = write_json(tmp_path / "train.json", prompts, scores)
    assert ok_json("eval-routing", "--data", str(train), "--routers", "knn", "--encoder", "hashing")["notes"] == []  # fmt: skip
    # every model fails every prompt: no gap between the cheapest and the best model,
    # and half the best one's cost (the cheapest, 1B) is below where every curve starts
    failed = write_json(tmp_path / "failed.json", prompts, np.zeros_like(scores))
    args = ["eval-routing", "--data", str(failed), "--routers", "knn", "--encoder", "hashing"]
    report = ok_json(*args)
    assert report["routers"]["knn"]["apgr"] is None and report["routers"]["knn"]["aiq"] == 0.0
    assert report["notes"] == [
        "apgr, cpt50 and cpt80 are undefined: the best single model (small) is also the "
        "cheapest, so there is no quality gap to recover",
        "acc_at_half_best_cost is undefined: half the best single model's (small) cost is "
        "below the cheapest model's, where every curve starts",
    ]
    text = cli_in_process(*args).stdout
    assert "\nnote: apgr, cpt50 and cpt80 are undefined: the best single model (small)" in text


def test_bad_learning_inputs_are_one_line_errors(tmp_path: Path) -> None:
    assert_one_line_error(
        cli_in_process(
            "train", "--data", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")
        ),
        "not found",
    )
    assert_usage_error(
        cli_in_process("train", "--router", "rules", "--data", "x", "--out", str(tmp_path / "o")),
        "argument --router: invalid choice: 'rules' (choose from 'classifier', 'quality', ",
    )
    assert_one_line_error(
        cli_in_process("eval-routing", "--data", str(tmp_path / "none.csv")), "not found"
    )
    train = write_json(tmp_path / "train.json", *make_rows(40, 0))
    assert_one_line_error(
        cli_in_process("eval-routing", "--data", str(train), "--routers", " , "),
        "--routers names nothing",
    )
    (tmp_path / "file").write_text("x")
    assert_one_line_error(
        cli_in_process(
            "train", "--router", "logreg", "--data", str(train), "--out", str(tmp_path / "file")
        ),
        "is a file; give a folder",
    )
    assert_one_line_error(
        cli_in_process("humaneval", "--out", str(tmp_path / "he"), "--systems", ","),
        "--systems names nothing",
    )
    assert_one_line_error(
        cli_in_process(
            "humaneval", "--out", str(tmp_path / "he"), "--systems", "rules,direct-light,rules"
        ),
        "--systems names rules more than once",
    )
    assert_one_line_error(
        cli_in_process(
            "eval-routing",
            "--data",
            str(train),
            "--routers",
            "quality,quality",
            "--bootstrap",
            "10",
        ),
        "--routers names quality more than once",
    )
    (tmp_path / "float.json").write_text('[{"text": "a", "label": 1.5}]')
    assert_one_line_error(
        cli_in_process("test", "--router-type", "rules", "--data", str(tmp_path / "float.json")),
        "label must be an integer in 0..3, got 1.5",
    )
    (tmp_path / "bad.json").write_text("{oops")
    assert_one_line_error(
        cli_in_process("test", "--router-type", "rules", "--data", str(tmp_path / "bad.json")),
        "not valid JSON",
    )
    assert_one_line_error(
        cli_in_process(
            "test", "--router-model", str(tmp_path), "--data", str(tmp_path / "bad.json")
        ),
        "not valid JSON",
    )
    assert_usage_error(
        cli_in_process("generate-data", "--out", str(tmp_path / "g"), "--n", "2"),
        "argument --n: 2 is out of range: give 40 to 1,000,000",
    )
    (tmp_path / "a_file").write_text("keep me")
    assert_one_line_error(
        cli_in_process("generate-data", "--out", str(tmp_path / "a_file")),
        "a_file is a file, not a directory",
    )
    assert (tmp_path / "a_file").read_text() == "keep me"


def test_humaneval_command_and_a_style_change_on_resume(
    tiny_config_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "he"
    common = ["humaneval", "--config", str(tiny_config_path), "--out", str(out), "--limit", "2"]
    summary = ok_json(*common, "--systems", "direct-light,rules", "--max-new-tokens", "4",
                      "--mode", "complete")  # fmt: skip
    assert [r["system"] for r in summary["systems"]] == ["direct-light", "rules"]
    assert {s["mode"] for s in summary["styles"].values()} == {"complete"}
    assert "complete mode, max_new_tokens 4" in (out / "report.md").read_text()
    # Routers are re-evaluated on the stored generations with another encoder.
    again = ok_json(*common, "--systems", "logreg", "--max-new-tokens", "4", "--mode",
                    "complete", "--encoder", "hashing")  # fmt: skip
    assert again["encoder"] == "hashing" and again["systems"][0]["total"] == 2
    assert "`hashing` prompt embeddings" in (out / "report.md").read_text()
    assert_usage_error(
        cli_in_process(*common, "--encoder", "nope"), "--encoder: unknown encoder 'nope'"
    )
    assert_usage_error(
        cli_in_process(*common, "--calibrate", "cheap"), "--calibrate: bad calibration target"
    )
    proc = cli_in_process(*common, "--cascade-budget", "-1")  # refused by argparse: a usage error
    assert proc.returncode == 2 and "argument --cascade-budget: -1 must be a finite" in proc.stderr
    # The stored results were made in complete mode: mixing in chat answers is refused.
    proc = cli_in_process(*common, "--max-new-tokens", "4", "--mode", "chat")
    assert_one_line_error(proc, "another prompting style")


def test_humaneval_refuses_an_option_no_chosen_system_uses(
    tiny_config_path: Path, tmp_path: Path
) -> None:
    """Until 2026-12-05 these were ignored and the run went on: ``--cascade-budget`` with
    the plain cascade (the gated one is budgeted), ``--calibrate`` or ``--two-settings``
    without a learned router, ``--encoder`` with nothing that encodes prompts. The user
    was left believing the systems budgeted or calibrated; now nothing runs."""
    out = tmp_path / "he"
    common = ["humaneval", "--config", str(tiny_config_path), "--out", str(out), "--limit", "2",
              "--max-new-tokens", "4"]  # fmt: skip
    for given, systems, needle in [
        (["--cascade-budget", "0.3"], "cascade,rules", "--cascade-budget is for gated-cascade"),
        (["--calibrate", "quality=0.9"], "gated-cascade", "--calibrate is for quality, logreg"),
        (["--two-settings"], "direct-light", "--two-settings is for quality, logreg"),
        (["--encoder", "hashing"], "rules,cascade", "--encoder is for quality, logreg"),
    ]:
        proc = cli_in_process(*common, "--systems", systems, *given)
        assert_one_line_error(proc, needle, "among the systems: " + systems.replace(",", ", "))
    assert not out.exists()  # refused before anything ran


def test_json_output_is_strict_json_when_a_metric_is_not_a_number(tmp_path: Path) -> None:
    """Costs so small their differences are subnormal (0 and 1e-320 a call) leave some
    metrics infinite or undefined: null in the JSON, not the Infinity/NaN parsers refuse."""
    prompts, scores = make_rows(60, seed=4)
    path = tmp_path / "tiny_costs.json"
    path.write_text(json.dumps([
        {"question": p, "scores": {"a": int(s[0]), "b": int(s[2])},
         "costs": {"a": 0.0, "b": 1e-320}}
        for p, s in zip(prompts, scores, strict=True)
    ]))  # fmt: skip
    proc = cli_in_process("eval-routing", "--data", str(path), "--routers", "logreg", "--encoder", "hashing",
               "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON output")

    out = json.loads(proc.stdout, parse_constant=refuse)
    assert None in out["routers"]["logreg"].values()


def test_macro_f1_counts_only_the_classes_the_file_or_router_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A test file without some classes (a tiny-codes split has no class 1) gave a
    perfect router a macro F1 of 1/3 here: the absent tiers counted as F1 0."""
    from routerllm.cli import main

    data = tmp_path / "code.json"
    data.write_text(json.dumps([{"text": f"Write function {i}", "label": 0} for i in range(6)]))
    assert main(["test", "--router-type", "largest", "--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == 1.0 and report["macro_f1"] == 1.0
    assert report["labels"] == ["heavy"] and report["confusion"] == [[6]]


def test_ctrl_c_while_an_outcome_router_trains_says_what_was_kept(tmp_path: Path) -> None:
    """Ctrl-C in ``train --router knn`` spoke of epochs and "nothing to resume", which
    are the classifier's: an outcome router has no checkpoint, and --resume is refused
    for it. (main() prints what the parsed command's ``interrupted`` says; a real SIGINT
    to a subprocess cannot be made to land at a chosen point without a race.)"""
    out = tmp_path / "knn"
    for router in ("knn", "moe"):
        args = build_parser().parse_args(
            ["train", "--router", router, "--data", "d.json", "--out", str(out)]
        )
        assert args.interrupted(args, KeyboardInterrupt()) == (
            f"interrupted: router {router!r} was not saved (one saved in {out} before is "
            "unchanged); rerun the command to train it"
        )
    classifier = build_parser().parse_args(["train", "--data", "d", "--out", str(out)])
    assert "nothing to resume" in classifier.interrupted(classifier, KeyboardInterrupt())


@pytest.mark.parametrize("command", [["eval-routing", "--data", "x"], ["generate-data", "--out", "x"]])  # fmt: skip
def test_commands_that_read_no_config_refuse_config(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """eval-routing and generate-data read no config (eval-routing's sizes and prices come
    from the models.json beside --data): a --config was accepted and silently unused, a
    missing or broken one too. It is refused now, as any option they do not take."""
    parser = build_parser()
    with pytest.raises(SystemExit) as e:
        parser.parse_args([*command, "--config", "local"])
    assert e.value.code == 2 and "unrecognized arguments: --config" in capsys.readouterr().err
    assert parser.parse_args([*command, "--json", "-v"]).json  # what they do take
    assert parser.parse_args(["train", "--data", "x", "--out", "y", "--config", "local"]).config == "local"  # fmt: skip


def test_train_and_eval_routing_read_json_lines_outcome_data(tmp_path: Path) -> None:
    """Outcome data one {question, scores} object a line (`.jsonl`), as many routing
    datasets ship, was refused as an unknown format (until 2026-12-05); a file of
    another suffix is one line naming the accepted ones, and nothing is written."""
    for name, rows in (("train", make_rows(60, 0)), ("test", make_rows(20, 1))):
        listed = json.loads(write_json(tmp_path / f"{name}.json", *rows).read_text())
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in listed))
    trained = ok_json("train", "--router", "knn", "--data", str(tmp_path / "train.jsonl"),
                      "--out", str(tmp_path / "knn"), "--encoder", "hashing")  # fmt: skip
    assert trained["train_size"] == 60 and (tmp_path / "knn" / "config.json").exists()
    args = ["--routers", "knn", "--encoder", "hashing"]
    lines = ok_json("eval-routing", "--data", str(tmp_path / "train.jsonl"),
                    "--test", str(tmp_path / "test.jsonl"), *args)  # fmt: skip
    listed = ok_json("eval-routing", "--data", str(tmp_path / "train.json"),
                     "--test", str(tmp_path / "test.json"), *args)  # fmt: skip
    assert lines["routers"] == listed["routers"] and lines["test_size"] == 20
    (tmp_path / "train.txt").write_text((tmp_path / "train.jsonl").read_text())
    assert_one_line_error(
        cli_in_process("train", "--router", "knn", "--data", str(tmp_path / "train.txt"),
            "--out", str(tmp_path / "txt"), "--encoder", "hashing"),
        "unknown outcome format; name the file .csv (RouterBench), .json (a list of "
        "{question, scores} objects) or .jsonl (one {question, scores} object a line)",
    )  # fmt: skip
    assert not (tmp_path / "txt").exists()
