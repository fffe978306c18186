"""The gateway's web app under settings of a test's own, beside the session's server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from openepay.app import create_app
from openepay.web.server import http_protocol
from tests.support.servers import ServerThread
from tests.support.settings import make_settings

# A deployment as operators run one: money limits, its public URL, and private notify targets refused.
STRICT = {
    "pay_min_money": Decimal("0.50"),
    "pay_max_money": Decimal("5000"),
    "public_url": "https://pay.example.com/",
    "notify_allow_private": False,
}


@contextmanager
def own_server(database_url: str, **settings: object) -> Iterator[ServerThread]:
    """The app over real HTTP on the test's database, with ``settings`` over the tests' usual ones."""
    gateway_settings = make_settings(database_url, **settings)
    thread = ServerThread(create_app(gateway_settings), http=http_protocol(gateway_settings)).start()
    try:
        yield thread
    finally:
        thread.stop()
