"""Electronic receipts (电子回单): one per completed payment, verifiable by anybody holding it."""
