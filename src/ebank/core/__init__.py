"""Shared mechanisms: database, writer, money, clock, errors, audit, outbox."""
