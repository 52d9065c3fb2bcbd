"""The decision engine: who may do what to which documents, as a plan per request."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from collections import OrderedDict
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._cel import And, Compare, DocPath, Has, ListExpr, Literal, Negate, Node, Not, Or, Ternary, UserPath
from ._compile import COLLATION, NONE, compile_true, disjoin, to_mongo
from ._evaluate import bind
from ._expression import compile_expression, either, guard_filter
from ._fields import FULL, HIDDEN, PARTIAL, RoleFields, shape
from ._errors import UnknownActionError, UnknownCollectionError
from ._model import ACTIONS, CollectionSchema, PolicyConfig, Rule
from ._query import stripped_positions
from ._update import stored_dependencies
from ._values import select

__all__ = ["Identity", "Plan", "Policy", "masked_dependency"]


def _frozen_list(values: Iterable[Any] | None) -> tuple[Any, ...]:
    if values is None:
        return ()
    if isinstance(values, (str, bytes)):
        raise TypeError("expected a list, not a string")
    return tuple(values)


@dataclass(frozen=True, eq=False, slots=True)
class Identity:
    """Who is asking: the ``user`` of conditions.

    A field left as None
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


class _Grant:
    """One role's rule granting the action, bound to one caller."""

    __slots__ = ("role", "rule", "fields", "user", "_evaluate")

    def __init__(self, rule: Rule, fields: RoleFields, user: Mapping[str, Any]) -> None:
        self.role = rule.role
        self.rule = rule
        self.fields = fields
        self.user = user
        self._evaluate: Callable[[Mapping[str, Any]], Any] | None = None

    def holds(self, document: Mapping[str, Any]) -> bool:
        if self.rule.when is None:
            return True
        if self._evaluate is None:
            # Bound on first use: many plans only ever serve filtered queries.
            self._evaluate = bind(self.rule.when.root, self.user)
        return self._evaluate(document) is True


class Plan:
    """What one caller may do with one action on one collection.

    ``filter`` matches exactly the documents the action may touch (``{}`` for all of them).
    A caller's filter is combined with it by ``restrict``, never by hand, and the query runs
    under ``collation``. The plan is shared between requests: do not mutate ``filter``.
    """

    __slots__ = ("action", "collection", "allowed", "filter", "_grants", "_uniform_fields", "_guard")

    def __init__(self, action: str, collection: str, grants: Sequence[_Grant], filter_: Any) -> None:
        self.action = action
        self.collection = collection
        self._grants = tuple(grants)
        self.allowed = filter_ is not NONE
        self.filter: dict[str, Any] = to_mongo(filter_)
        # When every granting role has the same field rules, no document needs evaluating.
        uniform = self._grants and all(g.rule.fields == self._grants[0].rule.fields for g in self._grants)
        self._uniform_fields = [self._grants[0].fields] if uniform else None
        self._guard: Any = None  # built on first use

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

    @property
    def guard(self) -> Any:
        """``filter`` as one aggregation expression: true exactly on the documents ``filter``
        matches, and never an error on any document (``True`` when it holds everywhere)."""
        if self._guard is None:
            self._guard = either(*(
                True if grant.rule.when is None else compile_expression(grant.rule.when.root, grant.user)
                for grant in self._grants
            ))
        return self._guard

    def restrict(self, caller: Mapping[str, Any], *conditions: Mapping[str, Any]) -> dict[str, Any]:
        """A caller's filter within this plan: ``{"$and": [caller, plan.filter, *conditions]}``
        (``conditions``: the gateway's own, such as another plan's filter), empty parts left out.

        ``$and`` fixes no order of evaluation, so a database may evaluate the caller's ``$expr``
        on any document of the collection, and an expression that can fail (``$toInt``,
        ``$divide``...) would answer questions about documents outside the plan, in its error
        or in its message. So each ``$expr`` of the caller runs under ``guard``: on every
        document outside the plan it is false without being evaluated."""
        parts = [guard_filter(caller, self.guard), self.filter, *conditions]
        parts = [part for part in parts if part]
        if not parts:
            return {}
        return dict(parts[0]) if len(parts) == 1 else {"$and": parts}

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

    def may_depend_on(self, path: str, document: Mapping[str, Any], *, whole: bool) -> bool:
        """Whether a write may depend on what ``document`` stores at ``path`` without telling
        this caller a masked value (through its answer, an error or a schema check).

        ``whole``: the write overwrites or removes ``path`` whole ($set, $unset, $rename's
        target), so it depends only on what holds ``path``: no field above it may be masked
        (``$set`` of a path inside a masked field would tell its type). Otherwise the write
        reads the value at ``path`` ($inc, $max, $pull, $push, $rename's source...): some
        role granting the action on ``document`` must show it, and all under it, unmasked.
        Field rules do not name array positions, so the path is judged with and without them.
        """
        roles = self._fields_for(document)
        paths = {path, stripped_positions(path)} - {""}
        if whole:
            holders = {p.rpartition(".")[0] for p in paths} - {""}
            return all(any(role.status(holder) in (FULL, PARTIAL) for role in roles) for holder in holders)
        return all(any(role.status(p) == FULL for role in roles) for p in paths)

    def can_filter(self, path: str) -> bool:
        """Whether ``path`` may appear in a filter, sort or projection: readable and unmasked
        in every document this plan reaches (DESIGN's no-oracle rule)."""
        return bool(self._grants) and all(grant.fields.status(path) == FULL for grant in self._grants)

    @property
    def role_fields(self) -> tuple[RoleFields, ...]:
        """Each granting role's field rules, as the pipeline rewriter reads them."""
        return tuple(grant.fields for grant in self._grants)

    @property
    def field_rules(self) -> tuple[Any, ...]:
        """The field rules of the granting roles (a field is readable where one of them lets it)."""
        return tuple(grant.rule.fields for grant in self._grants)


def masked_dependency(
    update: Mapping[str, Any], document: Mapping[str, Any], plans: Iterable[Plan]
) -> tuple[str, str, bool] | None:
    """The first (operator, path, whole) of a valid ``update`` whose outcome on ``document``
    would depend on a value masked for the caller under one of ``plans`` (the update plan,
    and the read plan that shapes the answer), or None: a masked field may be overwritten or
    removed whole, never moved, copied or compared (see ``Plan.may_depend_on``)."""
    plans = tuple(plans)
    for operator, path, whole in stored_dependencies(update):
        if not all(plan.may_depend_on(path, document, whole=whole) for plan in plans):
            return operator, path, whole
    return None


def _user_paths(node: Node) -> set[tuple[str, ...]]:
    """The caller's values a condition reads: all a compiled plan depends on, besides roles."""
    match node:
        case UserPath(path=path):
            return {path}
        case Has(target=UserPath(path=path)):
            return {path}
        case Literal() | DocPath() | Has():
            return set()
        case ListExpr(items=items):
            return set().union(*(_user_paths(item) for item in items))
        case Not(operand=x) | Negate(operand=x):
            return _user_paths(x)
        case And(left=a, right=b) | Or(left=a, right=b) | Compare(left=a, right=b):
            return _user_paths(a) | _user_paths(b)
        case Ternary(condition=c, if_true=a, if_false=b):
            return _user_paths(c) | _user_paths(a) | _user_paths(b)
    raise TypeError(f"not a condition node: {node!r}")


class Policy:
    """A loaded policy: build plans, answer checks. Pure: no I/O, no clock.

    Plans are cached by what they depend on: the collection, the action, the caller's
    effective roles and the caller's values that the granting rules read. Callers who share
    those (say, every viewer of one tenant) share one plan, however their identities were made.
    """

    def __init__(self, config: PolicyConfig, *, plan_cache_size: int = 4096) -> None:
        self.config = config
        self._role_closure = {role: self._ancestors(role) for role in config.roles}
        self._fields: dict[tuple[str, str], RoleFields] = {
            (collection, role): RoleFields(rule.fields)
            for collection, rules in config.rules.items()
            for role, rule in rules.items()
        }
        self._plan_cache_size = plan_cache_size
        self._plans: OrderedDict[tuple[Any, ...], Plan] = OrderedDict()
        self._grants: dict[tuple[str, str, tuple[str, ...]], tuple[tuple[Rule, ...], tuple[tuple[str, ...], ...]]] = {}

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

    def _granting_rules(
        self, collection: str, action: str, roles: tuple[str, ...]
    ) -> tuple[tuple[Rule, ...], tuple[tuple[str, ...], ...]]:
        """The rules of ``roles`` granting ``action``, and the caller's values they read."""
        key = (collection, action, roles)
        found = self._grants.get(key)
        if found is None:
            if action not in ACTIONS:
                raise UnknownActionError(action)
            rules = self.config.rules.get(collection)
            if rules is None:
                raise UnknownCollectionError(collection)
            granting = tuple(
                rules[role] for role in roles if role in rules and action in rules[role].actions
            )
            paths: set[tuple[str, ...]] = set()
            for rule in granting:
                if rule.when is not None:
                    paths |= _user_paths(rule.when.root)
            if len(self._grants) >= self._plan_cache_size:
                self._grants.clear()
            found = self._grants[key] = (granting, tuple(sorted(paths)))
        return found

    def plan(self, identity: Identity, action: str, collection: str) -> Plan:
        """The plan for ``identity`` doing ``action`` on ``collection``."""
        roles = self.effective_roles(identity)
        rules, paths = self._granting_rules(collection, action, roles)
        user = identity.as_user()
        # repr keeps apart what == would merge (True and 1, 1 and 1.0): a safe cache key.
        key = (collection, action, roles, repr([select(user, path) for path in paths]))
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        plan = self._plans[key] = self._build_plan(action, collection, rules, user)
        if len(self._plans) > self._plan_cache_size:
            self._plans.popitem(last=False)
        return plan

    def _build_plan(self, action: str, collection: str, rules: tuple[Rule, ...], user: dict[str, Any]) -> Plan:
        schema = self.config.collections.get(collection)
        is_scalar = schema.is_scalar if schema is not None else (lambda path: False)
        grants: list[_Grant] = []
        filters = []
        for rule in rules:
            true_filter = {} if rule.when is None else compile_true(rule.when.root, user, is_scalar)
            if true_filter is NONE:
                continue  # this caller can never satisfy it
            grants.append(_Grant(rule, self._fields[(collection, rule.role)], user))
            filters.append(true_filter)
        return Plan(action, collection, grants, disjoin(*filters))

    def allows(self, identity: Identity, action: str, collection: str, document: Mapping[str, Any]) -> bool:
        """Whether ``identity`` may do ``action`` on ``document`` of ``collection``."""
        return self.plan(identity, action, collection).allows(document)
