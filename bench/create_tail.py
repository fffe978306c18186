"""The tail of create latency (issue 11's p99 under 30 ms at -c16) with ``serve --workers 2``,
on SQLite and PostgreSQL, and the same for other checkouts of the code, interleaved.

    python bench/create_tail.py [--checkout main=/work/main --checkout branch=.] [--rounds 3]
                                [--workers 2] [--concurrency 16] [--duration 10]
                                [--backends sqlite,postgresql]

Each round, for each backend and then each checkout in turn: a fresh database, ``openepay
migrate`` and ``openepay merchant create`` and ``openepay serve --no-worker --workers N``, all
run from that checkout's source (its directory first on ``PYTHONPATH``); a short unmeasured
warm-up, then ``POST /mapi.php`` with distinct, correctly signed orders on the sandbox channel
at ``--concurrency`` for ``--duration`` seconds. Pairs of checkouts run back to back on the same
backend, so other work on the machine weighs on both about equally; compare them pair by pair.

A median hides what this measures: one web process that stops for a few hundred milliseconds
(a full garbage collection, or a queue of connections that the other process left to it) is
every request it holds at that moment, and shows only in p99 and the maximum. One JSON line per
run: p50/p90/p99/max, req/s, errors, the server's CPU per request, and the load average before
and after; then a Markdown table, with each checkout's p99 as a ratio of the first checkout's
in the same pair.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

from gateway_env import sandbox_env
from mapi_load import run_load, signed_order
from mapi_suite import free_port
from run_all import answered, loadavg, server_cpu_seconds, wait_ready
from throwaway_db import fresh_database

WARM_UP_S = 2.0


def checkout_env(database_url: str, source: Path) -> dict[str, str]:
    """A sandbox gateway's environment that imports ``openepay`` from ``source``."""
    env = sandbox_env(database_url)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH", "")]))
    return env


def openepay(env: dict[str, str], source: Path, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "openepay", *args], env=env, cwd=source, check=True, capture_output=True, text=True
    ).stdout


async def one_run(backend: str, name: str, source: Path, args: argparse.Namespace) -> dict[str, object]:
    async with AsyncExitStack() as stack:
        database_url = await fresh_database(stack, backend)
        env = checkout_env(database_url, source)
        openepay(env, source, "migrate")
        merchant = json.loads(openepay(env, source, "merchant", "create", "--name", "bench", "--json"))
        port = free_port()
        command = [sys.executable, "-m", "openepay", "serve", "--no-worker", "--port", str(port)]
        command += ["--workers", str(args.workers)]
        log = stack.enter_context(tempfile.TemporaryFile())
        server = subprocess.Popen(command, env=env, cwd=source, stdout=log, stderr=subprocess.STDOUT)

        async def stop() -> None:
            server.terminate()
            await asyncio.to_thread(server.wait, 30)

        stack.push_async_callback(stop)
        url = f"http://127.0.0.1:{port}"
        # A machine as loaded as the ones this is meant for can take minutes to start two processes.
        await wait_ready(url, timeout=300)
        run = secrets.token_hex(3).upper()
        made = 0

        def create(n: int) -> tuple[str, str, dict[str, str]]:
            # Numbered across the warm-up and the measured phase: every order is new.
            nonlocal made
            made += 1
            return "POST", "/mapi.php", signed_order(merchant["pid"], merchant["key"], f"T{run}{made:09d}", n)

        await run_load(url, create, args.concurrency, WARM_UP_S, answered(1))
        load_before = loadavg()
        cpu_before = server_cpu_seconds(server.pid)
        result = await run_load(url, create, args.concurrency, args.duration, answered(1))
        cpu = server_cpu_seconds(server.pid) - cpu_before
        return {
            "backend": backend,
            "checkout": name,
            "source": str(source),
            "workers": args.workers,
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            **result,
            "server_cpu_ms_per_request": round(cpu * 1000 / max(int(result["requests"]), 1), 3),
            "loadavg_1m_before": load_before,
            "loadavg_1m_after": loadavg(),
        }


def table(results: list[dict[str, object]], first: str) -> str:
    lines = [
        "| round | backend | checkout | req/s | p50 ms | p90 ms | p99 ms | max ms | p99 vs first | errors"
        " | CPU ms/req | load avg |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    baseline = {(r["round"], r["backend"]): r["p99_ms"] for r in results if r["checkout"] == first}
    for r in results:
        p99_first = baseline.get((r["round"], r["backend"]))
        ratio = f"{float(r['p99_ms']) / float(p99_first):.2f}" if p99_first else "–"
        lines.append(
            f"| {r['round']} | {r['backend']} | {r['checkout']} | {float(r['requests_per_s']):,.0f} | {r['p50_ms']} |"
            f" {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} | {ratio} | {r['errors']} |"
            f" {r['server_cpu_ms_per_request']} | {r['loadavg_1m_before']} → {r['loadavg_1m_after']} |"
        )
    return "\n".join(lines)


def checkouts(values: list[str]) -> list[tuple[str, Path]]:
    """``NAME=PATH`` pairs; without any, the checkout this script belongs to, as ``this``."""
    if not values:
        return [("this", Path(__file__).resolve().parent.parent)]
    pairs = []
    for value in values:
        name, _, path = value.partition("=")
        pairs.append((name, Path(path).resolve()))
    return pairs


async def main(args: argparse.Namespace) -> None:
    sources = checkouts(args.checkout)
    results = []
    for number in range(1, args.rounds + 1):
        for backend in args.backends.split(","):
            # Alternate which checkout goes first, so neither always runs on a warmer machine.
            order = sources if number % 2 else sources[::-1]
            for name, source in order:
                result = {"round": number, **await one_run(backend, name, source, args)}
                print(json.dumps(result, ensure_ascii=False), flush=True)
                results.append(result)
    print(table(results, sources[0][0]), flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", action="append", default=[], help="NAME=PATH of a source tree; repeatable")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
