"""A world for the risk tests: customers of various ages with accounts, contexts built with
sensible defaults, and evaluate/observe each in a writer command, on a clock that moves."""

from dataclasses import replace
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from ebank.accounts.models import CustomerAccount
from ebank.core.clock import BUSINESS_TZ, FixedClock
from ebank.core.writer import Command, Writer
from ebank.risk import service
from ebank.risk.models import Context, Decision
from tests.support import Bank

YUAN = 100
DEVICE = "d1" * 32  # a device's keyed hash, as security.devices keeps it
OTHER_DEVICE = "e2" * 32
EXT_PAYEE = "ext:999200000025:" + "ab" * 32


class World(Bank):
    """A bank whose customers' history is made by observing contexts at chosen times."""

    def aged(self, days: int = 400, funds: int = 0) -> tuple[int, CustomerAccount]:
        """A customer registered `days` ago, with a Type I account opened then."""
        now = self.clock.now()
        self.clock.set(now - timedelta(days=days))
        try:
            customer = self.person()
            return customer, self.account(customer, funds=funds)
        finally:
            self.clock.set(now)

    def ctx(self, customer: int, account: CustomerAccount | None = None, **fields: Any) -> Context:
        """A payment of ¥100 on mobile from DEVICE to an external payee, unless told."""
        base = Context(
            event="payment", customer_id=customer, channel="mobile", device=DEVICE,
            ip="10.0.0.5", amount=100 * YUAN,
            account_id=None if account is None else account.ledger_account_id, payee=EXT_PAYEE,
        )  # fmt: skip
        return replace(base, **fields)

    def observe(self, ctx: Context, *, ago: timedelta = timedelta(0)) -> None:
        """What happened `ago` before now (the clock comes back to now)."""
        now = self.clock.now()
        self.clock.set(now - ago)
        try:
            self.writer.execute(Command(lambda tx: service.observe(tx, ctx)))
        finally:
            self.clock.set(now)

    def decide(self, ctx: Context) -> Decision:
        return self.writer.execute(Command(lambda tx: service.evaluate(tx, ctx)))

    def hits(self, ctx: Context) -> set[str]:
        return {reason.code for reason in self.decide(ctx).reasons}

    def at_shanghai(self, hour: int, minute: int = 0) -> None:
        local = self.clock.now().astimezone(BUSINESS_TZ).replace(hour=hour, minute=minute)
        self.clock.set(local.astimezone(UTC))


@pytest.fixture
def world(writer: Writer, engine: Engine, clock: FixedClock) -> World:
    return World(writer, engine, clock)
