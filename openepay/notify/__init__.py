"""Delivering notifications to merchants: the outbox, the worker, the schedule, the HTTP client.

It knows nothing about dialects beyond asking an order's dialect to format its message.
"""
