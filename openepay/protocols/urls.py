"""Appending a query string to a merchant's URL the way browsers and PHP will read it back."""

from __future__ import annotations

from urllib.parse import urlencode


def http_build_query(params: dict[str, str]) -> str:
    """PHP ``http_build_query`` encoding (RFC 1738: space as ``+``), in insertion order."""
    return urlencode(params)


def append_query(url: str, query: str) -> str:
    """Add ``query`` to ``url``, keeping the merchant's own query string and fragment.

    Rainbow appends after a fragment when the URL has ``#...?`` in it; we put the query
    where the server will see it, before the fragment.
    """
    base, hash_mark, fragment = url.partition("#")
    if base.endswith(("?", "&")):
        separator = ""
    else:
        separator = "&" if "?" in base else "?"
    return f"{base}{separator}{query}{hash_mark}{fragment}"
