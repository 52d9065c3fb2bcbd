"""Defaults of the SDK: timeouts, retries and the names of the headers it speaks."""

from .._version import __version__

DEFAULT_TIMEOUT = 30.0
"""Seconds a request may take (connect, write, read) before it counts as timed out."""

DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_FACTOR = 0.5
"""First retry after 0.5 s, then 1 s, 2 s, 4 s... (before jitter)."""

DEFAULT_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses worth another attempt: the gateway was busy or failed, not the request itself.
409 is left out on purpose: the gateway uses it for conflicts a retry cannot fix."""

MAX_RETRY_DELAY = 60.0
"""Cap on one wait between attempts. A Retry-After longer than this is not waited for: the
error is raised at once, with ``retry_after`` set, and the caller decides."""

RETRY_JITTER = 0.25
"""Backoff delays are shortened by up to this fraction at random, so that clients that failed
together do not come back together."""

DATA_PATH = "/v1/data"

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REQUEST_ID_HEADER = "X-Request-ID"
RETRY_AFTER_HEADER = "Retry-After"

USER_AGENT = f"permission-mongo-python/{__version__}"

LOGGER_NAME = "permission_mongo"
