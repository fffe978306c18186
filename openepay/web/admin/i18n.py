"""The console's words in Simplified Chinese (the default) and English.

The language is the ``openepay_lang`` cookie when set (the switch in the page header sets it),
else English when the browser prefers it, else Chinese. A word missing from the catalogue shows
its key, so a forgotten entry is visible rather than silent.
"""

from __future__ import annotations

from starlette.requests import Request

LANG_COOKIE = "openepay_lang"
LANGUAGES = ("zh", "en")

CATALOGUE: dict[str, tuple[str, str]] = {
    "console": ("运营后台", "Operator console"),
    "dashboard": ("概览", "Dashboard"),
    "orders": ("订单", "Orders"),
    "merchants": ("商户", "Merchants"),
    "channels": ("通道账户", "Channel accounts"),
    "review": ("待审核收款", "Payments to review"),
    "review_help": (
        "个人收款码收到、但没有自动匹配到订单的款项。确认是哪笔订单的付款后，填写平台订单号关联。",
        "Personal-code payments no order was credited with. Once you know which order one pays, attach it.",
    ),
    "attach": ("关联到订单", "Attach to order"),
    "attached": (
        "已关联，订单已支付，商户将收到通知。",
        "Attached: the order is paid and the merchant will be notified.",
    ),
    "no_accounts": ("还没有通道账户（openepay channel add）。", "No channel accounts yet (openepay channel add)."),
    "secret_set": ("已设置（不显示）", "set (never shown)"),
    "enabled": ("已启用", "enabled"),
    "limits": ("金额限制", "Limits"),
    "daily": ("每日", "daily"),
    "priority_weight": ("优先级 / 权重", "Priority / weight"),
    "health": ("健康状态", "Health"),
    "ok": ("正常", "ok"),
    "audit": ("操作日志", "Audit log"),
    "users": ("后台用户", "Console users"),
    "add_user": ("添加用户", "Add a user"),
    "role_invalid": ("请选择角色。", "Choose a role."),
    "reset_totp": ("重置两步验证", "Reset two-step sign-in"),
    "not_yourself": ("不能停用自己的账户。", "You cannot disable your own account."),
    "sign_in": ("登录", "Sign in"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "wrong_login": ("用户名或密码错误。", "Wrong username or password."),
    "locked_login": (
        "登录失败次数过多，请稍后再试。",
        "Too many failed sign-ins; try again later.",
    ),
    "totp_code": ("动态验证码", "Authenticator code"),
    "totp_prompt": ("请输入身份验证器应用中的 6 位验证码。", "Enter the 6-digit code from your authenticator app."),
    "totp_wrong": ("验证码不正确或已使用。", "That code is wrong or was already used."),
    "totp_setup": ("设置两步验证", "Set up two-step sign-in"),
    "totp_setup_help": (
        "用身份验证器应用（如 Google Authenticator、Microsoft Authenticator）扫描二维码，"
        "或手动输入密钥，然后输入应用显示的验证码。",
        "Scan the QR code with an authenticator app (Google Authenticator, Microsoft Authenticator...) "
        "or type the key in, then enter the code it shows.",
    ),
    "totp_required": (
        "本网关要求所有后台用户启用两步验证。",
        "This gateway requires two-step sign-in for every console user.",
    ),
    "totp_key": ("密钥", "Key"),
    "confirm": ("确认", "Confirm"),
    "logout": ("退出", "Log out"),
    "logout_everywhere": ("退出所有设备", "Log out everywhere"),
    "language_other": ("English", "中文"),
    "forbidden": ("权限不足", "Not allowed"),
    "forbidden_role": ("此操作需要角色：", "This needs the role: "),
    "forbidden_csrf": (
        "表单已过期或来源不明，请返回页面重试。",
        "The form has expired or did not come from this console; go back and try again.",
    ),
    "not_found": ("未找到", "Not found"),
    "bad_input": ("无法处理的输入", "Input that cannot be used"),
    "bad_input_help": (
        "表单中有无法保存的字符（例如空字符）。",
        "The form holds characters that cannot be stored (a NUL, say).",
    ),
    "role_viewer": ("只读", "viewer"),
    "role_operator": ("运营", "operator"),
    "role_administrator": ("管理员", "administrator"),
    "today": ("今日", "Today"),
    "yesterday": ("昨日", "Yesterday"),
    "last_30_days": ("近 30 日成交", "Paid, last 30 days"),
    "chart_top": ("最高单日", "Best day"),
    "paid_volume": ("成交金额", "Paid volume"),
    "paid_count": ("成交笔数", "Paid orders"),
    "success_rate": ("支付成功率", "Success rate"),
    "notify_backlog": ("待发送通知", "Notifications waiting"),
    "oldest_due": ("最早应发", "Oldest due"),
    "paused_merchants": ("通知已暂停的商户", "Merchants whose notifications are paused"),
    "paused_until": ("暂停至", "Paused until"),
    "none": ("无", "None"),
    "resume_now": ("立即恢复", "Resume now"),
    "search": ("搜索", "Search"),
    "bad_filter": ("无法识别的筛选条件：", "This filter cannot be read: "),
    "trade_no": ("平台订单号", "Trade number"),
    "out_trade_no": ("商户订单号", "Merchant order number"),
    "merchant": ("商户", "Merchant"),
    "status": ("状态", "Status"),
    "channel": ("通道", "Channel"),
    "pay_type": ("支付方式", "Pay type"),
    "date_from": ("开始日期", "From"),
    "date_to": ("结束日期", "To"),
    "any": ("全部", "Any"),
    "amount": ("金额", "Amount"),
    "paid_amount": ("实付", "Paid"),
    "created_at": ("创建时间", "Created"),
    "paid_at": ("支付时间", "Paid at"),
    "name": ("名称", "Name"),
    "orders_count": ("笔订单", "orders"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "previous": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "page": ("页", "page"),
    "no_orders": ("没有符合条件的订单。", "No orders match."),
    "order": ("订单", "Order"),
    "st_created": ("待支付", "created"),
    "st_paying": ("支付中", "paying"),
    "st_paid": ("已支付", "paid"),
    "st_partially_refunded": ("部分退款", "partially refunded"),
    "st_refunded": ("已退款", "refunded"),
    "st_closed": ("已关闭", "closed"),
    "timeline": ("时间线", "Timeline"),
    "ev_created": ("创建订单", "Order created"),
    "ev_routed": ("选择收款账户", "Account chosen"),
    "ev_callback": ("上游回调", "Upstream callback"),
    "ev_paid": ("支付成功", "Paid"),
    "ev_paid_late": ("支付成功（关闭后到账）", "Paid (after it closed)"),
    "ev_closed": ("订单关闭", "Closed"),
    "ev_attempt": ("通知商户", "Notified the merchant"),
    "ev_audit": ("后台操作", "Console action"),
    "delivered": ("已送达", "delivered"),
    "not_delivered": ("未送达", "not delivered"),
    "merchant_answer": ("商户回复", "Merchant answered"),
    "actions": ("操作", "Actions"),
    "resend": ("重发通知", "Resend notification"),
    "close_order": ("关闭订单", "Close order"),
    "confirm_by_hand": ("手动补单", "Confirm by hand (补单)"),
    "reason": ("原因", "Reason"),
    "reason_required": ("请填写补单原因。", "Give the reason for confirming by hand."),
    "resent": ("已重新排队发送通知。", "The notification is queued again."),
    "nothing_to_resend": (
        "该订单没有可重发的通知（是否已支付？）。",
        "This order has no notification to resend (is it paid?).",
    ),
    "closed_done": ("订单已关闭。", "The order is closed."),
    "not_closable": ("订单已不是未支付状态，无法关闭。", "The order is no longer unpaid; it cannot be closed."),
    "confirmed_done": ("已补单，商户将收到支付通知。", "Confirmed by hand; the merchant will be notified."),
    "not_confirmable": ("该订单已支付，无需补单。", "The order is already paid."),
    "notifications": ("通知", "Notifications"),
    "create_merchant": ("新建商户", "New merchant"),
    "allow_refund": ("允许通过 API 退款", "Allow refunds through the API"),
    "create": ("创建", "Create"),
    "name_invalid": ("请填写商户名称（不超过 100 个字符）。", "Give the merchant a name (at most 100 characters)."),
    "merchant_created": (
        "商户已创建。密钥只显示这一次，请立即复制保存。",
        "Merchant created. The key is shown this once: copy it now.",
    ),
    "key_rotated": (
        "密钥已更换，旧密钥立即失效。新密钥只显示这一次。",
        "Key replaced; the old one stops working now. The new key is shown this once.",
    ),
    "merchant_key": ("商户密钥", "Merchant key"),
    "rotate_key": ("更换密钥", "Rotate key"),
    "disable": ("停用", "Disable"),
    "enable": ("启用", "Enable"),
    "active": ("正常", "active"),
    "disabled": ("已停用", "disabled"),
    "balance": ("余额", "Balance"),
    "breaker": ("通知熔断", "Notification breaker"),
    "breaker_closed": ("正常发送", "sending normally"),
    "breaker_open": ("已暂停", "paused"),
    "resumed": ("已恢复发送通知。", "Notifications resume now."),
    "failures_in_row": ("连续失败", "failures in a row"),
    "back": ("返回", "Back"),
    "when": ("时间", "When"),
    "who": ("操作人", "Who"),
    "what": ("操作", "What"),
    "target": ("对象", "Target"),
    "before": ("之前", "Before"),
    "after": ("之后", "After"),
    "role": ("角色", "Role"),
    "totp": ("两步验证", "Two-step"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "timezone_note": ("时间为", "Times are in"),
    # The merchant portal (/merchant) shares this catalogue.
    "portal": ("商户中心", "Merchant portal"),
    "portal_logins": ("商户中心登录账号", "Merchant portal sign-ins"),
    "no_portal_logins": ("还没有登录账号。", "No sign-ins yet."),
    "add_portal_login": ("添加登录账号", "Add a sign-in"),
    "portal_login_made": (
        "登录账号已创建。初始密码只显示这一次，请转交商户。",
        "Sign-in made. The password is shown this once: hand it to the merchant.",
    ),
    "initial_password": ("初始密码", "Password"),
    "credentials": ("API 密钥", "API credentials"),
    "integration": ("接入文档", "Integration"),
    "integration_help": (
        "本网关的各协议接口地址和示例，已填入您的商户号。示例中的密钥为占位符，请换成您自己的密钥：",
        "This gateway's endpoints for every protocol, with examples for your pid. The key is a placeholder; "
        "put your own key in place of",
    ),
    "sign_up": ("注册商户", "Sign up"),
    "sign_up_help": (
        "注册后商户处于停用状态，运营人员审核启用后才能收款。",
        "A new merchant starts disabled: it takes payments once the operator has reviewed and enabled it.",
    ),
    "shop_name": ("商户名称", "Shop name"),
    "email": ("邮箱", "E-mail"),
    "merchant_not_active": (
        "您的商户尚未启用（待审核或已停用），暂时不能收款。",
        "Your merchant is not enabled yet (awaiting review, or disabled): it cannot take payments for now.",
    ),
    "rotate_key_help": (
        "更换后旧密钥立即失效，新密钥只显示一次。",
        "Rotating stops the old key at once; the new key is shown only once.",
    ),
    "rsa_key": ("商户 RSA 公钥（V2 接口）", "Your RSA public key (epay V2)"),
    "rsa_key_set": ("已上传，用于验证您 V2 请求的签名。", "Uploaded: it checks your V2 requests' signatures."),
    "rsa_key_unset": ("尚未上传。", "Not uploaded yet."),
    "rsa_key_paste": (
        "粘贴 PEM 格式公钥或彩虹易支付显示的 base64 公钥",
        "Paste the public key: PEM, or the bare base64 Rainbow shows",
    ),
    "rsa_saved": ("RSA 公钥已保存。", "The RSA public key is saved."),
    "save": ("保存", "Save"),
    "platform_key": ("平台公钥（V2 接口）", "Platform public key (epay V2)"),
    "platform_key_help": (
        "用它验证本网关 V2 应答和通知的签名。",
        "Check the signatures of this gateway's V2 answers and notifications with it.",
    ),
    "test_notify": ("发送测试通知", "Send a test notification"),
    "test_notify_help": (
        "用该商户的密钥签名，向下面的地址发送一条标明为测试的通知（测试状态、不存在的订单号，商户可验签但不应发货），"
        "与真实通知走同一个安全客户端，不跟随跳转。",
        "Sends a notification marked as a test (a test status, order numbers no shop has: the shop can verify "
        "it but should ship nothing), signed with this merchant's key, through the same safe client as real "
        "deliveries; redirects are not followed.",
    ),
    "notify_url": ("通知地址", "Notify URL"),
    "dialect": ("协议", "Protocol"),
    "dialect_epay": ("易支付 V1", "epay V1"),
    "dialect_pay_mapi": ("易支付 /pay/ 接口", "epay /pay/ API"),
    "dialect_epay_v2": ("易支付 V2", "epay V2"),
    "dialect_payfor": ("payFor 接口", "payFor"),
    "dialect_vmq": ("V免签", "V免签 (vmq)"),
    "send_test": ("发送", "Send"),
    "test_result": ("结果", "Result"),
    "request": ("请求", "Request"),
    "http_status": ("HTTP 状态", "HTTP status"),
    "latency": ("耗时", "Time taken"),
    "error_detail": ("错误详情", "Error detail"),
    "url_invalid": ("请填写有效的 http:// 或 https:// 地址。", "Give a valid http:// or https:// URL."),
    "dialect_invalid": ("请选择该商户可用的协议。", "Choose a protocol this merchant may use."),
    "signature_checker": ("签名检查", "Signature checker"),
    "signature_help": (
        "粘贴对方发送的内容（查询字符串、表单、完整 URL 或 JSON），按所选协议用该商户的密钥重新计算签名并对比。"
        "密钥不会显示。易支付 V2 只核对 MD5 签名。",
        "Paste what was sent (a query string, a form body, a whole URL or JSON): the signature is computed again "
        "with this merchant's key by the chosen protocol's rule and compared. The key is never shown. "
        "For epay V2, MD5 signatures only.",
    ),
    "pasted": ("待检查内容", "Text to check"),
    "check": ("检查", "Check"),
    "sig_result": ("检查结果", "Result"),
    "sig_matches": ("签名一致。", "The signatures match."),
    "sig_differs": ("签名不一致。", "The signatures differ."),
    "sig_message": ("签名规则", "Signed message"),
    "msg_request": ("商户请求", "merchant's request"),
    "msg_notification": ("异步通知", "notification"),
    "msg_create_order": ("创建订单（createOrder）", "create order (createOrder)"),
    "msg_close_order": ("关闭订单（closeOrder）", "close order (closeOrder)"),
    "sig_canonical": ("待签名字符串（密钥已隐藏）", "String signed (key masked)"),
    "sig_ours": ("我方签名", "Our signature"),
    "sig_theirs": ("对方签名", "Their signature"),
    "sig_params": ("解析出的参数", "Parameters as read"),
    "sig_empty": ("请粘贴要检查的内容。", "Paste the text to check."),
    "sig_bad_json": ("JSON 无法解析，或不是一个对象。", "The JSON cannot be read, or is not an object."),
    "sig_no_params": ("没有读到任何参数。", "No parameters could be read."),
    "sig_unreadable": (
        "内容中有无法处理的字符（例如空字符）。",
        "The text holds characters that cannot be used (a NUL, say).",
    ),
    "sig_too_long": ("内容过长。", "The text is too long."),
    "sig_unknown_dialect": ("未知协议。", "Unknown protocol."),
}


def choose_language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    header = request.headers.get("accept-language", "")
    first = header.split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "zh"


def translator(lang: str):  # type: ignore[no-untyped-def]
    index = LANGUAGES.index(lang)

    def t(key: str) -> str:
        words = CATALOGUE.get(key)
        return words[index] if words else key

    return t
