"""The loaded configuration: what the YAML files say, validated, with conditions parsed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ._cel import Condition

__all__ = [
    "ACTIONS",
    "INTERNAL_COLLECTION_PREFIX",
    "MASK_TYPES",
    "is_internal_collection",
    "Source",
    "FieldRules",
    "Rule",
    "CollectionSchema",
    "PolicyConfig",
]

ACTIONS = frozenset({"create", "read", "update", "delete", "restore", "aggregate"})
# The gateway's own collections (API keys, idempotency records, probes...): never served, never
# named by a policy, never reached by a pipeline.
INTERNAL_COLLECTION_PREFIX = "_pm_"
_SYSTEM_COLLECTION_PREFIX = "system."  # MongoDB's own


def is_internal_collection(name: str) -> bool:
    """The gateway's own collections (``_pm_*``) and MongoDB's (``system.*``)."""
    return name.startswith((INTERNAL_COLLECTION_PREFIX, _SYSTEM_COLLECTION_PREFIX))

MASK_TYPES = frozenset({"email", "phone", "partial", "redact"})
# Types a schema may declare for a field; the first group holds no arrays, so the
# compiler may drop its array guards on them.
SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean", "date", "objectid"})
FIELD_TYPES = SCALAR_TYPES | {"array", "object", "any"}

@dataclass(frozen=True)
class Source:
    """Where something was written: file name (or ``<policy>`` for text) and 1-based line/column."""

    file: str
    line: int
    column: int


@dataclass(frozen=True)
class FieldRules:
    """One role's field rules on one collection. Paths are dotted (``address.city``)."""

    allow: tuple[str, ...] | None = None  # None: every field not denied
    deny: tuple[str, ...] = ()
    deny_write: tuple[str, ...] = ()
    mask: Mapping[str, str] = field(default_factory=dict)  # path -> mask type


@dataclass(frozen=True)
class Rule:
    """What one role may do on one collection."""

    role: str
    collection: str
    actions: frozenset[str]
    when: Condition | None  # None: every document
    fields: FieldRules
    source: Source | None = None


@dataclass(frozen=True)
class CollectionSchema:
    """The parts of ``schema.yml`` the engine and the gateway use for one collection."""

    name: str
    tenant_field: str | None = None
    owner_field: str | None = None
    # Whether a create may choose the ``_id`` (``access.client_ids``). Off by default: a
    # duplicate id answers 409, which tells that the id exists, in whatever tenant.
    client_ids: bool = False
    field_types: Mapping[str, str] = field(default_factory=dict)  # dotted path -> declared type
    raw: Mapping[str, object] = field(default_factory=dict)  # the collection's schema as written

    def is_scalar(self, path: str) -> bool:
        return self.field_types.get(path) in SCALAR_TYPES


@dataclass(frozen=True)
class PolicyConfig:
    """Everything loaded: role graph, rules per collection and role, collection schemas."""

    roles: Mapping[str, tuple[str, ...]]  # role -> the roles it inherits from
    rules: Mapping[str, Mapping[str, Rule]]  # collection -> role -> rule
    collections: Mapping[str, CollectionSchema]
    settings: Mapping[str, object] = field(default_factory=dict)  # schema.yml settings
