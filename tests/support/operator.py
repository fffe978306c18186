"""The ``openepay`` command run as an operator runs it: a real process, a directory, only the settings given.

Nothing from the developer's shell leaks in: the environment keeps no ``OPENEPAY_*`` variable
but those the test passes (as ``database_url="..."`` or ``secret_key="..."``).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from tests.support.cli import settings_env

TIMEOUT = 60


def operator_env(**settings: object) -> dict[str, str]:
    return settings_env(**settings)


async def run_openepay(*args: str, cwd: Path, **settings: object) -> subprocess.CompletedProcess[str]:
    """``openepay ARGS`` in ``cwd``; it must end by itself (a server that starts is a failure here)."""

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "openepay", *args],
            env=operator_env(**settings),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    return await asyncio.to_thread(run)


# A log record below ERROR, in the text format (``serve`` and ``worker`` report through the log).
_NOTICE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING) ")


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the command printed on stderr besides saying which database it uses and log notices."""
    return [
        line
        for line in result.stderr.splitlines()
        if line and not line.startswith("database: ") and not _NOTICE.match(line)
    ]
