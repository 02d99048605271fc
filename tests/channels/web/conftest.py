"""The page tests use the API tests' app: `api` is the app started, spoken to in process."""

from tests.channels.conftest import api

__all__ = ["api"]
