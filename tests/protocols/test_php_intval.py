"""``php_intval`` reads a number as PHP's ``intval`` reads a request string.

A text of ASCII digits only (a ``pid``, nearly always) is read without the pattern; both ways
must give what the rule written out below gives, whatever the zeros, signs, spaces and digits
of other scripts.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from openepay.protocols.params import php_intval

LEADING_INTEGER = re.compile(r"[ \t\n\r\v\f]*([+-]?)0*([0-9]+)")


def read_by_rule(text: str | None) -> int:
    """Leading whitespace, a sign, then ASCII digits; 0 for none, and for anything outside a 32-bit int."""
    match = LEADING_INTEGER.match(text or "")
    if match is None or len(match.group(2)) > 10:
        return 0
    value = int(match.group(1) + match.group(2))
    return value if -(2**31) <= value < 2**31 else 0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1001", 1001),
        ("0", 0),
        ("000", 0),
        ("0012", 12),
        ("2147483647", 2**31 - 1),
        ("2147483648", 0),
        ("00000000002147483647", 2**31 - 1),
        ("99999999999", 0),
        ("1001abc", 1001),
        (" -12", -12),
        ("+5", 5),
        ("", 0),
        (None, 0),
        ("x", 0),
        ("٣", 0),
        ("1٣", 1),
        ("²", 0),
    ],
)
def test_known_readings(text: str | None, value: int) -> None:
    assert php_intval(text) == value == read_by_rule(text)


@given(st.text(alphabet=st.sampled_from("0123456789 +-x٣²\t"), max_size=24))
@example("0" * 30 + "1")
def test_every_text_reads_as_the_rule_says(text: str) -> None:
    assert php_intval(text) == read_by_rule(text)
