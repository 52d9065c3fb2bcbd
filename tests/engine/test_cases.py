"""Data-driven engine cases: each YAML file under cases/ holds a policy, a caller and what
the engine must answer. Add a file to add a case."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from permission_mongo.policy import Identity, load_policy

CASES = sorted((Path(__file__).parent / "cases").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[case.stem for case in CASES])
def test_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    policy = load_policy(case["policy"])
    identity = Identity(**case["identity"])
    collection = policy.collections[0]

    for check in case.get("checks", []):
        assert policy.allows(identity, check["action"], collection, check["document"]) is check["allowed"], check

    for expected in case.get("plans", []):
        plan = policy.plan(identity, expected["action"], collection)
        assert plan.allowed is expected["allowed"]
        if "roles" in expected:
            assert sorted(plan.roles) == sorted(expected["roles"])

    read = policy.plan(identity, "read", collection)
    for shape in case.get("shapes", []):
        assert read.shape(shape["document"]) == shape["expect"], shape["document"]

    for action, fields in case.get("filterable", {}).items():
        plan = policy.plan(identity, action, collection)
        assert [f for f in fields["allowed"] if not plan.can_filter(f)] == []
        assert [f for f in fields["refused"] if plan.can_filter(f)] == []

    for writes in case.get("writable", []):
        plan = policy.plan(identity, writes["action"], collection)
        assert [f for f in writes["allowed"] if not plan.can_write(f, writes["document"])] == []
        assert [f for f in writes["refused"] if plan.can_write(f, writes["document"])] == []
