"""``base_url``: the address a request came to, as Starlette reads it, for every way of reaching the gateway.

It is remembered by what it is built from, so a request must never get the address another
request came to (another host, scheme, port or root path)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from openepay.web.deps import base_url


def request(
    host: bytes | None, *, scheme: str = "http", server: tuple[str, int] | None = ("127.0.0.1", 8000), root: str = ""
) -> Request:
    headers = [(b"user-agent", b"shop")] + ([(b"host", host)] if host is not None else [])
    return Request(
        {"type": "http", "scheme": scheme, "path": "/mapi.php", "root_path": root, "headers": headers, "server": server}
    )


@pytest.mark.parametrize(
    "scope",
    [
        {"host": b"pay.example.com"},
        {"host": b"pay.example.com:8443", "scheme": "https"},
        {"host": b"pay.example.com", "root": "/gateway"},
        {"host": b"pay.example.com", "root": "/gateway/"},
        {"host": None},
        {"host": None, "server": ("::1", 8000)},
        {"host": None, "scheme": "https", "server": ("10.0.0.2", 443)},
        {"host": b"not a host!"},
        {"host": None, "server": None},
    ],
)
def test_the_address_is_starlettes_each_time(scope: dict) -> None:
    host = scope.pop("host")
    expected = str(request(host, **scope).base_url).rstrip("/")

    assert base_url(request(host, **scope)) == expected
    assert base_url(request(host, **scope)) == expected


def test_requests_to_other_hosts_get_their_own_address() -> None:
    assert base_url(request(b"a.example.com")) == "http://a.example.com"
    assert base_url(request(b"b.example.com")) == "http://b.example.com"
    assert base_url(request(b"a.example.com", scheme="https")) == "https://a.example.com"
    assert base_url(request(b"a.example.com", root="/pay")) == "http://a.example.com/pay"
