"""Fixtures of the gateway tests: a bank with fee plans, a merchant, a buyer."""

import pytest
from sqlalchemy import Engine

from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from tests.gateway.support import Buyer, GatewayBank, Shop


@pytest.fixture
def bank(writer: Writer, engine: Engine, clock: FixedClock, fast_hashing: None) -> GatewayBank:
    """Buyers' PINs hashed cheaply: every test makes some, and each pays with its PIN."""
    return GatewayBank(writer, engine, clock)


@pytest.fixture
def shop(bank: GatewayBank) -> Shop:
    return bank.merchant()


@pytest.fixture
def buyer(bank: GatewayBank) -> Buyer:
    return bank.buyer()
