"""The processes behind ``openepay serve``: N web processes on one port, and the notification worker.

Python runs one thread of Python at a time, so one process can never use a second core. The
supervisor (the process ``serve`` started as) binds one listening socket per web process, all on
the same port with ``SO_REUSEPORT``, and hands each to its own web process: the kernel then
spreads new connections evenly over them. With one shared socket, whichever process woke first
took the connection, and a busy one kept taking them while the other sat idle, which showed as
a long tail of slow creates under load. The notification worker, with the
housekeeping it runs (expiry sweep, reconciliation, channels' housekeeping), is a process of its
own, so none of that ever waits in a web process's event loop behind a request or holds one up.

The supervisor only watches: a child that dies is started again (after a pause if it died right
after starting, so a crash loop does not spin), one that could not start at all (uvicorn's exit
code 3: the app's startup failed) stops the whole server, since every replacement would fail
the same way. SIGTERM or SIGINT stops every child with SIGTERM, waits for them to finish what
they are answering, and kills what is left after ``STOP_TIMEOUT``. Each child also asks the
kernel for SIGTERM if the supervisor itself dies (``PR_SET_PDEATHSIG``), so none is orphaned.

Children are forked from the supervisor, which has imported the app but holds no event loop,
no database connection and no thread when it forks (its checks before serving ran and closed
their own): each child builds its own event loop, database pool and HTTP clients, and starts
in a fraction of a second instead of importing everything again. Before it forks, and again
in each web process once it is ready to serve, everything alive is moved out of the garbage
collector's reach (``openepay.web.server.keep_out_of_collections``).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from openepay.config import Settings

if TYPE_CHECKING:
    from openepay.gateway import Gateway

log = logging.getLogger("openepay.serve")

# uvicorn's exit code when the app's startup (our lifespan) failed.
STARTUP_FAILURE = 3
STOP_TIMEOUT = 30.0
# A child that dies sooner than this after starting is started again only after the pause.
QUICK_DEATH = 2.0
RESTART_PAUSE = 1.0
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WebOptions:
    """What every web process listens with, beyond the settings."""

    forwarded_allow_ips: str | None = None


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on one port, one per web process (``SO_REUSEPORT``).

    Any process of the same user may join a port whose sockets all have ``SO_REUSEPORT``, so a
    second gateway started on the same port would silently take half of the first one's
    connections. The port is therefore first bound by a plain socket, which fails if anything
    (a second gateway included) listens there, and only then, once that one is closed, by the
    shared ones."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with _bound(family, host, port, reuse_port=False) as alone:
        port = alone.getsockname()[1]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(_bound(family, host, port, reuse_port=True))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bound(family: socket.AddressFamily, host: str, port: int, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _as_a_child() -> None:
    """Undo what the fork copied from the supervisor (its signal handlers), and ask for SIGTERM if it dies."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:
        os.kill(os.getpid(), signal.SIGTERM)


def web_process(settings: Settings, options: WebOptions, sock: socket.socket) -> None:
    """One web process: the app under uvicorn, accepting on its own one of the supervisor's sockets."""
    _as_a_child()
    import uvicorn

    from openepay import logs
    from openepay.app import create_app
    from openepay.web.server import GatewayServer, http_protocol

    logs.configure(settings.log_level, settings.log_format, repeat_interval=settings.log_repeat_interval)
    config = uvicorn.Config(
        create_app(settings),
        loop="uvloop",
        http=http_protocol(settings),
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=options.forwarded_allow_ips,
    )
    GatewayServer(config).run(sockets=[sock])


def worker_process(settings: Settings) -> None:
    """The notification worker and its housekeeping, until SIGTERM or SIGINT."""
    _as_a_child()
    import uvloop

    from openepay import logs
    from openepay.gateway import Gateway

    logs.configure(settings.log_level, settings.log_format, repeat_interval=settings.log_repeat_interval)

    async def run() -> None:
        gateway = await Gateway.open(settings)
        try:
            await run_notify_worker(gateway)
        finally:
            await gateway.aclose()
            logs.report_held_back()

    uvloop.run(run())


async def run_notify_worker(gateway: Gateway, metrics_port: int | None = None) -> None:
    """Deliver notifications and housekeep until SIGTERM or SIGINT (serve's worker, ``openepay worker``)."""
    import asyncio

    from openepay.notify.worker import NotifyWorker

    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=gateway.metrics.registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    notify_worker = NotifyWorker(gateway)
    try:
        await notify_worker.run(stop)
    finally:
        await notify_worker.aclose()


@dataclass
class Child:
    """One supervised process: what it is called in the log, and how to start another like it."""

    role: str
    target: Callable[..., None]
    args: tuple[Any, ...]
    process: BaseProcess | None = None
    started_at: float = 0.0
    restarts: int = field(default=0)

    def start(self) -> None:
        context = multiprocessing.get_context("fork")
        self.process = context.Process(target=self.target, args=self.args, name=f"openepay-{self.role}")
        self.process.start()
        self.started_at = time.monotonic()
        log.info("started %s process %d", self.role, self.process.pid)


class Supervisor:
    """Start the children, start again any that dies, stop them all on SIGTERM or SIGINT."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self._stopping = False

    def _stop(self, signum: int, _frame: object) -> None:
        if not self._stopping:
            log.info("received %s, stopping %d processes", signal.Signals(signum).name, len(self.children))
        self._stopping = True

    def run(self) -> int:
        """Supervise until told to stop; 0 after a clean stop, 1 if a child could not start."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        status = 0
        try:
            for child in self.children:
                child.start()
            while not self._stopping:
                sentinels = {child.process.sentinel: child for child in self.children if child.process}
                for sentinel in wait(list(sentinels), timeout=0.5):
                    if self._stopping:
                        break
                    if not self._replace(sentinels[sentinel]):
                        status = 1
                        self._stopping = True
                        break
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

    def _replace(self, child: Child) -> bool:
        """Start the dead ``child`` again; False if it could not start, which a replacement would not either."""
        assert child.process is not None
        child.process.join()
        code = child.process.exitcode
        if code == STARTUP_FAILURE:
            log.error("%s process %d could not start; stopping the server", child.role, child.process.pid)
            return False
        log.warning("%s process %d exited (code %s); starting another", child.role, child.process.pid, code)
        if time.monotonic() - child.started_at < QUICK_DEATH:
            time.sleep(RESTART_PAUSE)
        child.restarts += 1
        child.start()
        return True

    def _stop_all(self) -> None:
        running = [child.process for child in self.children if child.process and child.process.is_alive()]
        for process in running:
            try:
                os.kill(process.pid, signal.SIGTERM)  # type: ignore[arg-type]
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("process %d did not stop within %.0f s; killing it", process.pid, STOP_TIMEOUT)
                process.kill()
                process.join()


def serve(
    settings: Settings,
    sockets: list[socket.socket],
    *,
    notify_worker: bool,
    options: WebOptions,
) -> int:
    """Run one web process on each of ``sockets`` and, with ``notify_worker``, the notification worker."""
    import openepay.app  # noqa: F401  (once here, not in every child)
    import openepay.notify.worker  # noqa: F401
    from openepay.metrics import share_between_processes
    from openepay.web.server import keep_out_of_collections

    metrics_directory = tempfile.mkdtemp(prefix="openepay-metrics-")
    share_between_processes(metrics_directory)
    children = [Child("web", web_process, (settings, options, sock)) for sock in sockets]
    if notify_worker:
        children.append(Child("worker", worker_process, (settings,)))
    keep_out_of_collections()
    try:
        return Supervisor(children).run()
    finally:
        for sock in sockets:
            sock.close()
        shutil.rmtree(metrics_directory, ignore_errors=True)
