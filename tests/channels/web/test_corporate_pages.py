"""Corporate banking's payroll pages: a maker uploads a salary file and submits it, a checker
approves it with their token, and each line's result shows; a forged upload changes nothing."""

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from ebank.corporate import payroll
from tests.channels.web.operator_support import operator_pages, upload
from tests.corporate.support import CREDIT_CODE, add_operator, employee, payroll_file
from tests.support import VAULT, Bank


def test_a_payroll_upload_is_approved_by_the_checker_and_its_results_show(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    bank = Bank(writer, engine, clock)
    enterprise = bank.enterprise()
    paying = bank.account(enterprise, tier="corporate", funds=100_000_00)
    wang, li = employee(bank, 1, "王小明"), employee(bank, 2, "李红")
    maker = add_operator(writer, enterprise, "zhang.maker", "maker")
    checker = add_operator(writer, enterprise, "li.checker", "checker")
    as_maker = operator_pages(api, clock, "corporate", CREDIT_CODE, maker)
    content = payroll_file([("王小明", wang.number, "8500.00", "11月工资"),
                            ("李红", li.number, "7200.50", "11月工资"),
                            ("<script>x</script>", "6222000000000000", "1.00", "")])  # fmt: skip
    report = upload(as_maker, "/corporate/payroll/new", "/corporate/payroll/new", content,
                    account=paying.number, period="2026-11", memo="工资", key="k-1")  # fmt: skip
    assert report.status_code == 200, report.text
    assert "¥15,700.50" in report.text and "2 / 3" in report.text
    assert "&lt;script&gt;x&lt;/script&gt;" in report.text and "校验未通过" in report.text
    batch = report.url.path
    submitted = as_maker.submit(batch, batch + "/submit")
    assert "待复核" in submitted.text and 'name="code"' not in submitted.text
    as_checker = operator_pages(api, clock, "corporate", CREDIT_CODE, checker)
    wrong = "000000" if checker.code(clock) != "000000" else "111111"
    refused = as_checker.submit(batch, batch + "/approve", code=wrong)
    assert refused.status_code == 401 and 'id="code-error"' in refused.text
    approved = as_checker.submit(batch, batch + "/approve", code=checker.code(clock))
    assert approved.status_code == 200 and "审批通过" in approved.text
    payroll.execute_due(writer, VAULT)
    results = as_checker.get(batch)
    assert re.search(r'id="batch-status">已完成<', results.text)
    assert results.text.count("已支付") >= 2
    assert bank.balance(wang) == 8500_00 and bank.balance(li) == 7200_50
    assert bank.balance(paying) == 100_000_00 - 15_700_50
    file = as_checker.get(batch + "/results.csv")
    assert file.headers["content-type"].startswith("text/csv") and "王小明" in file.text


def test_a_forged_or_oversized_upload_changes_nothing(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    bank = Bank(writer, engine, clock)
    enterprise = bank.enterprise()
    paying = bank.account(enterprise, tier="corporate", funds=100_000_00)
    wang = employee(bank, 1, "王小明")
    maker = add_operator(writer, enterprise, "zhang.maker", "maker")
    pages = operator_pages(api, clock, "corporate", CREDIT_CODE, maker)
    fields = {"account": paying.number, "period": "2026-11", "key": "k-1"}
    content = payroll_file([("王小明", wang.number, "8500.00", "")])
    files = {"file": ("salary.csv", content, "text/csv")}
    forged = pages.client.post("/corporate/payroll/new", data={"csrf": "x", **fields}, files=files)
    assert forged.status_code == 403
    huge = payroll_file([("王小明", wang.number, "1.00", "x" * 200)] * 12_000)
    too_big = upload(pages, "/corporate/payroll/new", "/corporate/payroll/new", huge, **fields)
    assert too_big.status_code == 400 and 'id="file-error"' in too_big.text
    with engine.connect() as conn:
        assert payroll.batches_of(conn, customer_id=enterprise) == []
