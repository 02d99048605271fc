"""Online banking's settings pages: cards (report one lost), limits (lower at once, raise with
the token, never past the bank's maximum), online payment on and off, bound devices and live
sessions, the login password changed (the other logins ended), notification preferences; and
that another's object or a forged form changes nothing."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.cards import service as cards
from ebank.core.clock import FixedClock
from ebank.core.writer import Writer
from ebank.enrolment import service as enrolment
from ebank.gateway import controls, orders
from ebank.notify import notices
from ebank.security import devices, sessions
from ebank.security import service as security
from tests.channels.api_support import (
    ONLINE,
    PASSWORD,
    WRONG,
    Person,
    account_with_money,
    bearer,
    bind_device,
    customer,
    login,
    token_code,
)
from tests.channels.web.support import Pages, bank_login
from tests.gateway.support import YUAN, GatewayBank, shopper
from tests.support import STAFF, VAULT


def with_card(writer: Writer, n: int) -> tuple[Person, int]:
    """Person `n`, enrolled online, with an account and its debit card (the card's id)."""
    person = customer(writer, n, enrolled=ONLINE)
    number = account_with_money(writer, person, [100_00])
    issued = writer.execute(
        cards.issue_debit_card(VAULT, customer_id=person.id, account_number=number, actor=STAFF)
    )
    return person, issued.card.id


def card_status(engine: Engine, card_id: int) -> str:
    with engine.connect() as conn:
        return cards.get_card(conn, card_id).status


def agreed(engine: Engine, person: Person) -> tuple[int, int]:
    with engine.connect() as conn:
        found = enrolment.enrolment_of(conn, person.id, "online")
    assert found is not None
    return found.daily_limit, found.per_payment_limit


def test_a_customer_reports_their_card_lost_after_a_confirmation_step(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person, card = with_card(writer, 1)
    pages = bank_login(api, engine, person)
    listed = pages.get("/bank/cards")
    assert "621799******" in listed.text and "正常" in listed.text
    confirm = pages.get(f"/bank/cards/{card}/report-loss")
    assert confirm.status_code == 200 and "挂失后" in confirm.text
    assert card_status(engine, card) == "active"  # nothing happens before the confirmation
    done = pages.submit(f"/bank/cards/{card}/report-loss", f"/bank/cards/{card}/report-loss")
    assert done.status_code == 200 and done.url.path == "/bank/cards"
    assert "已挂失" in done.text
    assert card_status(engine, card) == "reported_lost"


def test_someone_elses_card_is_not_found_and_stays_active(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person, _mine = with_card(writer, 1)
    _other, theirs = with_card(writer, 2)
    pages = bank_login(api, engine, person)
    assert pages.get(f"/bank/cards/{theirs}/report-loss").status_code == 404
    refused = pages.submit("/bank/cards", f"/bank/cards/{theirs}/report-loss")
    assert refused.status_code == 404 and "卡片不存在" in refused.text
    assert card_status(engine, theirs) == "active"


def test_a_lowered_limit_takes_effect_at_once(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = bank_login(api, engine, person)
    done = pages.submit(
        "/bank/limits/online", "/bank/limits/online",
        daily_limit="5000.00", per_payment_limit="1000.00",
    )  # fmt: skip
    assert done.url.path == "/bank/limits" and "¥5,000.00" in done.text
    assert agreed(engine, person) == (500_000, 100_000)


def test_a_raised_limit_asks_for_the_token_code_first(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = bank_login(api, engine, person)
    pages.submit("/bank/limits/online", "/bank/limits/online",
                 daily_limit="5000.00", per_payment_limit="1000.00")  # fmt: skip
    asked = pages.submit("/bank/limits/online", "/bank/limits/online",
                         daily_limit="8000.00", per_payment_limit="2000.00")  # fmt: skip
    assert asked.status_code == 200 and 'name="token_code"' in asked.text
    assert "¥8,000.00" in asked.text
    assert agreed(engine, person) == (500_000, 100_000)  # not yet
    wrong = "000000" if token_code(person, clock) != "000000" else "111111"
    fields = {"step": "confirm", "daily_limit": "8000.00", "per_payment_limit": "2000.00"}
    refused = pages.submit("/bank/limits/online", "/bank/limits/online", **fields,
                           token_code=wrong)  # fmt: skip
    assert refused.status_code == 401 and 'id="token_code-error"' in refused.text
    assert agreed(engine, person) == (500_000, 100_000)
    done = pages.submit("/bank/limits/online", "/bank/limits/online", **fields,
                        token_code=token_code(person, clock))  # fmt: skip
    assert done.url.path == "/bank/limits" and "¥8,000.00" in done.text
    assert agreed(engine, person) == (800_000, 200_000)


def test_a_limit_above_the_bank_maximum_is_refused_beside_the_fields(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    before = agreed(engine, person)
    pages = bank_login(api, engine, person)
    refused = pages.submit("/bank/limits/online", "/bank/limits/online",
                           daily_limit="99000000.00", per_payment_limit="1000.00")  # fmt: skip
    assert refused.status_code == 422 and 'id="limits-error"' in refused.text
    assert "超过本行允许的最高限额" in refused.text and 'value="99000000.00"' in refused.text
    bad = pages.submit("/bank/limits/online", "/bank/limits/online",
                       daily_limit="-5.00", per_payment_limit="1000.00")  # fmt: skip
    assert bad.status_code == 400 and 'id="daily_limit-error"' in bad.text
    assert agreed(engine, person) == before


def test_online_payment_is_switched_off_and_on_with_an_own_limit(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person, _card = with_card(writer, 1)
    pages = bank_login(api, engine, person)
    off = pages.submit("/bank/online-payments", "/bank/online-payments", enabled="off",
                       daily_limit="")  # fmt: skip
    assert off.url.path == "/bank/online-payments"
    with engine.connect() as conn:
        assert controls.of(conn, person.id).enabled is False
    on = pages.submit("/bank/online-payments", "/bank/online-payments", enabled="on",
                      daily_limit="2000.00")  # fmt: skip
    assert 'value="2000.00"' in on.text
    with engine.connect() as conn:
        chosen = controls.of(conn, person.id)
    assert chosen.enabled is True and chosen.daily_limit == 200_000


def test_a_card_is_barred_from_online_payment_and_anothers_is_not_found(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person, card = with_card(writer, 1)
    _other, theirs = with_card(writer, 2)
    pages = bank_login(api, engine, person)
    pages.submit("/bank/online-payments", f"/bank/online-payments/cards/{card}", online="off")
    refused = pages.submit("/bank/online-payments", f"/bank/online-payments/cards/{theirs}",
                           online="off")  # fmt: skip
    assert refused.status_code == 404
    with engine.connect() as conn:
        assert [c.online for c in controls.of(conn, person.id).cards] == [False]
        assert controls.card_allowed(conn, theirs)


def test_a_buyer_confirms_one_escrow_order_disputes_another_and_cannot_see_anothers(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    bank = GatewayBank(writer, engine, clock)
    shop, buyer, other = bank.merchant(), shopper(bank), shopper(bank)
    received, wrong = (buyer.paid(shop.order(50 * YUAN, "escrow")) for _ in range(2))
    theirs = other.paid(shop.order(80 * YUAN, "escrow"))
    pages = bank_login(api, engine, Person(buyer.id, buyer.id_number, buyer.id_number, None))
    listed = pages.get("/bank/online-payments?before=999999")
    assert received.trade_no in listed.text and "待确认收货" in listed.text
    assert theirs.trade_no not in listed.text
    page = f"/bank/online-payments/{received.trade_no}"
    done = pages.submit(page, f"{page}/confirm")
    assert done.url.path == page and "已支付" in done.text
    page = f"/bank/online-payments/{wrong.trade_no}"
    empty = pages.submit(page, f"{page}/dispute", reason="")
    assert empty.status_code == 400 and 'id="reason-error"' in empty.text
    pages.submit(page, f"{page}/dispute", reason="<b>broken</b> on arrival")
    assert pages.get(f"/bank/online-payments/{theirs.trade_no}").status_code == 404
    refused = pages.submit(page, f"/bank/online-payments/{theirs.trade_no}/confirm")
    assert refused.status_code == 404
    with engine.connect() as conn:
        status = [orders.by_trade_no(conn, o.trade_no).status for o in (received, wrong, theirs)]
    assert status == ["paid", "disputed", "held"]


def test_a_customer_unbinds_a_phone_and_logs_out_another_login(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    bind_device(writer, person)
    login(api, clock, person)  # another login, by the API
    pages = bank_login(api, engine, person)
    with engine.connect() as conn:
        [phone] = devices.devices_of(conn, person.id)
        live = sessions.live_sessions(conn, person.id, now=clock.now())
    page = pages.get("/bank/security")
    assert "我的手机" in page.text and page.text.count("/end") == 1  # not this login's
    pages.submit("/bank/security", f"/bank/security/devices/{phone.id}/unbind")
    other = min(s.id for s in live)
    done = pages.submit("/bank/security", f"/bank/security/sessions/{other}/end")
    assert done.status_code == 200 and done.url.path == "/bank/security"
    with engine.connect() as conn:
        assert devices.devices_of(conn, person.id) == []
        assert [s.id for s in sessions.live_sessions(conn, person.id, now=clock.now())] == [
            max(s.id for s in live)
        ]


def test_a_customer_changes_the_login_password_and_their_other_logins_end(
    api: TestClient, writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    token = login(api, clock, person)  # another login, by the API
    pages = bank_login(api, engine, person)
    new = "Moonrise2027"
    typed = {"password_current": WRONG, "password_new": new, "password_repeat": new}
    wrong = pages.submit("/bank/security", "/bank/security/password", **typed)
    assert wrong.status_code == 401 and 'id="password_current-error"' in wrong.text
    mismatch = pages.submit(
        "/bank/security",
        "/bank/security/password",
        **typed | {"password_current": PASSWORD, "password_repeat": "x"},
    )
    assert mismatch.status_code == 400 and 'id="password_repeat-error"' in mismatch.text
    for page in (wrong, mismatch):
        assert WRONG not in page.text and new not in page.text and PASSWORD not in page.text
    assert api.get("/api/v1/me/accounts", headers=bearer(token)).status_code == 200
    done = pages.submit("/bank/security", "/bank/security/password",
                        **typed | {"password_current": PASSWORD})  # fmt: skip
    assert done.url.path == "/bank/security" and "其他设备上的登录已退出" in done.text
    assert api.get("/api/v1/me/accounts", headers=bearer(token)).status_code == 401
    assert writer.execute(
        security.check_secret(customer_id=person.id, kind="login_password", secret=new)
    ).ok
    assert pages.get("/bank/security").status_code == 200  # this login goes on


def test_notification_preferences_are_saved_and_a_bad_address_refused(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person = customer(writer, 1, enrolled=ONLINE)
    pages = bank_login(api, engine, person)
    fields = {"movement_sms": "on", "movement_threshold": "100.00", "locale": "en"}
    bad = pages.submit("/bank/notifications", "/bank/notifications", **fields, email="no")
    assert bad.status_code == 400 and 'id="email-error"' in bad.text
    pages.submit("/bank/notifications", "/bank/notifications", **fields, email="")
    with engine.connect() as conn:
        assert notices.preferences_of(conn, person.id) == notices.Preferences(True, 100_00, "en")


def test_a_forged_form_is_refused_and_changes_nothing(
    api: TestClient, writer: Writer, engine: Engine
) -> None:
    person, card = with_card(writer, 1)
    before = agreed(engine, person)
    bank_login(api, engine, person)
    forged = [
        (f"/bank/cards/{card}/report-loss", {}),
        ("/bank/limits/online", {"daily_limit": "1.00", "per_payment_limit": "1.00"}),
        ("/bank/online-payments", {"enabled": "off", "daily_limit": ""}),
        (
            "/bank/security/password",
            {
                "password_current": PASSWORD,
                "password_new": "Moon2027x",
                "password_repeat": "Moon2027x",
            },
        ),
    ]
    for action, fields in forged:
        assert api.post(action, data={"csrf": "forged", **fields}).status_code == 403
    assert card_status(engine, card) == "active" and agreed(engine, person) == before
    with engine.connect() as conn:
        assert controls.of(conn, person.id).enabled is True
    assert writer.execute(
        security.check_secret(customer_id=person.id, kind="login_password", secret=PASSWORD)
    ).ok
    assert Pages(api).get("/bank/cards").status_code == 200  # still logged in
