"""``openepay`` as an operator runs it, on the test's database, with a clean environment.

Nothing from the developer's shell leaks in: the environment keeps no ``OPENEPAY_*`` variable but
those the test passes. Most tests run the command in this process (``openepay``, ``run_cli``): the
same ``main()`` the console script calls, with its own environment, working directory, standard
streams and logging, all put back afterwards, so a command costs what it does rather than a
second's interpreter start. ``openepay_process`` starts a real process, for what only a process
shows: the entry point, signals, servers that keep running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from tests.support.settings import TEST_SECRET

# Commands that serve until stopped: a process of their own even when a test expects them to be
# refused, so that one which starts after all fails by its timeout instead of holding the test.
SERVICES = frozenset({"serve", "worker", "demo"})

# One command at a time: the environment, the standard streams and the root logger belong to
# the whole process.
_ONE_AT_A_TIME = threading.Lock()


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


@contextmanager
def _own_logging() -> Iterator[None]:
    """Commands configure the root logger for themselves (``openepay.logs.configure``); the
    test's handlers, level and disabled loggers come back when the command ends."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    disabled = {
        name: logger.disabled
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, logger in logging.Logger.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.disabled = disabled.get(name, False)


@contextmanager
def _working_directory(cwd: Path | None) -> Iterator[None]:
    before = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


def run_cli(
    args: list[str], env: dict[str, str], *, cwd: Path | None = None, input_text: str | None = None
) -> subprocess.CompletedProcess:
    """``openepay ARGS`` through ``openepay.cli.main`` in this process, with exactly ``env`` as its
    environment; the exit code, standard output and standard error as a process would give them.
    ``serve``, ``worker`` and ``demo`` run in a process of their own (``SERVICES``)."""
    from openepay.cli import main

    if args and args[0] in SERVICES:
        return run_process(args, env, cwd=cwd, input_text=input_text)

    overrides: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    overrides.update(env)
    with _ONE_AT_A_TIME, CliRunner().isolation(input=input_text, env=overrides) as (out, err, _):
        argv = sys.argv
        sys.argv = ["openepay", *args]
        try:
            with _own_logging(), _working_directory(cwd):
                try:
                    main()
                    code = 0
                except SystemExit as exit_:
                    code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                    if isinstance(exit_.code, str):
                        print(exit_.code, file=sys.stderr)
                except Exception:
                    # What the interpreter does with an exception nobody caught.
                    traceback.print_exc()
                    code = 1
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return subprocess.CompletedProcess(["openepay", *args], code, stdout, stderr)


async def openepay(
    database_url: str, *args: str, cwd: Path | None = None, input_text: str | None = None, **variables: str
) -> subprocess.CompletedProcess:
    """``openepay ARGS`` run to its end (in this process, on a thread of its own: a command may
    call a server this test's event loop serves); ``input_text`` is what it reads on standard
    input (nothing: no input at all)."""
    return await asyncio.to_thread(
        run_cli, list(args), cli_env(database_url, **variables), cwd=cwd, input_text=input_text
    )


def run_process(
    args: list[str], env: dict[str, str], *, cwd: Path | None = None, input_text: str | None = None
) -> subprocess.CompletedProcess:
    """``openepay ARGS`` as ``python -m openepay`` with exactly ``env``; at most a minute."""
    return subprocess.run(
        [sys.executable, "-m", "openepay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        input=input_text,
        stdin=None if input_text is not None else subprocess.DEVNULL,
    )


async def openepay_process(
    database_url: str, *args: str, cwd: Path | None = None, input_text: str | None = None, **variables: str
) -> subprocess.CompletedProcess:
    """``openepay ARGS`` in a process of its own (``python -m openepay``), as ``openepay``."""
    return await asyncio.to_thread(
        run_process, list(args), cli_env(database_url, **variables), cwd=cwd, input_text=input_text
    )
