"""The gateway's request counters as ``/metrics`` shows them."""

from __future__ import annotations

import re

import httpx

_SERIES = re.compile(r'^openepay_http_requests_total\{method="([^"]*)",route="([^"]*)",status="([^"]*)"\} (\S+)$')


async def requests_counted(client: httpx.AsyncClient) -> dict[tuple[str, str, int], float]:
    """``openepay_http_requests_total`` by (method, route, status), read from the gateway's ``/metrics``."""
    text = (await client.get("/metrics")).text
    found = (_SERIES.match(line) for line in text.splitlines())
    return {(m[1], m[2], int(m[3])): float(m[4]) for m in found if m}
