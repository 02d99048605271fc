"""Real-time risk control: every login, payee change and money movement is scored before it
happens (issue 5, DOMAIN.md §6)."""
