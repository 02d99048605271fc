"""Limits on money leaving a customer: one service every money-moving service asks."""
