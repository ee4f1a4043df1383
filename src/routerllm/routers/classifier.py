"""The embedding/BERT classifier router (MISSION M3.2).

encoder -> pooled representation -> dropout -> linear -> softmax over the
prompt classes (code generation, text generation, general purpose,
lightweight); each class is then served by one model (see ``class_routes``).

Two modes:

- ``frozen``: the encoder (any ``routerllm.encoders`` spec or ``Encoder``
  instance) embeds every prompt once and only the linear head trains; fast on
  a CPU.
- ``full``: the whole Hugging Face encoder is fine-tuned with the head
  (``minilm``: the packaged all-MiniLM-L6-v2, or ``hf:<id or path>``).

One token cut-off for training and routing in full mode: the router's
``max_length``, which ``fit`` reads unless ``TrainingArguments.max_length`` gives
one (then the router takes it, and records it when saved); two that differ are
refused. Frozen mode reads neither: its encoder cuts texts itself, so any
``max_length`` is taken (by ``fit``, the constructor or a load) and only recorded.

Saved with ``Router.save``: ``config.json`` (constructor options) and
``weights.npz`` (the head, plus the fine-tuned encoder in full mode; the
tokenizer comes back from the encoder spec, which fine-tuning does not change);
``config.json`` records the sha256 of the encoder's files it learned on (frozen: all;
full: the tokenizer and settings), and a load where they changed is refused
(``encoder_weights``). torch is imported only when the router first needs its network
(``classifier_network``: the torch side).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from routerllm.checks import is_integer, list_of
from routerllm.config import TIER_ORDER
from routerllm.data.labeled import CLASS_NAMES, CLASS_TIERS, LabeledPrompt
from routerllm.encoders.base import Encoder, check_texts, create_encoder
from routerllm.exceptions import DataError, RouterLLMError
from routerllm.routers.base import CandidateModel, Router
from routerllm.routers.class_routes import class_reason, class_routes
from routerllm.routers.classifier_network import (
    check_device,
    hf_source,
    load_transformer,
    load_weights,
    pool,
    torch_module,
)

if TYPE_CHECKING:
    import torch

    from routerllm.training.checkpoint import TrainingHistory
    from routerllm.training.trainer import TrainingArguments

logger = logging.getLogger(__name__)

MODES = ("frozen", "full")
POOLINGS = ("mean", "cls")
#: Tokens a prompt keeps in full mode when neither the router nor training gives a cut-off.
DEFAULT_MAX_LENGTH = 512


class EmbeddingClassifierRouter(Router):
    """Classifies a prompt into a task class and routes it to the model serving that class."""

    # max_length: full mode's weights were fine-tuned on that cut-off (a saved router whose
    # config.json records none, saved before 2026-12-06, takes the one given)
    LEARNED_OPTIONS = frozenset({"encoder", "mode", "num_classes", "pooling", "max_length"})

    @classmethod
    def learned_options(cls, saved: dict[str, Any]) -> frozenset[str]:
        """Frozen mode reads no ``max_length`` (its encoder cuts texts itself): a config
        that gives one loads, as it did before full mode's was refused."""
        if saved.get("mode") == "frozen":
            return cls.LEARNED_OPTIONS - {"max_length"}
        return cls.LEARNED_OPTIONS

    name = "classifier"

    def __init__(
        self,
        models: Sequence[CandidateModel],
        seed: int = 0,
        encoder: str | Encoder = "minilm",
        mode: str = "frozen",
        num_classes: int = len(CLASS_NAMES),
        dropout: float = 0.1,
        max_length: int | None = None,
        pooling: str = "mean",
        class_tiers: Sequence[str] | None = None,
        batch_size: int = 64,
        device: str | None = None,
    ) -> None:
        super().__init__(models, seed)
        if mode not in MODES:
            raise RouterLLMError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if pooling not in POOLINGS:
            raise RouterLLMError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        given_length = max_length is not None
        max_length = DEFAULT_MAX_LENGTH if max_length is None else max_length
        if num_classes < 2 or not 0.0 <= dropout < 1.0 or max_length < 1 or batch_size < 1:
            raise RouterLLMError(
                f"need num_classes >= 2, 0 <= dropout < 1, max_length >= 1, batch_size >= 1 "
                f"(got {num_classes}, {dropout}, {max_length}, {batch_size})"
            )
        if class_tiers is None:
            if num_classes > len(CLASS_TIERS):
                raise RouterLLMError(f"{num_classes} classes: give class_tiers (one tier each)")
            class_tiers = CLASS_TIERS[:num_classes]
        bad = [t for t in class_tiers if t not in TIER_ORDER]
        if len(class_tiers) != num_classes or bad:
            raise RouterLLMError(
                f"class_tiers needs {num_classes} tiers from {', '.join(TIER_ORDER)}: "
                f"got {list(class_tiers)}"
            )
        self._encoder: Encoder | None
        if isinstance(encoder, Encoder):
            if mode == "full":
                raise RouterLLMError("mode='full' needs an encoder spec string, not an instance")
            self.spec, self._encoder = encoder.spec, encoder
        else:
            self.spec, self._encoder = encoder, None
        self.mode, self.pooling, self.dropout = mode, pooling, dropout
        self.max_length, self.batch_size = max_length, batch_size
        # Given, or read by a fit: in full mode training again with another is refused
        # (``_cut_off``).
        self._max_length_fixed = given_length
        self.num_classes = num_classes
        self.class_names = (
            CLASS_NAMES[:num_classes]
            if num_classes <= len(CLASS_NAMES)
            else tuple(f"class_{c}" for c in range(num_classes))
        )
        if mode == "full":
            hf_source(self.spec)  # a spec full mode cannot fine-tune fails here, not in fit
        self.options = {
            "encoder": self.spec,
            "mode": mode,
            "num_classes": num_classes,
            "dropout": dropout,
            "max_length": max_length,
            "pooling": pooling,
            "class_tiers": list(class_tiers),
            "batch_size": batch_size,
        }
        self.routes = class_routes(self.models, class_tiers)
        # (classes, models): all of a class's probability goes to the model serving it.
        self._class_matrix = np.zeros((num_classes, len(self.models)))
        for c, (m, _) in enumerate(self.routes):
            self._class_matrix[c, m] = 1.0
        if device is not None:
            check_device(device)  # now, not at the first prompt routed
        self._device = device
        self._net: torch.nn.ModuleDict | None = None
        self._tokenizer: Any = None
        self._trained = False
        self._last_probs: dict[str, np.ndarray] = {}

    # -- the network -------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        """The frozen-mode encoder, built from its spec on first use."""
        if self._encoder is None:
            self._encoder = create_encoder(self.spec)
        return self._encoder

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = "cuda" if torch_module().cuda.is_available() else "cpu"
        return self._device

    def network(self) -> torch.nn.ModuleDict:
        """The torch modules (``encoder`` in full mode, ``dropout``, ``head``), built once."""
        if self._net is None:
            torch = torch_module()
            parts: dict[str, Any] = {}
            if self.mode == "full":
                self._tokenizer, parts["encoder"] = load_transformer(self.spec)
                dim = int(parts["encoder"].config.hidden_size)
            else:
                dim = int(self.encoder.dim)
            # The head's initial weights depend only on the seed, not on global RNG state.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                parts["dropout"] = torch.nn.Dropout(self.dropout)
                parts["head"] = torch.nn.Linear(dim, self.num_classes)
            self._net = torch.nn.ModuleDict(parts).to(self.device).eval()
        return self._net

    def _forward(self, inputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, pooled features) for a collated batch."""
        net = self.network()
        if self.mode == "frozen":
            features = inputs.to(self.device)
        else:
            batch = {k: v.to(self.device) for k, v in inputs.items()}
            hidden = net["encoder"](**batch).last_hidden_state
            features = pool(hidden, batch["attention_mask"], self.pooling)
        return net["head"](net["dropout"](features)), features

    def _stack(self, rows: Sequence[np.ndarray]) -> torch.Tensor:
        return torch_module().from_numpy(np.stack(rows).astype(np.float32, copy=False))

    def _tokenize(self, texts: Sequence[str], max_length: int) -> Any:
        from routerllm.encoders.hf import token_limit

        net = self.network()  # loads the tokenizer with the encoder
        # As the frozen hf: encoder does: never past the model's positions.
        limit = token_limit(self._tokenizer, net["encoder"], max_length)
        return self._tokenizer(
            list(texts), padding=True, truncation=True, max_length=limit, return_tensors="pt"
        )

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.asarray(self.encoder.encode(list(texts), self.batch_size), dtype=np.float32)
        if vectors.shape != (len(texts), self.encoder.dim):
            raise RouterLLMError(
                f"encoder {self.spec!r} returned shape {vectors.shape} for {len(texts)} texts, "
                f"expected ({len(texts)}, {self.encoder.dim})"
            )
        return vectors

    def _inputs(self, texts: Sequence[str], max_length: int) -> tuple[list[Any], Any]:
        """(items, collate) the trainer and the predictor batch over."""
        if self.mode == "frozen":
            return list(self._embed(texts)), self._stack
        return list(texts), partial(self._tokenize, max_length=max_length)

    # -- training and prediction ------------------------------------------
    def fit(
        self,
        train: Sequence[LabeledPrompt],
        val: Sequence[LabeledPrompt] = (),
        args: TrainingArguments | None = None,
        resume: bool = False,
    ) -> TrainingHistory:
        """Train on ``train``, keep the epoch best on ``val``; see ``training.trainer.train``.

        Training continues from the router's current weights (or, with
        ``resume=True``, from the checkpoint in ``args.output_dir``).
        """
        from routerllm.routers.encoder_weights import encoder_sha256
        from routerllm.training.trainer import (
            ClassificationData,
            TrainingArguments,
            check_resumable,
        )
        from routerllm.training.trainer import train as run_training

        args = TrainingArguments() if args is None else args
        if not isinstance(args, TrainingArguments):
            raise RouterLLMError(f"args must be TrainingArguments, got {type(args).__name__}")
        cut_off = self._cut_off(args.max_length)
        # The checkpoint records the cut-off full mode reads (as it did when the default was
        # 512 there): a resume with another is refused. Frozen mode reads none, so its
        # checkpoint is resumed with any (one it recorded before 2026-12-06 is not compared).
        args = dataclasses.replace(args, max_length=cut_off if self.mode == "full" else None)
        train, val = (
            list_of(train, LabeledPrompt, "train", DataError),
            list_of(val, LabeledPrompt, "val", DataError),
        )
        for split, items in (("train", train), ("val", val)):
            if not all(is_integer(p.label) for p in items):
                raise DataError(f"{split}: labels must be integers (class ids)")
            bad = [p.label for p in items if not 0 <= p.label < self.num_classes]
            if bad:
                raise DataError(
                    f"{split}: labels must be in 0..{self.num_classes - 1}, found {sorted(set(bad))}"
                )
        if not train:
            raise DataError("fit needs at least one training prompt")
        logger.info(
            "training the %s classifier (%s loss, encoder %s): %d prompts, %d for validation",
            self.mode,
            args.loss,
            self.spec,
            len(train),
            len(val),
        )
        if self.mode == "frozen" and args.learning_rate < 1e-3:
            logger.warning(
                "learning rate %g suits fine-tuning a transformer; a head on a frozen encoder "
                "usually needs about 1e-2",
                args.learning_rate,
            )
        # What the epochs trained on: a checkpoint of another is not resumed. Frozen mode
        # pools nothing itself (its encoder does), so its pooling option is left out. The
        # router's seed drew the head's first weights (TrainingArguments.seed: dropout).
        # Its encoder's files too where a checkpoint is kept: a spec may name other weights.
        files = encoder_sha256(self) if args.output_dir is not None else None
        setup = {"encoder": self.spec, "mode": self.mode, "classes": self.num_classes,
                 "dropout": self.dropout, "data_sha256": _digest(train, val),
                 "router_seed": self.seed,
                 **({"pooling": self.pooling} if self.mode == "full" else {}),
                 **({"encoder_sha256": files[:16]} if files is not None else {})}  # fmt: skip
        if resume:  # a checkpoint it cannot resume is refused now, not after the encoding
            check_resumable(args, setup)
        train_items, collate = self._inputs([p.text for p in train], cut_off)
        val_data = None
        if val:
            val_items, _ = self._inputs([p.text for p in val], cut_off)
            val_data = ClassificationData(val_items, np.array([p.label for p in val]))
        train_data = ClassificationData(train_items, np.array([p.label for p in train]))
        history = run_training(
            self.network(), self._forward, collate, train_data, val_data, args, resume, setup
        )
        self._trained = True
        self._last_probs = {}
        self.max_length, self._max_length_fixed = cut_off, True
        self.options["max_length"] = cut_off  # saved: routing after a load reads it too
        return history

    def _cut_off(self, asked: int | None) -> int:
        """The tokens a fit reads: ``asked`` (``TrainingArguments.max_length``), else the
        router's; in full mode one that differs from a cut-off the router was given or
        trained with is refused, since routing would read another than training. Frozen
        mode reads none (its encoder cuts texts itself): any is taken, as a load takes any."""
        if asked is None or asked == self.max_length:
            return self.max_length
        if self._max_length_fixed and self.mode == "full":
            raise RouterLLMError(
                f"TrainingArguments.max_length {asked} is not the router's max_length "
                f"{self.max_length}, the cut-off it routes by: give the cut-off to one of them "
                f"(or the same to both)"
            )
        return asked

    def predict_proba(self, prompts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """(len(prompts), num_classes) class probabilities, computed in batches."""
        if not self._trained:
            raise RouterLLMError(
                "the classifier router has no trained weights: call fit(), or check that the "
                "saved router's folder has its weights.npz"
            )
        size = self.batch_size if batch_size is None else batch_size
        prompts = check_texts(prompts, size, "prompts")
        if not prompts:
            return np.zeros((0, self.num_classes))
        torch = torch_module()
        items, collate = self._inputs(prompts, self.max_length)
        self.network().eval()
        rows = []
        with torch.no_grad():
            for start in range(0, len(items), size):
                logits, _ = self._forward(collate(items[start : start + size]))
                rows.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        probs = np.concatenate(rows).astype(np.float64)
        return np.asarray(probs / probs.sum(axis=1, keepdims=True))  # exact sums in float64

    def predict(self, prompts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """The most probable class id of each prompt."""
        return self.predict_proba(prompts, batch_size).argmax(axis=1)

    def warm_up(self, prompt: str) -> None:
        self.predict_proba([prompt])

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        probs = self.predict_proba(prompts)
        self._last_probs = dict(zip(prompts, probs, strict=True))  # for explain()
        out = probs @ self._class_matrix
        return np.asarray(out / out.sum(axis=1, keepdims=True))

    def explain(self, prompt: str, row: np.ndarray) -> str:
        probs = self._last_probs.get(prompt)
        if probs is None:
            probs = self.predict_proba([prompt])[0]
        chosen = int(np.argmax(row))
        model_of = [m for m, _ in self.routes]
        reason = class_reason(self.class_names, probs, model_of, chosen, self.model_names[chosen])
        whys = {why for m, why in self.routes if m == chosen}
        return reason + (f" ({', '.join(sorted(whys))})" if whys else "")

    # -- persistence -------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        return self._trained

    def encoder_source(self) -> tuple[str, bool] | None:
        # full mode saves the encoder it fine-tuned: of the spec's files, it reads only
        # the tokenizer and settings
        return self.spec, self.mode == "frozen"

    def state(self) -> dict[str, np.ndarray]:
        if not self._trained:
            return {}
        return {k: v.detach().cpu().numpy() for k, v in self.network().state_dict().items()}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        load_weights(self.network(), arrays, self.mode, self.spec)
        self._trained = True
        self._last_probs = {}


def _digest(*splits: Sequence[LabeledPrompt]) -> str:
    """A short digest of the prompts and labels of ``splits``: a checkpoint is resumed
    only on the data it was trained on."""
    h = hashlib.sha256()
    for items in splits:
        h.update(json.dumps([[p.text, int(p.label)] for p in items]).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]
