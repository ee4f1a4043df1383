"""A GGUF's key-values alone (its metadata: architecture, hyperparameters, vocabulary,
chat template), written as a GGUF of no tensors: what llama.cpp opens ``vocab_only``
where the model's file is not here whole. A split model's first part (``gguf.parts``),
before the parts are assembled, starts with the whole GGUF's header, but llama.cpp
refuses a file cut short ("tensor data is not within the file bounds"); the same
key-values give it the same vocabulary, special tokens and chat template, so the same
count of a prompt as the assembled model's."""

from __future__ import annotations

from pathlib import Path

from routerllm.files import written_atomically
from routerllm.gguf_header import key_values_end

#: Where a GGUF's count of tensors is, in bytes from its start (after its magic and
#: version): 8 bytes, 0 the same in either byte order.
_TENSOR_COUNT = slice(8, 16)


def key_values_gguf(source: Path, target: Path) -> bool:
    """Write at ``target`` (atomically) the key-values of the GGUF that ``source`` starts
    with, as a GGUF of no tensors: its magic, version and key-values as they are, its
    count of tensors 0, padded to its alignment (as llama.cpp reads a GGUF's data from
    there: none). False, nothing written, where ``source`` ends within its key-values or
    its header cannot be read (``key_values_end``)."""
    if (read := key_values_end(source)) is None:
        return False
    end, alignment = read
    with source.open("rb") as f:
        head = f.read(end)
    if len(head) != end:  # cut short since its header was read
        return False
    with written_atomically(target) as tmp:
        tmp.write_bytes(head[: _TENSOR_COUNT.start] + bytes(8) + head[_TENSOR_COUNT.stop :] + bytes(-end % alignment))  # fmt: skip
    return True
