"""WeChat Pay API v3 for direct merchants: Native (QR), H5 (pay page), query, close and refund."""
