"""The staff risk API over HTTP: who may do what, rule changes with two people, bad input that
changes nothing, the case queue proven on the ledger, and watch lists. SQLite and PostgreSQL."""

import pytest
from sqlalchemy import Engine

from ebank.accounts.service import get_account
from ebank.core.writer import Command, Writer
from ebank.ledger import queries
from ebank.ops.tables import approval_requests
from ebank.risk import service
from ebank.risk.models import Context
from tests.channels.api_support import (
    account_with_money,
    bearer,
    count,
    customer,
    login,
    member,
    staff_login,
)
from tests.risk.holds import hold_for_review

RISK = "/api/v1/staff/risk"
RULE = {
    "code": "tiny_amount", "description_zh": "一分钱试探", "description_en": "One-fen probing",
    "expression": "amount == 1", "score": 60, "reason": "新型试探手法",
}  # fmt: skip


@pytest.fixture
def officer(api, writer) -> dict[str, str]:
    member(writer, "risk1", "risk")
    return bearer(staff_login(api, "risk1"))


@pytest.fixture
def supervisor(api, writer) -> dict[str, str]:
    member(writer, "super1", "supervisor")
    return bearer(staff_login(api, "super1"))


def post(api, headers, path, body, key: str | None = "k1"):
    extra = {} if key is None else {"Idempotency-Key": key}
    return api.post(f"{RISK}{path}", headers={**headers, **extra}, json=body)


def approve(api, headers, request_id: int):
    return api.post(f"/api/v1/staff/approvals/{request_id}/approve", headers=headers,
                    json={"note": "复核同意"})  # fmt: skip


def test_no_token_a_teller_and_a_customer_are_kept_out(api, writer, clock):
    assert api.get(f"{RISK}/rules").json()["code"] == "AUTH_REQUIRED"
    member(writer, "teller1", "teller")
    teller = bearer(staff_login(api, "teller1"))
    assert api.get(f"{RISK}/rules", headers=teller).status_code == 403
    assert post(api, teller, "/rules", RULE).json()["code"] == "FORBIDDEN"
    person = customer(writer, 1, enrolled=("online",))
    mine = bearer(login(api, clock, person))
    assert api.get(f"{RISK}/cases", headers=mine).status_code == 403


def test_a_rule_change_needs_a_second_person(api, officer, supervisor):
    proposed = post(api, officer, "/rules", RULE)
    assert proposed.status_code == 201, proposed.json()
    request = proposed.json()
    assert (request["action"], request["status"], request["params"]["enabled"]) == (
        "risk.rule.set", "pending", 1,
    )  # fmt: skip
    own = approve(api, officer, request["id"])
    assert (own.status_code, own.json()["code"]) == (403, "SAME_MAKER_AND_CHECKER")
    assert post(api, supervisor, "/rules", RULE, key="k2").status_code == 403  # not a maker here
    assert approve(api, supervisor, request["id"]).json()["status"] == "approved"
    live = api.get(f"{RISK}/rules", headers=supervisor).json()
    tiny = next(r for r in live["rules"] if r["code"] == "tiny_amount")
    assert (tiny["version"], tiny["author"], tiny["approver"]) == (
        1, officer_actor(api, officer), officer_actor(api, supervisor),
    )  # fmt: skip
    assert live["thresholds"]["review"] == 80
    versions = api.get(f"{RISK}/rules/new_payee_large/versions", headers=officer).json()
    assert [v["version"] for v in versions["versions"]] == [0]
    assert api.get(f"{RISK}/rules/nothing/versions", headers=officer).status_code == 404


def officer_actor(api, headers) -> str:
    return f"staff:{api.get('/api/v1/staff/me', headers=headers).json()['id']}"


def test_a_repeated_proposal_is_answered_once_and_another_body_is_a_conflict(api, officer):
    first = post(api, officer, "/rules", RULE).json()
    assert post(api, officer, "/rules", RULE).json()["id"] == first["id"]
    other = post(api, officer, "/rules", {**RULE, "score": 61})
    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_CONFLICT")


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"expression": "amount >"}, "position"),
        ({"expression": "__import__('os').system('x') == 0"}, "position"),
        ({"expression": "x" * 2001}, "expression"),
        ({"score": "60"}, "score"),
        ({"score": 1001}, "score"),
        ({"outcome": "allow"}, "outcome"),
        ({"code": "DROP TABLE"}, "reason"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_rules_are_400_and_nothing_is_proposed(api, engine, officer, changes, where):
    answer = post(api, officer, "/rules", {**RULE, **changes})
    assert (answer.status_code, answer.json()["code"]) == (400, "INVALID_INPUT"), answer.json()
    assert where in str(answer.json()["details"])
    assert count(engine, approval_requests) == 0


def test_checking_a_condition_says_what_it_reads_or_where_it_is_wrong(api, officer):
    good = post(api, officer, "/rules/check",
                {"expression": 'distinct(payee, "payers", "24h") >= 10 and payee_is_new'},
                key=None)  # fmt: skip
    assert good.json() == {
        "fields": ["payee_is_new"], "aggregates": ['distinct(payee,"payers","24h")'],
        "lists": [],
    }  # fmt: skip
    bad = post(api, officer, "/rules/check", {"expression": "amount > > 1"}, key=None)
    assert bad.status_code == 400 and bad.json()["details"]["position"] == 9


def test_the_vocabulary_lists_what_rules_may_read(api, officer):
    words = api.get(f"{RISK}/vocabulary", headers=officer).json()
    amount = next(f for f in words["fields"] if f["name"] == "amount")
    assert amount == {"name": "amount", "type": "number",
                      "meaning": "the amount in fen (0 for events without one)"}  # fmt: skip
    assert words["distinct"]["payee_account"] == ["payees", "payers"]
    assert words["lists"] == ["police", "compromised", "sanctioned"]


def test_thresholds_are_proposed_and_bad_ones_refused(api, engine, officer, supervisor):
    body = {"step_up": 30, "delay": 50, "review": 70, "block": 90, "reason": "收紧"}
    request = post(api, officer, "/thresholds", body).json()
    approve(api, supervisor, request["id"])
    assert api.get(f"{RISK}/rules", headers=officer).json()["thresholds"]["step_up"] == 30
    bad = post(api, officer, "/thresholds", {**body, "delay": 20}, key="k2")
    assert bad.status_code == 400
    assert count(engine, approval_requests) == 1


def _decide(writer: Writer, ctx: Context) -> int:
    return writer.execute(Command(lambda tx: service.evaluate(tx, ctx))).id


def test_decisions_are_listed_and_shown(api, writer, officer):
    person = customer(writer, 1)
    plain = _decide(writer, Context("login", person.id, "online"))
    big = _decide(writer, Context("payment", person.id, "online", amount=5_000_000,
                                  payee_is_new=True, payee="acct:1"))  # fmt: skip
    listed = api.get(f"{RISK}/decisions", headers=officer,
                     params={"customer_id": person.id}).json()  # fmt: skip
    assert [d["id"] for d in listed["decisions"]] == [big, plain]
    one = api.get(f"{RISK}/decisions/{big}", headers=officer).json()
    assert (one["amount"], one["outcome"], one["hits"]) == ("50000.00", "step_up",
                                                            ["new_payee_large"])  # fmt: skip
    assert one["evidence"]["payee_is_new"] is True
    stepped = api.get(f"{RISK}/decisions", headers=officer, params={"outcome": "step_up"})
    assert [d["id"] for d in stepped.json()["decisions"]] == [big]
    assert api.get(f"{RISK}/decisions", headers=officer,
                   params={"outcome": "maybe"}).status_code == 400  # fmt: skip
    assert api.get(f"{RISK}/decisions/999999", headers=officer).status_code == 404


def _held_case(writer: Writer, engine: Engine) -> tuple[int, int, int, int]:
    """A payment of ¥800 held for review; (case, payer ledger id, payee ledger id, payer)."""
    payer, payee = customer(writer, 1), customer(writer, 2)
    payer_number = account_with_money(writer, payer, [100_000])
    payee_number = account_with_money(writer, payee, [])
    with engine.connect() as conn:
        payer_account = get_account(conn, number=payer_number)
        payee_account = get_account(conn, number=payee_number)
    ctx = Context("payment", payer.id, "mobile", amount=80_000,
                  account_id=payer_account.ledger_account_id,
                  payee=f"acct:{payee_account.ledger_account_id}",
                  payee_account_id=payee_account.ledger_account_id)  # fmt: skip
    _, case_id = hold_for_review(writer, ctx, payer_account, payee_account)
    return case_id, payer_account.ledger_account_id, payee_account.ledger_account_id, payer.id


def balance(engine: Engine, ledger_id: int) -> tuple[int, int, str]:
    with engine.connect() as conn:
        view = queries.get_account(conn, account_id=ledger_id)
    return view.balance, view.held, view.status


def test_a_case_is_queued_shown_and_released_over_http(api, writer, engine, officer):
    case_id, payer, payee, _ = _held_case(writer, engine)
    queue = api.get(f"{RISK}/cases", headers=officer).json()["cases"]
    assert [(c["id"], c["status"]) for c in queue] == [(case_id, "open")]
    file = api.get(f"{RISK}/cases/{case_id}", headers=officer).json()
    assert file["decision"]["amount"] == "800.00"
    assert [e["action"] for e in file["events"]] == ["open"]
    assert 'sum(account,"inflow","24h")' in file["activity"]
    released = post(api, officer, f"/cases/{case_id}/release", {"note": "已电话核实"}, key=None)
    assert released.json()["status"] == "released", released.json()
    assert balance(engine, payer) == (20_000, 0, "active")
    assert balance(engine, payee) == (80_000, 0, "active")
    again = post(api, officer, f"/cases/{case_id}/reject", {"note": ""}, key=None)
    assert (again.status_code, again.json()["code"]) == (409, "RISK_CASE_DECIDED")
    assert api.get(f"{RISK}/cases", headers=officer).json()["cases"] == []
    done = api.get(f"{RISK}/cases", headers=officer, params={"status": "released"}).json()
    assert [c["id"] for c in done["cases"]] == [case_id]


def test_an_escalated_case_goes_to_someone_else(api, writer, engine, officer, supervisor):
    case_id, payer, _, _ = _held_case(writer, engine)
    post(api, officer, f"/cases/{case_id}/escalate", {"note": "金额较大"}, key=None)
    same = post(api, officer, f"/cases/{case_id}/reject", {"note": ""}, key=None)
    assert (same.status_code, same.json()["code"]) == (403, "RISK_SAME_REVIEWER")
    rejected = post(api, supervisor, f"/cases/{case_id}/reject", {"note": "疑似诈骗"}, key=None)
    assert rejected.json()["status"] == "rejected"
    assert balance(engine, payer) == (100_000, 0, "active")


def test_bad_case_requests_change_nothing(api, writer, engine, officer):
    case_id, payer, _, _ = _held_case(writer, engine)
    assert post(api, officer, f"/cases/{case_id}/approve", {}, key=None).status_code == 400
    assert post(api, officer, "/cases/999999/release", {}, key=None).status_code == 404
    long = post(api, officer, f"/cases/{case_id}/release", {"note": "x" * 501}, key=None)
    assert long.status_code == 400
    assert post(api, officer, f"/cases/{case_id}/suspend", {"which": "bank"}, key=None
                ).status_code == 400  # fmt: skip
    assert balance(engine, payer) == (100_000, 80_000, "active")


def test_suspending_the_payer_from_a_case(api, writer, engine, officer):
    case_id, payer, _, _ = _held_case(writer, engine)
    answer = post(api, officer, f"/cases/{case_id}/suspend", {"which": "payer", "note": "涉诈"},
                  key=None)  # fmt: skip
    assert answer.json() == {"status": "suspended"}
    assert balance(engine, payer)[2] == "suspended"


def test_a_police_listing_over_http_suspends_our_account(api, writer, engine, officer,
                                                        supervisor):  # fmt: skip
    person = customer(writer, 3)
    number = account_with_money(writer, person, [500])
    proposed = post(api, officer, "/lists/police", {"account": number, "reason": "公安协查"})
    assert proposed.status_code == 201, proposed.json()
    assert proposed.json()["params"]["label"].count("*") > 0
    approve(api, supervisor, proposed.json()["id"])
    entries = api.get(f"{RISK}/lists/police", headers=officer).json()["entries"]
    assert [e["label"] for e in entries] == [proposed.json()["params"]["label"]]
    with engine.connect() as conn:
        ledger_id = get_account(conn, number=number).ledger_account_id
    assert balance(engine, ledger_id)[2] == "suspended"
    removal = post(api, officer, f"/lists/police/{entries[0]['id']}/remove", {"reason": "撤销"},
                   key="k2")  # fmt: skip
    assert removal.status_code == 201
    wrong_list = post(api, officer, f"/lists/compromised/{entries[0]['id']}/remove",
                      {"reason": "x"}, key="k3")  # fmt: skip
    assert wrong_list.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "x"},
        {"customer_id": 1, "ip": "10.0.0.1", "reason": "x"},
        {"ip": "10.0.0.300", "reason": "x"},
        {"device_hash": "XYZ", "reason": "x"},
        {"account": "6217000000000000000", "reason": "x"},
    ],
)
def test_bad_list_entries_change_nothing(api, engine, officer, body):
    answer = post(api, officer, "/lists/compromised", body)
    assert answer.status_code in (400, 404), answer.json()
    assert count(engine, approval_requests) == 0
    assert api.get(f"{RISK}/lists/friends", headers=officer).status_code == 400


def test_the_openapi_document_describes_the_risk_api(api):
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert f"{RISK}/cases/{{case_id}}/{{outcome}}" in paths
    assert f"{RISK}/rules/check" in paths
