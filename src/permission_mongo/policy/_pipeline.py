"""Aggregation pipelines, rewritten so that the caller's read rules hold at every place a
collection enters: the source, ``$lookup``, ``$graphLookup``, ``$unionWith`` (and so inside
``$facet`` branches too).

Each entry point gets the collection's *view*: a ``$match`` with the caller's read filter,
then one ``$replaceWith`` that rebuilds each document with hidden fields gone and masked fields
holding their masked values, before any stage of the caller's sees it (and which no stage of
the caller's can be moved ahead of: see ``view_stages``). The view is built with aggregation
expressions only (no dotted-path projection, which some servers get wrong through arrays).
Where several roles grant read with different field rules, the view takes, field by field, the
strictest of them: a pipeline cannot tell which role reached a document.

The caller's stages and expressions are allow-listed, and the fields they name must be ones
the caller may filter on (readable, unmasked, in every document), so that a pipeline is no
more an oracle than a find; names the pipeline itself made (``$set`` outputs, ``$lookup``
results, everything after a ``$group``) are free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._compile import conjoin, to_mongo
from ._errors import ActionNotAllowedError, QueryError, UnknownCollectionError
from ._fields import FULL, HIDDEN, MASKED, PARTIAL, RoleFields
from ._model import is_internal_collection
from ._query import check_expression, check_field_name, check_filter, field_check

if TYPE_CHECKING:
    from ._engine import Identity, Plan, Policy

__all__ = ["PipelineLimits", "rewrite_pipeline", "view_stages", "mask_expression", "REFUSED_STAGES"]

REFUSED_STAGES = frozenset({
    "$out", "$merge", "$function", "$accumulator", "$where", "$currentOp", "$collStats",
    "$indexStats", "$listSessions", "$listLocalSessions", "$changeStream", "$documents",
    "$planCacheStats", "$listSearchIndexes", "$search", "$searchMeta", "$vectorSearch",
    "$redact", "$setWindowFields", "$densify", "$fill", "$geoNear",
})


@dataclass(frozen=True)
class PipelineLimits:
    max_stages: int = 20  # the caller's stages, nested ones included
    # False where the database ignores $graphLookup's restrictSearchWithMatch (it cannot be
    # enforced there, so it is refused).
    graph_lookup: bool = True


def rewrite_pipeline(
    policy: Policy,
    identity: Identity,
    collection: str,
    pipeline: Any,
    limits: PipelineLimits = PipelineLimits(),
) -> list[dict[str, Any]]:
    """The pipeline to run on ``collection`` for this caller. Raises ActionNotAllowedError,
    UnknownCollectionError, FieldNotReadableError or QueryError (naming what to fix)."""
    if not isinstance(pipeline, list) or not all(isinstance(stage, Mapping) for stage in pipeline):
        raise QueryError("a pipeline is a list of stages (objects)")
    rewriter = _Rewriter(policy, identity, limits)
    aggregate = rewriter.plan(collection, "aggregate")
    read = rewriter.plan(collection, "read")
    stages = rewriter.pipeline(pipeline, _Scope(collection, read))
    if rewriter.stages_seen > limits.max_stages:
        raise QueryError(
            f"the pipeline has {rewriter.stages_seen} stages; at most {limits.max_stages} are allowed",
            stages=rewriter.stages_seen, limit=limits.max_stages,
        )
    return view_stages(read, extra_filter=aggregate.filter) + stages


@dataclass
class _Scope:
    """What the fields named at this point of a pipeline refer to."""

    collection: str
    plan: Plan
    made: set[str] = field(default_factory=set)  # names the pipeline made: free to use
    free: bool = False  # after $group and the like: every field was made by the pipeline
    variables: frozenset[str] = frozenset()  # a $lookup's let

    def check(self, path: str) -> None:
        if self.free or any(path == name or path.startswith(name + ".") for name in self.made):
            return
        field_check(self.plan.can_filter, "pipeline", self.collection)(path)

    def branch(self) -> _Scope:
        return _Scope(self.collection, self.plan, set(self.made), self.free, self.variables)

    def expression(self, expr: Any) -> None:
        check_expression(expr, self.check, self.variables, raw=False)


class _Rewriter:
    def __init__(self, policy: Policy, identity: Identity, limits: PipelineLimits) -> None:
        self.policy = policy
        self.identity = identity
        self.limits = limits
        self.stages_seen = 0

    def plan(self, collection: Any, action: str) -> Plan:
        if not isinstance(collection, str) or is_internal_collection(collection):
            raise UnknownCollectionError(str(collection))
        plan = self.policy.plan(self.identity, action, collection)
        if not plan.allowed:
            raise ActionNotAllowedError(action, collection)
        return plan

    def pipeline(self, stages: Any, scope: _Scope) -> list[dict[str, Any]]:
        if not isinstance(stages, list):
            raise QueryError("a pipeline is a list of stages")
        rewritten: list[dict[str, Any]] = []
        for stage in stages:
            self.stages_seen += 1
            if not isinstance(stage, Mapping) or len(stage) != 1:
                raise QueryError("each stage is an object with exactly one key, such as {\"$match\": {...}}", stage=stage)
            (name, spec), = stage.items()
            if name in REFUSED_STAGES:
                raise QueryError(f"stage {name} is not allowed", stage=name)
            handler = _STAGES.get(name)
            if handler is None:
                raise QueryError(f"unknown or unsupported stage {name}", stage=name)
            rewritten.extend(handler(self, spec, scope))
        return rewritten

    # --- stages that keep the document's fields ---------------------------------------------

    def stage_match(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        check_filter(spec, scope.check, variables=scope.variables, raw=False)
        return [{"$match": spec}]

    def stage_sort(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        if not isinstance(spec, Mapping) or not spec:
            raise QueryError("$sort takes an object of fields and 1 or -1")
        for path, direction in spec.items():
            check_field_name(path)
            scope.check(path)
            if direction not in (1, -1):
                raise QueryError(f"$sort direction for {path!r} must be 1 or -1", field=path)
        return [{"$sort": spec}]

    def _count(self, name: str, spec: Any) -> None:
        if type(spec) is not int or spec < 0:
            raise QueryError(f"{name} takes a non-negative integer")

    def stage_limit(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        self._count("$limit", spec)
        return [{"$limit": spec}]

    def stage_skip(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        self._count("$skip", spec)
        return [{"$skip": spec}]

    def stage_sample(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        if not isinstance(spec, Mapping) or set(spec) != {"size"}:
            raise QueryError("$sample takes {size: n}")
        self._count("$sample size", spec["size"])
        return [{"$sample": spec}]

    def stage_addFields(self, spec: Any, scope: _Scope, name: str = "$addFields") -> list[dict[str, Any]]:
        if not isinstance(spec, Mapping) or not spec:
            raise QueryError(f"{name} takes an object of new fields")
        for path, expr in spec.items():
            check_field_name(path)
            scope.expression(expr)
        scope.made.update(spec)
        return [{name: spec}]

    def stage_set(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        return self.stage_addFields(spec, scope, "$set")

    def stage_unset(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        for path in [spec] if isinstance(spec, str) else spec if isinstance(spec, list) else [None]:
            check_field_name(path)
            scope.check(path)
        return [{"$unset": spec}]

    def stage_project(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        if not isinstance(spec, Mapping) or not spec:
            raise QueryError("$project takes an object of fields")
        for path, value in spec.items():
            check_field_name(path)
            if value in (0, 1) or isinstance(value, bool):
                scope.check(path)
            else:
                scope.expression(value)
                scope.made.add(path)
        return [{"$project": spec}]

    def stage_unwind(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        options = {"path": spec} if isinstance(spec, str) else spec
        if not isinstance(options, Mapping) or not isinstance(options.get("path"), str) or not options["path"].startswith("$"):
            raise QueryError("$unwind takes \"$field\" or {path: \"$field\", ...}")
        unknown = set(options) - {"path", "includeArrayIndex", "preserveNullAndEmptyArrays"}
        if unknown:
            raise QueryError(f"$unwind does not take {sorted(unknown)}")
        check_field_name(options["path"][1:])
        scope.check(options["path"][1:])
        if "includeArrayIndex" in options:
            check_field_name(options["includeArrayIndex"])
            scope.made.add(options["includeArrayIndex"])
        return [{"$unwind": spec}]

    # --- stages after which every field was made by the pipeline ----------------------------

    def _reshape(self, name: str, spec: Any, scope: _Scope, expressions: list[Any]) -> list[dict[str, Any]]:
        for expr in expressions:
            scope.expression(expr)
        scope.free = True
        return [{name: spec}]

    def stage_group(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        if not isinstance(spec, Mapping) or "_id" not in spec:
            raise QueryError("$group takes {_id: ..., field: {accumulator: ...}}")
        return self._reshape("$group", spec, scope, list(spec.values()))

    def stage_count(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        check_field_name(spec)
        return self._reshape("$count", spec, scope, [])

    def stage_replaceRoot(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        if not isinstance(spec, Mapping) or set(spec) != {"newRoot"}:
            raise QueryError("$replaceRoot takes {newRoot: expression}")
        return self._reshape("$replaceRoot", spec, scope, [spec["newRoot"]])

    def stage_replaceWith(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        return self._reshape("$replaceWith", spec, scope, [spec])

    def stage_sortByCount(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        return self._reshape("$sortByCount", spec, scope, [spec])

    def stage_bucket(self, spec: Any, scope: _Scope, name: str = "$bucket") -> list[dict[str, Any]]:
        if not isinstance(spec, Mapping) or "groupBy" not in spec:
            raise QueryError(f"{name} takes {{groupBy: ..., ...}}")
        output = spec.get("output", {})
        return self._reshape(name, spec, scope, [spec["groupBy"], *(output.values() if isinstance(output, Mapping) else [output])])

    def stage_bucketAuto(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        return self.stage_bucket(spec, scope, "$bucketAuto")

    def stage_facet(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        if not isinstance(spec, Mapping) or not spec:
            raise QueryError("$facet takes {name: [stages], ...}")
        branches = {name: self.pipeline(stages, scope.branch()) for name, stages in spec.items()}
        scope.free = True
        return [{"$facet": branches}]

    # --- stages where another collection enters ---------------------------------------------

    def stage_lookup(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("as"), str):
            raise QueryError("$lookup takes {from, as, and localField/foreignField and/or let/pipeline}")
        unknown = set(spec) - {"from", "localField", "foreignField", "let", "pipeline", "as"}
        if unknown:
            raise QueryError(f"$lookup does not take {sorted(unknown)}")
        foreign = self.plan(spec.get("from"), "read")
        let = spec.get("let", {})
        if not isinstance(let, Mapping):
            raise QueryError("$lookup let takes an object of variables")
        inner = _Scope(spec["from"], foreign, variables=frozenset(let))
        rewritten: dict[str, Any] = {"from": spec["from"]}
        if "localField" in spec or "foreignField" in spec:
            local_field, foreign_field = spec.get("localField"), spec.get("foreignField")
            check_field_name(local_field)
            check_field_name(foreign_field)
            scope.check(local_field)
            inner.check(foreign_field)  # the join matches on it before the view applies
            rewritten.update(localField=local_field, foreignField=foreign_field)
        for expr in let.values():
            scope.expression(expr)
        if let:
            rewritten["let"] = let
        caller_stages = self.pipeline(spec.get("pipeline", []), inner) if "pipeline" in spec else []
        if "localField" not in spec and "pipeline" not in spec:
            raise QueryError("$lookup needs localField/foreignField or a pipeline")
        rewritten["pipeline"] = view_stages(foreign) + caller_stages
        rewritten["as"] = spec["as"]
        check_field_name(spec["as"])
        scope.made.add(spec["as"])
        return [{"$lookup": rewritten}]

    def stage_unionWith(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        options = {"coll": spec} if isinstance(spec, str) else spec
        if not isinstance(options, Mapping) or set(options) - {"coll", "pipeline"}:
            raise QueryError("$unionWith takes \"collection\" or {coll, pipeline}")
        foreign = self.plan(options.get("coll"), "read")
        inner = self.pipeline(options.get("pipeline", []), _Scope(options["coll"], foreign))
        return [{"$unionWith": {"coll": options["coll"], "pipeline": view_stages(foreign) + inner}}]

    def stage_graphLookup(self, spec: Any, scope: _Scope) -> list[dict[str, Any]]:
        if not self.limits.graph_lookup:
            raise QueryError(
                "$graphLookup is not available on this database: it does not apply "
                "restrictSearchWithMatch, so the caller's read rules could not be enforced",
                stage="$graphLookup",
            )
        required = {"from", "startWith", "connectFromField", "connectToField", "as"}
        if not isinstance(spec, Mapping) or not required <= set(spec):
            raise QueryError(f"$graphLookup takes {sorted(required)}")
        unknown = set(spec) - required - {"maxDepth", "depthField", "restrictSearchWithMatch"}
        if unknown:
            raise QueryError(f"$graphLookup does not take {sorted(unknown)}")
        foreign = self.plan(spec["from"], "read")
        inner = _Scope(spec["from"], foreign)
        scope.expression(spec["startWith"])
        for key in ("connectFromField", "connectToField"):
            check_field_name(spec[key])
            inner.check(spec[key])  # the search follows them through the raw documents
        restrict = spec.get("restrictSearchWithMatch", {})
        check_filter(restrict, inner.check)
        check_field_name(spec["as"])
        # The caller's restriction runs on the collection's raw documents: restricted as a find's is.
        rewritten = {**spec, "restrictSearchWithMatch": foreign.restrict(restrict)}
        depth = spec.get("depthField")
        view = _View.of(foreign.role_fields, keep=[depth] if isinstance(depth, str) else [])
        scope.made.add(spec["as"])
        stages: list[dict[str, Any]] = [{"$graphLookup": rewritten}]
        if not view.unrestricted:
            found = "$" + spec["as"]
            stages.append({"$set": {spec["as"]: {"$map": {"input": found, "as": "pm_found", "in": view.expression("$$pm_found")}}}})
        return stages


_STAGES = {
    "$match": _Rewriter.stage_match,
    "$sort": _Rewriter.stage_sort,
    "$limit": _Rewriter.stage_limit,
    "$skip": _Rewriter.stage_skip,
    "$sample": _Rewriter.stage_sample,
    "$addFields": _Rewriter.stage_addFields,
    "$set": _Rewriter.stage_set,
    "$unset": _Rewriter.stage_unset,
    "$project": _Rewriter.stage_project,
    "$unwind": _Rewriter.stage_unwind,
    "$group": _Rewriter.stage_group,
    "$count": _Rewriter.stage_count,
    "$replaceRoot": _Rewriter.stage_replaceRoot,
    "$replaceWith": _Rewriter.stage_replaceWith,
    "$sortByCount": _Rewriter.stage_sortByCount,
    "$bucket": _Rewriter.stage_bucket,
    "$bucketAuto": _Rewriter.stage_bucketAuto,
    "$facet": _Rewriter.stage_facet,
    "$lookup": _Rewriter.stage_lookup,
    "$unionWith": _Rewriter.stage_unionWith,
    "$graphLookup": _Rewriter.stage_graphLookup,
}


# --- the view: a document as the caller may see it, as an aggregation expression ------------

# The view's last stage when no field is restricted: the document itself, computed.
_BARRIER: dict[str, Any] = {"$replaceWith": {"$mergeObjects": ["$$ROOT"]}}


def view_stages(plan: Plan, *, extra_filter: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """``$match`` on the plan's filter, then the document rebuilt as the caller may see it.

    The rebuilt document is also a barrier. MongoDB moves a ``$match`` ahead of the stages
    before it whose modified paths it knows and the filter does not read (``$sort``,
    ``$project``/``$set``/``$unset``, ``$lookup``, and ``$replaceWith`` of a bare field path),
    then merges adjacent ``$match`` stages into one ``$and``, which fixes no order: a caller's
    ``$expr`` would run on every document of the collection, and one that can fail would
    answer questions about documents outside the view. A ``$replaceWith`` of a computed
    document modifies every path, so nothing the caller wrote moves ahead of it; it is kept
    even when no field is restricted."""
    match = plan.filter if extra_filter is None else to_mongo(conjoin(dict(plan.filter), dict(extra_filter)))
    view = _View.of(plan.role_fields)
    if view.unrestricted:
        return [{"$match": match}, dict(_BARRIER)]
    return [{"$match": match}, {"$replaceWith": view.expression("$$ROOT")}]


_STRICTNESS = {FULL: 0, PARTIAL: 1, HIDDEN: 3}
_OTHER = "\x00"  # a name no field has: what the rules say of fields they do not name


def _strictest(statuses: Sequence[str]) -> str:
    def rank(status: str) -> int:
        return 2 if status.startswith(MASKED) else _STRICTNESS[status]
    worst = max(statuses, key=rank)
    if worst.startswith(MASKED) and len({s for s in statuses if s.startswith(MASKED)}) > 1:
        return MASKED + "redact"  # two roles mask it differently: show neither
    return worst


@dataclass
class _View:
    """How to rebuild one level of a document: per named field keep, drop, mask or recurse;
    ``keep_others`` for the fields not named."""

    keep_others: bool
    drop: set[str] = field(default_factory=set)
    keep: set[str] = field(default_factory=set)
    masks: dict[str, str] = field(default_factory=dict)
    partial: dict[str, _View] = field(default_factory=dict)

    @property
    def unrestricted(self) -> bool:
        return self.keep_others and not (self.drop or self.masks or self.partial)

    @classmethod
    def of(cls, roles: Sequence[RoleFields], prefix: str = "", keep: Sequence[str] = ()) -> _View:
        names: set[str] = set(keep)
        for role in roles:
            rules = role.rules
            for path in (*rules.deny, *rules.mask, *(rules.allow or ())):
                if prefix == "" or path.startswith(prefix):
                    rest = path[len(prefix):]
                    names.add(rest.split(".", 1)[0])
        if prefix == "":
            names.add("_id")
        view = cls(keep_others=_strictest([r.status(prefix + _OTHER) for r in roles]) == FULL)
        for name in names:
            status = FULL if name in keep else _strictest([r.status(prefix + name) for r in roles])
            if status == FULL:
                view.keep.add(name)
            elif status == HIDDEN:
                view.drop.add(name)
            elif status == PARTIAL:
                view.partial[name] = cls.of(roles, prefix + name + ".")
            else:
                view.masks[name] = status.removeprefix(MASKED)
        return view

    def expression(self, document: str, depth: int = 0) -> dict[str, Any]:
        """An expression rebuilding ``document`` (an expression evaluating to a document)."""
        entry = f"$$pm_f{depth}"
        if self.keep_others:
            wanted: Any = {"$not": [{"$in": [entry + ".k", sorted(self.drop)]}]}
        else:
            wanted = {"$in": [entry + ".k", sorted(self.keep | set(self.masks) | set(self.partial))]}
        entries: Any = {"$filter": {"input": {"$objectToArray": document}, "as": f"pm_f{depth}", "cond": wanted}}
        branches = [
            {"case": {"$eq": [entry + ".k", name]}, "then": mask_expression(entry + ".v", mask_type)}
            for name, mask_type in sorted(self.masks.items())
        ] + [
            {"case": {"$eq": [entry + ".k", name]}, "then": inner._value_expression(entry + ".v", depth + 1)}
            for name, inner in sorted(self.partial.items())
        ]
        if branches:
            entries = {"$map": {"input": entries, "as": f"pm_f{depth}", "in": {
                "k": entry + ".k", "v": {"$switch": {"branches": branches, "default": entry + ".v"}},
            }}}
        return {"$arrayToObject": entries}

    def _value_expression(self, value: str, depth: int) -> dict[str, Any]:
        """A partly hidden value: documents rebuilt, arrays element by element (an array
        directly inside an array becomes null, as ``Plan.shape`` does)."""
        element = f"$$pm_e{depth}"
        return {"$switch": {"branches": [
            {"case": {"$eq": [{"$type": value}, "object"]}, "then": self.expression(value, depth)},
            {"case": {"$isArray": value}, "then": {"$map": {"input": value, "as": f"pm_e{depth}", "in": {"$switch": {
                "branches": [
                    {"case": {"$eq": [{"$type": element}, "object"]}, "then": self.expression(element, depth + 1)},
                    {"case": {"$isArray": element}, "then": None},
                ],
                "default": element,
            }}}}},
        ], "default": value}}


# --- masks as expressions (the same results as _fields.mask_value) ---------------------------

_DIGITS = list("0123456789")


def _stars(count: Any) -> dict[str, Any]:
    return {"$reduce": {"input": {"$range": [0, count]}, "initialValue": "", "in": {"$concat": ["$$value", "*"]}}}


def _mask_partial(s: Any) -> dict[str, Any]:
    return {"$let": {"vars": {"n": {"$strLenCP": s}}, "in": {"$cond": [
        {"$lte": ["$$n", 2]},
        _stars("$$n"),
        {"$concat": [{"$substrCP": [s, 0, 1]}, _stars({"$subtract": ["$$n", 2]}), {"$substrCP": [s, {"$subtract": ["$$n", 1]}, 1]}]},
    ]}}}


def _mask_email(s: Any) -> dict[str, Any]:
    return {"$let": {"vars": {"parts": {"$split": [s, "@"]}}, "in": {"$cond": [
        {"$or": [
            {"$lt": [{"$size": "$$parts"}, 2]},
            {"$and": [{"$eq": [{"$size": "$$parts"}, 2]}, {"$eq": [{"$arrayElemAt": ["$$parts", 0]}, ""]}]},
        ]},
        _mask_partial(s),
        {"$concat": [{"$substrCP": [s, 0, 1]}, "***@", {"$arrayElemAt": ["$$parts", -1]}]},
    ]}}}


def _mask_phone(s: Any) -> dict[str, Any]:
    def char(index: Any) -> dict[str, Any]:
        return {"$substrCP": [s, index, 1]}
    digits = {"$size": {"$filter": {"input": {"$range": [0, {"$strLenCP": s}]}, "as": "i", "cond": {"$in": [char("$$i"), _DIGITS]}}}}
    keep_digit = {"$and": [
        {"$gt": ["$$total", 4]},
        {"$or": [
            {"$and": ["$$value.code", {"$gte": ["$$this", 1]}]},  # the country code after '+'
            {"$gte": ["$$value.seen", {"$subtract": ["$$total", 4]}]},  # the last four digits
        ]},
    ]}
    next_state = {
        "out": {"$concat": ["$$value.out", {"$cond": [{"$and": ["$$digit", {"$not": [keep_digit]}]}, "*", "$$c"]}]},
        "seen": {"$add": ["$$value.seen", {"$cond": ["$$digit", 1, 0]}]},
        "code": {"$and": ["$$value.code", {"$or": [{"$eq": ["$$this", 0]}, "$$digit"]}]},
    }
    step = {"$let": {
        "vars": {"c": char("$$this")},
        "in": {"$let": {"vars": {"digit": {"$in": ["$$c", _DIGITS]}}, "in": next_state}},
    }}
    scan = {"$reduce": {
        "input": {"$range": [0, {"$strLenCP": s}]},
        "initialValue": {"out": "", "seen": 0, "code": {"$eq": [{"$substrCP": [s, 0, 1]}, "+"]}},
        "in": step,
    }}
    return {"$let": {"vars": {"total": digits}, "in": {"$let": {"vars": {"scan": scan}, "in": "$$scan.out"}}}}


_STRING_MASKS = {"email": _mask_email, "phone": _mask_phone, "partial": _mask_partial}


def mask_expression(value: str, mask_type: str) -> dict[str, Any]:
    """The masked form of ``value`` (an expression): strings by type, each string of an array
    likewise, anything else ``"***"``."""
    string_mask = _STRING_MASKS.get(mask_type)
    def masked_string(s: str) -> Any:
        return string_mask(s) if string_mask else "***"
    return {"$switch": {"branches": [
        {"case": {"$eq": [{"$type": value}, "string"]}, "then": masked_string(value)},
        {"case": {"$isArray": value}, "then": {"$map": {"input": value, "as": "pm_m", "in": {"$cond": [
            {"$eq": [{"$type": "$$pm_m"}, "string"]}, masked_string("$$pm_m"), "***",
        ]}}}},
    ], "default": "***"}}
