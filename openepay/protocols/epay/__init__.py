"""Classic 易支付 (Rainbow Epay V1): ``submit.php``, ``mapi.php``, ``api.php``, MD5 signatures."""

DIALECT = "epay"
