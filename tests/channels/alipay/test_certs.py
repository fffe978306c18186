"""Certificate mode's serial numbers, as Alipay's SDKs compute them."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openepay.channels.alipay.certs import cert_sn, root_cert_sn
from tests.support.fake_alipay import make_certificate, new_key


def test_an_issuer_with_a_comma_in_a_value_is_written_as_the_sdks_write_it():
    issuer = {
        "CN": "iTrusChina Class 2 Root CA - G3",
        "OU": "China Trust Network",
        "O": "iTrusChina Co.,Ltd.",
        "C": "CN",
    }
    key = new_key()
    cert = make_certificate(issuer, key, issuer, key, 123456789, hashes.SHA256())
    expected = "CN=iTrusChina Class 2 Root CA - G3,OU=China Trust Network,O=iTrusChina Co.,Ltd.,C=CN123456789"
    assert cert_sn(cert) == hashlib.md5(expected.encode()).hexdigest()


def test_only_the_rsa_signed_roots_make_the_root_sn():
    names = [{"CN": f"Root {n}", "OU": "Certification Authority", "O": "Ant Financial", "C": "CN"} for n in (1, 2)]
    rsa_key, ec_key = new_key(), ec.generate_private_key(ec.SECP256R1())
    rsa_root = make_certificate(names[0], rsa_key, names[0], rsa_key, 11, hashes.SHA256())
    ec_root = make_certificate(names[1], ec_key, names[1], ec_key, 22, hashes.SHA256())
    bundle = "".join(cert.public_bytes(serialization.Encoding.PEM).decode() for cert in (ec_root, rsa_root))
    assert root_cert_sn(bundle) == cert_sn(rsa_root)
    with pytest.raises(ValueError, match="no RSA-signed root"):
        root_cert_sn(ec_root.public_bytes(serialization.Encoding.PEM).decode())
