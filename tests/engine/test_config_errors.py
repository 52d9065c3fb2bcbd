"""Each kind of configuration mistake, and the message a user gets for it.

A message must say where (file, line, column), what is wrong, and how to fix it where a fix
can be guessed. The tests compare the whole text, because the text is what the user reads.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from permission_mongo.policy._errors import ConfigError
from permission_mongo.policy._loader import load_config

ROLES = """\
roles:
  viewer: {}
  user: {inherits: [viewer]}
  manager: {inherits: [user]}
"""


def error(policy: str, *, schema: str | None = None) -> str:
    """The message ``load_config`` raises for this policy text (and schema text)."""
    with pytest.raises(ConfigError) as info:
        schema = None if schema is None else textwrap.dedent(schema)
        load_config(textwrap.dedent(policy), schema=schema)
    return str(info.value)


def policy_error(policies: str) -> str:
    """The message for ``ROLES`` (lines 1-4), ``policies:`` (line 5), then these lines
    (dedented, then indented by two spaces: the first collection is at line 6, column 3)."""
    return error(ROLES + "policies:\n" + textwrap.indent(textwrap.dedent(policies), "  "))


def schema_error(schema: str) -> str:
    return error(ROLES + "policies: {}\n", schema=schema)


def test_error_carries_file_line_column_and_suggestion_as_attributes() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(ROLES + "policies:\n  orders:\n    mangr: {actions: [read]}\n")
    assert (info.value.file, info.value.line, info.value.column) == ("<policy>", 7, 5)
    assert info.value.message == "unknown role 'mangr' in policies.orders"
    assert info.value.suggestion == "did you mean 'manager'?"


# --- YAML ------------------------------------------------------------------------------


def test_yaml_bad_indentation() -> None:
    assert error("roles:\n  viewer: {}\n policies: {}\n") == (
        "<policy>:3:2: invalid YAML: expected <block end>, but found '<block mapping start>' "
        "(while parsing a block mapping, line 1); "
        "check the indentation of this line against the lines above"
    )


def test_yaml_colon_in_plain_value() -> None:
    assert error("roles:\n  viewer: {}\npolicies:\n  orders: note: x\n") == (
        "<policy>:4:15: invalid YAML: mapping values are not allowed here; "
        "check the indentation, or quote a value containing ': '"
    )


def test_yaml_tab_indentation() -> None:
    assert error("roles:\n\tviewer: {}\n") == (
        "<policy>:2:1: invalid YAML: found character '\\t' that cannot start any token "
        "(while scanning for the next token); indent with spaces, not tabs"
    )


def test_yaml_unclosed_flow_mapping() -> None:
    assert error("roles: {viewer: {}\npolicies: {}\n") == (
        "<policy>:2:1: invalid YAML: expected ',' or '}', but got '<scalar>' "
        "(while parsing a flow mapping, line 1)"
    )


def test_duplicate_key_names_both_lines() -> None:
    message = policy_error(
        """\
          orders:
            viewer: {actions: [read]}
            viewer: {actions: [read, update]}
        """
    )
    assert message == (
        "<policy>:8:5: duplicate key 'viewer', first defined at line 7; "
        "keep only one (YAML would silently use the last)"
    )


def test_several_yaml_documents() -> None:
    assert error("roles: {}\npolicies: {}\n---\nroles: {}\n") == (
        "<policy>:3:1: invalid YAML: found another document "
        "(expected a single document in the stream, line 1)"
    )


def test_unsafe_yaml_tag() -> None:
    assert error("roles: !!python/object:os.system {}\npolicies: {}\n") == (
        "<policy>:1:8: invalid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object:os.system'"
    )


def test_scalar_yaml_cannot_read() -> None:
    assert schema_error("collections:\n  orders:\n    fields:\n      due: {default: 2024-13-45}\n") == (
        "<schema>:4:22: invalid YAML: cannot read '2024-13-45' as timestamp"
    )


def test_unset_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PM_TEST_UNSET", raising=False)
    message = policy_error(
        """\
          orders:
            viewer: {actions: [read], when: 'doc.region == "${ENV.PM_TEST_UNSET}"'}
        """
    )
    assert message == (
        "<policy>:7:53: environment variable 'PM_TEST_UNSET' is not set; "
        "set PM_TEST_UNSET or remove the reference"
    )


def test_malformed_environment_reference() -> None:
    assert schema_error("settings:\n  default_tenant_field: ${env.TENANT}\n") == (
        "<schema>:2:25: malformed environment reference '${env.TENANT}'; "
        "write ${ENV.NAME} with NAME made of letters, digits and _"
    )


def test_file_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_bytes(b"roles: {}\npolicies:\n  caf\xe9: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'policy.yml'}:3:6: the file is not valid UTF-8; save it as UTF-8"
    )


# --- sources ---------------------------------------------------------------------------


def test_directory_without_policy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path))
    assert str(info.value) == (
        f"{tmp_path / 'policy.yml'}: no policy.yml in directory {str(tmp_path)!r}; "
        "create policy.yml there with 'roles' and 'policies'"
    )


def test_missing_path_object(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yml")
    assert str(info.value) == f"{tmp_path / 'nope.yml'}: file not found: {str(tmp_path / 'nope.yml')!r}"


def test_missing_path_given_as_text() -> None:
    assert error("config/policy.yml") == (
        "<policy>:1:1: the policy must be a mapping, got the string 'config/policy.yml'; "
        "if this is meant as a path, no such file or directory exists"
    )


def test_error_in_schema_names_the_schema_file(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text(ROLES + "policies: {}\n")
    schema = "collections:\n  orders:\n    fields:\n      total: {type: numbr}\n"
    (tmp_path / "schema.yml").write_text(schema)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'schema.yml'}:4:21: unknown type 'numbr' in collections.orders.fields.total; "
        "did you mean 'number'?"
    )


# --- policy.yml: top level -------------------------------------------------------------


def test_empty_policy() -> None:
    assert error("# nothing yet\n") == (
        "<policy>:1:1: the policy is empty; it needs 'roles' and 'policies', e.g. roles: {viewer: {}}"
    )


def test_policy_not_a_mapping() -> None:
    assert error("- roles\n- policies\n") == (
        "<policy>:1:1: the policy must be a mapping, got a list; expected 'roles' and 'policies'"
    )


def test_missing_roles() -> None:
    assert error("\npolicies: {}\n") == (
        "<policy>:2:1: missing 'roles' at the top level; add it, e.g. roles: {viewer: {}}"
    )


def test_missing_policies() -> None:
    assert error(ROLES) == (
        "<policy>:1:1: missing 'policies' at the top level; "
        "add it, e.g. policies: {documents: {viewer: {actions: [read]}}}"
    )


def test_unknown_top_level_key_with_suggestion() -> None:
    assert error(ROLES + "polices: {}\n") == (
        "<policy>:5:1: unknown key 'polices' at the top level; did you mean 'policies'?"
    )


def test_unknown_top_level_key_lists_known_keys() -> None:
    assert error(ROLES + "hooks: {}\npolicies: {}\n") == (
        "<policy>:5:1: unknown key 'hooks' at the top level; "
        "expected one of: roles, templates, defaults, policies"
    )


# --- roles -----------------------------------------------------------------------------


def test_roles_not_a_mapping() -> None:
    assert error("roles: [viewer, user]\npolicies: {}\n") == (
        "<policy>:1:8: roles must be a mapping, got a list"
    )


def test_role_named_template_is_reserved() -> None:
    assert error("roles:\n  template: {}\npolicies: {}\n") == (
        "<policy>:2:3: 'template' cannot be a role name: it is reserved in policies; "
        "choose another name"
    )


def test_role_named_like_a_builtin_is_reserved() -> None:
    assert error("roles:\n  'pm:admin': {}\npolicies: {}\n") == (
        "<policy>:2:3: role name 'pm:admin' starts with 'pm:', which is reserved for built-in "
        "roles; choose another name"
    )


def test_role_name_that_yaml_reads_as_a_boolean() -> None:
    assert error("roles:\n  yes: {}\npolicies: {}\n") == (
        "<policy>:2:3: a role name must be a non-empty string, got the boolean true; quote it"
    )


def test_unknown_key_in_role() -> None:
    assert error("roles:\n  viewer: {}\n  user: {inherit: [viewer]}\npolicies: {}\n") == (
        "<policy>:3:10: unknown key 'inherit' in roles.user; did you mean 'inherits'?"
    )


def test_unknown_parent_role() -> None:
    assert error("roles:\n  viewer: {}\n  user: {inherits: [viewr]}\npolicies: {}\n") == (
        "<policy>:3:21: unknown role 'viewr' in roles.user.inherits; did you mean 'viewer'?"
    )


def test_inherits_of_wrong_type() -> None:
    assert error("roles:\n  user: {inherits: 3}\npolicies: {}\n") == (
        "<policy>:2:20: roles.user.inherits must be a list, got the number 3; "
        "write inherits: [viewer]"
    )


def test_parent_listed_twice() -> None:
    assert error("roles:\n  viewer: {}\n  user: {inherits: [viewer, viewer]}\npolicies: {}\n") == (
        "<policy>:3:29: role 'viewer' is listed twice in roles.user.inherits; remove one"
    )


def test_role_cycle_names_the_cycle() -> None:
    policy = """\
        roles:
          viewer: {}
          a: {inherits: [c]}
          b: {inherits: [a, viewer]}
          c: {inherits: b}
        policies: {}
    """
    assert error(policy) == (
        "<policy>:3:3: role cycle: a -> c -> b -> a; remove one of these inherits"
    )


def test_role_inheriting_itself() -> None:
    assert error("roles:\n  user: {inherits: [user]}\npolicies: {}\n") == (
        "<policy>:2:3: role cycle: user -> user; remove one of these inherits"
    )


# --- policies, templates, defaults -----------------------------------------------------


def test_unknown_role_in_policy_with_suggestion() -> None:
    message = policy_error(
        """\
          orders:
            mangr:
              actions: [read]
        """
    )
    assert message == "<policy>:7:5: unknown role 'mangr' in policies.orders; did you mean 'manager'?"


def test_unknown_role_in_policy_without_close_match() -> None:
    message = policy_error("  orders:\n    auditor: {actions: [read]}\n")
    assert message == "<policy>:7:5: unknown role 'auditor' in policies.orders; declare it under 'roles'"


def test_unknown_role_in_template() -> None:
    message = error(ROLES + "templates:\n  t:\n    viewr: {actions: [read]}\npolicies: {}\n")
    assert message == "<policy>:7:5: unknown role 'viewr' in templates.t; did you mean 'viewer'?"


def test_unknown_role_in_defaults() -> None:
    message = error(ROLES + "defaults:\n  admin: {actions: [read]}\npolicies: {}\n")
    assert message == "<policy>:6:3: unknown role 'admin' in defaults; declare it under 'roles'"


def test_unknown_template() -> None:
    policy = ROLES + "templates:\n  tenant_read: {}\npolicies:\n  orders:\n    template: tenant_reed\n"
    assert error(policy) == (
        "<policy>:9:15: unknown template 'tenant_reed' in policies.orders; did you mean 'tenant_read'?"
    )


def test_template_name_not_a_string() -> None:
    assert policy_error("  orders:\n    template: [a, b]\n") == (
        "<policy>:7:15: policies.orders.template must be a string, got a list"
    )


def test_template_inside_a_template() -> None:
    policy = ROLES + "templates:\n  a: {}\n  b:\n    template: a\npolicies: {}\n"
    assert error(policy) == (
        "<policy>:8:5: a template cannot use a template (templates.b); "
        "copy the rules you need into this template"
    )


def test_template_key_in_defaults() -> None:
    assert error(ROLES + "defaults:\n  template: x\npolicies: {}\n") == (
        "<policy>:6:3: 'template' is only allowed in a collection's policy, not in defaults"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("'a$b'", "collection name 'a$b' in policies contains '$' or a NUL character; "
                  "MongoDB does not allow them in collection names"),
        ("system.users", "collection name 'system.users' in policies starts with 'system.'; "
                         "system collections are MongoDB's own and cannot be served"),
        ("''", "collection name in policies must be a non-empty string, got the string ''"),
    ],
)
def test_invalid_collection_name(name: str, message: str) -> None:
    assert policy_error(f"  {name}: {{}}\n") == f"<policy>:6:3: {message}"


def test_collection_policy_not_a_mapping() -> None:
    assert policy_error("  orders: [viewer]\n") == (
        "<policy>:6:11: policies.orders must be a mapping, got a list"
    )


def test_rule_left_empty() -> None:
    assert policy_error("  orders:\n    viewer:\n") == (
        "<policy>:7:12: policies.orders.viewer must be a mapping, got nothing"
    )


# --- rules -----------------------------------------------------------------------------


def test_rule_without_actions() -> None:
    assert policy_error("  orders:\n    viewer: {when: 'true'}\n") == (
        "<policy>:7:13: missing 'actions' in policies.orders.viewer; add it, e.g. actions: [read]"
    )


def test_empty_actions() -> None:
    assert policy_error("  orders:\n    viewer: {actions: []}\n") == (
        "<policy>:7:23: policies.orders.viewer.actions is empty; "
        "list at least one action, or remove the rule"
    )


def test_actions_written_as_a_string() -> None:
    assert policy_error("  orders:\n    viewer: {actions: read}\n") == (
        "<policy>:7:23: policies.orders.viewer.actions must be a list, got the string 'read'; "
        "write actions: [read]"
    )


def test_unknown_action_with_suggestion() -> None:
    assert policy_error("  orders:\n    viewer: {actions: [reed]}\n") == (
        "<policy>:7:24: unknown action 'reed' in policies.orders.viewer.actions; did you mean 'read'?"
    )


def test_unknown_action_lists_actions() -> None:
    assert policy_error("  orders:\n    viewer: {actions: ['*']}\n") == (
        "<policy>:7:24: unknown action '*' in policies.orders.viewer.actions; "
        "expected one of: aggregate, create, delete, read, restore, update"
    )


def test_action_listed_twice() -> None:
    assert policy_error("  orders:\n    viewer: {actions: [read, read]}\n") == (
        "<policy>:7:30: action 'read' is listed twice in policies.orders.viewer.actions; remove one"
    )


def test_unknown_rule_key() -> None:
    assert policy_error("  orders:\n    viewer: {actions: [read], whne: 'true'}\n") == (
        "<policy>:7:31: unknown key 'whne' in policies.orders.viewer; did you mean 'when'?"
    )


def test_when_left_empty() -> None:
    assert policy_error("  orders:\n    viewer:\n      actions: [read]\n      when:\n") == (
        "<policy>:9:12: policies.orders.viewer.when is empty; "
        "write a condition, or remove 'when' to apply the rule to every document"
    )


def test_when_of_wrong_type() -> None:
    assert policy_error("  orders:\n    viewer:\n      actions: [read]\n      when: 1\n") == (
        "<policy>:9:13: policies.orders.viewer.when must be a string, got the number 1"
    )


# --- conditions: the position is the one in the file -----------------------------------


def test_condition_error_in_plain_scalar() -> None:
    message = policy_error(
        """\
          orders:
            viewer:
              actions: [read]
              when: doc.tenant_id == usr.tenant_id
        """
    )
    assert message == (
        "<policy>:9:30: invalid condition in policies.orders.viewer.when: unknown name 'usr'; "
        "conditions read doc.* (or resource.*) and user.*; did you mean 'user'?"
    )


def test_condition_error_in_quoted_scalar() -> None:
    message = policy_error(
        """\
          orders:
            viewer:
              actions: [read]
              when: "doc.tenant_id == usr.tenant_id"
        """
    )
    assert message.startswith("<policy>:9:31: invalid condition in policies.orders.viewer.when: ")


def test_condition_syntax_error_at_the_end() -> None:
    message = policy_error("  orders:\n    viewer:\n      actions: [read]\n      when: doc.a ==\n")
    assert message.startswith("<policy>:9:21: invalid condition in policies.orders.viewer.when: ")


def test_condition_error_in_literal_block() -> None:
    message = policy_error(
        """\
          orders:
            viewer:
              actions: [read]
              when: |
                doc.tenant_id == user.tenant_id &&
                  doc.owner == usr.id
        """
    )
    assert message.startswith("<policy>:11:24: invalid condition")


def test_condition_error_on_a_continuation_line() -> None:
    message = policy_error(
        """\
          orders:
            viewer:
              actions: [read]
              when: doc.tenant_id == user.tenant_id
                && doc.owner == usr.id
        """
    )
    assert message.startswith("<policy>:10:25: invalid condition")


def test_condition_error_in_template() -> None:
    policy = ROLES + (
        "templates:\n  t:\n    viewer: {actions: [read], when: doc.a == usr.b}\npolicies: {}\n"
    )
    assert error(policy).startswith("<policy>:7:46: invalid condition in templates.t.viewer.when: ")


# --- field rules -----------------------------------------------------------------------


def test_allow_and_deny_together() -> None:
    message = policy_error(
        """\
          orders:
            viewer:
              actions: [read]
              fields: {allow: [title], deny: [notes]}
        """
    )
    assert message == (
        "<policy>:9:32: policies.orders.viewer.fields gives both 'allow' and 'deny'; "
        "use one: 'allow' lists the only readable fields, "
        "'deny' hides fields from an otherwise readable document"
    )


def test_fields_left_empty() -> None:
    assert policy_error("  orders:\n    viewer:\n      actions: [read]\n      fields:\n") == (
        "<policy>:9:14: policies.orders.viewer.fields must be a mapping, got nothing"
    )


def test_unknown_fields_key() -> None:
    assert policy_error("  orders:\n    viewer: {actions: [read], fields: {masks: {a: redact}}}\n") == (
        "<policy>:7:40: unknown key 'masks' in policies.orders.viewer.fields; did you mean 'mask'?"
    )


def test_deny_not_a_list() -> None:
    assert policy_error("  orders:\n    viewer: {actions: [read], fields: {deny: notes}}\n") == (
        "<policy>:7:46: policies.orders.viewer.fields.deny must be a list, got the string 'notes'; "
        "write deny: [internal_notes]"
    )


def test_unknown_mask_type() -> None:
    rule = "  orders:\n    viewer: {actions: [read], fields: {mask: {email: emial}}}\n"
    assert policy_error(rule) == (
        "<policy>:7:54: unknown mask type 'emial' in policies.orders.viewer.fields.mask; "
        "did you mean 'email'?"
    )


def test_masked_field_also_denied() -> None:
    message = policy_error(
        """\
          orders:
            viewer:
              actions: [read]
              fields:
                deny: [email]
                mask: {email: email}
        """
    )
    assert message == (
        "<policy>:11:16: field 'email' is both denied and masked in policies.orders.viewer.fields.mask; "
        "a denied field is hidden already; remove it from 'mask' or from 'deny'"
    )


def test_masked_field_under_a_denied_parent() -> None:
    message = policy_error(
        "  orders:\n    viewer:\n      actions: [read]\n"
        "      fields: {deny: [contact], mask: {contact.email: email}}\n"
    )
    assert message.startswith("<policy>:9:40: field 'contact.email' is both denied and masked")


def test_masked_field_not_allowed() -> None:
    message = policy_error(
        "  orders:\n    viewer:\n      actions: [read]\n"
        "      fields: {allow: [title], mask: {email: email}}\n"
    )
    assert message == (
        "<policy>:9:39: masked field 'email' is not in 'allow' (policies.orders.viewer.fields.mask); "
        "add it to 'allow', or remove it from 'mask'"
    )


def test_id_cannot_be_denied() -> None:
    assert policy_error("  orders:\n    viewer: {actions: [read], fields: {deny: [_id]}}\n") == (
        "<policy>:7:47: '_id' cannot be denied (policies.orders.viewer.fields.deny); "
        "every readable document shows its _id; deny the document instead"
    )


def test_id_cannot_be_masked() -> None:
    assert policy_error("  orders:\n    viewer: {actions: [read], fields: {mask: {_id: redact}}}\n") == (
        "<policy>:7:47: '_id' cannot be masked (policies.orders.viewer.fields.mask)"
    )


@pytest.mark.parametrize(
    ("path", "column", "message"),
    [
        ("a..b", 47, "field path 'a..b' in policies.orders.viewer.fields.deny has an empty segment; "
                     "write paths like 'address.city'"),
        ("$where", 47, "field path '$where' in policies.orders.viewer.fields.deny has a segment "
                       "starting with '$'; field names starting with '$' are MongoDB operators, "
                       "not fields"),
        ("a.$b", 47, "field path 'a.$b' in policies.orders.viewer.fields.deny has a segment "
                     "starting with '$'; field names starting with '$' are MongoDB operators, "
                     "not fields"),
    ],
)
def test_invalid_field_path(path: str, column: int, message: str) -> None:
    rule = f"  orders:\n    viewer: {{actions: [read], fields: {{deny: ['{path}']}}}}\n"
    assert policy_error(rule) == f"<policy>:7:{column}: {message}"


def test_field_path_not_a_string() -> None:
    assert policy_error("  orders:\n    viewer: {actions: [read], fields: {deny_write: [1]}}\n") == (
        "<policy>:7:53: each field in policies.orders.viewer.fields.deny_write must be a string, "
        "got the number 1"
    )


# --- schema.yml ------------------------------------------------------------------------


def test_schema_not_a_mapping() -> None:
    assert schema_error("[documents]\n") == (
        "<schema>:1:1: the schema must be a mapping, got a list; expected 'settings' and 'collections'"
    )


def test_unknown_schema_key() -> None:
    assert schema_error("colections: {}\n") == (
        "<schema>:1:1: unknown key 'colections' at the top level; did you mean 'collections'?"
    )


def test_unknown_setting() -> None:
    assert schema_error("settings:\n  default_tenant: tenant_id\n") == (
        "<schema>:2:3: unknown key 'default_tenant' in settings; did you mean 'default_tenant_field'?"
    )


def test_setting_of_wrong_type() -> None:
    assert schema_error("settings:\n  auto_timestamps: sometimes\n") == (
        "<schema>:2:20: settings.auto_timestamps must be true or false, got the string 'sometimes'"
    )


def test_unknown_collection_key() -> None:
    assert schema_error("collections:\n  orders:\n    acess: {tenant_field: org}\n") == (
        "<schema>:3:5: unknown key 'acess' in collections.orders; did you mean 'access'?"
    )


def test_unknown_access_key() -> None:
    assert schema_error("collections:\n  orders:\n    access: {tenant: org}\n") == (
        "<schema>:3:14: unknown key 'tenant' in collections.orders.access; did you mean 'tenant_field'?"
    )


def test_client_ids_of_wrong_type() -> None:
    assert schema_error("collections:\n  orders:\n    access: {client_ids: yes please}\n") == (
        "<schema>:3:26: collections.orders.access.client_ids must be true or false, got the string 'yes please'"
    )


def test_unknown_field_type() -> None:
    assert schema_error("collections:\n  orders:\n    fields:\n      title: {type: strng}\n") == (
        "<schema>:4:21: unknown type 'strng' in collections.orders.fields.title; did you mean 'string'?"
    )


def test_unknown_field_spec_key() -> None:
    assert schema_error("collections:\n  orders:\n    fields:\n      title: {requird: true}\n") == (
        "<schema>:4:15: unknown key 'requird' in collections.orders.fields.title; "
        "did you mean 'required'?"
    )


def test_constraint_for_another_type() -> None:
    schema = "collections:\n  orders:\n    fields:\n      total: {type: number, max_length: 3}\n"
    assert schema_error(schema) == (
        "<schema>:4:29: 'max_length' does not apply to type 'number' "
        "in collections.orders.fields.total; "
        "it applies to: string, array"
    )


def test_negative_length() -> None:
    schema = "collections:\n  orders:\n    fields:\n      title: {max_length: -1}\n"
    assert schema_error(schema) == (
        "<schema>:4:27: collections.orders.fields.title.max_length must be an integer of at least 0, "
        "got the number -1"
    )


def test_min_above_max() -> None:
    schema = "collections:\n  orders:\n    fields:\n      total: {min: 10, max: 1}\n"
    assert schema_error(schema) == (
        "<schema>:4:15: min is greater than max in collections.orders.fields.total"
    )


def test_empty_enum() -> None:
    schema = "collections:\n  orders:\n    fields:\n      status: {enum: []}\n"
    assert schema_error(schema) == (
        "<schema>:4:22: collections.orders.fields.status.enum is empty; "
        "list the allowed values, or remove enum"
    )


def test_invalid_pattern() -> None:
    schema = "collections:\n  orders:\n    fields:\n      code: {pattern: '[a-'}\n"
    assert schema_error(schema) == (
        "<schema>:4:23: collections.orders.fields.code.pattern is not a valid regular expression: "
        "unterminated character set at position 0"
    )


def test_dotted_field_name() -> None:
    schema = "collections:\n  orders:\n    fields:\n      address.city: {type: string}\n"
    assert schema_error(schema) == (
        "<schema>:4:7: field name 'address.city' in collections.orders.fields contains '.'; "
        "declare nested fields under the parent's 'properties'"
    )


def test_error_inside_nested_properties() -> None:
    schema = """\
        collections:
          orders:
            fields:
              address:
                type: object
                properties:
                  city: {type: text}
    """
    assert schema_error(schema) == (
        "<schema>:7:24: unknown type 'text' in collections.orders.fields.address.properties.city; "
        "expected one of: any, array, boolean, date, integer, number, object, objectid, string"
    )


def test_unknown_versioning_mode() -> None:
    schema = "collections:\n  orders:\n    versioning: {enabled: true, mode: diffs}\n"
    assert schema_error(schema) == (
        "<schema>:3:39: unknown versioning mode 'diffs' in collections.orders.versioning; "
        "did you mean 'diff'?"
    )


def test_max_versions_not_positive() -> None:
    schema = "collections:\n  orders:\n    versioning: {max_versions: 0}\n"
    assert schema_error(schema) == (
        "<schema>:3:32: collections.orders.versioning.max_versions must be an integer of at least 1, "
        "got the number 0"
    )


def test_hierarchy_without_manager_field() -> None:
    schema = "collections:\n  users:\n    hierarchy: {user_id_field: _id}\n"
    assert schema_error(schema) == (
        "<schema>:3:16: missing 'manager_field' in collections.users.hierarchy; "
        "add it, e.g. manager_field: manager_id"
    )


def test_indexes_not_a_list() -> None:
    schema = "collections:\n  orders:\n    indexes: {title: 1}\n"
    assert schema_error(schema) == (
        "<schema>:3:14: collections.orders.indexes must be a list, got a mapping; "
        "write indexes: [{keys: {title: 1}}]"
    )


def test_invalid_collection_name_in_schema() -> None:
    assert schema_error("collections:\n  system.views: {}\n") == (
        "<schema>:2:3: collection name 'system.views' in collections starts with 'system.'; "
        "system collections are MongoDB's own and cannot be served"
    )


def test_internal_collection_names_are_refused():
    with pytest.raises(ConfigError) as caught:
        load_config("roles:\n  user: {}\npolicies:\n  _pm_api_keys:\n    user: {actions: [read]}\n")
    assert caught.value.line == 4 and "_pm_" in caught.value.message


def test_condition_bad_escape_points_at_the_escape() -> None:
    message = policy_error(
        """\
        orders:
          viewer:
            actions: [read]
            when: 'doc.code != "A\\q"'
        """
    )
    assert message == (
        "<policy>:9:28: invalid condition in policies.orders.viewer.when: invalid escape '\\q' in a "
        "string literal; CEL escapes are \\a \\b \\f \\n \\r \\t \\v \\\\ \\? \\\" \\' \\`, \\xHH, \\uHHHH, "
        "\\UHHHHHHHH and octal \\000 to \\377; a raw string (r\"...\") takes none"
    )
