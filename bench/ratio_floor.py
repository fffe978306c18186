"""Issue 11's ratios for the gateway beside those of the least any Python app on its server stack can do.

    python bench/ratio_floor.py [--workers 2] [--duration 10] [--rounds 2] [--backends sqlite,postgresql]

For each backend, on one fresh database (``openepay migrate``, one merchant from ``openepay
merchant create``), in each round: ``openepay serve --no-worker`` and then ``floor_app.py``
(the same uvicorn, one socket per web process, a bare ASGI app doing a create's, a lookup's and
a refusal's unavoidable work: parse, verify the MD5 signature, one ``INSERT`` or ``SELECT``),
each measured by ``run_all.measure``: ``/healthz``, create, lookup and bad signature, with wrk
at ``--concurrency`` for ``--duration`` seconds each, every answer checked.

The issue asks a create for 40 % of ``/healthz``'s rate, a lookup for 60 % and a refusal for 80 %.
If the floor, which skips everything the gateway adds (middleware, metrics, routing, validation,
the channel, the lockout, the merchant cache), cannot reach a ratio, no Python gateway on this
stack can; the gap between the two rows is what the gateway's own work costs. One JSON line per
server and round, then a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import run_all
from gateway_env import sandbox_env
from mapi_suite import free_port, openepay
from run_all import PHASES, loadavg, measure, ratios, serving, started
from throwaway_db import fresh_database
from wrk_load import available as wrk_available

HERE = Path(__file__).parent
# The floor refuses bad signatures at over 20,000 a second, the most ``run_all`` builds for a phase.
REFUSALS_PER_S = 50_000


async def floor_serving(
    stack: AsyncExitStack, database_url: str, merchant: dict[str, str], workers: int
) -> tuple[str, int]:
    """``floor_app.py`` on a free port, stopped when ``stack`` closes: its URL and pid, once it answers."""
    port = free_port()
    command = [
        sys.executable,
        str(HERE / "floor_app.py"),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--database-url",
        database_url,
        "--pid",
        str(merchant["pid"]),
        "--key",
        merchant["key"],
    ]
    return await started(stack, command, port)


async def one_run(
    server: str, database_url: str, env: dict[str, str], merchant: dict[str, str], args: argparse.Namespace
) -> dict[str, object]:
    async with AsyncExitStack() as stack:
        if server == "gateway":
            url, pid = await serving(stack, env, args.workers)
        else:
            url, pid = await floor_serving(stack, database_url, merchant, args.workers)
        load_before = loadavg()
        database = None if database_url.startswith("sqlite") else database_url.rsplit("/", 1)[1].split("?")[0]
        phases = await measure(url, int(merchant["pid"]), merchant["key"], args, pid, database)
    return {
        "server": server,
        **ratios(phases),
        "phases": phases,
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": loadavg(),
    }


async def main(args: argparse.Namespace) -> None:
    rows = []
    for backend in args.backends.split(","):
        async with AsyncExitStack() as stack:
            database_url = await fresh_database(stack, backend)
            env = sandbox_env(
                database_url,
                OPENEPAY_AUTH_FAILURES_PER_IP="1000000000",
                OPENEPAY_AUTH_FAILURES_PER_MERCHANT="1000000000",
            )
            openepay(env, "migrate")
            merchant = json.loads(openepay(env, "merchant", "create", "--name", "bench", "--json"))
            for round_number in range(1, args.rounds + 1):
                for server in ("gateway", "floor"):
                    measured = await one_run(server, database_url, env, merchant, args)
                    result = {"backend": backend, "round": round_number, **measured}
                    print(json.dumps(result, ensure_ascii=False), flush=True)
                    rows.append(result)
    print(table(rows), flush=True)


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| backend | round | server | /healthz req/s | create | lookup | bad signature | CPU ms/req: /healthz, create,"
        " lookup, bad signature | load avg |",
        "|---|---:|---|---:|---|---|---|---|---|",
    ]
    for row in rows:
        phases: dict[str, dict[str, float]] = row["phases"]  # type: ignore[assignment]
        cells = [f"{row[f'{name}_vs_healthz']:.2f} ({phases[name]['requests_per_s']:,.0f})" for name in PHASES[1:]]
        cpu = ", ".join(f"{phases[name]['server_cpu_ms_per_request']}" for name in PHASES)
        lines.append(
            f"| {row['backend']} | {row['round']} | {row['server']} | {phases['healthz']['requests_per_s']:,.0f} |"
            f" {' | '.join(cells)} | {cpu} | {row['loadavg_1m_before']} → {row['loadavg_1m_after']} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    if not wrk_available():
        raise SystemExit("ratio_floor.py sends its load with wrk, which is not installed")
    args.client = "wrk"
    run_all.WRK_REFUSALS_PER_S = REFUSALS_PER_S
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
