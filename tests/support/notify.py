"""Merchant endpoints that answer from a script, and reading the delivery log consistently."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import select

from openepay.core.merchants import MerchantCredentials
from openepay.core.states import NotifyStatus
from openepay.db.models import NotifyAttempt, NotifyTask, Order
from openepay.gateway import Gateway
from tests.support.epay import order_params, signed
from tests.support.merchant import Received, plugin_sign


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"success"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class ScriptedShop:
    """A merchant endpoint answering from a script (its last answer repeats), checking signatures with ``key``."""

    key: str
    script: list[Answer]
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ScriptedShop:
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                entry = Received("GET", parts.path, params, b"", time.monotonic())
                entry.signature_ok = "sign" in params and plugin_sign(params, shop.key) == params["sign"]
                answer = shop.script[min(len(shop.received), len(shop.script) - 1)]
                shop.received.append(entry)
                if shop.delay:
                    time.sleep(shop.delay)
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


async def paid_order(server, merchant: MerchantCredentials, notify_url: str, out_trade_no: str, **extra: str) -> str:
    params = order_params(
        merchant.pid, "http://unused.example", out_trade_no, notify_url=notify_url, clientip="203.0.113.9", **extra
    )
    async with server.client() as client:
        answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
        assert answer["code"] == 1, answer
        paid = await client.post(f"/sandbox/pay/{answer['trade_no']}")
        assert paid.status_code == 303
    return answer["trade_no"]


async def delivery_log(gateway: Gateway, trade_no: str) -> tuple[NotifyTask, list[NotifyAttempt]]:
    """The task and its attempts as one consistent picture.

    An attempt and its task update commit together, but under READ COMMITTED two SELECTs may
    see different moments; the task is read before and after the attempts until it did not move.
    """
    order_id = select(Order.id).where(Order.trade_no == trade_no).scalar_subquery()
    while True:
        async with gateway.db.session() as session:
            before = (await session.scalars(select(NotifyTask).where(NotifyTask.order_id == order_id))).one()
            seen = (before.attempts, before.status, before.next_attempt_at)
            attempts = list(
                (
                    await session.scalars(
                        select(NotifyAttempt).where(NotifyAttempt.task_id == before.id).order_by(NotifyAttempt.number)
                    )
                ).all()
            )
            after = (
                await session.scalars(
                    select(NotifyTask).where(NotifyTask.id == before.id).execution_options(populate_existing=True)
                )
            ).one()
            if (after.attempts, after.status, after.next_attempt_at) == seen:
                return after, attempts


def settled(gateway: Gateway, trade_no: str, status: NotifyStatus):  # type: ignore[no-untyped-def]
    async def check():  # type: ignore[no-untyped-def]
        task, attempts = await delivery_log(gateway, trade_no)
        return (task, attempts) if task.status == status else None

    return check
