"""The built-in roles, and the ``pm:`` namespace they live in.

Built-in roles grant the gateway's own powers (the management API, decisions for any user),
so they come from API keys, which an admin creates, and from a JWT only when ``server.yml``
names its issuer in ``auth.jwt.builtin_roles_issuers``.
"""

from __future__ import annotations

import unicodedata

__all__ = ["ADMIN_ROLE", "BUILTIN_ROLES", "PDP_ROLE", "is_reserved_role"]

ADMIN_ROLE = "pm:admin"  # may use the management API; grants nothing in the data plane
PDP_ROLE = "pm:pdp"  # may ask decisions for any user; grants nothing in the data plane
BUILTIN_ROLES = frozenset({ADMIN_ROLE, PDP_ROLE})
_NAMESPACE = "pm:"


def is_reserved_role(role: str) -> bool:
    """Whether ``role`` is in the built-in namespace, or looks as if it were: ``PM:admin``,
    `` pm:admin``, ``ｐｍ:admin`` and ``pm:*`` are all refused where built-in roles are, so no
    later comparison that folds case, trims or normalizes can turn one into a built-in role."""
    return unicodedata.normalize("NFKC", role).strip().casefold().startswith(_NAMESPACE)
