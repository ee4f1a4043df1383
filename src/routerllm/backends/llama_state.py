"""A llama.cpp model's own hidden state of a prompt, read while it processes the prompt.

llama-cpp-python gives hidden states only in its embedding mode, which runs the
output head on every prompt token (1.39x the prompt's processing time for the
0.5B Qwen here). Instead, :class:`PromptState` hooks llama.cpp's graph
evaluation callback (``cb_eval``) and copies the output of one transformer
layer (``l_out-<i>``) for every token as the model computes it anyway: the
generation is unchanged and the model does no extra work; calling back into
Python for every graph node costs about 6.5 % of the 0.5B's generation time
(``benchmarks/prompt_state_cost.py``, 1.065x on 2 cores), for every later request on the model
too, since the callback stays with its context. The layer is the last one whose
output exists for every token (``n_layer - 2``: llama.cpp computes the final
layer only for the tokens it must predict from). The tensor layout read here is
that of the llama.cpp which llama-cpp-python 0.3.16 (the pinned version) builds.

A prompt's state is the mean of its tokens' rows, kept by position. The backend
reads every prompt whole from an empty cache (``LlamaCppBackend.generate``), so
all of them are computed for the request itself; a prompt whose start
llama-cpp-python reused from the previous request's cache would still get the
rows of that start from the earlier request.

With the callback attached, the Python code that runs while llama.cpp computes
is the callback's, and ctypes drops an exception raised there: a generation on
such a model runs in :meth:`PromptState.guarded`, which defers Ctrl-C to the
next token (``backends/interrupts.py``) and re-raises what went wrong in the
callback.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from typing import Any

import numpy as np

from routerllm.backends.interrupts import between_tokens, deferred_interrupts
from routerllm.exceptions import BackendError

GGML_TYPE_F32 = 0


class _Tensor(ctypes.Structure):
    """The head of ggml's ``struct ggml_tensor`` (ggml.h of the llama.cpp that
    llama-cpp-python 0.3.16 builds), up to its name."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
    ]


class PromptState:
    """Attached to a ``llama_cpp.Llama``: its context is rebuilt with an evaluation
    callback that records one layer's output by token position."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._llm = llm
        n_layer = int(llama_cpp.llama_model_n_layer(llm._model.model))
        if n_layer < 2:
            raise BackendError("this model has too few layers to read a prompt state from")
        self.layer = n_layer - 2
        self._name = f"l_out-{self.layer}".encode()
        # grown as positions are reached (a long context's full table would be large)
        self._rows = np.zeros((512, int(llm.n_embd())), dtype=np.float32)
        self._seen = np.zeros(512, dtype=bool)
        params = llm.context_params
        if params.n_ubatch < params.n_batch:
            raise BackendError("reading prompt states needs n_ubatch >= n_batch")
        self._error: Exception | None = None  # raised in the callback, re-raised after it
        self._callback = llama_cpp.ggml_backend_sched_eval_callback(self._on_tensor)
        # kept referenced by self: llama.cpp holds a raw pointer
        before, params.cb_eval = params.cb_eval, self._callback
        try:
            context = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        except ValueError as e:  # made beside the one in use: both held for a while
            params.cb_eval = before
            raise BackendError(
                f"reading the model's prompt state makes a second context of {params.n_ctx} "
                f"tokens beside its own ({e}), and there is not the memory for both; lower "
                f"the model's context_length in the config, or free memory"
            ) from e
        llm._ctx.close()  # the old context's own later close is then a no-op
        # freed by Llama.close() like the old one, before the model it uses
        llm._ctx = llm._stack.enter_context(contextlib.closing(context))
        llm.n_tokens = 0  # the new context's cache is empty

    def detach(self) -> None:
        """Let go of its model, closed: the model's context params keep this state's
        callback, so the two would be a cycle only a full garbage collection frees."""
        self._llm = None

    def _on_tensor(self, tensor: int, ask: bool, user_data: int) -> bool:
        try:
            return self._read(tensor, ask)
        except Exception as e:  # ctypes would drop it: kept for guarded() to raise
            self._error = self._error or e
            return True

    def _read(self, tensor: int, ask: bool) -> bool:
        t = ctypes.cast(tensor, ctypes.POINTER(_Tensor)).contents
        if t.name != self._name:
            return not ask
        if ask:
            return True
        n_embd, n_tokens = int(t.ne[0]), int(t.ne[1])
        if t.type != GGML_TYPE_F32 or int(t.nb[1]) != 4 * n_embd or not t.data:
            return True  # not a layout this reader knows; state() reports it missing
        start = int(self._llm.n_tokens)  # llama-cpp-python advances it after the decode
        rows = np.ctypeslib.as_array(
            ctypes.cast(t.data, ctypes.POINTER(ctypes.c_float)), shape=(n_tokens, n_embd)
        )
        end = start + n_tokens
        if end > len(self._rows):
            grown = max(end, 2 * len(self._rows))
            self._rows = np.resize(self._rows, (grown, self._rows.shape[1]))
            self._seen = np.concatenate([self._seen, np.zeros(grown - len(self._seen), bool)])
        self._rows[start:end] = rows
        self._seen[start:end] = True
        self._seen[end:] = False  # later positions belong to an older sequence
        return True

    @contextlib.contextmanager
    def guarded(self) -> Iterator[Any]:
        """Around a generation on this model (the callback stays attached to every
        later one): Ctrl-C is deferred (:func:`routerllm.backends.interrupts.deferred_interrupts`)
        and raised between tokens by the yielded stopping criteria, which never stop
        the generation otherwise; an exception raised in the callback is re-raised as a
        BackendError, between tokens or at the end. Where the generation ends in another
        exception (Ctrl-C, a failed decode), the callback's error goes with it, as its
        context: kept, it was raised by the next request, which had none."""
        try:
            with deferred_interrupts() as interrupted:
                yield between_tokens(interrupted, self._raise_error)
        except BaseException as e:
            error, self._error = self._error, None
            if error is not None and e.__context__ is None:
                e.__context__ = error
            raise
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise BackendError(f"reading the prompt state failed: {error}") from error

    def state(self, n_prompt: int) -> tuple[float, ...]:
        """The mean row over the first ``n_prompt`` positions of the last request."""
        if n_prompt < 1 or not self._seen[:n_prompt].all():
            raise BackendError(
                f"llama.cpp did not expose layer {self.layer}'s output for the whole prompt "
                f"(tensor {self._name.decode()!r}); this model's graph is not supported"
            )
        return tuple(float(x) for x in self._rows[:n_prompt].mean(axis=0))
