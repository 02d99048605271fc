"""The customer's own things through the API: accounts, statements, cards, devices and sessions.

Someone else's account, card, device or session answers exactly like one that does not exist, and
asking for it changes nothing. Amounts go out as exact decimal strings and come in the same
way. Every test runs on SQLite and PostgreSQL.
"""

from sqlalchemy import select

from ebank.cards import service as cards
from ebank.cards.tables import card_events
from ebank.core import audit
from ebank.core.tables import audit_log, outbox_events
from ebank.security import devices
from ebank.security.tables import sessions
from tests.channels.api_support import (
    BOTH,
    DEVICE,
    DEVICE_NAME,
    ONLINE,
    Person,
    account_with_money,
    bearer,
    begin,
    bind_device,
    count,
    customer,
    login,
)
from tests.support import STAFF, VAULT

MISSING_ACCOUNT = "6217001999999999999"


def issue_debit(writer, person: Person, number: str) -> int:
    issued = writer.execute(
        cards.issue_debit_card(VAULT, customer_id=person.id, account_number=number, actor=STAFF)
    )
    return issued.card.id


def two_customers(api, writer, clock):
    """Me (logged in) and someone else, each with an account and a debit card."""
    me, other = customer(writer, 1, enrolled=ONLINE), customer(writer, 2, enrolled=ONLINE)
    mine = account_with_money(writer, me, [10_000])
    theirs = account_with_money(writer, other, [99_999_00])
    return {
        "token": login(api, clock, me),
        "me": me,
        "other": other,
        "mine": mine,
        "theirs": theirs,
        "my_card": issue_debit(writer, me, mine),
        "their_card": issue_debit(writer, other, theirs),
    }


def get(api, token: str, path: str):
    return api.get(f"/api/v1{path}", headers=bearer(token))


# -- me and my accounts -------------------------------------------------------------------------
def test_me_shows_my_record_with_numbers_masked(api, writer, clock):
    person = customer(writer, 1, enrolled=ONLINE)
    me = get(api, login(api, clock, person), "/me").json()
    assert me["id"] == person.id
    assert me["id_number_masked"] == person.id_number[:6] + "*" * 8 + person.id_number[-4:]
    assert me["mobile_masked"] == person.mobile[:3] + "****" + person.mobile[-4:]
    assert person.id_number not in str(me) and person.mobile not in str(me)


def test_my_accounts_are_mine_only_with_exact_decimal_amounts(api, writer, clock):
    s = two_customers(api, writer, clock)
    listed = get(api, s["token"], "/me/accounts").json()["accounts"]
    assert [a["number"] for a in listed] == [s["mine"]]
    assert listed[0]["balance"] == listed[0]["available"] == "100.00"
    one = get(api, s["token"], f"/me/accounts/{s['mine']}").json()
    assert one == listed[0]


def test_someone_elses_account_and_statement_answer_like_missing_ones(api, writer, clock):
    s = two_customers(api, writer, clock)
    for path in ("/me/accounts/{}", "/me/accounts/{}/statement"):
        theirs = get(api, s["token"], path.format(s["theirs"]))
        missing = get(api, s["token"], path.format(MISSING_ACCOUNT))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
        assert theirs.json()["code"] == "ACCOUNT_NOT_FOUND"
        assert "99999" not in theirs.text


# -- statements ---------------------------------------------------------------------------------
def test_statement_pages_with_a_cursor_and_filters_by_exact_amounts(api, writer, clock):
    me = customer(writer, 1, enrolled=ONLINE)
    number = account_with_money(writer, me, [100, 2_550, 10_000, 12_345])
    token = login(api, clock, me)
    first = get(api, token, f"/me/accounts/{number}/statement?limit=3").json()
    assert [line["amount"] for line in first["lines"]] == ["123.45", "100.00", "25.50"]
    assert [line["balance_after"] for line in first["lines"]] == ["249.95", "126.50", "26.50"]
    assert all(line["side"] == "C" for line in first["lines"])
    rest = get(api, token, f"/me/accounts/{number}/statement?cursor={first['next_cursor']}").json()
    assert [line["amount"] for line in rest["lines"]] == ["1.00"]
    assert rest["next_cursor"] is None
    oldest = get(api, token, f"/me/accounts/{number}/statement?order=oldest&limit=1").json()
    assert oldest["lines"][0]["amount"] == "1.00"
    between = get(
        api, token, f"/me/accounts/{number}/statement?min_amount=25.50&max_amount=100.00"
    ).json()
    assert [line["amount"] for line in between["lines"]] == ["100.00", "25.50"]


def test_bad_statement_queries_are_400(api, writer, clock):
    me = customer(writer, 1, enrolled=ONLINE)
    number = account_with_money(writer, me, [100])
    token = login(api, clock, me)
    for query, code in (
        ("min_amount=25.5", "INVALID_AMOUNT"),  # CNY takes exactly two decimals
        ("min_amount=25.500", "INVALID_AMOUNT"),
        ("min_amount=1e3", "INVALID_AMOUNT"),
        ("min_amount=-1.00", "INVALID_AMOUNT"),
        ("max_amount=" + "9" * 20 + ".00", "INVALID_AMOUNT"),
        ("limit=0", "INVALID_INPUT"),
        ("limit=501", "INVALID_INPUT"),
        ("limit=" + "9" * 30, "INVALID_INPUT"),
        ("cursor=not-ours", "INVALID_INPUT"),
        ("since=2026-13-01", "INVALID_INPUT"),
        ("side=X", "INVALID_INPUT"),
    ):
        answer = get(api, token, f"/me/accounts/{number}/statement?{query}")
        assert answer.status_code == 400, (query, answer.json())
        assert answer.json()["code"] == code, query


# -- cards --------------------------------------------------------------------------------------
def test_my_cards_are_masked_and_mine_only(api, writer, clock):
    s = two_customers(api, writer, clock)
    listed = get(api, s["token"], "/me/cards").json()["cards"]
    assert [c["id"] for c in listed] == [s["my_card"]]
    assert listed[0]["masked_number"].count("*") == 6
    assert listed[0]["status"] == "active"
    assert get(api, s["token"], f"/me/cards/{s['my_card']}").json() == listed[0]


def test_someone_elses_card_answers_like_a_missing_one(api, writer, clock):
    s = two_customers(api, writer, clock)
    theirs = get(api, s["token"], f"/me/cards/{s['their_card']}")
    missing = get(api, s["token"], "/me/cards/987654")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert theirs.json()["code"] == "CARD_NOT_FOUND"


def test_reporting_my_card_lost_stops_it_at_once_and_repeats_harmlessly(api, writer, engine, clock):
    s = two_customers(api, writer, clock)
    path = f"/api/v1/me/cards/{s['my_card']}/report-loss"
    first = api.post(path, headers=bearer(s["token"]))
    assert first.status_code == 200
    assert first.json()["status"] == "reported_lost"
    assert api.post(path, headers=bearer(s["token"])).json() == first.json()
    with engine.connect() as conn:
        mine = cards.get_card(conn, s["my_card"])
        lost = conn.execute(
            select(outbox_events).where(outbox_events.c.topic == "card.reported_lost")
        ).all()
        actors = conn.execute(
            select(card_events.c.actor, card_events.c.channel).where(
                card_events.c.card_id == s["my_card"], card_events.c.status == "reported_lost"
            )
        ).all()
    assert mine.status == "reported_lost"
    assert len(lost) == 1
    assert actors == [(f"customer:{s['me'].id}", "online")]


def test_reporting_someone_elses_card_lost_is_404_and_changes_nothing(api, writer, engine, clock):
    s = two_customers(api, writer, clock)
    events_before = count(engine, card_events)
    theirs = api.post(f"/api/v1/me/cards/{s['their_card']}/report-loss", headers=bearer(s["token"]))
    missing = api.post("/api/v1/me/cards/987654/report-loss", headers=bearer(s["token"]))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    with engine.connect() as conn:
        assert cards.get_card(conn, s["their_card"]).status == "active"
        assert audit.verify(conn).ok
    assert count(engine, card_events) == events_before


def test_ids_beyond_64_bits_or_not_numbers_are_400_not_500(api, writer, clock):
    token = login(api, clock, customer(writer, 1, enrolled=ONLINE))
    for path in ("/me/cards/" + "9" * 30, "/me/cards/0", "/me/cards/abc", "/me/cards/-1"):
        answer = get(api, token, path)
        assert answer.status_code == 400, (path, answer.json())
    assert api.delete("/api/v1/me/sessions/" + "9" * 30, headers=bearer(token)).status_code == 400


# -- devices ------------------------------------------------------------------------------------
def test_i_list_and_unbind_my_devices_and_that_phone_must_bind_again(api, writer, engine, clock):
    me = customer(writer, 1, enrolled=BOTH)
    bind_device(writer, me)
    token = login(api, clock, me)
    [device] = get(api, token, "/me/devices").json()["devices"]
    assert device["label"] == DEVICE_NAME and set(device) == {
        "id", "label", "bound_at", "last_seen_at"
    }  # fmt: skip
    gone = api.delete(f"/api/v1/me/devices/{device['id']}", headers=bearer(token))
    assert gone.status_code == 204
    assert get(api, token, "/me/devices").json()["devices"] == []
    again = begin(api, me.mobile, channel="mobile", device=DEVICE)
    assert again.json()["code"] == "DEVICE_NOT_BOUND"
    with engine.connect() as conn:
        [unbound] = conn.execute(select(audit_log).where(audit_log.c.action == "device.unbind"))
    assert (unbound.actor, unbound.channel) == (f"customer:{me.id}", "online")


def test_unbinding_someone_elses_device_is_404_like_none_and_it_stays_bound(
    api, writer, engine, clock
):
    me, other = customer(writer, 1, enrolled=ONLINE), customer(writer, 2, enrolled=BOTH)
    bind_device(writer, other)
    with engine.connect() as conn:
        [theirs] = devices.devices_of(conn, other.id)
    token = login(api, clock, me)
    assert get(api, token, "/me/devices").json()["devices"] == []
    answer = api.delete(f"/api/v1/me/devices/{theirs.id}", headers=bearer(token))
    missing = api.delete("/api/v1/me/devices/987654", headers=bearer(token))
    assert answer.status_code == missing.status_code == 404
    assert answer.json() == missing.json()
    assert answer.json()["code"] == "DEVICE_NOT_FOUND"
    with engine.connect() as conn:
        assert devices.devices_of(conn, other.id) == [theirs]
    too_big = api.delete("/api/v1/me/devices/" + "9" * 30, headers=bearer(token))
    assert too_big.status_code == 400
    assert api.get("/api/v1/me/devices").status_code == 401


# -- sessions -----------------------------------------------------------------------------------
def test_my_sessions_list_mine_and_mark_the_current_one(api, writer, clock):
    me, other = customer(writer, 1, enrolled=BOTH), customer(writer, 2, enrolled=ONLINE)
    bind_device(writer, me)
    phone = login(api, clock, me, channel="mobile", device=DEVICE)
    web = login(api, clock, me)
    login(api, clock, other)
    listed = get(api, web, "/me/sessions").json()["sessions"]
    assert [(s["channel"], s["current"]) for s in listed] == [("online", True), ("mobile", False)]
    assert get(api, phone, "/me/sessions").json()["sessions"][1]["current"] is True


def test_ending_my_other_session_logs_that_device_out(api, writer, clock):
    me = customer(writer, 1, enrolled=BOTH)
    bind_device(writer, me)
    phone = login(api, clock, me, channel="mobile", device=DEVICE)
    web = login(api, clock, me)
    phone_id = get(api, phone, "/me/sessions").json()["sessions"][1]["id"]
    assert api.delete(f"/api/v1/me/sessions/{phone_id}", headers=bearer(web)).status_code == 204
    assert get(api, phone, "/me").status_code == 401
    assert get(api, web, "/me").status_code == 200


def test_ending_someone_elses_session_is_404_and_it_lives_on(api, writer, engine, clock):
    me, other = customer(writer, 1, enrolled=ONLINE), customer(writer, 2, enrolled=ONLINE)
    mine, theirs = login(api, clock, me), login(api, clock, other)
    their_id = get(api, theirs, "/me/sessions").json()["sessions"][0]["id"]
    answer = api.delete(f"/api/v1/me/sessions/{their_id}", headers=bearer(mine))
    missing = api.delete("/api/v1/me/sessions/987654", headers=bearer(mine))
    assert answer.status_code == missing.status_code == 404
    assert answer.json() == missing.json()
    assert answer.json()["code"] == "SESSION_NOT_FOUND"
    assert get(api, theirs, "/me").status_code == 200
    with engine.connect() as conn:
        ended = conn.execute(select(sessions.c.id).where(sessions.c.ended_at.is_not(None))).all()
    assert ended == []
