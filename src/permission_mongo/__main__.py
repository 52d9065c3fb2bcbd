"""``python -m permission_mongo``: the same as the ``permission-mongo`` command."""

import sys

from .cli import main

sys.exit(main())
