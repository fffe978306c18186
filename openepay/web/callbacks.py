"""``/channels/{name}/{account}/notify``: where upstreams post their payment callbacks.

The account in the path says whose credentials verify the callback; ``/channels/{name}/notify``
is the channel's built-in account.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.requests import Request

from openepay.channels.base import CallbackRequest
from openepay.core.channel_accounts import DEFAULT_REF
from openepay.core.payments import receive_callback
from openepay.protocols.params import UnreadableParameter, form_params, query_params
from openepay.web.deps import gateway_of

log = logging.getLogger(__name__)
router = APIRouter()


def _unreadable() -> Response:
    """What epay-family upstreams read as "not taken, send again"; no real upstream sends a NUL byte."""
    return Response("fail", status_code=400, media_type="text/plain")


@router.api_route("/channels/{name}/notify", methods=["GET", "POST"])
async def default_account_notify(request: Request, name: str) -> Response:
    return await _receive(request, name, DEFAULT_REF)


@router.api_route("/channels/{name}/{ref}/notify", methods=["GET", "POST"])
async def account_notify(request: Request, name: str, ref: str) -> Response:
    return await _receive(request, name, ref)


async def _receive(request: Request, name: str, ref: str) -> Response:
    """Every callback is kept in the database, so one that no database can store is refused here."""
    gateway = gateway_of(request)
    channel = gateway.channel(name)
    account = await gateway.account(name, ref) if channel is not None else None
    if channel is None or account is None:
        return Response("unknown channel account", status_code=404, media_type="text/plain")
    body = await request.body()
    try:
        query, form = query_params(request), await form_params(request)
    except UnreadableParameter as error:
        log.warning("a callback to channel %r was refused: parameter %s holds a NUL byte", name[:32], error.name[:64])
        return _unreadable()
    if b"\x00" in body:
        log.warning("a callback to channel %r was refused: its body holds a NUL byte", name[:32])
        return _unreadable()
    callback = CallbackRequest(
        method=request.method,
        query=query,
        form=form,
        body=body,
        headers=dict(request.headers),
        client_ip=request.client.host if request.client else None,
    )
    reply = await receive_callback(gateway.db, channel, account, callback)
    return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)
