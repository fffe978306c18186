"""Certificate mode's serial numbers, as Alipay's SDKs compute them."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openepay.channels.alipay.certs import cert_sn, root_cert_sn
from tests.support.fake_alipay import make_certificate, new_key


def test_the_issuer_is_written_as_javas_x500principal_get_name_writes_it():
    """Alipay's own SDK, the Java one, computes a certificate's SN as
    ``md5(cert.getIssuerX500Principal().getName() + cert.getSerialNumber())``
    (alipay/alipay-sdk-java-all ``AlipaySignature.getCertSN`` and
    ``AntCertificationUtil.getRootCertSN``). ``getName()`` is the JDK's RFC 2253 form
    (``sun.security.x509.AVA.toRFC2253String``): RDNs most specific first joined by ``,``, the
    attributes of one RDN by ``+``; CN, C, L, ST, O, OU, STREET, DC and UID by keyword, any other
    type as its OID with ``#`` and the DER of the value in lowercase hex; in a text value each of
    ``, = + < > # ; " \\`` and every leading or trailing space is preceded by a backslash. The
    expected string below is written out by hand from that rule (the PHP SDK, which escapes
    nothing, would give ``O=Ant, Co.+Ltd=1`` and so another SN).
    """
    issuer = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ant, Co.+Ltd=1")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "#Dept ")]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "Test CA"),
                    x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ca@x.cn"),  # an IA5String: 16 07 "ca@x.cn"
                ]
            ),
        ]
    )
    key = new_key()
    cert = make_certificate({"CN": "app", "OU": "u", "O": "o", "C": "CN"}, key, issuer, key, 987654321, hashes.SHA256())
    expected = "CN=Test CA+1.2.840.113549.1.9.1=#1607636140782e636e,OU=\\#Dept\\ ,O=Ant\\, Co.\\+Ltd\\=1,C=CN"
    assert cert_sn(cert) == hashlib.md5((expected + "987654321").encode()).hexdigest()


def test_a_comma_in_a_real_root_issuer_is_escaped_as_java_escapes_it():
    """The iTrusChina root in Alipay's bundle is issued by ``O=iTrusChina Co.,Ltd.``: Java writes ``Co.\\,Ltd.``."""
    issuer = {
        "CN": "iTrusChina Class 2 Root CA - G3",
        "OU": "China Trust Network",
        "O": "iTrusChina Co.,Ltd.",
        "C": "CN",
    }
    key = new_key()
    cert = make_certificate(issuer, key, issuer, key, 123456789, hashes.SHA256())
    expected = "CN=iTrusChina Class 2 Root CA - G3,OU=China Trust Network,O=iTrusChina Co.\\,Ltd.,C=CN123456789"
    assert cert_sn(cert) == hashlib.md5(expected.encode()).hexdigest()


def test_only_the_rsa_signed_roots_make_the_root_sn():
    names = [{"CN": f"Root {n}", "OU": "Certification Authority", "O": "Ant Financial", "C": "CN"} for n in (1, 2)]
    rsa_key, ec_key = new_key(), ec.generate_private_key(ec.SECP256R1())
    rsa_root = make_certificate(names[0], rsa_key, names[0], rsa_key, 11, hashes.SHA256())
    ec_root = make_certificate(names[1], ec_key, names[1], ec_key, 22, hashes.SHA256())
    # sha512WithRSAEncryption is under 1.2.840.113549.1.1 too, the prefix the Java SDK tests.
    sha512_root = make_certificate(names[1], rsa_key, names[1], rsa_key, 33, hashes.SHA512())
    bundle = "".join(
        cert.public_bytes(serialization.Encoding.PEM).decode() for cert in (ec_root, rsa_root, sha512_root)
    )
    assert root_cert_sn(bundle) == f"{cert_sn(rsa_root)}_{cert_sn(sha512_root)}"
    with pytest.raises(ValueError, match="no RSA-signed root"):
        root_cert_sn(ec_root.public_bytes(serialization.Encoding.PEM).decode())
