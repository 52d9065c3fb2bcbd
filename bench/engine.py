"""Engine benchmark: plan per request, evaluate per document, against pycasbin's enforce().

    python bench/engine.py

Prints each figure and its ratio to pycasbin's ``enforce()`` on the equivalent RBAC model
(roles, inheritance, actions; no conditions), measured in the same run. Targets: a plan in at
most 20 µs per request, an evaluation in at most 5 µs per document.

"Per request" builds a new Identity each time, as a gateway does from a JWT; the plan comes
from the cache keyed by the caller's roles and the values its rules read. "A caller's first
request" uses values never seen before, so it compiles every time.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import timeit
from collections.abc import Callable

import casbin

from permission_mongo.policy import Identity, load_policy

POLICY = """
roles:
  viewer: {}
  user: {inherits: [viewer]}
  manager: {inherits: [user]}
  admin: {}
policies:
  documents:
    viewer:
      actions: [read]
      when: doc.tenant_id == user.tenant_id
    user:
      actions: [create, read, update]
      when: doc.tenant_id == user.tenant_id && doc.owner_id == user.id
      fields:
        deny: [internal_notes]
        deny_write: [salary]
        mask: {email: email, phone: phone}
    manager:
      actions: [read, update, delete, restore]
      when: doc.tenant_id == user.tenant_id && doc.created_by in user.subordinates
    admin:
      actions: [create, read, update, delete, restore, aggregate]
"""

CASBIN_MODEL = """
[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
"""

CASBIN_POLICY = """
p, viewer, documents, read
p, user, documents, create
p, user, documents, read
p, user, documents, update
p, manager, documents, read
p, manager, documents, update
p, manager, documents, delete
p, manager, documents, restore
g, user, viewer
g, manager, user
g, alice, manager
"""

DOCUMENT = {
    "_id": "d1", "tenant_id": "acme", "owner_id": "u9", "created_by": "u2",
    "title": "Quarterly report", "email": "jane@example.com", "salary": 10,
}


def per_call(fn: Callable[[], object], *, min_seconds: float = 0.3) -> float:
    """Seconds per call: best of five runs, each long enough to be measured."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(number, int(number * min_seconds / 0.2))
    return min(timer.repeat(repeat=5, number=number)) / number


def main() -> None:
    policy = load_policy(POLICY)

    def manager() -> Identity:
        return Identity(id="u1", tenant_id="acme", roles=["manager"], subordinates=["u2", "u3"])

    cached_plan = policy.plan(manager(), "read", "documents")
    assert cached_plan.allows(DOCUMENT)

    with tempfile.TemporaryDirectory() as folder:
        model_path, policy_path = os.path.join(folder, "model.conf"), os.path.join(folder, "policy.csv")
        with open(model_path, "w") as f:
            f.write(CASBIN_MODEL)
        with open(policy_path, "w") as f:
            f.write(CASBIN_POLICY)
        enforcer = casbin.Enforcer(model_path, policy_path)
    assert enforcer.enforce("alice", "documents", "read")

    fresh_ids = itertools.count()

    def unseen_caller() -> Identity:
        # Values no plan was compiled for yet: every call compiles.
        return Identity(id=f"u{next(fresh_ids)}", tenant_id=f"t{next(fresh_ids)}", roles=["manager"], subordinates=["u2"])

    figures = {
        "pycasbin enforce() (reference)": per_call(lambda: enforcer.enforce("alice", "documents", "read")),
        "plan per request (cached per caller)": per_call(lambda: policy.plan(manager(), "read", "documents")),
        "plan, a caller's first request": per_call(lambda: policy.plan(unseen_caller(), "read", "documents")),
        "evaluate one document": per_call(lambda: cached_plan.allows(DOCUMENT)),
        "shape one document (mask, deny)": per_call(lambda: cached_plan.shape(DOCUMENT)),
    }
    reference = figures["pycasbin enforce() (reference)"]
    print(f"{'measure':36} {'µs/call':>9} {'vs casbin':>10}")
    for name, seconds in figures.items():
        print(f"{name:36} {seconds * 1e6:9.2f} {seconds / reference:9.2f}x")
    print("targets: plan <= 20 µs per request, evaluate <= 5 µs per document")


if __name__ == "__main__":
    main()
