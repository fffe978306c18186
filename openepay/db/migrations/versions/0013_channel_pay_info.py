"""The parameters a buyer's page hands to the upstream's JS bridge (WeChat JSAPI pay).

A JSAPI offer is neither a page, nor a QR, nor an app link: it is the signed set of
``appId, timeStamp, nonceStr, package, signType, paySign`` that the merchant's page passes to
``WeixinJSBridge``. It is stored with the order, like the other offers, so a repeated create
for the same order hands out the same prepay id instead of placing a second WeChat order.

Revision ID: 0013_channel_pay_info
Revises: 0009_hotpath
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_channel_pay_info"
down_revision = "0009_hotpath"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("pay_info", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("pay_info")
