"""Payroll (代发工资): an enterprise pays its employees from one file.

1. A maker uploads a CSV (name, account, amount, note; English or Chinese headers, UTF-8 or
   GB18030 as spreadsheets save it). Every line is checked before anything moves: the account
   must be a demand account here that can take money, in the name given (the same name check
   as a transfer's), the amount exact to the fen, no account twice. The batch is the
   validation report: each line valid (pending) or invalid with a code saying why.
2. The maker submits it; a different operator with the checker role approves it with a code
   from their own token. Approval holds the total of the valid lines on the paying account,
   so that the money is there for every row however long paying takes.
3. The worker (`execute_due`) pays the rows one by one, each its own writer command that
   captures its amount from the hold, so one row that fails (an account closed since) fails
   alone. A row is paid only while it is pending, checked under its lock in the transaction
   that pays it: a batch run again, after a crash or by a second worker, never pays a row
   twice. When no row is pending the rest of the hold is released and the enterprise is told.

Each paid row gives the enterprise a receipt and the employee an account-movement SMS and an
e-payslip (`payslips_of`). `results_csv` is the per-row result file.
"""

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount, Product
from ebank.accounts.tables import customer_accounts
from ebank.core import audit, outbox
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault, mask_card
from ebank.core.errors import EbankError, checked_text
from ebank.core.money import MAX_MINOR, format_minor, parse_minor
from ebank.core.sheets import csv_text
from ebank.core.writer import Command, Idempotency, Tx, Writer, fingerprint
from ebank.corporate.models import BatchView, Payslip, RowView
from ebank.corporate.operators import Operator, check_token
from ebank.corporate.tables import operators, payroll_batches, payroll_rows
from ebank.customers import service as customers
from ebank.customers.identity import same_name
from ebank.customers.tables import customers as customer_table
from ebank.ledger import service as ledger
from ebank.ledger.models import reference
from ebank.notify import notices
from ebank.payments import service as payments
from ebank.receipts import service as receipts
from ebank.receipts.models import Receipt, ReceiptData
from ebank.receipts.pdf import BANK_NAME
from ebank.security.service import Checked
from ebank.security.sessions import OPERATOR_CHANNEL

ACCOUNT_PURPOSE = "corporate.payroll_account"
MAX_FILE_BYTES = 2_000_000
MAX_ROWS = 5_000
# The hold outlives a worker that is down for a while; a row paid after it ran out is paid
# straight from the account (if the money is still there), never twice.
HOLD_FOR = timedelta(days=7)
SWEEP = 500  # rows a worker pass pays at most
MEMO = "代发工资 payroll"
_HEADERS = {
    "name": ("name", "姓名", "户名"),
    "account": ("account", "账号", "卡号", "账号/卡号"),
    "amount": ("amount", "金额"),
    "note": ("note", "备注", "摘要"),
}
_PERIOD = re.compile(r"(20\d\d)-(0[1-9]|1[0-2])")
_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,34}")
_UNABLE = ("closed", "suspended")  # account statuses that take no salary


def _require(operator: Operator, role: str) -> None:
    if role not in operator.roles or operator.disabled:
        raise EbankError("FORBIDDEN")


# -- reading and checking a file ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Line:
    line: int
    name: str
    account: str
    amount: int
    note: str
    payee: CustomerAccount | None  # the account to credit, when the line is valid
    error: EbankError | None


def _decode(content: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), else GB18030, as Chinese spreadsheets save."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("gb18030")
    except UnicodeDecodeError:
        raise EbankError("PAYROLL_FILE_INVALID", reason="not UTF-8 or GB18030 text") from None


def _records(content: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, cells by column) for each non-blank line after the header."""
    if not isinstance(content, bytes) or not content.strip():
        raise EbankError("PAYROLL_FILE_INVALID", reason="the file is empty")
    if len(content) > MAX_FILE_BYTES:
        raise EbankError("PAYROLL_FILE_INVALID", reason=f"more than {MAX_FILE_BYTES} bytes")
    reader = csv.reader(io.StringIO(_decode(content), newline=""), strict=True)
    try:
        header = [cell.strip().lower() for cell in next(reader)]
        columns: dict[str, int] = {}
        for column, names in _HEADERS.items():
            found = [i for i, cell in enumerate(header) if cell in names]
            if len(found) > 1:
                raise EbankError("PAYROLL_FILE_INVALID", reason=f"two {column} columns")
            if found:
                columns[column] = found[0]
        missing = {"name", "account", "amount"} - columns.keys()
        if missing:
            raise EbankError(
                "PAYROLL_FILE_INVALID", reason=f"the header lacks {', '.join(sorted(missing))}"
            )
        count = 0
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            count += 1
            if count > MAX_ROWS:
                raise EbankError("PAYROLL_FILE_INVALID", reason=f"more than {MAX_ROWS} rows")
            got = {c: cells[i] if i < len(cells) else "" for c, i in columns.items()}
            yield reader.line_num, got
    except csv.Error as exc:
        raise EbankError("PAYROLL_FILE_INVALID", reason=f"not CSV ({str(exc)[:60]})") from None


def _check(conn: Connection, payer: CustomerAccount, line: int, cells: dict[str, str],
           seen: dict[str, int]) -> _Line:  # fmt: skip
    """A line as the report shows it: valid with the account to credit, or why not."""
    name = cells["name"].strip()[:100]
    account = "".join(cells["account"].split())[:34]
    note = cells.get("note", "").strip()[:60]
    amount = 0

    def refused(error: EbankError) -> _Line:
        return _Line(line, name, account, amount, note, None, error)

    if not name or not name.isprintable():
        return refused(EbankError("INVALID_INPUT", reason="a name is 1-100 printable characters"))
    if not _ACCOUNT.fullmatch(account):
        return refused(EbankError("INVALID_INPUT", reason="an account is 1-34 letters and digits"))
    try:
        amount = parse_minor(cells["amount"].strip().replace(",", ""))
    except EbankError as error:
        return refused(error)
    if amount <= 0:
        return refused(EbankError("INVALID_AMOUNT", reason="a salary is more than zero"))
    if not note.isprintable():
        return refused(EbankError("INVALID_INPUT", reason="a note is printable text"))
    if account in seen:
        return refused(EbankError("PAYROLL_DUPLICATE_ACCOUNT", first=seen[account]))
    seen[account] = line
    try:
        payee = accounts.get_account(conn, number=account)
    except EbankError:
        return refused(EbankError("PAYEE_NOT_FOUND"))
    if payee.id == payer.id:
        return refused(EbankError("INVALID_INPUT", reason="the paying account itself"))
    if payee.product != Product.DEMAND or payee.status in _UNABLE:
        return refused(EbankError("PAYEE_ACCOUNT_UNAVAILABLE"))
    _, holder = customers.holder(conn, payee.customer_id)
    if not same_name(holder, name):
        return refused(EbankError("PAYEE_NAME_MISMATCH"))
    return _Line(line, name, account, amount, note, payee, None)


@dataclass(frozen=True, slots=True)
class _Upload:
    payer: CustomerAccount
    period: str
    memo: str
    file_name: str
    digest: str
    lines: list[_Line]


def upload(
    vault: Vault, operator: Operator, *, account: str, period: str, memo: str, file_name: str,
    content: bytes, idempotency_key: str,
) -> Command[int]:  # fmt: skip
    """Check a payroll file and keep it as a batch with its validation report; nothing moves.
    The batch's id, once per idempotency key. The same file for the same account and month
    again, while the first is not rejected or cancelled, is refused: salaries are paid once."""
    _require(operator, "maker")
    digest = hashlib.sha256(content).hexdigest() if isinstance(content, bytes) else ""
    checked: list[_Upload] = []

    def validate(conn: Connection) -> _Upload:
        payer = payments.paying_account(conn, operator.customer_id, account)
        month = checked_text(period, "a period", 7)
        if not _PERIOD.fullmatch(month):
            raise EbankError("INVALID_INPUT", reason="a period is a month, YYYY-MM")
        seen: dict[str, int] = {}
        lines = [_check(conn, payer, n, cells, seen) for n, cells in _records(content)]
        if not lines:
            raise EbankError("PAYROLL_FILE_INVALID", reason="no rows under the header")
        if sum(line.amount for line in lines if line.error is None) > MAX_MINOR:
            raise EbankError("PAYROLL_FILE_INVALID", reason="the total is too large")
        return _Upload(
            payer, month, checked_text(memo, "a memo", 60, empty=True),
            checked_text(file_name, "a file name", 100), digest, lines,
        )  # fmt: skip

    def prepare(engine: Any) -> None:
        with engine.connect() as conn:
            checked.append(validate(conn))

    def run(tx: Tx) -> int:
        u = checked[-1] if checked else validate(tx.conn)
        again = tx.conn.execute(
            select(payroll_batches.c.id).where(
                payroll_batches.c.account_id == u.payer.id,
                payroll_batches.c.period == u.period,
                payroll_batches.c.file_sha256 == u.digest,
                payroll_batches.c.status.not_in(("rejected", "cancelled")),
            )
        ).first()
        if again is not None:
            raise EbankError("PAYROLL_DUPLICATE_FILE", batch=again.id)
        valid = [line for line in u.lines if line.error is None]
        batch_id = tx.conn.execute(
            payroll_batches.insert().values(
                customer_id=operator.customer_id, account_id=u.payer.id, period=u.period,
                memo=u.memo, file_name=u.file_name, file_sha256=u.digest,
                row_count=len(u.lines), valid_count=len(valid),
                valid_total=sum(line.amount for line in valid), status="validated",
                maker_id=operator.id, created_at=tx.now,
            )
        ).inserted_primary_key[0]  # fmt: skip
        rows = [_stored(vault, batch_id, line) for line in u.lines]
        tx.conn.execute(payroll_rows.insert(), rows)
        _audit(tx, operator, "upload", batch_id, rows=len(u.lines), valid=len(valid))
        return batch_id

    key = fingerprint(
        op="payroll.upload", operator=operator.id, account=account, period=period, memo=memo,
        file_name=file_name, file=digest,
    )  # fmt: skip
    return Command(
        run,
        idempotency=Idempotency(f"customer:{operator.customer_id}", idempotency_key, key),
        prepare=prepare,
    )


def _stored(vault: Vault, batch_id: int, line: _Line) -> dict[str, Any]:
    """A checked line as its row: pending when it may be paid, else invalid with why."""
    return {
        "batch_id": batch_id, "line": line.line, "name": line.name,
        "account_sealed": vault.encrypt(line.account, purpose=ACCOUNT_PURPOSE),
        "account_hash": vault.lookup_hash(line.account, purpose=ACCOUNT_PURPOSE),
        "account_masked": mask_card(line.account), "amount": line.amount, "note": line.note,
        "payee_account_id": None if line.payee is None else line.payee.id,
        "status": "invalid" if line.error else "pending",
        "code": line.error and line.error.code, "reason": _reason(line.error),
        "entry_id": None, "done_at": None,
    }  # fmt: skip


def _reason(error: EbankError | None) -> str | None:
    """What a row's code needs to be worded again: its one detail, if it has one."""
    if error is None or not error.details:
        return None
    return str(next(iter(error.details.values())))[:120]


def _error(code: str, reason: str | None) -> EbankError:
    details: dict[str, Any] = {}
    if reason is not None:
        details = {"first": reason} if code == "PAYROLL_DUPLICATE_ACCOUNT" else {"reason": reason}
    return EbankError(code, **details)


def _audit(tx: Tx, operator: Operator | None, act: str, batch_id: int, **detail: Any) -> None:
    audit.record(
        tx, actor="system" if operator is None else operator.actor, action=f"payroll.{act}",
        subject=f"payroll:{batch_id}", channel=OPERATOR_CHANNEL if operator else "system",
        detail=detail,
    )  # fmt: skip


# -- submitting and deciding --------------------------------------------------------------------
def _batch(tx: Tx, operator: Operator, batch_id: int, *status: str) -> Any:
    """The enterprise's batch, locked, in one of `status`; anybody else's is as unknown as
    none."""
    if type(batch_id) is not int:
        raise EbankError("PAYROLL_BATCH_NOT_FOUND")
    query = select(payroll_batches).where(
        payroll_batches.c.id == batch_id, payroll_batches.c.customer_id == operator.customer_id
    )
    row = tx.conn.execute(query.with_for_update()).mappings().first()
    if row is None:
        raise EbankError("PAYROLL_BATCH_NOT_FOUND")
    if row["status"] not in status:
        raise EbankError("PAYROLL_NOT_ALLOWED", status=row["status"])
    return row


def _move(tx: Tx, batch_id: int, status: str, **values: Any) -> None:
    tx.conn.execute(
        payroll_batches.update()
        .where(payroll_batches.c.id == batch_id)
        .values(status=status, **values)
    )
    outbox.emit(tx, "payroll.status", str(batch_id), {"status": status})


def submit(operator: Operator, batch_id: int) -> Command[None]:
    """The maker who uploaded a checked batch sends it for approval."""
    _require(operator, "maker")

    def run(tx: Tx) -> None:
        row = _batch(tx, operator, batch_id, "validated")
        if row["maker_id"] != operator.id:
            raise EbankError("FORBIDDEN")
        if row["valid_count"] == 0:
            raise EbankError("PAYROLL_NO_VALID_ROWS")
        _move(tx, batch_id, "submitted", submitted_at=tx.now)
        _audit(tx, operator, "submit", batch_id, total=row["valid_total"])

    return Command(run)


def cancel(operator: Operator, batch_id: int) -> Command[None]:
    """The maker withdraws a batch not yet approved."""
    _require(operator, "maker")

    def run(tx: Tx) -> None:
        row = _batch(tx, operator, batch_id, "validated", "submitted")
        if row["maker_id"] != operator.id:
            raise EbankError("FORBIDDEN")
        _move(tx, batch_id, "cancelled", decided_at=tx.now)
        _audit(tx, operator, "cancel", batch_id)

    return Command(run)


def approve(vault: Vault, operator: Operator, batch_id: int, *, code: str) -> Command[Checked[int]]:
    """A checker other than the maker approves with a code from their token: the valid total
    is held on the paying account and the rows are paid by the worker. Without the money, or
    with the account no longer able to pay, nothing changes. A wrong code counts on the
    checker's lockout and approves nothing. Its answer is the batch's id."""
    _require(operator, "checker")

    def run(tx: Tx) -> Checked[int]:
        row = _batch(tx, operator, batch_id, "submitted")
        if row["maker_id"] == operator.id:
            raise EbankError("PAYROLL_OWN_BATCH")
        verdict = check_token(tx, vault, operator, code)
        if not verdict.ok:
            _audit(tx, operator, "approve", batch_id, outcome="factor failed")
            return Checked(verdict)
        payer = accounts.account_by_id(tx.conn, row["account_id"])
        payments.paying_account(tx.conn, operator.customer_id, payer.number)  # still may pay
        hold = ledger.place_hold(
            tx, account_id=payer.ledger_account_id, amount=row["valid_total"],
            expires_at=tx.now + HOLD_FOR, memo=f"代发工资 {_reference(row)}",
        )  # fmt: skip
        _move(tx, batch_id, "approved", checker_id=operator.id, decided_at=tx.now, hold_id=hold.id)
        _audit(tx, operator, "approve", batch_id, total=row["valid_total"], hold=hold.id)
        return Checked(verdict, batch_id)

    return Command(run)


def reject(operator: Operator, batch_id: int, *, note: str) -> Command[None]:
    """A checker sends a submitted batch back; nothing was held, nothing moves."""
    _require(operator, "checker")

    def run(tx: Tx) -> None:
        why = checked_text(note, "a note", 200)
        _batch(tx, operator, batch_id, "submitted")
        _move(
            tx, batch_id, "rejected", checker_id=operator.id, decided_at=tx.now, decision_note=why
        )
        _audit(tx, operator, "reject", batch_id, note=why)

    return Command(run)


# -- paying -------------------------------------------------------------------------------------
def _reference(batch: Any) -> str:
    return reference("W", batch["id"], as_utc(batch["created_at"]))


def _pay_row(vault: Vault, row_id: int) -> Command[bool]:
    """Pay one pending row of an approved batch from its hold; False when it is not pending."""

    def run(tx: Tx) -> bool:
        query = select(payroll_rows).where(payroll_rows.c.id == row_id).with_for_update()
        row = tx.conn.execute(query).mappings().one()
        batch = tx.conn.execute(
            select(payroll_batches).where(payroll_batches.c.id == row["batch_id"])
        ).mappings().one()  # fmt: skip
        if row["status"] != "pending" or batch["status"] != "approved":
            return False
        payee = accounts.account_by_id(tx.conn, row["payee_account_id"])
        _, holder = customers.holder(tx.conn, payee.customer_id)
        if not same_name(holder, row["name"]):
            raise EbankError("PAYEE_NAME_MISMATCH")  # the account changed hands since
        payer = accounts.account_by_id(tx.conn, batch["account_id"])
        kind, employer = customers.holder(tx.conn, batch["customer_id"])
        memo = f"代发工资 {employer}"[:60]
        leg = [(payee.ledger_account_id, row["amount"])]
        try:
            try:
                entry = ledger.capture_hold(tx, hold_id=batch["hold_id"], to=leg, memo=memo)
            except EbankError as error:
                if error.code not in ("HOLD_EXPIRED", "HOLD_NOT_PENDING"):
                    raise
                if error.code == "HOLD_EXPIRED":  # still set aside until released: release it
                    ledger.release_hold(tx, hold_id=batch["hold_id"])
                entry = ledger.transfer(
                    tx, debit=payer.ledger_account_id, credit=payee.ledger_account_id,
                    amount=row["amount"], memo=memo,
                )  # fmt: skip
        except EbankError as error:
            raise payments.payee_refused(error, payee) from None
        tx.conn.execute(
            payroll_rows.update()
            .where(payroll_rows.c.id == row_id)
            .values(status="paid", entry_id=entry.id, done_at=tx.now)
        )
        notices.account_movement(
            tx, vault, customer_id=payee.customer_id, account_number=payee.number,
            amount=row["amount"], direction="in",
            balance=ledger.balance_in(tx, payee.ledger_account_id), memo=memo, at=tx.now,
        )  # fmt: skip
        receipts.issue_receipt(
            tx, vault,
            ReceiptData(
                source=f"payroll_row:{row_id}", customer_id=batch["customer_id"],
                payer_name=employer, payer_account=payer.number, payee_name=row["name"],
                payee_account=vault.decrypt(row["account_sealed"], purpose=ACCOUNT_PURPOSE),
                payee_bank=BANK_NAME, amount=row["amount"],
                purpose=f"代发工资 {batch['period']} {row['note']}".strip(),
                channel=OPERATOR_CHANNEL, reference=entry.reference, completed_at=tx.now,
                payer_enterprise=kind == "enterprise",
            ),
        )  # fmt: skip
        return True

    return Command(run)


def _fail_row(row_id: int, error: EbankError) -> Command[None]:
    def run(tx: Tx) -> None:
        query = select(payroll_rows.c.status).where(payroll_rows.c.id == row_id)
        if tx.conn.execute(query.with_for_update()).scalar() != "pending":
            return
        tx.conn.execute(
            payroll_rows.update()
            .where(payroll_rows.c.id == row_id)
            .values(status="failed", code=error.code, reason=_reason(error), done_at=tx.now)
        )

    return Command(run)


def _finish(vault: Vault, batch_id: int) -> Command[bool]:
    """Close a batch none of whose rows is pending: release what is left of its hold, tell the
    enterprise. False when it is not approved or still has pending rows."""

    def run(tx: Tx) -> bool:
        query = select(payroll_batches).where(payroll_batches.c.id == batch_id)
        batch = tx.conn.execute(query.with_for_update()).mappings().one()
        pending = tx.conn.execute(
            select(payroll_rows.c.id).where(
                payroll_rows.c.batch_id == batch_id, payroll_rows.c.status == "pending"
            )
        ).first()
        if batch["status"] != "approved" or pending is not None:
            return False
        try:
            ledger.release_hold(tx, hold_id=batch["hold_id"])
        except EbankError as error:
            if error.code != "HOLD_NOT_PENDING":  # all captured, or it ran out: nothing left
                raise
        _move(tx, batch_id, "completed", completed_at=tx.now)
        tally = _tally(tx.conn, [batch_id])[batch_id]
        notices.payroll_result(
            tx, vault, customer_id=batch["customer_id"], reference=_reference(batch),
            period=batch["period"], paid=tally["paid"][0], paid_total=tally["paid"][1],
            failed=tally["failed"][0] + tally["invalid"][0],
        )  # fmt: skip
        _audit(tx, None, "complete", batch_id, paid=tally["paid"][0], failed=tally["failed"][0])
        return True

    return Command(run)


def execute_due(writer: Writer, vault: Vault, *, limit: int = SWEEP) -> int:
    """Pay the pending rows of approved batches, up to `limit`, and close the batches left with
    none; how many rows were paid. Safe to run again at any time, in any number of workers."""
    with writer.engine.connect() as conn:
        due = conn.execute(
            select(payroll_rows.c.id, payroll_rows.c.batch_id)
            .join(payroll_batches, payroll_batches.c.id == payroll_rows.c.batch_id)
            .where(payroll_batches.c.status == "approved", payroll_rows.c.status == "pending")
            .order_by(payroll_rows.c.batch_id, payroll_rows.c.line)
            .limit(limit)
        ).all()
    futures = [(row_id, writer.submit(_pay_row(vault, row_id))) for row_id, _ in due]
    paid = 0
    for row_id, future in futures:
        try:
            paid += future.result()
        except EbankError as error:
            writer.execute(_fail_row(row_id, error))
    with writer.engine.connect() as conn:
        pending = select(payroll_rows.c.id).where(
            payroll_rows.c.batch_id == payroll_batches.c.id, payroll_rows.c.status == "pending"
        )
        done = conn.execute(
            select(payroll_batches.c.id).where(
                payroll_batches.c.status == "approved", ~pending.exists()
            )
        ).scalars().all()  # fmt: skip
    for batch_id in done:
        writer.execute(_finish(vault, batch_id))
    return paid


# -- what the enterprise and its employees see -------------------------------------------------
def _tally(conn: Connection, batch_ids: list[int]) -> dict[int, dict[str, tuple[int, int]]]:
    """Per batch: status -> (rows, total fen)."""
    rows = conn.execute(
        select(
            payroll_rows.c.batch_id,
            payroll_rows.c.status,
            func.count(),
            func.sum(payroll_rows.c.amount),
        )
        .where(payroll_rows.c.batch_id.in_(batch_ids))
        .group_by(payroll_rows.c.batch_id, payroll_rows.c.status)
    )
    tally: dict[int, dict[str, tuple[int, int]]] = {
        b: {s: (0, 0) for s in ("invalid", "pending", "paid", "failed", "skipped")}
        for b in batch_ids
    }
    for batch_id, status, count, total in rows:
        tally[batch_id][status] = (count, int(total or 0))
    return tally


def _views(conn: Connection, rows: list[Any]) -> list[BatchView]:
    tally = _tally(conn, [row["id"] for row in rows])
    ids = {row["maker_id"] for row in rows} | {row["checker_id"] for row in rows} - {None}
    names = dict(
        conn.execute(
            select(operators.c.id, operators.c.username).where(operators.c.id.in_(ids))
        ).all()
    )
    numbers = {
        account_id: accounts.account_by_id(conn, account_id).number
        for account_id in {row["account_id"] for row in rows}
    }
    out = []
    for row in rows:
        t = tally[row["id"]]
        out.append(
            BatchView(
                row["id"], _reference(row), numbers[row["account_id"]], row["period"], row["memo"],
                row["file_name"], row["status"], row["row_count"], row["valid_count"],
                row["valid_total"], t["paid"][0], t["paid"][1], t["failed"][0] + t["invalid"][0],
                names[row["maker_id"]], row["checker_id"] and names[row["checker_id"]],
                as_utc(row["created_at"]), row["submitted_at"] and as_utc(row["submitted_at"]),
                row["decided_at"] and as_utc(row["decided_at"]), row["decision_note"],
                row["completed_at"] and as_utc(row["completed_at"]),
            )
        )  # fmt: skip
    return out


def _owned(conn: Connection, customer_id: int, batch_id: int) -> None:
    """PAYROLL_BATCH_NOT_FOUND unless the batch is the enterprise's."""
    found = conn.execute(
        select(payroll_batches.c.id).where(
            payroll_batches.c.id == batch_id, payroll_batches.c.customer_id == customer_id
        )
    ).first()
    if found is None:
        raise EbankError("PAYROLL_BATCH_NOT_FOUND")


def batch_of(conn: Connection, *, customer_id: int, batch_id: int) -> BatchView:
    """One of the enterprise's batches; anybody else's is PAYROLL_BATCH_NOT_FOUND."""
    row = conn.execute(
        select(payroll_batches).where(
            payroll_batches.c.id == batch_id, payroll_batches.c.customer_id == customer_id
        )
    ).mappings().first()  # fmt: skip
    if row is None:
        raise EbankError("PAYROLL_BATCH_NOT_FOUND")
    return _views(conn, [row])[0]


def batches_of(
    conn: Connection, *, customer_id: int, before: int | None = None, limit: int = 50
) -> list[BatchView]:
    """The enterprise's batches, newest first."""
    query = select(payroll_batches).where(payroll_batches.c.customer_id == customer_id)
    if before is not None:
        query = query.where(payroll_batches.c.id < before)
    rows = conn.execute(query.order_by(payroll_batches.c.id.desc()).limit(limit)).mappings().all()
    return _views(conn, list(rows)) if rows else []


def rows_of(conn: Connection, *, customer_id: int, batch_id: int) -> list[RowView]:
    """A batch's rows in file order: the validation report, then the result of each."""
    _owned(conn, customer_id, batch_id)
    rows = conn.execute(
        select(payroll_rows)
        .where(payroll_rows.c.batch_id == batch_id)
        .order_by(payroll_rows.c.line)
    ).mappings()
    views = []
    for row in rows:
        error = row["code"] and _error(row["code"], row["reason"])
        views.append(
            RowView(
                row["line"], row["name"], row["account_masked"], row["amount"], row["note"],
                row["status"], row["code"], error and error.message("zh"),
                error and error.message("en"),
                row["entry_id"] and reference("E", row["entry_id"], as_utc(row["done_at"])),
                row["done_at"] and as_utc(row["done_at"]),
            )
        )  # fmt: skip
    return views


def receipt_of(
    conn: Connection, vault: Vault, *, customer_id: int, batch_id: int, line: int
) -> Receipt:
    """The receipt of a paid row, for the enterprise that paid it."""
    _owned(conn, customer_id, batch_id)
    row_id = conn.execute(
        select(payroll_rows.c.id).where(
            payroll_rows.c.batch_id == batch_id, payroll_rows.c.line == line
        )
    ).scalar()
    return receipts.receipt_for(conn, vault, f"payroll_row:{row_id}", customer_id)


def results_csv(conn: Connection, *, customer_id: int, batch_id: int, lang: str = "zh") -> str:
    """The per-row result file: line, name, masked account, amount, status, code, message."""
    header = (
        ["行号", "姓名", "账号", "金额", "状态", "代码", "说明", "交易参考号"]
        if lang.startswith("zh")
        else ["line", "name", "account", "amount", "status", "code", "message", "reference"]
    )
    lines = [
        [r.line, r.name, r.account, format_minor(r.amount), r.status, r.code,
         r.message_zh if lang.startswith("zh") else r.message_en, r.reference]
        for r in rows_of(conn, customer_id=customer_id, batch_id=batch_id)
    ]  # fmt: skip
    return csv_text([header, *lines])


def payslips_of(
    conn: Connection, *, customer_id: int, before: int | None = None, limit: int = 50
) -> list[Payslip]:
    """A person's e-payslips: payroll rows paid into their accounts here, newest first."""
    query = (
        select(payroll_rows, payroll_batches.c.period, customer_table.c.name.label("employer"))
        .join(payroll_batches, payroll_batches.c.id == payroll_rows.c.batch_id)
        .join(customer_table, customer_table.c.id == payroll_batches.c.customer_id)
        .join(customer_accounts, customer_accounts.c.id == payroll_rows.c.payee_account_id)
        .where(customer_accounts.c.customer_id == customer_id, payroll_rows.c.status == "paid")
    )  # fmt: skip
    if before is not None:
        query = query.where(payroll_rows.c.id < before)
    rows = conn.execute(query.order_by(payroll_rows.c.id.desc()).limit(limit)).mappings()
    return [
        Payslip(
            row["id"], row["employer"], row["period"], row["amount"], row["note"],
            row["account_masked"], as_utc(row["done_at"]),
            reference("E", row["entry_id"], as_utc(row["done_at"])),
        )
        for row in rows
    ]  # fmt: skip
