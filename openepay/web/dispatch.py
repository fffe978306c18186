"""Dispatch by path: a request goes straight to the routes that can match its path.

Starlette's router tries its routes one after the other, and the gateway has many: six
dialects' endpoints, the cashier, the channels' pages and callbacks. A ``/healthz`` (the load
balancer's probe, many times a second) or a ``/mapi.php`` was matched against every route
before it, a regular expression each, which was a quarter of the CPU of a ``/healthz``.

``index_paths`` puts a dictionary in front of the router, keyed by a path's first segment
(``healthz``, ``mapi.php``, ``cashier``, ``api``): the routes, in the router's order, whose
first segment is that one, and those whose first segment is a parameter. A request tries only
the routes of its segment, in that order, so the answer is the one the full scan gives: the
first route that matches in full wins, and when none does, the first that matches the path but
not the method answers (405). Anything else (a path no route matches, a redirect for a trailing
slash, a request under a ``root_path``) goes on to the router's full scan, which answers it as
before. Routes added after the first request are seen too: the index is rebuilt when the
number of routes changes. The index holds one entry per segment the routes name, so no flood of
made-up paths makes it grow.

``add_routes`` is what makes the index work. FastAPI's ``include_router`` leaves one opaque
entry per included router in the app's routes, which the index cannot file under a segment and
which, when tried, walks every route of that router (and of the routers it includes) through
FastAPI's per-inclusion copies: a ``/healthz`` paid for matching dozens of routes that way.
``add_routes`` copies each route into the app instead, with its full path, so every route is
one entry the index files by its segment, and the route in the request's scope is the one that
answers, whose template the metrics and the access log use as its label.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send


class PathIndex:
    """The router's routes by first path segment, tried before (and instead of) the full scan."""

    def __init__(self, router: Router, scan: ASGIApp) -> None:
        self.router = router
        self.scan = scan
        self._by_segment: dict[str, tuple[BaseRoute, ...]] = {}
        self._anywhere: tuple[BaseRoute, ...] = ()
        self._indexed = -1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.route_for(scope) if scope["type"] == "http" and not scope.get("root_path") else None
        if found is None:
            await self.scan(scope, receive, send)
            return
        route, child_scope = found
        scope.setdefault("router", self.router)
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)

    def route_for(self, scope: Scope) -> tuple[BaseRoute, Scope] | None:
        """The route that answers the request: the first of the path's routes that matches it in
        full (path and method), else the first that matches its path only (and answers 405)."""
        if self._indexed != len(self.router.routes):
            self._build()
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self._by_segment.get(_first_segment(scope["path"]), self._anywhere):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope
            if match is Match.PARTIAL and partial is None:
                partial = route, child_scope
        return partial

    def _build(self) -> None:
        routes = list(self.router.routes)
        segments = {_literal_segment(route) for route in routes} - {None}
        self._anywhere = tuple(route for route in routes if _literal_segment(route) is None)
        self._by_segment = {
            segment: tuple(route for route in routes if _literal_segment(route) in (segment, None))
            for segment in segments
        }
        self._indexed = len(routes)


def _first_segment(path: str) -> str:
    return path[1:].partition("/")[0]


def _literal_segment(route: BaseRoute) -> str | None:
    """The route's first path segment when it is fixed text; None when it may be anything."""
    template = getattr(route, "path", None)
    if not isinstance(template, str) or not template.startswith("/"):
        return None
    segment = _first_segment(template)
    return None if "{" in segment else segment


def index_paths(router: Router) -> None:
    """Send the router's requests through a ``PathIndex`` first."""
    router.middleware_stack = PathIndex(router, router.middleware_stack)


def add_routes(target: FastAPI | APIRouter, router: APIRouter) -> None:
    """Copy ``router``'s routes into ``target`` as ``include_router`` would serve them, one route each.

    Each copy keeps what the inclusion would give it: the path under ``target``'s prefix, the
    dependencies, tags and schema visibility of both, the endpoint and its name. A router that
    includes others must have been built with ``add_routes`` too: anything but a route is
    refused here, at start-up, rather than served by the full scan.
    """
    destination = target.router if isinstance(target, FastAPI) else target
    for route in router.routes:
        if isinstance(route, APIRoute):
            destination.add_api_route(
                route.path,
                route.endpoint,
                response_model=route.response_model,
                status_code=route.status_code,
                tags=route.tags,
                dependencies=route.dependencies,
                summary=route.summary,
                description=route.description,
                response_description=route.response_description,
                responses=route.responses,
                deprecated=route.deprecated,
                methods=route.methods,
                operation_id=route.operation_id,
                response_model_include=route.response_model_include,
                response_model_exclude=route.response_model_exclude,
                response_model_by_alias=route.response_model_by_alias,
                response_model_exclude_unset=route.response_model_exclude_unset,
                response_model_exclude_defaults=route.response_model_exclude_defaults,
                response_model_exclude_none=route.response_model_exclude_none,
                include_in_schema=route.include_in_schema,
                response_class=route.response_class,
                name=route.name,
                route_class_override=type(route),
                callbacks=route.callbacks,
                openapi_extra=route.openapi_extra,
                generate_unique_id_function=route.generate_unique_id_function,
                strict_content_type=route.strict_content_type,
                max_body_size=route.max_body_size,
                form_limits=route.form_limits or None,
            )
        elif type(route) is Route:
            destination.add_route(
                destination.prefix + route.path,
                route.endpoint,
                methods=route.methods,
                name=route.name,
                include_in_schema=route.include_in_schema and destination.include_in_schema,
            )
        else:
            raise TypeError(f"add_routes copies routes only, not {route!r}: build {router!r} with add_routes")
