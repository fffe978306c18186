"""What an operator configures for an application on the Alipay open platform (RSA2, public-key or certificate mode).

Everything comes from the open platform console (open.alipay.com): the application's APPID,
the application private key the operator generated with Alipay's key tool (only its public
half was uploaded to Alipay), and either the 支付宝公钥 the console shows once the application
public key is set (public-key mode) or the three certificates it issues (certificate mode:
the application's, Alipay's and Alipay's root). Keys are taken as PEM or as the bare base64
the key tool and the console print; certificates as the PEM files the console hands out.
``gateway_url`` is the production gateway unless the operator points it at the sandbox.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, field_validator, model_validator

from openepay.channels.alipay.certs import public_key_of, root_cert_sn
from openepay.channels.base import ChannelConfig, config_field

PRODUCTION_GATEWAY = "https://openapi.alipay.com/gateway.do"
MIN_KEY_BITS = 2048


class AlipayConfig(ChannelConfig):
    app_id: str = config_field(
        "应用APPID", "App ID", help="The application's APPID in the Alipay open platform console"
    )
    app_private_key: SecretStr = config_field(
        "应用私钥",
        "App private key",
        secret=True,
        help="The RSA2 application private key made with Alipay's key tool (PEM or bare base64, PKCS#1 or PKCS#8)",
    )
    alipay_public_key: str | None = config_field(
        "支付宝公钥",
        "Alipay public key",
        default=None,
        help="Public-key mode: the Alipay public key the console shows once your application public key is set "
        "(PEM or bare base64)",
    )
    app_cert: str | None = config_field(
        "应用公钥证书",
        "App public key certificate",
        default=None,
        help="Certificate mode: appCertPublicKey_<APPID>.crt from the console (PEM)",
    )
    alipay_cert: str | None = config_field(
        "支付宝公钥证书",
        "Alipay public key certificate",
        default=None,
        help="Certificate mode: alipayCertPublicKey_RSA2.crt from the console (PEM)",
    )
    alipay_root_cert: str | None = config_field(
        "支付宝根证书",
        "Alipay root certificate",
        default=None,
        help="Certificate mode: alipayRootCert.crt from the console (PEM, several certificates)",
    )
    gateway_url: str = config_field(
        "网关地址",
        "Gateway URL",
        default=PRODUCTION_GATEWAY,
        help="https://openapi.alipay.com/gateway.do; the sandbox is https://openapi-sandbox.dl.alipaydev.com/gateway.do",
    )
    sign_type: Literal["RSA2"] = config_field("签名方式", "Sign type", default="RSA2", help="Only RSA2 (SHA256withRSA)")
    pc_method: Literal["precreate", "page"] = config_field(
        "电脑端支付方式",
        "Desktop pay method",
        default="precreate",
        help="precreate: 当面付 QR code; page: 电脑网站支付 (alipay.trade.page.pay)",
    )
    mobile_method: Literal["wap", "precreate"] = config_field(
        "手机端支付方式",
        "Mobile pay method",
        default="wap",
        help="wap: 手机网站支付 (alipay.trade.wap.pay); precreate: 当面付 QR code, which opens Alipay on a phone",
    )
    seller_id: str | None = config_field(
        "商户PID",
        "Seller ID (PID)",
        default=None,
        help="Optional: the 2088... partner id; notifications for another seller are refused",
    )

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        value = value.strip()
        if not value.isdigit() or len(value) > 32:
            raise ValueError("must be the digits of the application's APPID")
        return value

    @field_validator("app_private_key")
    @classmethod
    def _private_key(cls, value: SecretStr) -> SecretStr:
        load_private_key(value.get_secret_value())
        return value

    @field_validator("alipay_public_key")
    @classmethod
    def _public_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        load_public_key(value)
        return value.strip()

    @field_validator("app_cert", "alipay_cert")
    @classmethod
    def _public_cert(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        key = public_key_of(value)
        if key.key_size < MIN_KEY_BITS:
            raise ValueError(f"must hold an RSA key of at least {MIN_KEY_BITS} bits (RSA2)")
        return value.strip()

    @field_validator("alipay_root_cert")
    @classmethod
    def _root_cert(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        root_cert_sn(value)
        return value.strip()

    @model_validator(mode="after")
    def _one_mode(self) -> AlipayConfig:
        certs = (self.app_cert, self.alipay_cert, self.alipay_root_cert)
        if self.alipay_public_key is None and not any(certs):
            raise ValueError(
                "set alipay_public_key (public-key mode) "
                "or app_cert, alipay_cert and alipay_root_cert (certificate mode)"
            )
        if self.alipay_public_key is not None and any(certs):
            raise ValueError("set alipay_public_key or the three certificates, not both")
        if any(certs) and not all(certs):
            raise ValueError("certificate mode needs all of app_cert, alipay_cert and alipay_root_cert")
        if self.app_cert is not None:
            mine = load_private_key(self.app_private_key.get_secret_value()).public_key().public_numbers()
            if public_key_of(self.app_cert).public_numbers() != mine:
                raise ValueError("app_cert is not the certificate of app_private_key's public key")
        return self

    @property
    def cert_mode(self) -> bool:
        return self.alipay_cert is not None

    def alipay_key(self) -> rsa.RSAPublicKey:
        """The key Alipay's answers and notifications are verified with, in either mode."""
        if self.alipay_cert is not None:
            return public_key_of(self.alipay_cert)
        assert self.alipay_public_key is not None
        return load_public_key(self.alipay_public_key)

    @field_validator("gateway_url")
    @classmethod
    def _gateway(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError("must be an http(s) address such as " + PRODUCTION_GATEWAY)
        return value

    @field_validator("seller_id")
    @classmethod
    def _seller(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if value and (not value.isdigit() or len(value) > 32):
            raise ValueError("must be the digits of the 2088... partner id")
        return value or None


def _der(text: str) -> bytes | None:
    """The DER bytes of a bare base64 key (as the key tool prints it), or None for PEM text."""
    body = "".join(text.split())
    if body.startswith("-----"):
        return None
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is neither PEM nor base64") from None


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """The application private key; a clear error (never the key itself) unless it is RSA of 2048 bits or more."""
    try:
        der = _der(text)
        key = (
            serialization.load_pem_private_key(text.strip().encode(), password=None)
            if der is None
            else serialization.load_der_private_key(der, password=None)
        )
    except (ValueError, TypeError):
        raise ValueError("is not a readable RSA private key (PEM or base64, PKCS#1 or PKCS#8, no password)") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_KEY_BITS:
        raise ValueError(f"must be an RSA key of at least {MIN_KEY_BITS} bits (RSA2)")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    try:
        der = _der(text)
        key = (
            serialization.load_pem_public_key(text.strip().encode())
            if der is None
            else serialization.load_der_public_key(der)
        )
    except (ValueError, TypeError):
        raise ValueError("is not a readable RSA public key (PEM or base64)") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        raise ValueError(f"must be an RSA key of at least {MIN_KEY_BITS} bits (RSA2)")
    return key
