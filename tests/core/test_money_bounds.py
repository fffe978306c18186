"""The edges of what ``parse_yuan`` takes: the longest text and the largest amount are amounts, one past is not."""

import pytest

from openepay.core.money import MAX_AMOUNT_FEN, MAX_MONEY_CHARS, MoneyError, format_yuan, parse_yuan


def test_an_amount_written_in_the_longest_text_allowed_is_taken():
    text = "1.00".rjust(MAX_MONEY_CHARS, "0")
    assert len(text) == 20
    assert parse_yuan(text) == 100
    with pytest.raises(MoneyError, match="not a yuan amount"):
        parse_yuan("0" + text)


def test_the_largest_amount_is_taken_and_one_fen_more_is_too_large():
    assert parse_yuan(format_yuan(MAX_AMOUNT_FEN)) == MAX_AMOUNT_FEN
    with pytest.raises(MoneyError, match="too large"):
        parse_yuan(format_yuan(MAX_AMOUNT_FEN + 1))


@pytest.mark.parametrize(
    ("text", "reason"),
    [("0", "not positive"), ("1.001", "finer than one fen"), ("x", "not a yuan"), (".", "not a yuan amount: '.'")],
)
def test_a_refused_amount_says_why(text, reason):
    with pytest.raises(MoneyError, match=reason):
        parse_yuan(text)
