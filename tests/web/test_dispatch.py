"""Dispatch by path (``openepay.web.dispatch``): the same route as Starlette's full scan, found sooner."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Route

from openepay.app import create_app
from openepay.web.dispatch import PathIndex, add_routes, index_paths
from tests.support.gateways import own_server
from tests.support.metrics import requests_counted
from tests.support.settings import make_settings

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
    """What Starlette's router picks: the first route that matches in full, else the first that
    matches the path but not the method (which answers 405)."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


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


def dialect_requests(app) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(method, path, template): one request to every route of every dialect, by a method it takes."""
    requests = []
    for route in app.router.routes:
        if getattr(route, "endpoint", ok).__module__.startswith("openepay.protocols."):
            method = next(m for m in ("POST", "GET", *sorted(route.methods)) if m in route.methods)
            requests.append((method, sample_path(route.path), route.path))
    return requests


async def test_every_dialect_endpoint_is_answered_and_counted_by_its_own_route(database_url):
    """Each of the dialects' many paths (mapi.php, the V2 API, V免签's spellings) reaches its route
    and is named by it in the metrics, never lumped in with paths no route matches."""
    requests = dialect_requests(create_app(make_settings(database_url)))
    assert {"/mapi.php", "/api.php", "/submit.php", "/pay/mapi.php", "/Home/Pay/payFor", "/api/pay/create"} <= {
        template for _, _, template in requests
    }
    assert "/vmq/{pid}/createOrder" in {template for _, _, template in requests}
    with own_server(database_url) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for method, path, _ in requests:
                # Absolute, or httpx would read V免签's "//createOrder" as a host.
                await client.request(method, server.url + path)
            counted = await requests_counted(client)
    by_route: dict[tuple[str, str], float] = {}
    for (method, route, _), count in counted.items():
        by_route[method, route] = by_route.get((method, route), 0) + count
    assert {(method, template): by_route.get((method, template)) for method, _, template in requests} == {
        (method, template): 1 for method, _, template in requests
    }
    assert not [series for series in counted if series[1] == "unmatched"]


async def test_a_known_path_asked_with_a_method_it_does_not_take_is_405_from_its_route(database_url):
    with own_server(database_url) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            mapi = await client.put("/mapi.php")
            health = await client.post("/healthz")
            cashier = await client.delete("/cashier/1-00")
            missing = await client.put("/no/such/path")
            counted = await requests_counted(client)
    assert (mapi.status_code, set(mapi.headers["allow"].split(", "))) == (405, {"GET", "HEAD", "POST"})
    assert (health.status_code, set(health.headers["allow"].split(", "))) == (405, {"GET", "HEAD"})
    assert (cashier.status_code, cashier.headers["allow"]) == (405, "GET")
    assert missing.status_code == 404
    assert {series: count for series, count in counted.items() if series[0] != "GET"} == {
        ("PUT", "/mapi.php", 405): 1,
        ("POST", "/healthz", 405): 1,
        ("DELETE", "/cashier/{handle}", 405): 1,
        ("PUT", "unmatched", 404): 1,
    }


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


async def test_copied_routes_keep_their_paths_dependencies_and_names():
    """What ``include_router`` gave them: the prefix, both routers' dependencies, the route's name."""

    def stamp(label: str):  # type: ignore[no-untyped-def]
        async def dependency(request: Request) -> None:
            request.state.stamps = [*getattr(request.state, "stamps", []), label]

        return Depends(dependency)

    pages = APIRouter(prefix="/pages", dependencies=[stamp("pages")])

    @pages.get("/{number}")
    async def page(number: int, request: Request) -> dict[str, object]:
        return {"number": number, "stamps": request.state.stamps}

    area = APIRouter(dependencies=[stamp("area")])

    @area.route("/plain", methods=["POST"])
    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("plain")

    add_routes(area, pages)
    app = FastAPI()
    add_routes(app, area)
    index_paths(app.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/pages/7")).json() == {"number": 7, "stamps": ["area", "pages"]}
        assert (await client.get("/pages/x")).status_code == 422
        assert (await client.post("/plain")).text == "plain"
        assert (await client.get("/plain")).status_code == 405
    assert app.url_path_for("page", number=3) == "/pages/3"
    assert [route.path for route in app.router.routes[-2:]] == ["/plain", "/pages/{number}"]


def test_a_router_built_with_include_router_is_refused_at_start_up():
    inner, outer = APIRouter(), APIRouter()

    @inner.get("/inner")
    async def inner_page() -> dict[str, str]:
        return {}

    outer.include_router(inner)
    with pytest.raises(TypeError, match="add_routes"):
        add_routes(FastAPI(), outer)
