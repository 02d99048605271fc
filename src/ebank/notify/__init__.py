"""Notifications to customers: SMS sent through the outbox, delivered with retries."""
