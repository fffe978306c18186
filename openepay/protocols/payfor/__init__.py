"""The ``/Home/Pay/payFor`` dialect (seed 002, the PaysApi family): value-concatenation keys."""

DIALECT = "payfor"
