"""``openepay`` as an operator runs it: a real process on the test's database, with a clean environment.

Nothing from the developer's shell leaks in: the environment keeps no ``OPENEPAY_*`` variable but
those the test passes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.support.settings import TEST_SECRET


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without any ``OPENEPAY_*`` variable, then ``variables``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("OPENEPAY_")}
    env.update(variables)
    return env


def settings_env(**settings: object) -> dict[str, str]:
    """A clean environment holding ``settings`` as ``OPENEPAY_<NAME>`` variables (``database_url=...``)."""
    return clean_env(**{f"OPENEPAY_{name.upper()}": str(value) for name, value in settings.items()})


def cli_env(database_url: str, **variables: str) -> dict[str, str]:
    """The tests' usual command environment on ``database_url``; ``variables`` (``OPENEPAY_X="..."``) win."""
    usual = {
        "OPENEPAY_DATABASE_URL": database_url,
        "OPENEPAY_SECRET_KEY": TEST_SECRET,
        "OPENEPAY_SANDBOX": "1",
        "OPENEPAY_LOG_LEVEL": "WARNING",
    }
    return clean_env(**{**usual, **variables})


async def openepay(
    database_url: str, *args: str, cwd: Path | None = None, input_text: str | None = None, **variables: str
) -> subprocess.CompletedProcess:
    """``openepay ARGS`` run to its end in a process of its own; ``input_text`` is what it reads on
    standard input (nothing: no input at all)."""

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "openepay", *args],
            env=cli_env(database_url, **variables),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cwd,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )

    return await asyncio.to_thread(run)
