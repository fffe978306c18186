"""The HTTP server under the app: a client that sends its request headers too slowly is cut off.

A slowloris client trickles a header a byte at a time, so each byte resets any idle timer;
uvicorn alone would keep its connection for as long as it keeps trickling. The tests bound
their waits generously and never assert how long anything took.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import httpx

from tests.support.cli import clean_env
from tests.support.gateways import own_server
from tests.support.settings import TEST_SECRET
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
