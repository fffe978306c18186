"""What every signed-in form must carry (the session's CSRF token, text a database can store),
and the two ways a request is turned back: a refusal page or a redirect."""

from __future__ import annotations

import hmac

from starlette.datastructures import UploadFile
from starlette.requests import Request

from openepay.admin.roles import Role
from openepay.db.types import storable

CSRF_FIELD = "csrf"
# The one form field that may carry a file (a picture of a receive code); every other field is text.
UPLOAD_FIELD = "image"


class Refusal(Exception):
    """Answered with the console's 403 (or 404, 400) page: ``kind`` is "role", "csrf", "not_found" or "input"."""

    def __init__(self, kind: str, needed: Role | None = None, status: int = 403) -> None:
        super().__init__(kind)
        self.kind = kind
        self.needed = needed
        self.status = status


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def same_token(sent: object, expected: str) -> bool:
    """Whether a form sent the token ``expected`` (compared in constant time; an empty one never matches)."""
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


async def check_form(request: Request, expected: str, refusal: type[Refusal] = Refusal) -> None:
    """A POST must carry the CSRF token ``expected``, and only text both databases can store
    (besides a file in ``UPLOAD_FIELD``, which its page reads itself)."""
    if request.method != "POST":
        return
    form = await request.form()
    if not same_token(form.get(CSRF_FIELD), expected):
        raise refusal("csrf")
    if not all(
        (name == UPLOAD_FIELD and isinstance(value, UploadFile)) or (isinstance(value, str) and storable(value))
        for name, value in form.multi_items()
    ):
        raise refusal("input", status=400)
