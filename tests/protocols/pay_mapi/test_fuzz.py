"""Random and malformed requests against ``/pay/mapi.php`` and ``/pay/submit.php`` over real HTTP.

Whatever arrives (odd names, unicode, control characters, broken percent-encoding, big,
multipart or JSON bodies, correctly signed or not, the sandbox's refusing amounts), the gateway
never fails with a 5xx: ``mapi.php`` answers the seed's JSON (code 200 with every field, or a
seed code with its exact message), ``submit.php`` a redirect to the cashier or a page showing a
seed code and message. Neither ever answers the "internal error" that hides a server failure.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.protocols.pay_mapi.support import MAPI, SEED_MESSAGES, SUBMIT, SUCCESS_FIELDS, pay_params, seed_sign

BODY_LIMIT = 1_000_000
INTERNAL = "internal error"
_MESSAGE = re.compile(r'<p class="message" id="message">(.*?)</p>', re.S)

PROTOCOL_NAMES = [
    "pid", "type", "out_trade_no", "notify_url", "return_url", "name", "money", "sitename", "ext", "sign",
    "sign_type", "param", "clientip", "device",
]  # fmt: skip
ODD_NAMES = ["pid[]", "pid[a]", "a.b", "a b", "PID", "签名", "%70id", "p%00id", "\x00", " pid", "pid ", "&", "="]
SPECIAL_VALUES = [
    "", "0", "-1", "00", "1e2", "1.005", " 1", "1 ", "NaN", "inf", "-inf", "0x10", "1,00", "9" * 40, "0.001", "-0",
    "7.02", "7.03", "7.09", "0.01", "1" * 21, ".", "-.", "1..2",
    "http://127.0.0.1/", "http://localhost/n", "ftp://x/", "javascript:alert(1)", "http://169.254.169.254/",
    "http://[::1]/", "http://user:pw@example.com/", "http://example.com:0/", "http://example.com:99999/", "http://[x]/",
    "%zz", "%", "%E4%B8", "\x00", "a\x00b", "\r\n", "\t", "\u202e", "\ufeff", "😀" * 40, "<script>", "' OR 1=1 --",
    "alipay", "wxpay", "qqpay", "WXPAY", "bank", "MD5", "md5", "RSA",
]  # fmt: skip

names = st.one_of(st.sampled_from(PROTOCOL_NAMES), st.sampled_from(ODD_NAMES), st.text(max_size=30))
long_text = st.one_of(
    st.builds(lambda piece, count: piece * count, st.text(min_size=1, max_size=4), st.integers(50, 20_000)),
    st.builds(lambda digit, count: digit * count, st.sampled_from("019"), st.integers(10, 10_000)),
)
short_values = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.text(max_size=60),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Lo", "So"]), max_size=60),
    st.decimals(allow_nan=True, allow_infinity=True, places=3).map(str),
)
values = st.one_of(short_values, long_text)
splinters = st.sampled_from(
    ["\x00", "\x00\x01", "\x7f", "\r\n", "%00", "\uffff", "😀", "\u202e", "'", '"', "\\", "<", "&", "=", "+", "#", "-"]
)
huge_value = st.builds(lambda count: "x" * count, st.integers(100_000, BODY_LIMIT - 100_000))
raw_query = st.lists(
    st.one_of(
        st.sampled_from(["pid=%zz", "pid=", "pid", "%", "%%", "%E4%B8", "%FF%FE", "&&", "==", "pid=1000&pid[]=1", "+"]),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"), max_size=20),
    ),
    max_size=12,
).map(lambda parts: "&".join(parts))


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


@st.composite
def attacks(draw: st.DrawFn) -> Attack:
    shape = draw(st.sampled_from(["query", "form", "multipart", "json", "raw-body", "raw-query", "huge-form"]))
    if shape == "raw-body":
        return Attack(shape, raw=draw(st.one_of(st.binary(max_size=2000), raw_query.map(str.encode))))
    if shape == "raw-query":
        return Attack(shape, raw=draw(raw_query).encode())
    # Values in a URL stay short: servers refuse request lines of many kilobytes before any app sees them.
    some_values = short_values if shape == "query" else values
    # Half of the time a real order, damaged a little and correctly signed, so the fuzzing
    # reaches the value checks, the database and the channel, not just the signature check.
    signed = draw(st.booleans())
    if signed:
        out_trade_no = draw(
            st.one_of(st.sampled_from(["FZ-1", "FZ-2"]), st.from_regex(r"[A-Za-z0-9._\-|]{1,64}", fullmatch=True))
        )
        base = pay_params(0, "https://shop.example.com", out_trade_no)
        base["type"] = draw(st.sampled_from(["alipay", "wxpay", "qqpay", "bank", "", "0", "x" * 40]))
        base["money"] = draw(st.sampled_from(["1.00", "7.02", "7.03", "7.09", "0.01", "0", "100"]))
        if draw(st.booleans()):
            base["ext"] = draw(st.sampled_from(["", "uid=42", "e" * 100, "e" * 101]))
        damage = draw(st.sampled_from(["none", "override", "splice", "splice"]))
        if damage == "none":  # only the choices above: reaches the channel and its refusals
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
        fields = draw(st.dictionaries(names, some_values, max_size=8))
    if shape == "huge-form":
        fields[draw(st.one_of(st.sampled_from(["name", "ext", "sitename"]), names))] = draw(huge_value)
    return Attack(shape, fields=fields, signed=signed)


def send(client: httpx.Client, path: str, attack: Attack, pid: int, key: str) -> httpx.Response:
    fields = dict(attack.fields)
    if attack.sign_with_merchant:
        fields["pid"] = str(pid)
        fields.pop("sign", None)
        fields["sign"] = seed_sign(fields, key)
        fields.setdefault("sign_type", "MD5")
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


def size_limited(response: httpx.Response) -> bool:
    """Only the body size limit may answer outside the dialect, and only for a body over it."""
    if response.status_code != 413:
        return False
    assert len(response.request.content) > BODY_LIMIT
    return True


@FUZZ
@given(attack=attacks())
def test_mapi_always_answers_the_seeds_json(http, merchant, attack):
    response = send(http, MAPI, attack, merchant.pid, merchant.key)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert type(answer["code"]) is int
    event(f"mapi.php code {answer['code']}")
    if answer["code"] == 200:
        assert set(answer) == SUCCESS_FIELDS
        assert answer["msg"] == "success"
        assert re.fullmatch(r"[0-9]+\.[0-9]{2}", answer["money"])
        assert answer["type"] in ("alipay", "qqpay", "wxpay")
        assert answer["payurl"].endswith(f"/cashier/{answer['trade_no']}")
        return
    assert set(answer) <= {"code", "msg", "detail"}
    assert answer["msg"] == SEED_MESSAGES[answer["code"]]
    if "detail" in answer:
        assert isinstance(answer["detail"], str) and answer["detail"]
        assert INTERNAL not in answer["detail"]


@FUZZ
@given(attack=attacks())
def test_submit_always_redirects_or_shows_a_seed_code(http, merchant, attack):
    response = send(http, SUBMIT, attack, merchant.pid, merchant.key)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    event(f"submit.php {response.status_code}")
    if response.status_code == 302:
        assert re.fullmatch(r"/cashier/[0-9]{1,32}", response.headers["location"])
        return
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    match = _MESSAGE.search(response.text)
    assert match, response.text[:500]
    text = html.unescape(match.group(1))
    code, _, rest = text.partition(": ")
    event(f"submit.php code {code}")
    assert rest.startswith(SEED_MESSAGES[int(code)])
    assert INTERNAL not in rest
