"""``/channels/{name}/{account}/notify``: where upstreams post their payment callbacks.

The account in the path says whose credentials verify the callback; ``/channels/{name}/notify``
is the channel's built-in account.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.requests import Request

from openepay.channels.base import CallbackRequest
from openepay.core.channel_accounts import DEFAULT_REF
from openepay.core.payments import receive_callback
from openepay.protocols.params import form_params, query_params
from openepay.web.deps import gateway_of

router = APIRouter()


@router.api_route("/channels/{name}/notify", methods=["GET", "POST"])
async def default_account_notify(request: Request, name: str) -> Response:
    return await _receive(request, name, DEFAULT_REF)


@router.api_route("/channels/{name}/{ref}/notify", methods=["GET", "POST"])
async def account_notify(request: Request, name: str, ref: str) -> Response:
    return await _receive(request, name, ref)


async def _receive(request: Request, name: str, ref: str) -> Response:
    gateway = gateway_of(request)
    channel = gateway.channel(name)
    account = await gateway.account(name, ref) if channel is not None else None
    if channel is None or account is None:
        return Response("unknown channel account", status_code=404, media_type="text/plain")
    body = await request.body()
    callback = CallbackRequest(
        method=request.method,
        query=query_params(request),
        form=await form_params(request),
        body=body,
        headers=dict(request.headers),
        client_ip=request.client.host if request.client else None,
    )
    reply = await receive_callback(gateway.db, channel, account, callback)
    return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)
