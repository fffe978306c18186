"""A merchant's read (``api.php?act=query``: balance and order counts, four statements) alone and
while orders are being created, on one or more checkouts of the gateway, interleaved.

    python bench/read_load.py [--checkouts .,/path/to/other] [--rounds 3] [--duration 10]
                              [--concurrency 8] [--backend sqlite]

Each round, for each checkout in turn: a fresh database, ``openepay migrate`` and ``openepay
serve --no-worker`` run from that checkout (``PYTHONPATH``), a merchant, 200 orders. Then
``reads``: ``act=query`` at ``--concurrency`` for ``--duration`` seconds; ``mixed``: as many
creates (``mapi.php``) and reads at once, half the concurrency each. Every answer is checked.
One JSON line per round and checkout: req/s, p50/p99 of each, and the server's CPU per request
(user + system of its processes over the phase, divided by every request of the phase), which
other work on the machine moves least; and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from contextlib import AsyncExitStack
from pathlib import Path

from gateway_env import sandbox_env
from mapi_load import run_load, signed_order
from mapi_suite import openepay
from run_all import answered, loadavg, server_cpu_seconds, serving
from throwaway_db import fresh_database


async def _phase(url: str, server_pid: int, loads: dict[str, tuple[object, int]], duration: float) -> dict[str, object]:
    """The ``loads`` (name: (build, concurrency)) at once; each one's figures and the CPU per request."""
    cpu_before = server_cpu_seconds(server_pid)
    names = list(loads)
    results = await asyncio.gather(
        *(run_load(url, build, concurrency, duration, answered(1)) for build, concurrency in loads.values())
    )
    cpu = server_cpu_seconds(server_pid) - cpu_before
    requests = sum(result["requests"] for result in results)
    figures: dict[str, object] = {
        name: {key: result[key] for key in ("requests_per_s", "p50_ms", "p99_ms", "errors")}
        for name, result in zip(names, results, strict=True)
    }
    figures["server_cpu_ms_per_request"] = round(cpu * 1000 / max(requests, 1), 3)
    return figures


async def one_checkout(checkout: Path, args: argparse.Namespace) -> dict[str, object]:
    async with AsyncExitStack() as stack:
        database_url = await fresh_database(stack, args.backend)
        env = sandbox_env(database_url, PYTHONPATH=str(checkout))
        openepay(env, "migrate")
        merchant = json.loads(openepay(env, "merchant", "create", "--name", "bench", "--json"))
        pid, key = merchant["pid"], merchant["key"]
        url, server_pid = await serving(stack, env)
        run = secrets.token_hex(3).upper()

        def create(n: int) -> tuple[str, str, dict[str, str]]:
            return "POST", "/mapi.php", signed_order(pid, key, f"R{run}{n:09d}{secrets.token_hex(2)}", n)

        def query(n: int) -> tuple[str, str, None]:
            return "GET", f"/api.php?act=query&pid={pid}&key={key}", None

        await run_load(url, create, 4, 2.0, answered(1))
        await run_load(url, query, 4, 1.0, answered(1))
        load_before = loadavg()
        half = max(1, args.concurrency // 2)
        reads = await _phase(url, server_pid, {"query": (query, args.concurrency)}, args.duration)
        mixed = await _phase(url, server_pid, {"create": (create, half), "query": (query, half)}, args.duration)
        return {
            "checkout": str(checkout),
            "backend": args.backend,
            "reads": reads,
            "mixed": mixed,
            "load_before": load_before,
            "load_after": loadavg(),
        }


async def main(args: argparse.Namespace) -> None:
    checkouts = [Path(path).resolve() for path in args.checkouts.split(",")]
    for round_no in range(args.rounds):
        order = checkouts if round_no % 2 == 0 else list(reversed(checkouts))
        for checkout in order:
            print(json.dumps({"round": round_no, **await one_checkout(checkout, args)}), flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkouts", default=".", help="comma-separated checkouts of the gateway to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
