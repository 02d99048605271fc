"""Customers: individuals and enterprises, their identity documents and contact numbers."""
