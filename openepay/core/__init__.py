"""The one order model every dialect and channel goes through."""
