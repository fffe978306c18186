"""What a merchant or a buyer is told when a channel will not take a payment or make a refund.

A channel explains itself to the operator ("qrpool: no 微信支付 receiving account has a phone
online", "sandbox: channel paused"): which channel, which accounts, which phones. That is not
the merchant's or the buyer's business, and some of it (that money lands on personal receive
codes, how many accounts there are) is the operator's to keep. So the channel's words go to
the operator's log (``core.checkout``, ``core.refunds``), and every answer is written here,
from the refusal's reason alone, in plain Chinese.

The epay dialects (V1, V2) and payFor answer with ``FOR_MERCHANT``: a merchant's server reads
it, and so does a buyer on the error page of a browser jump, so it says what happened and what
to do in words both understand. The cashier, where the buyer can pick another way to pay, says
so (``FOR_BUYER``). Two dialects have their own vocabulary for the same reasons and keep it:
``/pay/`` answers with the seed's codes (702, 703) and their fixed texts, V免签 with V免签's own
messages; neither says more than the reason.
"""

from __future__ import annotations

from openepay.channels.base import RefusalReason
from openepay.core.refunds import RefundProblem

FOR_MERCHANT = {
    RefusalReason.PAUSED: "支付通道维护中，请稍后再试",
    RefusalReason.NO_CODE_FOR_AMOUNT: "该金额暂无可用收款码，请更换金额",
    RefusalReason.UPSTREAM_ERROR: "支付通道下单失败，请稍后再试",
    RefusalReason.NOT_SERVED: "没有可用的支付通道支持该支付方式，请检查sub_appid是否为商户号绑定的AppID",
}
FOR_BUYER = {
    RefusalReason.PAUSED: "该支付方式正在维护，请选择其他支付方式或稍后再试",
    RefusalReason.NO_CODE_FOR_AMOUNT: "该支付方式暂时无法收取这个金额，请选择其他支付方式或稍后再试",
    RefusalReason.UPSTREAM_ERROR: "支付通道暂时无法下单，请选择其他支付方式或稍后再试",
    RefusalReason.NOT_SERVED: "该支付方式暂不可用，请选择其他支付方式",
}
# Rainbow answers ``退款失败：`` and the upstream's words; ours say whether trying again can help.
REFUND_REFUSED = {
    RefundProblem.CHANNEL_FAILED: "退款失败：支付通道暂时无法退款，请稍后再试",
    RefundProblem.CHANNEL_CANNOT_REFUND: "退款失败：该订单的支付通道不支持原路退款，请联系平台退款",
    RefundProblem.CHANNEL_PENDING: "退款处理中：支付通道尚未确认结果，请稍后查询，勿更换退款单号重试",
}
