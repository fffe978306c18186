"""Getting the running gateway inside a request handler."""

from __future__ import annotations

from starlette.requests import Request

from openepay.gateway import Gateway


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def client_address(request: Request) -> str:
    """The caller's IP: the peer, or what a trusted proxy said in ``X-Forwarded-For`` (uvicorn's ``proxy_headers``)."""
    return request.client.host if request.client is not None else ""
