"""The ``/pay/mapi.php`` dialect (seed 001): epay fields, codes 200 and 700-901, fluctuating amounts."""

DIALECT = "pay_mapi"
