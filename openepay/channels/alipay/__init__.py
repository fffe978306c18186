"""Official Alipay (支付宝开放平台): 当面付 precreate, page pay and WAP pay, RSA2 in public-key or certificate mode."""
