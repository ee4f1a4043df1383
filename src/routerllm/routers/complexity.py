"""Complexity router (MISSION M3.3): a text-classification model whose labels
map to tiers. No training by the user is needed.

``model`` is any Hugging Face sequence-classification model (local path, or
hub id where a hub or the local cache has it; the seeds used
``grahamaco/question-complexity-classifier`` with simple -> 7B, complex ->
13B), with ``label_map`` from its labels to tiers. ``model="default"`` uses
the classifier shipped in this package (``routers/assets/complexity``: a
logistic regression on packaged MiniLM embeddings, trained on the synthetic
dataset by ``benchmarks/train_default_complexity.py``), labels light /
medium / heavy.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.config import TIER_ORDER
from routerllm.exceptions import ModelUnavailableError, RouterLLMError, missing_dependency, one_line
from routerllm.routers.base import CandidateModel, Router, RoutingDecision

#: The seeds' map for grahamaco/question-complexity-classifier.
SEED_LABEL_MAP = {"LABEL_0": "medium", "LABEL_1": "heavy", "simple": "medium", "complex": "heavy"}


def default_model_dir() -> Path:
    return Path(str(resources.files("routerllm") / "routers" / "assets" / "complexity"))


def default_labels() -> list[str]:
    """The labels of the packaged classifier (light, medium, heavy)."""
    path = default_model_dir()
    try:
        return [
            str(label)
            for label in json.loads((path / "config.json").read_text(encoding="utf-8"))["labels"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RouterLLMError(
            f"the packaged complexity classifier in {path} is missing or corrupt: {e}"
        ) from e


class ComplexityRouter(Router):
    """Tier = label_map[predicted label]; confidence = that label's probability."""

    name = "complexity"

    def __init__(
        self,
        models: Sequence[CandidateModel],
        seed: int = 0,
        model: str = "default",
        label_map: dict[str, str] | None = None,
        max_length: int = 512,
    ) -> None:
        super().__init__(models, seed)
        self.model_ref = model
        self.max_length = max_length
        self.options = {"model": model, "label_map": label_map, "max_length": max_length}
        self._classifier: Any = None
        self._labels: list[str] = []
        self._last_proba: dict[str, np.ndarray] = {}
        self.label_map = label_map or (
            {"light": "light", "medium": "medium", "heavy": "heavy"}
            if model == "default"
            else SEED_LABEL_MAP
        )
        bad = {t for t in self.label_map.values() if t not in TIER_ORDER}
        if bad:
            raise RouterLLMError(
                f"label_map maps to unknown tiers {sorted(bad)}; use light, medium, heavy"
            )
        if model == "default" and label_map:  # its labels are known now: checked now
            self._check_labels(default_labels())

    def _check_labels(self, labels: Sequence[str]) -> None:
        """A clear error unless ``label_map`` sends every label of the model to a tier."""
        unknown = [lab for lab in labels if lab not in self.label_map]
        if unknown:
            raise RouterLLMError(
                f"labels {unknown} of {self.model_ref!r} are not in label_map {self.label_map}; "
                f"pass label_map, with a tier for each of {', '.join(labels)}"
            )

    # -- classifiers --------------------------------------------------------
    def _load(self) -> None:
        if self._classifier is not None:
            return
        if self.model_ref == "default":
            self._load_default()
        else:
            self._load_hf(self.model_ref)

    def _load_default(self) -> None:
        from routerllm.encoders import create_encoder

        path = default_model_dir()
        try:
            meta = json.loads((path / "config.json").read_text(encoding="utf-8"))
            with np.load(path / "weights.npz") as data:
                W, b = data["W"], data["b"]
        except (OSError, ValueError, KeyError) as e:
            raise RouterLLMError(
                f"the packaged complexity classifier in {path} is missing or corrupt: {e}"
            ) from e
        encoder = create_encoder(meta["encoder"])
        self._labels = list(meta["labels"])

        def classify(texts: Sequence[str]) -> np.ndarray:
            z = encoder.encode(list(texts)) @ W + b
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            return np.asarray(p / p.sum(axis=1, keepdims=True))

        self._classifier = classify

    def _load_hf(self, ref: str) -> None:
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as e:
            raise missing_dependency("torch/transformers", "hf", e) from e
        from routerllm.hf_hub import locate_model

        name, local_only, _ = locate_model(ref)  # a clear error when it is nowhere to be found
        try:
            tok = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                name, local_files_only=local_only, output_loading_info=True
            )
        except ImportError:
            raise
        except Exception as e:  # missing or corrupt files: OSError, SafetensorError, a
            # RuntimeError for weights of other sizes than its config.json's...
            raise ModelUnavailableError(
                f"complexity model {ref!r} cannot be loaded ({one_line(e)}); give a "
                f"sequence-classification model saved with save_pretrained, or a hub id in "
                f"the Hugging Face cache"
            ) from e
        # A base model (an encoder, a language model) loads with a newly initialised,
        # random head: its "classes" would be noise. Only weights it was saved with route.
        missing = sorted(str(k) for k in (info or {}).get("missing_keys", ()))
        if missing:
            raise ModelUnavailableError(
                f"complexity model {ref!r} is not a sequence-classification model: its "
                f"weights lack {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}, "
                f"which loading would fill at random; give a classifier fine-tuned for the "
                f"task (with its classification head), saved with save_pretrained"
            )
        model.eval()
        id2label = model.config.id2label
        self._labels = [str(id2label[i]) for i in range(len(id2label))]
        self._check_labels(self._labels)

        def classify(texts: Sequence[str]) -> np.ndarray:
            batch = tok(
                list(texts),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            with torch.inference_mode():
                logits = model(**batch).logits
            return np.asarray(torch.softmax(logits, dim=-1).numpy(), dtype=float)

        self._classifier = classify

    def predict_proba(self, prompts: Sequence[str]) -> np.ndarray:
        """(n, n_labels) label probabilities, labels in ``self.labels`` order."""
        self._load()
        return np.asarray(self._classifier(prompts))

    @property
    def labels(self) -> list[str]:
        self._load()
        return self._labels

    # -- routing ------------------------------------------------------------
    @cached_property
    def _model_of(self) -> list[int]:
        """The model each label routes to (computed once: labels and models do not change)."""
        return self._models_of_labels(np.ones(len(self.models), dtype=bool))

    def _models_of_labels(self, available: np.ndarray) -> list[int]:
        """The model each label routes to among the ``available``: the smallest of the
        label's tier, else of the nearest bigger tier, else of the nearest smaller one."""
        tiers = np.array([TIER_ORDER.get(m.tier, 1) for m in self.models])
        model_of = []
        for label in self.labels:
            target = TIER_ORDER[self.label_map[label]]
            distance = np.where(tiers >= target, tiers - target, 10 + target - tiers)
            model_of.append(int(np.argmin(np.where(available, distance, np.inf))))
        return model_of

    def warm_up(self, prompt: str) -> None:
        self.predict_proba([prompt])

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        proba = self.predict_proba(prompts)
        self._last_proba = dict(zip(prompts, proba, strict=True))  # for explain()
        out = np.zeros((len(prompts), len(self.models)))
        for j, m in enumerate(self._model_of):
            out[:, m] += proba[:, j]
        # a tiny size-ordered prior: no row of zeros (an unavailable target: ``_decide``)
        out += 1e-6 * np.linspace(1, 0.5, len(self.models))
        return out / out.sum(axis=1, keepdims=True)

    def _decide(self, prompt: str, row: np.ndarray, mask: np.ndarray) -> RoutingDecision:
        decision = super()._decide(prompt, row, mask)
        if mask[int(np.argmax(row))]:
            return decision
        # Each label's probability goes to the model that serves it among the available:
        # a heavy prompt whose heavy model is unavailable goes to the next one up, not to
        # the model of a label it is all but surely not (its probability ~0 > the prior)
        proba = self._last_proba.get(prompt)
        if proba is None:
            proba = self.predict_proba([prompt])[0]
        among = np.zeros(len(self.models))
        for j, m in enumerate(self._models_of_labels(mask)):
            among[m] += proba[j]
        chosen = int(np.argmax(np.where(mask, among, -np.inf)))
        # every label maps to an available model: ``among`` sums to 1 over them
        return dataclasses.replace(
            decision, model=self.model_names[chosen], confidence=float(among[chosen])
        )

    def explain(self, prompt: str, row: np.ndarray) -> str:
        from routerllm.routers.class_routes import class_reason

        proba = self._last_proba.get(prompt)
        if proba is None:
            proba = self.predict_proba([prompt])[0]
        chosen = int(np.argmax(row))
        labels = [f"{label!r}" for label in self.labels]
        reason = class_reason(labels, proba, self._model_of, chosen, self.model_names[chosen])
        return "complexity " + reason
