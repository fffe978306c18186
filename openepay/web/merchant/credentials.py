"""The merchant's API credentials: its pid, a new key (shown once), its RSA public key, and the platform's.

The key is never shown again after the answer that made it: the page shows only that one exists.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import audit, merchant_actions
from openepay.admin.sessions import Current
from openepay.protocols.epay_v2.platform_key import platform_key
from openepay.protocols.epay_v2.signing import KeyFormatError, load_public_key, public_pem
from openepay.web.merchant.auth import PREFIX, signed_in
from openepay.web.merchant.pages import render
from openepay.web.merchant.portal import actor_of, portal_of
from openepay.web.signin.pages import see_other

router = APIRouter()
NOTICES = {"rsa_saved"}


async def _credentials_page(
    request: Request, me: Current, *, error: str | None = None, pasted: str = "", status: int = 200
) -> Response:
    gateway = portal_of(request).gateway
    merchant = await gateway.merchants.get(me.user.merchant_pid)
    platform = await platform_key(gateway.db, gateway.box)
    notice = request.query_params.get("notice")
    context = {
        "merchant": merchant,
        "platform": platform,
        "error": error,
        "pasted": pasted,
        "notice": notice if notice in NOTICES else None,
    }
    return render(request, "credentials.html", context, me, status=status)


@router.get(PREFIX + "/credentials")
async def credentials(request: Request, me: Current = Depends(signed_in)) -> Response:
    return await _credentials_page(request, me)


@router.post(PREFIX + "/credentials/rotate-key")
async def rotate_key(request: Request, me: Current = Depends(signed_in)) -> Response:
    """A new key; the old one stops working now. This answer is the only place the key appears."""
    gateway = portal_of(request).gateway
    made = await merchant_actions.rotate_key(gateway, me.user.merchant_pid, actor_of(request, me))
    return render(request, "key.html", {"credentials": made}, me)


@router.post(PREFIX + "/credentials/rsa")
async def upload_rsa_key(request: Request, me: Current = Depends(signed_in)) -> Response:
    """The RSA public key that checks the merchant's epay V2 signatures (PEM or Rainbow's bare base64)."""
    pasted = str((await request.form()).get("public_key") or "")
    try:
        key = load_public_key(pasted)
    except KeyFormatError as refused:
        return await _credentials_page(request, me, error=str(refused), pasted=pasted[:4000], status=400)
    gateway = portal_of(request).gateway
    pid = me.user.merchant_pid
    await gateway.merchants.update(pid, rsa_public_key=public_pem(key))
    await audit.record(
        gateway.db, actor_of(request, me), "merchant.set_rsa", f"merchant:{pid}", after={"bits": key.key_size}
    )
    return see_other(f"{PREFIX}/credentials?notice=rsa_saved")
