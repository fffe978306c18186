"""``parse_query`` reads a form or query string as PHP's ``parse_str`` does, however it is escaped.

It unquotes the whole string at once when no ``&`` or ``=`` is escaped (through Python's
``unicode_escape`` codec when every ``%`` starts an escape), and part by part otherwise; all must
give what reading each name and value on its own gives (below, the rule written out plainly),
whatever the escapes, backslashes, broken UTF-8 and separators in the string.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from openepay.protocols.params import UnreadableParameter, parse_query

# Separators, escapes of them and of UTF-8 (whole and cut), broken escapes, raw UTF-8 and Latin-1.
PIECES = ["a", "b", "=", "&", "+", "%", "%2", "%26", "%3D", "%3d", "%2B", "%41", "%E5%8E%8B", "%E5", "%8B", "%zz"]
# What ``unicode_escape`` would read as escapes of its own, were backslashes not doubled.
PIECES += ["\\", "\\x41", "\\u0041", "\\N{DIGIT ONE}", "\\n", "%5C", "%5Cx41", "x", "N", "u"]
RAW = [b"\xe5\x8e\x8b", b"\xe5", b"\xff"]


def read_each_part(raw: bytes) -> dict[str, str]:
    """PHP's rule, one pair at a time: ``+`` is a space, each name and value unquoted and read as UTF-8."""
    params = {}
    for pair in raw.replace(b"+", b" ").split(b"&"):
        name, _, value = pair.partition(b"=")
        if name:
            params[unquote_to_bytes(name).decode("utf-8", "replace")] = unquote_to_bytes(value).decode(
                "utf-8", "replace"
            )
    return params


@given(st.lists(st.sampled_from(PIECES).map(str.encode) | st.sampled_from(RAW), max_size=24).map(b"".join))
@example(b"pid=1001&notify_url=http%3A%2F%2F127.0.0.1%3A9%2Fnotify&name=%E5%8E%8B%E6%B5%8B")
@example(b"name=a%26b%3Dc&x=%E5&%8B=1")
@example(b"a=%2&6b=%3&D")
@example(b"name=%E5%8E%8B&sign=\\%41\\x41%5Cx41\\u0041")
def test_every_escaping_reads_as_each_part_read_on_its_own(raw: bytes) -> None:
    assert parse_query(raw) == read_each_part(raw)


@pytest.mark.parametrize(
    ("raw", "params"),
    [
        (
            b"pid=1001&name=%E5%8E%8B%E6%B5%8B&url=http%3A%2F%2Fshop.example%2Fn",
            {"pid": "1001", "name": "压测", "url": "http://shop.example/n"},
        ),
        # An escaped ``&`` or ``=`` belongs to its value, however the rest is escaped.
        (b"param=a%3Db%26c%3dd&name=%E5%8E%8B", {"param": "a=b&c=d", "name": "压"}),
        (b"param=a%26b&money=1.00", {"param": "a&b", "money": "1.00"}),
        # ``+`` is a space, ``%2B`` a plus; the last of a name wins; a pair without a name is dropped.
        (b"name=a+b%2Bc&name=last&=lost&flag", {"name": "last", "flag": ""}),
        # A broken UTF-8 sequence ends with its value: the next parameter is read whole.
        (b"name=%E5%8E&pid=1001", {"name": "\ufffd", "pid": "1001"}),
        (b"name=\xe5\x8e&pid=%31001", {"name": "\ufffd", "pid": "1001"}),
        # Escapes that are not escapes stay as written.
        (b"a=100%&b=%zz&c=%2", {"a": "100%", "b": "%zz", "c": "%2"}),
    ],
)
def test_each_parameter_is_read_as_php_reads_it(raw: bytes, params: dict[str, str]) -> None:
    assert parse_query(raw) == params


@pytest.mark.parametrize("raw", [b"pid=1001&name=a%00b", b"pid=1001&name=a\x00b&url=http%3A%2F%2Fx"])
def test_a_nul_byte_escaped_or_not_is_refused(raw: bytes) -> None:
    with pytest.raises(UnreadableParameter) as refused:
        parse_query(raw)
    assert refused.value.name == "name"
