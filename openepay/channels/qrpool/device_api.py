"""Our own device API: signed JSON batches, acknowledged event by event so a device can retry safely.

``POST /qrpool/device/v1/events`` (HTTPS in production) with the JSON body::

    {"device_id": 3, "nonce": "5f2c...", "timestamp": 1704067200,
     "events": [{"id": "n-1042", "type": "wxpay", "amount": "9.91", "occurred_at": 1704067195}]}

and the header ``X-Signature: hex(HMAC-SHA256(device key, raw body))``. The signature covers
the whole body, so nothing in it can be changed; the timestamp must be within the push window
of our clock and a nonce is accepted once, so a captured request cannot be sent again. Each
event gets its own answer (``accepted``, ``duplicate`` with the earlier decision, or
``rejected``): a device that lost our answer sends the same events again in a new request
(new nonce, new timestamp) and nothing is matched twice, because an event id seen before from
that device is the same event. ``POST /qrpool/device/v1/heartbeat`` takes the same envelope
without ``events``.

The per-device rate limit lives here too; the V免签 endpoints share it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.requests import Request

from openepay.channels.base import channel_host
from openepay.channels.qrpool.accounts import PAY_TYPES, device_keys, record_heartbeat
from openepay.channels.qrpool.matching import (
    CLOCK_SKEW,
    Decision,
    PaymentReport,
    event_key,
    parse_amount,
    record_payment,
)
from openepay.channels.qrpool.signing import body_sign, same_sign
from openepay.core.replay import first_sighting
from openepay.db.models import QrDevice
from openepay.db.types import storable, utcnow

if TYPE_CHECKING:
    from openepay.channels.base import ChannelHost

log = logging.getLogger(__name__)

router = APIRouter(prefix="/qrpool/device/v1")

MAX_EVENTS = 100
NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")
EVENT_ID = re.compile(r"[\x21-\x7e]{1,64}")
# Year 2286: beyond it a timestamp is a mistake, and beyond year 9999 it would not even convert.
MAX_UNIX_SECONDS = 10**10


class DeviceRateLimit:
    """Requests per device in the last minute, counted in this process."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[int, deque[float]] = {}

    def allow(self, device_id: int) -> bool:
        now = time.monotonic()
        seen = self._seen.setdefault(device_id, deque())
        while seen and seen[0] <= now - 60:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return False
        seen.append(now)
        return True


def rate_limit_of(request: Request) -> DeviceRateLimit:
    """The app's one limiter, shared by the device API and the V免签 endpoints."""
    limiter = getattr(request.app.state, "qrpool_rate_limit", None)
    if limiter is None:
        limiter = DeviceRateLimit(channel_host(request).settings.qrpool_device_rate_per_minute)
        request.app.state.qrpool_rate_limit = limiter
    return limiter


class DeviceRequestRefused(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _storable(value: object) -> bool:
    """Whether every text in a JSON value, keys included, can be stored (JSON can spell what no database holds)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and not storable(item):
            return False
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
    return True


def _moment(value: object) -> datetime | None:
    """Unix seconds as a datetime; None for anything else (or a number no clock shows)."""
    if not _is_int(value) or not 0 < value < MAX_UNIX_SECONDS:  # type: ignore[operator]
        return None
    return datetime.fromtimestamp(value, UTC)  # type: ignore[arg-type]


async def _authenticate(request: Request) -> tuple[QrDevice, dict[str, Any], datetime]:
    """The signed envelope: device, signature, rate, timestamp, nonce; refused with the status to answer."""
    gateway = channel_host(request)
    body = await request.body()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise DeviceRequestRefused(400, "the body is not JSON") from None
    if not _storable(data):
        raise DeviceRequestRefused(400, "the body holds a NUL character or a lone surrogate (\\u0000, \\ud800)")
    if not isinstance(data, dict) or not _is_int(data.get("device_id")):
        raise DeviceRequestRefused(400, "the body must be an object with an integer device_id")
    signature = request.headers.get("x-signature", "")
    device = next(
        (
            device
            for device, key in await device_keys(gateway.db, gateway.box)
            if device.id == data["device_id"] and same_sign(body_sign(body, key), signature)
        ),
        None,
    )
    if device is None:
        log.warning("qrpool device API: a request whose signature does not verify")
        raise DeviceRequestRefused(401, "X-Signature does not verify for this device_id")
    if not rate_limit_of(request).allow(device.id):
        log.warning("qrpool: device %s over its rate limit", device.id)
        raise DeviceRequestRefused(429, "too many requests from this device: retry in a minute")
    now = utcnow()
    window = gateway.settings.qrpool_push_window_seconds
    timestamp = data.get("timestamp")
    if not _is_int(timestamp) or abs(timestamp - now.timestamp()) > window:
        raise DeviceRequestRefused(
            401, f"timestamp must be unix seconds within {window:.0f} s of the server's clock ({int(now.timestamp())})"
        )
    nonce = data.get("nonce")
    if not isinstance(nonce, str) or not NONCE.fullmatch(nonce):
        raise DeviceRequestRefused(400, "nonce must be 8 to 64 letters, digits, '-' or '_'")
    # Kept for twice the window: a timestamp accepted at the window's far edge stays refused until it expires.
    if not await first_sighting(gateway.db, f"qrpool:device:{device.id}", nonce, timedelta(seconds=2 * window)):
        raise DeviceRequestRefused(409, "this nonce was already used: sign each request with a new one")
    return device, data, now


def _refused(refusal: DeviceRequestRefused) -> JSONResponse:
    return JSONResponse({"error": refusal.message}, status_code=refusal.status_code)


def _unavailable() -> JSONResponse:
    return JSONResponse({"error": "the gateway could not record this request: retry it later"}, status_code=503)


@router.post("/heartbeat")
async def heartbeat(request: Request) -> JSONResponse:
    try:
        device, _, now = await _authenticate(request)
        await record_heartbeat(channel_host(request).db, device.id, now)
    except DeviceRequestRefused as refusal:
        return _refused(refusal)
    except Exception:
        log.exception("qrpool device API: could not record a heartbeat")
        return _unavailable()
    return JSONResponse({"status": "ok", "server_time": int(now.timestamp())})


@router.post("/events")
async def events(request: Request) -> JSONResponse:
    try:
        device, data, now = await _authenticate(request)
        batch = data.get("events")
        if not isinstance(batch, list) or not 1 <= len(batch) <= MAX_EVENTS:
            raise DeviceRequestRefused(400, f"events must be a list of 1 to {MAX_EVENTS} events")
        # The device's clock may be off: its events are moved by how far its request timestamp is from ours.
        offset = now - datetime.fromtimestamp(data["timestamp"], UTC)
        gateway = channel_host(request)
        results = [await _record(gateway, device, entry, offset, now) for entry in batch]
    except DeviceRequestRefused as refusal:
        return _refused(refusal)
    except Exception:
        log.exception("qrpool device API: could not record a batch of events")
        return _unavailable()
    return JSONResponse({"results": results})


async def _record(
    gateway: ChannelHost, device: QrDevice, entry: object, offset: timedelta, now: datetime
) -> dict[str, Any]:
    if not isinstance(entry, dict):
        return _result(None, "rejected", None, "an event must be an object")
    event_id = entry.get("id")
    if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
        shown = event_id if isinstance(event_id, str | int) and not isinstance(event_id, bool) else None
        return _result(shown, "rejected", None, "id must be 1 to 64 printable ASCII characters without spaces")
    pay_type, amount, occurred = entry.get("type"), entry.get("amount"), entry.get("occurred_at")
    amount_text = amount if isinstance(amount, str) else json.dumps(amount)
    amount_fen = parse_amount(amount) if isinstance(amount, str) else None
    moment = _moment(occurred)
    occurred_at = moment + offset if moment is not None else now
    problems = (
        None if pay_type in PAY_TYPES else f"type must be one of {', '.join(PAY_TYPES)}",
        None if amount_fen else 'amount must be a positive amount in yuan as a string, such as "9.91"',
        None if moment is not None else "occurred_at must be unix seconds",
        None if occurred_at <= now + CLOCK_SKEW else "occurred_at is in the future",
    )
    report = PaymentReport(
        event_key=event_key("device-api", device.id, event_id),
        source="device",
        device=device,
        pay_type=pay_type if pay_type in PAY_TYPES else None,
        amount_fen=amount_fen,
        amount_text=amount_text,
        occurred_at=occurred_at,
        payload=json.dumps(entry, ensure_ascii=False),
        refusal=next((problem for problem in problems if problem), None),
    )
    outcome = await record_payment(gateway.db, gateway.settings, report)
    if outcome.repeated:
        status = "duplicate"
    elif outcome.decision is Decision.REJECTED:
        status = "rejected"
    else:
        status = "accepted"
    return _result(event_id, status, outcome.decision.value, outcome.reason)


def _result(event_id: object, status: str, decision: str | None, reason: str) -> dict[str, Any]:
    return {"id": event_id, "status": status, "decision": decision, "reason": reason}
