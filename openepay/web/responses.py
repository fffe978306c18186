"""JSON answers rendered by one encoder made once, for the routes answered most often.

Starlette's ``JSONResponse`` renders with ``json.dumps`` and its options (UTF-8 as it is, no
NaN, no spaces), and ``json.dumps`` with options builds a new ``JSONEncoder`` for every answer:
a third of rendering a ``mapi.php`` refusal or an ``api.php`` lookup. The encoder holds no state
between answers, so one made with the same options gives the same bytes.

Even one ``JSONEncoder`` made once sets up its C encoder again for every answer (in Python, a
seventh of rendering a lookup's answer), so the C encoder itself is made once too, with the same
options. It keeps no record of the containers it is inside (a record kept across answers would
outlive an answer that failed halfway): an answer that contains itself, which no route builds,
fails on the depth of its nesting rather than on a circular reference detected.
"""

from __future__ import annotations

import json
from functools import lru_cache
from json.encoder import c_make_encoder, encode_basestring
from typing import Any

from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
# ``JSONEncoder.iterencode``'s own C encoder for these options, without its markers; None without ``_json``.
_C_ENCODER = (
    c_make_encoder(None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, False)
    if c_make_encoder is not None
    else None
)


def render_json(content: Any) -> bytes:
    """``content`` as ``json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))``, in UTF-8."""
    if _C_ENCODER is None:
        return _ENCODER.encode(content).encode("utf-8")
    return "".join(_C_ENCODER(content, 0)).encode("utf-8")


class JSONResponse(StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return render_json(content)


def error_answer(code: int, msg: str) -> Response:
    """``JSONResponse({"code": code, "msg": msg})``, the same bytes, rendered once per message: a
    dialect refuses with a few fixed texts (a wrong signature, over and over, in a flood of them)."""
    return Response(_error_body(code, msg), media_type=JSONResponse.media_type)


# Bounded: a few messages quote the request (an order number, a parameter's name).
@lru_cache(maxsize=512)
def _error_body(code: int, msg: str) -> bytes:
    return render_json({"code": code, "msg": msg})
