"""What request handlers work with, built once per process when the app starts."""

from __future__ import annotations

from dataclasses import dataclass

from ..auth import ApiKeys, Authenticator
from ..policy import Policy
from ..store import Store
from ._aggregate import Aggregator
from ._data import DataPlane
from ._settings import ServerSettings

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    settings: ServerSettings
    store: Store
    api_keys: ApiKeys
    authenticator: Authenticator
    policy: Policy | None
    data: DataPlane
    aggregator: Aggregator
