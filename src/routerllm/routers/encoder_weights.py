"""Which encoder weights a saved router learned on. A router's options name its encoder
(``minilm``, ``static``, ``hf:/path``), and the files behind a name can change: the
packaged MiniLM upgraded, an ``hf:`` folder written again, WordLlama's table replaced.
A frozen-mode classifier's head, or an outcome router, then routed on another
encoder's embeddings of the same width without a word.

So ``Router.save`` records in ``config.json`` (``encoder_weights``) the sha256 of the
files the encoder is made from (``Encoder.source_files``; a full-mode classifier, which
saves its fine-tuned weights itself, records its tokenizer and settings only) and the
versions of the packages they ship in, and ``load_router`` refuses the router where
they hold other weights now. The files are read only where their stat is not the
recorded one (``files_identity.files_weights``): a second load of an unchanged
encoder reads none of them, and a copy (``cp -r``, a fresh clone), another stat but the
same contents, is read once a load and loads. A router saved before 2026-12-06 records
none and loads as before; so does one whose encoder's files cannot be found (building
the encoder says why)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routerllm.exceptions import RouterLLMError

if TYPE_CHECKING:
    from routerllm.files_identity import Weights
    from routerllm.routers.base import Router

logger = logging.getLogger(__name__)

#: The ``config.json`` setting that records them.
RECORD = "encoder_weights"


def _files(router: Router) -> tuple[str, list[Path]] | None:
    """The spec of the encoder ``router`` learned on and the files it is made from."""
    from routerllm.encoders.base import encoder_files

    source = router.encoder_source()
    if source is None:
        return None
    spec, weights = source
    files = encoder_files(spec, weights)
    return None if files is None else (spec, files)


def encoder_record(router: Router) -> dict[str, Any]:
    """The ``config.json`` settings that record ``router``'s encoder's weights (none
    where it learned on no encoder's files). Where the router carries what they held
    when it was loaded or last saved (``Router.encoder_weights``) and they hold other
    weights now, it learned on those: they are recorded, and a warning says so."""
    from routerllm.encoders.base import installed_packages

    found = _files(router)
    if found is None:
        return {}
    spec, files = found
    carried = router.encoder_weights
    now = _read(spec, files, carried)
    if carried is not None and now.sha256 != carried.sha256:
        logger.warning(
            "the files of encoder %r hold other weights than when router %r was loaded or "
            "last saved; it is saved as trained on those (it will not load until they are "
            "put back, or it is trained again)",
            spec, router.name,
        )  # fmt: skip
        now = carried
    router.encoder_weights = now
    return {RECORD: {"spec": spec, "packages": installed_packages(spec), **asdict(now)}}


def encoder_sha256(router: Router) -> str | None:
    """The sha256 of the files ``router``'s encoder is made from now (None where it has
    none to tell), which a training checkpoint records: a resume on other weights behind
    the same spec is refused. A router that carries no record keeps this one, so that its
    save after the training reads them no more."""
    found = _files(router)
    if found is None:
        return None
    now = _read(found[0], found[1], router.encoder_weights)
    if router.encoder_weights is None:
        router.encoder_weights = now
    return now.sha256


def _read(spec: str, files: list[Path], recorded: Weights | None) -> Weights:
    """What the encoder's ``files`` hold (``files_weights``); one line where one cannot
    be read."""
    from routerllm.files_identity import files_weights

    try:
        return files_weights(files, recorded)
    except OSError as e:
        raise RouterLLMError(
            f"cannot read the files of encoder {spec!r} to check which weights they hold: {e}"
        ) from e


def check_encoder_weights(router: Router, path: Path, record: object) -> None:
    """Refuse ``router``, loaded from ``path``, where its encoder's files hold other
    weights than ``record`` (its ``config.json``'s ``encoder_weights``) says it learned
    on; nothing to check where there is no record, or no files to tell."""
    from routerllm.encoders.base import installed_packages
    from routerllm.files_identity import weights_from_record

    if record is None:
        return
    try:
        was = weights_from_record(record)
        assert isinstance(record, dict)  # weights_from_record refuses anything else
        spec, packages = record.get("spec"), record.get("packages")
        if not isinstance(spec, str) or not isinstance(packages, str | None):
            raise ValueError("a record of encoder weights has a spec and packages (strings)")
    except ValueError as e:
        raise RouterLLMError(
            f"{path}/config.json is corrupt ({RECORD}: {e}): save or train the router again"
        ) from e
    found = _files(router)
    if found is None:
        return
    now = _read(found[0], found[1], was)
    if now.sha256 == was.sha256:
        router.encoder_weights = now  # this stat: a save here reads them no more
        return
    stamps = dict(zip(was.files, was.stamp.split(","), strict=False))
    changed = [f for f, s in zip(now.files, now.stamp.split(","), strict=True) if stamps.get(f) != s]  # fmt: skip
    changed += [f"{f} (gone)" for f in was.files if f not in now.files]
    versions = installed_packages(found[0])
    upgraded = f"; saved with {packages}, installed now: {versions}" if versions != packages else ""
    raise RouterLLMError(
        f"{path} was trained on the embeddings of encoder {spec!r} made by other weights "
        f"than its files hold now ({', '.join(changed or now.files)} changed since: another "
        f"sha256{upgraded}), so it would route on embeddings it never learned: train the "
        f"router again, or put back the encoder's files it was trained with"
    )
