"""The hot paths of issue 11 in one go: create, lookup, bad signature and ``/healthz``, on SQLite and
PostgreSQL, on an empty orders table and on one holding a million orders.

    python bench/run_all.py [--concurrency 16] [--duration 10] [--orders 1000000] [--workers 1]
                            [--backends sqlite,postgresql] [--sizes 0,1000000] [--pg-socket DIR]
                            [--client wrk|aiohttp]

For each backend and table size: a fresh database (a temporary SQLite file, or a PostgreSQL
database created and dropped here), ``openepay migrate``, a merchant from ``openepay merchant
create``, the orders loaded by ``load_orders.py`` (COPY or executemany, then settled), and one
``openepay serve --no-worker`` (with ``--workers N`` when N > 1, which needs a ``serve`` that
has the option). Then, at ``--concurrency`` for ``--duration`` seconds each, after a short
unmeasured warm-up:

- ``healthz``: ``GET /healthz``, the same server's floor;
- ``create``: ``POST /mapi.php``, distinct correctly signed orders on the sandbox channel;
- ``lookup``: ``GET /api.php?act=order`` by ``out_trade_no`` of orders the create phase made;
- ``bad_signature``: ``POST /mapi.php`` signed with the wrong key (the lockout's limits are
  raised so every one is checked and refused, not locked out).

The load comes from ``wrk -t1`` (``wrk_load.py``), as the issue's figures for Rainbow Epay were
measured: every request built and signed beforehand, distinct creates and refusals, each answer
checked by ``wrk_requests.lua``. ``--client aiohttp`` sends it from this script's own Python
client instead (the default where wrk is not installed): a Python client spends several times wrk's
CPU per request, which on a 2-core machine the gateway no longer gets.

Every answer is checked (code 1, or the refusal for the bad signatures); anything else is an
error. One JSON line per scenario with req/s, p50/p99 and each path's ratio to ``/healthz``,
the server's CPU per request (its processes' user + system time over the phase, divided by the
requests) and its ratio to ``/healthz``'s, on PostgreSQL its backends' CPU per request, wrk's
own CPU per request (all three share the machine's two cores, so together they say where a
path's requests per second went), the load average before and after (other work on the
machine shows in every number, CPU per request least), then a Markdown table of everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
from gateway_env import sandbox_env
from mapi_load import run_load, signed_order
from mapi_suite import free_port, openepay
from notify_load import pg_backend_cpu
from throwaway_db import fresh_database
from wrk_load import available as wrk_available
from wrk_load import run_wrk

HERE = Path(__file__).parent
Request = tuple[str, str, dict[str, str] | None]
Check = Callable[[str, aiohttp.ClientResponse], Awaitable[bool]]
PHASES = ("healthz", "create", "lookup", "bad_signature")
# What each path's right answer holds, for wrk (``wrk_requests.lua``), which reads no JSON.
WRK_EXPECTED = {
    "healthz": b'"status":"ok"',
    "create": b'{"code":1,',
    "lookup": b'{"code":1,',
    "bad_signature": '{"code":-1,"msg":"签名校验失败'.encode(),
}
# Requests built per second of a phase: well above what 2 cores can create or refuse.
WRK_CREATES_PER_S = 8_000
WRK_REFUSALS_PER_S = 20_000


def answered(code: int, msg_part: str | None = None) -> Check:
    """An answer of HTTP 200 with this ``code`` (and a ``msg`` containing ``msg_part``)."""

    async def check(path: str, response: aiohttp.ClientResponse) -> bool:
        body = await response.read()
        if response.status != 200:
            return False
        answer = json.loads(body)
        return answer.get("code") == code and (msg_part is None or msg_part in str(answer.get("msg")))

    return check


async def healthy(path: str, response: aiohttp.ClientResponse) -> bool:
    await response.read()
    return response.status == 200


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by the server process and its children (the web processes).

    Unlike requests per second, CPU per request barely moves with other work on the machine, so
    its ratio to ``/healthz``'s is the steadier measure on a shared machine (PostgreSQL's own
    backends are not counted)."""
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for process in (pid, *map(int, children)):
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def children_cpu_seconds() -> float:
    """CPU time (user + system) of this script's finished children so far: wrk's, once a phase ends."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


async def database_cpu_seconds(database: str | None) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend serving ``database`` (none for SQLite, which works in the server)."""
    return {} if database is None else await pg_backend_cpu(database)


async def measure(
    url: str, pid: int, key: str, args: argparse.Namespace, server_pid: int, database: str | None
) -> dict[str, dict[str, float]]:
    run = secrets.token_hex(3).upper()
    created: list[str] = []

    def create(n: int) -> Request:
        # Numbered across the warm-up and the measured phase (each counts from 1): every one is new.
        number = f"B{run}{len(created):09d}"
        created.append(number)
        return "POST", "/mapi.php", signed_order(pid, key, number, n)

    def lookup(n: int) -> Request:
        number = created[(n * 7919) % len(created)]
        return "GET", f"/api.php?act=order&pid={pid}&key={key}&out_trade_no={number}", None

    def bad(n: int) -> Request:
        return "POST", "/mapi.php", signed_order(pid, "not-the-merchants-key", f"X{run}{n:09d}", n)

    def healthz(n: int) -> Request:
        return "GET", "/healthz", None

    phases: dict[str, tuple[Callable[[int], Request], Check]] = {
        "healthz": (healthz, healthy),
        "create": (create, answered(1)),
        "lookup": (lookup, answered(1)),
        "bad_signature": (bad, answered(-1, "签名校验失败")),
    }
    # Warm-up: connections, imports on first use, the merchant's copy, a few orders to look up.
    for name in PHASES:
        build, check = phases[name]
        await run_load(url, build, min(4, args.concurrency), 1.0, check)
    results = {}
    for name in PHASES:
        build, check = phases[name]
        if args.client == "wrk":
            # Built beforehand, so that wrk only sends them: more than the phase can use, except
            # for the paths where sending one again is the same work (a lookup, /healthz).
            count = {"create": WRK_CREATES_PER_S, "bad_signature": WRK_REFUSALS_PER_S}.get(name, 0) * args.duration
            made_before = len(created)
            if name == "lookup":
                listed = [build(n) for n in range(1, len(created) + 1)]
            else:
                listed = [build(n) for n in range(1, max(int(count), 1) + 1)]
            cpu_before = server_cpu_seconds(server_pid)
            database_before = await database_cpu_seconds(database)
            client_before = children_cpu_seconds()
            phase = await asyncio.to_thread(run_wrk, url, listed, WRK_EXPECTED[name], args.concurrency, args.duration)
            phase["client_cpu_ms_per_request"] = per_request(children_cpu_seconds() - client_before, phase)
            if name in ("create", "bad_signature") and phase["wrapped"]:
                raise SystemExit(f"{name}: wrk sent every one of its {len(listed):,} requests; raise WRK_*_PER_S")
            if name == "create":
                # Only orders surely created are looked up: those answered, less the last ones, which
                # may have been sent but not answered when the phase ended.
                del created[made_before + max(int(phase["requests"]) - args.concurrency, 0) :]
        else:
            cpu_before = server_cpu_seconds(server_pid)
            database_before = await database_cpu_seconds(database)
            phase = await run_load(url, build, args.concurrency, args.duration, check)
        phase["server_cpu_ms_per_request"] = per_request(server_cpu_seconds(server_pid) - cpu_before, phase)
        if database is not None:
            database_after = await database_cpu_seconds(database)
            used = sum(cpu - database_before.get(backend, 0.0) for backend, cpu in database_after.items())
            phase["database_cpu_ms_per_request"] = per_request(used, phase)
        results[name] = phase
    return results


def per_request(cpu_seconds: float, phase: dict[str, float]) -> float:
    return round(cpu_seconds * 1000 / max(phase["requests"], 1), 3)


async def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            try:
                async with client.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("gateway did not become ready")


async def serving(stack: AsyncExitStack, env: dict[str, str], workers: int = 1) -> tuple[str, int]:
    """``openepay serve`` without its notification worker on a free port, stopped when ``stack``
    closes: its URL and pid, once it answers ``/readyz``."""
    port = free_port()
    command = [sys.executable, "-m", "openepay", "serve", "--no-worker", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    return await started(stack, command, port, env)


async def started(
    stack: AsyncExitStack, command: list[str], port: int, env: dict[str, str] | None = None
) -> tuple[str, int]:
    """The server ``command`` starts on ``port``, stopped when ``stack`` closes: its URL and pid, once it
    answers ``/readyz``."""
    log = stack.enter_context(tempfile.TemporaryFile())
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    async def stop() -> None:
        server.terminate()
        await asyncio.to_thread(server.wait, 30)

    stack.push_async_callback(stop)
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url)
    return url, server.pid


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


async def scenario(backend: str, orders: int, args: argparse.Namespace) -> dict[str, object]:
    async with AsyncExitStack() as stack:
        database_url = await fresh_database(stack, backend, args.pg_socket)
        env = sandbox_env(
            database_url,
            OPENEPAY_AUTH_FAILURES_PER_IP="1000000000",
            OPENEPAY_AUTH_FAILURES_PER_MERCHANT="1000000000",
        )
        openepay(env, "migrate")
        merchant = json.loads(openepay(env, "merchant", "create", "--name", "bench", "--json"))
        loaded: dict[str, object] = {}
        if orders:
            output = subprocess.run(
                [
                    sys.executable,
                    str(HERE / "load_orders.py"),
                    "--database-url",
                    database_url,
                    "--pid",
                    str(merchant["pid"]),
                    "--orders",
                    str(orders),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            loaded = json.loads(output)
        url, server_pid = await serving(stack, env, args.workers)
        load_before = loadavg()
        database = None if backend == "sqlite" else database_url.rsplit("/", 1)[1].split("?")[0]
        phases = await measure(url, merchant["pid"], merchant["key"], args, server_pid, database)
        return {
            "backend": backend,
            "orders": orders,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "client": args.client,
            **ratios(phases),
            "phases": phases,
            "loaded": loaded,
            "loadavg_1m_before": load_before,
            "loadavg_1m_after": loadavg(),
        }


def ratios(phases: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each path's rate, and ``/healthz``'s CPU per request over the path's, as shares of ``/healthz``'s."""
    rate = phases["healthz"]["requests_per_s"] or 1.0
    cpu = phases["healthz"]["server_cpu_ms_per_request"]
    return {
        **{f"{name}_vs_healthz": round(phases[name]["requests_per_s"] / rate, 3) for name in PHASES[1:]},
        **{
            f"{name}_cpu_vs_healthz": round(cpu / (phases[name]["server_cpu_ms_per_request"] or 1e-9), 3)
            for name in PHASES[1:]
        },
    }


def table(results: list[dict[str, object]]) -> str:
    lines = [
        "| backend | orders | path | req/s | vs /healthz | p50 ms | p99 ms | errors | CPU ms/req | CPU vs /healthz"
        " | database CPU ms/req | wrk CPU ms/req | load avg |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        phases: dict[str, dict[str, float]] = result["phases"]  # type: ignore[assignment]
        for name in PHASES:
            phase = phases[name]
            ratio = "1" if name == "healthz" else f"{result[f'{name}_vs_healthz']:.2f}"
            cpu_ratio = "1" if name == "healthz" else f"{result[f'{name}_cpu_vs_healthz']:.2f}"
            lines.append(
                f"| {result['backend']} | {result['orders']:,} | {name} | {phase['requests_per_s']:,.0f} | {ratio} |"
                f" {phase['p50_ms']} | {phase['p99_ms']} | {phase['errors']} |"
                f" {phase['server_cpu_ms_per_request']} | {cpu_ratio} |"
                f" {phase.get('database_cpu_ms_per_request', '')} | {phase.get('client_cpu_ms_per_request', '')} |"
                f" {result['loadavg_1m_before']} → {result['loadavg_1m_after']} |"
            )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    results = []
    for backend in args.backends.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            result = await scenario(backend, size, args)
            print(json.dumps(result, ensure_ascii=False), flush=True)
            results.append(result)
    print(table(results), flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--client",
        choices=("wrk", "aiohttp"),
        default="wrk" if wrk_available() else "aiohttp",
        help="what sends the load: wrk (as the issue's figures were measured; the default where installed)"
        " or this script's aiohttp client",
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="0,1000000", help="orders preloaded, comma-separated")
    parser.add_argument(
        "--pg-socket",
        help="reach PostgreSQL through its Unix-domain socket in this directory (e.g. /var/run/postgresql)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
