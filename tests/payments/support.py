"""The bank, payers and payees the payments tests share."""

import pytest
from sqlalchemy import select

from ebank.accounts.models import CustomerAccount
from ebank.core.errors import EbankError
from ebank.ledger import queries
from ebank.payments import service as payments
from ebank.payments.models import Confirmation, PaymentView, TransferRequest
from ebank.payments.tables import payment_events
from ebank.security.service import Checked
from tests.support import VAULT, Bank, last_code

YUAN = 100
OTHER_BANK = "999200000025"


class Payer:
    """A customer enrolled online with a funded Type I account, paying through the service."""

    def __init__(self, bank: Bank) -> None:
        self.bank = bank
        self.id = bank.person()
        self.account = bank.account(self.id, funds=1_000_000 * YUAN)
        bank.enrol(self.id)

    def request(self, to: CustomerAccount | str, amount: int, **extra: object) -> TransferRequest:
        payee = to if isinstance(to, str) else to.number
        name = extra.pop("payee_name", None) or self.bank.name_of(to)
        return TransferRequest(
            customer_id=self.id, channel="online", from_account=self.account.number,
            payee_account=payee, payee_name=name, amount=amount, **extra,  # type: ignore[arg-type]
        )  # fmt: skip

    def sms(self, request: TransferRequest) -> Confirmation:
        """Ask for a code for this request and confirm with it, as the customer would."""
        self.bank.writer.execute(payments.send_code(VAULT, request))
        return Confirmation("sms", last_code(self.bank.engine))

    def pay(
        self, request: TransferRequest, confirmation: Confirmation | None = None, key: str = "k1"
    ) -> Checked[int]:
        return self.bank.writer.execute(
            payments.transfer(VAULT, request, confirmation or Confirmation(), idempotency_key=key)
        )

    def paid(self, request: TransferRequest, confirmation: Confirmation | None = None,
             key: str = "k1") -> PaymentView:  # fmt: skip
        payment_id = self.pay(request, confirmation, key).value()
        return self.bank.payment(self.id, payment_id)


class PaymentsBank(Bank):
    def name_of(self, account: CustomerAccount | str) -> str:
        assert not isinstance(account, str), "give payee_name for an account elsewhere"
        with self.engine.connect() as conn:
            from ebank.customers.service import holder

            return holder(conn, account.customer_id)[1]

    def payment(self, customer: int, payment_id: int) -> PaymentView:
        with self.engine.connect() as conn:
            return payments.payment_of(conn, customer_id=customer, payment_id=payment_id)

    def available(self, account: CustomerAccount) -> int:
        with self.engine.connect() as conn:
            from ebank.accounts.service import get_account

            return get_account(conn, number=account.number).available

    def ledger_balance(self, code: str) -> int:
        with self.engine.connect() as conn:
            return queries.get_account(conn, code=code).balance

    def events(self, payment_id: int) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(payment_events.c.status)
                    .where(payment_events.c.payment_id == payment_id)
                    .order_by(payment_events.c.id)
                ).scalars()
            )


def refused(bank: PaymentsBank, payer: Payer, code: str, request: TransferRequest,
            confirmation: Confirmation | None = None) -> None:  # fmt: skip
    """The transfer is refused with `code` and nothing about the payer's money changed."""
    before = bank.available(payer.account), bank.balance(payer.account)
    with pytest.raises(EbankError) as caught:
        payer.pay(request, confirmation, key=f"refused-{code}").value()
    assert caught.value.code == code, caught.value
    assert (bank.available(payer.account), bank.balance(payer.account)) == before
