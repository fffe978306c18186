"""One phase of load from wrk: pre-built requests sent in turn, every answer checked.

The issue's side-by-side figures for Rainbow Epay were measured with ``wrk -t1 -c16`` and
pre-signed distinct bodies. wrk, written in C, spends a fraction of the CPU per request that a
Python client does, so on a 2-core machine the gateway gets most of both cores, as it does
behind a real proxy; ``run_all.py --client wrk`` measures that way (``mapi_load.run_load``,
the aiohttp client, remains for machines without wrk).

``run_wrk`` writes the requests to a file for ``wrk_requests.lua``, which sends them in turn
(starting over at the end, which it counts as ``wrapped``) and counts every answer that is not
HTTP 200 with the expected bytes in its body. It returns the same fields as ``run_load``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode

SCRIPT = Path(__file__).with_name("wrk_requests.lua")

Request = tuple[str, str, dict[str, str] | None]


def available() -> bool:
    return shutil.which("wrk") is not None


def request_line(method: str, path: str, form: dict[str, str] | None) -> str:
    body = urlencode(form) if form else ""
    if "\t" in path or "\n" in path:
        raise ValueError(f"a path wrk_requests.lua cannot carry: {path!r}")
    return f"{method}\t{path}\t{body}\n"


def run_wrk(
    url: str, requests: Sequence[Request], expected: bytes, concurrency: int, duration: float
) -> dict[str, object]:
    """``requests`` sent by ``wrk -t1`` over ``concurrency`` connections for ``duration`` seconds."""
    with tempfile.TemporaryDirectory(prefix="openepay-wrk-") as directory:
        listed = Path(directory, "requests.tsv")
        listed.write_text("".join(request_line(*request) for request in requests), encoding="utf-8")
        expect = Path(directory, "expected")
        expect.write_bytes(expected)
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration:g}s", "-s", str(SCRIPT), url, "--"]
        output = subprocess.run(
            [*command, str(listed), str(expect)], check=True, capture_output=True, text=True, timeout=duration + 60
        ).stdout
    summary = json.loads(output.strip().splitlines()[-1])
    seconds = summary["duration_us"] / 1e6
    return {
        "requests": summary["requests"],
        "requests_per_s": round(summary["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": round(summary["p50_us"] / 1000, 2),
        "p90_ms": round(summary["p90_us"] / 1000, 2),
        "p99_ms": round(summary["p99_us"] / 1000, 2),
        "max_ms": round(summary["max_us"] / 1000, 2),
        "mean_ms": round(summary["mean_us"] / 1000, 2),
        "errors": summary["wrong"] + summary["socket_errors"],
        "wrong_answers": summary["wrong"],
        "socket_errors": summary["socket_errors"],
        "first_wrong_answer": summary["first_wrong"],
        "sent": summary["sent"],
        "wrapped": summary["wrapped"],
    }
