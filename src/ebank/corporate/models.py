"""What corporate banking shows: payroll batches, their rows, and employees' payslips."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class BatchView:
    id: int
    reference: str  # what the enterprise quotes: W + business day + number
    account: str  # the paying account, in full (it is the enterprise's own)
    period: str
    memo: str
    file_name: str
    status: str
    row_count: int
    valid_count: int
    valid_total: int  # fen: what approval holds
    paid_count: int
    paid_total: int
    failed_count: int  # invalid lines and rows that failed when paid
    maker: str
    checker: str | None
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    decision_note: str | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class RowView:
    line: int
    name: str
    account: str  # masked
    amount: int
    note: str
    status: str  # invalid | pending | paid | failed | skipped
    code: str | None
    message_zh: str | None
    message_en: str | None
    reference: str | None  # the ledger entry that paid it
    done_at: datetime | None


@dataclass(frozen=True, slots=True)
class Payslip:
    """An employee's e-payslip (电子工资单): a payroll row paid into their account here."""

    id: int  # the payroll row's
    employer: str
    period: str
    amount: int
    note: str
    account: str  # masked
    paid_at: datetime
    reference: str
