"""A bank for the standing-arrangement tests: customers with funded accounts, enrolled online,
who add payees with the SMS code sent for them; enterprises with settlement accounts."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from ebank.accounts.models import CustomerAccount
from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from ebank.customers.identity import credit_check_for
from ebank.customers.service import holder, register_enterprise
from ebank.payments import service as payments
from ebank.payments.models import PaymentView
from ebank.standing import payees
from ebank.standing.tables import standing_occurrences
from tests.support import STAFF, VAULT, Bank, last_code

YUAN = 100


class StandingBank(Bank):
    def company(self, n: int = 1) -> int:
        """Enterprise number `n` (a valid, distinct credit code)."""
        first17 = f"91350100MA2{n:06d}"
        code = first17 + credit_check_for(first17)
        return self.writer.execute(
            register_enterprise(
                VAULT, name=f"福州示例{n}号有限公司", credit_code=code,
                legal_representative="欧阳锋", mobile="15900001111", actor=STAFF,
            )
        ).id  # fmt: skip

    def name_of(self, customer: int) -> str:
        with self.engine.connect() as conn:
            return str(holder(conn, customer)[1])

    def payments_of(self, customer: int) -> list[PaymentView]:
        with self.engine.connect() as conn:
            return payments.payments_of(conn, customer)

    def occurrences(self, order_id: int) -> list[tuple[str, int | None, str | None]]:
        """(due date, payment id, failure code) of each run of the order, in order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    standing_occurrences.c.due_on, standing_occurrences.c.payment_id,
                    standing_occurrences.c.failure_code,
                )
                .where(standing_occurrences.c.order_id == order_id)
                .order_by(standing_occurrences.c.due_on)
            ).all()  # fmt: skip
        return [(row.due_on.isoformat(), row.payment_id, row.failure_code) for row in rows]

    def at(self, year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> None:
        """Set the clock to this time in Shanghai."""
        local = datetime(year, month, day, hour, minute, tzinfo=payments.BUSINESS_TZ)
        self.clock.set(local.astimezone(UTC))


class Holder:
    """A customer with a funded Type I account (or the tier given), enrolled online."""

    def __init__(self, bank: StandingBank, funds: int = 1_000_000 * YUAN, tier: str = "I") -> None:
        self.bank = bank
        self.id = bank.person()
        self.account = bank.account(self.id, tier, funds=funds)
        bank.enrol(self.id)

    def payee_code(self, account: str, name: str, bank_code: str | None = None) -> str:
        """Ask for the code that adds this payee; the code the SMS carried."""
        self.bank.writer.execute(
            payees.send_code(VAULT, customer_id=self.id, account=account, name=name, bank=bank_code)
        )
        return last_code(self.bank.engine)

    def add_payee(self, to: CustomerAccount, *, alias: str = "", key: str | None = None) -> int:
        """Add the holder of `to` as a payee, with the code sent for it; the payee's id."""
        name = self.bank.name_of(to.customer_id)
        code = self.payee_code(to.number, name)
        return self.bank.writer.execute(
            payees.add(
                VAULT, customer_id=self.id, channel="online", account=to.number, name=name,
                alias=alias, code=code, idempotency_key=key or f"payee-{to.number}",
            )
        ).value()  # fmt: skip


@pytest.fixture
def bank(writer: Writer, engine: Engine, clock: FixedClock) -> StandingBank:
    return StandingBank(writer, engine, clock)


@pytest.fixture
def alice(bank: StandingBank) -> Holder:
    return Holder(bank)


@pytest.fixture
def bob(bank: StandingBank) -> CustomerAccount:
    """Another customer's account at this bank, empty."""
    return bank.account(bank.person(), funds=0)
