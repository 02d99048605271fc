"""Staff operations: maker-checker approvals (and, later, exceptions and complaints)."""
