"""The HTTP server under the app: a client that sends its request headers too slowly is cut off, and
every answer leaves in one write.

A slowloris client trickles a header a byte at a time, so each byte resets any idle timer;
uvicorn alone would keep its connection for as long as it keeps trickling. The tests bound
their waits generously and never assert how long anything took.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx

from openepay.app import create_app
from openepay.web.server import HeaderTimeoutProtocol
from tests.support.cli import clean_env
from tests.support.gateways import own_server
from tests.support.servers import ServerThread
from tests.support.settings import TEST_SECRET, make_settings
from tests.support.waiting import answering

# Far more bytes than a client sending one per 50 ms gets out before a 1 s deadline.
MAX_TRICKLE = 1200


async def trickle(url: str, first: bytes = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ") -> tuple[int, bytes]:
    """Send ``first``, then a header byte every 50 ms until the server answers or hangs up.

    Returns how many bytes were trickled, and all the server sent.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    sent = 0
    try:
        writer.write(first)
        while sent < MAX_TRICKLE:
            try:
                answer = await asyncio.wait_for(reader.read(65536), timeout=0.05)
            except TimeoutError:
                try:
                    writer.write(b"a")
                    await writer.drain()
                except ConnectionError:
                    break
                sent += 1
                continue
            return sent, answer + await asyncio.wait_for(reader.read(), timeout=30)
        return sent, await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()


async def test_a_client_trickling_its_headers_is_answered_408_and_cut_off(database_url):
    with own_server(database_url, http_header_timeout=1.0) as gateway:
        sent, answer = await trickle(gateway.url)
    assert sent < MAX_TRICKLE
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close" in answer


async def test_a_connection_that_never_sends_a_request_is_closed(database_url):
    with own_server(database_url, http_header_timeout=0.5) as gateway:
        parts = urlsplit(gateway.url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            assert await asyncio.wait_for(reader.read(), timeout=30) == b""
        finally:
            writer.close()


async def test_prompt_clients_keep_their_connection_for_request_after_request(database_url):
    """The deadline is per request: a kept-alive connection serves many, however long it lives."""
    with own_server(database_url, http_header_timeout=0.5) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            answers, ports = [], []
            for _ in range(4):
                answer = await client.get("/healthz")
                answers.append(answer.status_code)
                ports.append(local_port(answer))
                await asyncio.sleep(0.3)
    assert answers == [200, 200, 200, 200]
    # One connection served them all: a client whose connection was cut would have opened another
    # (httpx does so without a word), from another port.
    assert ports == ports[:1] * 4


def local_port(answer: httpx.Response) -> int:
    """The client's own port on the connection that carried ``answer``."""
    return answer.extensions["network_stream"].get_extra_info("client_addr")[1]


async def test_openepay_serve_cuts_off_a_slowloris_client(tmp_path):
    """The command operators run has the deadline, set by ``OPENEPAY_HTTP_HEADER_TIMEOUT``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = clean_env(
        OPENEPAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        OPENEPAY_SECRET_KEY=TEST_SECRET,
        OPENEPAY_LOG_LEVEL="WARNING",
        OPENEPAY_HTTP_HEADER_TIMEOUT="1",
    )
    with open(tmp_path / "serve.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "openepay", "serve", "--port", str(port), "--no-worker"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        await answering(f"{base}/healthz")
        sent, answer = await trickle(base)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert sent < MAX_TRICKLE
    assert answer.startswith(b"HTTP/1.1 408 ")


class _Recorded:
    """A connection's real transport, which also keeps every write it is given."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _RecordingProtocol(HeaderTimeoutProtocol):
    def __init__(self, *args: Any, writes: list[bytes], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writes = writes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recorded(transport, self._writes))  # type: ignore[arg-type]


async def test_every_answer_leaves_in_one_write_head_and_body_together(database_url):
    """One ``send`` per answer: the client (or the proxy in front) reads it in one piece."""
    writes: list[bytes] = []
    protocol = functools.partial(_RecordingProtocol, header_timeout=5.0, writes=writes)
    server = ServerThread(create_app(make_settings(database_url)), http=protocol).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            got = await client.get("/healthz")
            head = await client.head("/healthz")
            refused = await client.post("/mapi.php", data={"pid": "1", "money": "1.00"})
    finally:
        server.stop()
    assert (got.status_code, head.status_code, refused.status_code) == (200, 200, 200)
    assert len(writes) == 3
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n" + got.content)
    assert writes[1].startswith(b"HTTP/1.1 200 OK\r\n") and writes[1].endswith(b"\r\n\r\n")
    assert writes[2].startswith(b"HTTP/1.1 200 OK\r\n") and writes[2].endswith(b"\r\n\r\n" + refused.content)


async def test_a_client_that_asks_to_continue_is_told_at_once_then_answered(database_url):
    """``100 Continue`` is never held back for the answer: the client sends its body only once it has it."""
    body = b"pid=1&money=1.00"
    with own_server(database_url) as gateway:
        parts = urlsplit(gateway.url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(
                b"POST /mapi.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body)
            )
            go_on = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
            writer.write(body)
            status_line = await asyncio.wait_for(reader.readline(), timeout=30)
        finally:
            writer.close()
    assert go_on == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert status_line == b"HTTP/1.1 200 OK\r\n"
