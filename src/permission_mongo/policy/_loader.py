"""Reads ``policy.yml`` and ``schema.yml`` into a ``PolicyConfig``.

Fail closed: every key must be known, every name must resolve, every value must have the
expected shape, or loading stops with a ``ConfigError`` naming file, line and column, saying
what is wrong and, where possible, what was probably meant.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NoReturn

from ._cel import Condition, parse_condition
from ._errors import ConditionError, ConfigError
from ._model import (
    ACTIONS,
    FIELD_TYPES,
    INTERNAL_COLLECTION_PREFIX,
    MASK_TYPES,
    CollectionSchema,
    FieldRules,
    PolicyConfig,
    Rule,
    Source,
)
from ._yaml import Mark, YamlList, YamlMap, load_yaml, to_plain

__all__ = ["load_config", "POLICY_FILE", "SCHEMA_FILE"]

POLICY_FILE = "policy.yml"
SCHEMA_FILE = "schema.yml"

_POLICY_KEYS = ("roles", "templates", "defaults", "policies")
_ROLE_KEYS = ("inherits",)
_RULE_KEYS = ("actions", "when", "fields")
_FIELDS_KEYS = ("allow", "deny", "deny_write", "mask")
_TEMPLATE_KEY = "template"  # reserved in a collection's policy; so no role may be named so
_BUILTIN_ROLE_PREFIX = "pm:"  # built-in roles such as pm:admin; they are no data roles

# Text that is one YAML string was most likely meant as a path that does not exist.
_NO_SUCH_PATH = "if this is meant as a path, no such file or directory exists"

_SCHEMA_KEYS = ("settings", "collections")
_SETTINGS_KEYS = ("default_tenant_field", "default_owner_field", "auto_timestamps")
_COLLECTION_KEYS = ("access", "fields", "versioning", "hierarchy", "indexes")
_ACCESS_KEYS = ("tenant_field", "owner_field", "client_ids")
_VERSIONING_KEYS = ("enabled", "mode", "max_versions")
_VERSIONING_MODES = ("full", "diff")
_HIERARCHY_KEYS = ("user_id_field", "manager_field")
_FIELD_SPEC_KEYS = (
    "type", "required", "max_length", "min_length", "min", "max",
    "enum", "items", "properties", "pattern", "default", "description",
)
# Constraints that only make sense for some declared types.
_CONSTRAINT_TYPES = {
    "max_length": ("string", "array"),
    "min_length": ("string", "array"),
    "min": ("number", "integer"),
    "max": ("number", "integer"),
    "pattern": ("string",),
    "items": ("array",),
    "properties": ("object",),
}


# ---------------------------------------------------------------------------------------
# Entry point and sources


def load_config(
    source: str | os.PathLike[str], *, schema: str | os.PathLike[str] | None = None
) -> PolicyConfig:
    """Load and validate a policy, and the schema that goes with it.

    ``source`` is a directory (``policy.yml`` required, ``schema.yml`` read if present), a
    policy file (a ``schema.yml`` beside it is read if present), or YAML text. ``schema``
    gives the schema explicitly, as a path or YAML text; it replaces the one found beside the
    policy. Raises ``ConfigError``.
    """
    policy_text, policy_file, schema_beside = _policy_source(source)
    if schema is not None:
        schema_text, schema_file = _schema_source(schema)
    elif schema_beside is not None and os.path.isfile(schema_beside):
        schema_text, schema_file = _read_file(schema_beside), schema_beside
    else:
        schema_text, schema_file = "", SCHEMA_FILE

    settings, collections = _read_schema(load_yaml(schema_text, schema_file), schema_file)
    policy_doc = load_yaml(policy_text, policy_file)
    return _read_policy(policy_doc, policy_file, settings, collections)


def _policy_source(source: str | os.PathLike[str]) -> tuple[str, str, str | None]:
    """(text, file name for messages, where a schema.yml beside it would be)."""
    path = _as_path(source, "<policy>")
    if path is None:
        assert isinstance(source, str)
        return source, "<policy>", None
    if os.path.isdir(path):
        policy_path = os.path.join(path, POLICY_FILE)
        if not os.path.isfile(policy_path):
            raise ConfigError(
                f"no {POLICY_FILE} in directory {path!r}",
                file=policy_path,
                suggestion=f"create {POLICY_FILE} there with 'roles' and 'policies'",
            )
        return _read_file(policy_path), policy_path, os.path.join(path, SCHEMA_FILE)
    return _read_file(path), path, os.path.join(os.path.dirname(path), SCHEMA_FILE)


def _schema_source(schema: str | os.PathLike[str]) -> tuple[str, str]:
    path = _as_path(schema, "<schema>")
    if path is None:
        assert isinstance(schema, str)
        return schema, "<schema>"
    if os.path.isdir(path):
        path = os.path.join(path, SCHEMA_FILE)
    return _read_file(path), path


def _as_path(source: str | os.PathLike[str], what: str) -> str | None:
    """The path ``source`` names, or None when it is YAML text.

    A ``str`` is text when it holds a line break or names nothing that exists; a path
    object must exist.
    """
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ConfigError(f"file not found: {path!r}", file=path)
        return path
    if not isinstance(source, str):
        raise TypeError(f"{what} must be a path or YAML text, not {type(source).__name__}")
    if "\n" in source or not os.path.exists(source):
        return None
    return source


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", file=path) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            "the file is not valid UTF-8", file=path, line=line, column=column,
            suggestion="save it as UTF-8",
        ) from exc


# ---------------------------------------------------------------------------------------
# Shared checks


def _fail(mark: Mark, message: str, suggestion: str | None = None) -> NoReturn:
    raise ConfigError(
        message, file=mark.file, line=mark.line, column=mark.column, suggestion=suggestion
    )


def _did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    if not isinstance(word, str):
        return None
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def _describe(value: object) -> str:
    """How a value reads in a message: ``got the number 3``, ``got a list``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _in(where: str) -> str:
    return f" in {where}" if where else " at the top level"


def _mapping(value: object, mark: Mark, where: str, *, empty_if_null: bool = False) -> YamlMap:
    """``value`` as a mapping. ``key:`` with nothing after it counts as ``{}`` only where an
    empty mapping grants nothing (``empty_if_null``)."""
    if value is None and empty_if_null:
        return YamlMap(mark)
    if not isinstance(value, YamlMap):
        _fail(mark, f"{where} must be a mapping, got {_describe(value)}")
    return value


def _list(value: object, mark: Mark, where: str, *, example: str) -> YamlList:
    if not isinstance(value, YamlList):
        _fail(mark, f"{where} must be a list, got {_describe(value)}", f"write {example}")
    return value


def _string(value: object, mark: Mark, where: str) -> str:
    if not isinstance(value, str):
        _fail(mark, f"{where} must be a string, got {_describe(value)}")
    return value


def _boolean(value: object, mark: Mark, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(mark, f"{where} must be true or false, got {_describe(value)}")
    return value


def _check_keys(mapping: YamlMap, known: Iterable[str], where: str) -> None:
    """Every key of ``mapping`` is a string and one of ``known``."""
    known = tuple(known)
    for key in mapping:
        mark = mapping.key_mark(key)
        if not isinstance(key, str):
            _fail(mark, f"key {_describe(key)}{_in(where)} must be a string", "quote it")
        if key not in known:
            suggestion = _did_you_mean(key, known) or f"expected one of: {', '.join(known)}"
            _fail(mark, f"unknown key {key!r}{_in(where)}", suggestion)


def _require(mapping: YamlMap, key: str, where: str, example: str) -> None:
    if key not in mapping:
        _fail(mapping.mark, f"missing {key!r}{_in(where)}", f"add it, e.g. {example}")


def _unique_strings(items: YamlList, where: str, what: str) -> list[tuple[str, Mark]]:
    """The items of a list of names, each with its mark; repeats are refused (likely typos)."""
    seen: dict[str, Mark] = {}
    for index, item in enumerate(items):
        mark = items.item_mark(index)
        name = _string(item, mark, f"each {what} in {where}")
        if name in seen:
            _fail(mark, f"{what} {name!r} is listed twice in {where}", "remove one")
        seen[name] = mark
    return list(seen.items())


def _source(mark: Mark) -> Source:
    return Source(mark.file, mark.line, mark.column)


def _field_path(value: object, mark: Mark, where: str) -> str:
    """A dotted document path: non-empty segments, none starting with ``$``."""
    path = _string(value, mark, f"a field path in {where}")
    for segment in path.split("."):
        if not segment:
            _fail(mark, f"field path {path!r} in {where} has an empty segment",
                  "write paths like 'address.city'")
        if segment.startswith("$"):
            _fail(mark, f"field path {path!r} in {where} has a segment starting with '$'",
                  "field names starting with '$' are MongoDB operators, not fields")
    return path


def _collection_name(name: object, mark: Mark, where: str) -> str:
    """A name MongoDB accepts for a collection this gateway may serve."""
    if not isinstance(name, str) or not name:
        _fail(mark, f"collection name{_in(where)} must be a non-empty string, "
                    f"got {_describe(name)}")
    if "$" in name or "\0" in name:
        _fail(mark, f"collection name {name!r}{_in(where)} contains '$' or a NUL character",
              "MongoDB does not allow them in collection names")
    if name.startswith("system."):
        _fail(mark, f"collection name {name!r}{_in(where)} starts with 'system.'",
              "system collections are MongoDB's own and cannot be served")
    if name.startswith(INTERNAL_COLLECTION_PREFIX):
        _fail(mark, f"collection name {name!r}{_in(where)} starts with {INTERNAL_COLLECTION_PREFIX!r}",
              "those are the gateway's own collections (keys, audit, idempotency) and are never served")
    return name


# ---------------------------------------------------------------------------------------
# schema.yml


def _read_schema(doc: object, file: str) -> tuple[dict[str, Any], dict[str, CollectionSchema]]:
    """The settings, and the schema of each collection it declares."""
    if doc is None:
        return {}, {}
    if not isinstance(doc, YamlMap):
        hint = "expected 'settings' and 'collections'"
        if isinstance(doc, str) and file == "<schema>":
            hint = _NO_SUCH_PATH
        _fail(Mark(file, 1, 1), f"the schema must be a mapping, got {_describe(doc)}", hint)
    _check_keys(doc, _SCHEMA_KEYS, "")
    settings = _read_settings(doc.get("settings"), doc.value_mark("settings"))
    body = _mapping(doc.get("collections"), doc.value_mark("collections"), "collections",
                    empty_if_null=True)
    collections: dict[str, CollectionSchema] = {}
    for name, spec in body.items():
        name = _collection_name(name, body.key_mark(name), "collections")
        spec = _mapping(spec, body.value_mark(name), f"collections.{name}", empty_if_null=True)
        collections[name] = _collection_schema(name, spec, settings)
    return settings, collections


def _read_settings(value: object, mark: Mark) -> dict[str, Any]:
    settings = _mapping(value, mark, "settings", empty_if_null=True)
    _check_keys(settings, _SETTINGS_KEYS, "settings")
    result: dict[str, Any] = {}
    for key in ("default_tenant_field", "default_owner_field"):
        if key in settings:
            result[key] = _optional_field_path(settings, key, "settings")
    if "auto_timestamps" in settings:
        result["auto_timestamps"] = _boolean(
            settings["auto_timestamps"], settings.value_mark("auto_timestamps"),
            "settings.auto_timestamps",
        )
    return result


def _optional_field_path(mapping: YamlMap, key: str, where: str) -> str | None:
    """A field path, or None when written as null (``tenant_field: null``: no such field)."""
    value = mapping[key]
    return None if value is None else _field_path(value, mapping.value_mark(key), f"{where}.{key}")


def _collection_schema(
    name: str, spec: YamlMap, settings: Mapping[str, Any]
) -> CollectionSchema:
    where = f"collections.{name}"
    _check_keys(spec, _COLLECTION_KEYS, where)
    tenant_field = settings.get("default_tenant_field")
    owner_field = settings.get("default_owner_field")
    client_ids = False
    if "access" in spec:
        access = _mapping(spec["access"], spec.value_mark("access"), f"{where}.access")
        _check_keys(access, _ACCESS_KEYS, f"{where}.access")
        if "tenant_field" in access:
            tenant_field = _optional_field_path(access, "tenant_field", f"{where}.access")
        if "owner_field" in access:
            owner_field = _optional_field_path(access, "owner_field", f"{where}.access")
        if "client_ids" in access:
            client_ids = _boolean(access["client_ids"], access.value_mark("client_ids"), f"{where}.access.client_ids")
    field_types: dict[str, str] = {}
    if "fields" in spec:
        fields = _mapping(spec["fields"], spec.value_mark("fields"), f"{where}.fields")
        _read_field_specs(fields, "", f"{where}.fields", field_types)
    if "versioning" in spec:
        _check_versioning(spec["versioning"], spec.value_mark("versioning"), where)
    if "hierarchy" in spec:
        _check_hierarchy(spec["hierarchy"], spec.value_mark("hierarchy"), where)
    if "indexes" in spec:
        # Free-form: the store reads them from ``raw``.
        _list(spec["indexes"], spec.value_mark("indexes"), f"{where}.indexes",
              example="indexes: [{keys: {title: 1}}]")
    return CollectionSchema(
        name=name,
        tenant_field=tenant_field,
        owner_field=owner_field,
        client_ids=client_ids,
        field_types=MappingProxyType(field_types),
        raw=to_plain(spec),
    )


def _read_field_specs(
    fields: YamlMap, prefix: str, where: str, field_types: dict[str, str] | None
) -> None:
    """Check each field spec; record declared types under dotted paths in ``field_types``.

    Only object ``properties`` are recorded: a path through an array's ``items`` matches any
    element in MongoDB, so it must never pass for a scalar path (``field_types`` is None).
    """
    for name, spec in fields.items():
        spec_where = f"{where}.{name}"
        path = prefix + _field_name(name, fields.key_mark(name), where)
        spec = _mapping(spec, fields.value_mark(name), spec_where)
        _read_field_spec(spec, spec_where, path, field_types)


def _field_name(name: object, mark: Mark, where: str) -> str:
    """One segment of a path; nesting is written with ``properties``, so no dots."""
    name = _field_path(name, mark, where)
    if "." in name:
        _fail(mark, f"field name {name!r} in {where} contains '.'",
              "declare nested fields under the parent's 'properties'")
    return name


def _read_field_spec(
    spec: YamlMap, where: str, path: str, field_types: dict[str, str] | None
) -> None:
    _check_keys(spec, _FIELD_SPEC_KEYS, where)
    declared = None
    if "type" in spec:
        mark = spec.value_mark("type")
        declared = _string(spec["type"], mark, f"{where}.type")
        if declared not in FIELD_TYPES:
            _fail(mark, f"unknown type {declared!r} in {where}",
                  _did_you_mean(declared, FIELD_TYPES)
                  or f"expected one of: {', '.join(sorted(FIELD_TYPES))}")
        if field_types is not None:
            field_types[path] = declared
    for key, types in _CONSTRAINT_TYPES.items():
        if key in spec and declared is not None and declared not in types:
            _fail(spec.key_mark(key), f"{key!r} does not apply to type {declared!r} in {where}",
                  f"it applies to: {', '.join(types)}")
    _check_constraints(spec, where)
    if "properties" in spec:
        properties_where = f"{where}.properties"
        properties = _mapping(spec["properties"], spec.value_mark("properties"),
                              properties_where)
        _read_field_specs(properties, path + ".", properties_where, field_types)
    if "items" in spec:
        items_where = f"{where}.items"
        items = _mapping(spec["items"], spec.value_mark("items"), items_where)
        _read_field_spec(items, items_where, path, None)


def _check_constraints(spec: YamlMap, where: str) -> None:
    """The value checks of a field spec (``required``, lengths, bounds, enum, pattern...)."""
    if "required" in spec:
        _boolean(spec["required"], spec.value_mark("required"), f"{where}.required")
    for key in ("min_length", "max_length"):
        if key in spec:
            _count(spec[key], spec.value_mark(key), f"{where}.{key}", minimum=0)
    for key in ("min", "max"):
        if key in spec:
            _number(spec[key], spec.value_mark(key), f"{where}.{key}")
    for low, high in (("min_length", "max_length"), ("min", "max")):
        if low in spec and high in spec and spec[low] > spec[high]:
            _fail(spec.key_mark(low), f"{low} is greater than {high} in {where}")
    if "enum" in spec:
        _check_enum(spec["enum"], spec.value_mark("enum"), f"{where}.enum")
    if "pattern" in spec:
        _check_pattern(spec["pattern"], spec.value_mark("pattern"), f"{where}.pattern")
    if "description" in spec:
        _string(spec["description"], spec.value_mark("description"), f"{where}.description")


def _count(value: object, mark: Mark, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(mark, f"{where} must be an integer of at least {minimum}, got {_describe(value)}")
    return value


def _number(value: object, mark: Mark, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        _fail(mark, f"{where} must be a number, got {_describe(value)}")
    return value


def _check_enum(value: object, mark: Mark, where: str) -> None:
    items = _list(value, mark, where, example="enum: [open, closed]")
    if not items:
        _fail(mark, f"{where} is empty", "list the allowed values, or remove enum")
    for index, item in enumerate(items):
        if isinstance(item, (dict, list)):
            _fail(items.item_mark(index), f"each value in {where} must be a plain value, "
                                          f"got {_describe(item)}")


def _check_pattern(value: object, mark: Mark, where: str) -> None:
    pattern = _string(value, mark, where)
    try:
        re.compile(pattern)
    except re.error as exc:
        _fail(mark, f"{where} is not a valid regular expression: {exc}")


def _check_versioning(value: object, mark: Mark, where: str) -> None:
    where = f"{where}.versioning"
    versioning = _mapping(value, mark, where)
    _check_keys(versioning, _VERSIONING_KEYS, where)
    if "enabled" in versioning:
        _boolean(versioning["enabled"], versioning.value_mark("enabled"), f"{where}.enabled")
    if "mode" in versioning:
        mode_mark = versioning.value_mark("mode")
        mode = _string(versioning["mode"], mode_mark, f"{where}.mode")
        if mode not in _VERSIONING_MODES:
            _fail(mode_mark, f"unknown versioning mode {mode!r} in {where}",
                  _did_you_mean(mode, _VERSIONING_MODES) or "use 'full' or 'diff'")
    if "max_versions" in versioning:
        _count(versioning["max_versions"], versioning.value_mark("max_versions"),
               f"{where}.max_versions", minimum=1)


def _check_hierarchy(value: object, mark: Mark, where: str) -> None:
    where = f"{where}.hierarchy"
    hierarchy = _mapping(value, mark, where)
    _check_keys(hierarchy, _HIERARCHY_KEYS, where)
    _require(hierarchy, "manager_field", where, "manager_field: manager_id")
    for key in _HIERARCHY_KEYS:
        if key in hierarchy:
            _field_path(hierarchy[key], hierarchy.value_mark(key), f"{where}.{key}")


# ---------------------------------------------------------------------------------------
# policy.yml


def _read_policy(
    doc: object,
    file: str,
    settings: dict[str, Any],
    collections: dict[str, CollectionSchema],
) -> PolicyConfig:
    root = _policy_root(doc, file)
    _check_keys(root, _POLICY_KEYS, "")
    _require(root, "roles", "", "roles: {viewer: {}}")
    _require(root, "policies", "", "policies: {documents: {viewer: {actions: [read]}}}")

    roles = _read_roles(root["roles"], root.value_mark("roles"))
    templates = _read_templates(root.get("templates"), root.value_mark("templates"), roles)
    defaults = _read_role_rules(
        _mapping(root.get("defaults"), root.value_mark("defaults"), "defaults",
                 empty_if_null=True),
        roles, "defaults",
    )
    policies = _mapping(root["policies"], root.value_mark("policies"), "policies",
                        empty_if_null=True)

    collections = dict(collections)
    rules: dict[str, Mapping[str, Rule]] = {}
    for name, body in policies.items():
        name = _collection_name(name, policies.key_mark(name), "policies")
        own = _read_collection_policy(
            name, body, policies.value_mark(name), roles, templates
        )
        rules[name] = _effective_rules(name, defaults, own)
        if name not in collections:
            collections[name] = CollectionSchema(
                name=name,
                tenant_field=settings.get("default_tenant_field"),
                owner_field=settings.get("default_owner_field"),
            )
    for name in collections:
        if name not in rules:
            rules[name] = _effective_rules(name, defaults, {})
    return PolicyConfig(
        roles=MappingProxyType(roles),
        rules=MappingProxyType(rules),
        collections=MappingProxyType(collections),
        settings=MappingProxyType(settings),
    )


def _policy_root(doc: object, file: str) -> YamlMap:
    start = Mark(file, 1, 1)
    if doc is None:
        _fail(start, "the policy is empty",
              "it needs 'roles' and 'policies', e.g. roles: {viewer: {}}")
    if not isinstance(doc, YamlMap):
        hint = "expected 'roles' and 'policies'"
        if isinstance(doc, str) and file == "<policy>":
            hint = _NO_SUCH_PATH
        _fail(start, f"the policy must be a mapping, got {_describe(doc)}", hint)
    return doc


def _effective_rules(
    collection: str, defaults: Mapping[str, Rule], own: Mapping[str, Rule]
) -> Mapping[str, Rule]:
    """Defaults, overridden role by role by the collection's (template and own) rules."""
    merged = {role: dataclasses.replace(rule, collection=collection)
              for role, rule in defaults.items()}
    merged.update(own)
    return MappingProxyType(merged)


# Roles


def _read_roles(value: object, mark: Mark) -> dict[str, tuple[str, ...]]:
    """role -> the roles it inherits from. Parents may be declared after their children."""
    body = _mapping(value, mark, "roles")
    for name in body:
        _check_role_name(name, body.key_mark(name))
    roles: dict[str, tuple[str, ...]] = {}
    for name, spec in body.items():
        where = f"roles.{name}"
        spec = _mapping(spec, body.value_mark(name), where, empty_if_null=True)
        _check_keys(spec, _ROLE_KEYS, where)
        roles[name] = _read_inherits(spec, where, body)
    _check_no_cycle(roles, body)
    return roles


def _check_role_name(name: object, mark: Mark) -> None:
    if not isinstance(name, str) or not name:
        _fail(mark, f"a role name must be a non-empty string, got {_describe(name)}",
              "quote it" if name is not None else None)
    if name == _TEMPLATE_KEY:
        _fail(mark, "'template' cannot be a role name: it is reserved in policies",
              "choose another name")
    if name.startswith(_BUILTIN_ROLE_PREFIX):
        _fail(mark, f"role name {name!r} starts with {_BUILTIN_ROLE_PREFIX!r}, "
                    "which is reserved for built-in roles", "choose another name")


def _read_inherits(spec: YamlMap, where: str, declared: YamlMap) -> tuple[str, ...]:
    if "inherits" not in spec:
        return ()
    value, mark = spec["inherits"], spec.value_mark("inherits")
    where = f"{where}.inherits"
    if isinstance(value, str):  # a single parent may be written without brackets
        parents = [(value, mark)]
    else:
        items = _list(value, mark, where, example="inherits: [viewer]")
        parents = _unique_strings(items, where, "role")
    for parent, parent_mark in parents:
        _check_known_role(parent, parent_mark, declared, where)
    return tuple(parent for parent, _ in parents)


def _check_known_role(name: str, mark: Mark, roles: Mapping[str, object], where: str) -> None:
    if name not in roles:
        _fail(mark, f"unknown role {name!r} in {where}",
              _did_you_mean(name, roles) or "declare it under 'roles'")


def _check_no_cycle(roles: Mapping[str, tuple[str, ...]], declared: YamlMap) -> None:
    """Refuse inheritance cycles, naming the cycle from its first-declared role."""
    order = {name: index for index, name in enumerate(roles)}
    done: set[str] = set()

    def visit(role: str, path: list[str]) -> None:
        if role in path:
            cycle = path[path.index(role):]
            first = min(cycle, key=order.__getitem__)
            start = cycle.index(first)
            names = cycle[start:] + cycle[:start] + [first]
            _fail(declared.key_mark(first), f"role cycle: {' -> '.join(names)}",
                  "remove one of these inherits")
        if role in done:
            return
        for parent in roles[role]:
            visit(parent, path + [role])
        done.add(role)

    for role in roles:
        visit(role, [])


# Rules


def _read_templates(
    value: object, mark: Mark, roles: Mapping[str, object]
) -> dict[str, Mapping[str, Rule]]:
    body = _mapping(value, mark, "templates", empty_if_null=True)
    templates: dict[str, Mapping[str, Rule]] = {}
    for name, rules in body.items():
        key_mark = body.key_mark(name)
        if not isinstance(name, str) or not name:
            _fail(key_mark, f"a template name must be a non-empty string, got {_describe(name)}")
        where = f"templates.{name}"
        rules = _mapping(rules, body.value_mark(name), where)
        if _TEMPLATE_KEY in rules:
            _fail(rules.key_mark(_TEMPLATE_KEY), f"a template cannot use a template ({where})",
                  "copy the rules you need into this template")
        templates[name] = _read_role_rules(rules, roles, where)
    return templates


def _read_collection_policy(
    collection: str,
    value: object,
    mark: Mark,
    roles: Mapping[str, object],
    templates: Mapping[str, Mapping[str, Rule]],
) -> dict[str, Rule]:
    """The collection's rules per role: its template's, overridden by its own entries."""
    where = f"policies.{collection}"
    body = _mapping(value, mark, where, empty_if_null=True)
    rules: dict[str, Rule] = {}
    if _TEMPLATE_KEY in body:
        name_mark = body.value_mark(_TEMPLATE_KEY)
        name = _string(body[_TEMPLATE_KEY], name_mark, f"{where}.template")
        if name not in templates:
            _fail(name_mark, f"unknown template {name!r} in {where}",
                  _did_you_mean(name, templates) or "declare it under 'templates'")
        rules.update(templates[name])
    rules.update(_read_role_rules(body, roles, where, template_allowed=True))
    return {role: dataclasses.replace(rule, collection=collection) for role, rule in rules.items()}


def _read_role_rules(
    body: YamlMap, roles: Mapping[str, object], where: str, *, template_allowed: bool = False
) -> dict[str, Rule]:
    """A mapping role -> rule (a template, the defaults, or a collection's own entries).

    The rules' ``collection`` is left empty; the caller fills it in.
    """
    rules: dict[str, Rule] = {}
    for role, rule in body.items():
        role_mark = body.key_mark(role)
        if not isinstance(role, str):
            _fail(role_mark, f"role name {_describe(role)}{_in(where)} must be a string",
                  "quote it")
        if role == _TEMPLATE_KEY:
            if template_allowed:
                continue
            _fail(role_mark, f"'template' is only allowed in a collection's policy, not in {where}")
        _check_known_role(role, role_mark, roles, where)
        rules[role] = _read_rule(rule, body.value_mark(role), role, f"{where}.{role}")
    return rules


def _read_rule(value: object, mark: Mark, role: str, where: str) -> Rule:
    rule = _mapping(value, mark, where)
    _check_keys(rule, _RULE_KEYS, where)
    _require(rule, "actions", where, "actions: [read]")
    actions = _read_actions(rule["actions"], rule.value_mark("actions"), f"{where}.actions")
    when = None
    if "when" in rule:
        when = _read_when(rule["when"], rule.value_mark("when"), f"{where}.when")
    fields = FieldRules()
    if "fields" in rule:
        fields = _read_fields(rule["fields"], rule.value_mark("fields"), f"{where}.fields")
    return Rule(
        role=role, collection="", actions=actions, when=when, fields=fields,
        source=_source(rule.mark),
    )


def _read_actions(value: object, mark: Mark, where: str) -> frozenset[str]:
    items = _list(value, mark, where, example="actions: [read]")
    if not items:
        _fail(mark, f"{where} is empty", "list at least one action, or remove the rule")
    actions = _unique_strings(items, where, "action")
    for action, action_mark in actions:
        if action not in ACTIONS:
            _fail(action_mark, f"unknown action {action!r} in {where}",
                  _did_you_mean(action, ACTIONS)
                  or f"expected one of: {', '.join(sorted(ACTIONS))}")
    return frozenset(action for action, _ in actions)


def _read_when(value: object, mark: Mark, where: str) -> Condition | None:
    """A condition; ``true`` means every document (None), ``false`` means none."""
    if value is True:
        return None
    if value is False:
        return parse_condition("false")
    text = _string(value, mark, where) if value is not None else None
    if text is None or not text.strip():
        _fail(mark, f"{where} is empty",
              "write a condition, or remove 'when' to apply the rule to every document")
    try:
        return parse_condition(text)
    except ConditionError as exc:
        offset = _offset(text, exc.line, exc.column)
        line, column = mark.locate(offset)
        raise ConfigError(
            f"invalid condition in {where}: {exc.message}",
            file=mark.file, line=line, column=column, suggestion=exc.suggestion,
        ) from exc


def _offset(text: str, line: int, column: int) -> int:
    """The index in ``text`` of a 1-based line and column."""
    lines = text.split("\n")
    line = min(max(line, 1), len(lines))
    return sum(len(previous) + 1 for previous in lines[: line - 1]) + max(column - 1, 0)


def _read_fields(value: object, mark: Mark, where: str) -> FieldRules:
    fields = _mapping(value, mark, where)
    _check_keys(fields, _FIELDS_KEYS, where)
    if "allow" in fields and "deny" in fields:
        _fail(fields.key_mark("deny"), f"{where} gives both 'allow' and 'deny'",
              "use one: 'allow' lists the only readable fields, "
              "'deny' hides fields from an otherwise readable document")
    allow = _path_list(fields, "allow", where) if "allow" in fields else None
    deny = _path_list(fields, "deny", where, id_allowed=False) if "deny" in fields else ()
    deny_write = _path_list(fields, "deny_write", where) if "deny_write" in fields else ()
    mask = _read_mask(fields, where, allow, deny) if "mask" in fields else {}
    return FieldRules(allow=allow, deny=deny, deny_write=deny_write,
                      mask=MappingProxyType(mask))


def _path_list(
    fields: YamlMap, key: str, where: str, *, id_allowed: bool = True
) -> tuple[str, ...]:
    """A list of field paths; ``_id`` among them only if ``id_allowed``."""
    where = f"{where}.{key}"
    items = _list(fields[key], fields.value_mark(key), where,
                  example=f"{key}: [internal_notes]")
    paths = []
    for path, mark in _unique_strings(items, where, "field"):
        paths.append(_field_path(path, mark, where))
        if not id_allowed and _is_id(path):
            _fail(mark, f"'_id' cannot be denied ({where})",
                  "every readable document shows its _id; deny the document instead")
    return tuple(paths)


def _read_mask(
    fields: YamlMap, where: str, allow: tuple[str, ...] | None, deny: tuple[str, ...]
) -> dict[str, str]:
    where = f"{where}.mask"
    body = _mapping(fields["mask"], fields.value_mark("mask"), where)
    mask: dict[str, str] = {}
    for path, kind in body.items():
        path_mark, kind_mark = body.key_mark(path), body.value_mark(path)
        path = _field_path(path, path_mark, where)
        if _is_id(path):
            _fail(path_mark, f"'_id' cannot be masked ({where})")
        if any(_covers(denied, path) for denied in deny):
            _fail(path_mark, f"field {path!r} is both denied and masked in {where}",
                  "a denied field is hidden already; remove it from 'mask' or from 'deny'")
        if allow is not None and not any(_covers(allowed, path) for allowed in allow):
            _fail(path_mark, f"masked field {path!r} is not in 'allow' ({where})",
                  "add it to 'allow', or remove it from 'mask'")
        kind = _string(kind, kind_mark, f"the mask type of {path!r} in {where}")
        if kind not in MASK_TYPES:
            _fail(kind_mark, f"unknown mask type {kind!r} in {where}",
                  _did_you_mean(kind, MASK_TYPES)
                  or f"expected one of: {', '.join(sorted(MASK_TYPES))}")
        mask[path] = kind
    return mask


def _covers(outer: str, path: str) -> bool:
    """``outer`` is ``path`` or one of its parents (deny ``address`` hides ``address.city``)."""
    return path == outer or path.startswith(outer + ".")


def _is_id(path: str) -> bool:
    return path.split(".", 1)[0] == "_id"
