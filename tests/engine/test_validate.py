"""Documents against schema.yml's field declarations."""

from __future__ import annotations

import datetime as dt

import pytest

from permission_mongo.policy import load_policy
from permission_mongo.policy._validate import validate_document

SCHEMA = """
collections:
  users:
    fields:
      name: {type: string, required: true, min_length: 1, max_length: 5}
      age: {type: integer, min: 0, max: 150}
      score: {type: number, min: 0}
      status: {type: string, enum: [active, inactive]}
      code: {type: string, pattern: "^[A-Z]{2}$"}
      joined: {type: date}
      tags: {type: array, max_length: 2, items: {type: string}}
      address: {type: object, properties: {city: {type: string, required: true}}}
"""
POLICY = "roles: {app: {}}\npolicies: {users: {app: {actions: [read]}}}\n"


@pytest.fixture(scope="module")
def schema():
    return load_policy(POLICY, schema=SCHEMA).collection("users")


def test_a_valid_document_has_no_problems(schema):
    doc = {"name": "Ada", "age": 36, "score": 1.5, "status": "active", "code": "UK",
           "joined": dt.datetime(2024, 1, 1), "tags": ["a"], "address": {"city": "London"}, "other": {"x": 1}}
    assert validate_document(schema, doc) == []


def test_optional_fields_may_be_left_out_or_null(schema):
    assert validate_document(schema, {"name": "Ada", "age": None}) == []


@pytest.mark.parametrize(("document", "problem"), [
    ({}, {"field": "name", "message": "is required"}),
    ({"name": None}, {"field": "name", "message": "is required"}),
    ({"name": ""}, {"field": "name", "message": "must have at least 1 character"}),
    ({"name": "Adalbert"}, {"field": "name", "message": "must have at most 5 characters"}),
    ({"name": 5}, {"field": "name", "message": "must be a string"}),
    ({"name": "A", "age": 1.5}, {"field": "age", "message": "must be an integer"}),
    ({"name": "A", "age": True}, {"field": "age", "message": "must be an integer"}),
    ({"name": "A", "age": -1}, {"field": "age", "message": "must be at least 0"}),
    ({"name": "A", "score": float("nan")}, {"field": "score", "message": "must be at least 0"}),
    ({"name": "A", "status": "gone"}, {"field": "status", "message": "must be one of 'active', 'inactive'"}),
    ({"name": "A", "code": "uk"}, {"field": "code", "message": "must match the pattern '^[A-Z]{2}$'"}),
    ({"name": "A", "joined": "2024-01-01"}, {"field": "joined", "message": "must be a date"}),
    ({"name": "A", "tags": ["a", "b", "c"]}, {"field": "tags", "message": "must have at most 2 items"}),
    ({"name": "A", "tags": ["a", 1]}, {"field": "tags.1", "message": "must be a string"}),
    ({"name": "A", "address": {}}, {"field": "address.city", "message": "is required"}),
])
def test_each_problem_names_the_field_and_what_to_fix(schema, document, problem):
    assert validate_document(schema, document) == [problem]


def test_every_problem_is_reported_at_once(schema):
    assert len(validate_document(schema, {"age": -1, "status": "gone"})) == 3
