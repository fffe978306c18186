"""Reading request parameters the way PHP gateways do, for every dialect.

This is also the edge every dialect's text crosses on its way to the database: a parameter
the database cannot store (a NUL byte) is refused here, once for all, with
``UnreadableParameter``, which each dialect answers in its own words.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from openepay.db.types import storable
from openepay.web.middleware import WHOLE_BODY, first_header

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_INTVAL = re.compile(r"^[ \t\n\r\v\f]*([+-]?)0*([0-9]+)")
# ``&`` or ``=`` escaped: unquoting the whole text at once would split it where the sender meant no split.
_ESCAPED_SEPARATOR = re.compile(rb"%(?:26|3[dD])")


class UnreadableParameter(ValueError):
    """A parameter whose name or value no database can store (a NUL byte).

    ``name`` is printable (a NUL in it is shown as ``\\x00``), so it can go into an answer as it is;
    ``params`` are all the parameters as read, for a dialect that picks its answer's format from one.
    """

    def __init__(self, name: str, params: dict[str, str]) -> None:
        self.name = name.replace("\x00", "\\x00")
        self.params = params
        super().__init__(f"parameter {self.name} holds a NUL byte")


def _storable(params: dict[str, str]) -> dict[str, str]:
    for name, value in params.items():
        if not (storable(name) and storable(value)):
            raise UnreadableParameter(name, params)
    return params


def parse_query(raw: bytes) -> dict[str, str]:
    """PHP's ``parse_str``: ``&`` between pairs, ``+`` is a space, the last duplicate wins.

    Escaped and unescaped bytes alike are read as UTF-8 once unquoted, as PHP sees them:
    SDKs that put raw UTF-8 into a URL or body (some build the string by hand) sign that
    text, and reading it as Latin-1 would fail their signature. (What ``urllib``'s ``parse_qsl``
    gives for the bytes read as Latin-1, then read again as UTF-8, at a third of its cost.)
    """
    if not raw:
        # No query string: every POST form and most GETs; nothing to split, decode or check.
        return {}
    raw = raw.replace(b"+", b" ")
    params = {}
    if b"%" not in raw or not _ESCAPED_SEPARATOR.search(raw):
        # Nothing escaped, or no ``&`` or ``=`` escaped: one unquoting and one decoding of the whole,
        # which give what unquoting and decoding each part give, at a third of the cost for a form
        # whose addresses and Chinese names are escaped (an escape ``%XX`` never spans an ``&`` or
        # ``=``, which are not hex digits, and neither is ever part of a UTF-8 sequence, even a
        # broken one).
        for pair in _unquoted_whole(raw).decode("utf-8", "replace").split("&"):
            name, _, value = pair.partition("=")
            if name:
                params[name] = value
    else:
        for pair in raw.split(b"&"):
            name, _, value = pair.partition(b"=")
            if name:
                params[_unquoted(name)] = _unquoted(value)
    # Decoded with replacement, the text holds no lone surrogate: only a NUL, sent as it is or as
    # ``%00``, can make a parameter unstorable, and most requests carry neither.
    return _storable(params) if b"\x00" in raw or b"%00" in raw else params


def _unquoted_whole(raw: bytes) -> bytes:
    """``unquote_to_bytes``, in C when every ``%`` starts an escape (as in any form a client encoded):
    each ``%XX`` written as the ``\\xXX`` of Python's ``unicode_escape`` codec, which reads every
    other byte as the Latin-1 character of that number (a backslash doubled first, to stay one).
    A ``%`` that starts no escape is a ``\\x`` the codec refuses: then ``unquote_to_bytes``, which
    leaves it as it is."""
    if b"%" not in raw:
        return raw
    try:
        return raw.replace(b"\\", b"\\\\").replace(b"%", b"\\x").decode("unicode_escape").encode("latin-1")
    except UnicodeDecodeError:
        return unquote_to_bytes(raw)


def _unquoted(raw: bytes) -> str:
    return (unquote_to_bytes(raw) if b"%" in raw else raw).decode("utf-8", "replace")


async def form_params(request: Request) -> dict[str, str]:
    """The form body as plain strings (last value wins, like ``$_POST``); uploads are ignored.

    A body that is not a well-formed form is a request without parameters, not a server
    error; an oversized one still reaches the size limit (413), so only parse errors are caught.
    Raises ``UnreadableParameter`` like ``parse_query``.
    """
    if request.method != "POST":
        return {}
    media_type = (first_header(request.scope, b"content-type") or b"").decode("latin-1").split(";")[0].strip().lower()
    if media_type == URLENCODED:
        body = request.scope.get(WHOLE_BODY)
        return parse_query(await request.body() if body is None else body)
    if media_type != MULTIPART:
        return {}
    try:
        form = await request.form()
    except (HTTPException, MultiPartException):
        return {}
    texts = {name: value for name, value in form.items() if not isinstance(value, UploadFile)}
    return _storable({_valid_text(name): _valid_text(value) for name, value in texts.items()})


def _valid_text(text: str) -> str:
    """Text that encodes as UTF-8: a part may declare a charset (utf-7) that decodes to lone surrogates."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def query_params(request: Request) -> dict[str, str]:
    """The query string, read by ``parse_query``."""
    return parse_query(request.scope.get("query_string", b""))


async def get_or_post(request: Request, marker: str) -> dict[str, str] | None:
    """Rainbow's rule: the query string if it carries ``marker``, else the body if it does, else nothing.

    The two sets are never merged, because the signature covers exactly one of them.
    """
    query = query_params(request)
    if marker in query:
        return query
    form = await form_params(request)
    if marker in form:
        return form
    return None


async def merged(request: Request) -> dict[str, str]:
    """Body and query string together (the query string wins), for endpoints clients reach both ways."""
    return {**await form_params(request), **query_params(request)}


def php_empty(value: str | None) -> bool:
    """PHP ``empty()`` on a request string: missing, ``""`` or ``"0"``."""
    return value is None or value in ("", "0")


def php_intval(text: str | None) -> int:
    """PHP ``intval`` on a string: leading ASCII digits, else 0 (``"1001abc"`` -> 1001, ``"x"`` -> 0)."""
    if text is not None and text.isascii() and text.isdigit():
        # Digits only, as a ``pid`` nearly always is: what the pattern reads, at a third of its cost.
        digits = text.lstrip("0") or "0"
        if len(digits) > 10:
            return 0
        value = int(digits)
        return value if value < 2**31 else 0
    match = _INTVAL.match(text or "")
    if not match or len(match.group(2)) > 10:  # out of range; and int() refuses thousands of digits
        return 0
    value = int(match.group(1) + match.group(2))
    return value if -(2**31) <= value < 2**31 else 0
