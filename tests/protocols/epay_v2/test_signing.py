"""The V2 sign content and RSA signatures, checked against the reference notes and ``cryptography`` itself."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from openepay.protocols.epay_v2.signing import (
    KeyFormatError,
    bare_base64,
    load_public_key,
    public_pem,
    rsa_sign,
    rsa_verify,
    sign_content,
    signature_bytes,
)
from tests.support.epay_v2 import pem_of, rsa_signature, signature_valid

# §6.2 of the epay reference: the content a pay/create request signs.
CREATE_EXAMPLE = {
    "pid": "1001",
    "method": "web",
    "device": "pc",
    "type": "alipay",
    "out_trade_no": "20240717100000001",
    "notify_url": "https://shop.example.com/notify",
    "return_url": "https://shop.example.com/return",
    "name": "VIP会员",
    "money": "1.00",
    "clientip": "192.168.1.100",
    "param": "",
    "timestamp": "1721206072",
    "sign": "anything",
    "sign_type": "RSA",
}
CREATE_EXAMPLE_CONTENT = (
    "clientip=192.168.1.100&device=pc&method=web&money=1.00&name=VIP会员"
    "&notify_url=https://shop.example.com/notify&out_trade_no=20240717100000001&pid=1001"
    "&return_url=https://shop.example.com/return&timestamp=1721206072&type=alipay"
)


@pytest.fixture(scope="module")
def key_pair() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_reference_example_content():
    assert sign_content(CREATE_EXAMPLE) == CREATE_EXAMPLE_CONTENT


def test_our_signature_verifies_with_cryptography_directly(key_pair):
    sign = rsa_sign(key_pair, CREATE_EXAMPLE)
    key_pair.public_key().verify(
        base64.b64decode(sign, validate=True), CREATE_EXAMPLE_CONTENT.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    # PKCS#1 v1.5 is deterministic: the same content signs to the same text, whoever signs it.
    assert sign == rsa_signature(key_pair, CREATE_EXAMPLE_CONTENT)


def test_a_signature_made_with_cryptography_is_accepted(key_pair):
    sign = base64.b64encode(
        key_pair.sign(CREATE_EXAMPLE_CONTENT.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()
    assert rsa_verify(key_pair.public_key(), CREATE_EXAMPLE, sign)
    # Sent in a URL without encoding, its "+" arrive as spaces; that is read back.
    assert "+" not in sign or rsa_verify(key_pair.public_key(), CREATE_EXAMPLE, sign.replace("+", " "))


@pytest.mark.parametrize(
    "tamper",
    [
        {"money": "1.01"},
        {"extra": "x"},
        {"timestamp": "1721206073"},
        {"name": "VIP会员 "},
    ],
)
def test_any_change_to_a_signed_field_is_refused(key_pair, tamper):
    sign = rsa_signature(key_pair, CREATE_EXAMPLE_CONTENT)
    assert not rsa_verify(key_pair.public_key(), {**CREATE_EXAMPLE, **tamper}, sign)


@pytest.mark.parametrize("sign", ["", "not base64!", "签名", "QUJD", "=" * 344])
def test_garbage_signatures_are_refused(key_pair, sign):
    assert not rsa_verify(key_pair.public_key(), CREATE_EXAMPLE, sign)


def test_a_signature_has_one_spelling_and_a_plus_may_arrive_as_a_space():
    assert signature_bytes("QUJD") == b"ABC"
    assert signature_bytes("QQ==") == b"A"
    assert signature_bytes("+/+/") == signature_bytes(" / /") == bytes.fromhex("fbffbf")
    for respelled in ("QQ", "QQ===", "QR==", "QQ==\n", "QQ==QUJD", "Q Q==\n", "QQ==!", "Q.Q=", "-_-_", "ＱＱ=="):
        assert signature_bytes(respelled) is None, respelled


def test_another_keys_signature_is_refused(key_pair):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not rsa_verify(key_pair.public_key(), CREATE_EXAMPLE, rsa_signature(other, CREATE_EXAMPLE_CONTENT))


def test_content_rules_of_rainbows_get_sign_content():
    fields = {
        "b": 0,
        "a": 12,
        "zero": "0",
        "blank": " \t\r\n",
        "nul": "\x00",
        "ideographic_space": "\u3000",
        "none": None,
        "data": [{"x": 1}],
        "obj": {"k": "v"},
        "sign": "s",
        "sign_type": "RSA",
        "Upper": "U",
        "_under": "u",
    }
    # Byte order: upper case, then "_", then lower case; PHP's trim() keeps U+3000.
    assert sign_content(fields) == "Upper=U&_under=u&a=12&b=0&ideographic_space=\u3000&zero=0"


def test_booleans_are_refused_rather_than_guessed():
    with pytest.raises(TypeError):
        sign_content({"flag": True})


def _spki_body(key: rsa.RSAPublicKey) -> str:
    return bare_base64(pem_of(key))


def test_public_keys_in_every_form_merchants_paste(key_pair):
    public = key_pair.public_key()
    pkcs1_pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    pkcs1_body = "".join(pkcs1_pem.strip().splitlines()[1:-1])
    spki_body = _spki_body(public)
    wrapped_body = "\n".join(spki_body[i : i + 76] for i in range(0, len(spki_body), 76))
    for text in (pem_of(public), pkcs1_pem, spki_body, wrapped_body, f"  {spki_body}\n", pkcs1_body):
        loaded = load_public_key(text)
        assert loaded.public_numbers() == public.public_numbers()
        assert public_pem(loaded) == pem_of(public)
    assert spki_body.startswith("MIIBIjAN") and "\n" not in spki_body


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda k: "", "empty"),
        (lambda k: "hello, world!", "not a PEM"),
        (lambda k: "QUJDREVG", "does not parse"),
        (lambda k: pem_of(k.public_key()).replace("MIIB", "MIIC"), "does not parse"),
        (
            lambda k: k.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            "private key",
        ),
        (
            lambda k: (
                ec.generate_private_key(ec.SECP256R1())
                .public_key()
                .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                .decode()
            ),
            "not an RSA key",
        ),
        (lambda k: pem_of(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()), "1024 bits"),
    ],
)
def test_keys_that_are_not_usable_are_refused_with_a_reason(key_pair, make, message):
    with pytest.raises(KeyFormatError, match=message):
        load_public_key(make(key_pair))


def test_signature_valid_helper_is_not_trivially_true(key_pair):
    """The tests' own verifier must be able to say no."""
    good = rsa_signature(key_pair, "a=1")
    assert signature_valid(key_pair.public_key(), "a=1", good)
    assert not signature_valid(key_pair.public_key(), "a=2", good)
