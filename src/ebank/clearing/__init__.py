"""Inter-bank clearing: ISO 20022-style messages with a clearing house, both ways."""
