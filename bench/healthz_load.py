"""``/healthz`` of one web process against ``serve --workers N``, in the same run, with wrk.

    python bench/healthz_load.py [--workers 1,2] [--rounds 2] [--duration 10] [--connections 16]

Each round starts ``openepay serve --no-worker --workers N`` on a fresh SQLite file for every N
(interleaved, so drifting load from other work hits every N alike), warms it up for two
seconds, then runs ``wrk -t1 -c<connections> -d<duration>s`` against ``/healthz``. Prints one
JSON line per measurement (requests/s, p99, the load average before it) and a last line with
each N's best round and its ratio to the first N. ``--access-log`` measures with the request
log on (to a file), as a default ``serve`` runs; without it the log is off.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("openepay serve exited before it answered")
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("openepay serve did not answer within 120 s")


def wrk(url: str, duration: float, connections: int) -> dict[str, float]:
    ran = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", f"{url}/healthz"],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", ran.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", ran.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", ran.stdout)
    assert rate and p99, ran.stdout
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {
        "requests_per_s": float(rate.group(1)),
        "p99_ms": round(float(p99.group(1)) * scale, 2),
        "errors": errors.group(0) if errors else None,
    }


def measure(workers: int, args: argparse.Namespace, directory: Path) -> dict[str, object]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENEPAY_")}
    env.update(
        OPENEPAY_DATABASE_URL=f"sqlite+aiosqlite:///{directory / f'healthz-{workers}-{port}.db'}",
        OPENEPAY_SECRET_KEY=secrets.token_urlsafe(32),
        OPENEPAY_LOG_LEVEL="INFO" if args.access_log else "WARNING",
        OPENEPAY_ACCESS_LOG="true" if args.access_log else "false",
    )
    command = [sys.executable, "-m", "openepay", "serve", "--no-worker", "--workers", str(workers)]
    with open(directory / f"serve-{workers}-{port}.log", "wb") as log:
        process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=log, stderr=log)
    try:
        wait_ready(url, process)
        wrk(url, 2, args.connections)
        load = os.getloadavg()[0]
        result = wrk(url, args.duration, args.connections)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return {"workers": workers, "loadavg_1m_before": round(load, 2), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="the web process counts to compare, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--access-log", action="store_true", help="measure with the request log on")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    counts = [int(n) for n in args.workers.split(",")]
    best: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        for round_number in range(args.rounds):
            for workers in counts:
                result = measure(workers, args, Path(directory))
                print(json.dumps({"round": round_number + 1, "access_log": args.access_log, **result}), flush=True)
                best[workers] = max(best.get(workers, 0.0), result["requests_per_s"])  # type: ignore[arg-type]
    first = best[counts[0]]
    print(
        json.dumps(
            {
                "best_requests_per_s": {str(n): rate for n, rate in best.items()},
                "vs_first": {str(n): round(rate / first, 2) for n, rate in best.items()},
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
