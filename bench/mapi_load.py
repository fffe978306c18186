"""Load test for ``mapi.php``: distinct, correctly signed orders at a fixed concurrency.

    python bench/mapi_load.py --url http://127.0.0.1:8000 --pid 1000 --key KEY \\
        --concurrency 16 --duration 10 [--baseline /healthz]

Prints one JSON line: requests/s, latency p50 and p99 (ms), error count, and, with
``--baseline``, the same numbers for a trivial endpoint of the same server measured in the
same run, with the ratio between the two.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable

import aiohttp


def sign(params: dict[str, str], key: str) -> str:
    content = "&".join(f"{k}={params[k]}" for k in sorted(params) if params[k] != "")
    return hashlib.md5((content + key).encode()).hexdigest()


def signed_order(pid: int | str, key: str, out_trade_no: str, n: int) -> dict[str, str]:
    """The ``n``-th benchmark order's ``mapi.php`` form, signed with ``key`` (amounts vary with ``n``)."""
    params = {
        "pid": str(pid),
        "type": "alipay",
        "out_trade_no": out_trade_no,
        "notify_url": "http://127.0.0.1:9/notify",
        "return_url": "http://127.0.0.1:9/return",
        "name": "压测商品",
        "money": f"{1 + n % 500}.{n % 100:02d}",
        "clientip": "203.0.113.7",
        "device": "pc",
    }
    return {**params, "sign": sign(params, key), "sign_type": "MD5"}


def mapi_request(pid: str, key: str, run_id: str) -> Callable[[int], tuple[str, str, dict[str, str] | None]]:
    def build(n: int) -> tuple[str, str, dict[str, str] | None]:
        return "POST", "/mapi.php", signed_order(pid, key, f"BENCH{run_id}{n:09d}", n)

    return build


def plain_get(path: str) -> Callable[[int], tuple[str, str, dict[str, str] | None]]:
    return lambda n: ("GET", path, None)


async def is_success(path: str, response: aiohttp.ClientResponse) -> bool:
    body = await response.read()
    if response.status != 200:
        return False
    return path != "/mapi.php" or json.loads(body).get("code") == 1


async def run_load(url: str, build, concurrency: int, duration: float, check=is_success) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """``build(n)`` gives the n-th request; ``check(path, response)`` says whether its answer is right."""
    latencies: list[float] = []
    errors = 0
    counter = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:
        deadline = time.perf_counter() + duration

        async def user() -> None:
            nonlocal errors, counter
            while time.perf_counter() < deadline:
                counter += 1
                method, path, data = build(counter)
                started = time.perf_counter()
                try:
                    async with client.request(method, path, data=data) as response:
                        ok = await check(path, response)
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    ok = False
                latencies.append(time.perf_counter() - started)
                if not ok:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies)

    def percentile(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2) if ordered else 0.0

    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": percentile(0.50),
        "p90_ms": percentile(0.90),
        "p99_ms": percentile(0.99),
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else 0.0,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else 0.0,
        "errors": errors,
    }


async def main(args: argparse.Namespace) -> dict[str, object]:
    run_id = os.urandom(3).hex().upper()
    result: dict[str, object] = {"concurrency": args.concurrency, "duration_s": args.duration}
    if args.baseline:
        baseline = await run_load(args.url, plain_get(args.baseline), args.concurrency, args.duration)
        result["baseline"] = {"path": args.baseline, **baseline}
    mapi = await run_load(args.url, mapi_request(args.pid, args.key, run_id), args.concurrency, args.duration)
    result["mapi"] = mapi
    if args.baseline and baseline["requests_per_s"]:
        result["mapi_vs_baseline_throughput"] = round(mapi["requests_per_s"] / baseline["requests_per_s"], 3)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--baseline", default=None, help="a trivial path of the same server, e.g. /healthz")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args()))), flush=True)
