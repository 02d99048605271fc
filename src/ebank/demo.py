"""The demo bank: the chart of accounts, a few customers with money, a little history.

Seeding is idempotent (fixed idempotency keys, accounts opened only when missing), so
`make demo` can run any number of times on the same database.
"""

from dataclasses import dataclass

from sqlalchemy import Engine

from ebank.core import audit
from ebank.core.writer import Command, Writer
from ebank.ledger import queries
from ebank.ledger import service as ledger
from ebank.ledger.chart import ensure_chart
from ebank.ledger.models import AccountView, EntryResult


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    account: str
    name: str
    deposit: int  # fen, paid in at the counter


CUSTOMERS = (
    DemoCustomer("6217000100000001", "张三 Zhang San", 5_000_000),
    DemoCustomer("6217000100000002", "李四 Li Si", 1_280_050),
    DemoCustomer("6217000100000003", "王五 Wang Wu", 30_000),
    DemoCustomer("6217000100000004", "青禾科技有限公司 Qinghe Technology Co.", 250_000_000),
)
# (from, to, fen, memo): a little history so that statements are not empty.
TRANSFERS = (
    ("6217000100000001", "6217000100000002", 12_300, "午餐 AA / lunch"),
    ("6217000100000004", "6217000100000003", 850_000, "工资 / salary"),
    ("6217000100000002", "6217000100000001", 5_000, "还款 / repayment"),
)


def seed(writer: Writer) -> None:
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


def accounts(engine: Engine) -> list[AccountView]:
    with engine.connect() as conn:
        return [queries.get_account(conn, code=c.account) for c in CUSTOMERS]
