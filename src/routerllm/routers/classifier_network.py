"""The classifier router's torch side: torch imported on first use, the device checked,
the transformer full mode fine-tunes found and loaded, its hidden states pooled, and
saved weights checked before they load into the network. ``classifier.py`` keeps the
router itself (options, training glue, routing); nothing here imports torch at import
time, so ``import routerllm.routers.classifier`` stays fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from routerllm.checks import FLOAT32_MAX
from routerllm.exceptions import (
    ModelUnavailableError,
    RouterLLMError,
    missing_dependency,
    one_line,
)

if TYPE_CHECKING:
    import torch


def torch_module() -> Any:
    try:
        import torch
    except ImportError as e:
        raise missing_dependency("torch", "hf", e) from e
    return torch


def check_device(device: str) -> None:
    """A clear error for a device torch cannot put the network on here (a typo, or
    ``cuda`` on a machine without a GPU)."""
    torch = torch_module()
    try:
        torch.zeros(1, device=device).cpu()
    except (RuntimeError, AssertionError, NotImplementedError, TypeError, ValueError) as e:
        raise RouterLLMError(
            f"device {device!r} cannot be used here ({one_line(e)}); give 'cpu', 'cuda' on a "
            f"machine with a GPU, or no device (the router takes a GPU where there is one)"
        ) from e


def hf_source(spec: str) -> tuple[str, bool]:
    """(``from_pretrained`` argument, local_files_only) for an encoder spec full mode can fine-tune."""
    from routerllm.encoders.hf import parse_model_options
    from routerllm.hf_hub import locate_model

    if spec == "minilm":
        from routerllm.encoders.minilm import minilm_dir

        return str(minilm_dir()), True
    kind, _, arg = spec.partition(":")
    if kind == "hf" and arg:
        name, local_only, _ = locate_model(parse_model_options(arg)[0])
        return name, local_only
    raise RouterLLMError(
        f"mode='full' fine-tunes a transformers encoder: use encoder='minilm' or "
        f"'hf:<id or path>', not {spec!r} (or use mode='frozen')"
    )


def load_transformer(spec: str) -> tuple[Any, Any]:
    """(tokenizer, float32 text encoder) of the transformer full mode fine-tunes."""
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:
        raise missing_dependency("transformers", "hf", e) from e
    from routerllm.encoders.hf import text_encoder

    source, local_only = hf_source(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = AutoModel.from_pretrained(source, local_files_only=local_only)
    except ImportError:
        raise
    except Exception as e:  # missing or corrupt files: OSError, SafetensorError...
        raise ModelUnavailableError(
            f"cannot load encoder {source!r} ({one_line(e)}); give a local path or a hub "
            f"id in the Hugging Face cache"
        ) from e
    return tokenizer, text_encoder(model).float()


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One feature row per text: its first token's hidden state (``cls``), or the mean
    of its tokens' (``mean``; padding left out)."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def load_weights(
    net: torch.nn.ModuleDict, arrays: dict[str, np.ndarray], mode: str, spec: str
) -> None:
    """Saved weights checked, then loaded into ``net``; weights that would route wrongly
    without a word are refused."""
    torch = torch_module()
    # NaN weights load into torch without a word, and every prompt then goes to class 0;
    # so do float64 ones past float32's range (its weights' type), which become inf
    numbers = {k: v for k, v in arrays.items() if v.dtype.kind in "fc"}
    if bad := [
        k
        for k, v in numbers.items()
        if not np.isfinite(v).all() or np.abs(v).max(initial=0.0) > FLOAT32_MAX
    ]:
        raise RouterLLMError(
            f"saved weights hold values that are not finite numbers ({', '.join(bad)}): "
            f"train the router again"
        )
    head, width = arrays.get("head.weight"), net["head"].in_features
    if head is not None and head.ndim == 2 and head.shape[1] != width:
        what = "embeddings" if mode == "frozen" else "hidden states"
        raise RouterLLMError(
            f"saved weights are for {head.shape[1]}-wide {what}, but encoder {spec!r} "
            f"gives {width}-wide ones: name the encoder they were trained with, or train the "
            f"router again"
        )
    try:
        net.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in arrays.items()})
    except (RuntimeError, TypeError, ValueError) as e:
        raise RouterLLMError(
            f"saved weights do not fit a {mode}-mode classifier on encoder {spec!r}: {one_line(e)}"
        ) from e
