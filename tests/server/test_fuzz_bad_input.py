"""Invariant 7 as a property: whatever JSON a caller sends to the data plane, the answer is a
success or a 4xx in the error envelope, never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import Gateway, user_client

EXPENSES = "/v1/data/expenses"

keys = st.sampled_from(["title", "amount", "status", "$and", "$or", "$expr", "$gt", "$in", "$set", "$inc",
                        "$unset", "$push", "$match", "$group", "$lookup", "_id", "a.b", "$", "", "tags.0"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5),
                    st.sampled_from(["$amount", "$$ROOT", "$title", "$$NOW", "expenses"]))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=3)),
    max_leaves=8,
)
requests = st.one_of(
    st.tuples(st.just("POST"), st.just(f"{EXPENSES}/find"),
              st.fixed_dictionaries({}, optional={"filter": json_values, "sort": json_values, "fields": json_values,
                                                  "limit": json_values, "cursor": json_values})),
    st.tuples(st.just("POST"), st.just(f"{EXPENSES}/count"), st.fixed_dictionaries({"filter": json_values})),
    st.tuples(st.just("POST"), st.just(f"{EXPENSES}/aggregate"), st.fixed_dictionaries({"pipeline": json_values})),
    st.tuples(st.just("POST"), st.just(EXPENSES), json_values),
    st.tuples(st.just("PATCH"), st.just(f"{EXPENSES}/batch"),
              st.fixed_dictionaries({}, optional={"filter": json_values, "ids": json_values, "update": json_values,
                                                  "all": json_values})),
    st.tuples(st.just("POST"), st.just(f"{EXPENSES}/batch"), st.fixed_dictionaries({"documents": json_values})),
)


@pytest.fixture(scope="module")
def root(gateway: Gateway) -> Any:
    with user_client(gateway, "root", "fuzz-tenant", ["admin"]) as client:
        yield client


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=requests)
def test_no_input_makes_a_server_error(root: httpx.Client, request: tuple[str, str, Any]) -> None:
    method, path, body = request
    response = root.request(method, path, json=body)
    assert response.status_code < 500, (method, path, body, response.text)
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "meta"}
