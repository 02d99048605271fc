"""Standing arrangements a customer makes once: the payee book (收款人名册), standing orders
(scheduled and recurring transfers) and direct-debit mandates (代扣协议)."""
