"""Regular expressions a caller may send to the database: none that can backtrack exponentially.

MongoDB matches ``$regex`` and ``$regexMatch`` with PCRE, a backtracking engine: one pattern
such as ``(a+)+$`` on one tenant's own data holds the database for everyone. There is no
well-kept PCRE ReDoS analyser for Python (regexploit reads Python's dialect through
``sre_parse`` and was last released in 2021), so this is a small scanner of PCRE syntax that
refuses, conservatively:

- a repeated group (``*``, ``+``, ``{2,}``, even ``{2}``) holding a quantifier that chooses a
  count or an alternation ``|``, at any depth: ``(a+)+``, ``(a|aa)+``, ``(?:x+y?)+``;
- a quantifier straight after another (``a{2}{3}``, ``a**``);
- backreferences, recursion, subroutine calls and conditionals (``\\1``, ``\\k<n>``, ``\\g{1}``,
  ``(?P=n)``, ``(?R)``, ``(?1)``, ``(?&n)``, ``(?(1)...)``), callouts and ``(*VERB)``s;
- more than ``MAX_UNBOUNDED`` unbounded quantifiers, or optional parts, ranges and alternatives
  that combine in more than ``MAX_WAYS`` ways (``a?a?a?...`` is exponential without nesting);
- patterns longer than ``MAX_PATTERN_LENGTH`` characters.

The scanner knows escapes (``\\(``, ``\\\\``), character classes (``[()+*]`` holds no
quantifier), ``\\Q...\\E``, comments and the ``x`` flag (``$options``, the regex's flags, inline
``(?x)``, scoped to its group), under which whitespace and ``#`` comments are not pattern.
A pattern must also compile in Python's ``re``: the embedded database (SecantusDB) matches with
it, so the gateway takes the syntax PCRE and Python share. What PCRE refuses among the rest the
database refuses with a 400.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bson import Regex

from ._errors import QueryError

__all__ = ["MAX_PATTERN_LENGTH", "MAX_UNBOUNDED", "MAX_WAYS", "REGEX_OPERATORS", "check_expression_regex", "check_pattern",
           "check_regex_value", "check_regexes"]

REGEX_OPERATORS = frozenset({"$regexMatch", "$regexFind", "$regexFindAll"})

MAX_PATTERN_LENGTH = 512
MAX_UNBOUNDED = 6
MAX_WAYS = 65_536

_BRACES = re.compile(r"\{\s*(\d*)\s*(?:(,)\s*(\d*)\s*)?\}")  # PCRE2 10.43 reads {,n} and spaces too
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPTIONS = re.compile(r"\^?[imnsxJU]*(?:-[imnsxJU]*)?")
_BRACED_ESCAPES = frozenset("xopP")  # \x{41}, \o{101}, \p{L}: the braces are not a quantifier
# PCRE's whitespace under the x flag (Pattern_White_Space), and more: skipping too much only
# makes the scanner see quantifiers closer to their items, which refuses more, never less.
_X_SPACE = frozenset(" \t\n\r\f\v\x85\u200e\u200f\u2028\u2029")
_REWRITE = (
    "rewrite it so that no repeated group holds a choice: (a+)+ as a+, (a|b)+ as [ab]+, "
    "(?:x+y?)+ as [xy]+ if that is what you mean"
)


class _Refused(Exception):
    def __init__(self, reason: str, message: str, at: int) -> None:
        super().__init__(message)
        self.reason, self.message, self.at = reason, message, at


@dataclass
class _Group:
    start: int
    extended: bool  # the x flag, as it stands at this point of the group
    end: int = 0  # the index after its ')'
    choice: str | None = None  # the first quantifier or "|" inside, for the message
    ways: int = 1  # how many ways its alternatives and bounded choices combine
    branches: int = 1
    branch_ways: list[int] = field(default_factory=list)


def check_regex_value(value: Any, options: Any = "", *, where: str) -> None:
    """Refuse a regular expression the caller sent: a string pattern (with its ``$options``),
    a ``bson.Regex`` or a compiled ``re.Pattern`` (whose own flags count too)."""
    pattern, letters = value, ""
    if isinstance(value, (Regex, re.Pattern)):
        pattern, letters = value.pattern, _flag_letters(int(value.flags))
    if options is not None and not isinstance(options, str):
        raise QueryError(f"{where}: regex options must be a string of flags such as \"i\"", operator="$options")
    check_pattern(pattern, letters + (options or ""), where=where)


def check_regexes(value: Any, *, where: str) -> None:
    """Check every regular expression value inside ``value`` (a filter's operand: a value,
    ``$in``/``$nin``/``$all`` lists, ``$not``...): the database matches them as patterns."""
    if isinstance(value, (Regex, re.Pattern)):
        check_regex_value(value, where=where)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_regexes(item, where=where)
    elif isinstance(value, Mapping):
        for item in value.values():
            check_regexes(item, where=where)


def check_expression_regex(op: str, operand: Any) -> None:
    """``$regexMatch``, ``$regexFind``, ``$regexFindAll``: the pattern and its options must be
    constants, checked here; a field path or an expression would run stored data as a pattern."""
    if not isinstance(operand, Mapping):
        raise QueryError(f"{op} takes {{input: ..., regex: ..., options: ...}}", operator=op)
    regex, options = operand.get("regex"), operand.get("options", "")
    if isinstance(regex, Mapping) and set(regex) == {"$literal"} and isinstance(regex["$literal"], str):
        regex = regex["$literal"]  # how a pattern starting with '$' is written
    elif not isinstance(regex, (str, Regex, re.Pattern)) or (isinstance(regex, str) and regex.startswith("$")):
        raise QueryError(
            f"{op}: regex must be a constant string or regular expression, not a field path or an "
            "expression, since a pattern taken from stored data cannot be checked; write a pattern "
            'that starts with \'$\' as {"$literal": "$..."}',
            operator=op,
        )
    if not isinstance(options, str) or options.startswith("$"):
        raise QueryError(f"{op}: options must be a constant string of flags such as \"i\"", operator=op)
    check_regex_value(regex, options, where=op)


_PYTHON_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def _flag_letters(flags: int) -> str:
    return "".join(letter for letter, flag in _PYTHON_FLAGS.items() if flags & flag)


def _unportable(pattern: str, options: str) -> str | None:
    """Why Python's ``re`` cannot compile the pattern, or None. The embedded database matches
    with Python's ``re`` (reading ``\\z`` as PCRE's end anchor) and answers an internal error
    for an expression whose pattern it cannot compile: the gateway takes the syntax both read."""
    flags = 0
    for letter in options:
        flags |= _PYTHON_FLAGS.get(letter, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FutureWarning on "[[" and the like: still compiles
        try:
            re.compile(pattern.replace("\\z", "\\Z"), flags)
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            return str(exc)
    return None


def check_pattern(pattern: Any, options: Any = "", *, where: str) -> None:
    """Raise QueryError (a 400) if ``pattern`` could backtrack exponentially, saying why."""
    if not isinstance(pattern, str):
        raise QueryError(f"{where}: a regular expression must be a string", operator="$regex")
    if options is not None and not isinstance(options, str):
        raise QueryError(f"{where}: regex options must be a string of flags such as \"i\"", operator="$options")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise QueryError(
            f"{where}: the regular expression is {len(pattern)} characters long; at most "
            f"{MAX_PATTERN_LENGTH} are allowed",
            operator="$regex", reason="too_long", limit=MAX_PATTERN_LENGTH,
        )
    try:
        _Scanner(pattern, "x" in (options or "")).scan()
    except _Refused as refused:
        raise QueryError(
            f"{where}: the regular expression {_shown(pattern)} is refused at character {refused.at + 1}: "
            f"{refused.message}",
            operator="$regex", reason=refused.reason, position=refused.at + 1,
        ) from None
    unportable = _unportable(pattern, options or "")
    if unportable is not None:
        raise QueryError(
            f"{where}: the regular expression {_shown(pattern)} uses syntax the gateway does not run "
            f"({unportable}): write it in the syntax PCRE and Python's re share: no \\Q...\\E, \\p{...} "
            "or \\x{...}, (?P<name>...) rather than (?<name>...), inline flags at the start or scoped as (?i:...)",
            operator="$regex", reason="unsupported_syntax",
        )


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 60 else pattern[:57] + "...")


class _Scanner:
    def __init__(self, pattern: str, extended: bool) -> None:
        self.p = pattern
        self.i = 0
        self.stack = [_Group(-1, extended)]
        self.last: _Group | str | None = None  # "atom", "quantifier", a closed group, or None
        self.unbounded = 0

    def scan(self) -> None:
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            top = self.stack[-1]
            if top.extended and c in _X_SPACE:
                self.i += 1
            elif top.extended and c == "#":
                self.comment()
            elif c == "\\":
                self.escape()
            elif c == "[":
                self.char_class()
            elif c == "(":
                self.open_group()
            elif c == ")":
                self.close_group()
            elif c == "|":
                self.alternative()
            elif c in "*+?":
                self.quantifier({"*": (0, None), "+": (1, None), "?": (0, 1)}[c], self.i + 1)
            elif c == "{" and (braces := _BRACES.match(p, self.i)) and (braces[1] or braces[3]):
                low = int(braces[1] or 0)
                high = low if braces[2] is None else (int(braces[3]) if braces[3] else None)
                self.quantifier((low, high), braces.end())
            else:
                self.i += 1
                self.last = "atom"
        if len(self.stack) > 1:
            raise _Refused("syntax", "a group is not closed: add ')'", self.stack[-1].start)
        self.finish_group(self.stack[0])
        if self.stack[0].ways > MAX_WAYS:
            raise _Refused(
                "too_many_choices",
                f"its alternatives, optional parts and ranges combine in {self.stack[0].ways:,} ways, "
                f"more than {MAX_WAYS:,} (it can backtrack exponentially); make fewer parts optional, "
                "or use character classes such as [ab] instead of (a|b)",
                0,
            )

    # --- pieces ------------------------------------------------------------------------------

    def comment(self) -> None:
        end = self.p.find("\n", self.i)
        end = len(self.p) if end < 0 else end
        if any(ch in "\r\x85\u2028\u2029" for ch in self.p[self.i : end]):
            raise _Refused("syntax", "under the x flag, end a # comment with \\n", self.i)
        self.i = end + 1

    def escape(self) -> None:
        p, at = self.p, self.i
        if at + 1 >= len(p):
            raise _Refused("syntax", "the pattern ends with a lone backslash; write \\\\ for one", at)
        kind = p[at + 1]
        if kind in "123456789" or kind in "gk":
            raise _Refused(
                "backreference",
                f"backreferences and subroutine calls (\\{kind}...) are not allowed: matching them "
                "can take exponential time; match the repeated text itself",
                at,
            )
        if kind == "Q":  # literal text up to \E
            end = p.find("\\E", at + 2)
            end = len(p) if end < 0 else end
            if end > at + 2:
                self.last = "atom"
            self.i = min(end + 2, len(p))
            return
        if kind == "E":
            self.i = at + 2
            return
        self.i = self.escape_end(at)
        self.last = "atom"

    def escape_end(self, at: int) -> int:
        """The index after the escape at ``at`` (outside or inside a class)."""
        p = self.p
        kind = p[at + 1]
        # \N{U+41} is a character, but \N{2,5} is \N (not a newline) and a quantifier.
        if (kind in _BRACED_ESCAPES and p[at + 2 : at + 3] == "{") or (kind == "N" and p[at + 2 : at + 5] == "{U+"):
            close = p.find("}", at + 3)
            if close < 0:
                raise _Refused("syntax", f"\\{kind}{{ is not closed: add '}}'", at)
            return close + 1
        if kind == "c":  # \cX: a control character, X any character
            if at + 2 >= len(p):
                raise _Refused("syntax", "\\c must be followed by a character", at)
            return at + 3
        return at + 2

    def char_class(self) -> None:
        p, at = self.p, self.i
        j = at + 1
        if p[j : j + 1] == "^":
            j += 1
        if p[j : j + 1] == "]":  # a ']' first is a literal
            j += 1
        while True:
            if j >= len(p):
                raise _Refused("syntax", "a character class is not closed: add ']'", at)
            ch = p[j]
            if ch == "]":
                break
            if ch == "\\":
                if j + 1 >= len(p):
                    raise _Refused("syntax", "the pattern ends with a lone backslash", j)
                if p[j + 1] == "Q":
                    end = p.find("\\E", j + 2)
                    j = len(p) if end < 0 else end + 2
                else:
                    j = self.escape_end(j)
            elif ch == "[" and p[j + 1 : j + 2] in (":", ".", "="):  # [:alpha:] and the like
                end = p.find(p[j + 1] + "]", j + 2)
                j = j + 1 if end < 0 else end + 2
            else:
                j += 1
        self.i = j + 1
        self.last = "atom"

    def open_group(self) -> None:
        p, at = self.p, self.i
        top = self.stack[-1]
        extended = top.extended
        if p.startswith("(*", at):
            raise _Refused("verb", "(*...) verbs and start-of-pattern options are not allowed", at)
        j = at + 1
        if p.startswith("(?", at):
            kind = p[at + 2 : at + 3]
            j = at + 3
            if kind == "#":  # a comment, up to the first ')'
                close = p.find(")", at)
                if close < 0:
                    raise _Refused("syntax", "a (?# comment is not closed: add ')'", at)
                self.i = close + 1
                return
            if kind in (":", "|", ">", "=", "!"):
                pass
            elif kind == "<" and p[j : j + 1] in ("=", "!"):
                j += 1
            elif kind in ("<", "'") or (kind == "P" and p[j : j + 1] == "<"):
                j += kind == "P"
                name = _NAME.match(p, j)
                closer = "'" if kind == "'" else ">"
                if name is None or p[name.end() : name.end() + 1] != closer:
                    raise _Refused("syntax", "a group name must be letters, digits or _, as in (?<name>...)", at)
                j = name.end() + 1
            elif kind == "P" or kind in ("R", "&", "(", "+") or kind.isdigit() or (
                kind == "-" and p[j : j + 1].isdigit()
            ):
                raise _Refused(
                    "backreference",
                    "backreferences, recursion, subroutine calls and conditionals ((?P=name), (?R), (?1), "
                    "(?&name), (?(1)...)) are not allowed: matching them can take exponential time",
                    at,
                )
            elif kind == "C":
                raise _Refused("callout", "callouts (?C...) are not allowed", at)
            else:
                options = _OPTIONS.match(p, at + 2)
                end = options.end() if options else at + 2
                letters = p[at + 2 : end]
                if p[end : end + 1] not in (")", ":"):
                    raise _Refused(
                        "syntax",
                        f"unknown or unsupported group (?{p[at + 2 : end + 1]}: use (?:...), (?=...), (?!...), "
                        "(?<=...), (?<!...), (?>...), (?<name>...) or inline flags among i, m, s, x, n, U, J",
                        at,
                    )
                on, _, off = letters.lstrip("^").partition("-")
                if "xx" in on or "xx" in off:
                    raise _Refused("syntax", "the xx flag is not supported", at)
                extended = (extended and not letters.startswith("^") and "x" not in off) or "x" in on
                if p[end] == ")":  # the flags hold to the end of the enclosing group
                    top.extended = extended
                    self.i = end + 1
                    return
                j = end + 1
        self.stack.append(_Group(at, extended))
        self.i = j
        self.last = None

    def close_group(self) -> None:
        if len(self.stack) == 1:
            raise _Refused("syntax", "')' closes no group: remove it or write \\)", self.i)
        group = self.stack.pop()
        group.end = self.i + 1
        self.finish_group(group)
        parent = self.stack[-1]
        parent.choice = parent.choice or group.choice
        parent.ways = min(parent.ways * group.ways, MAX_WAYS + 1)
        self.i += 1
        self.last = group

    def finish_group(self, group: _Group) -> None:
        if group.branches > 1:
            group.ways = min(sum(group.branch_ways) + group.ways, MAX_WAYS + 1)

    def alternative(self) -> None:
        group = self.stack[-1]
        group.choice = group.choice or "|"
        group.branch_ways.append(group.ways)
        group.ways = 1
        group.branches += 1
        self.i += 1
        self.last = None

    def quantifier(self, bounds: tuple[int, int | None], end: int) -> None:
        at, p = self.i, self.p
        low, high = bounds
        if high is not None and high < low:
            raise _Refused("syntax", f"the quantifier {p[at:end]} has its numbers out of order", at)
        if end < len(p) and p[end] in "?+":  # lazy or possessive: part of this quantifier
            end += 1
        written = p[at:end]
        if self.last is None:
            raise _Refused("syntax", f"the quantifier {written} follows nothing it can repeat", at)
        if self.last == "quantifier":
            raise _Refused(
                "nested_quantifier",
                f"the quantifier {written} repeats a quantifier, which can backtrack exponentially; "
                "write one quantifier, as a{6} for a{2}{3}",
                at,
            )
        repeats = high is None or high > 1
        if isinstance(self.last, _Group) and repeats and self.last.choice:
            inner = "an alternation |" if self.last.choice == "|" else f"the quantifier {self.last.choice}"
            raise _Refused(
                "nested_quantifier",
                f"the group {_shown(p[self.last.start : self.last.end])} is repeated by {written} and holds {inner}, "
                f"so it can backtrack exponentially; {_REWRITE}",
                self.last.start,
            )
        if low != high:
            group = self.stack[-1]
            group.choice = group.choice or written
            if high is None:
                self.unbounded += 1
                if self.unbounded > MAX_UNBOUNDED:
                    raise _Refused(
                        "too_many_quantifiers",
                        f"more than {MAX_UNBOUNDED} unbounded quantifiers (*, +, {{n,}}); each one multiplies "
                        "the work on a long text: simplify the pattern",
                        at,
                    )
            else:
                group.ways = min(group.ways * (high - low + 1), MAX_WAYS + 1)
        self.i = end
        self.last = "quantifier"
