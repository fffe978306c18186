"""The ``openepay`` command run as an operator runs it: a directory, only the settings given.

Nothing from the developer's shell leaks in: the environment keeps no ``OPENEPAY_*`` variable
but those the test passes (as ``database_url="..."`` or ``secret_key="..."``).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

from tests.support.cli import run_cli, run_process, settings_env


def operator_env(**settings: object) -> dict[str, str]:
    return settings_env(**settings)


async def run_openepay(*args: str, cwd: Path, **settings: object) -> subprocess.CompletedProcess[str]:
    """``openepay ARGS`` in ``cwd`` (in this process: ``tests.support.cli.run_cli``); it must end by itself."""
    return await asyncio.to_thread(run_cli, list(args), operator_env(**settings), cwd=cwd)


async def run_openepay_process(*args: str, cwd: Path, **settings: object) -> subprocess.CompletedProcess[str]:
    """``openepay ARGS`` in ``cwd`` in a process of its own; it must end by itself."""
    return await asyncio.to_thread(run_process, list(args), operator_env(**settings), cwd=cwd)


# A log record below ERROR, in the text format (``serve`` and ``worker`` report through the log).
_NOTICE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING) ")


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the command printed on stderr besides saying which database it uses and log notices."""
    return [
        line
        for line in result.stderr.splitlines()
        if line and not line.startswith("database: ") and not _NOTICE.match(line)
    ]
