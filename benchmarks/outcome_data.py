"""The two routing-outcome sets in ../shared/data that the routing benchmarks read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: name -> (train file, test file), relative to the data directory.
DATASETS = {
    "llmrouter": ("llmrouter/train.json", "llmrouter/test.json"),
    "routerbench_mbpp": ("routerbench_mbpp/train.csv", "routerbench_mbpp/test.csv"),
}
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def add_data_dir_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))


def data_dir(args: argparse.Namespace) -> Path | None:
    """The data directory, or None (with a message on stderr) when it is missing."""
    path = Path(args.data_dir)
    if not path.is_dir():
        print(f"no outcome data at {path} (give --data-dir)", file=sys.stderr)
        return None
    return path
