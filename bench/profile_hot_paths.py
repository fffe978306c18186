"""The web process's own CPU per request on the hot paths, measured in-process, with an optional profile.

    python bench/profile_hot_paths.py [--backend postgresql|sqlite] [--requests 2000]
                                      [--concurrency 16] [--profile create,lookup]

Builds the app (``create_app``) on a fresh, migrated database with one merchant and the sandbox
channel, as ``run_all.py`` does, and sends it ASGI requests directly, without uvicorn or a
socket: ``/healthz``, a ``mapi.php`` create, an ``api.php?act=order`` lookup, a ``mapi.php`` with
a wrong signature and one naming a merchant number nobody has (a new one each request, as a
flood of random numbers would), ``--concurrency`` at a time. It prints, per path, the
process's CPU time (``time.process_time``) per request, which the database's own work (a
PostgreSQL backend is another process) and other load on the machine barely move, and each
path's ratio to ``/healthz``. ``--profile`` runs the named paths again under cProfile and prints
their top functions by own and cumulative time. Every answer is checked.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import os
import pstats
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlencode

from gateway_env import sandbox_env
from mapi_load import signed_order
from throwaway_db import fresh_database

HERE = Path(__file__).parent
Request = tuple[str, str, bytes]


def order_body(pid: int, key: str, out_trade_no: str, n: int) -> bytes:
    return urlencode(signed_order(pid, key, out_trade_no, n)).encode()


async def call(app: object, method: str, target: str, body: bytes) -> tuple[int, bytes]:
    path, _, query = target.partition("?")
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")]
    if body:
        headers += [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("203.0.113.7", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]  # type: ignore[assignment]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))  # type: ignore[arg-type]

    await app(scope, receive, send)  # type: ignore[operator]
    return status, b"".join(chunks)


async def drive(
    app: object,
    build: Callable[[int], Request],
    check: Callable[[bytes], bool],
    n: int,
    width: int,
    profile: cProfile.Profile | None = None,
) -> float:
    """CPU seconds of this process per request, ``n`` requests ``width`` at a time (built beforehand,
    so signing them is neither counted nor, with ``profile``, profiled)."""
    requests = iter([build(i) for i in range(n)])
    errors = 0

    async def user() -> None:
        nonlocal errors
        for method, target, body in requests:
            status, answer = await call(app, method, target, body)
            if status != 200 or not check(answer):
                errors += 1
                if errors == 1:
                    print(f"unexpected answer to {target}: {status} {answer[:200]!r}", file=sys.stderr)

    cpu = time.process_time()
    if profile is not None:
        profile.enable()
    await asyncio.gather(*(user() for _ in range(width)))
    if profile is not None:
        profile.disable()
    if errors:
        raise SystemExit(f"{errors} wrong answers")
    return (time.process_time() - cpu) / n


def code(expected: int, part: str | None = None) -> Callable[[bytes], bool]:
    def check(body: bytes) -> bool:
        answer = json.loads(body)
        return answer.get("code") == expected and (part is None or part in str(answer.get("msg")))

    return check


async def main(args: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        database_url = await fresh_database(stack, args.backend)
        env = sandbox_env(
            database_url,
            OPENEPAY_AUTH_FAILURES_PER_IP="1000000000",
            OPENEPAY_AUTH_FAILURES_PER_MERCHANT="1000000000",
        )

        def cli(*words: str) -> str:
            command = [sys.executable, "-m", "openepay", *words]
            return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout

        cli("migrate")
        merchant = json.loads(cli("merchant", "create", "--name", "bench", "--json"))
        pid, key = merchant["pid"], merchant["key"]
        os.environ.update(env)
        from openepay import logs
        from openepay.app import create_app
        from openepay.config import Settings

        settings = Settings()
        logs.configure(settings.log_level, settings.log_format, repeat_interval=settings.log_repeat_interval)
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.push_async_callback(lifespan.__aexit__, None, None, None)

        run = secrets.token_hex(3).upper()
        created: list[str] = []

        def create(n: int) -> Request:
            number = f"P{run}{len(created):09d}"
            created.append(number)
            return "POST", "/mapi.php", order_body(pid, key, number, n)

        def lookup(n: int) -> Request:
            number = created[(n * 7919) % len(created)]
            return "GET", f"/api.php?act=order&pid={pid}&key={key}&out_trade_no={number}", b""

        def bad(n: int) -> Request:
            return "POST", "/mapi.php", order_body(pid, "not-the-merchants-key", f"X{run}{n:09d}", n)

        unknown_pids = itertools.count(pid + 1)

        def unknown_pid(n: int) -> Request:
            return "POST", "/mapi.php", order_body(next(unknown_pids), key, f"U{run}{n:09d}", n)

        paths: dict[str, tuple[Callable[[int], Request], Callable[[bytes], bool]]] = {
            "healthz": (lambda n: ("GET", "/healthz", b""), lambda body: b'"ok"' in body),
            "create": (create, code(1)),
            "lookup": (lookup, code(1)),
            "bad_signature": (bad, code(-1, "签名校验失败")),
            "unknown_pid": (unknown_pid, code(-1, "商户不存在")),
        }
        for build, check in paths.values():  # warm-up
            await drive(app, build, check, 200, args.concurrency)
        # How often a request read its merchant from the database rather than this process's copy.
        cache = app.state.gateway.merchants.cache
        load, reads = cache._load, [0]

        async def counted_load(pid: int) -> object:
            reads[0] += 1
            return await load(pid)

        cache._load = counted_load
        cpu, merchant_reads = {}, {}
        for name in args.paths.split(","):
            reads[0] = 0
            cpu[name] = await drive(app, *paths[name], args.requests, args.concurrency)
            merchant_reads[name] = reads[0]
        result = {
            "backend": args.backend,
            **{f"{name}_cpu_us": round(seconds * 1e6) for name, seconds in cpu.items()},
            **{f"{name}_cpu_vs_healthz": round(cpu["healthz"] / cpu[name], 3) for name in cpu if "healthz" in cpu},
            "merchant_reads_from_db": merchant_reads,
        }
        print(json.dumps(result), flush=True)
        for name in filter(None, args.profile.split(",")):
            profile = cProfile.Profile(time.process_time)
            await drive(app, *paths[name], args.requests, args.concurrency, profile)
            print(f"\n===== {name}: {args.requests} requests =====")
            stats = pstats.Stats(profile).strip_dirs()
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="postgresql", choices=("postgresql", "sqlite"))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--paths", default="healthz,create,lookup,bad_signature,unknown_pid", help="paths to measure")
    parser.add_argument("--profile", default="", help="paths to profile, comma-separated")
    parser.add_argument("--top", type=int, default=40)
    return parser.parse_args()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(parse_args()))
