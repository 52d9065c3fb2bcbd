"""Where schema.yml declares a field scalar, the compiler drops its array guards."""

from __future__ import annotations

from permission_mongo.policy import COLLATION, Identity, load_policy

POLICY = """
roles:
  member: {}
policies:
  docs:
    member:
      actions: [read]
      when: doc.status == "open" || !(doc.amount > 5) || doc.kind in ["a", "b"]
"""
SCHEMA = """
collections:
  docs:
    fields:
      status: {type: string}
      amount: {type: number}
"""


def test_declared_scalars_have_no_array_guard_and_stay_exact(db):
    policy = load_policy(POLICY, schema=SCHEMA)
    ident = Identity(id="u1", roles=["member"])
    plan = policy.plan(ident, "read", "docs")
    text = repr(plan.filter)
    assert "'status': {'$eq': 'open'}" in text  # no $not: {$type: array} beside it
    assert "'kind': {'$not': {'$type': 'array'}" in text  # undeclared: guarded
    documents = [
        {"status": "open"}, {"status": "closed"}, {"amount": 3}, {"amount": 9}, {},
        {"kind": "a"}, {"kind": ["a"]}, {"status": "closed", "amount": float("nan")},
    ]
    db.docs.insert_many([{"_id": i, **doc} for i, doc in enumerate(documents)])
    found = {d["_id"] for d in db.docs.find(plan.filter, collation=COLLATION)}
    assert found == {i for i, doc in enumerate(documents) if plan.allows(doc)} == {0, 2, 5, 7}
