"""The staff API's credit cards above what one member of staff grants alone (the customer's
credit lines together, the new one included): the direct issue answers 403
CREDIT_LINE_NEEDS_APPROVAL and makes nothing; the line is proposed as the action
card.issue.credit and the card is issued when a checker other than the maker approves it.

Every test runs on SQLite and PostgreSQL.
"""

import pytest
from sqlalchemy import select

from ebank.cards.tables import cards
from ebank.core import audit
from ebank.ledger import queries
from ebank.ops.tables import approval_requests
from tests.channels.api_support import bearer, count, customer, member, staff_login

STAFF_API = "/api/v1/staff"


@pytest.fixture
def teller(api, writer) -> dict[str, str]:
    member(writer, "teller1", "teller")
    return bearer(staff_login(api, "teller1"))


@pytest.fixture
def supervisor(api, writer) -> dict[str, str]:
    member(writer, "super1", "supervisor")
    return bearer(staff_login(api, "super1"))


def post(api, headers: dict[str, str], path: str, body: object, key: str = "k1"):
    return api.post(f"{STAFF_API}{path}", headers={**headers, "Idempotency-Key": key}, json=body)


def proposal(customer_id: object, line: object) -> dict[str, object]:
    return {
        "action": "card.issue.credit",
        "params": {"customer": customer_id, "credit_line": line},
        "reason": "年收入证明已核",
    }


def test_a_line_above_the_cap_is_403_with_the_cap_and_issues_nothing(api, writer, engine, teller):
    person = customer(writer, 1)
    body = {"kind": "credit", "credit_line": "50000.01"}
    answer = post(api, teller, f"/customers/{person.id}/cards", body)
    assert answer.status_code == 403, answer.json()
    assert answer.json()["code"] == "CREDIT_LINE_NEEDS_APPROVAL"
    assert answer.json()["details"] == {"cap": "50000.00", "granted": "0.00"}
    assert count(engine, cards) == 0 and count(engine, approval_requests) == 0


def test_a_second_card_within_the_cap_but_above_it_with_the_first_is_403(
    api, writer, engine, teller
):
    person = customer(writer, 1)
    path = f"/customers/{person.id}/cards"
    first = post(api, teller, path, {"kind": "credit", "credit_line": "30000.00"}, key="k1")
    assert first.status_code == 201, first.json()
    english = {**teller, "Accept-Language": "en"}
    second = post(api, english, path, {"kind": "credit", "credit_line": "30000.00"}, key="k2")
    assert second.status_code == 403, second.json()
    assert second.json()["code"] == "CREDIT_LINE_NEEDS_APPROVAL"
    assert second.json()["details"] == {"cap": "50000.00", "granted": "30000.00"}
    assert "¥30000.00" in second.json()["message"]
    assert count(engine, cards) == 1 and count(engine, approval_requests) == 0


def test_a_teller_proposes_a_line_and_a_supervisor_approves_it_into_a_card(
    api, writer, engine, teller, supervisor
):
    person = customer(writer, 1)
    proposed = post(api, teller, "/approvals", proposal(person.id, 8_000_000))
    assert proposed.status_code == 201, proposed.json()
    request = proposed.json()
    assert (request["action"], request["status"]) == ("card.issue.credit", "pending")
    assert request["subject"] == f"customer:{person.id}"
    assert post(api, teller, "/approvals", proposal(person.id, 8_000_000)).json() == request
    assert count(engine, approval_requests) == 1 and count(engine, cards) == 0
    path = f"{STAFF_API}/approvals/{request['id']}/approve"
    assert api.post(path, headers=teller, json={}).status_code == 403  # a teller checks nothing
    approved = api.post(path, headers=supervisor, json={"note": "已核"})
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "approved"
    [card] = api.get(f"{STAFF_API}/customers/{person.id}", headers=teller).json()["cards"]
    assert (card["kind"], card["status"]) == ("credit", "active")
    with engine.connect() as conn:
        ledger_account = conn.execute(
            select(cards.c.ledger_account_id).where(cards.c.id == card["id"])
        ).scalar_one()
        assert queries.get_account(conn, account_id=ledger_account).credit_line == 8_000_000
        assert audit.verify(conn).ok


def test_a_supervisor_cannot_approve_their_own_proposal(api, writer, engine, supervisor):
    person = customer(writer, 1)
    request = post(api, supervisor, "/approvals", proposal(person.id, 8_000_000)).json()
    answer = api.post(f"{STAFF_API}/approvals/{request['id']}/approve", headers=supervisor, json={})
    assert answer.status_code == 403 and answer.json()["code"] == "SAME_MAKER_AND_CHECKER"
    assert count(engine, cards) == 0
    status = api.get(f"{STAFF_API}/approvals/{request['id']}", headers=supervisor).json()
    assert status["status"] == "pending"


@pytest.mark.parametrize("line", [0, "80000.00", 10**14 + 1])
def test_a_proposal_with_a_bad_line_is_400_and_stores_nothing(api, writer, engine, teller, line):
    person = customer(writer, 1)
    answer = post(api, teller, "/approvals", proposal(person.id, line))
    assert answer.status_code == 400, answer.json()
    assert answer.json()["code"] == "INVALID_INPUT"
    assert count(engine, approval_requests) == 0
