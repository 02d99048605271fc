"""The limits on SMS codes as each channel shows them: "text me a code" pressed again within a
minute answers a readable refusal beside the code field (HTTP 429) and keeps what was typed
(the payee's details, the factor chosen, the large-transfer box); the API answers 429 with the
seconds to wait. And the security page's password form sent twice changes the password once,
counts no failure and answers alike; the same form with another new password is a conflict.

SQLite and PostgreSQL."""

import re
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from ebank.core.clock import FixedClock
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.ops import approvals
from ebank.security import service as security
from tests.channels.api_support import (
    ONLINE,
    PASSWORD,
    account_with_money,
    bearer,
    customer,
    login,
    sms_codes,
)
from tests.channels.web.bank_payments_support import balance, confirm, pending_of, to_confirmation
from tests.channels.web.support import Pages, bank_login, csrf_of
from tests.security.test_security import credential_row
from tests.support import STAFF

API = "/api/v1"
KEY = re.compile(r'name="key" value="([^"]+)"')
NEW = "Moonrise2027"


class Alice:
    """Customer 1, logged in to online banking (with an SMS code), with ¥50,000.00; Bob is
    customer 2."""

    def __init__(self, api: TestClient, writer: Writer, engine: Engine) -> None:
        self.person = customer(writer, 1, enrolled=ONLINE)
        self.account = account_with_money(writer, self.person, [50_000_00])
        self.bob = account_with_money(writer, customer(writer, 2), [])
        self.pages: Pages = bank_login(api, engine, self.person)
        self.engine = engine

    def to_bob(self, amount: str = "1234.50") -> dict[str, str]:
        return {"from_account": self.account, "payee_account": self.bob, "payee_name": "客户2",
                "amount": amount}  # fmt: skip

    def codes(self) -> list[str]:
        return sms_codes(self.engine, self.person.id)

    def text_me(self, page: httpx.Response, **typed: str) -> httpx.Response:
        """The confirmation page's "text me a code", with what was typed on the page."""
        data = {"csrf": csrf_of(page), "pending": pending_of(page), **typed}
        self.pages.last = self.pages.client.post("/bank/transfer/code", data=data)
        return self.pages.last


@pytest.fixture
def alice(api: TestClient, writer: Writer, engine: Engine) -> Alice:
    return Alice(api, writer, engine)


def code_error(page: httpx.Response) -> str:
    found = re.search(r'id="code-error" role="alert">([^<]+)<', page.text)
    assert found, page.text
    return found.group(1)


def test_texting_a_transfer_code_again_within_a_minute_is_refused_beside_the_code_field(
    alice: Alice, engine: Engine, clock: FixedClock
) -> None:
    page = to_confirmation(alice.pages, **alice.to_bob())
    sent = alice.text_me(page, method="sms")
    assert sent.status_code == 200 and len(alice.codes()) == 2  # the login's, then this one
    again = alice.text_me(sent, method="sms")
    assert again.status_code == 429
    assert code_error(again) == "验证码已发送，请 60 秒后再重新获取"
    assert len(alice.codes()) == 2
    assert 'value="sms" checked' in again.text  # the page, as it was: its form confirms
    done = confirm(alice.pages, again, method="sms", code=alice.codes()[-1])
    assert done.url.path.startswith("/bank/payments/"), done.text  # the first code still works
    assert balance(engine, alice.bob) == 1234_50


def test_the_large_transfer_box_stays_ticked_when_a_code_is_texted_or_refused(
    alice: Alice, writer: Writer, clock: FixedClock
) -> None:
    ask = approvals.propose(
        "parameter.set", {"name": "limits.large_warning.individual.daily", "value": 1_000_00},
        reason="测试", maker=STAFF,
    )  # fmt: skip
    writer.execute(approvals.approve(writer.execute(ask), checker="staff:9"))
    page = to_confirmation(alice.pages, **alice.to_bob())
    assert 'id="large_confirmed" name="large_confirmed" value="yes">' in page.text
    ticked = 'id="large_confirmed" name="large_confirmed" value="yes" checked>'
    sent = alice.text_me(page, method="sms", large_confirmed="yes")
    assert sent.status_code == 200 and ticked in sent.text
    refused = alice.text_me(sent, method="sms", large_confirmed="yes")
    assert refused.status_code == 429 and ticked in refused.text
    unticked = alice.text_me(refused, method="sms")
    assert ticked not in unticked.text


def test_texting_a_payee_code_again_within_a_minute_keeps_what_was_typed(
    alice: Alice, clock: FixedClock
) -> None:
    payee = {"account": alice.bob, "name": "客户2", "bank": "", "alias": "Bob <b>"}
    first = alice.pages.submit("/bank/payees", "/bank/payees", **payee, step="code")
    assert first.status_code == 200 and len(alice.codes()) == 2
    again = alice.pages.submit("/bank/payees", "/bank/payees", **payee, step="code")
    assert again.status_code == 429 and len(alice.codes()) == 2
    assert "60 秒" in code_error(again)
    assert f'value="{alice.bob}"' in again.text and 'value="Bob &lt;b&gt;"' in again.text
    clock.advance(timedelta(seconds=60))
    later = alice.pages.submit("/bank/payees", "/bank/payees", **payee, step="code")
    assert later.status_code == 200 and len(alice.codes()) == 3


def test_the_api_answers_429_with_the_seconds_to_wait_then_the_days_cap(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    account = account_with_money(writer, person, [50_000_00])
    bob = account_with_money(writer, customer(writer, 2), [])
    me = bearer(login(api, clock, person))
    body = {"from_account": account, "payee_account": bob, "payee_name": "客户2", "amount": "10.00"}
    assert api.post(f"{API}/me/transfers/sms-code", json=body, headers=me).status_code == 200
    clock.advance(timedelta(seconds=15))
    soon = api.post(f"{API}/me/transfers/sms-code", json=body, headers=me)
    assert soon.status_code == 429
    assert soon.json()["code"] == "CODE_TOO_SOON" and soon.json()["details"] == {"seconds": 45}
    for _ in range(9):
        clock.advance(timedelta(seconds=60))
        me = bearer(login(api, clock, person))  # the session idles out meanwhile
        sent = api.post(f"{API}/me/transfers/sms-code", json=body, headers=me)
        assert sent.status_code == 200, sent.json()
    clock.advance(timedelta(seconds=60))
    english = {**me, "Accept-Language": "en"}
    capped = api.post(f"{API}/me/transfers/sms-code", json=body, headers=english)
    assert capped.status_code == 429 and capped.json()["code"] == "CODE_DAILY_LIMIT"
    assert "tomorrow" in capped.json()["message"]


# -- the security page's password form, sent twice ------------------------------------------
def password_form(pages: Pages) -> dict[str, str]:
    """What the security page's password form posts: its token and its key, with a change."""
    page = pages.get("/bank/security")
    key = KEY.search(page.text)
    assert key is not None
    return {"csrf": csrf_of(page), "key": key.group(1), "password_current": PASSWORD,
            "password_new": NEW, "password_repeat": NEW}  # fmt: skip


def failed_checks(engine: Engine, customer_id: int) -> int:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.id).where(
                audit_log.c.subject == f"customer:{customer_id}", audit_log.c.outcome == "failed"
            )
        ).all()
    return len(rows)


def test_a_double_click_on_change_password_changes_it_once_and_counts_no_failure(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = bank_login(api, engine, person)
    form = password_form(pages)
    first = api.post("/bank/security/password", data=form, follow_redirects=False)
    changed = credential_row(engine, person.id, "login_password")
    second = api.post("/bank/security/password", data=form, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"] == "/bank/security"
    shown = pages.get("/bank/security")
    assert "登录密码已修改。" in shown.text
    assert credential_row(engine, person.id, "login_password") == changed
    assert changed["failures"] == 0 and failed_checks(engine, person.id) == 0
    assert writer.execute(
        security.check_secret(customer_id=person.id, kind="login_password", secret=NEW)
    ).ok


def test_the_same_form_with_another_new_password_is_a_conflict_and_changes_nothing(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = bank_login(api, engine, person)
    form = password_form(pages)
    assert api.post("/bank/security/password", data=form, follow_redirects=False).is_redirect
    changed = credential_row(engine, person.id, "login_password")
    other = {**form, "password_new": "Starlight2028", "password_repeat": "Starlight2028"}
    refused = api.post("/bank/security/password", data=other)
    assert refused.status_code == 409 and 'id="password_new-error"' in refused.text
    assert "Starlight2028" not in refused.text and NEW not in refused.text
    assert credential_row(engine, person.id, "login_password") == changed
    assert failed_checks(engine, person.id) == 0
    assert writer.execute(
        security.check_secret(customer_id=person.id, kind="login_password", secret=NEW)
    ).ok


def test_the_two_change_forms_carry_keys_of_their_own_drawn_with_each_page(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = bank_login(api, engine, person)
    once = KEY.findall(pages.get("/bank/security").text)
    again = KEY.findall(pages.get("/bank/security").text)
    assert len(once) == len(again) == 2
    assert len(set(once) | set(again)) == 4
