"""What an operator configures for a WeChat Pay (API v3) direct-merchant account.

Everything comes from the WeChat Pay merchant platform (pay.weixin.qq.com) and the official
account or mini program bound to it: the merchant id, the AppID, the merchant API certificate's
serial number and its private key (``apiclient_key.pem``), the APIv3 key, and the WeChat Pay
public key with its id (``PUB_KEY_ID_...``), which verifies WeChat's answers and notifications.
``api_base`` is WeChat's API host; tests point it at a fake.
"""

from __future__ import annotations

from functools import cached_property

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from pydantic import SecretStr, field_validator

from openepay.channels.base import ChannelConfig, config_field

API_BASE = "https://api.mch.weixin.qq.com"


class WxPayConfig(ChannelConfig):
    mchid: str = config_field("商户号", "Merchant ID (mchid)", help="The 10-digit merchant number of the account")
    appid: str = config_field(
        "AppID", "AppID", help="The official account, mini program or app bound to the merchant number (wx...)"
    )
    merchant_serial_no: str = config_field(
        "商户API证书序列号",
        "Merchant API certificate serial number",
        help="The serial number of the merchant API certificate whose private key signs our requests",
    )
    merchant_private_key: SecretStr = config_field(
        "商户API证书私钥",
        "Merchant API private key",
        secret=True,
        help="The PEM text of apiclient_key.pem, made with the merchant API certificate",
    )
    apiv3_key: SecretStr = config_field(
        "APIv3密钥", "APIv3 key", secret=True, help="The 32-character APIv3 key that encrypts notifications"
    )
    platform_public_key: str = config_field(
        "微信支付公钥",
        "WeChat Pay public key",
        help="The PEM text of pub_key.pem, downloaded from the merchant platform",
    )
    platform_public_key_id: str = config_field(
        "微信支付公钥ID", "WeChat Pay public key ID", help="The id shown next to the public key, PUB_KEY_ID_..."
    )
    h5: bool = config_field(
        "H5支付",
        "H5 pay",
        default=True,
        help="Mobile browsers get an H5 pay page (the H5 product must be activated); off: they get the Native QR",
    )
    api_base: str = config_field(
        "接口地址", "API host", default=API_BASE, help="WeChat Pay's API host; change it only for a test upstream"
    )

    @field_validator("mchid", "appid", "merchant_serial_no", "platform_public_key_id")
    @classmethod
    def _identifier(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > 64 or not value.isascii() or not value.replace("_", "").isalnum():
            raise ValueError("must be 1 to 64 letters, digits or underscores")
        return value

    @field_validator("merchant_private_key")
    @classmethod
    def _private_key(cls, value: SecretStr) -> SecretStr:
        try:
            _rsa_private(value.get_secret_value())
        except (ValueError, TypeError):
            raise ValueError("is not an unencrypted PEM RSA private key (the text of apiclient_key.pem)") from None
        return value

    @field_validator("apiv3_key")
    @classmethod
    def _apiv3_key(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) != 32:
            raise ValueError("must be exactly 32 characters")
        return value

    @field_validator("platform_public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith("-----BEGIN"):
            # The platform shows the key as bare base64 too.
            value = "-----BEGIN PUBLIC KEY-----\n" + "".join(value.split()) + "\n-----END PUBLIC KEY-----"
        try:
            _rsa_public(value)
        except (ValueError, TypeError):
            raise ValueError("is not a PEM RSA public key (the text of pub_key.pem)") from None
        return value

    @field_validator("api_base")
    @classmethod
    def _http_base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError("must be an http(s) address such as https://api.mch.weixin.qq.com")
        return value

    @cached_property
    def signing_key(self) -> rsa.RSAPrivateKey:
        return _rsa_private(self.merchant_private_key.get_secret_value())

    @cached_property
    def wechat_key(self) -> rsa.RSAPublicKey:
        return _rsa_public(self.platform_public_key)


def _rsa_private(pem: str) -> rsa.RSAPrivateKey:
    key = load_pem_private_key(pem.strip().encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key")
    return key


def _rsa_public(pem: str) -> rsa.RSAPublicKey:
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA key")
    return key
