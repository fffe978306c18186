"""``RequestBody`` in process, against a server whose messages come at once or only after a wait.

A receive that has its message is run without the event loop and without a timer; these check
that a receive that must wait is still awaited as before: under the deadline counted from the
request's start, cancelled by the server, and told when the client leaves.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from starlette.types import Message, Receive, Scope, Send

from openepay.web.middleware import WHOLE_BODY, RequestBody

SCOPE_HEADERS = [(b"content-length", b"6")]


def scope_with(headers: list[tuple[bytes, bytes]] = SCOPE_HEADERS) -> Scope:
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


class Server:
    """Hands out ``messages`` in order; a message that is an ``asyncio.Event`` is waited for first."""

    def __init__(self, *messages: Message | asyncio.Event) -> None:
        self.messages = list(messages)
        self.waits = 0
        self.cancelled = False

    async def receive(self) -> Message:
        item = self.messages.pop(0)
        if isinstance(item, asyncio.Event):
            self.waits += 1
            try:
                await item.wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
            item = self.messages.pop(0)
        return item  # type: ignore[return-value]


class App:
    def __init__(self) -> None:
        self.body: bytes | None = None
        self.scope_body: bytes | None = None
        self.after: Message | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope_body = scope[WHOLE_BODY]
        self.body = (await receive())["body"]
        self.after = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def part(body: bytes, more: bool) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


async def answered(middleware: RequestBody, server: Server, scope: Scope | None = None) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope or scope_with(), server.receive, send)
    return sent


def status(sent: list[Message]) -> int | None:
    return sent[0]["status"] if sent else None


async def test_a_body_that_came_with_its_headers_reaches_the_app_whole_and_in_the_scope():
    app = App()
    server = Server(part(b"pid=", True), part(b"10", False), {"type": "http.disconnect"})
    sent = await answered(RequestBody(app), server)
    assert status(sent) == 200
    assert app.body == app.scope_body == b"pid=10"
    assert app.after == {"type": "http.disconnect"}  # after the body, what the server says next


async def test_a_body_that_comes_after_waits_reaches_the_app_whole():
    arrived, rest = asyncio.Event(), asyncio.Event()
    gone = {"type": "http.disconnect"}
    server = Server(arrived, part(b"pi", True), part(b"d=", True), rest, part(b"10", False), gone)
    app = App()
    task = asyncio.create_task(answered(RequestBody(app, timeout=30), server))
    await asyncio.sleep(0)
    arrived.set()
    await asyncio.sleep(0.01)
    rest.set()
    assert status(await task) == 200
    assert server.waits == 2
    assert app.body == app.scope_body == b"pid=10"


@pytest.mark.parametrize("wait_first", [True, False])
async def test_a_body_still_incomplete_at_the_deadline_is_answered_408(wait_first):
    """The deadline counts from the request's start, whether the first part came at once or not."""
    never = asyncio.Event()
    parts = [never] if wait_first else [part(b"pid=", True), never]
    server = Server(*parts)
    started = time.monotonic()
    sent = await answered(RequestBody(App(), timeout=0.2), server)
    assert status(sent) == 408
    assert sent[1]["body"] == b"request body timed out"
    assert (b"connection", b"close") in sent[0]["headers"]
    assert server.cancelled
    assert 0.15 < time.monotonic() - started < 5


async def test_a_client_gone_while_the_body_was_awaited_is_answered_nothing():
    left = asyncio.Event()
    server = Server(part(b"pid=", True), left, {"type": "http.disconnect"})
    task = asyncio.create_task(answered(RequestBody(App(), timeout=30), server))
    await asyncio.sleep(0.01)
    left.set()
    assert await task == []


async def test_a_server_that_stops_the_request_while_its_body_is_awaited_cancels_the_receive():
    never = asyncio.Event()
    server = Server(part(b"pid=", True), never)
    task = asyncio.create_task(answered(RequestBody(App(), timeout=30), server))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert server.cancelled


async def test_a_body_over_the_limit_is_read_to_its_end_and_answered_413():
    more = asyncio.Event()
    server = Server(part(b"x" * 4, True), more, part(b"x" * 4, False))
    chunked = scope_with([(b"transfer-encoding", b"chunked")])
    task = asyncio.create_task(answered(RequestBody(App(), limit=6, timeout=30), server, chunked))
    await asyncio.sleep(0.01)
    more.set()
    sent = await task
    assert status(sent) == 413
    assert (b"connection", b"close") not in sent[0]["headers"]  # read to its end: the connection can stay
