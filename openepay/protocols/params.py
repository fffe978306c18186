"""Reading request parameters the way PHP gateways do, for every dialect."""

from __future__ import annotations

import re

from starlette.datastructures import UploadFile
from starlette.requests import Request

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_INTVAL = re.compile(r"^\s*([+-]?\d+)")


async def form_params(request: Request) -> dict[str, str]:
    """The form body as plain strings (last value wins, like ``$_POST``); uploads are ignored."""
    if request.method != "POST":
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in FORM_TYPES:
        return {}
    try:
        form = await request.form()
    except Exception:  # a malformed body is a request with no parameters, not a server error
        return {}
    return {name: value for name, value in form.items() if not isinstance(value, UploadFile)}


async def get_or_post(request: Request, marker: str) -> dict[str, str] | None:
    """Rainbow's rule: the query string if it carries ``marker``, else the body if it does, else nothing.

    The two sets are never merged, because the signature covers exactly one of them.
    """
    query = dict(request.query_params)
    if marker in query:
        return query
    form = await form_params(request)
    if marker in form:
        return form
    return None


async def merged(request: Request) -> dict[str, str]:
    """Body and query string together (the query string wins), for endpoints clients reach both ways."""
    return {**await form_params(request), **dict(request.query_params)}


def php_intval(text: str | None) -> int:
    """PHP ``intval`` on a string: leading digits, else 0 (``"1001abc"`` -> 1001, ``"x"`` -> 0)."""
    match = _INTVAL.match(text or "")
    if not match:
        return 0
    value = int(match.group(1))
    return value if -(2**31) <= value < 2**31 else 0
