"""Bank cards: debit cards on deposit accounts, credit cards with a credit line."""
