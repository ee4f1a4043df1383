"""How two records of a prompting style (``codegen.CodegenStyle`` as a run's store
keeps it: JSON) differ, and the words that say so.

Which model solves which problem depends on how it was asked, so answers made in
another style are another experiment's: a run's store refuses to mix them
(``ResultStore.check_style``), and training on another run's answers, or serving a
gate trained on them, says where they differ (``eval/transfer.py``, ``served_gate.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def style_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The fields in which two recorded styles differ, sorted. The style's name is a
    label; what is compared is how the model is asked."""
    return sorted(k for k in old.keys() | new.keys() if k != "name" and old.get(k) != new.get(k))


def style_text(style: Mapping[str, Any]) -> str:
    """A style in a few words: ``prefill mode (max_new_tokens 512)``."""
    return f"{style.get('mode')} mode (max_new_tokens {style.get('max_new_tokens')})"


def as_recorded(style: Mapping[str, Any]) -> dict[str, Any]:
    """``style`` as a store records it (JSON: a tuple of stop sequences is a list)."""
    return dict(json.loads(json.dumps(dict(style), sort_keys=True)))


def other_styles(
    theirs: Mapping[str, Mapping[str, Any]], ours: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Per model of ``ours`` whose style ``theirs`` records as another one: the fields
    that differ. A model ``theirs`` has no record of is left out: not known to differ."""
    differs = {
        m: style_changes(as_recorded(theirs[m]), as_recorded(style))
        for m, style in ours.items()
        if m in theirs
    }
    return {m: fields for m, fields in differs.items() if fields}


def differences_text(
    theirs: Mapping[str, Mapping[str, Any]],
    ours: Mapping[str, Mapping[str, Any]],
    differs: Mapping[str, list[str]],
    here: str,
) -> str:
    """``differs`` (``other_styles``) in words, models asked alike grouped: ``a, b in
    complete mode (max_new_tokens 8), {here} in chat mode (max_new_tokens 8): differs
    in instruction, mode, stop``; clauses of other groups joined by ``; ``."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for m, fields in differs.items():
        key = (style_text(theirs[m]), style_text(ours[m]), ", ".join(fields))
        groups.setdefault(key, []).append(m)
    return "; ".join(
        f"{', '.join(models)} in {there}, {here} in {now}: differs in {fields}"
        for (there, now, fields), models in groups.items()
    )
