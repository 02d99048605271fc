"""The console's counter business and its transfer exceptions queue: a teller registers a
customer, opens an account, issues a card, sets secrets and enrols them; bad input is shown
beside its field with nothing created; roles without the right and forged forms are refused;
a failed transfer shows in the queue with its cause."""

import html
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from ebank.accounts.service import accounts_of, open_account
from ebank.cards.service import cards_of
from ebank.core.clock import FixedClock
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.customers.tables import customers
from ebank.enrolment.service import enrolment_of
from ebank.ops import approvals
from ebank.payments import service as payments
from ebank.payments.models import Confirmation, TransferRequest
from tests.channels.api_support import account_with_money, customer, member, sms_codes
from tests.channels.web.console_support import console_login
from tests.channels.web.support import Pages, csrf_of
from tests.support import VAULT, person_id

COUNTER = "/console/counter"
KEY = re.compile(r'name="key" value="([^"]+)"')


def _register(pages: Pages, name: str, id_number: str, mobile: str) -> int:
    done = pages.submit(COUNTER, f"{COUNTER}/individuals", name=name, id_number=id_number,
                        key=_key(pages.client.get(COUNTER).text), mobile=mobile)  # fmt: skip
    assert done.status_code == 200 and "客户信息已登记" in done.text, done.text
    return int(done.url.path.rsplit("/", 1)[1])


def _key(page: str) -> str:
    found = KEY.search(page)
    assert found, "no idempotency key on the page"
    return found.group(1)


def _customers(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(customers)).scalar_one()


def test_a_teller_registers_a_customer_opens_an_account_and_issues_a_card_the_file_shows(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    teller = member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    customer_id = _register(pages, "张三", person_id(11), "13900000011")
    page = f"{COUNTER}/customers/{customer_id}"
    opened = pages.submit(page, f"{page}/accounts", product="demand", tier="I",
                          key=_key(pages.client.get(page).text))  # fmt: skip
    assert opened.status_code == 200 and "已开立" in opened.text, opened.text
    with engine.connect() as conn:
        [account] = accounts_of(conn, customer_id)
    issued = pages.submit(page, f"{page}/cards", account=account.number,
                          key=_key(pages.client.get(page).text))  # fmt: skip
    assert issued.status_code == 200 and "借记卡" in issued.text, issued.text
    secret = pages.submit(page, f"{page}/secrets", kind="login_password", secret="Zs2026pass!",
                          secret_again="Zs2026pass!")  # fmt: skip
    assert secret.status_code == 200 and "Zs2026pass!" not in secret.text, secret.text
    enrolled = pages.submit(page, f"{page}/enrolments", channel="online", daily_limit="5000",
                            per_payment_limit="1000.50")  # fmt: skip
    assert enrolled.status_code == 200 and "¥5,000.00" in enrolled.text, enrolled.text
    token = pages.submit(page, f"{page}/token")
    assert token.status_code == 200 and "otpauth://totp/" in token.text
    file = pages.get(f"/console/customers/{customer_id}")
    with engine.connect() as conn:
        [card] = cards_of(conn, customer_id)
        online = enrolment_of(conn, customer_id, "online")
        actors = set(conn.execute(select(audit_log.c.actor).where(
            audit_log.c.subject == f"customer:{customer_id}")).scalars())  # fmt: skip
    assert "张三" in file.text and account.number in file.text and card.masked in file.text
    assert page in file.text  # the file links to the counter business
    assert online is not None and (online.daily_limit, online.per_payment_limit) == (
        500_000, 100_050)  # fmt: skip
    assert actors == {f"staff:{teller}"}


def test_a_form_sent_twice_registers_and_issues_once(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    form = pages.get(COUNTER).text
    sent = {"csrf": csrf_of(pages.last), "key": _key(form), "name": "李四",  # type: ignore[arg-type]
            "id_number": person_id(12), "mobile": "13900000012"}  # fmt: skip
    first, second = (api.post(f"{COUNTER}/individuals", data=sent) for _ in range(2))
    assert first.url == second.url and first.status_code == second.status_code == 200
    assert _customers(engine) == 1
    page = first.url.path
    customer_id = int(page.rsplit("/", 1)[1])
    account = writer.execute(open_account(customer_id=customer_id, tier="I", actor="staff:1"))
    shown = pages.get(page)
    card = {"csrf": csrf_of(shown), "key": _key(shown.text), "account": account.number}
    for _ in range(2):
        assert api.post(f"{page}/cards", data=card).status_code == 200
    with engine.connect() as conn:
        assert len(cards_of(conn, customer_id)) == 1


def test_bad_input_is_shown_beside_its_field_and_creates_nothing(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    good = person_id(13)
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    key = _key(pages.client.get(COUNTER).text)
    refused = pages.submit(COUNTER, f"{COUNTER}/individuals", name="王五", id_number=wrong,
                           mobile="13900000013", key=key)  # fmt: skip
    assert refused.status_code == 400 and 'id="id_number-error"' in refused.text
    assert "check digit" in refused.text and 'value="王五"' in refused.text
    assert _customers(engine) == 0
    name = "<script>alert(1)</script>"
    customer_id = _register(pages, name, good, "13900000013")
    page = f"{COUNTER}/customers/{customer_id}"
    shown = pages.get(page)
    assert name not in shown.text and html.escape(name, quote=False) in shown.text
    limit = pages.submit(page, f"{page}/enrolments", channel="online", daily_limit="-5")
    assert limit.status_code == 400 and 'id="daily_limit-error"' in limit.text
    differ = pages.submit(page, f"{page}/secrets", kind="transaction_pin", secret="135792",
                          secret_again="135793")  # fmt: skip
    assert differ.status_code == 400 and 'id="secret_again-error"' in differ.text
    assert "135792" not in differ.text and "135793" not in differ.text
    with engine.connect() as conn:
        assert enrolment_of(conn, customer_id, "online") is None
        changed = conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.action.like("credential.set%"))).scalar_one()  # fmt: skip
    assert changed == 0


def test_a_role_without_the_right_or_a_forged_form_changes_nothing(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, token=False)
    member(writer, "officer1", "risk")
    officer = console_login(api, "officer1")
    assert officer.get(COUNTER).status_code == 403
    assert officer.get(f"{COUNTER}/customers/{person.id}").status_code == 403
    refused = officer.submit("/console/customers", f"{COUNTER}/customers/{person.id}/accounts",
                             product="demand", tier="I", key="k1")  # fmt: skip
    assert refused.status_code == 403
    api.cookies.clear()
    member(writer, "admin1", "admin")
    assert console_login(api, "admin1").get("/console/exceptions").status_code == 403
    api.cookies.clear()
    member(writer, "teller1", "teller")
    console_login(api, "teller1")
    action = f"{COUNTER}/customers/{person.id}/accounts"
    forged = api.post(action, data={"product": "demand", "tier": "I", "key": "k2"})
    foreign = api.post(action, data={"csrf": "x" * 43, "product": "demand", "tier": "I"})
    assert forged.status_code == foreign.status_code == 403
    with engine.connect() as conn:
        assert accounts_of(conn, person.id) == []


def test_a_failed_transfer_shows_in_the_exceptions_queue_with_its_cause(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, token=False, enrolled=("online",))
    payee = customer(writer, 2, token=False)
    paying, paid = (
        account_with_money(writer, person, [10_000]),
        account_with_money(writer, payee, []),
    )
    request = TransferRequest(customer_id=person.id, channel="online", from_account=paying,
                              payee_account=paid, payee_name="客户2", amount=2_000,
                              speed="normal")  # fmt: skip
    writer.execute(payments.send_code(VAULT, request))
    confirmed = Confirmation("sms", sms_codes(engine, person.id)[-1])
    made = writer.execute(payments.transfer(VAULT, request, confirmed, idempotency_key="k"))
    proposed = writer.execute(
        approvals.propose("account.close", {"account": paid}, reason="客户申请", maker="staff:7")
    )
    writer.execute(approvals.approve(proposed, checker="staff:9"))
    clock.advance(timedelta(hours=3))
    payments.execute_due(writer, VAULT)
    member(writer, "teller1", "teller")
    queue = console_login(api, "teller1").get("/console/exceptions")
    assert queue.status_code == 200
    row = queue.text.split(f'id="payment-{made.value()}"')[1].split("</tr>")[0]
    assert "¥20.00" in row and "失败" in row and "收款账户状态异常" in row
    assert f"/console/customers/{person.id}" in row
