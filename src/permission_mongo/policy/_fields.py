"""Field rules: what a caller sees of a document, what it may filter on and write.

One role's rules give every dotted path a status: ``FULL`` (readable as is), ``PARTIAL`` (some
fields under it are hidden or masked), a mask type (readable only masked) or ``HIDDEN``. Roles
combine per document by union: a path is readable if some role that grants the action on that
document lets it be read, unmasked if some such role shows it unmasked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._model import FieldRules

__all__ = ["FULL", "PARTIAL", "HIDDEN", "RoleFields", "shape", "mask_value"]

FULL = "full"
PARTIAL = "partly-hidden"
HIDDEN = "hidden"
MASKED = "masked:"  # followed by the mask type: "masked:email"


def _under(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or lies inside it."""
    return path == prefix or path.startswith(prefix + ".")


class RoleFields:
    """One role's field rules, answering per path."""

    __slots__ = ("rules", "_status_cache")

    def __init__(self, rules: FieldRules) -> None:
        self.rules = rules
        self._status_cache: dict[str, str] = {}

    @property
    def unrestricted(self) -> bool:
        r = self.rules
        return r.allow is None and not r.deny and not r.mask

    def status(self, path: str) -> str:
        """FULL, PARTIAL, HIDDEN, or MASKED + the mask type, for ``path``."""
        cached = self._status_cache.get(path)
        if cached is None:
            cached = self._status_cache[path] = self._compute_status(path)
        return cached

    def _compute_status(self, path: str) -> str:
        rules = self.rules
        if path == "_id" or path.startswith("_id."):
            return FULL
        if any(_under(path, denied) for denied in rules.deny):
            return HIDDEN
        for masked, mask_type in rules.mask.items():
            if _under(path, masked):
                return MASKED + mask_type
        if rules.allow is not None:
            if not any(_under(path, allowed) for allowed in rules.allow):
                # A parent of an allowed path shows only the allowed part of itself.
                return PARTIAL if any(_under(allowed, path) for allowed in rules.allow) else HIDDEN
        restricted_below = list(rules.deny) + list(rules.mask)
        if any(_under(inner, path) for inner in restricted_below):
            return PARTIAL
        return FULL

    def writable(self, path: str) -> bool:
        """Readable (possibly masked), not partly hidden, and no deny_write over or under it."""
        status = self.status(path)
        if status in (HIDDEN, PARTIAL):
            return False
        return not any(_under(path, d) or _under(d, path) for d in self.rules.deny_write)


def _combined_status(roles: Sequence[RoleFields], path: str) -> str:
    statuses = [role.status(path) for role in roles]
    if FULL in statuses:
        return FULL
    if PARTIAL in statuses:
        return PARTIAL
    masks = sorted(s for s in statuses if s.startswith(MASKED))
    return masks[0] if masks else HIDDEN


def shape(document: Mapping[str, Any], roles: Sequence[RoleFields]) -> dict[str, Any]:
    """The document as seen through the union of ``roles``' field rules."""
    if any(role.unrestricted for role in roles):
        return dict(document)
    return _shape_map(document, "", roles)


def _shape_map(document: Mapping[str, Any], prefix: str, roles: Sequence[RoleFields]) -> dict[str, Any]:
    shaped: dict[str, Any] = {}
    for key, value in document.items():
        path = prefix + key
        status = _combined_status(roles, path)
        if status == FULL:
            shaped[key] = value
        elif status == PARTIAL:
            partial_roles = [role for role in roles if role.status(path) == PARTIAL]
            shaped[key] = _shape_value(value, path + ".", partial_roles)
        elif status != HIDDEN:
            shaped[key] = mask_value(value, status.removeprefix(MASKED))
    return shaped


def _shape_value(value: Any, prefix: str, roles: Sequence[RoleFields]) -> Any:
    if isinstance(value, Mapping):
        return _shape_map(value, prefix, roles)
    if isinstance(value, list):
        # Paths do not name array positions: the rules apply to each element. An array
        # directly inside an array becomes None (pipelines rebuild documents with a fixed
        # depth of expressions, and must show the same).
        return [
            _shape_map(item, prefix, roles) if isinstance(item, Mapping) else None if isinstance(item, list) else item
            for item in value
        ]
    return value


# --- masks ----------------------------------------------------------------------------------

REDACTED = "***"
_DIGITS = frozenset("0123456789")


def mask_value(value: Any, mask_type: str) -> Any:
    """A readable stand-in for a masked value: a string masked by type, each string of an
    array likewise, anything else redacted. (_pipeline.mask_expression does the same.)"""
    if isinstance(value, list):
        return [_mask_string(item, mask_type) if isinstance(item, str) else REDACTED for item in value]
    if not isinstance(value, str):
        return REDACTED
    return _mask_string(value, mask_type)


def _mask_string(value: str, mask_type: str) -> str:
    if mask_type == "email":
        return _mask_email(value)
    if mask_type == "phone":
        return _mask_phone(value)
    if mask_type == "partial":
        return _mask_partial(value)
    return REDACTED


def _mask_email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return _mask_partial(value)
    return f"{local[0]}***@{domain}"


def _mask_phone(value: str) -> str:
    """``+1-555-123-4567`` -> ``+1-***-***-4567``: keeps a leading country code and the last four digits."""
    digits = [i for i, char in enumerate(value) if char in _DIGITS]
    keep = set(digits[-4:])
    if value.startswith("+"):
        i = 1
        while i < len(value) and value[i] in _DIGITS:
            keep.add(i)
            i += 1
    if len(digits) <= 4:
        keep = set()
    return "".join("*" if char in _DIGITS and i not in keep else char for i, char in enumerate(value))


def _mask_partial(value: str) -> str:
    if len(value) <= 2:
        return "*" * len(value)
    return value[0] + "*" * (len(value) - 2) + value[-1]

