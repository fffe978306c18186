"""JSON text by an encoder's options, with its C encoder made once.

``JSONEncoder.encode`` (and so ``json.dumps``) makes a new C encoder, and a closure, for every
value it encodes: for the small objects the hot paths write (an order's routing record and
attributes, a ``mapi.php`` answer) that was as much as the encoding itself. Made without the
map of the containers it is inside (``check_circular``), the C encoder keeps nothing from one
value to the next, so one made once gives the very same text. Without that map a value that
contains itself fails with ``RecursionError`` instead of ``ValueError``; what goes through here
is built by the gateway and never does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any


def text_encoder(options: json.JSONEncoder) -> Callable[[Any], str]:
    """``options.encode``, the same text, with the C encoder made now rather than for each value."""
    if c_make_encoder is None or options.indent is not None:
        return options.encode
    iterencode = c_make_encoder(
        None,
        options.default,
        encode_basestring_ascii if options.ensure_ascii else encode_basestring,
        None,
        options.key_separator,
        options.item_separator,
        options.sort_keys,
        options.skipkeys,
        options.allow_nan,
    )

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


# ``json.dumps`` with its default options: what SQLAlchemy writes a JSON column with.
dumps = text_encoder(json.JSONEncoder())
