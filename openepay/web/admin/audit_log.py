"""The audit log page, for administrators."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.db.models import AuditEntry
from openepay.web.admin.auth import PREFIX, needs
from openepay.web.admin.console import console_of
from openepay.web.admin.pages import render

router = APIRouter()
PER_PAGE = 100


@router.get(PREFIX + "/audit")
async def audit_page(request: Request, page: int = 1, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    page = max(page, 1)
    async with console_of(request).gateway.db.reading() as session:
        entries = list(
            (
                await session.scalars(
                    select(AuditEntry).order_by(AuditEntry.id.desc()).offset((page - 1) * PER_PAGE).limit(PER_PAGE + 1)
                )
            ).all()
        )
    context = {"entries": entries[:PER_PAGE], "page": page, "more": len(entries) > PER_PAGE}
    return render(request, "audit.html", context, me)
