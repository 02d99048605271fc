"""The bank's own (general-ledger) accounts, which `ebank db upgrade` makes sure exist."""

from dataclasses import dataclass

from ebank.core.writer import Tx
from ebank.ledger import service


@dataclass(frozen=True, slots=True)
class InternalAccount:
    code: str
    name: str  # zh-CN / English
    normal_side: str
    # Accounts that swing either way (money in flight, suspense) have no floor.
    overdraft_allowed: bool


CHART: tuple[InternalAccount, ...] = (
    InternalAccount("GL-CASH-CNY", "库存现金 / Cash in vault", "D", False),
    InternalAccount("GL-CLEARING-CNY", "清算往来 / Inter-bank clearing", "D", True),
    InternalAccount(
        "GL-CENTRAL-BANK-CNY", "存放中央银行款项 / Reserve account at the central bank", "D", True
    ),
    InternalAccount("GL-SUSPENSE-CNY", "待处理挂账 / Suspense", "D", True),
    InternalAccount("GL-FEE-INCOME-CNY", "手续费收入 / Fee income", "C", True),
    InternalAccount("GL-MERCHANT-SETTLEMENT-CNY", "商户待清算 / Merchant settlement", "C", True),
    InternalAccount("GL-ESCROW-CNY", "担保支付 / Escrow for deferred payments", "C", True),
)


def ensure_chart(tx: Tx) -> dict[str, int]:
    """Open whichever internal accounts are missing; code -> account id for all of them."""
    return {
        item.code: service.open_account(
            tx, code=item.code, name=item.name, currency="CNY", kind="internal",
            normal_side=item.normal_side, overdraft_allowed=item.overdraft_allowed,
            exist_ok=True,
        ).id
        for item in CHART
    }  # fmt: skip
