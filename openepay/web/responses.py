"""JSON answers rendered by one encoder made once, for the routes answered most often.

Starlette's ``JSONResponse`` renders with ``json.dumps`` and its options (UTF-8 as it is, no
NaN, no spaces), and ``json.dumps`` with options builds a new ``JSONEncoder`` for every answer:
a third of rendering a ``mapi.php`` refusal or an ``api.php`` lookup. The encoder holds no state
between answers, so one made with the same options gives the same bytes (and its C encoder is
made once too: ``openepay.json_text``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

from openepay.json_text import text_encoder

_ENCODE = text_encoder(json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")))


def render_json(content: Any) -> bytes:
    """``content`` as ``json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))``, in UTF-8."""
    return _ENCODE(content).encode("utf-8")


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
