"""Hugging Face transformers models: 4-bit nf4 + device_map="auto" on CUDA, plain CPU otherwise."""

from __future__ import annotations

import gc
import importlib.util
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from routerllm.backends.base import (
    Backend,
    Completion,
    GenerationRequest,
    LiveText,
    control_stops,
    cut_at_stop,
    empty_prompt,
    holds_written_stop,
    refuse_prompt_state,
    resolve_sampling,
    stop_tail,
    too_long,
    written_stop,
)
from routerllm.backends.heap import give_back_freed_memory
from routerllm.backends.hf_prompt import (
    TokenizerAlone,
    own_context,
    piece_tokens,
    prompt_ids,
    read_tokenizer,
)
from routerllm.backends.hf_source import (
    SAVED_FOLDER,
    _local_or_hub,
    _local_problem,
    _needs_accelerate,
    weights_present,
)
from routerllm.backends.interrupts import CANCELLED, Cancellation
from routerllm.exceptions import (
    BackendError,
    ContextLengthError,
    ModelUnavailableError,
    missing_dependency,
)

FLOAT32_GB_PER_B = 4.0  # float32 weights: 4 bytes a parameter


def _cuda_devices() -> int:
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _model_gpus(model: Any) -> list[int]:
    """The CUDA devices that hold the model's weights (none on the CPU): those a seeded
    answer forks the generator state of. fork_rng's default, every visible device, made
    a CUDA context on each (slow, and a warning with many), the model on one of them."""
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


def _has_bitsandbytes() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def _has_accelerate() -> bool:
    return importlib.util.find_spec("accelerate") is not None


class HFBackend(Backend):
    """A transformers causal LM, loaded from a local directory or the HF cache: never
    downloads, whether or not the hub is reachable."""

    _model: Any = None
    _tokenizer: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # its tokenizer and context read without its weights, to count a prompt before
        # it loads (``refusal_before_load``)
        self._alone = TokenizerAlone()

    def _mapped(self) -> tuple[str, ...]:
        return (".safetensors", ".bin", ".gguf")  # its weights

    def availability(self) -> str | None:
        for module, extra in (("torch", "hf"), ("transformers", "hf")):
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install 'routerllm[{extra}]')"
        assert self.config.model_id is not None
        gpus = _cuda_devices()
        if self.config.gpus > gpus:
            return (
                f"needs {self.config.gpus} CUDA GPU(s) and about {super().memory_gb:g} GB; "
                f"found {gpus}"
            )
        if not weights_present(self.config.model_id):
            return (
                f"weights for {self.config.model_id} are not in a local directory or the HF cache"
            )
        if why := _local_problem(self.config.model_id):
            return why
        if _needs_accelerate(self.config.model_id, gpus > 0) and not _has_accelerate():
            return "accelerate is not installed (pip install 'routerllm[hf]')"
        if gpus and self.config.load_in_4bit and not _has_bitsandbytes():
            return "load_in_4bit needs bitsandbytes (pip install 'routerllm[quant]')"
        return None

    def _load_problem(self) -> str | None:
        """Why transformers cannot read the config of the folder (or HF cache snapshot) now
        there: a model type it does not know, say. Not for a GGUF file (transformers reads
        its whole vocabulary to make its config, seconds)."""
        assert self.config.model_id is not None
        model_id, gguf = _local_or_hub(self.config.model_id)
        if gguf:
            return None
        try:
            from transformers import AutoConfig

            AutoConfig.from_pretrained(model_id, local_files_only=True)
        except ImportError:
            return None
        except Exception as e:  # ValueError, KeyError, OSError: as varied as its load's
            from routerllm.exceptions import one_line

            return f"transformers could not read the config of {model_id!r}: {one_line(e)}"
        return None

    @property
    def memory_gb(self) -> float:
        """The config's ``memory_gb`` on CUDA (or for a model that needs a GPU, unavailable
        without one); without CUDA, at least the float32 weights (4 GB per billion
        parameters), which is how a model is loaded there, whatever ``load_in_4bit`` or
        ``quantization`` say (a 4-bit model's figure was 8x too low)."""
        configured = super().memory_gb
        if not self.counts_float32:
            return configured
        return max(configured, FLOAT32_GB_PER_B * self.config.params_b)

    @property
    def counts_float32(self) -> bool:
        """Whether ``memory_gb`` counts at least the float32 weights: on a machine
        without CUDA, for a model that does not need a GPU."""
        return not (self.config.gpus or _cuda_devices())

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def weights_files(self) -> list[Path] | None:
        """The files transformers reads it from (``hf_hub.model_files``: the folder listed)."""
        from routerllm.hf_hub import model_files

        assert self.config.model_id is not None
        return model_files(self.config.model_id)

    def load(self) -> None:
        if self._model is not None:
            return
        try:
            import torch
            from transformers import AutoModelForCausalLM
        except ImportError as e:
            raise missing_dependency("torch/transformers", "hf", e) from e
        assert self.config.model_id is not None
        if not weights_present(self.config.model_id):
            raise ModelUnavailableError(
                f"model {self.name!r}: weights for {self.config.model_id} are not available locally"
            )
        model_id, gguf = _local_or_hub(self.config.model_id)
        if why := _local_problem(self.config.model_id):
            raise ModelUnavailableError(f"model {self.name!r}: {why}")
        cuda = torch.cuda.is_available()
        if _needs_accelerate(self.config.model_id, cuda) and not _has_accelerate():
            raise missing_dependency("accelerate", "hf")
        kwargs: dict[str, Any] = {}
        if cuda:
            kwargs["device_map"] = "auto"
            if self.config.load_in_4bit:
                from transformers import BitsAndBytesConfig

                if not _has_bitsandbytes():
                    raise missing_dependency("bitsandbytes (for load_in_4bit)", "quant")

                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True,
                    bnb_4bit_quant_type="nf4",
                    bnb_4bit_compute_dtype=torch.float16,
                    bnb_4bit_use_double_quant=True,
                )
            else:
                kwargs["dtype"] = torch.float16
        else:
            torch.set_num_threads(self.n_threads)
            kwargs["dtype"] = torch.float32
        # Local files only: without it transformers asks the hub about each cached file
        # (minutes of retries offline) and downloads any weights the cache lacks.
        kwargs["local_files_only"] = True
        # before they are read: files replaced as it loads are found changed, loaded again
        self._stamp_loaded()
        try:
            # the one a count before the load read from these files, or read now
            counted = self._alone.take(self._loaded_weights[1])
            self._tokenizer = read_tokenizer(model_id, gguf) if counted is None else counted
            self._model = AutoModelForCausalLM.from_pretrained(model_id, **kwargs, **gguf)
        except ImportError:
            self._model = self._tokenizer = None
            raise
        except Exception as e:  # corrupt files: SafetensorError, UnpicklingError, TypeError...
            from routerllm.exceptions import one_line

            self._model = self._tokenizer = None
            # transformers' text runs to several lines (five for missing tokenizer files)
            hint = f"; give {SAVED_FOLDER}" if Path(model_id).is_dir() else ""
            raise BackendError(
                f"transformers could not load {model_id!r} for {self.name!r}: {one_line(e)}{hint}"
            ) from e
        self._model.eval()

    def unload(self) -> None:
        if self._model is None:
            return
        freed = weakref.ref(self._model)
        self._model = self._tokenizer = None
        if freed() is not None:  # held by a cycle (a model's own hooks, another version's)
            # A full collection costs 0.2 s with the GIL held once torch is imported, so
            # it runs only where reference counting did not free the weights.
            gc.collect()
        if importlib.util.find_spec("torch") is not None:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        give_back_freed_memory()  # else glibc kept hundreds of MB a GGUF's load freed

    def _ended(self, new_tokens: Any) -> bool:
        """The answer's last token is one the model ends with (its generation config's,
        else its tokenizer's end token): it ended there, even at the token limit."""
        end = self._model.generation_config.eos_token_id
        end = self._tokenizer.eos_token_id if end is None else end
        ends = end if isinstance(end, list) else [end]
        return len(new_tokens) > 0 and int(new_tokens[-1]) in ends

    def _context_length(self) -> int:
        """The context the loaded model runs with (``own_context``)."""
        return own_context(self._model.config, self.config.context_length)

    def _encode(self, request: GenerationRequest) -> Any:
        """The model's inputs for ``request``: its tokens (``prompt_ids``), as a batch of one."""
        import torch

        input_ids = torch.tensor([prompt_ids(self.name, self._tokenizer, request)], dtype=torch.long)  # fmt: skip
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    def _piece_tokens(self, text: str, special: bool) -> list[int]:
        """``text`` as tokens by the loaded tokenizer (``piece_tokens``)."""
        return piece_tokens(self._tokenizer, text, special)

    def refusal_before_load(self, request: GenerationRequest) -> ContextLengthError | None:
        """The model's refusal of ``request`` as too long for its context, as the loaded
        model's generation gives it, found by its tokenizer and config alone, without its
        weights (``TokenizerAlone``); None where the prompt fits, there is no such count,
        or the loaded model refuses the request for another reason first (a prompt
        state asked). A GGUF file as ``model_id`` is not counted: transformers reads its
        whole metadata for its config, and again at the load (8.2 s, and 5.9 s for its
        tokenizer, of the tiny 32,000-token GGUF's 17 s load, 2 cores shared): a prompt
        that fits would pay for it twice."""
        assert self.config.model_id is not None
        if request.prompt_state or _local_or_hub(self.config.model_id)[1]:
            return None
        return self._alone.refusal(self.config, self.weights_stamp(), request)

    def _written(self, ids: list[int], special: bool) -> str:
        """``ids`` as text, their special tokens written or, not ``special``, left out."""
        text: str = self._tokenizer.decode(ids, skip_special_tokens=not special)
        return text

    def _streamed(
        self, request: GenerationRequest, n_prompt: int, continues: bool
    ) -> Callable[[Any], bool]:
        """The check run after each token that gives ``request.on_text`` the answer's text
        as it is generated (:class:`~routerllm.backends.hf_streaming.LiveDecoding`), decoded
        as :meth:`generate` decodes the final text. Not for a stop with control-token text,
        which cuts the answer where its written text, not its text, holds it."""
        from routerllm.backends.hf_streaming import LiveDecoding, cleans_spaces

        assert request.on_text is not None
        tokenizer = self._tokenizer

        def text(input_ids: Any) -> str:
            alone: str = tokenizer.decode(input_ids[0, n_prompt:], skip_special_tokens=True)
            return _continuation(tokenizer, input_ids[0], n_prompt, alone) if continues else alone

        live = LiveText(request.on_text, request.stop)
        return LiveDecoding(live, text, cleans_spaces(tokenizer), n_prompt)

    def generate(self, request: GenerationRequest) -> Completion:
        import torch

        refuse_prompt_state(request, self.name, "transformers")
        self.load()
        sampling = resolve_sampling(request, self.generation)
        inputs = self._encode(request)
        n_prompt = int(inputs["input_ids"].shape[-1])
        if n_prompt == 0:
            raise empty_prompt(self.name)
        limit = self._context_length()
        if (refused := too_long(self.name, n_prompt, limit, self.config.context_length, False)) is not None:  # fmt: skip
            raise refused
        inputs = {k: v.to(self._model.device) for k, v in inputs.items()}
        do_sample = sampling.temperature > 0
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": min(sampling.max_new_tokens, limit - n_prompt),
            "do_sample": do_sample,
            "repetition_penalty": sampling.repetition_penalty,
            "pad_token_id": self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
        }
        continues = request.raw or bool(request.response_prefix)  # the answer continues a text
        controls = control_stops(request.stop, self._piece_tokens)
        criteria: list[Any] = []
        if request.stop:  # generation ends at a stop, not at max_new_tokens past it
            criteria.append(_stop_at(self, n_prompt, request.stop, continues, controls))
        if request.on_text is not None and not controls:  # a control stop: whole at the end
            criteria.append(_criterion(self._streamed(request, n_prompt, continues)))
        if (cancel := Cancellation()).active:  # the server's: its client may leave
            criteria.append(_criterion(lambda _ids: cancel()))
        if criteria:
            gen_kwargs["stopping_criteria"] = criteria
        if do_sample:
            gen_kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
            # unset, transformers' own: the model's generation_config.json top_k (or 50)
            if sampling.top_k is not None:
                gen_kwargs["top_k"] = sampling.top_k
            if sampling.min_p is not None:
                gen_kwargs["min_p"] = tempered_min_p(sampling.min_p, sampling.temperature)
        # A seed is the request's alone: torch's generator is put back after it, else each
        # unseeded answer after it followed from that seed, the same in every process.
        seed = sampling.seed if do_sample else None
        start = time.perf_counter()
        try:
            gpus = _model_gpus(self._model)
            with torch.random.fork_rng(gpus, seed is not None), torch.inference_mode():
                if seed is not None:  # the generators fork_rng puts back alone: torch's
                    # manual_seed seeded every GPU's, the others' left at this seed
                    torch.random.default_generator.manual_seed(seed)
                    for device in gpus:
                        with torch.cuda.device(device):
                            torch.cuda.manual_seed(seed)
                out = self._model.generate(**inputs, **gen_kwargs)
        except RuntimeError as e:
            raise BackendError(f"transformers generation failed for {self.name!r}: {e}") from e
        latency = time.perf_counter() - start
        new_tokens = out[0, n_prompt:]
        # the answer ends before the earliest stop that holds control-token text, matched
        # against the answer written with its special tokens
        at = written_stop(new_tokens.tolist(), controls, self._written) if controls else None
        answer = new_tokens if at is None else new_tokens[: at[0]]
        text = self._tokenizer.decode(answer, skip_special_tokens=True)
        if continues:
            text = _continuation(self._tokenizer, out[0, : n_prompt + len(answer)], n_prompt, text)
        text = text if at is None else text[: len(text) - at[1]]
        cut = len(new_tokens) >= gen_kwargs["max_new_tokens"] and not self._ended(new_tokens)
        finish = "length" if cut and at is None else "stop"
        # Stop sequences are applied to the text, after generating up to the limit: an
        # answer that ends at one stopped there, it was not cut by the limit.
        if (stopped := cut_at_stop(text, request.stop)) != text:
            text, finish = stopped, "stop"
        if cancel.stopped:
            finish = CANCELLED
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=n_prompt,
            # the end token it ended at is no token of the answer, as llama.cpp counts
            # (and OpenAI-style usage bills): its forward pass is in the measured energy
            completion_tokens=len(new_tokens) - int(self._ended(new_tokens)),
            latency_s=latency,
            finish_reason=finish,
        )


def tempered_min_p(min_p: float, temperature: float) -> float:
    """The min_p that keeps, in transformers' distribution after the ``temperature``,
    the tokens that ``min_p`` keeps in llama.cpp's, which filters before it: a token
    with p / p_max >= min_p at temperature 1 has (p / p_max) ** (1 / T) >= min_p ** (1 / T)
    at T. So one setting keeps the same tokens on both local backends."""
    return float(min_p ** (1 / temperature))


def _continuation(tokenizer: Any, ids: Any, n_prompt: int, alone: str) -> str:
    """The text of ``ids[n_prompt:]`` as it continues the prompt, whose last tokens
    are decoded with it and then taken off: a SentencePiece tokenizer (Llama's,
    Mistral's, Phi-3's) drops the leading space of a text's first token, so the
    answer decoded ``alone`` lost its own ("def sort" + "x" read "def sortx"). ``alone``
    where the two decodings do not line up."""
    context = ids[max(0, n_prompt - 8) : n_prompt]
    head = tokenizer.decode(context, skip_special_tokens=True)
    whole = tokenizer.decode(ids[max(0, n_prompt - 8) :], skip_special_tokens=True)
    return whole[len(head) :] if head and whole.startswith(head) else alone


def _stop_at(
    backend: HFBackend,
    n_prompt: int,
    stops: Sequence[str],
    continues: bool,
    controls: tuple[str, ...],
) -> Any:
    """A stopping criterion: the answer so far holds one of ``stops`` (transformers' own
    ``stop_strings`` cannot read every tokenizer's vocab). Only the answer's last tokens
    are decoded at each step: a stop of n characters spans at most 4n tokens (bytes).
    An answer that ``continues`` a text is read as its returned text is, leading space
    kept (:func:`_continuation`): read without it, a stop " x" at its first token went
    unseen, and generation ran on to ``max_new_tokens``. It also holds when the answer,
    written with its special tokens, holds one of ``controls``
    (:func:`~routerllm.backends.base.control_stops`)."""
    tokenizer = backend._tokenizer
    tail = stop_tail(stops)

    def done(input_ids: Any) -> bool:
        start = max(n_prompt, input_ids.shape[-1] - tail)
        text = tokenizer.decode(input_ids[0, start:], skip_special_tokens=True)
        if continues:
            text = _continuation(tokenizer, input_ids[0], start, text)
        return any(stop in text for stop in stops) or bool(
            controls and holds_written_stop(input_ids[0, n_prompt:], controls, backend._written)
        )

    return _criterion(done)


def _criterion(done: Callable[[Any], bool]) -> Any:
    """A transformers stopping criterion: generation ends once ``done(input_ids)``."""
    import torch
    from transformers import StoppingCriteria

    class Criterion(StoppingCriteria):  # type: ignore[misc]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full(
                (input_ids.shape[0],), done(input_ids), dtype=torch.bool, device=input_ids.device
            )

    return Criterion()
