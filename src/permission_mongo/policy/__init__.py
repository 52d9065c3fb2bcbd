"""The policy engine: pure logic, no I/O beyond reading the configuration files.

    from permission_mongo.policy import load_policy, Identity

    policy = load_policy("examples/")           # a directory, a policy.yml path, or YAML text
    ident = Identity(id="u1", tenant_id="acme", roles=["user"])
    plan = policy.plan(ident, "read", "documents")
    plan.allowed, plan.filter                   # may it read anything; the MongoDB filter
    policy.allows(ident, "update", "documents", doc)
"""

from __future__ import annotations

import os

from ._cel import Condition, parse_condition
from ._compile import COLLATION
from ._engine import Identity, Plan, Policy
from ._errors import (
    ActionNotAllowedError,
    ConditionError,
    ConfigError,
    FieldNotReadableError,
    PolicyError,
    QueryError,
    UnknownActionError,
    UnknownCollectionError,
)
from ._pipeline import PipelineLimits, rewrite_pipeline
from ._query import check_expression, check_filter, field_check
from ._model import (
    ACTIONS,
    INTERNAL_COLLECTION_PREFIX,
    MASK_TYPES,
    CollectionSchema,
    FieldRules,
    PolicyConfig,
    Rule,
    is_internal_collection,
)

__all__ = [
    "ACTIONS",
    "INTERNAL_COLLECTION_PREFIX",
    "ActionNotAllowedError",
    "FieldNotReadableError",
    "PipelineLimits",
    "QueryError",
    "check_expression",
    "check_filter",
    "field_check",
    "is_internal_collection",
    "rewrite_pipeline",
    "COLLATION",
    "MASK_TYPES",
    "CollectionSchema",
    "Condition",
    "ConditionError",
    "ConfigError",
    "FieldRules",
    "Identity",
    "Plan",
    "Policy",
    "PolicyConfig",
    "PolicyError",
    "Rule",
    "UnknownActionError",
    "UnknownCollectionError",
    "load_policy",
    "parse_condition",
]


def load_policy(source: str | os.PathLike[str], *, schema: str | os.PathLike[str] | None = None) -> Policy:
    """Load a policy from a directory (``policy.yml``, optional ``schema.yml``), a policy
    file, or YAML text. Raises ConfigError naming the file, line and column of any mistake."""
    from ._loader import load_config

    return Policy(load_config(source, schema=schema))
