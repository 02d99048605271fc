"""The demo bank: the chart of accounts, a few customers with money, a little history.

Seeding is idempotent (fixed idempotency keys, accounts opened only when missing), so
`make demo` can run any number of times on the same database.
"""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine

from ebank.core import audit
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Writer
from ebank.customers import identity
from ebank.customers import service as customers
from ebank.customers.models import CustomerView, Kind
from ebank.ledger import queries
from ebank.ledger import service as ledger
from ebank.ledger.chart import ensure_chart
from ebank.ledger.models import AccountView, EntryResult


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    account: str
    name: str
    deposit: int  # fen, paid in at the counter
    id_number: str  # resident ID, or the credit code of an enterprise
    mobile: str


def _resident_id(first17: str) -> str:
    return first17 + identity.check_digit_for(first17)


CUSTOMERS = (
    DemoCustomer("6217000100000001", "张三 Zhang San", 5_000_000,
                 _resident_id("11010519880312001"), "13800138001"),
    DemoCustomer("6217000100000002", "李四 Li Si", 1_280_050,
                 _resident_id("31011519920705003"), "13900139002"),
    DemoCustomer("6217000100000003", "王五 Wang Wu", 30_000,
                 _resident_id("44030519750101005"), "13700137003"),
    DemoCustomer("6217000100000004", "青禾科技有限公司 Qinghe Technology Co.", 250_000_000,
                 "91350100M000100Y43", "13600136004"),
)  # fmt: skip
ENTERPRISE_LEGAL_REP = "赵六 Zhao Liu"
# (from, to, fen, memo): a little history so that statements are not empty.
TRANSFERS = (
    ("6217000100000001", "6217000100000002", 12_300, "午餐 AA / lunch"),
    ("6217000100000004", "6217000100000003", 850_000, "工资 / salary"),
    ("6217000100000002", "6217000100000001", 5_000, "还款 / repayment"),
)


def seed(writer: Writer, vault: Vault) -> None:
    for c in CUSTOMERS:
        if c.id_number[:17].isdigit():
            command = customers.register_individual(
                vault, name=c.name, id_number=c.id_number, mobile=c.mobile, actor="system:demo"
            )
        else:
            command = customers.register_enterprise(
                vault, name=c.name, credit_code=c.id_number, mobile=c.mobile,
                legal_representative=ENTERPRISE_LEGAL_REP, actor="system:demo",
            )  # fmt: skip
        try:
            writer.execute(command)
        except EbankError as exc:
            if exc.code != "CUSTOMER_EXISTS":  # seeded by an earlier run
                raise
    _seed_ledger(writer)


def _seed_ledger(writer: Writer) -> None:
    def open_customers(tx):  # type: ignore[no-untyped-def]
        chart = ensure_chart(tx)
        return chart, {
            c.account: ledger.open_account(
                tx, code=c.account, name=c.name, currency="CNY", exist_ok=True
            ).id
            for c in CUSTOMERS
        }

    chart, ids = writer.execute(Command(open_customers, sql=False))
    writer.execute(
        Command(
            lambda tx: audit.record(tx, actor="system", action="demo.seed", channel="cli",
                                    detail={"customers": len(CUSTOMERS)}),
            sql=False,
        )
    )  # fmt: skip
    cash = chart["GL-CASH-CNY"]
    for c in CUSTOMERS:
        _post(writer, f"deposit-{c.account}", cash, ids[c.account], c.deposit, "现金存入 / cash")
    for n, (src, dst, amount, memo) in enumerate(TRANSFERS):
        _post(writer, f"transfer-{n}", ids[src], ids[dst], amount, memo)


def _post(writer: Writer, key: str, debit: int, credit: int, amount: int, memo: str) -> None:
    command = ledger.transfer_command(
        debit=debit, credit=credit, amount=amount, memo=memo, scope="demo", key=key
    )
    result = writer.execute(command)
    assert isinstance(result, EntryResult)


def registered(engine: Engine, vault: Vault, today: date) -> list[CustomerView]:
    """The demo customers as the bank's records show them (numbers masked)."""
    found = []
    with engine.connect() as conn:
        for c in CUSTOMERS:
            kind = Kind.INDIVIDUAL if c.id_number[:17].isdigit() else Kind.ENTERPRISE
            view = customers.find_by_id_number(conn, vault, kind, c.id_number, today=today)
            if view is not None:
                found.append(view)
    return found


def accounts(engine: Engine) -> list[AccountView]:
    with engine.connect() as conn:
        return [queries.get_account(conn, code=c.account) for c in CUSTOMERS]
