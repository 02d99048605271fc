"""The console's counter business for enterprises and credit, and ending an enrolment: a teller
registers an enterprise and gives it its operators with their tokens, issues a credit card with
its line, and ends a channel after a page that asks; bad input is shown beside its field with
nothing made, and a forged form changes nothing."""

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from ebank.cards.service import cards_of
from ebank.cards.tables import cards
from ebank.core.writer import Writer
from ebank.corporate import operators
from ebank.customers.identity import credit_check_for
from ebank.customers.tables import customers
from ebank.enrolment.service import enrolment_of
from ebank.ledger import queries
from tests.channels.api_support import customer, member
from tests.channels.web.console_support import console_login
from tests.channels.web.support import Pages

COUNTER = "/console/counter"
KEY = re.compile(r'name="key" value="([^"]+)"')
CODE = "91350100M00000077"
CREDIT_CODE = CODE + credit_check_for(CODE)
PASSWORD = "Op2026pass"


def _key(pages: Pages, page: str) -> str:
    found = KEY.search(pages.client.get(page).text)
    assert found, "no idempotency key on the page"
    return found.group(1)


def _enterprises(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(customers.c.kind == "enterprise")
        return int(conn.execute(query).scalar_one())


def test_a_teller_registers_an_enterprise_and_gives_it_operators_with_their_tokens(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    form = f"{COUNTER}/enterprises"
    typed = {"name": "青禾科技有限公司", "legal_representative": "赵六", "mobile": "13600136004"}
    wrong = CREDIT_CODE[:-1] + ("0" if CREDIT_CODE[-1] != "0" else "1")
    refused = pages.submit(form, form, credit_code=wrong, key=_key(pages, form), **typed)
    assert refused.status_code == 400 and 'id="credit_code-error"' in refused.text
    assert 'value="赵六"' in refused.text and _enterprises(engine) == 0
    done = pages.submit(form, form, credit_code=CREDIT_CODE, key=_key(pages, form), **typed)
    assert done.status_code == 200 and "客户信息已登记" in done.text, done.text
    assert "赵六" in done.text and "企业网银操作员" in done.text
    assert 'name="secret"' not in done.text  # its people log in as operators, not as it
    page = done.url.path
    enterprise = int(page.rsplit("/", 1)[1])
    added = pages.submit(page, f"{page}/operators", username="qh.maker", operator_name="出纳",
                         role_maker="1", password=PASSWORD, password_again=PASSWORD)  # fmt: skip
    assert added.status_code == 200 and "otpauth://totp/" in added.text, added.text
    assert PASSWORD not in added.text
    again = pages.submit(page, f"{page}/operators", username="qh.maker", operator_name="出纳",
                         role_checker="1", password=PASSWORD, password_again=PASSWORD)  # fmt: skip
    assert again.status_code == 409 and 'id="username-error"' in again.text
    assert "otpauth://" not in again.text and PASSWORD not in again.text
    roleless = pages.submit(page, f"{page}/operators", username="qh.checker", operator_name="主管",
                            password=PASSWORD, password_again=PASSWORD)  # fmt: skip
    assert roleless.status_code == 400 and 'id="roles-error"' in roleless.text
    with engine.connect() as conn:
        [maker] = operators.of_enterprise(conn, enterprise)
    assert (maker.username, maker.roles) == ("qh.maker", ("maker",))


def test_an_individual_has_no_operators_to_add(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, token=False)
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    page = f"{COUNTER}/customers/{person.id}"
    shown = pages.get(page).text
    assert "企业网银操作员" not in shown and 'name="secret"' in shown
    refused = pages.submit(page, f"{page}/operators", username="zhang.san", operator_name="张三",
                           role_maker="1", password=PASSWORD, password_again=PASSWORD)  # fmt: skip
    assert refused.status_code == 422 and "不是企业客户" in refused.text


def test_a_credit_card_is_issued_with_its_line_and_a_bad_line_issues_nothing(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, token=False)
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    page = f"{COUNTER}/customers/{person.id}"
    for bad in ("-5", "0", "1e9"):
        refused = pages.submit(page, f"{page}/credit-cards", credit_line=bad,
                               key=_key(pages, page))  # fmt: skip
        assert refused.status_code == 400 and 'id="credit_line-error"' in refused.text, bad
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cards)).scalar_one() == 0
    issued = pages.submit(page, f"{page}/credit-cards", credit_line="20,000",
                          key=_key(pages, page))  # fmt: skip
    assert issued.status_code == 200 and "信用卡" in issued.text, issued.text
    with engine.connect() as conn:
        [card] = cards_of(conn, person.id)
        line = queries.get_account(conn, account_id=card.ledger_account_id).credit_line
    assert card.kind == "credit" and line == 2_000_000


def test_ending_an_enrolment_asks_first_and_a_forged_form_ends_nothing(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, token=False, enrolled=("online", "mobile"))
    member(writer, "teller1", "teller")
    pages = console_login(api, "teller1")
    page = f"{COUNTER}/customers/{person.id}"
    confirm = f"{page}/enrolments/mobile/end"
    assert confirm in pages.get(page).text
    asked = pages.get(confirm)
    assert asked.status_code == 200 and "手机银行" in asked.text and 'method="post"' in asked.text
    forged = api.post(confirm, data={"csrf": "x" * 43})
    assert forged.status_code == 403
    with engine.connect() as conn:
        assert enrolment_of(conn, person.id, "mobile") is not None
    ended = pages.submit(confirm, confirm)
    assert ended.status_code == 200 and ended.url.path == page, ended.text
    with engine.connect() as conn:
        assert enrolment_of(conn, person.id, "mobile") is None
        assert enrolment_of(conn, person.id, "online") is not None
    assert pages.get(confirm).status_code == 404  # nothing left to end
    assert pages.get(f"{page}/enrolments/telex/end").status_code == 404
