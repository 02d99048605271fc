"""The staff console's pages: logging in with the password then the token code, risk cases,
the audit log, customers and maker-checker, each refused to roles without the right."""

import html

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from ebank.accounts.service import get_account
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.customers.service import register_individual
from tests.channels.api_support import account_with_money, customer, member, staff_code
from tests.channels.web.console_support import console_login, held_case
from tests.channels.web.support import Pages
from tests.support import STAFF, VAULT, person_id


def test_a_member_of_staff_logs_in_with_password_and_token_code(
    api: TestClient, writer: Writer
) -> None:
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    assert pages.last is not None and "Teller1" in pages.last.text and "柜员" in pages.last.text
    wrong = Pages(api)
    wrong.submit("/console/login", "/console/login", username="teller1", password="staff2026pass")
    code = staff_code(api, "teller1")
    bad = wrong.submit("/console/login", "/console/login/verify",
                       code="000000" if code != "000000" else "111111")  # fmt: skip
    assert bad.status_code == 401 and 'id="code-error"' in bad.text
    assert api.get("/console/", follow_redirects=False).status_code == 200  # the first login


def test_a_risk_case_resolved_shows_in_the_audit_log_and_the_chain_verifies(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    case_id, _payer = held_case(writer, engine)
    officer = member(writer, "officer1", "risk")
    pages = console_login(api, "officer1")
    queue = pages.get("/console/risk")
    assert f"/console/risk/{case_id}" in queue.text
    done = pages.submit(f"/console/risk/{case_id}", f"/console/risk/{case_id}/decide",
                        outcome="release", note="已电话核实")  # fmt: skip
    assert done.status_code == 200 and "已放行" in done.text, done.text
    log = pages.get("/console/audit", params={"action": "risk.case"})
    assert f"staff:{officer}" in log.text and f"risk_case:{case_id}" in log.text
    assert "已电话核实" in log.text
    again = pages.submit(f"/console/risk/{case_id}", f"/console/risk/{case_id}/decide",
                         outcome="reject", note="")  # fmt: skip
    assert again.status_code == 409
    checked = pages.submit("/console/audit", "/console/audit/verify")
    assert checked.status_code == 200 and "审计链完整" in checked.text


def test_a_bad_date_in_the_audit_filter_is_shown_beside_it(api: TestClient, writer: Writer) -> None:
    member(writer, "officer1", "risk")
    pages = console_login(api, "officer1")
    answer = pages.get("/console/audit", params={"since": "2026-13-45"})
    assert answer.status_code == 400 and 'id="since-error"' in answer.text


def test_a_name_with_markup_shows_as_text_in_the_search_results(
    api: TestClient, writer: Writer
) -> None:
    name = "<script>alert(1)</script>"
    writer.execute(register_individual(VAULT, name=name, id_number=person_id(7),
                                       mobile="13900000007", actor=STAFF))  # fmt: skip
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    found = pages.submit("/console/customers", "/console/customers", mobile="13900000007")
    assert found.status_code == 200
    assert name not in found.text and html.escape(name, quote=False) in found.text
    assert "139****0007" in found.text and "13900000007" not in found.text


def test_revealing_a_full_number_is_audited(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 3)
    teller = member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    assert person.mobile not in pages.get(f"/console/customers/{person.id}").text
    page = f"/console/customers/{person.id}"
    no_reason = pages.submit(page, f"{page}/reveal", what="mobile", reason="")
    assert no_reason.status_code == 400 and person.mobile not in no_reason.text
    shown = pages.submit(page, f"{page}/reveal", what="mobile", reason="客户来电核对")
    assert shown.status_code == 200 and person.mobile in shown.text
    with engine.connect() as conn:
        actors = (
            conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "customer.reveal"))
            .scalars()
            .all()
        )
    assert actors == [f"staff:{teller}"]


def test_a_teller_proposes_a_freeze_that_only_another_checker_carries_out(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1)
    number = account_with_money(writer, person, [1_000])
    member(writer, "teller1", "teller")
    member(writer, "super1", "supervisor")
    teller = console_login(api, "teller1")
    page = f"/console/customers/{person.id}"
    proposed = teller.submit(page, f"{page}/propose", target=f"account.freeze:{number}",
                             proposal_reason="司法冻结")  # fmt: skip
    assert proposed.status_code == 200 and "司法冻结" in proposed.text
    request_id = int(proposed.text.split('id="approval-')[1].split('"')[0])
    own = teller.submit("/console/approvals", f"/console/approvals/{request_id}/approve")
    assert own.status_code == 403
    assert _status(engine, number) == "active"
    api.cookies.clear()
    checker = console_login(api, "super1")
    approved = checker.submit("/console/approvals", f"/console/approvals/{request_id}/approve",
                              note="核对无误")  # fmt: skip
    assert approved.status_code == 200 and "审批通过" in approved.text
    assert _status(engine, number) == "frozen"


def test_a_checker_cannot_approve_their_own_proposal(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1)
    number = account_with_money(writer, person, [1_000])
    member(writer, "super1", "supervisor")
    pages = console_login(api, "super1")
    page = f"/console/customers/{person.id}"
    proposed = pages.submit(page, f"{page}/propose", target=f"account.freeze:{number}",
                            proposal_reason="测试")  # fmt: skip
    request_id = int(proposed.text.split('id="approval-')[1].split('"')[0])
    own = pages.submit("/console/approvals", f"/console/approvals/{request_id}/approve")
    assert own.status_code == 403 and 'role="alert"' in own.text
    assert _status(engine, number) == "active"


def test_a_forged_form_is_refused_and_changes_nothing(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    case_id, _payer = held_case(writer, engine)
    member(writer, "officer1", "risk")
    pages = console_login(api, "officer1")
    forged = api.post(f"/console/risk/{case_id}/decide", data={"outcome": "release"})
    assert forged.status_code == 403
    foreign = api.post(f"/console/risk/{case_id}/decide",
                       data={"csrf": "x" * 43, "outcome": "release"})  # fmt: skip
    assert foreign.status_code == 403
    assert "待处理" in pages.get(f"/console/risk/{case_id}").text  # still open


def test_a_role_without_the_right_is_refused(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    case_id, _payer = held_case(writer, engine)
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    assert pages.get("/console/risk").status_code == 403
    assert pages.get("/console/audit").status_code == 403
    refused = pages.submit("/console/", f"/console/risk/{case_id}/decide", outcome="release")
    assert refused.status_code == 403
    api.cookies.clear()
    member(writer, "admin1", "admin")
    admin = console_login(api, "admin1")
    assert admin.get("/console/customers").status_code == 403
    assert admin.get("/console/audit").status_code == 200


def _status(engine: Engine, number: str) -> str:
    with engine.connect() as conn:
        return get_account(conn, number=number).status
