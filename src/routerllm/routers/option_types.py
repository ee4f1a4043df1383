"""The types a router's options must have, read from its constructors' annotations:
a clear error naming the option (``create_router`` checks every router's options with
``check_option_types`` before it builds one)."""

from __future__ import annotations

import inspect
import json
import numbers
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from routerllm.exceptions import RouterLLMError, did_you_mean

if TYPE_CHECKING:
    from routerllm.routers.base import Router

_ANNOTATION_TYPES: dict[str, tuple[type, ...]] = {
    "int": (numbers.Integral,), "float": (numbers.Real,), "str": (str,), "bool": (bool,),
    "None": (type(None),),
}  # fmt: skip
_WANTED = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
           "None": "null"}  # fmt: skip


_NOT_OPTIONS = ("self", "models", "seed", "loaded_from")  # given by create_router, load_router


def option_annotations(cls: type[Router]) -> dict[str, Any]:
    """The router's options and their annotations: its constructor's keyword arguments
    and, where it passes others on through ``**kw``, its base classes' (a subclass's
    annotation wins)."""
    annotations: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        parameters = inspect.signature(init).parameters.values()
        for p in parameters:
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in _NOT_OPTIONS:
                annotations.setdefault(p.name, p.annotation)
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return annotations


def check_option_types(cls: type[Router], options: dict[str, Any]) -> None:
    """A clear error naming the option when it is not one of the router's (listing
    them), or when its type does not fit its annotation (``option_annotations``).
    Types are checked where the annotation is made only of int, float, str, bool and
    None, and of ``Sequence[...]`` and ``Mapping[str, ...]`` of those; the constructors
    check the rest and the ranges."""
    annotations = option_annotations(cls)
    if unknown := [key for key in options if key not in annotations and key not in _NOT_OPTIONS]:
        raise unknown_options(cls, unknown)
    for key, value in options.items():
        annotation: Any = annotations.get(key, "")
        if not isinstance(annotation, str):  # postponed annotations are strings
            annotation = str(getattr(annotation, "__name__", ""))
        words = [word.strip() for word in annotation.split("|")]
        if not all(_wanted(word) for word in words):
            continue
        if not any(_fits(value, word) for word in words):
            wanted = " or ".join(_wanted(word) or "" for word in words)
            raise RouterLLMError(
                f"bad options for router {cls.name!r}: option {key!r} must be {wanted}, "
                f"got {_shown(value)}"
            )


def unknown_options(cls: type[Router], unknown: list[str]) -> RouterLLMError:
    """The error for ``unknown`` options of the router, listing those it takes."""
    annotations = option_annotations(cls)
    valid = f"its options are {', '.join(sorted(annotations))}" if annotations else "it takes none"  # fmt: skip
    meant = did_you_mean(unknown[0], annotations) if len(unknown) == 1 else ""
    return RouterLLMError(
        f"bad options for router {cls.name!r}: unknown option{'s' * (len(unknown) > 1)} "
        f"{', '.join(map(repr, unknown))}{meant}; {valid}"
    )


_SEQUENCE = re.compile(r"Sequence\[(\w+)\]")
_MAPPING = re.compile(r"Mapping\[str, (\w+)\]")


def _wanted(word: str) -> str | None:
    """What an annotation word accepts, in words; None for one not checked here."""
    if word in _WANTED:
        return _WANTED[word]
    if (m := _SEQUENCE.fullmatch(word)) and m.group(1) in _WANTED:
        return f"an array of {_WANTED[m.group(1)].removeprefix('an ').removeprefix('a ')}s"
    if (m := _MAPPING.fullmatch(word)) and m.group(1) in _WANTED:
        return f"an object of {_WANTED[m.group(1)].removeprefix('an ').removeprefix('a ')}s"
    return None


def _fits(value: object, word: str) -> bool:
    """Whether ``value`` is of the annotation word's type (a bool only where it says bool)."""
    if word in _ANNOTATION_TYPES:
        return isinstance(value, _ANNOTATION_TYPES[word]) and (
            word == "bool" or not isinstance(value, bool)
        )
    if m := _SEQUENCE.fullmatch(word):
        is_array = isinstance(value, np.ndarray) and value.ndim == 1
        return (isinstance(value, list | tuple) or is_array) and all(
            _fits(v, m.group(1))
            for v in value  # type: ignore[attr-defined]
        )
    if m := _MAPPING.fullmatch(word):
        return isinstance(value, Mapping) and all(
            isinstance(k, str) and _fits(v, m.group(1)) for k, v in value.items()
        )
    return False


def _shown(value: object) -> str:
    try:
        return json.dumps(value)[:100]
    except (TypeError, ValueError):
        return repr(value)[:100]
