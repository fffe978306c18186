"""``/channels/{name}/notify``: where upstreams post their payment callbacks."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.requests import Request

from openepay.channels.base import CallbackRequest
from openepay.core.payments import receive_callback
from openepay.protocols.params import form_params, query_params
from openepay.web.deps import gateway_of

router = APIRouter()


@router.api_route("/channels/{name}/notify", methods=["GET", "POST"])
async def channel_notify(request: Request, name: str) -> Response:
    gateway = gateway_of(request)
    body = await request.body()
    callback = CallbackRequest(
        method=request.method,
        query=query_params(request),
        form=await form_params(request),
        body=body,
        headers=dict(request.headers),
        client_ip=request.client.host if request.client else None,
    )
    reply = await receive_callback(gateway.db, gateway.channels, name, callback)
    return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)
