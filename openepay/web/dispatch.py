"""Dispatch by path: a request goes straight to the routes that can match its path.

Starlette's router tries its routes one after the other, and the gateway has many: six
dialects' endpoints, the cashier, the channels' pages and callbacks. A ``/healthz`` (the load
balancer's probe, many times a second) or a ``/mapi.php`` was matched against every route
before it, a regular expression each, which was a quarter of the CPU of a ``/healthz``.

``index_paths`` puts a dictionary in front of the router, keyed by a path's first segment
(``healthz``, ``mapi.php``, ``cashier``, ``api``): the routes, in the router's order, whose
first segment is that one, and those whose first segment is a parameter. A request tries only
the routes of its segment, in that order, so the answer is the one the full scan gives: the
first route that matches wins. Anything else (a path no route matches in full, a method a
route does not take, a redirect for a trailing slash, a request under a ``root_path``) goes on
to the router's full scan, which answers it as before. Routes added after the first request
are seen too: the index is rebuilt when the number of routes changes. The index holds one entry
per segment the routes name, so no flood of made-up paths makes it grow.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Match, Router
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
        """The first of the path's routes that matches the request in full (path and method), if any."""
        if self._indexed != len(self.router.routes):
            self._build()
        for route in self._by_segment.get(_first_segment(scope["path"]), self._anywhere):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope
        return None

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
