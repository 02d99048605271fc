"""The JSON API channel under /api/v1: mobile banking, corporate clients, merchant gateway."""
