r"""Certificate mode (公钥证书): the serial numbers Alipay names certificates by, and the key inside one.

In certificate mode every request carries ``app_cert_sn`` (the application's public-key
certificate) and ``alipay_root_cert_sn`` (Alipay's root certificates), and Alipay's answers
and notifications are verified with the key in Alipay's public-key certificate.

A certificate's SN is the MD5 hex of the issuer's distinguished name followed by the serial
number in decimal. The issuer is written exactly as Alipay's own Java SDK writes it
(``AlipaySignature.getCertSN``, ``AntCertificationUtil.getRootCertSN``:
``getIssuerX500Principal().getName() + getSerialNumber()``), that is Java's RFC 2253 form:
most specific RDN first, ``CN=...,OU=...,O=...,C=...``; the keywords CN, C, L, ST, O, OU,
STREET, DC and UID, any other attribute as its dotted OID with the value's DER in hex
(``1.2.840.113549.1.9.1=#16...``); in a value each of ``, = + < > # ; " \`` and leading or
trailing spaces get a backslash. The PHP SDK writes values unescaped (``O=iTrusChina Co.,Ltd.``
where Java writes ``O=iTrusChina Co.\,Ltd.``); the two agree on every issuer without those
characters. The root SN joins, with ``_``, the SNs of the certificates in Alipay's root bundle
signed with an RSA algorithm (OID under ``1.2.840.113549.1.1``, as the Java SDK tests); its SM2
certificate is left out.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from cryptography import x509

# PKCS #1, the prefix the Java SDK tests: every RSA signature algorithm (sha1WithRSAEncryption ...
# sha512WithRSAEncryption, RSASSA-PSS).
RSA_SIGNED = "1.2.840.113549.1.1"
# The attribute types Java's RFC 2253 form names by keyword; any other is written as its OID.
RFC2253_KEYWORDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# The DER string types Java writes as text (UTF8, Printable, T61, IA5, General, BMP) and how they decode;
# a value of any other type is written as ``#`` and the hex of its DER.
TEXT_TYPES = {12: "utf-8", 19: "ascii", 20: "latin-1", 22: "ascii", 27: "latin-1", 30: "utf-16-be"}
ESCAPED = frozenset(',=+<>#;"\\')


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
    """The issuer as Java's ``X500Principal.getName()`` writes it: RDNs most specific first, joined by ``,``.

    Read from the issuer's DER, so every value's type and bytes are the ones Alipay's server
    reads; a multi-valued RDN joins its attributes with ``+`` in their encoded order.
    """
    name = cert.issuer.public_bytes()
    _, content, end = _tlv(name, 0)
    rdns = [
        "+".join(_attribute(name, atv_start, atv_end) for _, _, atv_start, atv_end in _children(name, start, stop))
        for _, _, start, stop in _children(name, content, end)
    ]
    return ",".join(reversed(rdns))


def _attribute(der: bytes, start: int, end: int) -> str:
    """One ``AttributeTypeAndValue`` (an OID and a value) as ``TYPE=value``."""
    (_, _, oid_start, oid_end), (tag, value_at, value_start, value_end) = _children(der, start, end)
    oid = _dotted(der[oid_start:oid_end])
    keyword = RFC2253_KEYWORDS.get(oid)
    if keyword is None or tag not in TEXT_TYPES:
        return f"{keyword or oid}=#{der[value_at:value_end].hex()}"
    return f"{keyword}={_escaped(der[value_start:value_end].decode(TEXT_TYPES[tag]))}"


def _escaped(value: str) -> str:
    """Java's RFC 2253 escaping: the special characters, NUL as ``\\00``, then leading and trailing spaces."""
    chars = "".join("\\" + c if c in ESCAPED else "\\00" if c == "\0" else c for c in value)
    lead = len(chars) - len(chars.lstrip(" \r"))
    trail = len(chars.rstrip(" \r"))
    return "".join("\\" + c if i < lead or i >= trail else c for i, c in enumerate(chars))


def _tlv(der: bytes, at: int) -> tuple[int, int, int]:
    """The DER element at ``at``: its tag, where its content starts and where it ends."""
    tag, length, at = der[at], der[at + 1], at + 2
    if length & 0x80:
        size = length & 0x7F
        length, at = int.from_bytes(der[at : at + size], "big"), at + size
    return tag, at, at + length


def _children(der: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The elements between ``start`` and ``end``: tag, where each begins, where its content starts, where it ends."""
    children = []
    while start < end:
        tag, content, stop = _tlv(der, start)
        children.append((tag, start, content, stop))
        start = stop
    return children


def _dotted(body: bytes) -> str:
    arcs, arc = [], 0
    for byte in body:
        arc = (arc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(arc)
            arc = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(n) for n in (first, arcs[0] - 40 * first, *arcs[1:]))


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
        if algorithm.startswith(RSA_SIGNED):
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
