"""``openepay serve --workers N``: N web processes on one port, supervised, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.epay import order_params, signed
from tests.support.servers import free_port
from tests.support.settings import TEST_SECRET
from tests.support.waiting import answering, eventually

ORDERS = 24


class Served:
    """A running ``openepay serve`` (the supervisor) and the address it answers at."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def children(self) -> set[int]:
        """The supervisor's web and worker processes, as the kernel lists them."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return {int(pid) for pid in path.read_text().split()}
        except FileNotFoundError:
            return set()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def serve_env(database_url: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("OPENEPAY_")}
    env.update(
        OPENEPAY_DATABASE_URL=database_url,
        OPENEPAY_SECRET_KEY=TEST_SECRET,
        OPENEPAY_SANDBOX="1",
        OPENEPAY_LOG_LEVEL="INFO",
    )
    return env


@contextmanager
def serving(database_url: str, tmp_path: Path, *args: str) -> Iterator[Served]:
    port = free_port()
    env = serve_env(database_url)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "openepay", "serve", "--port", str(port), *args],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log_path)
    try:
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def answering_pids(url: str, want: int, attempts: int = 400) -> set[int]:
    """The pids that answer ``/healthz``, each request on a new connection, until ``want`` of them have."""
    seen: set[int] = set()
    for _ in range(attempts):
        async with httpx.AsyncClient(timeout=10) as client:
            seen.add((await client.get(f"{url}/healthz")).json()["pid"])
        if len(seen) >= want:
            break
    return seen


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


async def test_two_web_processes_answer_creates_and_lookups(gateway, database_url, merchant, tmp_path):
    with serving(database_url, tmp_path, "--workers", "2", "--no-worker", "--no-access-log") as served:
        await answering(f"{served.url}/healthz")
        pids = await answering_pids(served.url, want=2)
        assert len(pids) == 2 and served.process.pid not in pids
        assert pids <= served.children()

        async def create_and_look_up(number: int) -> tuple[str, str, str]:
            out_trade_no = f"WORKERS-{number}"
            params = signed(
                order_params(merchant.pid, "http://shop.example", out_trade_no, clientip="203.0.113.9"), merchant.key
            )
            # A connection per order, so both processes take their share.
            async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
                created = (await client.post("/mapi.php", data=params)).json()
                query = {"act": "order", "pid": str(merchant.pid), "key": merchant.key, "out_trade_no": out_trade_no}
                found = (await client.get("/api.php", params=query)).json()
            return created["trade_no"], found["trade_no"], found["out_trade_no"]

        answers = await asyncio.gather(*(create_and_look_up(number) for number in range(ORDERS)))
    assert [out_trade_no for _, _, out_trade_no in answers] == [f"WORKERS-{number}" for number in range(ORDERS)]
    assert all(created == found for created, found, _ in answers)
    assert len({created for created, _, _ in answers}) == ORDERS
    assert "Traceback" not in served.log()
    assert "started web process" in served.log() and "openepay.access" not in served.log()


async def test_a_second_gateway_on_the_same_port_is_refused(gateway, database_url, tmp_path):
    """Each web process has a socket of its own on the port (``SO_REUSEPORT``); a second gateway
    of the same user must not quietly join them and take a share of the first one's clients."""
    with serving(database_url, tmp_path, "--workers", "2", "--no-worker", "--no-access-log") as served:
        await answering(f"{served.url}/healthz", timeout=60)
        port = served.url.rsplit(":", 1)[1]
        second = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "openepay", "serve", "--port", port, "--workers", "2", "--no-worker"],
            env=serve_env(database_url),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in second.stderr
        assert len(await answering_pids(served.url, want=2)) == 2
        assert served.process.poll() is None


async def test_a_killed_web_process_is_replaced_and_sigterm_stops_every_child(gateway, database_url, tmp_path):
    with serving(database_url, tmp_path, "--workers", "2") as served:
        await answering(f"{served.url}/healthz")
        first = await answering_pids(served.url, want=2)
        # Two web processes and the notification worker.
        children = await eventually(lambda: len(served.children()) == 3 and served.children())
        victim = min(first)
        os.kill(victim, signal.SIGKILL)

        async def replaced() -> bool:
            return len(served.children()) == 3 and victim not in served.children()

        await eventually(replaced, interval=0.2)
        await answering(f"{served.url}/healthz")
        now = await answering_pids(served.url, want=2)
        assert victim not in now and len(now) == 2 and max(first) in now
        assert served.process.poll() is None

        everyone = served.children()
        assert children - {victim} <= everyone
        served.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(served.process.wait, 40) == 0
    assert not [pid for pid in everyone if alive(pid)]
    assert f"web process {victim} exited" in served.log() and "openepay.access: request" in served.log()


async def readyz_count(url: str) -> float:
    """``/readyz`` requests answered 200, as a scrape of ``/metrics`` (by whichever web process) reports them."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{url}/metrics")).text
    series = 'openepay_http_requests_total{method="GET",route="/readyz",status="200"} '
    return sum(float(line[len(series) :]) for line in text.splitlines() if line.startswith(series))


async def test_metrics_sum_every_web_process_and_keep_a_replaced_ones_counts(gateway, database_url, tmp_path):
    """A scrape reaches one process; it must still count the requests every process answered."""
    with serving(database_url, tmp_path, "--workers", "2", "--no-worker", "--no-access-log") as served:
        await answering(f"{served.url}/healthz")
        answered_by: set[int] = set()
        sent = 0
        while len(answered_by) < 2 or sent < 20:
            async with httpx.AsyncClient(timeout=10) as client:
                assert (await client.get(f"{served.url}/readyz")).status_code == 200
                answered_by.add((await client.get(f"{served.url}/healthz")).json()["pid"])
            sent += 1
            assert sent < 400, "one web process answered everything"
        assert [await readyz_count(served.url) for _ in range(6)] == [sent] * 6

        victim = min(answered_by)
        os.kill(victim, signal.SIGKILL)
        await eventually(lambda: len(served.children()) == 2 and victim not in served.children())
        await answering(f"{served.url}/healthz")
        assert [await readyz_count(served.url) for _ in range(6)] == [sent] * 6
