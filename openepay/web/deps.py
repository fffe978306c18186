"""Getting the running gateway inside a request handler."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from openepay.gateway import Gateway
from openepay.web.middleware import first_header

# ``base_url`` by what Starlette builds it from; cleared when full (a client chooses its Host header).
_BASE_URLS: dict[tuple[Any, ...], str] = {}
_KNOWN_BASE_URLS = 256


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway


def base_url(request: Request) -> str:
    """The address the request came to, without a trailing ``/``: Starlette's ``request.base_url``,
    built once per scheme, Host header, server address and root path (building it took a create
    request some 20 µs of CPU, parsing and validating the Host header each time)."""
    scope = request.scope
    key = (
        scope.get("scheme", "http"),
        first_header(scope, b"host"),
        scope.get("server"),
        scope.get("app_root_path", scope.get("root_path", "")),
    )
    found = _BASE_URLS.get(key)
    if found is None:
        if len(_BASE_URLS) >= _KNOWN_BASE_URLS:
            _BASE_URLS.clear()
        found = _BASE_URLS[key] = str(request.base_url).rstrip("/")
    return found


def client_address(request: Request) -> str:
    """The caller's IP: the peer, or what a trusted proxy said in ``X-Forwarded-For`` (uvicorn's ``proxy_headers``)."""
    client = request.scope.get("client")  # ``request.client`` without the named tuple it builds
    return client[0] if client is not None else ""
