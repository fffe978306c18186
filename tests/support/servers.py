"""Real HTTP servers on loopback, each in its own thread with its own event loop."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on just now, for a server process to take."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """Runs an ASGI app under uvicorn on 127.0.0.1 and an ephemeral port."""

    def __init__(self, app, *, port: int = 0, http: object = "auto") -> None:  # type: ignore[no-untyped-def]
        """``http`` is uvicorn's protocol (``openepay.web.server.http_protocol`` for the gateway, as it is served)."""
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            loop="asyncio",
            http=http,  # type: ignore[arg-type]
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.url = ""

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
