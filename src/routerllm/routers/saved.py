"""Loading a router saved with ``Router.save``: its ``config.json`` and
``weights.npz`` checked (format, digests, models, option types, the encoder's weights:
``encoder_weights``), the router rebuilt
with the config's options where they may replace the saved ones, and a router that
learned nothing per model (the policy router) rebuilt on another config's models.
A broken checkpoint is one clear error, never a traceback."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routerllm.checks import is_integer, json_kind
from routerllm.exceptions import ConfigError, RouterLLMError, UnknownNameError, one_line
from routerllm.files import NPZ_DAMAGE, named_weights, read_whole, sha256_of
from routerllm.path_checks import refuse_special_file, what_is
from routerllm.routers.base import (
    FORMAT_VERSION,
    MODEL_NAMES_ARRAY,
    CandidateModel,
    Router,
    check_models,
    check_option_names,
    create_router,
)
from routerllm.routers.encoder_weights import RECORD, check_encoder_weights

logger = logging.getLogger(__name__)

#: Learned options that ``routerllm train`` has a flag of the same name for.
TRAIN_FLAGS = frozenset({"encoder", "mode"})
#: What to do about a saved router's file that cannot be read.
AGAIN = "save or train the router again"


def load_router(
    directory: str | Path,
    models: Sequence[CandidateModel],
    options: Mapping[str, Any] | None = None,
) -> Router:
    """Rebuild a router saved with ``Router.save``; fails clearly on a broken checkpoint.
    ``options`` (a config's ``router.options``) replace the saved options of the same
    name, e.g. a policy router's ``policy_map``. A save that lands in the folder while
    it is read (another process's, which loads take no lock against) is read again, as
    saved now (``read_whole``)."""
    config = Path(directory) / "config.json" if isinstance(directory, str | os.PathLike) else None
    return read_whole(config, lambda: _load_router(directory, models, options))


def _load_router(
    directory: str | Path,
    models: Sequence[CandidateModel],
    options: Mapping[str, Any] | None,
) -> Router:
    if not isinstance(directory, str | os.PathLike):
        raise RouterLLMError(f"a saved router is a folder path, got {directory!r}")
    if options is not None and not isinstance(options, Mapping):
        raise RouterLLMError(f"a saved router's options are a mapping, got {options!r}")
    overrides = dict(options or {})
    check_option_names(overrides)
    check_models(models)
    path = Path(directory)
    # its config.json, a data file or a named pipe: "[Errno 20] Not a directory"
    if path.exists() and not path.is_dir():
        raise RouterLLMError(
            f"{path} is {what_is(path)}: a saved router is the folder routerllm train saved "
            "it in (its --out), holding config.json"
        )
    if not path.exists():  # "no config.json" said nothing of the folder's absence
        raise RouterLLMError(
            f"{path}: no such folder (a saved router is the folder routerllm train saved it "
            f"in, its --out)"
        )
    refuse_special_file(path / "config.json", AGAIN)
    try:
        meta = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise RouterLLMError(
                f"{path}/config.json must be a JSON object (a saved router's settings), not "
                f"{json_kind(meta)}: save or train the router again"
            )
        name, saved_models = meta["router"], meta["models"]
        if not isinstance(saved_options := meta.get("options", {}), dict):
            raise TypeError(f"'options' must be a mapping of names to values, got {saved_options!r:.40}")  # fmt: skip
        options, version = dict(saved_options), meta.get("format_version", 1)
        if not is_integer(version) or version < 1:
            raise TypeError(f"'format_version' must be a whole number >= 1, got {version!r:.40}")
        if (
            not isinstance(saved_models, list)
            or not all(isinstance(n, str) for n in saved_models)
            or not isinstance(name, str)
        ):
            raise TypeError("'router' must be a name and 'models' a list of names")
    except FileNotFoundError as e:
        raise RouterLLMError(f"{path}: not a saved router (no config.json)") from e
    except KeyError as e:
        raise RouterLLMError(
            f"{path}: not a saved RouterLLM router (its config.json has no {e} setting)"
        ) from e
    except (ValueError, TypeError) as e:
        raise RouterLLMError(f"{path}/config.json is corrupt: {e}") from e
    except OSError as e:
        raise RouterLLMError(f"{path}: cannot read a saved router: {e}") from e
    except RecursionError as e:  # json's parser recurses: [[[[...]]]]
        raise RouterLLMError(f"{path}/config.json is corrupt: nested too deeply") from e
    if version > FORMAT_VERSION:
        raise RouterLLMError(
            f"{path}: saved in format {version} by a newer RouterLLM (this one reads up to "
            f"{FORMAT_VERSION}); upgrade routerllm"
        )
    from routerllm.registry import ROUTERS

    try:
        cls = ROUTERS.get(name)
    except UnknownNameError as e:
        raise RouterLLMError(f"bad {path}/config.json: {e}") from e
    by_name = {m.name: m for m in models}
    missing = [n for n in saved_models if n not in by_name]
    retargeted = bool(missing) and not cls.LEARNS_PER_MODEL
    if missing and not retargeted:
        raise RouterLLMError(
            f"{path}: router was trained for models not in this config: {', '.join(missing)}"
        )
    loading = cls.saved_options(path, options)
    if set_here := sorted(set(overrides) & (set(loading) - set(options))):
        # e.g. a feedback router's loaded_from, by which its saves merge
        raise RouterLLMError(
            f"{', '.join(set_here)}: set when the router saved in {path} is loaded, not an "
            f"option to give; remove it from the options (router.options)"
        )
    if changed := sorted(
        k
        for k in cls.learned_options(loading) & set(overrides)
        if k in loading and _as_saved(overrides[k]) != _as_saved(loading[k])
    ):
        # routerllm train sets only these; other learned options come from the API
        how = f" (routerllm train --{changed[0]} ...)" if changed[0] in TRAIN_FLAGS else ""
        raise RouterLLMError(
            f"{', '.join(changed)}: the router saved in {path} was trained with "
            f"{', '.join(f'{k} {loading[k]!r}' for k in changed)}; to use another, train it "
            f"again{how}, or remove it from the options (router.options)"
        )
    # the options given (a config's router.options) may be the bad ones
    given = f" or the options given for it ({', '.join(overrides)})" if overrides else ""
    settings = f"{path}/config.json{given}"
    try:
        options = loading
        if retargeted:  # what it learned holds for any models: this config's
            logger.info(
                "%s: router %r was trained for other models (%s); it routes this config's",
                path, name, ", ".join(missing),
            )  # fmt: skip
            options = cls.options_for_other_models(options, [m.name for m in models])
            chosen = list(models)
        else:
            chosen = [by_name[n] for n in saved_models]
            if unrouted := [m.name for m in models if m.name not in saved_models]:
                logger.warning(
                    "%s: router %r was saved for %s; it never routes to this config's %s "
                    "(train or save it again with %s to route to %s)",
                    path, name, ", ".join(saved_models), ", ".join(unrouted),
                    "that model" if len(unrouted) == 1 else "those models",
                    "it" if len(unrouted) == 1 else "them",
                )  # fmt: skip
        router = create_router(name, chosen, meta.get("seed", 0), **{**options, **overrides})
    except (ConfigError, UnknownNameError) as e:
        raise RouterLLMError(f"bad {settings}: {e}") from e
    except RouterLLMError as e:
        if type(e) is not RouterLLMError:  # a missing package or model keeps its kind
            raise
        raise RouterLLMError(f"bad {settings}: {e}") from e
    # before its weights are read: a frozen-mode classifier builds its encoder to take them
    check_encoder_weights(router, path, meta.get(RECORD))
    weights = named_weights(path)  # weights.previous.npz after a save cut short
    refuse_special_file(weights, AGAIN)
    # Routers saved before the digest was recorded (same format version) have no
    # "weights_sha256" key: still loaded, their arrays checked by set_state only.
    # A recorded None means the router was saved without weights.
    recorded, expected = "weights_sha256" in meta, meta.get("weights_sha256")
    if recorded and expected is not None and not weights.exists():
        raise RouterLLMError(f"{path}: its trained weights ({weights.name}) are missing")
    if (recorded and expected is None) or not weights.exists():
        if not router.is_trained:  # one that learns is never saved untrained
            raise RouterLLMError(
                f"{path}: router {name!r} learns, but no trained weights were saved with it "
                f"(config.json edited by hand?): save or train the router again"
            )
        return router
    try:
        if recorded and sha256_of(weights) != expected:
            raise RouterLLMError(
                f"{weights} does not match {path}/config.json (an interrupted save, or a file "
                f"changed by hand): save or train the router again"
            )
        with np.load(weights) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, *NPZ_DAMAGE) as e:
        raise RouterLLMError(f"{weights} is corrupt (not a readable .npz archive)") from e
    except OSError as e:
        raise RouterLLMError(f"cannot read {weights}: {e}") from e
    # Routers saved before format 2, or whose arrays do not run over the models, have none.
    columns = arrays.pop(MODEL_NAMES_ARRAY, None)
    if columns is not None and (columns.ndim != 1 or columns.dtype.kind != "U"):
        raise RouterLLMError(
            f"{weights} is corrupt: its {MODEL_NAMES_ARRAY} array is not a list of model names "
            f"(shape {columns.shape}, {columns.dtype}): save or train the router again"
        )
    if columns is not None and columns.tolist() != saved_models:
        raise RouterLLMError(
            f"{path}/config.json's models ({', '.join(saved_models)}) do not match the weights "
            f"it was saved with, which are for {', '.join(map(str, columns.tolist()))} in that "
            f"order (config.json edited by hand?): put that list back in config.json, or train "
            f"the router again"
        )
    try:
        router.set_state(arrays if retargeted else _in_model_order(router, arrays, saved_models))
    except (ConfigError, UnknownNameError) as e:  # e.g. the saved encoder spec
        raise RouterLLMError(f"bad {path}/config.json: {e}") from e
    except KeyError as e:
        raise RouterLLMError(f"{weights} is corrupt: no array {e}") from e
    except ValueError as e:
        raise RouterLLMError(f"{weights} does not fit the router: {one_line(e)}") from e
    except RouterLLMError as e:
        if type(e) is not RouterLLMError:
            raise
        raise RouterLLMError(f"{weights}: {e}") from e
    if not recorded:
        logger.warning(
            "%s records no weights digest: %s was not checked", path / "config.json", weights
        )
    router.check_loaded(path)
    return router


def _in_model_order(
    router: Router, arrays: dict[str, np.ndarray], saved: list[str]
) -> dict[str, np.ndarray]:
    """The saved arrays with their model columns in ``router``'s order: they were saved in
    the order of the models then, and the config's tiers and sizes may sort them
    otherwise now. Arrays of the wrong width are left for ``set_state`` to refuse."""
    order = [saved.index(n) for n in router.model_names]
    if order == sorted(order):
        return arrays
    return {
        k: v[..., order] if k in router.MODEL_AXIS_ARRAYS and v.shape[-1:] == (len(order),) else v
        for k, v in arrays.items()
    }


def _as_saved(value: object) -> object:
    """An option's value as its config.json holds it (a tuple as a list), to compare."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return value
