"""``openepay`` as an operator runs it: a real process on the test's database, with a clean environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from tests.conftest import TEST_SECRET


async def openepay_cli(
    database_url: str, *args: str, input_text: str | None = None, **env: str
) -> subprocess.CompletedProcess:
    """``input_text`` is what the command reads on standard input (nothing: no input at all)."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("OPENEPAY_")}
    environment.update(
        OPENEPAY_DATABASE_URL=database_url,
        OPENEPAY_SECRET_KEY=TEST_SECRET,
        OPENEPAY_SANDBOX="1",
        OPENEPAY_LOG_LEVEL="WARNING",
        **env,
    )

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "openepay", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )

    return await asyncio.to_thread(run)
