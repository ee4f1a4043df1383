"""The reads of a model's files that counting a request's prompt makes before the model
loads (a llama.cpp GGUF's vocabulary opened ``vocab_only``, a split model's first part's
key-values written as a GGUF of no tensors, a transformers model's tokenizer and config
read), measured by the request's meter as its ``model_loading``, since 2026-12-07: a
refused request spent them though no model loaded, and an answered one before its load.

``reads_of_request`` opens one request's account (``RequestAnswering._run``, in the
request's thread); ``metered_read`` wraps each read where it is made, and only there: a
count from a vocabulary or tokenizer already open (0.2-23 ms) is not metered, a block of
CodeCarbon's costing 1-4 ms of its own. The read is charged to the request that made it;
a later request that counts with what it opened spends nothing on it. Outside a request
(a benchmark's count, a test's) a read is not measured.

A read is no load: a request's account also keeps the models it loaded
(``note_load``), and its logged row says whether its model did
(``RequestRecord.model_loaded``), so that the report's count of loads, its replay of the
cache and the predictor's load energy take a read's ``model_loading`` for none (its
energy is loading's all the same)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routerllm.carbon.meter import CarbonMeter, Measurement

#: The component a read is measured as: it reads the model's files, as a load does
#: (a transformers model's load takes over the tokenizer it read).
READ_COMPONENT = "model_loading"

_request = threading.local()


class Reads:
    """One request's reads so far, by model, each measured by ``meter``."""

    def __init__(self, meter: CarbonMeter) -> None:
        self.meter = meter
        self._by_model: dict[str, Measurement] = {}
        #: the models the request loaded (``note_load``): a read of one is no load of it
        self.loaded: set[str] = set()

    def add(self, model: str, read: Measurement) -> None:
        before = self._by_model.get(model)
        self._by_model[model] = read if before is None else before.plus(read)

    def take(self, model: str) -> Measurement | None:
        """What the reads for ``model`` spent (then forgotten); None where none was made."""
        return self._by_model.pop(model, None)

    def take_all(self) -> Measurement | None:
        """What every read not yet taken spent, together (then forgotten)."""
        reads, self._by_model = list(self._by_model.values()), {}
        if not reads:
            return None
        total = reads[0]
        for read in reads[1:]:
            total = total.plus(read)
        return total


@contextmanager
def reads_of_request(meter: CarbonMeter) -> Iterator[Reads]:
    """Within the block (one request's answer, in this thread), each read made for a count
    (``metered_read``) is measured by ``meter`` and kept in the ``Reads`` yielded. Nested
    blocks share the outer one's."""
    outer: Reads | None = getattr(_request, "reads", None)
    if outer is not None:
        yield outer
        return
    _request.reads = reads = Reads(meter)
    try:
        yield reads
    finally:
        _request.reads = None


def current_reads() -> Reads | None:
    """This thread's request's reads (``reads_of_request``); None outside a request."""
    reads: Reads | None = getattr(_request, "reads", None)
    return reads


def note_load(model: str) -> None:
    """This thread's request loaded ``model`` (a load that worked, measured as its own
    ``model_loading``); nothing outside a request."""
    reads = current_reads()
    if reads is not None:
        reads.loaded.add(model)


def loaded_for_request(model: str) -> bool | None:
    """Whether this thread's request loaded ``model`` (``note_load``): its row's
    ``model_loaded``. None outside a request: not known there (the row then reads as an
    older one's)."""
    reads = current_reads()
    return None if reads is None else model in reads.loaded


def untaken_reads() -> Measurement | None:
    """What this thread's request's reads not yet charged to a model's loading spent
    (``Reads.take_all``: the reads for models that did not run); None where none."""
    reads = current_reads()
    return None if reads is None else reads.take_all()


@contextmanager
def metered_read(model: str) -> Iterator[None]:
    """Wraps a read of ``model``'s files made for a count: measured (as
    ``READ_COMPONENT``) and added to this thread's request's reads, also where it raised;
    not measured outside a request. The meter's turn is taken for it (CodeCarbon measures
    one block at a time): the caller holds no lock a measured block may wait for (a
    model's, the manager's, a tokenizer's)."""
    reads = current_reads()
    if reads is None:
        yield
        return
    slot = None
    try:
        with reads.meter.measure(READ_COMPONENT) as slot:
            yield
    finally:
        if slot is not None and hasattr(slot, "result"):
            reads.add(model, slot.result)
