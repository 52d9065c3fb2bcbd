"""The decision engine: who may do what to which documents, as a plan per request."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._compile import COLLATION, NONE, compile_condition, disjoin, to_mongo
from ._evaluate import bind
from ._fields import FULL, HIDDEN, RoleFields, shape
from ._errors import UnknownActionError, UnknownCollectionError
from ._model import ACTIONS, CollectionSchema, PolicyConfig, Rule

__all__ = ["Identity", "Plan", "Policy"]


def _frozen_list(values: Iterable[Any] | None) -> tuple[Any, ...]:
    if values is None:
        return ()
    if isinstance(values, (str, bytes)):
        raise TypeError("expected a list, not a string")
    return tuple(values)


@dataclass(frozen=True, eq=False, slots=True, weakref_slot=True)
class Identity:
    """Who is asking: the ``user`` of conditions.

    Treat it as immutable: the engine caches plans per identity object. A field left as None
    is absent, so a condition that reads it is an error for every document (it denies), and a
    caller without a tenant never matches documents whose tenant is missing or null.
    """

    id: str | None = None
    tenant_id: Any = None
    roles: Sequence[str] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    subordinates: Sequence[Any] = ()
    direct_reports: Sequence[Any] = ()
    ancestors: Sequence[Any] = ()

    def __post_init__(self) -> None:
        for name in ("roles", "subordinates", "direct_reports", "ancestors"):
            object.__setattr__(self, name, _frozen_list(getattr(self, name)))
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes or {})))

    def as_user(self) -> dict[str, Any]:
        """The ``user`` value conditions see."""
        user: dict[str, Any] = {
            "roles": list(self.roles),
            "attributes": dict(self.attributes),
            "subordinates": list(self.subordinates),
            "direct_reports": list(self.direct_reports),
            "ancestors": list(self.ancestors),
        }
        if self.id is not None:
            user["id"] = self.id
        if self.tenant_id is not None:
            user["tenant_id"] = self.tenant_id
        return user


@dataclass(frozen=True, slots=True)
class _Grant:
    """One role's rule granting the action, bound to one caller."""

    role: str
    rule: Rule
    fields: RoleFields
    holds: Callable[[Mapping[str, Any]], bool]


class Plan:
    """What one caller may do with one action on one collection.

    ``filter`` matches exactly the documents the action may touch (``{}`` for all of them);
    combine it with a caller's filter as ``{"$and": [caller, plan.filter]}`` and run the query
    under ``collation``. The plan is shared between requests: do not mutate ``filter``.
    """

    __slots__ = ("action", "collection", "allowed", "filter", "_grants", "_uniform_fields")

    def __init__(self, action: str, collection: str, grants: Sequence[_Grant], filter_: Any) -> None:
        self.action = action
        self.collection = collection
        self._grants = tuple(grants)
        self.allowed = filter_ is not NONE
        self.filter: dict[str, Any] = to_mongo(filter_)
        # When every granting role has the same field rules, no document needs evaluating.
        uniform = self._grants and all(g.rule.fields == self._grants[0].rule.fields for g in self._grants)
        self._uniform_fields = [self._grants[0].fields] if uniform else None

    def __repr__(self) -> str:
        return f"<Plan {self.action} {self.collection} allowed={self.allowed} filter={self.filter!r}>"

    @property
    def collation(self) -> dict[str, str]:
        """The collation every query under this plan must run with (string equality is exact)."""
        return dict(COLLATION)

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles whose rules grant this action (before looking at any document)."""
        return tuple(grant.role for grant in self._grants)

    def allows(self, document: Mapping[str, Any]) -> bool:
        """Whether the action may apply to ``document`` (as stored, or as it would be stored)."""
        return any(grant.holds(document) for grant in self._grants)

    def _fields_for(self, document: Mapping[str, Any]) -> list[RoleFields]:
        if self._uniform_fields is not None:
            return self._uniform_fields if self.allows(document) else []
        return [grant.fields for grant in self._grants if grant.holds(document)]

    def shape(self, document: Mapping[str, Any]) -> dict[str, Any] | None:
        """The document with hidden fields removed and masked fields masked; None if the
        action does not apply to it at all."""
        roles = self._fields_for(document)
        return shape(document, roles) if roles else None

    def can_read(self, path: str, document: Mapping[str, Any]) -> bool:
        """Whether ``path`` of ``document`` is readable (possibly masked) for this action."""
        return any(role.status(path) != HIDDEN for role in self._fields_for(document))

    def can_write(self, path: str, document: Mapping[str, Any]) -> bool:
        """Whether some role granting the action on ``document`` lets ``path`` be written."""
        return any(role.writable(path) for role in self._fields_for(document))

    def can_filter(self, path: str) -> bool:
        """Whether ``path`` may appear in a filter, sort or projection: readable and unmasked
        in every document this plan reaches (DESIGN's no-oracle rule)."""
        return bool(self._grants) and all(grant.fields.status(path) == FULL for grant in self._grants)

    @property
    def field_rules(self) -> tuple[Any, ...]:
        """The field rules of the granting roles (a field is readable where one of them lets it)."""
        return tuple(grant.rule.fields for grant in self._grants)


class Policy:
    """A loaded policy: build plans, answer checks. Pure: no I/O, no clock."""

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self._role_closure = {role: self._ancestors(role) for role in config.roles}
        self._fields: dict[tuple[str, str], RoleFields] = {
            (collection, role): RoleFields(rule.fields)
            for collection, rules in config.rules.items()
            for role, rule in rules.items()
        }
        self._plans: weakref.WeakKeyDictionary[Identity, dict[tuple[str, str], Plan]] = weakref.WeakKeyDictionary()

    def _ancestors(self, role: str) -> tuple[str, ...]:
        """The role and every role it inherits from, nearest first (the loader refuses cycles)."""
        seen: list[str] = []
        pending = [role]
        while pending:
            current = pending.pop(0)
            if current not in seen:
                seen.append(current)
                pending.extend(self.config.roles.get(current, ()))
        return tuple(seen)

    @property
    def collections(self) -> tuple[str, ...]:
        return tuple(self.config.rules)

    def collection(self, name: str) -> CollectionSchema:
        """The schema of a known collection (empty if schema.yml says nothing of it)."""
        if name not in self.config.rules:
            raise UnknownCollectionError(name)
        return self.config.collections.get(name) or CollectionSchema(name)

    def effective_roles(self, identity: Identity) -> tuple[str, ...]:
        """The identity's roles with those they inherit; roles the policy does not know grant nothing."""
        roles: list[str] = []
        for role in identity.roles:
            for inherited in self._role_closure.get(role, ()):
                if inherited not in roles:
                    roles.append(inherited)
        return tuple(roles)

    def plan(self, identity: Identity, action: str, collection: str) -> Plan:
        """The plan for ``identity`` doing ``action`` on ``collection`` (cached per identity)."""
        cache = self._plans.get(identity)
        if cache is None:
            cache = self._plans[identity] = {}
        key = (action, collection)
        plan = cache.get(key)
        if plan is None:
            plan = cache[key] = self._build_plan(identity, action, collection)
        return plan

    def _build_plan(self, identity: Identity, action: str, collection: str) -> Plan:
        if action not in ACTIONS:
            raise UnknownActionError(action)
        rules = self.config.rules.get(collection)
        if rules is None:
            raise UnknownCollectionError(collection)
        schema = self.config.collections.get(collection)
        is_scalar = schema.is_scalar if schema is not None else (lambda path: False)
        user = identity.as_user()
        grants: list[_Grant] = []
        filters = []
        for role in self.effective_roles(identity):
            rule = rules.get(role)
            if rule is None or action not in rule.actions:
                continue
            if rule.when is None:
                true_filter: Any = {}
                holds: Callable[[Mapping[str, Any]], bool] = lambda document: True
            else:
                true_filter, _ = compile_condition(rule.when.root, user, is_scalar)
                if true_filter is NONE:
                    continue  # this caller can never satisfy it
                evaluate = bind(rule.when.root, user)
                holds = lambda document, evaluate=evaluate: evaluate(document) is True
            grants.append(_Grant(role, rule, self._fields[(collection, role)], holds))
            filters.append(true_filter)
        return Plan(action, collection, grants, disjoin(*filters))

    def allows(self, identity: Identity, action: str, collection: str, document: Mapping[str, Any]) -> bool:
        """Whether ``identity`` may do ``action`` on ``document`` of ``collection``."""
        return self.plan(identity, action, collection).allows(document)
