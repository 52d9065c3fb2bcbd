"""Documents against the field declarations of ``schema.yml``: types and constraints.

Fields the schema does not declare are free; a declared field may be left out unless
``required``, and may be null unless ``required``. The gateway checks what a write would store
(a create's document, an update's post-image) and answers every problem at once.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from typing import Any

from bson import Decimal128, ObjectId

from . import _values as v
from ._model import CollectionSchema

__all__ = ["validate_document"]

Problem = dict[str, str]

_TYPE_CHECKS = {
    "string": lambda x: isinstance(x, str),
    "number": lambda x: isinstance(x, (int, float, Decimal128)) and not isinstance(x, bool),
    "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "boolean": lambda x: isinstance(x, bool),
    "date": lambda x: isinstance(x, _dt.datetime),
    "objectid": lambda x: isinstance(x, ObjectId),
    "array": lambda x: isinstance(x, list),
    "object": lambda x: isinstance(x, Mapping),
    "any": lambda x: True,
}
_ARTICLE = {"array": "an array", "object": "an object", "integer": "an integer", "objectid": "an ObjectId"}


def validate_document(schema: CollectionSchema, document: Mapping[str, Any]) -> list[Problem]:
    """Every way ``document`` breaks the collection's field declarations (empty: it is valid)."""
    fields = schema.raw.get("fields") or {}
    problems: list[Problem] = []
    _check_fields(fields, document, "", problems)
    return problems


def _check_fields(fields: Mapping[str, Any], document: Mapping[str, Any], prefix: str, problems: list[Problem]) -> None:
    for name, spec in fields.items():
        path = prefix + name
        if name not in document or document[name] is None:
            if spec.get("required"):
                problems.append({"field": path, "message": "is required"})
            continue
        _check_value(spec, document[name], path, problems)


def _check_value(spec: Mapping[str, Any], value: Any, path: str, problems: list[Problem]) -> None:
    declared = spec.get("type")
    if declared is not None and not _TYPE_CHECKS[declared](value):
        problems.append({"field": path, "message": f"must be {_ARTICLE.get(declared, 'a ' + declared)}"})
        return
    if isinstance(value, (str, list)):
        if "min_length" in spec and len(value) < spec["min_length"]:
            problems.append({"field": path, "message": f"must have at least {_count(spec['min_length'], value)}"})
        if "max_length" in spec and len(value) > spec["max_length"]:
            problems.append({"field": path, "message": f"must have at most {_count(spec['max_length'], value)}"})
    if isinstance(value, str) and "pattern" in spec and re.search(spec["pattern"], value) is None:
        problems.append({"field": path, "message": f"must match the pattern {spec['pattern']!r}"})
    if v.kind(value) == v.NUMBER:
        number = value.to_decimal() if isinstance(value, Decimal128) else value
        if "min" in spec and not number >= spec["min"]:
            problems.append({"field": path, "message": f"must be at least {spec['min']}"})
        if "max" in spec and not number <= spec["max"]:
            problems.append({"field": path, "message": f"must be at most {spec['max']}"})
    if "enum" in spec and not any(v.equals(value, allowed) for allowed in spec["enum"]):
        problems.append({"field": path, "message": "must be one of " + ", ".join(repr(x) for x in spec["enum"])})
    if isinstance(value, list) and isinstance(spec.get("items"), Mapping):
        for index, item in enumerate(value):
            if item is None and not spec["items"].get("required", True):
                continue
            _check_value(spec["items"], item, f"{path}.{index}", problems)
    if isinstance(value, Mapping) and isinstance(spec.get("properties"), Mapping):
        _check_fields(spec["properties"], value, path + ".", problems)


def _count(n: int, value: str | list[Any]) -> str:
    unit = "character" if isinstance(value, str) else "item"
    return f"{n} {unit}" + ("" if n == 1 else "s")
