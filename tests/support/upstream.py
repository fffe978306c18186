"""A second OpenEpay, run as a real ``openepay serve`` process on its own database, acting as an upstream.

It has the sandbox on, notifies loopback addresses (our relay), answers refunds with Rainbow's
``code`` 0, and one merchant (made with ``openepay merchant create``) whose pid and key a relay
account of ours uses. Its log goes to a file a failing test can show.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from openepay.core.buyer_links import BuyerLinks
from tests.support.cli import clean_env
from tests.support.servers import free_port

START_TIMEOUT = 30.0
UPSTREAM_SECRET = "upstream-secret-key-not-for-production"


@dataclass
class UpstreamGateway:
    url: str
    pid: str
    key: str
    log_path: Path

    def account_config(self, **overrides: object) -> dict[str, object]:
        return {"api_url": self.url + "/", "pid": self.pid, "key": self.key, **overrides}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def pay_page(self, upstream_trade_no: str) -> str:
        """The upstream's sandbox pay page for one of its orders, named by its buyer handle."""
        return f"{self.url}/sandbox/pay/{BuyerLinks(UPSTREAM_SECRET).handle(upstream_trade_no)}"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    async def order(self, out_trade_no: str) -> dict:
        """The upstream's own record of an order, through its ``api.php`` as its merchant sees it."""
        params = {"act": "order", "pid": self.pid, "key": self.key, "out_trade_no": out_trade_no}
        async with self.client() as client:
            return (await client.get("/api.php", params=params)).json()


@contextmanager
def upstream_gateway(directory: Path, *, notify: bool = True) -> Iterator[UpstreamGateway]:
    """The upstream process; with ``notify=False`` it runs no worker, so no callback ever leaves it."""
    env = clean_env(
        OPENEPAY_DATABASE_URL=f"sqlite+aiosqlite:///{directory / 'upstream.db'}",
        OPENEPAY_SECRET_KEY=UPSTREAM_SECRET,
        OPENEPAY_SANDBOX="1",
        OPENEPAY_NOTIFY_ALLOW_PRIVATE="1",
        OPENEPAY_WORKER_POLL_INTERVAL="0.05",
        OPENEPAY_EPAY_REFUND_SUCCESS_CODE="0",
        OPENEPAY_LOG_LEVEL="WARNING",
    )
    migrated = subprocess.run(
        [sys.executable, "-m", "openepay", "migrate"],
        env=env,
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    created = subprocess.run(
        [sys.executable, "-m", "openepay", "merchant", "create", "--name", "Relay", "--json", "--allow-refund"],
        env=env,
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    merchant = json.loads(created.stdout)
    port = free_port()
    log_path = directory / "upstream.log"
    command = [sys.executable, "-m", "openepay", "serve", "--port", str(port)]
    if not notify:
        command.append("--no-worker")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, cwd=directory, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    upstream = UpstreamGateway(f"http://127.0.0.1:{port}", str(merchant["pid"]), merchant["key"], log_path)
    try:
        _wait_until_up(process, upstream)
        yield upstream
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_up(process: subprocess.Popen, upstream: UpstreamGateway) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the upstream gateway exited:\n{upstream.log()}")
        try:
            if httpx.get(upstream.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the upstream gateway did not start:\n{upstream.log()}")
