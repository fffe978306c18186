from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openepay.core.money import MoneyError, format_yuan, parse_yuan, yuan_to_fen


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1.00", 100),
        ("10", 1000),
        ("19.9", 1990),
        (".5", 50),
        ("0.01", 1),
        ("1.", 100),
        ("1.000", 100),
        ("99999999.99", 9999999999),
    ],
)
def test_amounts_merchants_send(text, fen):
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "0",
        "0.00",
        "0.001",
        "1.005",
        "-1",
        "+1",
        "1e2",
        "1E2",
        " 1",
        "1 ",
        "1,00",
        "abc",
        "1.2.3",
        "１",
        "NaN",
        "inf",
        "9" * 21,
        "1.00\n",
    ],
)
def test_what_is_not_an_amount(text):
    with pytest.raises(MoneyError):
        parse_yuan(text)


@pytest.mark.parametrize(("fen", "text"), [(1, "0.01"), (100, "1.00"), (1250, "12.50"), (0, "0.00"), (-5, "-0.05")])
def test_format_always_two_decimals(fen, text):
    assert format_yuan(fen) == text


@given(st.integers(min_value=1, max_value=10**12))
def test_format_and_parse_round_trip(fen):
    assert parse_yuan(format_yuan(fen)) == fen


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2))
def test_parse_agrees_with_decimal(value):
    assert parse_yuan(str(value)) == int(value * 100)


def test_configured_limits_in_fen():
    assert yuan_to_fen(Decimal("0.01")) == 1
    assert yuan_to_fen(Decimal("500")) == 50000
