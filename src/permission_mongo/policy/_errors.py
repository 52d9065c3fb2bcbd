"""Errors of the policy engine. They know nothing of HTTP; the server maps them."""

from __future__ import annotations

__all__ = [
    "PolicyError",
    "ConfigError",
    "ConditionError",
    "UnknownCollectionError",
    "UnknownActionError",
    "FieldNotReadableError",
    "QueryError",
    "ActionNotAllowedError",
]


class PolicyError(Exception):
    """Base class of every error the policy package raises."""


class ConfigError(PolicyError):
    """A configuration file is wrong. Carries where, what, and how to fix it where known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.suggestion = suggestion
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file or "<policy>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.suggestion:
            text += f"; {self.suggestion}"
        return text


class ConditionError(PolicyError):
    """A ``when`` condition does not parse or names something that does not exist.

    ``line`` and ``column`` are 1-based positions inside the condition's own text; the
    config loader turns them into positions in the file.
    """

    def __init__(
        self, message: str, *, line: int = 1, column: int = 1, suggestion: str | None = None
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.suggestion = suggestion
        super().__init__(message if not suggestion else f"{message}; {suggestion}")


class UnknownCollectionError(PolicyError):
    """No policy or schema names this collection: nothing is allowed on it."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        super().__init__(f"unknown collection {collection!r}")


class UnknownActionError(PolicyError):
    """The action is not one the policy language knows."""

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(f"unknown action {action!r}")


class FieldNotReadableError(PolicyError):
    """A query or pipeline names a field the caller may not filter on (hidden, masked, or not
    readable in every document it can reach): refused, so the query is no oracle."""

    def __init__(self, path: str, collection: str | None = None, where: str = "query") -> None:
        self.path = path
        self.collection = collection
        self.details = {"field": path, **({"collection": collection} if collection else {})}
        super().__init__(
            f"the {where} names {path!r}, which you may not read unmasked; remove it from the {where}"
        )


class QueryError(PolicyError):
    """A filter or pipeline uses something the gateway does not run (an operator or stage not
    on the allow-list, a malformed shape, a limit exceeded). ``details`` says which."""

    def __init__(self, message: str, **details: object) -> None:
        self.message = message
        self.details = details
        super().__init__(message)


class ActionNotAllowedError(PolicyError):
    """The caller's roles grant the action on no document of the collection."""

    def __init__(self, action: str, collection: str) -> None:
        self.action = action
        self.collection = collection
        self.details = {"action": action, "collection": collection}
        super().__init__(f"your roles grant no {action} on {collection!r}")
