"""Endpoints of epay V2 (``/api/...``): the payment entry points, then the signed merchant API.

The merchant API's route takes every other ``/api/`` path (unknown ones are answered
``-5 接口方法不存在``), so it is included last.
"""

from fastapi import APIRouter

from openepay.protocols.epay_v2 import merchant_api, pay

router = APIRouter()
router.include_router(pay.router)
router.include_router(merchant_api.router)
