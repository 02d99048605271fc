"""Customer accounts: deposit products a customer holds, each backed by a ledger account."""
