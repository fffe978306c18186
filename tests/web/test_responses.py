"""``openepay.web.responses.JSONResponse`` and ``error_answer`` answer byte for byte what Starlette's would."""

from __future__ import annotations

import math

import pytest
from starlette.responses import JSONResponse as StarletteJSONResponse

from openepay.web.responses import JSONResponse, error_answer

ANSWERS = [
    {"code": -1, "msg": "签名校验失败，请返回重试！"},
    {"code": 1, "msg": "succ", "trade_no": "2026120400000001", "money": "6.05", "param": None, "data": [1, 2.5, True]},
    {"nested": {"quote": 'a "b" \\ c', "control": "\x01\n", "emoji": "💰"}},
]


@pytest.mark.parametrize("content", ANSWERS)
def test_the_same_bytes_and_headers_as_starlettes(content: object) -> None:
    ours, theirs = JSONResponse(content), StarletteJSONResponse(content)
    assert ours.body == theirs.body
    assert ours.raw_headers == theirs.raw_headers


def test_nan_is_refused_as_starlette_refuses_it() -> None:
    with pytest.raises(ValueError):
        StarletteJSONResponse({"x": math.nan})
    with pytest.raises(ValueError):
        JSONResponse({"x": math.nan})


ERRORS = [(-1, "签名校验失败，请返回重试！"), (-4, "未传入任何参数"), (-1, 'a "b" \\ c\x01💰'), (-5, "No Act!")]


@pytest.mark.parametrize(("code", "msg"), ERRORS)
def test_an_error_answer_is_a_json_answer_each_time_it_is_given(code: int, msg: str) -> None:
    theirs = StarletteJSONResponse({"code": code, "msg": msg})
    for _ in range(2):  # rendered, then remembered
        ours = error_answer(code, msg)
        assert (ours.status_code, ours.body, ours.raw_headers) == (200, theirs.body, theirs.raw_headers)
    assert error_answer(code, msg).raw_headers is not error_answer(code, msg).raw_headers
