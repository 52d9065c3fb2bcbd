"""YAML that remembers where things were written.

PyYAML's ``SafeLoader`` returns plain dicts and lists, which forget their positions; error
messages need them. ``load_yaml`` returns ``YamlMap`` and ``YamlList`` instead, which carry
the ``Mark`` (file, 1-based line and column) of every key, value and item. On top of YAML it
refuses duplicate keys (YAML keeps the last one silently) and replaces ``${ENV.NAME}`` in
strings with the environment variable's value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ._errors import ConfigError

__all__ = ["Mark", "YamlMap", "YamlList", "PositionLoader", "load_yaml", "to_plain"]

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Anything written ``${...}`` in a string must be an environment reference.
_REFERENCE = re.compile(r"\$\{(?P<body>[^}]*)(?P<close>\}?)")
_ENV_BODY = re.compile(r"ENV\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Mark:
    """Where a node starts: file name and 1-based line and column.

    For scalars, ``style`` is YAML's (None for plain, ``'`` ``"`` ``|`` ``>``) and ``raw`` is
    the scalar's text as written, so a position inside its value can be found again.
    """

    file: str
    line: int
    column: int
    style: str | None = None
    raw: str | None = field(default=None, repr=False, compare=False)

    def locate(self, offset: int) -> tuple[int, int]:
        """The file's line and column of the character at ``offset`` in this scalar's value.

        Exact for one-line plain and quoted scalars; for multi-line ones it walks the written
        lines, counting each line break as one character, which is close but not exact when
        YAML folded blank lines or the text holds escapes.
        """
        if self.raw is None:
            return self.line, self.column
        pieces = list(self._written_lines())
        for index, (line, column, text) in enumerate(pieces):
            if offset <= len(text) or index == len(pieces) - 1:
                return line, column + max(0, min(offset, len(text)))
            offset -= len(text) + 1
        return self.line, self.column  # an empty block scalar

    def _written_lines(self) -> Iterator[tuple[int, int, str]]:
        """(line, column where its text starts, text) for each written line of the scalar."""
        assert self.raw is not None
        lines = self.raw.split("\n")
        if self.style in ("|", ">"):
            # The text starts on the line after the indicator, at the block's indentation.
            body = lines[1:]
            indent = next((len(x) - len(x.lstrip(" ")) for x in body if x.strip()), 0)
            for number, text in enumerate(body, start=self.line + 1):
                yield number, indent + 1, text[indent:]
            return
        quote = 1 if self.style in ("'", '"') else 0
        yield self.line, self.column + quote, lines[0][quote:]
        for number, text in enumerate(lines[1:], start=self.line + 1):
            stripped = text.lstrip(" \t")
            yield number, len(text) - len(stripped) + 1, stripped


class YamlMap(dict):  # type: ignore[type-arg]
    """A mapping with the marks of the mapping itself, of each key and of each value."""

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.key_marks: dict[Any, Mark] = {}
        self.value_marks: dict[Any, Mark] = {}

    def key_mark(self, key: Any) -> Mark:
        return self.key_marks.get(key, self.mark)

    def value_mark(self, key: Any) -> Mark:
        return self.value_marks.get(key, self.mark)


class YamlList(list):  # type: ignore[type-arg]
    """A sequence with the marks of the sequence itself and of each item."""

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.item_marks: list[Mark] = []

    def item_mark(self, index: int) -> Mark:
        return self.item_marks[index] if index < len(self.item_marks) else self.mark


class PositionLoader(yaml.SafeLoader):
    """``SafeLoader`` building ``YamlMap``/``YamlList``, refusing duplicate keys, expanding
    ``${ENV.NAME}``."""

    def __init__(self, text: str, file: str, environ: Mapping[str, str]) -> None:
        super().__init__(text)
        self.file = file
        self.environ = environ

    def mark_of(self, node: Node) -> Mark:
        start = node.start_mark
        if not isinstance(node, ScalarNode):
            return Mark(self.file, start.line + 1, start.column + 1)
        raw = start.buffer[start.index : node.end_mark.index] if start.buffer else None
        return Mark(self.file, start.line + 1, start.column + 1, node.style, raw)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        # PyYAML's scalar constructors raise plain ValueError (``!!int abc``, ``2024-13-45``).
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            mark = self.mark_of(node)
            kind = node.tag.rsplit(":", 1)[-1]
            what = repr(node.value) if isinstance(node, ScalarNode) else "this value"
            raise ConfigError(
                f"invalid YAML: cannot read {what} as {kind}",
                file=mark.file, line=mark.line, column=mark.column,
            ) from exc

    def construct_positioned_map(self, node: MappingNode) -> Iterator[YamlMap]:
        mapping = YamlMap(self.mark_of(node))
        yield mapping  # first, so aliases inside can refer to it (PyYAML's protocol)
        explicit = {id(key) for key, _ in node.value if key.tag != _MERGE_TAG}
        self.flatten_mapping(node)  # resolves ``<<: *anchor``; merged pairs come first
        from_merge: set[Any] = set()
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            key_mark = self.mark_of(key_node)
            if isinstance(key, (dict, list)):
                raise ConfigError(
                    "a mapping key must be a plain value, not a mapping or list",
                    file=key_mark.file, line=key_mark.line, column=key_mark.column,
                )
            if key in mapping and key not in from_merge:
                first = mapping.key_marks[key]
                raise ConfigError(
                    f"duplicate key {key!r}, first defined at line {first.line}",
                    file=key_mark.file, line=key_mark.line, column=key_mark.column,
                    suggestion="keep only one (YAML would silently use the last)",
                )
            # Keys written here override keys merged in from an anchor.
            if id(key_node) in explicit:
                from_merge.discard(key)
            else:
                from_merge.add(key)
            mapping[key] = self.construct_object(value_node, deep=True)
            mapping.key_marks[key] = key_mark
            mapping.value_marks[key] = self.mark_of(value_node)

    def construct_positioned_list(self, node: SequenceNode) -> Iterator[YamlList]:
        items = YamlList(self.mark_of(node))
        yield items
        for item_node in node.value:
            items.append(self.construct_object(item_node, deep=True))
            items.item_marks.append(self.mark_of(item_node))

    def construct_expanded_str(self, node: ScalarNode) -> Any:
        value = self.construct_scalar(node)
        if "${" not in value:
            return value
        value = _expand_references(value, self.mark_of(node), self.environ)
        if node.style is None:
            # A plain scalar takes the type its new text implies, as if written so:
            # ``max_versions: ${ENV.N}`` is a number when N is "50".
            tag = self.resolve(ScalarNode, value, (True, False))
            if tag != _STR_TAG:
                expanded = ScalarNode(tag, value, node.start_mark, node.end_mark)
                return self.yaml_constructors[tag](self, expanded)
        return value


PositionLoader.add_constructor("tag:yaml.org,2002:map", PositionLoader.construct_positioned_map)
PositionLoader.add_constructor("tag:yaml.org,2002:seq", PositionLoader.construct_positioned_list)
PositionLoader.add_constructor(_STR_TAG, PositionLoader.construct_expanded_str)


def _expand_references(value: str, mark: Mark, environ: Mapping[str, str]) -> str:
    """Replace each ``${ENV.NAME}`` in ``value``; anything else written ``${...}`` is refused."""

    def fail(offset: int, message: str, suggestion: str) -> ConfigError:
        line, column = mark.locate(offset)
        return ConfigError(message, file=mark.file, line=line, column=column, suggestion=suggestion)

    def replace(match: re.Match[str]) -> str:
        body = _ENV_BODY.fullmatch(match["body"])
        if not match["close"] or body is None:
            raise fail(
                match.start(),
                f"malformed environment reference {match.group()!r}",
                "write ${ENV.NAME} with NAME made of letters, digits and _",
            )
        name = body["name"]
        if name not in environ:
            raise fail(
                match.start(),
                f"environment variable {name!r} is not set",
                f"set {name} or remove the reference",
            )
        return environ[name]

    return _REFERENCE.sub(replace, value)


def load_yaml(text: str, file: str, *, environ: Mapping[str, str] | None = None) -> Any:
    """Parse one YAML document; mappings and lists come back as ``YamlMap``/``YamlList``.

    Returns None for an empty document. Raises ``ConfigError`` naming ``file``, line and
    column for syntax errors, duplicate keys and unset environment variables.
    """
    try:
        loader = PositionLoader(text, file, os.environ if environ is None else environ)
    except yaml.reader.ReaderError as exc:  # the reader checks the characters up front
        raise _reader_error(exc, text, file) from exc
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, file) from exc
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file, line=1, column=1) from exc
    finally:
        loader.dispose()


# Hints for the YAML mistakes people make most, keyed by the start of PyYAML's problem text.
_SYNTAX_HINTS = {
    "mapping values are not allowed here": (
        "check the indentation, or quote a value containing ': '"
    ),
    "found character '\\t'": "indent with spaces, not tabs",
    "expected <block end>": "check the indentation of this line against the lines above",
}


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or exc.context or "cannot parse").removeprefix("but ")
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem:
        message += f" ({exc.context}"
        if exc.context_mark is not None and exc.context_mark.line != getattr(mark, "line", None):
            message += f", line {exc.context_mark.line + 1}"
        message += ")"
    hint = next((h for start, h in _SYNTAX_HINTS.items() if problem.startswith(start)), None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return ConfigError(message, file=file, line=line, column=column, suggestion=hint)


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> ConfigError:
    line, column = _line_and_column(text, exc.position)
    char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
    message = f"character U+{ord(char[:1] or chr(0)):04X} is not allowed in YAML"
    return ConfigError(message, file=file, line=line, column=column)


def _line_and_column(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def to_plain(value: Any) -> Any:
    """The same data as plain dicts and lists, without marks."""
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    return value
