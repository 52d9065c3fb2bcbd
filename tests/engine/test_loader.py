"""What the loader reads from policy.yml and schema.yml, and what it builds from them."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest

from permission_mongo.policy._cel import parse_condition
from permission_mongo.policy._loader import load_config
from permission_mongo.policy._model import CollectionSchema, FieldRules, PolicyConfig, Source
from permission_mongo.policy._yaml import Mark, YamlList, YamlMap, load_yaml

POLICY = """\
roles:
  viewer: {}
  user: {inherits: [viewer]}
  manager: {inherits: user}
  admin:
templates:
  tenant_read:
    viewer: {actions: [read], when: doc.tenant_id == user.tenant_id}
    user: {actions: [read]}
defaults:
  admin: {actions: [read]}
policies:
  documents:
    template: tenant_read
    user:
      actions: [create, read, update]
      when: doc.tenant_id == user.tenant_id && doc.owner_id == user.id
      fields:
        deny: [internal_notes]
        deny_write: [salary]
        mask: {email: email, phone: phone}
    admin:
      actions: [create, read, update, delete, restore, aggregate]
  notes:
"""

SCHEMA = """\
settings:
  default_tenant_field: tenant_id
  default_owner_field: owner_id
  auto_timestamps: true
collections:
  documents:
    access: {tenant_field: org_id}
    fields:
      title: {type: string, required: true, max_length: 200}
      amount: {type: number, min: 0}
      status: {type: string, enum: [open, closed, archived]}
      tags: {type: array, items: {type: string}}
      lines:
        type: array
        items: {type: object, properties: {sku: {type: string}}}
      address:
        type: object
        properties:
          city: {type: string}
          geo: {type: object, properties: {lat: {type: number}}}
    versioning: {enabled: true, mode: diff, max_versions: 50}
    indexes: [{keys: {title: 1}, unique: true}]
  users:
    hierarchy: {user_id_field: _id, manager_field: manager_id}
  countries:
    access: {tenant_field: null, client_ids: true}
"""


@pytest.fixture(scope="module")
def config() -> PolicyConfig:
    return load_config(POLICY, schema=SCHEMA)


# --- roles -----------------------------------------------------------------------------


def test_roles_map_to_their_parents(config: PolicyConfig) -> None:
    # ``inherits: user`` is a one-item list; ``admin:`` with nothing is a role with no parents.
    assert dict(config.roles) == {
        "viewer": (),
        "user": ("viewer",),
        "manager": ("user",),
        "admin": (),
    }


def test_parents_may_be_declared_later_and_be_several() -> None:
    policy = "roles:\n  lead: {inherits: [writer, reader]}\n  writer: {}\n  reader: {}\npolicies: {}\n"
    assert load_config(policy).roles["lead"] == ("writer", "reader")


def test_diamond_inheritance_is_no_cycle() -> None:
    policy = """\
        roles:
          base: {}
          left: {inherits: [base]}
          right: {inherits: [base]}
          top: {inherits: [left, right]}
        policies: {}
    """
    assert load_config(textwrap.dedent(policy)).roles["top"] == ("left", "right")


# --- rules -----------------------------------------------------------------------------


def test_own_rule(config: PolicyConfig) -> None:
    rule = config.rules["documents"]["user"]
    assert rule.role == "user"
    assert rule.collection == "documents"
    assert rule.actions == frozenset({"create", "read", "update"})
    assert rule.when is not None
    assert rule.when.text == "doc.tenant_id == user.tenant_id && doc.owner_id == user.id"
    assert rule.when == parse_condition(rule.when.text)
    assert rule.fields == FieldRules(
        allow=None,
        deny=("internal_notes",),
        deny_write=("salary",),
        mask={"email": "email", "phone": "phone"},
    )


def test_rule_source_is_the_rule_mapping(config: PolicyConfig) -> None:
    assert config.rules["documents"]["user"].source == Source("<policy>", 16, 7)
    # A rule from a template or the defaults points where it was written.
    assert config.rules["documents"]["viewer"].source == Source("<policy>", 8, 13)
    assert config.rules["notes"]["admin"].source == Source("<policy>", 11, 10)


def test_template_applies_and_own_entries_override_it_per_role(config: PolicyConfig) -> None:
    rules = config.rules["documents"]
    assert rules["viewer"].actions == frozenset({"read"})  # from the template
    assert rules["viewer"].collection == "documents"
    assert rules["user"].actions == frozenset({"create", "read", "update"})  # own, not template's


def test_defaults_apply_where_a_role_has_no_rule(config: PolicyConfig) -> None:
    assert config.rules["documents"]["admin"].actions == frozenset(
        {"create", "read", "update", "delete", "restore", "aggregate"}
    )
    for collection in ("notes", "users", "countries"):
        assert set(config.rules[collection]) == {"admin"}
        assert config.rules[collection]["admin"].actions == frozenset({"read"})
        assert config.rules[collection]["admin"].collection == collection


def test_template_overrides_defaults() -> None:
    policy = """\
        roles: {viewer: {}}
        templates:
          t: {viewer: {actions: [read, update]}}
        defaults:
          viewer: {actions: [read]}
        policies:
          a: {template: t}
    """
    assert load_config(textwrap.dedent(policy)).rules["a"]["viewer"].actions == {"read", "update"}


def test_every_known_collection_has_rules(config: PolicyConfig) -> None:
    assert set(config.rules) == {"documents", "notes", "users", "countries"}


def test_collection_with_no_rules_has_an_empty_mapping() -> None:
    policy = "roles: {viewer: {}}\npolicies:\n  orders: {}\n"
    config = load_config(policy, schema="collections: {users: {}}\n")
    assert dict(config.rules) == {"orders": {}, "users": {}}


def test_when_true_means_every_document_and_false_means_none() -> None:
    policy = """\
        roles: {a: {}, b: {}}
        policies:
          orders:
            a: {actions: [read], when: true}
            b: {actions: [read], when: false}
    """
    rules = load_config(textwrap.dedent(policy)).rules["orders"]
    assert rules["a"].when is None
    assert rules["b"].when == parse_condition("false")


def test_rule_without_when_or_fields() -> None:
    config = load_config("roles: {a: {}}\npolicies: {orders: {a: {actions: [read]}}}\n")
    rule = config.rules["orders"]["a"]
    assert rule.when is None
    assert rule.fields == FieldRules()


def test_condition_in_a_block_scalar() -> None:
    policy = """\
        roles: {a: {}}
        policies:
          o:
            a:
              actions: [read]
              when: >
                doc.x == 1 &&
                doc.y == 2
    """
    policy = textwrap.dedent(policy)
    assert load_config(policy).rules["o"]["a"].when == parse_condition("doc.x == 1 && doc.y == 2\n")


def test_allow_list_and_nested_paths() -> None:
    policy = """\
        roles: {a: {}}
        policies:
          o:
            a:
              actions: [read, update]
              fields:
                allow: [title, address]
                deny_write: [_id, address.city]
                mask: {address.phone: partial}
    """
    fields = load_config(textwrap.dedent(policy)).rules["o"]["a"].fields
    assert fields.allow == ("title", "address")
    assert fields.deny == ()
    assert fields.deny_write == ("_id", "address.city")
    assert dict(fields.mask) == {"address.phone": "partial"}


def test_empty_allow_list_means_no_field_but_id() -> None:
    policy = "roles: {a: {}}\npolicies: {o: {a: {actions: [read], fields: {allow: []}}}}\n"
    assert load_config(policy).rules["o"]["a"].fields.allow == ()


# --- schema ----------------------------------------------------------------------------


def test_settings(config: PolicyConfig) -> None:
    assert dict(config.settings) == {
        "default_tenant_field": "tenant_id",
        "default_owner_field": "owner_id",
        "auto_timestamps": True,
    }


def test_field_types_flatten_object_properties(config: PolicyConfig) -> None:
    assert dict(config.collections["documents"].field_types) == {
        "title": "string",
        "amount": "number",
        "status": "string",
        "tags": "array",
        "lines": "array",
        "address": "object",
        "address.city": "string",
        "address.geo": "object",
        "address.geo.lat": "number",
    }


def test_paths_through_arrays_never_pass_for_scalars(config: PolicyConfig) -> None:
    documents = config.collections["documents"]
    assert "lines.sku" not in documents.field_types
    assert not documents.is_scalar("lines.sku")
    assert documents.is_scalar("address.geo.lat")


def test_tenant_and_owner_fields_from_access_or_settings(config: PolicyConfig) -> None:
    documents, users, countries = (config.collections[n] for n in ("documents", "users", "countries"))
    assert (documents.tenant_field, documents.owner_field) == ("org_id", "owner_id")
    assert (users.tenant_field, users.owner_field) == ("tenant_id", "owner_id")
    assert (countries.tenant_field, countries.owner_field) == (None, "owner_id")  # null: none


def test_client_ids_only_where_a_collection_opts_in(config: PolicyConfig) -> None:
    assert config.collections["countries"].client_ids is True
    assert config.collections["documents"].client_ids is False
    assert config.collections["notes"].client_ids is False  # no schema: the default


def test_raw_is_the_collection_as_written_in_plain_dicts(config: PolicyConfig) -> None:
    raw = config.collections["documents"].raw
    assert raw["versioning"] == {"enabled": True, "mode": "diff", "max_versions": 50}
    assert raw["indexes"] == [{"keys": {"title": 1}, "unique": True}]
    assert type(raw) is dict
    assert type(raw["indexes"]) is list and type(raw["indexes"][0]) is dict
    assert config.collections["users"].raw == {
        "hierarchy": {"user_id_field": "_id", "manager_field": "manager_id"}
    }


def test_collection_only_in_policies_gets_a_schema_with_the_defaults(config: PolicyConfig) -> None:
    assert config.collections["notes"] == CollectionSchema(
        name="notes", tenant_field="tenant_id", owner_field="owner_id"
    )


def test_no_schema() -> None:
    config = load_config("roles: {a: {}}\npolicies: {o: {}}\n")
    assert dict(config.settings) == {}
    assert config.collections["o"] == CollectionSchema(name="o")


def test_empty_schema_text() -> None:
    assert dict(load_config("roles: {}\npolicies: {}\n", schema="").collections) == {}


def test_config_cannot_be_changed(config: PolicyConfig) -> None:
    assert isinstance(config.rules, MappingProxyType)
    assert isinstance(config.rules["documents"], MappingProxyType)
    with pytest.raises(TypeError):
        config.roles["intruder"] = ()  # type: ignore[index]


# --- sources ---------------------------------------------------------------------------


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_directory_reads_policy_and_schema(tmp_path: Path) -> None:
    write(tmp_path, "policy.yml", POLICY)
    write(tmp_path, "schema.yml", SCHEMA)
    config = load_config(tmp_path)
    assert config.collections["documents"].tenant_field == "org_id"
    assert config.rules["documents"]["user"].source == Source(str(tmp_path / "policy.yml"), 16, 7)


def test_directory_as_a_string_and_without_schema(tmp_path: Path) -> None:
    write(tmp_path, "policy.yml", POLICY)
    config = load_config(str(tmp_path))
    assert set(config.collections) == {"documents", "notes"}


def test_policy_file_reads_the_schema_beside_it(tmp_path: Path) -> None:
    path = write(tmp_path, "prod-policy.yml", POLICY)
    write(tmp_path, "schema.yml", SCHEMA)
    assert "users" in load_config(str(path)).collections
    assert "users" in load_config(path).collections


def test_explicit_schema_replaces_the_one_beside(tmp_path: Path) -> None:
    write(tmp_path, "policy.yml", POLICY)
    write(tmp_path, "schema.yml", SCHEMA)
    other = write(tmp_path, "other.yml", "collections: {archive: {}}\n")
    assert set(load_config(tmp_path, schema=other).collections) == {"documents", "notes", "archive"}
    assert set(load_config(tmp_path, schema=str(other)).collections) == {"documents", "notes", "archive"}
    config = load_config(tmp_path, schema="collections: {x: {}}")
    assert set(config.collections) == {"documents", "notes", "x"}


def test_text_without_newline_that_is_no_path_is_yaml() -> None:
    assert dict(load_config("{roles: {a: {}}, policies: {}}").roles) == {"a": ()}


# --- YAML details ----------------------------------------------------------------------


def test_environment_variables_are_substituted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_TEST_REGION", "eu")
    monkeypatch.setenv("PM_TEST_VERSIONS", "7")
    monkeypatch.setenv("PM_TEST_TENANT", "org_id")
    policy = (
        "roles: {a: {}}\npolicies:\n  o:\n"
        "    a: {actions: [read], when: 'doc.region == \"${ENV.PM_TEST_REGION}\"'}\n"
    )
    schema = (
        "settings: {default_tenant_field: '${ENV.PM_TEST_TENANT}'}\n"
        "collections:\n  o:\n    versioning:\n      max_versions: ${ENV.PM_TEST_VERSIONS}\n"
    )
    config = load_config(policy, schema=schema)
    assert config.rules["o"]["a"].when == parse_condition('doc.region == "eu"')
    assert config.collections["o"].tenant_field == "org_id"
    # A plain scalar takes the type of its substituted text; a quoted one stays a string.
    assert config.collections["o"].raw["versioning"] == {"max_versions": 7}


def test_quoted_substitution_stays_a_string() -> None:
    assert load_yaml("a: '${ENV.N}'\nb: ${ENV.N}\n", "f", environ={"N": "50"}) == {"a": "50", "b": 50}


def test_merge_keys_with_overrides() -> None:
    policy = """\
        roles: {a: {}, b: {}}
        policies:
          o:
            a: &reader {actions: [read], when: doc.public == true}
            b:
              <<: *reader
              actions: [read, update]
    """
    rules = load_config(textwrap.dedent(policy)).rules["o"]
    assert rules["b"].actions == {"read", "update"}
    assert rules["b"].when == rules["a"].when


def test_marks_of_keys_values_and_items() -> None:
    data = load_yaml("top:\n  key: [one, 'two']\n  other: {x: 1}\n", "f.yml")
    assert isinstance(data, YamlMap)
    top = data["top"]
    assert isinstance(top, YamlMap)
    assert top.mark == Mark("f.yml", 2, 3)
    assert top.key_mark("key") == Mark("f.yml", 2, 3)
    assert top.value_mark("key") == Mark("f.yml", 2, 8)
    items = top["key"]
    assert isinstance(items, YamlList)
    assert items.item_marks == [Mark("f.yml", 2, 9), Mark("f.yml", 2, 14, style="'")]
    assert top.value_mark("other") == Mark("f.yml", 3, 10)


def test_locating_a_character_inside_a_scalar() -> None:
    data = load_yaml("a: plain text\nb: 'quoted'\nc: |\n  one\n    two\n", "f")
    assert data.value_mark("a").locate(6) == (1, 10)
    assert data.value_mark("b").locate(0) == (2, 5)
    assert data.value_mark("c").locate(len("one\n  ")) == (5, 5)
