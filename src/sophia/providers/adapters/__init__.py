"""Wire-protocol adapters shared by every vendor that speaks the same protocol."""
