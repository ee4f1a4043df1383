"""Which weights a HumanEval run's stored answers were made with. A model's source
(``ModelConfig.source_text``) names its file, not what the file holds: a GGUF written
again at its path, or a model package upgraded in place, has the same source and other
answers. The store records the sha256 of the files a llama.cpp model is made from,
with their stat (``files_identity``), so that they are read again only where the stat
changed (a reinstall of the same file, a copy back, is the same weights)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from routerllm.config import AppConfig, ModelConfig
from routerllm.eval.result_store import ResultStore
from routerllm.exceptions import RouterLLMError
from routerllm.files_identity import Weights, files_weights, weights_from_record


def weights_files(model: ModelConfig) -> list[Path] | None:
    """The files a llama.cpp model's weights are made from; None where the config pins
    what they hold (a ``gguf.sha256``, checked as it loads), where the model has none
    (an endpoint, a Hugging Face id), or where they cannot be found (a package removed:
    its stored answers need not run)."""
    from routerllm.model_files import source_files

    if model.backend != "llama_cpp" or model.gguf is None or model.gguf.sha256 is not None:
        return None
    try:
        files = source_files(model.gguf)
    except (RouterLLMError, OSError):
        return None
    return files if files and all(f.is_file() for f in files) else None


def weights_now(model: ModelConfig, recorded: Weights | None) -> Weights | None:
    """``model``'s weights now (:func:`weights_files`): ``recorded`` where the files'
    stat is the recorded one, hashed otherwise; None where there are none to tell."""
    files = weights_files(model)
    return None if files is None else files_weights(files, recorded)


def recorded_weights(store: ResultStore, model: str) -> Weights | None:
    """The weights ``store`` records for ``model``'s answers; None where it records none
    (a store made before they were recorded takes the first given) or cannot read it."""
    text = store.weights_of(model)
    try:
        return None if text is None else weights_from_record(json.loads(text))
    except ValueError:  # json.JSONDecodeError among them
        return None


def changed_weights(
    store: ResultStore, config: AppConfig, models: Sequence[str]
) -> tuple[dict[str, Weights], dict[str, Weights]]:
    """Of ``models`` with stored answers, those whose files now hold other weights than
    the answers were made with (what they hold now), and the weights of the others, to
    record (:func:`record_weights`); the store is not written."""
    changed, same = {}, {}
    for name in models:
        recorded = recorded_weights(store, name)
        now = weights_now(config.model(name), recorded)
        if now is None:
            continue
        if recorded is not None and now.sha256 != recorded.sha256 and store.done(name):
            changed[name] = now
        elif now != recorded:
            same[name] = now
    return changed, same


def refuse_changed(store: ResultStore, changed: Mapping[str, Weights]) -> None:
    """One line for the first model whose stored answers other weights made."""
    for name, now in changed.items():
        raise RouterLLMError(
            f"the stored results of {name!r} in {store.path} were made with other weights: "
            f"{', '.join(now.files)} changed since (another sha256, same file name); put the "
            f"file the answers were made with back, or use a new --out directory for this "
            f"one (nothing was changed)"
        )


def record_weights(store: ResultStore, weights: Mapping[str, Weights]) -> None:
    """Record what each model's answers are made with from now on."""
    for name, now in weights.items():
        store.record_weights(name, json.dumps(asdict(now), sort_keys=True))
