"""The API tests of receipts use the channels' app fixture."""

from tests.channels.conftest import api  # noqa: F401
