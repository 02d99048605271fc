"""The staff console through the API: counter business, idempotent creates, maker-checker with
two people, bad input that changes nothing, and the OpenAPI document.

Every test runs on SQLite and PostgreSQL.
"""

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from sqlalchemy import select

from ebank.accounts.tables import customer_accounts
from ebank.cards.tables import cards
from ebank.core import audit
from ebank.core.tables import audit_log, idempotency_keys
from ebank.customers.tables import customers
from ebank.ops.tables import approval_requests
from ebank.security.tables import sessions
from tests.channels.api_support import (
    PASSWORD,
    STEP,
    WRONG,
    account_with_money,
    bearer,
    begin,
    count,
    customer,
    member,
    staff_begin,
    staff_code,
    staff_login,
    staff_verify,
    verify,
)
from tests.support import person_id

STAFF_API = "/api/v1/staff"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def teller(api, writer) -> dict[str, str]:
    """A teller's headers, logged in."""
    member(writer, "teller1", "teller")
    return bearer(staff_login(api, "teller1"))


def post(api, headers: dict[str, str], path: str, body: object, key: str | None = "k1"):
    extra = {} if key is None else {"Idempotency-Key": key}
    return api.post(f"{STAFF_API}{path}", headers={**headers, **extra}, json=body)


def person_body(n: int, **changes: object) -> dict[str, object]:
    return {"name": f"客户{n}", "id_number": person_id(n), "mobile": "13912345678", **changes}


# -- registering customers ----------------------------------------------------------------------
def test_registering_a_person_answers_with_masked_numbers_and_audits_the_teller(
    api, writer, engine, teller
):
    answer = post(api, teller, "/customers/individuals", person_body(1))
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["kind"] == "individual"
    assert body["id_number_masked"] == person_id(1)[:6] + "********" + person_id(1)[-4:]
    assert body["mobile_masked"] == "139****5678"
    with engine.connect() as conn:
        actor = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.action == "customer.register")
        ).scalar_one()
    staff_id = api.get(f"{STAFF_API}/me", headers=teller).json()["id"]
    assert actor == f"staff:{staff_id}"


def test_registering_an_enterprise(api, teller):
    body = {
        "name": "青禾科技有限公司",
        "credit_code": "91350100M000100Y43",
        "legal_representative": "赵六",
        "mobile": "13600136004",
    }
    answer = post(api, teller, "/customers/enterprises", body)
    assert answer.status_code == 201, answer.json()
    assert answer.json()["kind"] == "enterprise"
    assert answer.json()["legal_representative"] == "赵六"


def test_same_key_and_body_replays_the_first_answer_and_registers_once(api, engine, teller):
    first = post(api, teller, "/customers/individuals", person_body(1))
    again = post(api, teller, "/customers/individuals", person_body(1))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert count(engine, customers) == 1


def test_same_key_with_another_body_is_409_and_writes_nothing(api, engine, teller):
    post(api, teller, "/customers/individuals", person_body(1))
    other = post(api, teller, "/customers/individuals", person_body(2))
    assert other.status_code == 409
    assert other.json()["code"] == "IDEMPOTENCY_CONFLICT"
    # The same key on another route is another request too.
    person = api.post(
        f"{STAFF_API}/customers/search", headers=teller, json={"mobile": "13912345678"}
    )
    customer_id = person.json()["customers"][0]["id"]
    elsewhere = post(api, teller, f"/customers/{customer_id}/accounts", {"tier": "I"})
    assert elsewhere.status_code == 409
    assert count(engine, customers) == 1
    assert count(engine, customer_accounts) == 0


def test_a_create_needs_an_idempotency_key(api, engine, teller):
    answer = post(api, teller, "/customers/individuals", person_body(1), key=None)
    assert answer.status_code == 400
    assert answer.json()["code"] == "INVALID_INPUT"
    assert count(engine, customers) == 0


def test_stored_answers_and_fingerprints_hold_no_personal_number(api, engine, teller):
    post(api, teller, "/customers/individuals", person_body(1))
    with engine.connect() as conn:
        stored = conn.execute(select(idempotency_keys)).mappings().one()
    for value in stored.values():
        assert person_id(1) not in str(value)
        assert "13912345678" not in str(value)
        assert "客户1" not in str(value)


def test_a_script_in_a_name_is_kept_as_plain_text(api, engine, teller):
    answer = post(api, teller, "/customers/individuals", person_body(1, name=SCRIPT))
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["name"] == SCRIPT
    with engine.connect() as conn:
        assert conn.execute(select(customers.c.name)).scalar_one() == SCRIPT


@pytest.mark.parametrize(
    "body",
    [
        person_body(1, id_number=person_id(1)[:-1] + "0"),  # wrong check digit
        person_body(1, mobile="12345"),
        person_body(1, name="x" * 101),
        person_body(1, name=""),
        person_body(1, name="a\x00b"),
        person_body(1, name=12345),
        person_body(1, id_number=110105194912310011),
        person_body(1, extra="field"),
        {"name": "客户1"},
        [1, 2, 3],
        "not an object",
    ],
)
def test_bad_registrations_are_400_and_write_nothing(api, engine, teller, body):
    answer = post(api, teller, "/customers/individuals", body)
    assert answer.status_code == 400, answer.json()
    assert answer.json()["code"] == "INVALID_INPUT"
    assert count(engine, customers) == 0
    assert count(engine, idempotency_keys) == 0


def test_finding_a_customer_by_id_number_or_mobile(api, writer, teller):
    person = customer(writer, 1)
    by_id = api.post(
        f"{STAFF_API}/customers/search", headers=teller, json={"id_number": person.id_number}
    )
    by_mobile = api.post(
        f"{STAFF_API}/customers/search", headers=teller, json={"mobile": person.mobile}
    )
    assert by_id.json() == by_mobile.json()
    (found,) = by_id.json()["customers"]
    assert found["id"] == person.id
    assert person.id_number not in by_id.text and person.mobile not in by_id.text
    nobody = api.post(
        f"{STAFF_API}/customers/search", headers=teller, json={"mobile": "13700000000"}
    )
    assert nobody.json() == {"customers": []}
    both = api.post(
        f"{STAFF_API}/customers/search",
        headers=teller,
        json={"mobile": person.mobile, "id_number": person.id_number},
    )
    assert both.status_code == 400


def test_a_customers_file_shows_accounts_and_masked_cards(api, writer, teller):
    person = customer(writer, 1)
    number = account_with_money(writer, person, [12_345])
    issued = post(
        api, teller, f"/customers/{person.id}/cards", {"kind": "debit", "account_number": number}
    )
    file = api.get(f"{STAFF_API}/customers/{person.id}", headers=teller).json()
    assert file["customer"]["id"] == person.id
    assert [(a["number"], a["balance"]) for a in file["accounts"]] == [(number, "123.45")]
    assert file["cards"] == [issued.json()["card"]]
    assert issued.json()["number"] not in str(file)
    missing = api.get(f"{STAFF_API}/customers/987654", headers=teller)
    assert missing.status_code == 404 and missing.json()["code"] == "CUSTOMER_NOT_FOUND"


# -- accounts and cards -------------------------------------------------------------------------
def test_opening_accounts_follows_the_tier_rules(api, writer, engine, teller):
    person = customer(writer, 1)
    first = post(api, teller, f"/customers/{person.id}/accounts", {"tier": "I"}, key="a1")
    assert first.status_code == 201, first.json()
    assert first.json()["balance"] == "0.00" and first.json()["tier"] == "I"
    second = post(api, teller, f"/customers/{person.id}/accounts", {"tier": "I"}, key="a2")
    assert second.status_code == 409 and second.json()["code"] == "TYPE_I_EXISTS"
    term = post(
        api, teller, f"/customers/{person.id}/accounts",
        {"product": "term", "tier": "I", "term_months": 12, "rate_bp": 175}, key="a3",
    )  # fmt: skip
    assert term.status_code == 201 and term.json()["rate_bp"] == 175
    for bad in (
        {"tier": "corporate"},
        {"tier": "II", "rate_bp": 1.5},
        {"tier": "II", "currency": "XXX"},
    ):
        answer = post(api, teller, f"/customers/{person.id}/accounts", bad, key=str(bad))
        assert answer.status_code == 400, (bad, answer.json())
    assert count(engine, customer_accounts) == 2
    unknown = post(api, teller, "/customers/987654/accounts", {"tier": "II"}, key="a4")
    assert unknown.status_code == 404


def test_a_debit_card_number_is_shown_in_full_once_and_a_replay_shows_the_same(
    api, writer, engine, teller
):
    person = customer(writer, 1)
    number = account_with_money(writer, person, [100])
    body = {"kind": "debit", "account_number": number}
    first = post(api, teller, f"/customers/{person.id}/cards", body)
    again = post(api, teller, f"/customers/{person.id}/cards", body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert len(first.json()["number"]) == 16
    assert first.json()["card"]["masked_number"].endswith(first.json()["number"][-4:])
    assert count(engine, cards) == 1
    with engine.connect() as conn:
        stored = str(
            conn.execute(
                select(idempotency_keys.c.result).where(idempotency_keys.c.scope.like("staff:%"))
            ).scalar_one()
        )
    assert first.json()["number"] not in stored  # the stored answer is sealed


def test_someone_elses_account_gets_no_debit_card(api, writer, engine, teller):
    person, other = customer(writer, 1), customer(writer, 2)
    theirs = account_with_money(writer, other, [100])
    answer = post(
        api, teller, f"/customers/{person.id}/cards", {"kind": "debit", "account_number": theirs}
    )
    assert answer.status_code == 404 and answer.json()["code"] == "ACCOUNT_NOT_FOUND"
    assert count(engine, cards) == 0


@pytest.mark.parametrize(
    ("credit_line", "code"),
    [
        ("50000.0", "INVALID_AMOUNT"),
        ("50000", "INVALID_AMOUNT"),
        ("5e4", "INVALID_AMOUNT"),
        ("-100.00", "INVALID_AMOUNT"),
        ("9" * 17 + ".00", "INVALID_AMOUNT"),
        ("0.00", "INVALID_INPUT"),
        (50000, "INVALID_INPUT"),
    ],
)
def test_bad_credit_lines_are_400_and_issue_nothing(api, writer, engine, teller, credit_line, code):
    person = customer(writer, 1)
    body = {"kind": "credit", "credit_line": credit_line}
    answer = post(api, teller, f"/customers/{person.id}/cards", body)
    assert answer.status_code == 400, answer.json()
    assert answer.json()["code"] == code
    assert count(engine, cards) == 0


def test_a_credit_card_with_an_exact_limit(api, writer, teller):
    person = customer(writer, 1)
    body = {"kind": "credit", "credit_line": "50000.00"}
    answer = post(api, teller, f"/customers/{person.id}/cards", body)
    assert answer.status_code == 201, answer.json()
    assert answer.json()["card"]["kind"] == "credit"


# -- credentials --------------------------------------------------------------------------------
def test_a_password_and_token_set_at_the_counter_let_the_customer_log_in(
    api, writer, clock, teller
):
    person = customer(writer, 1, token=False, enrolled=("online",))
    new_password = "counter2026set"
    set_password = api.put(
        f"{STAFF_API}/customers/{person.id}/credentials/login_password",
        headers=teller,
        json={"secret": new_password},
    )
    assert set_password.status_code == 204
    assert begin(api, person.mobile, PASSWORD).status_code == 401  # the old one is gone
    enrolled = post(api, teller, f"/customers/{person.id}/token", None)
    assert enrolled.status_code == 201
    uri = enrolled.json()["otpauth_uri"]
    assert uri.startswith("otpauth://totp/ebank:")
    totp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    challenge = begin(api, person.mobile, new_password).json()
    assert challenge["factors"] == ["sms", "token"]
    code = totp.generate_otp(int(clock.now().timestamp()) // 30)
    assert verify(api, challenge["challenge"], "token", code).status_code == 200


def test_weak_secrets_and_unknown_kinds_are_refused(api, writer, teller):
    person = customer(writer, 1, enrolled=("online",))
    path = f"{STAFF_API}/customers/{person.id}/credentials"
    for kind, secret in (
        ("login_password", "short1"),
        ("login_password", "lettersonly"),
        ("transaction_pin", "123456"),
        ("transaction_pin", "12345a"),
        ("token", "12345678a"),
    ):
        answer = api.put(f"{path}/{kind}", headers=teller, json={"secret": secret})
        assert answer.status_code == 400, (kind, secret, answer.json())
    assert begin(api, person.mobile, PASSWORD).status_code == 200  # unchanged


# -- logging in: the password, then a code of the staff member's token -------------------------
def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_staff_log_in_with_the_password_then_a_code_of_their_token(api, writer, engine):
    member(writer, "teller1", "teller")
    started = staff_begin(api, "teller1")
    assert started.status_code == 200, started.json()
    assert set(started.json()) == {"challenge", "expires_at"}
    assert count(engine, sessions) == 0  # the password alone opens nothing
    challenge = started.json()["challenge"]
    done = staff_verify(api, challenge, staff_code(api, "teller1"))
    assert done.status_code == 200, done.json()
    assert done.json()["staff"]["username"] == "teller1"
    assert api.get(f"{STAFF_API}/me", headers=bearer(done.json()["token"])).status_code == 200
    again = staff_verify(api, challenge, staff_code(api, "teller1"))
    assert (again.status_code, again.json()["code"]) == (401, "SESSION_EXPIRED")


def test_a_wrong_token_code_answers_like_a_wrong_password_on_one_lockout(api, writer, engine):
    member(writer, "teller1", "teller")
    wrong_password = staff_begin(api, "teller1", WRONG)
    challenge = staff_begin(api, "teller1").json()["challenge"]
    wrong_code = staff_verify(api, challenge, other_than(staff_code(api, "teller1")))
    assert wrong_code.status_code == wrong_password.status_code
    assert wrong_code.json() == wrong_password.json()
    assert wrong_code.json()["code"] == "AUTH_FAILED"
    codes = [
        staff_verify(api, challenge, other_than(staff_code(api, "teller1"))).json()["code"]
        for _ in range(3)
    ]
    assert codes == ["AUTH_FAILED_WARNING", "AUTH_FAILED_WARNING", "CREDENTIAL_LOCKED"]
    assert staff_begin(api, "teller1").status_code == 423
    assert staff_verify(api, challenge, staff_code(api, "teller1")).status_code == 423
    assert count(engine, sessions) == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"challenge": "x"}, {"challenge": "x", "code": 123456}, {"challenge": "x", "code": "1",
     "factor": "token"}, {"challenge": "x" * 101, "code": "123456"}],
)  # fmt: skip
def test_bad_staff_verify_bodies_are_refused(api, writer, body):
    answer = api.post(f"{STAFF_API}/auth/login/verify", json=body)
    assert answer.status_code == 400, answer.json()


# -- staff administration -----------------------------------------------------------------------
@pytest.fixture
def admin(api, writer) -> dict[str, str]:
    """An admin's headers, logged in."""
    member(writer, "admin1", "admin")
    return bearer(staff_login(api, "admin1"))


def admin_calls(staff_id: int) -> list[tuple[str, str, object]]:
    """Every admin endpoint acting on one login: (method, path, body)."""
    path = f"{STAFF_API}/admin/staff/{staff_id}"
    return [
        ("POST", f"{path}/disable", None),
        ("POST", f"{path}/enable", None),
        ("POST", f"{path}/unlock", None),
        ("POST", f"{path}/token", None),
        ("PUT", f"{path}/roles", {"roles": ["teller"]}),
    ]


def call(api, headers: dict[str, str], method: str, path: str, body: object):
    return api.request(method, path, headers={**headers, "Idempotency-Key": "k1"}, json=body)


def logins(api, headers: dict[str, str]) -> dict[str, dict[str, object]]:
    listed = api.get(f"{STAFF_API}/admin/staff", headers=headers)
    assert listed.status_code == 200, listed.json()
    return {login["username"]: login for login in listed.json()["staff"]}


def test_only_admins_look_after_staff_logins(api, writer, engine, teller):
    target = member(writer, "teller2", "teller")
    before = api.get(f"{STAFF_API}/me", headers=teller).json()
    assert api.get(f"{STAFF_API}/admin/staff", headers=teller).status_code == 403
    for method, path, body in admin_calls(target):
        answer = call(api, teller, method, path, body)
        assert (answer.status_code, answer.json()["code"]) == (403, "FORBIDDEN"), path
    assert api.get(f"{STAFF_API}/me", headers=teller).json() == before
    with engine.connect() as conn:
        acts = conn.execute(
            select(audit_log.c.action).where(audit_log.c.subject == f"staff:{target}")
        ).scalars()
        assert list(acts) == ["staff.add"]


def test_an_admin_disables_a_login_whose_sessions_end_at_once_then_enables_it(api, writer, admin):
    target = member(writer, "teller1", "teller")
    token = staff_login(api, "teller1")
    disabled = api.post(f"{STAFF_API}/admin/staff/{target}/disable", headers=admin)
    assert disabled.status_code == 200, disabled.json()
    assert disabled.json()["disabled"] is True
    assert api.get(f"{STAFF_API}/me", headers=bearer(token)).json()["code"] == "SESSION_EXPIRED"
    # The right password of a disabled login answers like a wrong one, and tells nothing.
    assert staff_begin(api, "teller1").json() == staff_begin(api, "nobody").json()
    assert logins(api, admin)["teller1"]["disabled"] is True
    enabled = api.post(f"{STAFF_API}/admin/staff/{target}/enable", headers=admin)
    assert enabled.json()["disabled"] is False
    token = staff_login(api, "teller1")
    assert api.get(f"{STAFF_API}/me", headers=bearer(token)).status_code == 200


def test_an_admin_unlocks_a_locked_login(api, writer, admin):
    target = member(writer, "teller1", "teller")
    for _ in range(5):
        staff_begin(api, "teller1", WRONG)
    assert staff_begin(api, "teller1").status_code == 423
    assert logins(api, admin)["teller1"]["locked_until"] is not None
    unlocked = api.post(f"{STAFF_API}/admin/staff/{target}/unlock", headers=admin)
    assert unlocked.status_code == 200, unlocked.json()
    assert (unlocked.json()["locked_until"], unlocked.json()["permanently_locked"]) == (None, False)
    staff_login(api, "teller1")


def test_a_new_token_is_shown_once_and_the_old_one_stops_at_once(api, writer, clock, admin):
    target = member(writer, "teller1", "teller")
    old_code = staff_code(api, "teller1")
    path = f"/admin/staff/{target}/token"
    answer = post(api, admin, path, None)
    assert answer.status_code == 201, answer.json()
    uri = answer.json()["otpauth_uri"]
    assert uri.startswith("otpauth://totp/ebank:staff-teller1?")
    assert answer.json()["staff"]["has_token"] is True
    assert post(api, admin, path, None).json() == answer.json()  # a replay shows the same
    challenge = staff_begin(api, "teller1").json()["challenge"]
    assert staff_verify(api, challenge, old_code).status_code == 401
    app = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    clock.advance(timedelta(seconds=STEP))
    assert staff_verify(api, challenge, app.at(clock.now())).status_code == 200


def test_an_admin_changes_roles_and_they_take_effect_on_the_next_request(api, writer, admin):
    target = member(writer, "teller1", "teller")
    headers = bearer(staff_login(api, "teller1"))
    assert api.get(f"{STAFF_API}/approvals", headers=headers).status_code == 200
    path = f"{STAFF_API}/admin/staff/{target}/roles"
    for bad in ({"roles": []}, {"roles": ["god"]}, {"roles": "teller"}, {}):
        assert api.put(path, headers=admin, json=bad).status_code == 400, bad
    changed = api.put(path, headers=admin, json={"roles": ["risk", "supervisor", "risk"]})
    assert changed.status_code == 200, changed.json()
    assert changed.json()["roles"] == ["risk", "supervisor"]
    checked = api.post(f"{STAFF_API}/approvals/999/approve", headers=headers, json={})
    assert checked.json()["code"] == "APPROVAL_NOT_FOUND"  # a checker now, no longer refused
    moved = api.put(path, headers=admin, json={"roles": ["admin"]})
    assert moved.json()["roles"] == ["admin"]
    assert api.get(f"{STAFF_API}/approvals", headers=headers).status_code == 403


def test_no_admin_acts_on_their_own_login(api, writer, engine):
    me = member(writer, "admin1", "admin")
    headers = bearer(staff_login(api, "admin1"))
    for method, path, body in admin_calls(me):
        answer = call(api, headers, method, path, body)
        assert (answer.status_code, answer.json()["code"]) == (403, "STAFF_OWN_LOGIN"), path
    assert api.get(f"{STAFF_API}/me", headers=headers).json()["roles"] == ["admin"]
    assert logins(api, headers)["admin1"]["disabled"] is False


def test_acting_on_a_login_that_does_not_exist_is_not_found(api, writer, admin):
    for method, path, body in admin_calls(987_654):
        answer = call(api, admin, method, path, body)
        assert (answer.status_code, answer.json()["code"]) == (404, "STAFF_NOT_FOUND"), path


# -- maker-checker ------------------------------------------------------------------------------
def test_maker_checker_with_two_people_freezes_an_account(api, writer, engine, clock):
    person = customer(writer, 1)
    number = account_with_money(writer, person, [100])
    maker_id = member(writer, "teller1", "teller")
    checker_id = member(writer, "super1", "supervisor")
    maker, checker = bearer(staff_login(api, "teller1")), bearer(staff_login(api, "super1"))
    body = {"action": "account.freeze", "params": {"account": number}, "reason": "court order"}
    proposed = post(api, maker, "/approvals", body)
    assert proposed.status_code == 201, proposed.json()
    request = proposed.json()
    assert (request["status"], request["maker"]) == ("pending", f"staff:{maker_id}")
    assert post(api, maker, "/approvals", body).json() == request  # a replay proposes once
    assert count(engine, approval_requests) == 1
    listed = api.get(f"{STAFF_API}/approvals", headers=checker).json()["approvals"]
    assert [a["id"] for a in listed] == [request["id"]]
    # The teller may not decide at all; the supervisor does.
    refused = api.post(f"{STAFF_API}/approvals/{request['id']}/approve", headers=maker, json={})
    assert refused.status_code == 403
    approved = api.post(
        f"{STAFF_API}/approvals/{request['id']}/approve", headers=checker, json={"note": "seen"}
    )
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "approved"
    assert approved.json()["checker"] == f"staff:{checker_id}"
    file = api.get(f"{STAFF_API}/customers/{person.id}", headers=checker).json()
    assert file["accounts"][0]["status"] == "frozen"
    again = api.post(f"{STAFF_API}/approvals/{request['id']}/approve", headers=checker, json={})
    assert again.status_code == 409 and again.json()["code"] == "APPROVAL_DECIDED"
    assert api.get(f"{STAFF_API}/approvals", headers=checker).json() == {"approvals": []}
    with engine.connect() as conn:
        assert audit.verify(conn).ok


def test_the_same_person_cannot_approve_their_own_request(api, writer, engine):
    person = customer(writer, 1)
    number = account_with_money(writer, person, [100])
    member(writer, "super1", "supervisor")
    boss = bearer(staff_login(api, "super1"))
    body = {"action": "account.freeze", "params": {"account": number}, "reason": "fraud report"}
    request = post(api, boss, "/approvals", body).json()
    answer = api.post(f"{STAFF_API}/approvals/{request['id']}/approve", headers=boss, json={})
    assert answer.status_code == 403
    assert answer.json()["code"] == "SAME_MAKER_AND_CHECKER"
    file = api.get(f"{STAFF_API}/customers/{person.id}", headers=boss).json()
    assert file["accounts"][0]["status"] == "active"
    assert (
        api.get(f"{STAFF_API}/approvals/{request['id']}", headers=boss).json()["status"]
        == "pending"
    )


def test_a_rejection_needs_a_note_and_does_nothing(api, writer):
    person = customer(writer, 1)
    card_number = account_with_money(writer, person, [100])
    member(writer, "teller1", "teller")
    member(writer, "risk1", "risk")
    maker, checker = bearer(staff_login(api, "teller1")), bearer(staff_login(api, "risk1"))
    issued = post(
        api,
        maker,
        f"/customers/{person.id}/cards",
        {"kind": "debit", "account_number": card_number},
    )
    body = {
        "action": "card.freeze",
        "params": {"card": issued.json()["card"]["id"]},
        "reason": "odd use",
    }
    request = post(api, maker, "/approvals", body, key="p1").json()
    path = f"{STAFF_API}/approvals/{request['id']}/reject"
    assert api.post(path, headers=checker, json={}).status_code == 400
    rejected = api.post(path, headers=checker, json={"note": "customer confirmed"})
    assert rejected.json()["status"] == "rejected"
    file = api.get(f"{STAFF_API}/customers/{person.id}", headers=checker).json()
    assert file["cards"][0]["status"] == "active"


@pytest.mark.parametrize(
    "body",
    [
        {"action": "account.explode", "params": {"account": "6217001000000000011"}, "reason": "x"},
        {"action": "account.freeze", "params": {"account": "6217001999999999999"}, "reason": "x"},
        {"action": "account.freeze", "params": {"card": 1}, "reason": "x"},
        {"action": "account.freeze", "params": {"account": "6217001000000000011"}, "reason": ""},
        {"action": "card.freeze", "params": {"card": 2**70}, "reason": "x"},
        {"action": "card.freeze", "params": {"card": 1.5}, "reason": "x"},
        {"action": "card.freeze", "params": {f"k{n}": n for n in range(20)}, "reason": "x"},
    ],
)
def test_bad_proposals_are_refused_and_write_nothing(api, writer, engine, teller, body):
    person = customer(writer, 1)
    account_with_money(writer, person, [100])
    answer = post(api, teller, "/approvals", body)
    assert answer.status_code in (400, 404), answer.json()
    assert count(engine, approval_requests) == 0


# -- the OpenAPI document -----------------------------------------------------------------------
def test_the_openapi_document_lists_the_customer_and_staff_endpoints(api):
    document = api.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    for path, method in (
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/login/verify", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me/accounts", "get"),
        ("/api/v1/me/accounts/{number}", "get"),
        ("/api/v1/me/accounts/{number}/statement", "get"),
        ("/api/v1/me/cards", "get"),
        ("/api/v1/me/cards/{card_id}", "get"),
        ("/api/v1/me/cards/{card_id}/report-loss", "post"),
        ("/api/v1/me/sessions", "get"),
        ("/api/v1/me/sessions/{session_id}", "delete"),
        ("/api/v1/staff/auth/login", "post"),
        ("/api/v1/staff/auth/login/verify", "post"),
        ("/api/v1/staff/admin/staff", "get"),
        ("/api/v1/staff/admin/staff/{staff_id}/disable", "post"),
        ("/api/v1/staff/admin/staff/{staff_id}/enable", "post"),
        ("/api/v1/staff/admin/staff/{staff_id}/unlock", "post"),
        ("/api/v1/staff/admin/staff/{staff_id}/token", "post"),
        ("/api/v1/staff/admin/staff/{staff_id}/roles", "put"),
        ("/api/v1/staff/auth/logout", "post"),
        ("/api/v1/staff/me", "get"),
        ("/api/v1/staff/customers/individuals", "post"),
        ("/api/v1/staff/customers/enterprises", "post"),
        ("/api/v1/staff/customers/search", "post"),
        ("/api/v1/staff/customers/{customer_id}", "get"),
        ("/api/v1/staff/customers/{customer_id}/accounts", "post"),
        ("/api/v1/staff/customers/{customer_id}/cards", "post"),
        ("/api/v1/staff/customers/{customer_id}/credentials/{kind}", "put"),
        ("/api/v1/staff/customers/{customer_id}/token", "post"),
        ("/api/v1/staff/approvals", "post"),
        ("/api/v1/staff/approvals", "get"),
        ("/api/v1/staff/approvals/{request_id}", "get"),
        ("/api/v1/staff/approvals/{request_id}/approve", "post"),
        ("/api/v1/staff/approvals/{request_id}/reject", "post"),
    ):
        assert method in paths.get(path, {}), (method, path)
    schemes = document["components"]["securitySchemes"]
    assert schemes["customer"]["scheme"] == schemes["staff"]["scheme"] == "bearer"
    assert paths["/api/v1/me"]["get"]["security"] == [{"customer": []}]
    assert paths["/api/v1/staff/approvals"]["get"]["security"] == [{"staff": []}]
    headers = [
        p["name"] for p in paths["/api/v1/staff/customers/individuals"]["post"]["parameters"]
    ]
    assert "Idempotency-Key" in headers
