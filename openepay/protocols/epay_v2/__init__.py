"""Epay V2 (Rainbow Epay ``/api/...``): SHA256withRSA signatures, timestamps, signed responses."""

DIALECT = "epay_v2"
