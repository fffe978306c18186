"""What an operator reads when a merchant's RSA public key cannot be used: the whole reason, word for word."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from openepay.protocols.epay_v2.signing import KeyFormatError, load_public_key


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pkcs8(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _ec_public() -> str:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda key: "  \n", "the key is empty"),
        (_pkcs8, "this is a private key: give the public key, and keep the private key secret"),
        (lambda key: "hello, world!", "not a PEM public key, nor the base64 body of one"),
        (lambda key: "QUJDREVG", "the key does not parse as a public key"),
        (lambda key: _ec_public(), "the key is not an RSA key (epay V2 signs with SHA256withRSA)"),
    ],
)
def test_an_unusable_key_is_refused_with_its_whole_reason(private_key, make, message):
    with pytest.raises(KeyFormatError) as refused:
        load_public_key(make(private_key))
    assert str(refused.value) == message
