"""Condition literals decode as CEL specifies (cel-spec doc/langdef.md, "String and Bytes
Values"), not as Python does.

The cases follow the escape cases of CEL's conformance data (parse.textproto, basic.textproto).
Where Python's decoding (the naive ``ast.literal_eval`` of the token) gives another value, or a
value where CEL refuses, the test says so: those are the cases a Python decode gets wrong.
"""

from __future__ import annotations

import ast
import warnings

import pytest
from hypothesis import given, strategies as st

from permission_mongo.policy import Identity, load_policy
from permission_mongo.policy._cel import Compare, Literal, parse_condition
from permission_mongo.policy._errors import ConditionError


def literal(text: str) -> object:
    """The value of the CEL literal ``text``, as the engine decodes it."""
    root = parse_condition(f"doc.a == {text}").root
    assert isinstance(root, Compare) and isinstance(root.right, Literal)
    return root.right.value


def python_decode(text: str) -> object:
    """The naive decoding: Python's rules for the same token (None where Python refuses)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.literal_eval(text)
        except (SyntaxError, ValueError):
            return None


# (CEL text, value, whether Python's rules decode it to the same value)
DECODED = [
    # punctuation escapes: \? and \` are CEL's, Python keeps the backslash
    (r'" \\ \? \" \' \` "', " \\ ? \" ' ` ", False),
    (r"' \\ \? \" \' \` '", " \\ ? \" ' ` ", False),
    (r"''' \\ \? \" \' \` '''", " \\ ? \" ' ` ", False),
    (r'""" \\ \? \" \' \` """', " \\ ? \" ' ` ", False),
    ("''' ? \" ' ` '''", " ? \" ' ` ", True),
    (r'"\?"', "?", False),
    (r'"\`"', "`", False),
    # whitespace codes
    (r'" \a \b \f \n \r \t \v "', " \a \b \f \n \r \t \v ", True),
    (r'"""\r\n"""', "\r\n", True),
    ("'''a\nb'''", "a\nb", True),
    # \x and \X: two hex digits, a code point
    (r'" \x00 \x0A \x7F \xFF "', " \x00 \x0a \x7f \xff ", True),
    (r'" \X00 \X0A \X7F "', " \x00 \x0a \x7f ", False),
    (r'"\X41"', "A", False),
    (r'" \x4a \x4B \X4c \X4D \u01aB \U000001aB "', " J K L M \u01ab \u01ab ", False),
    # \u: four hex digits (BMP); \U: eight (any plane); unassigned code points are fine
    (r'" \u0000 \u000A \u007F \u0100 \uFFFB "', " \x00 \x0a \x7f \u0100 \ufffb ", True),
    (r'" \U00000000 \U0000007F \U00010000 \U0001F62C "', " \x00 \x7f \U00010000 \U0001f62c ", True),
    (r'"\U00088888"', "\U00088888", True),
    # three octal digits, 000 to 377, each a code point (not a byte)
    (r'" \000 \012 \177 "', " \x00 \x0a \x7f ", True),
    (r'"\303\277"', "\u00c3\u00bf", True),
    (r'"\377"', "\u00ff", True),
    # raw strings take no escapes, and a backslash does not escape the quote
    (r"r' \\ \? \" \` \a \n \000 \x00 \X00 \u0000 \U00000000 '",
     r" \\ \? \" \` \a \n \000 \x00 \X00 \u0000 \U00000000 ", True),
    (r'R" \\ \? \' \t "', r" \\ \? \' \t ", True),
    (r"r'''\''x'''", r"\''x", True),
    (r"r'\'", "\\", False),  # Python reads r'\' as unterminated
    (r'R"""\"x"""', '\\"x', True),
    # quotes inside the other kind, and triple quotes
    ("'\"\"'", '""', True),
    ("'''x''x'''", "x''x", True),
    ('"""a"b""c"""', 'a"b""c', True),
    ('""', "", True),
    ("'\u00ff\U0001f600'", "\u00ff\U0001f600", True),
]


@pytest.mark.parametrize(("text", "value", "python_agrees"), DECODED, ids=[case[0] for case in DECODED])
def test_string_literals_decode_as_cel_specifies(text: str, value: str, python_agrees: bool) -> None:
    assert literal(text) == value
    assert (python_decode(text) == value) is python_agrees, "the naive decode's result changed"


# (CEL text, column of the problem inside "doc.a == <text>", what the message says, Python's value)
REFUSED = [
    (r'"\s"', 11, r"invalid escape '\s'", "\\s"),
    (r'"\0"', 11, r"invalid escape '\0'", "\x00"),           # Python: one to three octal digits
    (r'"\12"', 11, r"invalid escape '\1'", "\n"),
    (r'"\400"', 11, r"invalid escape '\4'", "\u0100"),       # octal stops at \377
    (r'"ab\8"', 13, r"invalid escape '\8'", "ab\\8"),
    (r'"\x4"', 11, r"invalid escape '\x'", None),
    (r'"\u12"', 11, r"invalid escape '\u'", None),
    (r'"\U0001F6"', 11, r"invalid escape '\U'", None),
    (r'"\N{BULLET}"', 11, r"invalid escape '\N'", "\u2022"),  # Python's named characters
    ("'''a\\\nb'''", 14, r"invalid escape '\U+000A'", "ab"),  # Python's line continuation
    (r'"\uD83D\uDE03"', 11, r"escape '\uD83D' is not a Unicode code point", "\ud83d\ude03"),
    (r'"\UD83DDE03"', 11, r"escape '\UD83DDE03' is not a Unicode code point", None),
    (r'"x\uDFFF"', 12, r"escape '\uDFFF' is not a Unicode code point", "x\udfff"),
    (r'"\U00110000"', 11, r"escape '\U00110000' is not a Unicode code point", None),
    ('"\ud800"', 11, "lone surrogate U+D800", None),
    ("r'\udfff'", 12, "lone surrogate U+DFFF", None),
    ('b"abc"', 10, 'bytes literals (b"...") are not supported', b"abc"),
    (r"B'\377'", 10, 'bytes literals (b"...") are not supported', b"\xff"),
    (r'br"x"', 10, 'bytes literals (b"...") are not supported', b"x"),
]


@pytest.mark.parametrize(("text", "column", "message", "python_value"), REFUSED, ids=[case[0] for case in REFUSED])
def test_invalid_literals_are_refused_where_they_are(text: str, column: int, message: str, python_value: object) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(f"doc.a == {text}")
    assert message in info.value.message
    assert (info.value.line, info.value.column) == (1, column)
    assert python_decode(text) == python_value, "the naive decode's result changed"


def test_an_escape_error_in_a_multiline_string_points_at_its_line_and_column() -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition('doc.a == """first\n  second \\q"""')
    assert (info.value.line, info.value.column) == (2, 10)


def test_a_quoted_string_cannot_span_lines() -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition('doc.a == "one\ntwo"')
    assert "use triple quotes" in str(info.value)


def test_a_nul_in_a_field_name_is_refused() -> None:
    # BSON field names cannot hold NUL: the filter could never be sent.
    with pytest.raises(ConditionError, match="NUL"):
        parse_condition(r'doc["a\000b"] == 1')


# --- a wrong decode changes decisions --------------------------------------------------------

NEGATION_POLICY = r"""
roles:
  member: {}
policies:
  docs:
    member:
      actions: [read]
      when: 'doc.tenant_id == user.tenant_id && !(doc.label in ["\?", "\`", "\X41", "\x2A\101"])'
"""


@pytest.mark.parametrize(("label", "python_would_allow"), [("?", True), ("`", True), ("A", True), ("*A", False)])
def test_a_negated_condition_denies_the_values_cel_means(db, label: str, python_would_allow: bool) -> None:
    policy = load_policy(NEGATION_POLICY)
    ident = Identity(id="u1", tenant_id="acme", roles=["member"])
    document = {"_id": 1, "tenant_id": "acme", "label": label}
    db.docs.insert_many([document, {"_id": 2, "tenant_id": "acme", "label": "ok"}])

    assert not policy.allows(ident, "read", "docs", document)
    plan = policy.plan(ident, "read", "docs")
    assert {d["_id"] for d in db.docs.find(plan.filter, collation=plan.collation)} == {2}

    # The naive decode keeps "\?" as two characters: the label is then not in the list, and the
    # negation turns this deny into an allow.
    python_list = [python_decode(f'"{item}"') for item in ("\\?", "\\`", "\\X41", "\\x2A\\101")]
    assert (label not in python_list) is python_would_allow


# --- any text round-trips through a CEL literal ------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


def _escape(char: str, form: int) -> str:
    code = ord(char)
    short = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v",
             "\\": "\\\\", "?": r"\?", '"': r"\"", "'": r"\'", "`": r"\`"}
    forms = [short.get(char, char if char not in "\"\\\n\r" else f"\\u{code:04X}"),
             f"\\U{code:08x}"]
    if code <= 0xFFFF:
        forms.append(f"\\u{code:04x}")
    if code <= 0xFF:
        forms += [f"\\x{code:02X}", f"\\X{code:02x}", f"\\{code:03o}"]
    return forms[form % len(forms)]


@given(text, st.lists(st.integers(0, 5), min_size=20, max_size=20), st.sampled_from(['"', "'", '"""', "'''"]))
def test_every_string_survives_any_cel_spelling(value: str, forms: list[int], quote: str) -> None:
    body = "".join(_escape(char, form) for char, form in zip(value, forms))
    assert literal(f"{quote}{body}{quote}") == value


@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\"\r\n"), max_size=20))
def test_a_raw_string_is_its_text(value: str) -> None:
    assert literal(f'r"{value}"') == value
