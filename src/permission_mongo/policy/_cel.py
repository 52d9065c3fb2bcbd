"""The condition language: a CEL subset, parsed once into a small tree.

Grammar (CEL syntax): ``?:``, ``||``, ``&&``, ``== != < <= > >= in``, ``!``, unary ``-``,
field selection ``a.b`` and ``a["b"]``, ``has(path)``, list literals and scalar literals
(strings, integers, doubles, ``true``, ``false``, ``null``). Names are ``doc`` (alias
``resource``) for the document and ``user`` for the caller.

String literals follow CEL's lexis exactly (cel-spec ``langdef.md``, "String and Bytes
Values"): single, double and triple quotes, ``r``/``R`` raw strings, and CEL's escapes, not
Python's. Bytes literals (``b"..."``) are refused: no condition compares binary data.

The tree has three back ends (``_evaluate``, ``_compile`` and ``_expression``); whatever they
cannot translate exactly is refused here, at load time, with the position of the offending part.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Union

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ._errors import ConditionError

__all__ = [
    "Condition",
    "Node",
    "Literal",
    "ListExpr",
    "DocPath",
    "UserPath",
    "Not",
    "Negate",
    "And",
    "Or",
    "Ternary",
    "Compare",
    "Has",
    "USER_FIELDS",
    "parse_condition",
]

USER_FIELDS = ("id", "tenant_id", "roles", "attributes", "subordinates", "direct_reports", "ancestors")

_GRAMMAR = r"""
?start: expr
?expr: or_expr "?" or_expr ":" expr  -> ternary
     | or_expr
?or_expr: or_expr "||" and_expr      -> or_
        | and_expr
?and_expr: and_expr "&&" relation    -> and_
         | relation
?relation: relation REL_OP unary     -> compare
         | unary
?unary: "!" unary                    -> not_
      | "-" unary                    -> negate
      | member
?member: member "." NAME             -> select
       | member "[" expr "]"         -> index
       | primary
?primary: NAME                       -> name
        | HAS "(" member ")"         -> has
        | "(" expr ")"
        | "[" [expr ("," expr)*] "]" -> list_
        | DOUBLE                     -> double
        | INT                        -> int_
        | STRING                     -> string
        | TRUE                       -> true
        | FALSE                      -> false
        | NULL                       -> null

REL_OP: "==" | "!=" | "<=" | ">=" | "<" | ">" | /in\b/
HAS.2: /has(?=\s*\()/
TRUE.2: /true\b/
FALSE.2: /false\b/
NULL.2: /null\b/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
DOUBLE: /[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?/ | /[0-9]+[eE][+-]?[0-9]+/
INT: /0[xX][0-9a-fA-F]+/ | /[0-9]+/
// CEL's STRING_LIT and BYTES_LIT, triple quotes first. Any backslash pair is taken here and
// judged by _decode_string, so a bad escape is reported where it is, not as a stray character.
STRING.2: /[bB]?[rR](?:"{3}[\s\S]*?"{3}|'{3}[\s\S]*?'{3}|"[^"\r\n]*"|'[^'\r\n]*')/
        | /[bB]?(?:"{3}(?:[^\\]|\\[\s\S])*?"{3}|'{3}(?:[^\\]|\\[\s\S])*?'{3})/
        | /[bB]?(?:"(?:[^"\\\r\n]|\\.)*"|'(?:[^'\\\r\n]|\\.)*')/

%import common.WS
%ignore WS
"""

# --- the tree ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    reads_doc = False


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Node, ...]
    reads_doc: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads_doc", _reads_document(self))


@dataclass(frozen=True, slots=True)
class DocPath:
    """A field of the document: ``doc.a.b`` is ``("a", "b")``."""

    path: tuple[str, ...]
    reads_doc = True

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class UserPath:
    """A value of the caller: ``user.attributes.dept`` is ``("attributes", "dept")``."""

    path: tuple[str, ...]
    reads_doc = False


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    reads_doc: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads_doc", _reads_document(self))


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node
    reads_doc: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads_doc", _reads_document(self))


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node
    reads_doc: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads_doc", _reads_document(self))


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node
    reads_doc: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads_doc", _reads_document(self))


@dataclass(frozen=True, slots=True)
class Ternary:
    condition: Node
    if_true: Node
    if_false: Node
    reads_doc: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads_doc", _reads_document(self))


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # == != < <= > >= in
    left: Node
    right: Node
    reads_doc: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads_doc", _reads_document(self))


@dataclass(frozen=True, slots=True)
class Has:
    target: DocPath | UserPath
    reads_doc: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads_doc", _reads_document(self))


Node = Union[Literal, ListExpr, DocPath, UserPath, Not, Negate, And, Or, Ternary, Compare, Has]


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed ``when`` condition: its text and its tree."""

    text: str
    root: Node

    @property
    def reads_document(self) -> bool:
        return reads_document(self.root)


def reads_document(node: Node) -> bool:
    """Whether the value of ``node`` depends on the document (else it is known per caller)."""
    return node.reads_doc


def _reads_document(node: Node) -> bool:
    match node:
        case DocPath():
            return True
        case Has(target=target):
            return isinstance(target, DocPath)
        case Literal() | UserPath():
            return False
        case ListExpr(items=items):
            return any(item.reads_doc for item in items)
        case Not(operand=x) | Negate(operand=x):
            return x.reads_doc
        case And(left=a, right=b) | Or(left=a, right=b) | Compare(left=a, right=b):
            return a.reads_doc or b.reads_doc
        case Ternary(condition=c, if_true=a, if_false=b):
            return c.reads_doc or a.reads_doc or b.reads_doc
    raise TypeError(f"not a condition node: {node!r}")


# --- parsing ------------------------------------------------------------------------------


class _Refused(Exception):
    """Raised inside the transformer; carries the message and the offending token."""

    def __init__(self, message: str, token: Token | None, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.token = token
        self.suggestion = suggestion


class _Path:
    """A path under construction: ``doc``/``user`` and the names selected so far."""

    __slots__ = ("root", "names", "token")

    def __init__(self, root: str, names: tuple[str, ...], token: Token) -> None:
        self.root, self.names, self.token = root, names, token


def _finish(item: Any) -> Node:
    """Turn a bare path into a node; ``doc`` and ``user`` alone are not values."""
    if not isinstance(item, _Path):
        return item
    if not item.names:
        raise _Refused(f"'{item.token}' alone is not a value; name a field, as in {item.token}.field", item.token)
    if item.root == "doc":
        return DocPath(item.names)
    return UserPath(item.names)


class _BadString(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message, self.offset = message, offset


# CEL's ESCAPE production; the groups say which kind matched.
_ESCAPE = re.compile(
    r"""\\(?:(?P<char>[abfnrtv\\?"'`])|[xX](?P<hex2>[0-9A-Fa-f]{2})|u(?P<hex4>[0-9A-Fa-f]{4})"""
    r"""|U(?P<hex8>[0-9A-Fa-f]{8})|(?P<octal>[0-3][0-7]{2}))"""
)
_CHAR_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "?": "?", '"': '"', "'": "'", "`": "`",
}
_ESCAPES_HELP = (
    "CEL escapes are \\a \\b \\f \\n \\r \\t \\v \\\\ \\? \\\" \\' \\`, \\xHH, \\uHHHH, \\UHHHHHHHH "
    "and octal \\000 to \\377; a raw string (r\"...\") takes none"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _decode_string(body: str) -> str:
    """The value of a quoted (not raw) CEL string's body. Raises _BadString with the offset
    of the offending escape: CEL refuses what Python would keep or reinterpret."""
    _raw_string(body)  # no lone surrogate as written
    out: list[str] = []
    done = 0
    while (at := body.find("\\", done)) >= 0:
        out.append(body[done:at])
        escape = _ESCAPE.match(body, at)
        if escape is None:
            after = body[at + 1 : at + 2]
            shown = after if after.isprintable() else f"U+{ord(after):04X}"
            raise _BadString(f"invalid escape '\\{shown}' in a string literal; {_ESCAPES_HELP}", at)
        if escape["char"] is not None:
            out.append(_CHAR_ESCAPES[escape["char"]])
        else:
            digits = escape["hex2"] or escape["hex4"] or escape["hex8"]
            code = int(digits, 16) if digits else int(escape["octal"], 8)
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise _BadString(
                    f"escape '{escape[0]}' is not a Unicode code point"
                    + ("; write the character itself or \\U and its 8 hex digits, "
                       "not a UTF-16 surrogate" if code <= 0xDFFF else ""),
                    at,
                )
            out.append(chr(code))
        done = escape.end()
    out.append(body[done:])
    return "".join(out)


def _raw_string(body: str) -> str:
    if (lone := _SURROGATE.search(body)) is not None:
        raise _BadString(f"a string literal holds a lone surrogate U+{ord(lone[0]):04X}, not a character", lone.start())
    return body


def _token_at(token: Token, offset: int) -> Token:
    """A token at ``offset`` characters into ``token`` (which may span lines)."""
    before = str(token)[:offset]
    lines = before.count("\n")
    column = len(before) - before.rfind("\n") if lines else token.column + len(before)
    return Token(token.type, str(token)[offset:], token.start_pos + offset, token.line + lines, column)


@v_args(inline=True)
class _Build(Transformer):
    def name(self, token: Token) -> _Path:
        if token in ("doc", "resource"):
            return _Path("doc", (), token)
        if token == "user":
            return _Path("user", (), token)
        close = difflib.get_close_matches(str(token), ["doc", "resource", "user"], n=1)
        raise _Refused(
            f"unknown name '{token}'; conditions read doc.* (or resource.*) and user.*",
            token,
            f"did you mean '{close[0]}'?" if close else None,
        )

    def select(self, base: Any, name: Token) -> _Path:
        if not isinstance(base, _Path):
            raise _Refused(f"cannot select '.{name}' here: only doc.* and user.* have fields", name)
        if base.root == "user" and not base.names and name not in USER_FIELDS:
            close = difflib.get_close_matches(str(name), USER_FIELDS, n=1)
            raise _Refused(
                f"unknown field 'user.{name}'; the caller has {', '.join(USER_FIELDS)}",
                name,
                f"did you mean 'user.{close[0]}'?" if close else None,
            )
        return _Path(base.root, base.names + (str(name),), name)

    def index(self, base: Any, key: Any) -> _Path:
        if not isinstance(base, _Path) or not isinstance(key, Literal) or not isinstance(key.value, str):
            token = base.token if isinstance(base, _Path) else None
            raise _Refused("only a quoted field name may be used in [...], as in doc[\"field\"]", token)
        name = key.value
        if not name or name.startswith("$") or "." in name or "\x00" in name:
            raise _Refused(
                f"field name {name!r} cannot be used: it is empty, starts with '$' or holds '.' or NUL", base.token
            )
        return self.select(base, Token("NAME", name, base.token.start_pos, base.token.line, base.token.column))

    def has(self, token: Token, target: Any) -> Has:
        if not isinstance(target, _Path) or not target.names:
            raise _Refused("has() takes a field, as in has(doc.field)", token)
        return Has(_finish(target))  # type: ignore[arg-type]

    def ternary(self, condition: Any, if_true: Any, if_false: Any) -> Ternary:
        return Ternary(_finish(condition), _finish(if_true), _finish(if_false))

    def or_(self, left: Any, right: Any) -> Or:
        return Or(_finish(left), _finish(right))

    def and_(self, left: Any, right: Any) -> And:
        return And(_finish(left), _finish(right))

    def not_(self, operand: Any) -> Not:
        return Not(_finish(operand))

    def negate(self, operand: Any) -> Node:
        operand = _finish(operand)
        if isinstance(operand, Literal) and type(operand.value) in (int, float):
            return Literal(-operand.value)
        if reads_document(operand):
            raise _Refused("arithmetic on document fields is not supported", None)
        return Negate(operand)

    def compare(self, left: Any, op: Token, right: Any) -> Compare:
        token = left.token if isinstance(left, _Path) else op
        left, right = _finish(left), _finish(right)
        operator = str(op).strip()
        if isinstance(left, Compare) or isinstance(right, Compare):
            raise _Refused("comparisons cannot be chained; join them with &&", op)
        if reads_document(left) and reads_document(right):
            raise _Refused(
                "a condition may compare a document field with a user value or a literal, "
                "not with another document field",
                token,
            )
        for side in (left, right):
            if reads_document(side) and not isinstance(side, DocPath):
                raise _Refused(
                    f"the document side of '{operator}' must be a field such as doc.status", op
                )
        return Compare(operator, left, right)

    def list_(self, *items: Any) -> ListExpr:
        nodes = tuple(_finish(item) for item in items if item is not None)
        if any(reads_document(item) for item in nodes):
            raise _Refused("list literals may hold literals and user values, not document fields", None)
        return ListExpr(nodes)

    def double(self, token: Token) -> Literal:
        return Literal(float(token))

    def int_(self, token: Token) -> Literal:
        value = int(token, 0)
        if value > 2**63 - 1:
            raise _Refused(f"integer {token} does not fit in 64 bits", token)
        return Literal(value)

    def string(self, token: Token) -> Literal:
        text = str(token)
        prefix = len(text) - len(text.lstrip("bBrR"))
        if "b" in text[:prefix].lower():
            raise _Refused(
                "bytes literals (b\"...\") are not supported: conditions compare strings, numbers, "
                "booleans and null; write a string literal",
                token,
            )
        quote = 3 if text[prefix : prefix + 3] in ('"""', "'''") else 1
        start = prefix + quote
        body = text[start : len(text) - quote]
        try:
            return Literal(_decode_string(body) if not prefix else _raw_string(body))
        except _BadString as bad:
            raise _Refused(bad.message, _token_at(token, start + bad.offset)) from None

    def true(self, _: Token) -> Literal:
        return Literal(True)

    def false(self, _: Token) -> Literal:
        return Literal(False)

    def null(self, _: Token) -> Literal:
        return Literal(None)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", propagate_positions=False, maybe_placeholders=True)


_SYMBOLS = {
    "OR": "||", "AND": "&&", "BANG": "!", "MINUS": "-", "DOT": ".", "LSQB": "[", "RSQB": "]",
    "LPAR": "(", "RPAR": ")", "COMMA": ",", "QMARK": "?", "COLON": ":", "REL_OP": "a comparison",
    "NAME": "a name", "STRING": "a string", "INT": "a number", "DOUBLE": "a number",
    "TRUE": "true", "FALSE": "false", "NULL": "null", "HAS": "has(", "$END": "the end",
    "__ANON_0": "||", "__ANON_1": "&&",
}
_WORD_FIXES = {"and": "&&", "or": "||", "not": "!", "AND": "&&", "OR": "||", "NOT": "!"}


def _describe_expected(expected: set[str]) -> str:
    names = sorted({_SYMBOLS.get(name, name.lower()) for name in expected})
    return ", ".join(names[:8])


def parse_condition(text: str) -> Condition:
    """Parse a ``when`` condition. Raises ConditionError with the position of the problem."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("a condition must be a non-empty string")
    try:
        tree = _parser().parse(text)
        root = _finish(_Build().transform(tree))
    except VisitError as exc:
        refused = exc.orig_exc
        if not isinstance(refused, _Refused):
            raise
        token = refused.token
        line, column = (token.line, token.column) if token is not None and token.line else (1, 1)
        raise ConditionError(refused.message, line=line, column=column, suggestion=refused.suggestion) from None
    except _Refused as refused:  # raised by _finish at the top
        token = refused.token
        line, column = (token.line, token.column) if token is not None and token.line else (1, 1)
        raise ConditionError(refused.message, line=line, column=column, suggestion=refused.suggestion) from None
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    return Condition(text, root)


def _syntax_error(text: str, exc: UnexpectedInput) -> ConditionError:
    line, column = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    suggestion = None
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            line, column = text.count("\n") + 1, len(text.rsplit("\n", 1)[-1]) + 1
            message = f"the condition ends too early; expected {_describe_expected(exc.expected)}"
        else:
            message = f"unexpected '{exc.token}'; expected {_describe_expected(exc.expected)}"
        if str(exc.token) in _WORD_FIXES:
            suggestion = f"use '{_WORD_FIXES[str(exc.token)]}' instead of '{exc.token}'"
    elif isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        message = f"unexpected character {char!r}"
        rest = text[exc.pos_in_stream:]
        if rest.startswith("=") and not rest.startswith("=="):
            suggestion = "use '==' to compare"
        elif rest.startswith("&") and not rest.startswith("&&"):
            suggestion = "use '&&'"
        elif rest.startswith("|") and not rest.startswith("||"):
            suggestion = "use '||'"
        elif char and char in "\"'" and char not in rest[1:].split("\n", 1)[0]:
            suggestion = f"close the string on the same line; for a line break write \\n or use triple quotes ({char * 3})"
    elif isinstance(exc, UnexpectedEOF):
        message = "the condition ends too early"
    else:
        message = "cannot parse the condition"
    return ConditionError(message, line=line, column=column, suggestion=suggestion)
