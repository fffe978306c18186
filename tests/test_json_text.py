"""``json_text``: the text of ``JSONEncoder.encode`` (so of ``json.dumps``), with the C encoder made once."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from openepay import json_text
from openepay.web.responses import JSONResponse

VALUES: list[Any] = [
    {},
    [],
    {"pay_type": "alipay", "considered": [{"id": None, "outcome": "chosen", "reason": "priority -100"}], "n": 3},
    {"name": 'VIP会员 \u2028 "quoted" \\ \n tab\t', "emoji": "\U0001f600", "lone": "\ud800"},
    {"float": 0.1, "big": 10**30, "neg": -1.5e-300, "bool": True, "false": False, "none": None},
    {1: "int key", 2.5: "float key", False: "bool key", None: "none key"},
    "a bare string 会员",
    12,
    None,
    [[[{"deep": [1, 2, {"er": []}]}]]],
]


@pytest.mark.parametrize("value", VALUES)
def test_same_text_as_json_dumps(value: Any) -> None:
    assert json_text.dumps(value) == json.dumps(value)


@pytest.mark.parametrize("value", VALUES)
def test_same_text_as_the_encoder_with_other_options(value: Any) -> None:
    options = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True)
    if isinstance(value, dict) and any(not isinstance(key, str) for key in value):
        value = {str(key): item for key, item in value.items()}  # sort_keys cannot order mixed keys
    assert json_text.text_encoder(options)(value) == options.encode(value)


def test_the_same_encoder_again_and_again() -> None:
    """Nothing is kept from one value to the next, not even after a value it refused."""
    shared = {"a": [1, 2]}
    for _ in range(3):
        with pytest.raises(TypeError):
            json_text.dumps({"x": shared, "bad": object()})
        assert json_text.dumps({"x": shared, "y": shared}) == '{"x": {"a": [1, 2]}, "y": {"a": [1, 2]}}'


def test_refusals_as_the_encoder_refuses() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_text.dumps({"when": object()})
    strict = json_text.text_encoder(json.JSONEncoder(allow_nan=False))
    with pytest.raises(ValueError):
        strict({"x": math.nan})
    assert json_text.dumps(math.inf) == "Infinity"


def test_indented_options_keep_the_encoders_own_method() -> None:
    options = json.JSONEncoder(indent=2)
    assert json_text.text_encoder(options)({"a": [1]}) == options.encode({"a": [1]})


def test_answers_render_as_starlette_with_the_same_options() -> None:
    answer = {"code": 1, "trade_no": "2026", "msg": "签名校验失败，请返回重试！", "qrcode": "http://x/y?a=1&b=2"}
    expected = json.dumps(answer, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    assert JSONResponse(answer).body == expected.encode("utf-8")
