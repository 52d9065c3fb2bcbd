"""Deep bodies with an Idempotency-Key (issue 9): a 700-deep create sent four times with one key
once answered 500 each time and stored four documents. Refused at the boundary, it stores
nothing: the first answer is a 422, and the repeats replay it."""

from __future__ import annotations

import uuid
from typing import Any

from .harness import Gateway, assert_error, user_client


def nest(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_deep_create_repeated_with_one_key_stores_nothing(gateway: Gateway, gateway_db: Any, tenant: str) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"name": "too deep", "deep": nest(700)}
    with user_client(gateway, "root", tenant, ["admin"]) as admin:
        first = admin.post("/v1/data/customers", json=body, headers=key)
        error = assert_error(first, 422, "VALIDATION_ERROR")
        assert "limits.max_document_depth" in error["message"]
        for _ in range(3):
            again = admin.post("/v1/data/customers", json=body, headers=key)
            assert (again.status_code, again.json()) == (422, first.json())
            assert again.headers["idempotent-replayed"] == "true"
    assert gateway_db.customers.count_documents({"tenant_id": tenant}) == 0
