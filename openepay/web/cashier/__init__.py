"""The buyer's cashier: choose a pay type, scan or tap to pay, come back to the shop."""
