"""Runs ``mapi_load.py`` against fresh gateways on SQLite and on PostgreSQL, one after the other.

    python bench/mapi_suite.py [--concurrency 16] [--duration 10]

Each gateway is a real ``openepay serve --no-worker`` process on a new database; the load
generator runs in a separate process, and each result line carries its own ``/healthz``
baseline from the same server in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from gateway_env import sandbox_env
from throwaway_db import pg_database

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openepay(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "openepay", *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gateway did not become ready")


def run_backend(name: str, database_url: str, args: argparse.Namespace) -> dict[str, object]:
    env = sandbox_env(database_url)
    openepay(env, "migrate")
    merchant = json.loads(openepay(env, "merchant", "create", "--name", "bench", "--json"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "openepay", "serve", "--no-worker", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        output = subprocess.run(
            [
                sys.executable,
                str(HERE / "mapi_load.py"),
                "--url",
                url,
                "--pid",
                str(merchant["pid"]),
                "--key",
                merchant["key"],
                "--concurrency",
                str(args.concurrency),
                "--duration",
                str(args.duration),
                "--baseline",
                "/healthz",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return {"backend": name, **json.loads(output)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run_backend("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", args)), flush=True)
    name = f"openepay_bench_{secrets.token_hex(4)}"
    asyncio.run(pg_database("create", name))
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        print(json.dumps(run_backend("postgresql", url, args)), flush=True)
    finally:
        asyncio.run(pg_database("drop", name))


if __name__ == "__main__":
    main()
