"""Tiny real GGUF models of other architectures than the tiny llama's: its tokenizer,
random weights, the tensors llama.cpp asks of each, so that llama.cpp loads them and
allocates their KV caches as it would a real model's (their answers are gibberish)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .conftest import tiny_gguf_reader

VOCAB = 32000  # the tiny llama's tokenizer
FF = 64  # every layer's feed-forward width


def _write(path: Path, arch: str, meta: dict[str, Any], tensors: list[tuple[str, tuple[int, ...]]]) -> Path:  # fmt: skip
    import gguf

    writer = gguf.GGUFWriter(path, arch=arch)
    for key, value in meta.items():
        name = f"{arch}.{key}"
        if isinstance(value, Sequence):
            writer.add_array(name, list(value))
        elif isinstance(value, float):
            writer.add_float32(name, value)
        else:
            writer.add_uint32(name, value)
    reader = tiny_gguf_reader()
    for field in reader.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        kind, value = field.types[0], field.contents()
        if kind == gguf.GGUFValueType.ARRAY:
            writer.add_array(field.name, value)
        elif kind == gguf.GGUFValueType.STRING:
            writer.add_string(field.name, value)
        else:
            writer.add_uint32(field.name, value)
    rng = np.random.default_rng(0)
    for name, shape in tensors:  # llama.cpp's order of dimensions: numpy's reversed
        # norms and convolutions in f32, as llama.cpp's converter writes them
        kind = np.float32 if len(shape) == 1 or ".shortconv.conv" in name else np.float16
        writer.add_tensor(name, (rng.standard_normal(shape[::-1]) * 0.02).astype(kind))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _attention(i: int, embd: int, heads: int, kv_heads: int, head: int) -> list[tuple[str, tuple[int, ...]]]:  # fmt: skip
    p = f"blk.{i}."
    return [
        (p + "attn_q.weight", (embd, heads * head)),
        (p + "attn_k.weight", (embd, kv_heads * head)),
        (p + "attn_v.weight", (embd, kv_heads * head)),
        (p + "attn_output.weight", (heads * head, embd)),
    ]


def _ffn(i: int, embd: int, ff: int = FF) -> list[tuple[str, tuple[int, ...]]]:
    p = f"blk.{i}."
    return [
        (p + "ffn_norm.weight", (embd,)),
        (p + "ffn_gate.weight", (embd, ff)),
        (p + "ffn_up.weight", (embd, ff)),
        (p + "ffn_down.weight", (ff, embd)),
    ]


def gemma3(path: Path, layers: int = 6, window: int | None = 32, context: int = 8192) -> Path:
    """Gemma 3: five of each six layers attend to a sliding window of ``window`` tokens,
    the sixth to the whole context; 4 KV heads of 32 numbers."""
    return _gemma(path, "gemma3", layers, window, context)


def gemma2(path: Path, layers: int = 4, window: int | None = None, context: int = 8192) -> Path:
    """Gemma 2: every other layer attends to a sliding window, of ``window`` tokens, or
    llama.cpp's default (4096) where the header gives none; otherwise Gemma 3's shape,
    without its query and key norms."""
    return _gemma(path, "gemma2", layers, window, context)


def _gemma(path: Path, arch: str, layers: int, window: int | None, context: int) -> Path:
    embd, heads, kv_heads, head = 64, 4, 4, 32
    meta = {
        "context_length": context,
        "embedding_length": embd,
        "block_count": layers,
        "feed_forward_length": FF,
        "attention.head_count": heads,
        "attention.head_count_kv": kv_heads,
        "attention.key_length": head,
        "attention.value_length": head,
        "attention.layer_norm_rms_epsilon": 1e-6,
    }
    if window is not None:
        meta["attention.sliding_window"] = window
    tensors = [("token_embd.weight", (embd, VOCAB)), ("output_norm.weight", (embd,))]
    for i in range(layers):
        p = f"blk.{i}."
        tensors += _attention(i, embd, heads, kv_heads, head) + _ffn(i, embd)
        tensors += [
            (p + "attn_norm.weight", (embd,)),
            (p + "post_attention_norm.weight", (embd,)),
            (p + "post_ffw_norm.weight", (embd,)),
        ]
        if arch == "gemma3":
            tensors += [(p + "attn_q_norm.weight", (head,)), (p + "attn_k_norm.weight", (head,))]
    return _write(path, arch, meta, tensors)


def openelm(path: Path, heads: Sequence[int], kv_heads: Sequence[int], context: int = 8192) -> Path:  # fmt: skip
    """OpenELM: its head and KV head counts per layer (arrays), keys and values of 16."""
    embd, head = 64, 16
    meta = {
        "context_length": context,
        "embedding_length": embd,
        "block_count": len(heads),
        "feed_forward_length": [FF] * len(heads),
        "attention.head_count": heads,
        "attention.head_count_kv": kv_heads,
        "attention.key_length": head,
        "attention.value_length": head,
        "attention.layer_norm_rms_epsilon": 1e-6,
        "rope.dimension_count": head,
    }
    tensors = [("token_embd.weight", (embd, VOCAB)), ("output_norm.weight", (embd,))]
    for i, (h, kv) in enumerate(zip(heads, kv_heads, strict=True)):
        p = f"blk.{i}."
        tensors += _ffn(i, embd) + [
            (p + "attn_norm.weight", (embd,)),
            (p + "attn_qkv.weight", (embd, head * (h + 2 * kv))),
            (p + "attn_q_norm.weight", (head,)),
            (p + "attn_k_norm.weight", (head,)),
            (p + "attn_output.weight", (h * head, embd)),
        ]
    return _write(path, "openelm", meta, tensors)


def lfm2(path: Path, kv_heads: Sequence[int], context: int = 8192) -> Path:
    """LFM2, a hybrid: a layer with KV heads attends (4 heads of 16 numbers), one without
    is a short convolution, with a state of its own and no KV cache."""
    embd, heads, head, conv = 64, 4, 16, 3
    meta = {
        "context_length": context,
        "embedding_length": embd,
        "block_count": len(kv_heads),
        "feed_forward_length": FF,
        "attention.head_count": heads,
        "attention.head_count_kv": kv_heads,
        "attention.layer_norm_rms_epsilon": 1e-5,
        "shortconv.l_cache": conv,
    }
    tensors = [("token_embd.weight", (embd, VOCAB)), ("token_embd_norm.weight", (embd,))]
    for i, kv in enumerate(kv_heads):
        p = f"blk.{i}."
        tensors += _ffn(i, embd) + [(p + "attn_norm.weight", (embd,))]
        if kv:
            tensors += _attention(i, embd, heads, kv, head)
            tensors += [(p + "attn_q_norm.weight", (head,)), (p + "attn_k_norm.weight", (head,))]
        else:
            tensors += [
                (p + "shortconv.conv.weight", (conv, embd)),
                (p + "shortconv.in_proj.weight", (embd, 3 * embd)),
                (p + "shortconv.out_proj.weight", (embd, embd)),
            ]
    return _write(path, "lfm2", meta, tensors)
