"""The merchant portal's accounts: who signs in for which merchant, and self-registration.

The web pages live in ``openepay.web.merchant``; the operator makes sign-ins with
``openepay merchant login PID``.
"""
