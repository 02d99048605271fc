"""The console's complaints, dashboard and configuration pages: what staff do on them, what a
bad input or a forged form does (nothing), and which roles each page refuses."""

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from ebank.core.writer import Command, Writer
from ebank.gateway import fees
from ebank.gateway.tables import fee_plans
from ebank.ops import approvals, parameters
from ebank.ops.tables import complaint_events, complaints
from tests.channels.api_support import customer, member
from tests.channels.web.console_support import console_login
from tests.channels.web.support import csrf_of

LIMIT = "limits.self_enrolled.daily"
CREDIT_CAP = "cards.credit_line.alone_max"
DUE_DAYS = "complaints.due_days"


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_teller_records_works_and_resolves_a_complaint_with_its_history_shown(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1)
    me = member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    made = pages.submit(
        f"/console/complaints/new?customer={person.id}", "/console/complaints/new",
        customer=str(person.id), channel="phone", category="fees",
        description="<script>alert(1)</script>\n年费未告知",
    )  # fmt: skip
    assert made.status_code == 200 and re.fullmatch(r"/console/complaints/\d+", made.url.path)
    page = made.url.path
    assert (
        "投诉已登记" in made.text
        and "&lt;script&gt;alert(1)&lt;/script&gt;<br>年费未告知" in made.text
    )
    pages.submit(page, f"{page}/assign", owner=str(me))
    pages.submit(page, f"{page}/status", status="in_progress", note="")
    pages.submit(page, f"{page}/comment", comment="已致电客户")
    done = pages.submit(page, f"{page}/status", status="resolved", note="已退还年费")
    assert done.status_code == 200
    for shown in ("已解决", "已致电客户", "已退还年费", "Teller1", "已指派"):
        assert shown in done.text, shown
    mine = pages.get("/console/complaints?owner=me&status=resolved")
    assert f'href="{page}"' in mine.text
    assert f'href="{page}"' not in pages.get("/console/complaints?overdue=1").text


def test_a_refused_act_is_shown_beside_its_field_and_changes_nothing(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1)
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    empty = pages.submit("/console/complaints/new", "/console/complaints/new",
                         customer=str(person.id), channel="counter", category="card",
                         description="  ")  # fmt: skip
    assert empty.status_code == 400 and 'id="description-error"' in empty.text
    nobody = pages.submit("/console/complaints/new", "/console/complaints/new",
                          customer="999999", channel="counter", category="card",
                          description="卡被吞")  # fmt: skip
    assert nobody.status_code == 404 and 'id="customer-error"' in nobody.text
    assert _count(engine, complaints) == 0
    made = pages.submit("/console/complaints/new", "/console/complaints/new",
                        customer=str(person.id), channel="counter", category="card",
                        description="卡被吞")  # fmt: skip
    page = made.url.path
    unowned = pages.submit(page, f"{page}/status", status="resolved", note="已处理")
    assert unowned.status_code == 409 and 'id="status-error"' in unowned.text
    assert _count(engine, complaint_events) == 1
    assert pages.get("/console/complaints/424242").status_code == 404


def test_a_forged_form_changes_nothing(api: TestClient, writer: Writer, engine: Engine) -> None:
    person = customer(writer, 1)
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    for token in ("", "forged-token"):
        answer = api.post("/console/complaints/new", data={
            "csrf": token, "customer": str(person.id), "channel": "phone", "category": "fees",
            "description": "伪造",
        })  # fmt: skip
        assert answer.status_code == 403
        answer = api.post("/console/settings/parameters", data={
            "csrf": token, "parameter": LIMIT, "value": "1.00", "reason": "伪造",
        })  # fmt: skip
        assert answer.status_code == 403
    assert pages.get("/console/complaints").status_code == 200  # still logged in
    assert _count(engine, complaints) == 0
    with engine.connect() as conn:
        assert approvals.pending(conn) == []


def test_the_dashboard_shows_its_figures_and_charts_to_supervisors_only(
    api: TestClient, writer: Writer
) -> None:
    member(writer, "super1", "supervisor")
    member(writer, "teller1", "teller")
    board = console_login(api, "super1").get("/console/dashboard?since=2026-11-01&until=2026-11-23")
    assert board.status_code == 200
    for shown in ("电子渠道替代率", "活卡率", 'data-chart="line"', 'id="chart-counts"',
                  "vendor/echarts/echarts.min.js"):  # fmt: skip
        assert shown in board.text, shown
    assert "<script>" not in board.text  # only data blocks and script files
    bad = api.get("/console/dashboard?since=2026-13-01")
    assert bad.status_code == 400 and 'id="since-error"' in bad.text
    assert console_login(api, "teller1").get("/console/dashboard").status_code == 403


def test_a_limit_change_is_proposed_in_yuan_waits_for_a_checker_and_shows_in_yuan(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    member(writer, "teller1", "teller")
    member(writer, "admin1", "admin")
    pages = console_login(api, "teller1")
    settings = pages.get("/console/settings")
    assert settings.status_code == 200 and LIMIT in settings.text
    bad = pages.submit("/console/settings", "/console/settings/parameters", parameter=LIMIT,
                       value="12.345", reason="监管新规")  # fmt: skip
    assert bad.status_code == 400 and 'id="value-error"' in bad.text
    done = pages.submit("/console/settings", "/console/settings/parameters", parameter=LIMIT,
                        value="8,000", reason="监管新规")  # fmt: skip
    assert done.status_code == 200 and "审批" in done.text
    with engine.connect() as conn:
        [waiting] = approvals.pending(conn)
        assert waiting.action == "parameter.set"
        assert waiting.params == {"name": LIMIT, "value": 800_000}
        assert parameters.values(conn, LIMIT)[LIMIT] == 500_000  # unchanged until approved
    queue = pages.get("/console/approvals").text
    assert "¥8,000.00" in queue and "800000" not in queue
    admin = console_login(api, "admin1")
    refused = api.post("/console/settings/fee-plans", data={
        "csrf": csrf_of(admin.get("/console/")), "code": "B2C-018", "name": "B2C 0.18%",
        "rate": "0.18", "plan_reason": "新产品",
    })  # fmt: skip
    assert refused.status_code == 403


def test_a_fee_plan_is_proposed_as_a_percentage_and_made_when_another_approves_it(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    writer.execute(Command(fees.ensure_plans))
    member(writer, "teller1", "teller")
    checker = member(writer, "super1", "supervisor")
    pages = console_login(api, "teller1")
    before = _count(engine, fee_plans)
    bad = pages.submit("/console/settings", "/console/settings/fee-plans", code="B2C-X",
                       name="B2C", rate="0.123456", plan_reason="新产品")  # fmt: skip
    assert bad.status_code == 400 and 'id="rate-error"' in bad.text
    taken = pages.submit("/console/settings", "/console/settings/fee-plans", code="b2b-rate",
                         name="B2C", rate="0.25", plan_reason="新产品")  # fmt: skip
    assert taken.status_code == 409 and 'id="code-error"' in taken.text
    done = pages.submit("/console/settings", "/console/settings/fee-plans", code="b2c-018",
                        name="B2C 0.18%", rate="0.18", maximum="50",
                        plan_reason="新产品")  # fmt: skip
    assert done.status_code == 200 and "审批" in done.text
    assert _count(engine, fee_plans) == before  # nothing is made until a checker approves
    queue = pages.get("/console/approvals").text
    assert "新增支付网关手续费方案" in queue and "0.18%" in queue and "¥50.00" in queue
    with engine.connect() as conn:
        [waiting] = approvals.pending(conn)
    own = pages.submit("/console/approvals", f"/console/approvals/{waiting.id}/approve")
    assert own.status_code == 403  # a teller checks nothing, their own least of all
    api.cookies.clear()
    supervisor = console_login(api, "super1")
    approved = supervisor.submit("/console/approvals",
                                 f"/console/approvals/{waiting.id}/approve")  # fmt: skip
    assert approved.status_code == 200 and "B2C-018" not in approved.text
    settings = supervisor.get("/console/settings")
    assert "B2C-018" in settings.text
    with engine.connect() as conn:
        row = conn.execute(select(fee_plans).where(fee_plans.c.code == "B2C-018")).one()
    assert (row.rate_ppm, row.fixed, row.maximum) == (1800, 0, 5000)
    assert row.created_by == f"staff:{checker}"


def _row(page: str, name: str) -> str:
    """The settings table's row of one parameter."""
    found = re.search(rf'<tr>\s*<td[^>]*class="code">{re.escape(name)}</td>.*?</tr>', page, re.S)
    assert found, f"no row for {name}"
    return found.group(0)


def test_every_amount_is_shown_and_proposed_in_yuan_by_its_unit_and_a_count_as_a_number(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    settings = pages.get("/console/settings").text
    cap = _row(settings, CREDIT_CAP)
    assert cap.count("¥50,000.00") == 2 and "5000000" not in cap  # now and the default
    due = _row(settings, DUE_DAYS)
    assert ">15</td>" in due and "¥" not in due
    done = pages.submit("/console/settings", "/console/settings/parameters",
                        parameter=CREDIT_CAP, value="80,000.01", reason="授信政策调整")  # fmt: skip
    assert done.status_code == 200 and "审批" in done.text
    bad = pages.submit("/console/settings", "/console/settings/parameters", parameter=DUE_DAYS,
                       value="20.5", reason="监管新规")  # fmt: skip
    assert bad.status_code == 400 and 'id="value-error"' in bad.text
    pages.submit("/console/settings", "/console/settings/parameters", parameter=DUE_DAYS,
                 value="20", reason="监管新规")  # fmt: skip
    with engine.connect() as conn:
        proposed = [a.params for a in approvals.pending(conn)]
    assert proposed == [{"name": CREDIT_CAP, "value": 8_000_001}, {"name": DUE_DAYS, "value": 20}]
    queue = pages.get("/console/approvals").text
    assert "¥80,000.01" in queue and "8000001" not in queue and "¥0.20" not in queue
