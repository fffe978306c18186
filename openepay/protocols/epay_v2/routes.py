"""Endpoints of epay V2 (``/api/...``): the payment entry points, then the signed merchant API.

The merchant API's route takes every other ``/api/`` path (unknown ones are answered
``-5 接口方法不存在``), so it is included last.
"""

from fastapi import APIRouter

from openepay.protocols.epay_v2 import merchant_api, pay
from openepay.web.dispatch import add_routes

router = APIRouter()
add_routes(router, pay.router)
add_routes(router, merchant_api.router)
