"""Random and malformed requests for a dialect's endpoints, and sending them over real HTTP.

Every dialect is fuzzed alike: odd names, unicode, control characters, broken percent-encoding,
big, multipart or JSON bodies, correctly signed or not. Half of the time or so a request is a
real one, damaged a little and then signed, so the fuzzing gets past the signature check into
validation, storage and the channel. What differs is the dialect's: its names and values, a
valid request to start from, the fields where a huge value hurts most and how its merchants
sign. What the answers must look like stays with each dialect's tests.

Every fuzz test of a run draws from one seed, shown in pytest's header and after a failure:
``OPENEPAY_FUZZ_SEED=<seed> pytest ...`` draws the same requests again.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st

from openepay.web.middleware import MAX_BODY_BYTES as BODY_LIMIT

FUZZ_SEED = int(os.environ.get("OPENEPAY_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
FUZZ_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.large_base_example],
    print_blob=True,
)


def fuzz(**overrides: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A fuzz test's decorator (put it above ``@given``): the shared settings with ``overrides``, and the run's seed."""

    def apply(test: Callable[..., Any]) -> Callable[..., Any]:
        return seed(FUZZ_SEED)(settings(FUZZ_SETTINGS, **overrides)(test))

    return apply


FUZZ = fuzz()


SHAPES = ("query", "form", "multipart", "json", "raw-body", "raw-query", "huge-form")
ODD_NAMES = ["pid[]", "pid[a]", "a.b", "a b", "PID", "签名", "%70id", "p%00id", "\x00", " pid", "pid ", "&", "="]
# Values that trouble any form reader: numbers that are not quite money, URLs no notification may
# go to, broken encodings and control characters, and the pay types, devices and sign types of the
# epay family, which any field may receive.
COMMON_VALUES = [
    "", "0", "-1", "00", "1e2", "1.005", " 1", "1 ", "NaN", "inf", "0x10", "1,00", "9" * 40, "0.001",
    "http://127.0.0.1/", "http://localhost/n", "ftp://x/", "javascript:alert(1)", "http://169.254.169.254/",
    "http://[::1]/", "http://user:pw@example.com/", "http://example.com:0/", "http://example.com:99999/",
    "%zz", "%", "%E4%B8", "\x00", "a\x00b", "\r\n", "\t", "\u202e", "\ufeff", "😀" * 40, "<script>", "' OR 1=1 --",
    "jump", "wechat", "bank", "alipay", "wxpay", "MD5", "RSA",
]  # fmt: skip

long_text = st.one_of(
    st.builds(lambda piece, count: piece * count, st.text(min_size=1, max_size=4), st.integers(50, 20_000)),
    st.builds(lambda digit, count: digit * count, st.sampled_from("019"), st.integers(10, 10_000)),
)
# Spliced into a valid value, these keep most of it valid, so the request reaches the database.
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

# Signs a request's fields for a merchant (the test's fixture: a pid and a key, at least).
Signer = Callable[[dict[str, str], Any], dict[str, str]]


class Attack:
    """One request; a plain class so that a falsifying example prints short, not 900 kB."""

    def __init__(
        self, shape: str, fields: dict[str, str] | None = None, raw: bytes = b"", sign: Signer | None = None
    ) -> None:
        self.shape = shape
        self.fields = fields or {}
        self.raw = raw
        self.sign = sign

    def __repr__(self) -> str:
        shown = {k: (v if len(v) < 200 else f"<{v[:20]!r}... {len(v)} chars>") for k, v in self.fields.items()}
        signed = self.sign.__name__ if self.sign else None
        return f"Attack({self.shape!r}, fields={shown!r}, raw={self.raw[:200]!r}, signed={signed})"


def order_numbers(max_size: int) -> st.SearchStrategy[str]:
    """A merchant's order number: one of two that keep coming back (reuse), or any well-formed one."""
    well_formed = st.from_regex(rf"[A-Za-z0-9._\-|]{{1,{max_size}}}", fullmatch=True)
    return st.one_of(st.sampled_from(["FZ-1", "FZ-2"]), well_formed)


def attacks(
    *,
    names: Sequence[str],
    values: Sequence[str] = (),
    base: st.SearchStrategy[dict[str, str]],
    huge_fields: Sequence[str],
    signers: Sequence[Signer | None],
    shapes: Sequence[str] = SHAPES,
) -> st.SearchStrategy[Attack]:
    """Requests for a dialect with the field ``names`` of its protocol and special ``values`` of its own.

    A request draws one of ``signers`` (repeat one to draw it more often; None sends the request
    unsigned with made-up fields); a signed one starts from a valid request drawn from ``base``,
    left as it is, overridden or spliced with junk. A huge value goes into one of ``huge_fields``
    or any name.
    """
    protocol_names = st.sampled_from(list(names))
    any_name = st.one_of(protocol_names, st.sampled_from(ODD_NAMES), st.text(max_size=30))
    # The dialect's own values come up as often as all the common ones together.
    special_values = [st.sampled_from(COMMON_VALUES), *([st.sampled_from(list(values))] if values else [])]
    short_values = st.one_of(
        *special_values,
        st.text(max_size=60),
        st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Lo", "So"]), max_size=60),
        st.decimals(allow_nan=True, allow_infinity=True, places=3).map(str),
    )
    any_value = st.one_of(short_values, long_text)

    @st.composite
    def attack(draw: st.DrawFn) -> Attack:
        shape = draw(st.sampled_from(list(shapes)))
        if shape == "raw-body":
            return Attack(shape, raw=draw(st.one_of(st.binary(max_size=2000), raw_query.map(str.encode))))
        if shape == "raw-query":
            return Attack(shape, raw=draw(raw_query).encode())
        # Values in a URL stay short: servers refuse request lines of many kilobytes before any app sees them.
        some_values = short_values if shape == "query" else any_value
        sign = draw(st.sampled_from(list(signers)))
        if sign is None:
            fields = draw(st.dictionaries(any_name, some_values, max_size=10))
        else:
            fields = dict(draw(base))
            damage = draw(st.sampled_from(["none", "override", "splice", "splice"]))
            if damage == "override":
                fields.update(draw(st.dictionaries(st.one_of(protocol_names, any_name), some_values, max_size=3)))
            elif damage == "splice":
                for name in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=2)):
                    at = draw(st.integers(0, len(fields[name])))
                    fields[name] = fields[name][:at] + draw(st.one_of(splinters, short_values)) + fields[name][at:]
        if shape == "huge-form":
            fields[draw(st.one_of(st.sampled_from(list(huge_fields)), any_name))] = draw(huge_value)
        return Attack(shape, fields=fields, sign=sign)

    return attack()


def send(
    client: httpx.Client, path: str, attack: Attack, merchant: Any, query: dict[str, str] | None = None
) -> httpx.Response:
    """``attack`` as a request of its shape, signed for ``merchant`` if it is a signed one; ``query`` joins the URL."""
    fields = attack.sign(dict(attack.fields), merchant) if attack.sign else dict(attack.fields)
    query = query or {}
    if attack.shape == "query":
        return client.get(path, params={**fields, **query})
    if attack.shape == "raw-query":
        raw = b"&".join([attack.raw, urlencode(query).encode()]) if query else attack.raw
        return client.get(httpx.URL(client.base_url.join(path), query=raw))
    if attack.shape == "raw-body":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return client.post(path, params=query, content=attack.raw, headers=headers)
    if attack.shape == "multipart":
        return client.post(path, params=query, data=fields, files={"upload": ("a.bin", b"\x00\xff" * 10)})
    if attack.shape == "json":
        headers = {"Content-Type": "application/json"}
        return client.post(path, params=query, content=json.dumps(fields), headers=headers)
    return client.post(path, params=query, data=fields)


def size_limited(response: httpx.Response) -> bool:
    """Whether the body size limit answered: the only answer outside the dialect, and only for a body over it."""
    if response.status_code != 413:
        return False
    assert len(response.request.content) > BODY_LIMIT
    return True


@pytest.fixture
def http(server) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    """A plain client: hypothesis runs a test's examples one after the other, inside the one test."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
