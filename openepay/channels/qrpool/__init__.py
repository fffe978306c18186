"""Personal receive QR codes told apart by amount, confirmed by the receiving phone (V免签-compatible)."""
