"""Payroll (代发工资): the validation report before anything moves, maker and a different
checker, row-by-row payment exactly once, result file, payslips."""

import csv
import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ebank.accounts.models import CustomerAccount
from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.writer import Writer
from ebank.corporate import payroll
from ebank.corporate.tables import payroll_rows
from ebank.ledger.tables import holds, postings
from tests.corporate.support import Login, add_operator, employee, payroll_file
from tests.support import VAULT, Bank, code_of, race_two_writers, sound


class Payroll:
    """An enterprise with ¥1,000,000, a maker, a checker, and three employees here."""

    def __init__(self, writer: Writer, engine: Engine, clock: FixedClock) -> None:
        self.bank = Bank(writer, engine, clock)
        self.writer, self.engine, self.clock = writer, engine, clock
        self.enterprise = self.bank.enterprise()
        self.account = self.bank.account(self.enterprise, tier="corporate", funds=1_000_000_00)
        self.maker = add_operator(writer, self.enterprise, "zhang.maker", "maker")
        self.checker = add_operator(writer, self.enterprise, "li.checker", "checker")
        self.staff = [employee(self.bank, 1, "王小明"), employee(self.bank, 2, "李红"),
                      employee(self.bank, 3, "赵强")]  # fmt: skip
        self._keys = 0

    def rows(self, *amounts: str) -> list[tuple[str, str, str, str]]:
        names = ["王小明", "李红", "赵强"]
        return [(names[i], self.staff[i].number, a, "11月工资") for i, a in enumerate(amounts)]

    def upload(self, content: bytes, *, period: str = "2026-11", key: str | None = None) -> int:
        self._keys += 1
        return self.writer.execute(
            payroll.upload(
                VAULT, self.maker.operator, account=self.account.number, period=period,
                memo="11月工资", file_name="salary.csv", content=content,
                idempotency_key=key or f"k{self._keys}",
            )
        )  # fmt: skip

    def approved(self, *amounts: str) -> int:
        batch = self.upload(payroll_file(self.rows(*amounts)))
        self.writer.execute(payroll.submit(self.maker.operator, batch))
        self.approve(batch).value()
        return batch

    def approve(self, batch: int, by: Login | None = None, code: str | None = None) -> Any:
        by = by or self.checker
        return self.writer.execute(
            payroll.approve(VAULT, by.operator, batch, code=code or by.code(self.clock))
        )

    def report(self, batch: int) -> list[Any]:
        with self.engine.connect() as conn:
            return payroll.rows_of(conn, customer_id=self.enterprise, batch_id=batch)

    def batch(self, batch: int) -> Any:
        with self.engine.connect() as conn:
            return payroll.batch_of(conn, customer_id=self.enterprise, batch_id=batch)

    def batch_ids(self) -> list[int]:
        with self.engine.connect() as conn:
            return sorted(b.id for b in payroll.batches_of(conn, customer_id=self.enterprise))

    def balance(self, account: CustomerAccount) -> int:
        return self.bank.balance(account)

    def held(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.coalesce(func.sum(holds.c.remaining), 0)).where(
                        holds.c.account_id == self.account.ledger_account_id,
                        holds.c.status == "pending",
                    )
                ).scalar_one()
            )

    def credits_to(self, account: CustomerAccount) -> int:
        """How many postings ever credited the account: a row paid twice shows as two."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        postings.c.account_id == account.ledger_account_id,
                        postings.c.side == "C",
                    )
                ).scalar_one()
            )


@pytest.fixture
def p(writer: Writer, engine: Engine, clock: FixedClock) -> Payroll:
    return Payroll(writer, engine, clock)


def test_the_validation_report_says_what_is_wrong_with_each_line_and_nothing_moves(
    p: Payroll,
) -> None:
    closed = employee(p.bank, 4, "钱多多")
    p.bank.decide("account.close", {"account": closed.number})
    content = payroll_file([
        ("王小明", p.staff[0].number, "8500.00", "11月工资"),
        ("王小民", p.staff[1].number, "7000.00", ""),  # not the name on the account
        ("赵强", "6222000000000000", "6000.00", ""),  # no such account here
        ("赵强", p.staff[2].number, "6000", ""),  # no fen
        ("李红", p.staff[0].number, "10.00", ""),  # account already in the file
        ("钱多多", closed.number, "100.00", ""),
        ("赵强", p.staff[2].number, "-1.00", ""),
        ("", p.staff[2].number, "1.00", ""),
    ])  # fmt: skip
    batch = p.upload(content)
    report = {r.line: (r.status, r.code) for r in p.report(batch)}
    assert report == {
        2: ("pending", None), 3: ("invalid", "PAYEE_NAME_MISMATCH"),
        4: ("invalid", "PAYEE_NOT_FOUND"), 5: ("invalid", "INVALID_AMOUNT"),
        6: ("invalid", "PAYROLL_DUPLICATE_ACCOUNT"), 7: ("invalid", "PAYEE_ACCOUNT_UNAVAILABLE"),
        8: ("invalid", "INVALID_AMOUNT"), 9: ("invalid", "INVALID_INPUT"),
    }  # fmt: skip
    duplicate = next(r for r in p.report(batch) if r.line == 6)
    assert "第2行" in duplicate.message_zh and "line 2" in duplicate.message_en
    view = p.batch(batch)
    assert (view.status, view.row_count, view.valid_count, view.valid_total) == (
        "validated", 8, 1, 8500_00,
    )  # fmt: skip
    assert p.balance(p.account) == 1_000_000_00 and p.held() == 0
    assert all(p.balance(a) == 0 for a in p.staff)


def test_a_spreadsheets_gb18030_file_with_chinese_headers_is_read(p: Payroll) -> None:
    content = payroll_file(p.rows("1.00", "2.00"), encoding="gb18030",
                           header=("姓名", "账号", "金额", "备注"))  # fmt: skip
    batch = p.upload(content)
    assert [(r.name, r.status) for r in p.report(batch)] == [
        ("王小明", "pending"), ("李红", "pending"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"name,amount\nA,1.00\n",  # no account column
        b"name,account,amount\n",  # no rows
        b"name,account,amount,name\nA,1,1.00,B\n",
        b'name,account,amount\n"unclosed,1,1.00\n',
    ],
)
def test_a_file_that_cannot_be_read_is_refused_and_keeps_nothing(
    p: Payroll, content: bytes
) -> None:
    with pytest.raises(EbankError) as refused:
        p.upload(content)
    assert refused.value.code == "PAYROLL_FILE_INVALID"
    with p.engine.connect() as conn:
        assert payroll.batches_of(conn, customer_id=p.enterprise) == []


def test_a_file_over_the_row_limit_is_refused(p: Payroll, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payroll, "MAX_ROWS", 2)
    with pytest.raises(EbankError, match="more than 2 rows"):
        p.upload(payroll_file(p.rows("1.00", "1.00", "1.00")))


def test_the_same_file_for_the_same_month_is_refused_until_the_first_is_withdrawn(
    p: Payroll,
) -> None:
    content = payroll_file(p.rows("1.00"))
    first = p.upload(content, key="a")
    assert p.upload(content, key="a") == first  # a retry of the same request
    with pytest.raises(EbankError) as again:
        p.upload(content, key="b")
    assert again.value.code == "PAYROLL_DUPLICATE_FILE"
    assert p.upload(content, key="c", period="2026-12") != first  # another month is another pay
    p.writer.execute(payroll.cancel(p.maker.operator, first))
    assert p.upload(content, key="d") != first


def test_only_a_different_checker_with_a_right_code_approves(p: Payroll) -> None:
    both = add_operator(p.writer, p.enterprise, "wu.both", "maker", "checker")
    batch = p.writer.execute(
        payroll.upload(
            VAULT, both.operator, account=p.account.number, period="2026-11", memo="",
            file_name="s.csv", content=payroll_file(p.rows("100.00")), idempotency_key="x",
        )
    )  # fmt: skip
    with pytest.raises(EbankError) as early:
        p.approve(batch)
    assert early.value.code == "PAYROLL_NOT_ALLOWED"  # not submitted yet
    with pytest.raises(EbankError) as not_theirs:
        p.writer.execute(payroll.submit(p.maker.operator, batch))
    assert not_theirs.value.code == "FORBIDDEN"  # only its maker submits it
    p.writer.execute(payroll.submit(both.operator, batch))
    with pytest.raises(EbankError) as own:
        p.approve(batch, by=both)
    assert own.value.code == "PAYROLL_OWN_BATCH"
    with pytest.raises(EbankError) as maker_only:
        p.approve(batch, by=p.maker)
    assert maker_only.value.code == "FORBIDDEN"
    wrong = p.approve(batch, code="000000")
    assert not wrong.verdict.ok and wrong.verdict.attempts_left == 4
    assert p.batch(batch).status == "submitted" and p.held() == 0
    p.approve(batch).value()
    view = p.batch(batch)
    assert (view.status, view.checker) == ("approved", "li.checker")
    assert p.held() == 100_00


def test_approval_without_the_money_changes_nothing(p: Payroll) -> None:
    batch = p.upload(payroll_file(p.rows("999999.00", "2.00")))
    p.writer.execute(payroll.submit(p.maker.operator, batch))
    with pytest.raises(EbankError) as short:
        p.approve(batch)
    assert short.value.code == "INSUFFICIENT_FUNDS"
    assert p.batch(batch).status == "submitted" and p.held() == 0


def test_an_approved_batch_pays_each_row_once_with_receipts_payslips_and_a_result_file(
    p: Payroll,
) -> None:
    batch = p.approved("8500.00", "7000.50", "6000.00")
    assert p.balance(p.account) == 1_000_000_00 and p.held() == 21500_50
    assert payroll.execute_due(p.writer, VAULT) == 3
    assert payroll.execute_due(p.writer, VAULT) == 0  # run again: nothing left to pay
    assert [p.balance(a) for a in p.staff] == [8500_00, 7000_50, 6000_00]
    assert p.balance(p.account) == 1_000_000_00 - 21500_50 and p.held() == 0
    view = p.batch(batch)
    assert (view.status, view.paid_count, view.paid_total, view.failed_count) == (
        "completed", 3, 21500_50, 0,
    )  # fmt: skip
    with p.engine.connect() as conn:
        [slip] = payroll.payslips_of(conn, customer_id=p.staff[1].customer_id)
        assert (slip.employer, slip.period, slip.amount, slip.note) == (
            "福州示例科技有限公司", "2026-11", 7000_50, "11月工资",
        )  # fmt: skip
        assert payroll.payslips_of(conn, customer_id=p.enterprise) == []
        receipt = payroll.receipt_of(conn, VAULT, customer_id=p.enterprise, batch_id=batch, line=3)
        assert (receipt.view.amount, receipt.view.payee_name) == (7000_50, "李*")
        with pytest.raises(EbankError):  # the employee cannot fetch the enterprise's receipt
            payroll.receipt_of(
                conn, VAULT, customer_id=p.staff[1].customer_id, batch_id=batch, line=3
            )
        result = list(csv.reader(io.StringIO(
            payroll.results_csv(conn, customer_id=p.enterprise, batch_id=batch, lang="en")
        )))  # fmt: skip
    assert result[0][:5] == ["line", "name", "account", "amount", "status"]
    assert [row[4] for row in result[1:]] == ["paid"] * 3
    assert result[2][3] == "7000.50" and p.staff[1].number not in result[2][2]
    sound(p.engine)


def test_a_row_whose_account_closed_after_approval_fails_alone_and_its_money_stays(
    p: Payroll,
) -> None:
    batch = p.approved("100.00", "200.00", "300.00")
    p.bank.decide("account.close", {"account": p.staff[1].number})
    assert payroll.execute_due(p.writer, VAULT) == 2
    report = {r.line: (r.status, r.code) for r in p.report(batch)}
    assert report == {2: ("paid", None), 3: ("failed", "PAYEE_ACCOUNT_UNAVAILABLE"),
                      4: ("paid", None)}  # fmt: skip
    assert p.balance(p.account) == 1_000_000_00 - 400_00 and p.held() == 0
    assert p.batch(batch).status == "completed"


def test_a_row_is_paid_straight_from_the_account_after_the_hold_ran_out(p: Payroll) -> None:
    p.approved("100.00")
    p.clock.advance(payroll.HOLD_FOR)
    assert payroll.execute_due(p.writer, VAULT) == 1
    assert p.balance(p.staff[0]) == 100_00 and p.balance(p.account) == 1_000_000_00 - 100_00


def test_rows_paid_after_the_hold_ran_out_are_not_refused_for_the_money_it_still_held(
    p: Payroll,
) -> None:
    """Before the hold sweep has released it, the run-out hold still sets the money aside:
    the row releases it, then pays from the account."""
    p.approved("600000.00", "300000.00")
    p.clock.advance(payroll.HOLD_FOR)
    assert payroll.execute_due(p.writer, VAULT) == 2
    assert [p.balance(a) for a in p.staff[:2]] == [600_000_00, 300_000_00]
    assert p.balance(p.account) == 100_000_00 and p.held() == 0
    assert p.batch(p.batch_ids()[-1]).status == "completed"


def test_a_file_with_a_formula_in_a_name_comes_back_as_text(p: Payroll) -> None:
    batch = p.upload(payroll_file([('=HYPERLINK("x")', p.staff[0].number, "1.00", "")]))
    with p.engine.connect() as conn:
        text = payroll.results_csv(conn, customer_id=p.enterprise, batch_id=batch)
    assert "'=HYPERLINK" in text


def test_someone_elses_batch_is_not_found(p: Payroll, writer: Writer) -> None:
    batch = p.upload(payroll_file(p.rows("1.00")))
    with p.engine.connect() as conn, pytest.raises(EbankError) as theirs:
        payroll.batch_of(conn, customer_id=p.staff[0].customer_id, batch_id=batch)
    assert theirs.value.code == "PAYROLL_BATCH_NOT_FOUND"


def test_two_workers_paying_one_batch_pay_each_row_once(
    p: Payroll, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    batch = p.approved("100.00", "200.00", "300.00")
    with engine.connect() as conn:
        ids = conn.execute(select(payroll_rows.c.id).where(payroll_rows.c.batch_id == batch))
        row_ids = list(ids.scalars())
    mine = [payroll._pay_row(VAULT, r) for r in row_ids]
    theirs = [payroll._pay_row(VAULT, r) for r in row_ids]
    results = race_two_writers(writer, engine, clock, mine, theirs)
    paid = [outcome for pair in results for outcome in pair if outcome is True]
    assert len(paid) == 3, [(code_of(a), code_of(b)) for a, b in results]
    assert [p.credits_to(a) for a in p.staff] == [1, 1, 1]
    assert [p.balance(a) for a in p.staff] == [100_00, 200_00, 300_00]


@pytest.mark.slow
def test_a_batch_run_again_after_a_crash_mid_way_pays_every_row_exactly_once(
    p: Payroll, db_url: str
) -> None:
    """A worker process is killed (SIGKILL) while it pays a batch; another run finishes it."""
    people = [employee(p.bank, 10 + n, f"员工{n}") for n in range(60)]
    content = payroll_file(
        [(f"员工{n}", a.number, f"{n + 1}.00", "") for n, a in enumerate(people)]
    )
    batch = p.upload(content)
    p.writer.execute(payroll.submit(p.maker.operator, batch))
    p.approve(batch).value()
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.corporate.payroll_worker", "--url", db_url,
         "--now", p.clock.now().isoformat()],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        paid = 0
        while paid < 15:
            line = worker.stdout.readline()  # type: ignore[union-attr]
            assert line, f"the worker ended early: {worker.stderr.read()}"  # type: ignore[union-attr]
            paid += int(line.split()[1])
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
        worker.stdout.close()  # type: ignore[union-attr]
        worker.stderr.close()  # type: ignore[union-attr]
    assert worker.returncode == -signal.SIGKILL
    assert p.batch(batch).status == "approved"  # killed half-way
    done_before = sum(1 for r in p.report(batch) if r.status == "paid")
    assert 15 <= done_before < 60
    while payroll.execute_due(p.writer, VAULT, limit=7):
        pass
    assert [p.credits_to(a) for a in people] == [1] * 60
    assert [p.balance(a) for a in people] == [(n + 1) * 100 for n in range(60)]
    total = sum(n + 1 for n in range(60)) * 100
    assert p.balance(p.account) == 1_000_000_00 - total and p.held() == 0
    assert p.batch(batch).status == "completed"
    sound(p.engine)
