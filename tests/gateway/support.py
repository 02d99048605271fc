"""The bank, merchants and buyers the gateway tests share."""

from typing import Any

from sqlalchemy import select

from ebank.accounts.models import CustomerAccount
from ebank.cards import service as cards
from ebank.core.writer import Command
from ebank.customers.identity import credit_check_for
from ebank.customers.service import register_enterprise
from ebank.gateway import fees, merchants, orders
from ebank.gateway.merchants import Merchant
from ebank.gateway.models import OrderRequest, OrderView, Payment
from ebank.gateway.tables import movements
from ebank.ledger import queries
from ebank.security import service as security
from ebank.security.service import Checked
from tests.support import STAFF, VAULT, Bank, person_id

YUAN = 100
PIN = "804317"
PASSWORD = "good2026pass"


class GatewayBank(Bank):
    """A bank with its fee plans, able to sign merchants up and give buyers cards."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.writer.execute(Command(fees.ensure_plans))
        self._merchants = 0

    def merchant(self, *, cycle: str = "t0_eod", settle_days: int = 0,
                 fee_plan: str = "B2C-0.25") -> "Shop":  # fmt: skip
        """A merchant (an enterprise with an empty settlement account) and its terms."""
        self._merchants += 1
        credit_code = f"91350100M{self._merchants:08d}"
        credit_code += credit_check_for(credit_code)
        customer = self.writer.execute(
            register_enterprise(
                VAULT, name=f"示例商贸有限公司{self._merchants}", credit_code=credit_code,
                legal_representative="欧阳锋", mobile=f"1590000{self._merchants:04d}",
                actor=STAFF,
            )
        ).id  # fmt: skip
        account = self.account(customer, tier="corporate", funds=0)
        merchant = self.writer.execute(
            merchants.onboard(
                customer_id=customer, name=f"示例商城{self._merchants}", industry="retail",
                settlement_account=account.number, fee_plan=fee_plan, cycle=cycle,
                settle_days=settle_days, actor=STAFF,
            )
        )  # fmt: skip
        return Shop(self, merchant, account, credit_code)

    def buyer(self, funds: int = 100_000 * YUAN, *, credit_line: int = 0) -> "Buyer":
        """A person enrolled online, with a PIN, a funded account and its debit card (and a
        credit card when `credit_line` is given)."""
        customer = self.person()
        account = self.account(customer, funds=funds)
        self.enrol(customer)
        self.writer.execute(
            security.set_secret(customer_id=customer, kind="transaction_pin", secret=PIN,
                                actor=STAFF)
        )  # fmt: skip
        debit = self.writer.execute(
            cards.issue_debit_card(VAULT, customer_id=customer, account_number=account.number,
                                   actor=STAFF)
        ).card  # fmt: skip
        credit = None
        if credit_line:
            credit = self.writer.execute(
                cards.issue_credit_card(VAULT, customer_id=customer, credit_line=credit_line,
                                        actor=STAFF)
            ).card  # fmt: skip
        return Buyer(self, customer, account, debit.id, None if credit is None else credit.id)

    def ledger_balance(self, code: str) -> int:
        with self.engine.connect() as conn:
            return queries.get_account(conn, code=code).balance

    def balance_of(self, account: CustomerAccount) -> int:
        return self.balance(account)


class Shop:
    """A merchant as its server sees it: creating and handling orders through the service."""

    def __init__(self, bank: GatewayBank, merchant: Merchant, account: CustomerAccount,
                 credit_code: str) -> None:  # fmt: skip
        self.bank, self.merchant, self.account = bank, merchant, account
        self.credit_code = credit_code  # its operators log in with it
        self._orders = 0

    @property
    def id(self) -> int:
        return self.merchant.id

    def request(self, amount: int, mode: str = "instant", **extra: Any) -> OrderRequest:
        self._orders += 1
        return OrderRequest(
            merchant_id=self.id, out_trade_no=extra.pop("out_trade_no", f"T{self._orders:06d}"),
            amount=amount, mode=mode, subject=extra.pop("subject", "一本书"),
            return_url="https://shop.example/return",
            notify_url=extra.pop("notify_url", "https://shop.example/notify"),
            **extra,
        )  # fmt: skip

    def order(self, amount: int, mode: str = "instant", **extra: Any) -> OrderView:
        return self.bank.writer.execute(orders.create(VAULT, self.request(amount, mode, **extra)))

    def refresh(self, order: OrderView) -> OrderView:
        with self.bank.engine.connect() as conn:
            return orders.get(conn, merchant_id=self.id, out_trade_no=order.out_trade_no)

    def settlement_balance(self) -> int:
        return self.bank.balance(self.account)

    def movements(self) -> list[Any]:
        with self.bank.engine.connect() as conn:
            query = select(movements).where(movements.c.merchant_id == self.id)
            return conn.execute(query.order_by(movements.c.id)).all()


class Buyer:
    def __init__(self, bank: GatewayBank, customer: int, account: CustomerAccount,
                 debit_card: int, credit_card: int | None) -> None:  # fmt: skip
        self.bank, self.id, self.account = bank, customer, account
        self.debit_card, self.credit_card = debit_card, credit_card

    def payment(self, order: OrderView, **extra: Any) -> Payment:
        return self.payment_by_token(orders.pay_token(VAULT, order.trade_no), **extra)

    def payment_by_token(self, token: str, **extra: Any) -> Payment:
        """Paying the order behind a pay link, with the debit card and the PIN by default."""
        return Payment(
            token=token, customer_id=self.id,
            channel=extra.pop("channel", "online"), card_id=extra.pop("card_id", self.debit_card),
            pin=extra.pop("pin", PIN), **extra,
        )  # fmt: skip

    def pay(self, order: OrderView, **extra: Any) -> Checked[OrderView]:
        return self.bank.writer.execute(orders.pay(VAULT, self.payment(order, **extra)))

    def paid(self, order: OrderView, **extra: Any) -> OrderView:
        return self.pay(order, **extra).value()

    def balance(self) -> int:
        return self.bank.balance(self.account)


class Shopper(Buyer):
    """A buyer who logs in: a login password, and the resident ID number they log in with."""

    def __init__(self, buyer: Buyer, id_number: str) -> None:
        super().__init__(buyer.bank, buyer.id, buyer.account, buyer.debit_card, buyer.credit_card)
        self.id_number = id_number


def shopper(bank: GatewayBank, **extra: int) -> Shopper:
    buyer = bank.buyer(**extra)
    bank.writer.execute(
        security.set_secret(customer_id=buyer.id, kind="login_password", secret=PASSWORD,
                            actor=STAFF)
    )  # fmt: skip
    return Shopper(buyer, person_id(bank._people))  # Bank.person numbers its people in turn
