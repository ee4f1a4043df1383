"""``routerllm report`` after the config changed under a log kept across restarts: a
model removed, or renamed, that the log still names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from routerllm.carbon.request_log import RequestLog

from .conftest import cli_in_process, tiny_config_dict, write_config
from .test_report_scaling import random_records


def test_a_logged_model_the_config_no_longer_has_is_said(tmp_path: Path) -> None:
    """The report went on listing the old name among the configured ones, and the renamed
    model in the predictor's table as having too few requests, with nothing to say that
    the log's rows under the old name are no configured model's any more."""
    data = tiny_config_dict(tmp_path)
    with RequestLog(data["log"]["path"]) as log:
        for r in random_records(np.random.default_rng(2), 30):  # tiny-light/medium/heavy, retired
            log.append(r)
    data["models"][0]["name"] = "tiny-small"  # tiny-light renamed
    del data["models"][1]  # tiny-medium removed
    config = write_config(tmp_path, data)
    done = cli_in_process("report", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "logged under models the config no longer has: retired, tiny-light, tiny-medium" in done.stdout  # fmt: skip
    rep = json.loads(cli_in_process("report", "--config", str(config), "--json").stdout)
    assert rep["not_in_config"] == ["retired", "tiny-light", "tiny-medium"]
    assert sum(m["requests"] for m in rep["by_model"].values()) == rep["totals"]["requests"] == 30  # fmt: skip
    data["models"][0]["name"] = "tiny-light"
    data["models"].insert(1, {**data["models"][0], "name": "tiny-medium", "tier": "medium", "params_b": 0.5})  # fmt: skip
    same = json.loads(cli_in_process("report", "--config", str(write_config(tmp_path, data)), "--json").stdout)  # fmt: skip
    assert same["not_in_config"] == ["retired"]  # the records' fourth model
