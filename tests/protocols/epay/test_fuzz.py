"""Random and malformed requests against ``submit.php`` and ``mapi.php`` over real HTTP.

Whatever arrives (odd names, unicode, control characters, broken percent-encoding, big,
multipart or JSON bodies, correctly signed or not), the gateway never fails with a 5xx;
``mapi.php`` always answers JSON with an integer ``code`` (and a ``msg`` when it is not a
success) and ``submit.php`` always answers HTML or its redirect to the cashier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support.epay import order_params
from tests.support.merchant import plugin_sign

BODY_LIMIT = 1_000_000
SERVER_TROUBLE = "系统繁忙，请稍后再试"

PROTOCOL_NAMES = [
    "pid", "type", "out_trade_no", "notify_url", "return_url", "name", "money", "param", "sign",
    "sign_type", "clientip", "device", "sitename", "cid", "channel_id", "__defend",
]  # fmt: skip
ODD_NAMES = ["pid[]", "pid[a]", "a.b", "a b", "PID", "签名", "%70id", "p%00id", "\x00", " pid", "pid ", "&", "="]
SPECIAL_VALUES = [
    "", "0", "-1", "00", "1e2", "1.005", " 1", "1 ", "NaN", "inf", "0x10", "1,00", "9" * 40, "0.001",
    "http://127.0.0.1/", "http://localhost/n", "ftp://x/", "javascript:alert(1)", "http://169.254.169.254/",
    "http://[::1]/", "http://user:pw@example.com/", "http://example.com:0/", "http://example.com:99999/",
    "%zz", "%", "%E4%B8", "\x00", "a\x00b", "\r\n", "\t", "\u202e", "\ufeff", "😀" * 40, "<script>", "' OR 1=1 --",
    "jump", "wechat", "bank", "alipay", "wxpay", "MD5", "RSA",
]  # fmt: skip

names = st.one_of(st.sampled_from(PROTOCOL_NAMES), st.sampled_from(ODD_NAMES), st.text(max_size=30))
long_text = st.one_of(
    st.builds(lambda piece, count: piece * count, st.text(min_size=1, max_size=4), st.integers(500, 20_000)),
    st.builds(lambda digit, count: digit * count, st.sampled_from("019"), st.integers(10, 10_000)),
)
short_values = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.text(max_size=60),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Lo", "So"]), max_size=60),
)
values = st.one_of(short_values, long_text)
splinters = st.sampled_from(
    ["\x00", "\x00\x01", "\x7f", "\r\n", "%00", "\uffff", "😀", "\u202e", "'", '"', "\\", "<", "&", "=", "+", "#"]
)
huge_value = st.builds(lambda count: "x" * count, st.integers(100_000, BODY_LIMIT - 100_000))


class Attack:
    """One request; a plain class so that a falsifying example prints short, not 900 kB."""

    def __init__(self, shape: str, fields: dict[str, str] | None = None, raw: bytes = b"", signed: bool = False):
        self.shape = shape
        self.fields = fields or {}
        self.raw = raw
        self.sign_with_merchant = signed

    def __repr__(self) -> str:
        shown = {k: (v if len(v) < 200 else f"<{v[:20]!r}... {len(v)} chars>") for k, v in self.fields.items()}
        return f"Attack({self.shape!r}, fields={shown!r}, raw={self.raw[:200]!r}, signed={self.sign_with_merchant})"


raw_query = st.lists(
    st.one_of(
        st.sampled_from(["pid=%zz", "pid=", "pid", "%", "%%", "%E4%B8", "%FF%FE", "&&", "==", "pid=1000&pid[]=1", "+"]),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"), max_size=20),
    ),
    max_size=12,
).map(lambda parts: "&".join(parts))


@st.composite
def attacks(draw: st.DrawFn) -> Attack:
    shape = draw(st.sampled_from(["query", "form", "multipart", "json", "raw-body", "raw-query", "huge-form"]))
    if shape == "raw-body":
        raw = draw(st.one_of(st.binary(max_size=2000), raw_query.map(str.encode)))
        return Attack(shape, raw=raw)
    if shape == "raw-query":
        return Attack(shape, raw=draw(raw_query).encode())
    # Values in a URL stay short: servers refuse request lines of many kilobytes before any app sees them.
    some_values = short_values if shape == "query" else values
    # Half of the time the request is a real order, damaged a little and correctly signed, so
    # the fuzzing reaches validation, storage and the channel, not just the signature check.
    signed = draw(st.booleans())
    if signed:
        out_trade_no = draw(
            st.one_of(st.sampled_from(["FZ-1", "FZ-2"]), st.from_regex(r"[A-Za-z0-9._\-|]{1,64}", fullmatch=True))
        )
        base = order_params(0, "https://shop.example.com", out_trade_no, clientip="203.0.113.9")
        base["type"] = draw(st.sampled_from(["alipay", "wxpay", "qqpay", "bank", "", "0", "x" * 40]))
        if draw(st.sampled_from(["override", "splice", "splice"])) == "override":
            override_names = st.one_of(st.sampled_from(PROTOCOL_NAMES), names)
            fields = {**base, **draw(st.dictionaries(override_names, some_values, max_size=3))}
        else:  # splice junk into valid values: mostly still valid, so it reaches the database
            fields = dict(base)
            for name in draw(st.lists(st.sampled_from(sorted(base)), min_size=1, max_size=2)):
                at = draw(st.integers(0, len(fields[name])))
                fields[name] = fields[name][:at] + draw(st.one_of(splinters, short_values)) + fields[name][at:]
    else:
        fields = draw(st.dictionaries(names, some_values, max_size=8))
    if shape == "huge-form":
        fields[draw(st.one_of(st.sampled_from(["name", "param", "sitename"]), names))] = draw(huge_value)
    return Attack(shape, fields=fields, signed=signed)


def send(client: httpx.Client, path: str, attack: Attack, pid: int, key: str) -> httpx.Response:
    fields = dict(attack.fields)
    if attack.sign_with_merchant:
        fields["pid"] = str(pid)
        fields.pop("sign", None)
        fields["sign"] = plugin_sign(fields, key)
        fields["sign_type"] = "MD5"
    if attack.shape == "query":
        return client.get(path, params=fields)
    if attack.shape in ("form", "huge-form"):
        return client.post(path, data=fields)
    if attack.shape == "multipart":
        return client.post(path, data=fields, files={"upload": ("a.bin", b"\x00\xff" * 10)})
    if attack.shape == "json":
        return client.post(path, content=json.dumps(fields), headers={"Content-Type": "application/json"})
    if attack.shape == "raw-body":
        return client.post(path, content=attack.raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
    return client.get(httpx.URL(client.base_url.join(path), query=attack.raw))


FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.large_base_example],
)


@pytest.fixture
def http(server) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@FUZZ
@given(attack=attacks())
def test_mapi_always_answers_json_with_an_integer_code(http, merchant, attack):
    response = send(http, "/mapi.php", attack, merchant.pid, merchant.key)
    assert response.status_code < 500, response.text[:500]
    if response.status_code == 413:  # only the size limit may answer otherwise
        assert len(response.request.content) > BODY_LIMIT
        return
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert type(answer["code"]) is int
    event(f"mapi.php code {answer['code']}")
    if answer["code"] == 1:
        assert isinstance(answer["trade_no"], str) and "msg" not in answer
        assert len({"payurl", "qrcode", "urlscheme"} & set(answer)) == 1
    else:
        assert answer["code"] in (-1, -2, -3, -4)
        assert isinstance(answer["msg"], str) and answer["msg"]
        # What mapi.php answers when something inside failed: a server error in disguise.
        assert answer["msg"] != SERVER_TROUBLE


@FUZZ
@given(attack=attacks())
def test_submit_always_answers_html(http, merchant, attack):
    response = send(http, "/submit.php", attack, merchant.pid, merchant.key)
    assert response.status_code < 500, response.text[:500]
    if response.status_code == 413:
        assert len(response.request.content) > BODY_LIMIT
        return
    event(f"submit.php {response.status_code}")
    if response.status_code == 302:
        assert response.headers["location"].startswith("/cashier/")
        return
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.strip()
