from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openepay.core.money import MAX_AMOUNT_FEN, MAX_STORED_FEN, MoneyError, format_yuan, parse_yuan, yuan_to_fen


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


ABSURD = ["1e30", "9" * 30, "9" * 20, "99999999999999999.99", "10000000000000.01", "0x7fffffffffffffff", "1" * 1000]


@given(
    st.one_of(
        st.text(max_size=40),
        st.from_regex(r"[0-9]{0,30}(\.[0-9]{0,4})?", fullmatch=True),
        st.sampled_from(ABSURD),
    )
)
def test_any_text_is_an_amount_a_fen_column_holds_or_a_money_error(text):
    """Whatever a merchant sends: a positive whole number of fen far below 2**63, or ``MoneyError``."""
    try:
        fen = parse_yuan(text)
    except MoneyError:
        return
    assert type(fen) is int
    assert 1 <= fen <= MAX_AMOUNT_FEN < MAX_STORED_FEN // 1000
    assert parse_yuan(format_yuan(fen)) == fen


@pytest.mark.parametrize("text", ABSURD)
def test_absurd_amounts_are_refused(text):
    with pytest.raises(MoneyError):
        parse_yuan(text)


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_FEN))
def test_every_amount_up_to_the_cap_round_trips(fen):
    assert parse_yuan(format_yuan(fen)) == fen


@given(st.integers(min_value=MAX_AMOUNT_FEN + 1, max_value=10**20 - 1))
def test_no_amount_past_the_cap_parses(fen):
    with pytest.raises(MoneyError):
        parse_yuan(format_yuan(fen))
