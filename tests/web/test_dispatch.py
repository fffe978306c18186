"""Dispatch by path (``openepay.web.dispatch``): the same route as Starlette's full scan, found sooner."""

from __future__ import annotations

import re

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Route

from openepay.app import create_app
from openepay.web.dispatch import PathIndex, index_paths
from tests.conftest import make_settings

# Paths no route template spells out: unknown ones, near misses, parameters of every shape.
MORE_PATHS = (
    "/",
    "/healthz",
    "/healthz/",
    "/nope",
    "/mapi.php",
    "/api.php",
    "/api/pay/create",
    "/api/no/such/method",
    "/cashier/1-00",
    "/cashier/1-00/status",
    "/vmq/1000/createOrder",
    "/vmq/1000",
    "/static/app.css",
    "/channels/sandbox/notify",
    "/channels/sandbox/main/notify",
)
METHODS = ("GET", "POST", "PUT", "HEAD")


def full_scan(routes: list, scope: dict) -> object | None:
    """What Starlette's router picks: the first route that matches in full."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def sample_path(template: str) -> str:
    return re.sub(r"{[^}]+}", "1000", template)


def test_every_request_reaches_the_route_the_full_scan_would(database_url):
    app = create_app(make_settings(database_url))
    index = app.router.middleware_stack
    assert isinstance(index, PathIndex)
    routes = app.router.routes
    paths = {sample_path(route.path) for route in routes if getattr(route, "path", "")} | set(MORE_PATHS)
    checked = 0
    for path in sorted(paths):
        for method in METHODS:
            scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
            found = index.route_for(dict(scope))
            assert (found[0] if found else None) is full_scan(routes, dict(scope)), (method, path)
            checked += found is not None
    assert checked > len(routes)


def ok(name: str):  # type: ignore[no-untyped-def]
    async def answer(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse(f"{name} {request.path_params}")

    return answer


async def test_order_methods_slashes_and_late_routes_behave_as_without_the_index():
    app = Starlette(
        routes=[
            Route("/{anything}/x", ok("param first"), methods=["GET"]),
            Route("/fixed/x", ok("fixed"), methods=["GET", "POST"]),
            Route("/only-post", ok("post"), methods=["POST"]),
            Route("/folder/", ok("folder")),
        ]
    )
    index_paths(app.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        # The earlier route with a parameter still wins for GET; POST goes on to the later one.
        assert (await client.get("/fixed/x")).text == "param first {'anything': 'fixed'}"
        assert (await client.post("/fixed/x")).text == "fixed {}"
        assert (await client.get("/only-post")).status_code == 405
        redirected = await client.get("/folder")
        assert (redirected.status_code, redirected.headers["location"]) == (307, "http://test/folder/")
        assert (await client.get("/late")).status_code == 404
        app.router.routes.append(Route("/late", ok("late")))
        assert (await client.get("/late")).text == "late {}"
