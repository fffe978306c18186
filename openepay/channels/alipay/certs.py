"""Certificate mode (公钥证书): the serial numbers Alipay names certificates by, and the key inside one.

In certificate mode every request carries ``app_cert_sn`` (the application's public-key
certificate) and ``alipay_root_cert_sn`` (Alipay's root certificates), and Alipay's answers
and notifications are verified with the key in Alipay's public-key certificate.

A certificate's SN, as Alipay's SDKs compute it: the MD5 hex of the issuer's distinguished name
(most specific first, ``CN=...,OU=...,O=...,C=...``, values as they are: the PHP and Python
SDKs escape nothing) followed by the serial number in decimal. The root SN joins, with ``_``,
the SNs of the RSA-signed certificates in Alipay's root bundle; its SM2 certificate is left out.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from cryptography import x509

# sha1WithRSAEncryption, sha256WithRSAEncryption
RSA_SIGNED = ("1.2.840.113549.1.1.5", "1.2.840.113549.1.1.11")


def load_certs(text: str) -> list[x509.Certificate]:
    """Every certificate in a PEM text; a clear error when there is none or one cannot be read.

    The X.509 parser is loaded here, when an account in certificate mode is opened, not by every
    process that loads the channels.
    """
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(text.strip().encode())
    except ValueError:
        raise ValueError("is not a PEM certificate (the .crt file as downloaded from the console)") from None
    if not certs:
        raise ValueError("holds no certificate")
    return certs


def issuer_string(cert: x509.Certificate) -> str:
    """The issuer as Alipay's SDKs write it for the SN: most specific first, ``k=v`` joined by ``,``, unescaped."""
    return ",".join(f"{attr.rfc4514_attribute_name}={attr.value}" for attr in reversed(list(cert.issuer)))


def cert_sn(cert: x509.Certificate) -> str:
    return hashlib.md5((issuer_string(cert) + str(cert.serial_number)).encode()).hexdigest()


def root_cert_sn(text: str) -> str:
    """The SN of Alipay's root bundle: the RSA-signed certificates' SNs, joined with ``_``."""
    sns = []
    for cert in load_certs(text):
        try:
            algorithm = cert.signature_algorithm_oid.dotted_string
        except ValueError:
            continue
        if algorithm in RSA_SIGNED:
            sns.append(cert_sn(cert))
    if not sns:
        raise ValueError("holds no RSA-signed root certificate")
    return "_".join(sns)


def public_key_of(text: str) -> rsa.RSAPublicKey:
    """The RSA key in a single public-key certificate (application's or Alipay's)."""
    certs = load_certs(text)
    if len(certs) != 1:
        raise ValueError("must hold exactly one certificate")
    try:
        key = certs[0].public_key()
    except ValueError:
        raise ValueError("holds a key this gateway cannot read") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("must hold an RSA key (RSA2)")
    return key
