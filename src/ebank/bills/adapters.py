"""What talks to a biller: the adapter protocol, and the simulated biller the demo ships with.

An adapter answers two questions. `inquire(number)`: the bills of the customer's number at the
biller (none for a phone, which is topped up), or BILL_ACCOUNT_NOT_FOUND. `pay(...)`: take this
payment, named by the bank's reference; the answer is a receipt, a definite refusal, or
unknown (no answer). The bank asks again with the same reference until it gets a definite
answer, so a biller must answer a repeated reference as it did the first time and never charge
twice. Adapters do I/O: the bank calls them outside its writer.
"""

import hashlib
from collections.abc import Callable
from datetime import date
from typing import Protocol

from sqlalchemy import Connection, Engine, exists, select
from sqlalchemy.exc import IntegrityError

from ebank.bills.models import (
    Bill,
    Biller,
    BillerReceipt,
    BillerRefusal,
    BillerUnknown,
    PayOutcome,
)
from ebank.bills.tables import sim_biller_payments
from ebank.core.clock import Clock, business_date
from ebank.core.crypto import mask_name
from ebank.core.db import BEGIN_OPTION
from ebank.core.errors import EbankError


class BillerAdapter(Protocol):
    def inquire(self, number: str) -> list[Bill]:
        """The number's bills, paid or not; [] for a phone. BILL_ACCOUNT_NOT_FOUND if the
        biller has no such number, BILLER_UNAVAILABLE if it cannot be asked now."""
        ...

    def pay(self, bill_id: str | None, number: str, amount: int, our_reference: str) -> PayOutcome:
        """Take the payment (a bill in full, or a top-up of `amount`) once per reference."""
        ...


# -- the simulated biller ----------------------------------------------------------------------
NOT_FOUND_SUFFIX = "0000"  # such a number does not exist at the biller
REFUSED_SUFFIX = "9999"  # the biller refuses every payment to it (an account closed for payment)
ANSWER_LOST_SUFFIX = "8888"  # the biller takes the payment, but its first answer is lost
DUE_DAY = 25  # a month's bill is due on this day of the next month
_RANGES = {  # what a month's bill comes to, in fen
    "electricity": (5_000, 40_000), "water": (2_000, 15_000), "gas": (3_000, 20_000),
    "cable_tv": (2_500, 2_500),
}  # fmt: skip
_SURNAMES = "陈林黄张李王吴刘郑杨"
_GIVEN = ("建华", "秀英", "志强", "丽娟", "明辉", "海燕", "国平", "雪梅")


def _month_before(day: date) -> str:
    return f"{day.year}-{day.month - 1:02d}" if day.month > 1 else f"{day.year - 1}-12"


class SimulatedBiller:
    """A biller in Fuzhou, simulated in process for the demo and the tests.

    Every number has a bill for last month, derived from a hash of the biller, the number and
    the month, which stays paid once paid: the biller keeps its books in its own table
    (`sim_biller_payments`), on its own connection, as another system would. Numbers ending
    in 0000 do not exist; in 9999, every payment is refused; in 8888, the first answer to each
    payment is lost after the biller took it (ask again: the same reference is not charged
    twice).
    """

    def __init__(self, biller: Biller, engine: Engine, clock: Clock) -> None:
        self.biller, self.engine, self.clock = biller, engine, clock

    def _digest(self, number: str, period: str) -> str:
        return hashlib.sha256(f"{self.biller.code}|{number}|{period}".encode()).hexdigest()

    def _bill(self, conn: Connection, number: str, period: str) -> Bill:
        digest = self._digest(number, period)
        low, high = _RANGES[self.biller.category]
        value = int(digest[8:24], 16)
        bill_id = period.replace("-", "") + digest[:8].upper()
        year, month = int(period[:4]), int(period[5:])
        due = date(year + month // 12, month % 12 + 1, DUE_DAY)
        holder = _SURNAMES[value % len(_SURNAMES)] + _GIVEN[value // 16 % len(_GIVEN)]
        paid = conn.execute(
            select(
                exists().where(
                    sim_biller_payments.c.biller_code == self.biller.code,
                    sim_biller_payments.c.bill_id == bill_id,
                )
            )
        ).scalar_one()
        return Bill(bill_id, period, low + value % (high - low + 1), mask_name(holder), due, paid)

    def _named(self, conn: Connection, number: str, bill_id: str | None) -> Bill | None:
        """The bill with this id, of any month up to last month, if it is this number's."""
        if not isinstance(bill_id, str) or len(bill_id) != 14 or not bill_id[:6].isdigit():
            return None
        period = f"{bill_id[:4]}-{bill_id[4:6]}"
        if not "01" <= period[5:] <= "12" or period > _month_before(self._today()):
            return None
        bill = self._bill(conn, number, period)
        return bill if bill.bill_id == bill_id else None

    def _today(self) -> date:
        return business_date(self.clock.now())

    def inquire(self, number: str) -> list[Bill]:
        if number.endswith(NOT_FOUND_SUFFIX):
            raise EbankError("BILL_ACCOUNT_NOT_FOUND")
        if not self.biller.has_bills:
            return []
        with self.engine.connect() as conn:
            return [self._bill(conn, number, _month_before(self._today()))]

    def _refusal(
        self, conn: Connection, bill_id: str | None, number: str, amount: int
    ) -> BillerRefusal | None:
        if number.endswith(NOT_FOUND_SUFFIX):
            return BillerRefusal("BILL_ACCOUNT_NOT_FOUND")
        if number.endswith(REFUSED_SUFFIX):
            return BillerRefusal("BILLER_REFUSED")
        if not self.biller.has_bills:
            ok = bill_id is None and amount in self.biller.topup_amounts
            return None if ok else BillerRefusal("BILLER_REFUSED")
        bill = self._named(conn, number, bill_id)
        if bill is None:
            return BillerRefusal("BILL_NOT_FOUND")
        if bill.paid:
            return BillerRefusal("BILL_ALREADY_PAID")
        return None if amount == bill.amount else BillerRefusal("BILL_AMOUNT_MISMATCH")

    def _pay(self, bill_id: str | None, number: str, amount: int, reference: str) -> PayOutcome:
        t = sim_biller_payments
        with self.engine.connect() as conn:
            conn.execution_options(**{BEGIN_OPTION: "BEGIN IMMEDIATE"})  # SQLite: write lock now
            with conn.begin():
                done = conn.execute(
                    select(t.c.confirmation).where(
                        t.c.biller_code == self.biller.code, t.c.reference == reference
                    )
                ).scalar()
                if done is not None:
                    return BillerReceipt(done)
                refusal = self._refusal(conn, bill_id, number, amount)
                if refusal is not None:
                    return refusal
                digest = hashlib.sha256(f"{self.biller.code}|{reference}".encode()).hexdigest()
                confirmation = f"{self.biller.code}{digest[:12].upper()}"
                conn.execute(
                    t.insert().values(
                        biller_code=self.biller.code, reference=reference, bill_id=bill_id,
                        amount=amount, confirmation=confirmation, paid_at=self.clock.now(),
                    )
                )  # fmt: skip
        if number.endswith(ANSWER_LOST_SUFFIX):
            return BillerUnknown("the simulated biller's answer was lost")
        return BillerReceipt(confirmation)

    def pay(self, bill_id: str | None, number: str, amount: int, our_reference: str) -> PayOutcome:
        try:
            return self._pay(bill_id, number, amount, our_reference)
        except IntegrityError:  # another worker recorded this reference just now: a repeat
            return self._pay(bill_id, number, amount, our_reference)


# Adapters by the name a biller's row gives: each is made for one biller with the process's
# engine and clock (a real one would take its address and keys from the settings).
ADAPTERS: dict[str, Callable[[Biller, Engine, Clock], BillerAdapter]] = {
    "simulated": SimulatedBiller,
}


def adapter_for(biller: Biller, engine: Engine, clock: Clock) -> BillerAdapter:
    return ADAPTERS[biller.adapter](biller, engine, clock)
