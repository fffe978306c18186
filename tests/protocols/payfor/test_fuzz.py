"""Random and malformed requests against ``/Home/Pay/payFor`` over real HTTP, in both modes.

Whatever arrives (odd names, unicode, control characters, broken percent-encoding, big,
multipart or JSON bodies, correctly keyed or not), the gateway never fails with a 5xx. With
``format=json`` it answers ``{"code": <=0, "msg": ...}`` or a success with its ``data``; in the
browser it answers the error page or the redirect to the cashier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.protocols.epay.test_fuzz import (
    BODY_LIMIT,
    FUZZ,
    ODD_NAMES,
    SPECIAL_VALUES,
    huge_value,
    long_text,
    raw_query,
    short_values,
    splinters,
)
from tests.support.payfor import MESSAGE, PATH, TITLE, merchant_key, payfor_params

BUSY = "系统繁忙，请稍后再试"
PROTOCOL_NAMES = [
    "uid", "price", "type", "notify_url", "return_url", "order_id", "order_uid", "order_name", "key",
    "format", "token", "sign",
]  # fmt: skip
PAYFOR_VALUES = ["1", "2", "3", "json", "JSON", "9.90", "9.9", "7.02", "7.03", "7.09", "0.01", "A20240101001"]
DATA_FIELDS = {"pay_num", "qrcode", "payurl", "price", "realprice", "type", "expire_time"}

names = st.one_of(st.sampled_from(PROTOCOL_NAMES), st.sampled_from(ODD_NAMES), st.text(max_size=30))
small = st.one_of(short_values, st.sampled_from(PAYFOR_VALUES), st.sampled_from(SPECIAL_VALUES))
values = st.one_of(small, long_text)


class Attack:
    """One request; a plain class so that a falsifying example prints short, not 900 kB."""

    def __init__(self, shape: str, fields: dict[str, str] | None = None, raw: bytes = b"", keyed: bool = False):
        self.shape = shape
        self.fields = fields or {}
        self.raw = raw
        self.keyed = keyed

    def __repr__(self) -> str:
        shown = {k: (v if len(v) < 200 else f"<{v[:20]!r}... {len(v)} chars>") for k, v in self.fields.items()}
        return f"Attack({self.shape!r}, fields={shown!r}, raw={self.raw[:200]!r}, keyed={self.keyed})"


@st.composite
def attacks(draw: st.DrawFn) -> Attack:
    shape = draw(st.sampled_from(["query", "form", "multipart", "json", "raw-body", "raw-query", "huge-form"]))
    if shape == "raw-body":
        raw = draw(st.one_of(st.binary(max_size=2000), raw_query.map(str.encode)))
        return Attack(shape, raw=raw)
    if shape == "raw-query":
        return Attack(shape, raw=draw(raw_query).encode())
    some_values = small if shape == "query" else values
    # Half of the time a real order, damaged a little and correctly keyed, so that the fuzzing
    # reaches validation, storage and the channel, not just the key check.
    keyed = draw(st.booleans())
    if keyed:
        order_id = draw(
            st.one_of(st.sampled_from(["FZ-1", "FZ-2"]), st.from_regex(r"[A-Za-z0-9._\-|]{1,50}", fullmatch=True))
        )
        base = payfor_params(0, "https://shop.example.com", order_id)
        base["type"] = draw(st.sampled_from(["1", "2", "1", "2", "", "3"]))
        base["price"] = draw(st.sampled_from(["9.90", "9.9", "10", "0.01", "7.02", "7.03", "7.09", "1.005"]))
        damage = draw(st.sampled_from(["none", "override", "splice", "splice"]))
        if damage == "none":
            fields = base
        elif damage == "override":
            override_names = st.one_of(st.sampled_from(PROTOCOL_NAMES), names)
            fields = {**base, **draw(st.dictionaries(override_names, some_values, max_size=3))}
        else:  # splice junk into valid values: mostly still valid, so it reaches the database
            fields = dict(base)
            for name in draw(st.lists(st.sampled_from(sorted(base)), min_size=1, max_size=2)):
                at = draw(st.integers(0, len(fields[name])))
                fields[name] = fields[name][:at] + draw(st.one_of(splinters, short_values)) + fields[name][at:]
    else:
        fields = draw(st.dictionaries(names, some_values, max_size=10))
    if shape == "huge-form":
        fields[draw(st.one_of(st.sampled_from(["order_name", "order_uid", "notify_url"]), names))] = draw(huge_value)
    return Attack(shape, fields=fields, keyed=keyed)


def send(client: httpx.Client, attack: Attack, as_json: bool, pid: int, token: str) -> httpx.Response:
    fields = dict(attack.fields)
    if attack.keyed:
        fields["uid"] = str(pid)
        fields.pop("key", None)
        fields["key"] = merchant_key(fields, token)
    mode = {"format": "json"} if as_json else {}
    if attack.shape == "query":
        return client.get(PATH, params={**fields, **mode})
    if attack.shape in ("form", "huge-form"):
        return client.post(PATH, params=mode, data=fields)
    if attack.shape == "multipart":
        return client.post(PATH, params=mode, data=fields, files={"upload": ("a.bin", b"\x00\xff" * 10)})
    if attack.shape == "json":
        headers = {"Content-Type": "application/json"}
        return client.post(PATH, params=mode, content=json.dumps(fields), headers=headers)
    if attack.shape == "raw-body":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return client.post(PATH, params=mode, content=attack.raw, headers=headers)
    query = attack.raw + (b"&format=json" if as_json else b"")
    return client.get(httpx.URL(client.base_url.join(PATH), query=query))


def asked_for_json(attack: Attack, as_json: bool) -> bool:
    if as_json:
        return True
    if attack.shape in ("raw-body", "raw-query", "json"):
        return False
    return attack.fields.get("format", "").strip().lower() == "json"


@pytest.fixture
def http(server) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@FUZZ
@given(attack=attacks(), as_json=st.booleans())
def test_pay_for_answers_in_its_own_shape(http, merchant, attack, as_json):
    response = send(http, attack, as_json, merchant.pid, merchant.key)
    assert response.status_code < 500, response.text[:500]
    if response.status_code == 413:  # only the size limit may answer otherwise
        assert len(response.request.content) > BODY_LIMIT
        return
    if asked_for_json(attack, as_json):
        assert response.status_code == 200, response.text[:500]
        assert response.headers["content-type"].startswith("application/json")
        answer = response.json()
        assert type(answer["code"]) is int
        event(f"json code {answer['code']}")
        if answer["code"] == 1:
            assert set(answer) == {"code", "msg", "data"} and set(answer["data"]) == DATA_FIELDS
            assert answer["data"]["type"] in (1, 2)
        else:
            assert set(answer) == {"code", "msg"}
            assert answer["code"] in (0, -1, -2, -3, -4, -5)
            assert isinstance(answer["msg"], str) and answer["msg"] and answer["msg"] != BUSY
        return
    event(f"browser {response.status_code}")
    if response.status_code == 303:
        assert response.headers["location"].startswith("/cashier/")
        return
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert TITLE.findall(response.text) == ["支付失败"]
    [message] = MESSAGE.findall(response.text)
    assert message.strip() and message != BUSY
