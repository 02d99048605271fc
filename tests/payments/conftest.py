"""Fixtures of the payments tests: a bank, a funded payer, an empty payee account."""

import pytest
from sqlalchemy import Engine

from ebank.accounts.models import CustomerAccount
from ebank.core.clock import FixedClock
from ebank.core.settings import get_settings
from ebank.core.writer import Writer
from tests.payments.support import Payer, PaymentsBank


@pytest.fixture
def bank(writer: Writer, engine: Engine, clock: FixedClock) -> PaymentsBank:
    return PaymentsBank(writer, engine, clock)


@pytest.fixture
def alice(bank: PaymentsBank) -> Payer:
    return Payer(bank)


@pytest.fixture
def bob(bank: PaymentsBank) -> CustomerAccount:
    """Another customer's account at this bank, empty."""
    return bank.account(bank.person(), funds=0)


@pytest.fixture
def clearing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inter-bank transfers are available (a clearing house is configured)."""
    monkeypatch.setattr(get_settings(), "clearing_url", "http://127.0.0.1:9")
