"""Masked values through writes: ``masked_dependency`` (issue 8, class 3).

A masked field is shown to the caller as a stand-in (``"***"``, ``"1**4"``, ``"a***@x.org"``),
so two documents differing only in what their masked fields hold look the same to it. Every
update the engine lets through must then answer the same for both (its error, the schema
problems of what it writes, the new state as the caller reads it): that is the property below,
for random updates, callers and masked values. The trap test shows the guard a first attempt
would write (the field rules of writes alone) failing it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permission_mongo.policy import Identity, Plan, load_policy
from permission_mongo.policy._engine import masked_dependency
from permission_mongo.policy._query import stripped_positions
from permission_mongo.policy._update import UpdateError, apply_update, update_paths, validate_update, written_paths
from permission_mongo.policy._validate import validate_document

POLICY = """
roles:
  clerk: {}
  auditor: {}
  editor: {}
policies:
  cards:
    clerk:        # reads and updates its tenant's cards, three fields masked
      actions: [read, update]
      when: doc.tenant_id == user.tenant_id
      fields:
        mask: {pin: redact, card.number: partial, owner.email: email}
    auditor:      # sees public cards whole
      actions: [read, update]
      when: doc.tenant_id == user.tenant_id && doc.public == true
    editor:       # updates with nothing masked, reads nothing: the answer is the clerk's view
      actions: [update]
      when: doc.tenant_id == user.tenant_id
"""
SCHEMA = """
collections:
  cards:
    fields:
      pin: {type: string, max_length: 4}
"""
policy = load_policy(POLICY, schema=SCHEMA)
schema = policy.collection("cards")

MISSING = object()
# Values each mask shows alike: any two of one group look the same to a clerk.
REDACTED = ["A", "BBBBBB", 3, 4.5, None, {"x": 1}, {}, True, MISSING]
REDACTED_LISTS = [["a"], [1], [{"x": 1}], ["b"]]
PARTIAL = ["1234", "1994", "1004"]
SHORT = ["12", "34"]
EMAILS = ["ann@x.org", "amy@x.org", "a@x.org"]
pins = st.sampled_from([REDACTED, REDACTED_LISTS]).flatmap(lambda g: st.tuples(st.sampled_from(g), st.sampled_from(g)))
numbers = st.sampled_from([PARTIAL, SHORT, REDACTED]).flatmap(lambda g: st.tuples(st.sampled_from(g), st.sampled_from(g)))
emails = st.sampled_from([EMAILS, REDACTED]).flatmap(lambda g: st.tuples(st.sampled_from(g), st.sampled_from(g)))

PATHS = ["pin", "pin.x", "pin.0", "card", "card.number", "card.number.x", "card.brand", "owner", "owner.email",
         "owner.email.0", "title", "n", "tags", "tags.0", "fresh"]
TARGETS = ["moved", "card.moved", "owner.moved", "pin", "card.number", "title2"]
ARGUMENTS = st.sampled_from(["A", "1234", "zz", 2, -1, 1.5, None, [], ["a"], {"x": 1}, {}])
OPERATORS = {
    "$set": ARGUMENTS, "$unset": st.just(""), "$inc": st.sampled_from([1, -2, 0.5]),
    "$mul": st.sampled_from([2, 0, -1.5]), "$min": ARGUMENTS, "$max": ARGUMENTS, "$push": ARGUMENTS,
    "$addToSet": ARGUMENTS, "$pull": ARGUMENTS, "$rename": st.sampled_from(TARGETS),
}
changes = st.sampled_from(sorted(OPERATORS)).flatmap(
    lambda op: st.tuples(st.just(op), st.sampled_from(PATHS), OPERATORS[op])
)
updates = st.lists(changes, min_size=1, max_size=2).map(
    lambda items: {op: {path: arg for o, path, arg in items if o == op} for op, _, _ in items}
)
callers = st.lists(st.sampled_from(["clerk", "auditor", "editor"]), min_size=1, max_size=3, unique=True)


def card(pin: Any, number: Any, email: Any, *, public: bool) -> dict[str, Any]:
    document: dict[str, Any] = {"_id": 1, "tenant_id": "t1", "public": public, "title": "x", "n": 1, "tags": ["a"],
                                "card": {"brand": "visa"}, "owner": {"name": "Ann"}}
    for holder, key, value in ((document, "pin", pin), (document["card"], "number", number), (document["owner"], "email", email)):
        if value is not MISSING:
            holder[key] = value
    return document


def writable(plan: Plan, path: str, document: dict[str, Any]) -> bool:
    bare = stripped_positions(path)
    return plan.can_write(path, document) and (not bare or bare == path or plan.can_write(bare, document))


def outcome(identity: Identity, before: dict[str, Any], update: dict[str, Any], *, guarded: bool = True) -> Any:
    """What the gateway answers to ``update`` of ``before`` (its post-image checks, in order),
    with the masked-value rule or, ``guarded=False``, without it."""
    plan, read = policy.plan(identity, "update", "cards"), policy.plan(identity, "read", "cards")
    if not read.allows(before) or not plan.allows(before):
        return "not found or forbidden"
    try:
        validate_update(update)
    except UpdateError as exc:
        return ("bad request", exc.message)
    paths = [path for _, path in update_paths(update)]
    for path in paths:
        if not writable(plan, path, before):
            return ("not writable", path)
    if guarded:
        masked = masked_dependency(update, before, (plan, read))
        if masked is not None:
            return ("masked", masked)
    try:
        after = apply_update(before, update)
    except UpdateError as exc:
        return ("error", exc.message)
    if not plan.allows(after) or not all(writable(plan, path, after) for path in paths):
        return "forbidden after"
    written = written_paths(update, before)
    problems = [p for p in validate_document(schema, after) if any(
        p["field"] == path or p["field"].startswith(path + ".") or path.startswith(p["field"] + ".") for path in written)]
    if problems:
        return ("invalid", problems)
    return ("ok", read.shape(after))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(update=updates, roles=callers, pin=pins, number=numbers, email=emails, public=st.booleans())
def test_what_an_update_answers_does_not_depend_on_masked_values(update, roles, pin, number, email, public) -> None:
    identity = Identity(id="u1", tenant_id="t1", roles=roles)
    first, second = card(pin[0], number[0], email[0], public=public), card(pin[1], number[1], email[1], public=public)
    read = policy.plan(identity, "read", "cards")
    if read.shape(first) != read.shape(second):
        return  # the caller tells them apart already (a role shows them unmasked)
    assert outcome(identity, first, update) == outcome(identity, second, update)


# (roles, update, two values of pin or card.number the caller sees alike)
TRAPS = [
    (["clerk"], {"$rename": {"pin": "moved"}}, "A", "B"),               # the clear value, moved
    (["clerk", "editor"], {"$rename": {"card": "moved"}}, "1234", "1994"),  # ...with its holder
    (["clerk"], {"$inc": {"pin": 1}}, "A", 3),                          # a type error
    (["clerk"], {"$max": {"pin": "B"}}, "BBBBBB", "A"),                 # the schema's max_length
    (["clerk"], {"$addToSet": {"card.number": "12"}}, ["12"], ["34"]),  # an array's length
    (["clerk"], {"$pull": {"card.number": "12"}}, ["12"], ["34"]),
    (["clerk"], {"$set": {"pin.x": 1}}, "A", {}),                       # a path through a scalar
    (["clerk"], {"$push": {"pin": "9"}}, "A", 3),
    (["clerk", "editor"], {"$rename": {"pin": "moved"}}, "A", "B"),     # unmasked to update, masked to read
    (["clerk", "auditor"], {"$rename": {"pin": "moved"}}, "A", "B"),    # a private card: the auditor's rule does not hold
]


@pytest.mark.parametrize("roles, update, first, second", TRAPS, ids=repr)
def test_the_write_rules_alone_let_masked_values_through(roles, update, first, second) -> None:
    identity = Identity(id="u1", tenant_id="t1", roles=roles)
    on_pin = "pin" in next(iter(next(iter(update.values()))))
    documents = [card(v, "0000", "a@x.org", public=False) if on_pin else card("A", v, "a@x.org", public=False)
                 for v in (first, second)]
    read = policy.plan(identity, "read", "cards")
    assert read.shape(documents[0]) == read.shape(documents[1])
    naive = [outcome(identity, document, update, guarded=False) for document in documents]
    assert naive[0] != naive[1], "the naive guard should have told them apart"
    guarded = [outcome(identity, document, update) for document in documents]
    assert guarded[0] == guarded[1] and guarded[0][0] == "masked"


@pytest.mark.parametrize(
    "roles, update, public",
    [
        (["clerk"], {"$set": {"pin": "9"}}, False),
        (["clerk"], {"$unset": {"pin": ""}}, False),
        (["clerk"], {"$set": {"card.number": "5555"}}, False),
        (["clerk"], {"$rename": {"title": "pin"}}, False),
        (["clerk"], {"$inc": {"n": 1}, "$push": {"tags": "b"}}, False),
        (["clerk"], {"$set": {"card.brand": "amex"}}, False),
        (["clerk", "auditor"], {"$rename": {"pin": "moved"}}, True),      # a public card: nothing masked
        (["clerk", "auditor"], {"$pull": {"card.number": "1"}}, True),
    ],
    ids=repr,
)
def test_whole_writes_and_unmasked_fields_pass(roles, update, public) -> None:
    identity = Identity(id="u1", tenant_id="t1", roles=roles)
    plans = (policy.plan(identity, "update", "cards"), policy.plan(identity, "read", "cards"))
    assert masked_dependency(update, card("A", "1234", "a@x.org", public=public), plans) is None


def test_positions_do_not_hide_a_masked_field() -> None:
    """Field rules name no array positions: ``cards.0.number`` is ``cards.number``."""
    nested = load_policy(POLICY.replace("card.number: partial", "cards.number: partial"))
    identity = Identity(id="u1", tenant_id="t1", roles=["clerk"])
    plans = (nested.plan(identity, "update", "cards"), nested.plan(identity, "read", "cards"))
    document = {"tenant_id": "t1", "cards": [{"number": "1234"}]}
    assert masked_dependency({"$inc": {"cards.0.number": 1}}, document, plans) == ("$inc", "cards.0.number", False)
    assert masked_dependency({"$set": {"cards.0.number.x": 1}}, document, plans) == ("$set", "cards.0.number.x", True)
    assert masked_dependency({"$pull": {"cards": {"number": "1234"}}}, document, plans) == ("$pull", "cards", False)
    assert masked_dependency({"$set": {"cards.0.number": "9"}}, document, plans) is None
