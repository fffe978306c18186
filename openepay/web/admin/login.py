"""Signing in to the console (password, then TOTP when the user has it or the gateway requires it),
out, and everywhere out: the shared steps (``openepay.web.signin.routes``) on the console's area."""

from __future__ import annotations

from openepay.admin.roles import Role
from openepay.web.admin.auth import CONSOLE, needs
from openepay.web.admin.console import actor_of
from openepay.web.admin.pages import render
from openepay.web.signin.routes import SignInFlow

FLOW = SignInFlow(
    area=CONSOLE,
    render=render,
    signed_in=needs(Role.VIEWER),
    actor_of=actor_of,
    requires_totp=lambda settings: settings.admin_require_totp,
)
router = FLOW.router()
