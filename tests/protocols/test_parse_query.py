"""``parse_query``: a form or query string read as PHP's ``parse_str`` reads it, whichever way it was escaped."""

from __future__ import annotations

import pytest

from openepay.protocols.params import UnreadableParameter, parse_query


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
