"""Real ``openepay worker`` and ``openepay serve`` processes, as an operator would run them, always reaped.

Each process gets a clean environment: only the ``OPENEPAY_*`` settings the test chooses, so
nothing from the developer's shell leaks in. Output goes to a log file (a pipe nobody reads
could fill up and stall the process); a failing test shows it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.cli import settings_env
from tests.support.settings import TEST_SECRET

STOP_TIMEOUT = 10.0


def worker_env(database_url: str, **settings: object) -> dict[str, str]:
    """The environment for a worker on ``database_url``; ``settings`` are more ``OPENEPAY_*`` values."""
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "notify_allow_private": 1,
        "sandbox": 1,
        "worker_poll_interval": 0.05,
        "log_level": "WARNING",
        **settings,
    }
    env = settings_env(**values)
    return env


class WorkerProcess:
    """One ``openepay worker`` process."""

    name = "worker"

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return ["worker"]

    def start(self) -> WorkerProcess:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "openepay", *self.command()],
                env=self.env,
                cwd=self.log_path.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, exactly like a crashed machine."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> None:
        """Ask politely (SIGTERM), as a service manager does; ``reap`` waits for it."""
        if self.alive:
            assert self.process is not None
            self.process.terminate()

    def reap(self) -> None:
        """Wait for the process to exit after ``terminate``, killing it if it takes too long."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


class ServeProcess(WorkerProcess):
    """One ``openepay serve --no-worker`` process on a port of its own, at ``url``."""

    name = "serve"

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return ["serve", "--no-worker", "--port", str(self.port)]


class Workers:
    """The processes a test started (workers, or servers); every one is stopped when the test ends, pass or fail."""

    def __init__(self, env: dict[str, str], log_dir: Path, kind: type[WorkerProcess] = WorkerProcess) -> None:
        self.env = env
        self.log_dir = log_dir
        self.kind = kind
        self.started: list[WorkerProcess] = []

    def start(self, count: int = 1) -> list[WorkerProcess]:
        new = []
        for _ in range(count):
            worker = self.kind(self.env, self.log_dir / f"{self.kind.name}-{len(self.started)}.log")
            self.started.append(worker)
            new.append(worker.start())
        return new

    def logs(self) -> str:
        return "\n".join(f"--- worker pid {w.pid} ---\n{w.output()}" for w in self.started if w.process)

    def stop_all(self) -> None:
        """Stop them all at once (not one after the other), and never leave one running."""
        for worker in self.started:
            try:
                worker.terminate()
            except OSError:
                pass
        for worker in self.started:
            try:
                worker.reap()
            except Exception:
                if worker.process is not None and worker.process.poll() is None:
                    worker.process.kill()


@contextmanager
def worker_processes(
    env: dict[str, str], log_dir: Path, kind: type[WorkerProcess] = WorkerProcess
) -> Iterator[Workers]:
    workers = Workers(env, log_dir, kind)
    try:
        yield workers
    finally:
        workers.stop_all()
