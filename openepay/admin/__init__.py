"""The operator console's accounts: users and roles, passwords, TOTP, sessions and the audit log.

The web pages live in ``openepay.web.admin``; the first user is made by ``openepay admin create``.
"""
