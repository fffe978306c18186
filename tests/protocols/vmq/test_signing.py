"""The §7.4 V免签 vectors, computed by the gateway's signing code and by the merchant's side alike."""

from __future__ import annotations

import pytest

from openepay.protocols.vmq.signing import close_sign, create_sign, matches, notify_sign
from tests.support import vmq as merchant_side
from tests.support.vmq import VECTOR_KEY

CREATE_VECTORS = [
    ({"payId": "A20240101001", "param": "uid=42", "type": "1", "price": "9.90"}, "cf8e422f418ab014b2832bdc1d6df0b2"),
    ({"payId": "A20240101001", "type": "1", "price": "9.9"}, "1f621f247b4982b0e6efddbd8f0e1b2b"),
]
NOTIFY_VECTORS = [
    # PHP appPush renders the stored price as 9.9, checkOrder as 9.90: two strings, two signatures.
    ("9.9", "b6a6bd789d85d06d65bba68863039f73"),
    ("9.90", "fff77198dabc012aa2c2e677724dbe38"),
]


@pytest.mark.parametrize("params, expected", CREATE_VECTORS, ids=["with-param", "without-param"])
def test_create_order_vectors(params, expected):
    assert (
        create_sign(params["payId"], params.get("param", ""), params["type"], params["price"], VECTOR_KEY) == expected
    )
    assert merchant_side.create_sign(params, VECTOR_KEY) == expected


@pytest.mark.parametrize("price, expected", NOTIFY_VECTORS, ids=["price-9.9", "price-9.90"])
def test_notify_vectors(price, expected):
    fields = {"payId": "A20240101001", "param": "uid=42", "type": "1", "price": price, "reallyPrice": "9.91"}
    assert notify_sign(*fields.values(), VECTOR_KEY) == expected
    assert merchant_side.notify_sign(fields, VECTOR_KEY) == expected


def test_close_order_vector():
    assert close_sign("202401011200000001", VECTOR_KEY) == "a3d329ef0cb10d92c67ee48cc9371b18"
    assert merchant_side.close_sign("202401011200000001", VECTOR_KEY) == "a3d329ef0cb10d92c67ee48cc9371b18"


def test_signatures_compare_in_either_case_and_nothing_else():
    expected = "cf8e422f418ab014b2832bdc1d6df0b2"
    assert matches(expected, expected) and matches(expected, expected.upper())
    assert not matches(expected, expected[:-1])
    assert not matches(expected, "")
    assert not matches(expected, "ｃ" + expected[1:])  # a full-width letter is not hex
