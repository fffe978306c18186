"""The least a create, a lookup and a refusal can cost on the gateway's server stack: issue 11's floor.

    python bench/floor_app.py --port 8000 --workers 2 --database-url URL --pid PID --key KEY

A bare ASGI app on the same server as ``openepay serve`` (uvicorn with uvloop and the gateway's
HTTP protocol, ``openepay.web.server.http_protocol``; one ``SO_REUSEPORT`` socket per web process,
forked children), on a database ``openepay migrate``
made. It answers the four requests ``run_all.py`` sends, as the gateway answers them, doing only
what no implementation can skip:

- ``GET /healthz``: a fixed JSON answer;
- ``POST /mapi.php``: the form parsed, the pid checked, the MD5 signature checked against the one
  merchant's key (given on the command line, not read from the database), the amount parsed to
  fen, one ``INSERT`` of the order's row into ``orders`` (the gateway's table and indexes), and a
  JSON answer with the trade number and a pay URL; a wrong signature gets the gateway's refusal;
- ``GET /api.php?act=order``: the pid and key checked, one ``SELECT`` by ``(merchant_pid,
  out_trade_no)``, a JSON answer with the order's fields.

It has none of the gateway's middleware, metrics, access log, security headers, routing, channel,
lockout, merchant cache, field validation or error handling: an answer it cannot give is a 500.
On SQLite each process writes on one connection on its event loop, taking an ``flock`` beside
the database (blocking) around each write; on PostgreSQL each process has a pool of asyncpg
connections and prepared statements. What it costs per request, against its own ``/healthz``,
is the best ratio a Python gateway on this stack could reach: ``ratio_floor.py`` measures it
beside ``openepay serve`` in the same run.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hmac
import json
import os
import secrets
import signal
import socket
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import uvicorn
from mapi_load import sign

from openepay.web.server import HeaderTimeoutProtocol

HEALTHY = b'{"status":"ok"}'
UNSIGNED = ("sign", "sign_type")
ORDER_LIFETIME = timedelta(minutes=30)
HEADER_TIMEOUT = 10.0
COLUMNS = (
    "trade_no",
    "merchant_pid",
    "dialect",
    "out_trade_no",
    "pay_type",
    "channel",
    "routing",
    "amount_fen",
    "pay_amount_fen",
    "money",
    "name",
    "notify_url",
    "return_url",
    "param",
    "sitename",
    "clientip",
    "device",
    "attrs",
    "status",
    "paid_late",
    "pay_url",
    "qrcode_any_amount",
    "refunded_fen",
    "created_at",
    "expires_at",
)
LOOKUP_COLUMNS = ("trade_no", "out_trade_no", "pay_type", "merchant_pid", "created_at", "paid_at", "name")
LOOKUP_TAIL = ("amount_fen", "param", "buyer", "status")


def compact(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()


BAD_SIGNATURE = compact({"code": -1, "msg": "签名校验失败！"})


def fen(money: str) -> int:
    return int(Decimal(money) * 100)


def sqlite_text(moment: datetime) -> str:
    """A UTC time as the gateway stores it in SQLite (``openepay.db.types``)."""
    return moment.isoformat(" ", "microseconds")[:-6]


class SqliteOrders:
    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.lock = os.open(f"{path}-floor-lock", os.O_RDWR | os.O_CREAT, 0o600)
        marks = ", ".join("?" for _ in COLUMNS)
        self.insert_sql = f"INSERT INTO orders ({', '.join(COLUMNS)}) VALUES ({marks}) RETURNING id"
        columns = ", ".join(LOOKUP_COLUMNS + LOOKUP_TAIL)
        self.lookup_sql = f"SELECT {columns} FROM orders WHERE merchant_pid = ? AND out_trade_no = ?"

    async def insert(self, row: tuple[Any, ...]) -> None:
        values = tuple(sqlite_text(value) if isinstance(value, datetime) else value for value in row)
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(self.insert_sql, values).fetchall()
            self.conn.execute("COMMIT")
        finally:
            fcntl.flock(self.lock, fcntl.LOCK_UN)

    async def find(self, pid: int, out_trade_no: str) -> tuple[Any, ...] | None:
        return self.conn.execute(self.lookup_sql, (pid, out_trade_no)).fetchone()


class PostgresOrders:
    def __init__(self, pool: Any) -> None:
        self.pool = pool
        marks = ", ".join(f"${n}" for n in range(1, len(COLUMNS) + 1))
        self.insert_sql = f"INSERT INTO orders ({', '.join(COLUMNS)}) VALUES ({marks}) RETURNING id"
        columns = ", ".join(LOOKUP_COLUMNS + LOOKUP_TAIL)
        self.lookup_sql = f"SELECT {columns} FROM orders WHERE merchant_pid = $1 AND out_trade_no = $2"

    @classmethod
    async def connect(cls, url: str) -> PostgresOrders:
        import asyncpg

        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        return cls(pool)

    async def insert(self, row: tuple[Any, ...]) -> None:
        await self.pool.fetchval(self.insert_sql, *row)

    async def find(self, pid: int, out_trade_no: str) -> tuple[Any, ...] | None:
        return await self.pool.fetchrow(self.lookup_sql, pid, out_trade_no)


class Floor:
    def __init__(self, database_url: str, pid: int, key: str) -> None:
        self.database_url = database_url
        self.pid = pid
        self.key = key
        self.orders: SqliteOrders | PostgresOrders | None = None

    async def open(self) -> None:
        url = self.database_url
        if url.startswith("sqlite"):
            self.orders = SqliteOrders(url.split(":///", 1)[1])
        else:
            parts = urlsplit(url)
            self.orders = await PostgresOrders.connect(f"postgresql://{parts.netloc}{parts.path}")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await self.open()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        if path == "/mapi.php":
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            answer = await self.create(dict(parse_qsl(body.decode())))
        elif path == "/api.php":
            answer = await self.lookup(dict(parse_qsl(scope["query_string"].decode())))
        else:
            answer = HEALTHY
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def create(self, params: dict[str, str]) -> bytes:
        signed = {name: value for name, value in params.items() if name not in UNSIGNED}
        if int(params["pid"]) != self.pid or not hmac.compare_digest(params["sign"], sign(signed, self.key)):
            return BAD_SIGNATURE
        amount = fen(params["money"])
        now = datetime.now(UTC)
        trade_no = now.strftime("%Y%m%d%H%M%S") + secrets.token_hex(5)
        pay_url = f"http://127.0.0.1/sandbox/{trade_no}"
        row = (
            trade_no,
            self.pid,
            "epay",
            params["out_trade_no"],
            params["type"],
            "sandbox",
            '{"accounts": []}',
            amount,
            amount,
            params["money"],
            params["name"],
            params["notify_url"],
            params.get("return_url"),
            params.get("param"),
            params.get("sitename"),
            params.get("clientip"),
            params.get("device"),
            "{}",
            "created",
            False,
            pay_url,
            False,
            0,
            now,
            now + ORDER_LIFETIME,
        )
        assert self.orders is not None
        await self.orders.insert(row)
        return compact({"code": 1, "msg": "succ", "trade_no": trade_no, "payurl": pay_url})

    async def lookup(self, params: dict[str, str]) -> bytes:
        if int(params["pid"]) != self.pid or not hmac.compare_digest(params["key"], self.key):
            return compact({"code": -2, "msg": "KEY校验失败"})
        assert self.orders is not None
        row = await self.orders.find(self.pid, params["out_trade_no"])
        if row is None:
            return compact({"code": -1, "msg": "订单号不存在"})
        fields = dict(zip(LOOKUP_COLUMNS + LOOKUP_TAIL, row, strict=True))
        answer = {
            "code": 1,
            "msg": "succ",
            "trade_no": fields["trade_no"],
            "out_trade_no": fields["out_trade_no"],
            "type": fields["pay_type"],
            "pid": fields["merchant_pid"],
            "addtime": str(fields["created_at"])[:19],
            "endtime": str(fields["paid_at"] or "")[:19],
            "name": fields["name"],
            "money": f"{fields['amount_fen'] / 100:.2f}",
            "param": fields["param"] or "",
            "buyer": fields["buyer"] or "",
            "status": int(fields["status"] == "paid"),
        }
        return compact(answer)


def serve(sock: socket.socket, app: Floor) -> None:
    protocol = functools.partial(HeaderTimeoutProtocol, header_timeout=HEADER_TIMEOUT)
    config = uvicorn.Config(app, loop="uvloop", http=protocol, access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    children = []
    for _ in range(args.workers):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", args.port))
        sock.listen(1024)
        child = os.fork()
        if child == 0:
            serve(sock, Floor(args.database_url, args.pid, args.key))
            os._exit(0)
        sock.close()
        children.append(child)

    def stop(*_: object) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        os.waitpid(child, 0)
    sys.exit(0)


if __name__ == "__main__":
    main()
