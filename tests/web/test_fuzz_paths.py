"""Random paths under every route of the app, over real HTTP, on SQLite and PostgreSQL.

Whatever the path (a percent-encoded NUL, a lone surrogate or overlong UTF-8 spelled in bytes,
numbers no column holds, dots, slashes), with whatever method, query string and body, the
gateway answers without a 5xx and without logging an error. The routes are read from the app
itself, so a route added later is fuzzed too; every channel and V免签's root paths are on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from openepay.app import create_app
from openepay.web.server import http_protocol
from tests.support.fuzz import FUZZ, raw_query
from tests.support.servers import ServerThread
from tests.support.settings import make_settings

# Spelled in bytes as an attacker sends them: NUL, lone surrogates (U+D800, U+DFFF in UTF-8),
# overlong forms of NUL, "/" and ".", stray or broken escapes, and numbers past any column.
SEGMENTS = [
    "%00", "a%00b", "%00%00", "%ED%A0%80", "%ED%BF%BF", "%C0%80", "%C0%AF", "%E0%80%AF", "%F0%80%80%AF",
    "%C0%AE%C0%AE", "%FF", "%FE%FF", "%", "%zz", "%2", "%2F", "%2f..%2f", "..", ".", "", "%20", "+", "%0A", "%0D%0A",
    "9" * 19, "9" * 40, "9" * 400, "9223372036854775808", "18446744073709551616", "-1", "0", "-0", "1e30", "1E400",
    "0x7fffffffffffffff", "NaN", "Infinity", "1.005", "%E4%BD%A0%E5%A5%BD", "%F0%9F%98%80", "createOrder", "index.php",
]  # fmt: skip
PARAM = re.compile(r"\{[^}]+\}")
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]

segment = st.one_of(
    st.sampled_from(SEGMENTS),
    st.text(max_size=20).map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe="")),
    st.integers(-(10**40), 10**40).map(str),
    st.binary(max_size=12).map(lambda raw: quote(raw, safe="")),
)


def route_paths(routes: list) -> set[str]:
    """Every route's template; FastAPI keeps an included router whole, as ``original_router``."""
    found = set()
    for route in routes:
        if getattr(route, "path", None):
            found.add(route.path)
        included = getattr(route, "original_router", None)
        if included is not None:
            found |= route_paths(included.routes)
    return found


@st.composite
def paths(draw: st.DrawFn, templates: list[str]) -> str:
    """A route's template with random segments for its parameters, or cut short and continued at random."""
    template = draw(st.sampled_from(templates))

    def parameter(match: re.Match[str]) -> str:
        several = match.group().endswith(":path}")
        return "/".join(draw(st.lists(segment, min_size=1, max_size=3 if several else 1)))

    path = PARAM.sub(parameter, template)
    if draw(st.booleans()):
        parts = path.split("/")
        keep = draw(st.integers(1, len(parts)))
        path = "/".join([*parts[:keep], *draw(st.lists(segment, min_size=1, max_size=4))])
    return path if path.startswith("/") else "/" + path


@pytest.fixture
def everything(database_url: str, merchant) -> Iterator[tuple[httpx.Client, list[str]]]:  # type: ignore[no-untyped-def]
    """The app with every optional part on (sandbox, personal codes, V免签's root paths), and its routes."""
    settings = make_settings(database_url, qrpool=True, vmq_default_pid=merchant.pid)
    app = create_app(settings)
    thread = ServerThread(app, http=http_protocol(settings)).start()
    try:
        with httpx.Client(base_url=thread.url, timeout=30) as client:
            yield client, sorted(route_paths(app.routes))
    finally:
        thread.stop()


def test_the_fuzzed_routes_are_all_the_routes(everything):
    """Every endpoint family of the gateway is among the templates drawn from."""
    _, templates = everything
    for expected in ("/cashier/{handle}", "/api/{endpoint:path}", "/vmq/{pid}/createOrder", "/appPush", "/mapi.php"):
        assert expected in templates
    assert any(path.startswith("/qrpool/device/") for path in templates)
    assert any(path.startswith("/channels/") for path in templates)


@FUZZ
@given(data=st.data())
def test_no_path_gets_a_server_error_or_logs_one(everything, caplog, data):
    client, templates = everything
    caplog.clear()
    path = data.draw(paths(templates), label="path")
    query = data.draw(st.one_of(st.just(""), raw_query), label="query")
    method = data.draw(st.sampled_from(METHODS), label="method")
    body = data.draw(st.one_of(st.just(b""), raw_query.map(str.encode), st.binary(max_size=200)), label="body")
    raw = path.encode() + (b"?" + query.encode() if query else b"")
    request = client.build_request(
        method,
        client.base_url.copy_with(raw_path=raw),
        content=body if method not in ("GET", "HEAD") else None,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = client.send(request)
    event(f"{method} {response.status_code}")
    assert response.status_code < 500, (response.status_code, response.text[:300])
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, errors[0].getMessage()
