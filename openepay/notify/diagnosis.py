"""A test notification to a merchant's URL, and what its answer means, in words a merchant can act on.

"My shop never got paid" is mostly one of a dozen causes: the name does not resolve, nothing
listens, a firewall swallows the request, the certificate is self-signed, a CDN answers with a
challenge page, the script prints ``SUCCESS`` or a BOM before ``success``. The test message is
the dialect's own marked probe (``test_notification``: a test status and order numbers no shop
has, signed with the merchant's key, so the shop can verify it and still ship nothing), sent the
way real deliveries go (the one SSRF-safe client, no redirects followed), and the answer is
judged by the dialect's real acknowledgement matcher, not by a second reading of it here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from openepay.db.types import utcnow
from openepay.notify.http import ErrorClass, HttpOutcome, SafeHttpClient
from openepay.protocols.registry import DialectMessages

BODY_HEAD_CHARS = 300
BOM = b"\xef\xbb\xbf"
_ACK_SPELLINGS = (b"success", b"SUCCESS", b"Success")
_PROBE_TEXT = b"<p>ok</p>"


@dataclass(frozen=True)
class Diagnosis:
    """One cause: ``code`` for programs and tests, the explanation in Simplified Chinese and English."""

    code: str
    zh: str
    en: str


@dataclass(frozen=True)
class TestNotificationResult:
    __test__ = False  # not a pytest test class

    dialect: str
    method: str
    url: str  # the URL the message went to (a GET's signed query included)
    target_host: str
    status: int | None
    body_head: str  # the first characters of the answer, invisible ones escaped (\n, \ufeff...)
    latency_ms: int
    acknowledged: bool
    error_class: str | None
    error_detail: str | None
    diagnosis: Diagnosis


async def send_test_notification(
    messages: DialectMessages,
    http: SafeHttpClient,
    *,
    dialect: str,
    pid: int,
    key: str,
    url: str,
    now: datetime | None = None,
) -> TestNotificationResult:
    """Send ``dialect``'s marked test message for merchant ``pid`` to ``url`` and diagnose the answer."""
    stamp = (now or utcnow()).strftime("%Y%m%d%H%M%S")
    message = await messages.test_notification(pid, key, url, stamp)
    outcome = await http.send(message)
    acknowledged = outcome.error_class is None and messages.acknowledged(outcome.body)
    return TestNotificationResult(
        dialect=dialect,
        method=message.method,
        url=message.url,
        target_host=outcome.target_host,
        status=outcome.status,
        body_head=escaped_head(outcome.body),
        latency_ms=outcome.latency_ms,
        acknowledged=acknowledged,
        error_class=outcome.error_class.value if outcome.error_class else None,
        error_detail=outcome.error_detail,
        diagnosis=diagnose(outcome, acknowledged, messages),
    )


def escaped_head(body: bytes, limit: int = BODY_HEAD_CHARS) -> str:
    """The first ``limit`` characters, every invisible one (BOM, newline, NUL...) written as an escape."""
    text = body.decode("utf-8", "backslashreplace")
    shown = []
    for char in text[:limit]:
        if char == "\\" or char.isprintable() and char != "\ufeff":
            shown.append(char)
        else:
            shown.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(shown) + ("…" if len(text) > limit else "")


def diagnose(outcome: HttpOutcome, acknowledged: bool, messages: DialectMessages) -> Diagnosis:
    """The one most likely cause of a failed test, or that it was received."""
    if acknowledged:
        return Diagnosis(
            "delivered",
            "商户服务器已确认收到（应答被认可为成功）。测试消息的订单号不对应任何真实订单，商户不应为此发货。",
            "The merchant's server acknowledged the message. The test's order numbers match no real "
            "order, so the shop should ship nothing for it.",
        )
    if outcome.error_class is not None:
        return _transport(outcome)
    waf = _waf(outcome)
    if waf is not None:
        return waf
    assert outcome.status is not None
    if not 200 <= outcome.status < 300:
        return _http_status(outcome.status)
    return _bad_body(outcome.body, messages)


def acknowledgement_rule(messages: DialectMessages) -> tuple[str, str]:
    """What the dialect's real matcher accepts, found by asking it (so the words never drift from the code)."""
    if messages.acknowledged(b"<html>" + b"success" + b"</html>"):
        words = [word.decode() for word in _ACK_SPELLINGS if messages.acknowledged(_PROBE_TEXT + word)]
        shown = "、".join(f"“{w}”" for w in words)
        return (
            f"应答正文中任意位置包含 {shown} 之一即算成功。",
            "The answer counts as received when its body contains " + " or ".join(f'"{w}"' for w in words) + ".",
        )
    if messages.acknowledged(b" success\r\n"):
        return (
            "应答正文去掉首尾空白后必须恰好是小写的 “success”。",
            'The answer\'s body, once leading and trailing whitespace is removed, must be exactly "success" '
            "in lower case.",
        )
    return ("应答正文必须恰好是 “success”。", 'The answer\'s body must be exactly "success".')


def _transport(outcome: HttpOutcome) -> Diagnosis:
    detail = outcome.error_detail or ""
    host = outcome.target_host
    match outcome.error_class:
        case ErrorClass.DNS:
            return Diagnosis(
                "dns",
                f"域名 {host} 无法解析（DNS 查询不到地址）。请检查通知地址是否拼写正确、域名是否已解析到服务器。",
                f"The name {host} does not resolve (DNS has no address for it). Check the notify URL's "
                "spelling and that the domain has a DNS record pointing at the shop's server.",
            )
        case ErrorClass.REFUSED:
            return Diagnosis(
                "refused",
                f"连接被拒绝：{host} 的该端口上没有服务在监听。请检查端口号、Web 服务是否运行，"
                "以及 http/https 是否写对。",
                f"Connection refused: nothing listens on that port of {host}. Check the port, that the "
                "web server runs, and http versus https.",
            )
        case ErrorClass.TIMEOUT:
            return Diagnosis(
                "timeout",
                "超时：服务器在限定时间内没有给出完整应答。常见原因：防火墙或安全组丢弃了我们的请求、"
                "服务器只允许国内 IP、或通知脚本执行过慢（应先应答 success 再处理耗时工作）。",
                "Timeout: the server gave no complete answer in time. Usual causes: a firewall or "
                "security group drops our requests, the server only admits some countries' addresses, "
                "or the notify script is slow (answer success first, do slow work afterwards).",
            )
        case ErrorClass.TLS:
            return _tls(detail)
        case ErrorClass.BLOCKED:
            return Diagnosis(
                "blocked",
                f"出于安全（SSRF 防护）拒绝连接：{detail}。通知地址必须是公网可访问的域名或 IP。"
                "若商户网站确实与网关在同一内网，运维可设置 OPENEPAY_NOTIFY_ALLOW_PRIVATE=true 放开内网地址"
                "（云元数据地址始终禁止）。",
                f"Refused by the SSRF rules: {detail}. The notify URL must be a public name or address. "
                "If the shop really lives on the gateway's own private network, the operator can set "
                "OPENEPAY_NOTIFY_ALLOW_PRIVATE=true to open private addresses (cloud metadata addresses "
                "stay closed).",
            )
        case ErrorClass.REDIRECT:
            location = _location(outcome.headers)
            return Diagnosis(
                "redirect",
                f"服务器返回跳转（HTTP {outcome.status}）到 {location}，通知不会跟随跳转。"
                "请把通知地址改为跳转后的最终地址（常见：http 跳 https、带不带 www、末尾斜杠）。",
                f"The server redirects (HTTP {outcome.status}) to {location}; notifications never "
                "follow redirects. Use the final address as the notify URL (often http to https, "
                "www or not, a trailing slash).",
            )
    return Diagnosis(
        "network",
        f"网络错误：{detail}。连接中途断开，请检查服务器和中间代理的日志。",
        f"Network error: {detail}. The connection broke off; check the server's and any proxy's logs.",
    )


def _location(headers: Mapping[str, str]) -> str:
    return escaped_head(headers.get("location", "").encode(), 200)


def _tls(detail: str) -> Diagnosis:
    lowered = detail.lower()
    if "self-signed" in lowered or "self signed" in lowered:
        zh, en = "证书是自签名的，不被信任", "the certificate is self-signed, which nobody trusts"
    elif "expired" in lowered:
        zh, en = "证书已过期", "the certificate has expired"
    elif "hostname mismatch" in lowered or "doesn't match" in lowered or "not valid for" in lowered:
        zh, en = "证书上的域名与通知地址的域名不一致", "the certificate is for another name than the notify URL's"
    elif "wrong_version_number" in lowered or "wrong version number" in lowered or "record layer" in lowered:
        zh, en = (
            "该端口说的不是 HTTPS（很可能是普通 HTTP）：请把地址改为 http:// 或检查端口",
            "that port does not speak HTTPS (most likely plain HTTP): use http:// or check the port",
        )
    elif "certificate verify failed" in lowered or "unable to get local issuer" in lowered:
        zh, en = (
            "证书无法验证（颁发机构不受信任或证书链不完整）",
            "the certificate cannot be verified (an untrusted issuer or an incomplete chain)",
        )
    else:
        zh, en = "TLS 握手失败", "the TLS handshake failed"
    return Diagnosis(
        "tls",
        f"HTTPS 连接失败：{zh}（{detail}）。请安装受信任机构签发的有效证书（含完整证书链），"
        "或在确实没有证书时使用 http:// 地址。",
        f"The HTTPS connection failed: {en} ({detail}). Install a valid certificate from a trusted "
        "authority (with its full chain), or use an http:// URL where there truly is no certificate.",
    )


# Block and challenge pages of the CDNs and WAFs shops in China sit behind, by body and header markers.
_WAF_BODY_MARKERS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    (
        "Cloudflare",
        re.compile(rb"Just a moment\.\.\.|cf-chl-|challenges\.cloudflare\.com|Attention Required! \| Cloudflare"),
    ),
    ("宝塔 BT-Panel WAF", re.compile("宝塔网站防火墙|网站防火墙|btwaf".encode(), re.IGNORECASE)),
    ("Aliyun WAF", re.compile(rb"errors\.aliyun\.com|aliyun_waf|Your request has been blocked", re.IGNORECASE)),
    ("Tencent Cloud WAF", re.compile("waf\\.tencent-cloud\\.com|腾讯云.{0,20}防火墙".encode(), re.IGNORECASE)),
)


def _waf_by_headers(headers: Mapping[str, str]) -> str | None:
    if headers.get("cf-mitigated") == "challenge":
        return "Cloudflare"
    return None


def _waf(outcome: HttpOutcome) -> Diagnosis | None:
    found = _waf_by_headers(outcome.headers)
    if found is None:
        found = next((name for name, marker in _WAF_BODY_MARKERS if marker.search(outcome.body)), None)
    if found is None:
        return None
    return Diagnosis(
        "waf",
        f"请求被 {found} 拦截（HTTP {outcome.status}，返回的是防火墙/人机验证页面，而不是通知脚本的应答）。"
        "服务器之间的通知无法通过浏览器验证：请在防火墙或 CDN 中为通知地址的路径设置放行规则"
        "（或将网关出口 IP 加入白名单），并关闭该路径的人机验证/CC 防护。",
        f"{found} blocked the request (HTTP {outcome.status}: a firewall or challenge page answered, not "
        "the notify script). A server-to-server notification cannot pass a browser challenge: add an "
        "allow rule for the notify URL's path (or the gateway's outgoing address) in the firewall or "
        "CDN, and turn off challenges / CC protection for that path.",
    )


def _http_status(status: int) -> Diagnosis:
    hints = {
        404: (
            "路径不存在：请核对通知地址的路径和文件名",
            "the path does not exist: check the notify URL's path and file name",
        ),
        405: (
            "不允许该请求方法：通知脚本须接受本协议使用的 GET/POST",
            "the method is not allowed: the notify script must accept this protocol's GET or POST",
        ),
        401: (
            "需要登录认证：通知地址不能放在登录保护之后",
            "it asks for authentication: the notify URL cannot sit behind a login",
        ),
        403: (
            "禁止访问：常见于防火墙、目录权限或只允许特定 IP",
            "forbidden: usually a firewall, file permissions or an address allow-list",
        ),
        413: ("请求过大", "the request is too large for the server"),
        429: ("请求过于频繁被限流：请为网关放行", "rate-limited: exempt the gateway from the limit"),
    }
    if status in hints:
        zh, en = hints[status]
    elif status >= 500:
        zh, en = (
            "服务器内部错误：通知脚本执行出错（查看网站 PHP/应用错误日志，常见于验签代码或数据库错误）",
            "a server error: the notify script failed (see the site's PHP or application error log; "
            "the signature check or the database are the usual suspects)",
        )
    else:
        zh, en = "不是成功状态码", "not a success status"
    return Diagnosis(
        "http_status",
        f"服务器返回 HTTP {status}：{zh}。只有 2xx 状态并且正文为 success 才算收到。",
        f"The server answered HTTP {status}: {en}. Only a 2xx answer whose body is success counts as received.",
    )


def _bad_body(body: bytes, messages: DialectMessages) -> Diagnosis:
    rule_zh, rule_en = acknowledgement_rule(messages)
    text = body.strip()
    if not body:
        zh, en = (
            "应答正文为空：脚本没有输出 success（可能中途出错或验签失败后直接退出）",
            (
                "the body is empty: the script printed no success (it may have failed, or exited on a failed "
                "signature check)"
            ),
        )
    elif body.startswith(BOM):
        zh, en = (
            "正文以 BOM（\\ufeff）开头：脚本文件保存成了“UTF-8 带 BOM”，请改存为无 BOM 的 UTF-8",
            "the body starts with a BOM (\\ufeff): a script file is saved as UTF-8 with BOM; save it as "
            "UTF-8 without BOM",
        )
    elif text.lower() == b"success" and text != b"success":
        zh, en = f"大小写不符：返回的是 “{text.decode()}”", f'wrong case: it answered "{text.decode()}"'
    elif text[:1] in (b"{", b"["):
        zh, en = (
            "返回的是 JSON：须直接输出纯文本 success，而不是 JSON",
            "it answered JSON: print the plain text success, not JSON",
        )
    elif text[:1] == b"<":
        zh, en = (
            "返回的是 HTML 页面：通知地址可能指向了网站首页、错误页或登录页",
            "it answered an HTML page: the notify URL may lead to a home, error or login page",
        )
    else:
        zh, en = (
            "正文不是 success（常见原因：验签失败、订单号不存在时输出了 fail 等）",
            (
                "the body is not success (usually: the signature check failed, or the script printed fail "
                "for an order it does not know; the test's order numbers match no order)"
            ),
        )
    return Diagnosis(
        "bad_body",
        f"服务器返回 2xx，但应答不被认可：{zh}。{rule_zh}",
        f"The server answered 2xx, but the answer does not count as received: {en}. {rule_en}",
    )
