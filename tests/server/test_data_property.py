"""What ``find`` returns through the gateway is exactly what the policy says the caller may read.

For random documents (inserted directly with pymongo) and random callers (JWTs), the gateway's
pages, followed to the end, hold exactly the documents ``policy.allows(identity, "read", ...)``
accepts, each shaped by ``plan.shape``: the filter the gateway injects, the shaping and the
paging agree with the engine.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from bson import json_util
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permission_mongo.policy import Identity, load_policy

from .conftest import NOTES_POLICY
from .harness import Gateway, user_client

EXAMPLES = int(os.environ.get("PM_GATEWAY_EXAMPLES", "25"))
POLICY = load_policy(NOTES_POLICY)

USERS = ["u1", "u2"]
TENANTS = ["acme", "globex"]
LABELS = ["public", "draft", "locked"]
SCALARS = st.sampled_from([None, True, 0, 1, 3, 5, 6, -1, 2.5, "3", "x", "", "acme", "u1"])
field_values = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.sampled_from(["internal", "tag"]), SCALARS, max_size=2))

documents = st.fixed_dictionaries(
    {},
    optional={
        "tenant_id": st.one_of(st.sampled_from(TENANTS), SCALARS),
        "owner_id": st.one_of(st.sampled_from(USERS), SCALARS),
        "labels": st.one_of(st.lists(st.sampled_from(LABELS), max_size=3), SCALARS),
        "level": st.one_of(st.integers(-1, 7), SCALARS),
        "title": field_values,
        "secret": field_values,
        "email": st.one_of(st.sampled_from(["ann@example.com", "b@x.org"]), SCALARS),
        "meta": field_values,
        "audit": field_values,
    },
)
identities = st.builds(
    lambda user, tenant, roles: Identity(id=user, tenant_id=tenant, roles=roles),
    st.sampled_from(USERS),
    st.sampled_from(TENANTS),
    st.lists(st.sampled_from(["reader", "writer", "auditor"]), min_size=1, max_size=2, unique=True),
)


def test_find_returns_exactly_what_the_policy_allows_shaped(notes_gateway: Gateway, notes_database: Any) -> None:
    collection_name = "notes"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    )
    @given(docs=st.lists(documents, min_size=5, max_size=25), callers=st.lists(identities, min_size=1, max_size=3), limit=st.integers(2, 9))
    def check(docs: list[dict[str, Any]], callers: list[Identity], limit: int) -> None:
        batch = uuid.uuid4().hex
        stored = [{"_id": f"{batch}-{i:02d}", **doc} for i, doc in enumerate(docs)]
        notes_database[collection_name].insert_many(stored)
        try:
            for identity in callers:
                plan = POLICY.plan(identity, "read", collection_name)
                expected = [plan.shape(doc) for doc in stored if plan.allows(doc)]
                with user_client(notes_gateway, identity.id, identity.tenant_id, list(identity.roles)) as client:
                    seen: list[Any] = []
                    cursor = None
                    while True:
                        body: dict[str, Any] = {"filter": {"_id": {"$regex": f"^{batch}-"}}, "limit": limit}
                        if cursor:
                            body["cursor"] = cursor
                        response = client.post(f"/v1/data/{collection_name}/find", json=body)
                        if not plan.allowed:
                            assert response.status_code == 403
                            break
                        assert response.status_code == 200, response.text
                        page = json_util.loads(response.text)
                        seen.extend(page["data"])
                        cursor = page["pagination"]["cursor"]
                        if cursor is None:
                            break
                if plan.allowed:
                    assert sorted(seen, key=lambda d: d["_id"]) == expected, (identity, stored)
        finally:
            notes_database[collection_name].delete_many({"_id": {"$regex": f"^{batch}-"}})

    check()
