"""A config file read as YAML, every problem one readable :class:`ConfigError`: a file
too large to be a config, text that is not UTF-8 (or UTF-16 after its byte-order mark),
a key given twice, aliases that expand without end. ``routerllm.config.load_config``
validates what it reads."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from routerllm.exceptions import ConfigError

#: UTF-32's byte-order marks (PowerShell's ``Out-File -Encoding utf32`` writes one).
UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _wide_without_bom(raw: bytes) -> bool:
    """Whether ``raw`` looks UTF-16 or UTF-32 text without a byte-order mark: a quarter
    of its bytes or more are NULs (ASCII text in UTF-16 is half NULs), which YAML reads
    as UTF-8 and refuses as "unacceptable character #x0000"."""
    return not raw.startswith(UTF16_BOMS) and 0 < len(raw) <= 4 * raw.count(b"\x00")


def _load_yaml(text: str | bytes) -> Any:
    """``yaml.safe_load``, refusing a key given twice in one mapping: PyYAML keeps the
    last silently, so a second ``budgets:`` dropped the limits of the first. Bytes are
    read as YAML reads them: UTF-8, or UTF-16 after its byte-order mark.

    Read by libyaml where PyYAML was built with it (``yaml.CSafeLoader``: 1.7-2.2 ms of
    CPU for a packaged config, against 8.5-12.5 ms by PyYAML's pure-Python reader, 2
    cores at load 3, at every command's start); a document libyaml refuses is read
    again by the pure-Python loader, whose error (its words, line and column, "nested
    too deeply") or value is the answer, as it was before libyaml read configs."""
    import yaml

    fast, pure = _loaders()
    if fast is not pure:
        try:
            return _loaded(fast, text)
        except yaml.YAMLError:
            pass
    return _loaded(pure, text)


def _loaded(loader_class: Any, text: str | bytes) -> Any:
    """The single document in ``text`` read by ``loader_class`` (a ``_loaders`` class)."""
    loader = loader_class(text)  # a SafeLoader: no Python objects
    try:
        node = loader.get_single_node()
        if node is None:  # empty, or only comments
            return None
        _refuse_endless_aliases(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


@functools.cache
def _loaders() -> tuple[Any, Any]:
    """The safe loaders that refuse a key given twice: libyaml's (``yaml.CSafeLoader``;
    the pure-Python one where PyYAML was built without libyaml) and the pure-Python one."""
    import yaml
    from yaml.constructor import ConstructorError

    class UniqueKeys:
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor`: its keys may be set again after it
                key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
                try:
                    again = key in seen
                    seen.add(key)
                except TypeError:  # unhashable: the base class says so
                    continue
                if again:
                    raise ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r} (give each key once)", key_node.start_mark,
                    )  # fmt: skip
            return super().construct_mapping(node, deep)  # type: ignore[misc]

    class PureUniqueKeyLoader(UniqueKeys, yaml.SafeLoader):
        pass

    c_loader = getattr(yaml, "CSafeLoader", None)
    if c_loader is None:
        return PureUniqueKeyLoader, PureUniqueKeyLoader

    class CUniqueKeyLoader(UniqueKeys, c_loader):  # type: ignore[valid-type, misc]
        pass

    return CUniqueKeyLoader, PureUniqueKeyLoader


#: The most values a config may hold once its aliases (``*name``) are expanded: a
#: thousand times a real config's, and a "billion laughs" (nine aliases of nine aliases
#: of nine values..., 387 million values from 600 bytes) far beyond it.
MAX_YAML_VALUES = 1_000_000


def _refuse_endless_aliases(root: Any) -> None:
    """Refuse a YAML document whose aliases expand to over ``MAX_YAML_VALUES`` values,
    or that holds an alias inside the value it names (a list that holds itself), as a
    YAML error at the value that does. Such a config loaded at once, as PyYAML shares
    what an alias names, and every copy of it (``model_dump``, a router's options)
    then took gigabytes and minutes, or never ended."""
    from yaml.composer import ComposerError
    from yaml.nodes import MappingNode, SequenceNode

    sizes: dict[int, int] = {}
    inside: set[int] = set()  # the values being counted: one met again is in itself

    def size(node: Any) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in inside:
            raise ComposerError(
                None, None, "an alias (*name) inside the value it names: that value would "
                "hold itself without end", node.start_mark,
            )  # fmt: skip
        inside.add(id(node))
        if isinstance(node, MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value if isinstance(node, SequenceNode) else []
        total = 1 + sum(size(child) for child in children)
        if total > MAX_YAML_VALUES:
            raise ComposerError(
                None, None, f"its aliases (*name) expand to over {MAX_YAML_VALUES:,} values "
                f"here; write the values out, or use fewer aliases", node.start_mark,
            )  # fmt: skip
        inside.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)


#: The largest config file read: 200 times the packaged ones. A file given by mistake
#: (a dataset, a log) is refused at once: PyYAML read 50 MB in 19 s.
MAX_CONFIG_BYTES = 2**20


def read_config_yaml(file: Path) -> Any:
    """The YAML document in ``file`` (None where it is empty); every problem reading it
    becomes one ConfigError."""
    import yaml

    try:
        if (size := file.stat().st_size) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{file} is {size / 1e6:.1f} MB: a config is a few KB of YAML (at most "
                f"{MAX_CONFIG_BYTES // 2**20} MiB); give the path of the config file"
            )
        raw = file.read_bytes()
        if raw.startswith(UTF32_BOMS):  # YAML reads its mark as UTF-16's, then NULs
            raise ConfigError(f"{file}: UTF-32 text; save the config as UTF-8")
        if _wide_without_bom(raw):
            raise ConfigError(
                f"{file}: the file looks UTF-16 or UTF-32 without a byte-order mark: save it as UTF-8"
            )
        # bytes: YAML's own decoding reads the UTF-16 a Windows editor or shell may write
        data = _load_yaml(raw)
    except yaml.YAMLError as e:
        if isinstance(e, yaml.reader.ReaderError) and e.encoding != "unicode":  # undecodable
            raise ConfigError(
                f"{file}: not UTF-8 text (byte {e.position}: {e.reason}); save the config as UTF-8"
            ) from e
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{file}: malformed YAML{where}: {problem}") from e
    except OSError as e:
        raise ConfigError(f"{file}: cannot read config: {e}") from e
    except ValueError as e:  # an integer of over 4,300 digits: Python refuses to read it
        raise ConfigError(f"{file}: malformed YAML: {e}") from e
    except RecursionError as e:
        raise ConfigError(f"{file}: malformed YAML: nested too deeply") from e
    return data
