"""V免签's merchant API (``createOrder``, ``getOrder``, ``checkOrder``, ``closeOrder``): value-concatenation MD5."""

DIALECT = "vmq"
