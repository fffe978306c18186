"""Signing in, the same for the operator console (``/admin``) and the merchant portal (``/merchant``).

Each of the two is an ``Area`` (its path, cookies, tables and refusal page); the password and TOTP
steps, the cookies, the CSRF checks and where ``next`` may point are written here once.
"""
