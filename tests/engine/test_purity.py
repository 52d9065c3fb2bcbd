"""The policy package is pure: importing it loads none of the I/O layers."""

import subprocess
import sys

IO_PACKAGES = ("pymongo", "httpx", "anyio", "fastapi", "starlette", "uvicorn", "redis", "jwt")


def test_importing_the_engine_loads_no_io_layer():
    code = (
        "import sys, permission_mongo.policy\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in %r\n"
        "    or m.startswith('permission_mongo.') and m.split('.')[1] not in ('policy', '_version'))\n"
        "print(loaded)\n"
    ) % (IO_PACKAGES,)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
