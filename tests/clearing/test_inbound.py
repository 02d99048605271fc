"""Transfers other banks send our customers, through our inbound endpoint: credited once, or
rejected with the ISO reason and nothing moved; every message logged; nothing unsigned, stale
or unreadable gets in. SQLite and PostgreSQL."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount
from ebank.clearing import service as clearing
from ebank.clearing.messages import PACS_002, PACS_008, Header, PaymentReturn, StatusRequest
from ebank.clearing.tables import clearing_inbound, clearing_messages
from ebank.core.clock import FixedClock
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Writer
from ebank.ledger import queries
from ebank.payments import service as payments
from tests.clearing.support import (
    OURS,
    SECRET,
    answer_of,
    bank_app,
    deliver,
    incoming,
    logged,
)
from tests.clearing.test_messages import BOMB
from tests.payments.support import Payer, PaymentsBank
from tests.support import STAFF, VAULT, Bank, code_of, race_two_writers, sound

CENTRAL = payments.CENTRAL_BANK


@pytest.fixture
def bank(writer: Writer, engine: Engine, clock: FixedClock) -> Bank:
    return Bank(writer, engine, clock)


@pytest.fixture
def api(bank: Bank) -> Iterator[TestClient]:
    app = bank_app(engine=bank.engine, writer=bank.writer, clock=bank.clock, vault=VAULT)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def payee(bank: Bank) -> CustomerAccount:
    """客户1's Type I account, with ¥100."""
    return bank.account(bank.person(), funds=100_00)


def central(bank: Bank) -> int:
    with bank.engine.connect() as conn:
        return queries.get_account(conn, code=CENTRAL).balance


def send(api: TestClient, bank: Bank, **kw: Any) -> tuple[str | None, str | None]:
    message = incoming(now=bank.clock.now(), **kw)
    report = answer_of(deliver(api, message, now=bank.clock.now()), now=bank.clock.now())
    assert (report.original_msg_id, report.original_kind) == (message.header.msg_id, PACS_008)
    assert (report.end_to_end_id, report.header.sender, report.header.receiver) == (
        message.end_to_end_id, OURS, message.header.sender)  # fmt: skip
    return report.status, report.reason


# -- credited -----------------------------------------------------------------------------------
def test_a_transfer_to_our_customer_is_credited_from_the_central_bank_account(
    api: TestClient, bank: Bank, payee: CustomerAccount
) -> None:
    message = incoming(account=payee.number, name="客户1", amount=2_500_00, e2e="E-1",
                       now=bank.clock.now())  # fmt: skip
    report = answer_of(deliver(api, message, now=bank.clock.now()), now=bank.clock.now())
    assert (report.status, report.reason) == ("ACSC", None)
    assert bank.balance(payee) == 2_600_00
    assert central(bank) == 2_500_00  # our reserve grew by what the other bank paid in
    with bank.engine.connect() as conn:
        [line] = [x for x in queries.statement(conn, payee.ledger_account_id).lines
                  if x.kind == "clearing_in"]  # fmt: skip
        events = conn.execute(
            select(outbox_events.c.topic).where(outbox_events.c.key == "E-1")
        ).scalars().all()  # fmt: skip
        actors = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.outcome)
            .where(audit_log.c.subject == f"account:{payee.number}")
            .order_by(audit_log.c.id)
        ).all()  # fmt: skip
    assert (line.amount, line.memo) == (2_500_00, "李雷: 货款")
    assert events == ["clearing.credited"]
    assert actors[-1] == ("clearing", "clearing.credit", "ok")
    assert logged(bank.engine, "E-1") == [("in", PACS_008, None, None),
                                          ("out", PACS_002, "ACSC", None)]  # fmt: skip
    sound(bank.engine)


def test_a_repeated_delivery_gets_the_first_answer_and_never_a_second_credit(
    api: TestClient, bank: Bank, payee: CustomerAccount
) -> None:
    message = incoming(account=payee.number, name="客户1", amount=500_00, e2e="E-2",
                       now=bank.clock.now())  # fmt: skip
    deliver(api, message, now=bank.clock.now())
    bank.clock.advance(timedelta(minutes=1))
    resent = replace(message, header=Header("M-resent", bank.clock.now(), message.header.sender,
                                            OURS))  # fmt: skip
    for again in (message, resent):
        report = answer_of(deliver(api, again, now=bank.clock.now()), now=bank.clock.now())
        assert (report.status, report.reason) == ("ACSC", None)
    assert bank.balance(payee) == 600_00
    assert central(bank) == 500_00
    assert [d for d, *_ in logged(bank.engine, "E-2")] == ["in", "out"] * 3
    sound(bank.engine)


def test_the_same_end_to_end_id_with_other_contents_is_a_duplicate_and_moves_nothing(
    api: TestClient, bank: Bank, payee: CustomerAccount
) -> None:
    assert send(api, bank, account=payee.number, name="客户1", amount=500_00, e2e="E-3") == (
        "ACSC", None)  # fmt: skip
    assert send(api, bank, account=payee.number, name="客户1", amount=9_500_00, e2e="E-3") == (
        "RJCT", "AM05")  # fmt: skip
    assert bank.balance(payee) == 600_00


def test_end_to_end_ids_are_each_sending_banks_own(
    api: TestClient, bank: Bank, payee: CustomerAccount
) -> None:
    for sender in ("999200000025", "999300000033"):
        assert send(api, bank, account=payee.number, name="客户1", amount=1_00, e2e="E-4",
                    sender=sender) == ("ACSC", None)  # fmt: skip
    assert bank.balance(payee) == 102_00


def test_two_processes_taking_the_same_delivery_at_once_credit_it_once(
    bank: Bank, payee: CustomerAccount
) -> None:
    message = incoming(account=payee.number, name="客户1", amount=300_00, e2e="E-5",
                       now=bank.clock.now())  # fmt: skip
    xml = message.to_xml().decode()
    take = clearing.receive(VAULT, message, xml, bank_code=OURS)
    [(mine, theirs)] = race_two_writers(bank.writer, bank.engine, bank.clock, [take])
    assert code_of(mine) == code_of(theirs) == "ok"
    assert b"<TxSts>ACSC</TxSts>" in mine and b"<TxSts>ACSC</TxSts>" in theirs
    assert bank.balance(payee) == 400_00
    with bank.engine.connect() as conn:
        assert len(conn.execute(select(clearing_inbound.c.id)).all()) == 1
    sound(bank.engine)


# -- rejected -----------------------------------------------------------------------------------
def _closed(bank: Bank) -> tuple[CustomerAccount, str]:
    account = bank.account(bank.person(), funds=0)
    bank.decide("account.close", {"account": account.number})
    return account, "AC04"


def _staff_status(action: str) -> Any:
    def make(bank: Bank) -> tuple[CustomerAccount, str]:
        account = bank.account(bank.person(), funds=100_00)
        bank.decide(action, {"account": account.number})
        return account, "AC06"

    return make


def _term(bank: Bank) -> tuple[CustomerAccount, str]:
    customer = bank.person()
    account = bank.writer.execute(
        accounts.open_account(customer_id=customer, product="term", tier="I", term_months=12,
                              rate_bp=175, actor=STAFF)
    )  # fmt: skip
    return account, "AG01"


def _type_three(bank: Bank) -> tuple[CustomerAccount, str]:
    return bank.account(bank.person(), tier="III", funds=1_000_00), "AM02"  # ceiling ¥2,000


@pytest.mark.parametrize(
    "make", [_closed, _staff_status("account.freeze"), _staff_status("account.suspend"), _term,
             _type_three],
    ids=["closed", "frozen", "suspended", "term deposit", "type III over its ceiling"],
)  # fmt: skip
def test_a_transfer_to_an_account_that_cannot_take_it_is_rejected_and_moves_nothing(
    api: TestClient, bank: Bank, make: Any
) -> None:
    account, reason = make(bank)
    before = bank.balance(account), central(bank)
    assert send(api, bank, account=account.number, name="客户1", amount=1_500_00,
                e2e="E-6") == ("RJCT", reason)  # fmt: skip
    assert (bank.balance(account), central(bank)) == before
    with bank.engine.connect() as conn:
        outcome = conn.execute(
            select(audit_log.c.actor, audit_log.c.outcome).where(
                audit_log.c.action == "clearing.credit")
        ).all()  # fmt: skip
    assert outcome == [("clearing", "rejected")]
    assert logged(bank.engine, "E-6")[-1] == ("out", PACS_002, "RJCT", reason)
    sound(bank.engine)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": "客户2"}, "BE01"),
        ({"name": "客户1", "account": "6217001999999999999"}, "AC01"),
        ({"name": "客户1", "account": "GL-CENTRAL-BANK-CNY"}, "AC01"),
        ({"name": "客户1", "currency": "USD"}, "AM03"),
        ({"name": "客户1", "creditor_agent": "999300000033"}, "AGNT"),
    ],
)
def test_a_wrong_payee_is_rejected_with_its_reason_and_moves_nothing(
    api: TestClient, bank: Bank, payee: CustomerAccount, change: dict[str, str], reason: str
) -> None:
    fields = {"account": payee.number, "amount": 100_00} | change
    assert send(api, bank, **fields) == ("RJCT", reason)
    assert (bank.balance(payee), central(bank)) == (100_00, 0)


def test_a_name_matches_whatever_the_spaces(
    api: TestClient, bank: Bank, payee: CustomerAccount
) -> None:
    assert send(api, bank, account=payee.number, name="客 户1", amount=1_00) == ("ACSC", None)


# -- what never gets in -------------------------------------------------------------------------
def _nothing_logged(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(select(clearing_messages.c.id)).first() is None


@pytest.mark.parametrize("how", ["wrong secret", "stale", "unsigned"])
def test_an_unsigned_or_stale_delivery_is_refused_before_it_is_read(
    api: TestClient, bank: Bank, payee: CustomerAccount, how: str
) -> None:
    message = incoming(account=payee.number, name="客户1", amount=100_00, now=bank.clock.now())
    if how == "unsigned":
        response = api.post("/api/v1/clearing/messages", content=message.to_xml())
    else:
        secret = "someone-elses-secret" if how == "wrong secret" else SECRET
        then = bank.clock.now() - timedelta(minutes=5 if how == "wrong secret" else 6)
        response = deliver(api, message, now=then, secret=secret)
    assert response.status_code == 401
    assert response.json()["code"] == "CLEARING_UNAUTHENTICATED"
    assert bank.balance(payee) == 100_00
    _nothing_logged(bank.engine)


@pytest.mark.parametrize(
    "make",
    [
        lambda bank, payee: BOMB,
        lambda bank, payee: b"<Document>",
        lambda bank, payee: StatusRequest(Header("M-q", bank.clock.now(), "999200000025", OURS),
                                          "M-x", "E-x"),
        lambda bank, payee: incoming(
            account=payee.number, name="客户1", amount=1_00, now=bank.clock.now(),
            header=Header("M-y", bank.clock.now(), "999200000025", "999300000033")),
    ],
    ids=["entity bomb", "not xml", "a status request", "addressed to another bank"],
)  # fmt: skip
def test_a_signed_delivery_we_cannot_take_is_a_400_and_changes_nothing(
    api: TestClient, bank: Bank, payee: CustomerAccount, make: Any
) -> None:
    response = deliver(api, make(bank, payee), now=bank.clock.now())
    assert response.status_code == 400
    assert response.json()["code"] == "CLEARING_MESSAGE_INVALID"
    assert bank.balance(payee) == 100_00
    _nothing_logged(bank.engine)


def test_a_body_larger_than_any_message_is_refused(api: TestClient, bank: Bank) -> None:
    response = deliver(api, b"<a>" + b"x" * 70_000 + b"</a>", now=bank.clock.now())
    assert response.status_code == 400
    _nothing_logged(bank.engine)


def test_a_return_of_a_transfer_we_never_sent_is_rejected(api: TestClient, bank: Bank) -> None:
    back = PaymentReturn(Header("M-r", bank.clock.now(), "999200000025", OURS), "R-1", "M-x",
                         "E-never", 100_00, "CNY", "AC04")  # fmt: skip
    report = answer_of(deliver(api, back, now=bank.clock.now()), now=bank.clock.now())
    assert (report.status, report.reason, report.original_kind) == (
        "RJCT", "NOOR", "pacs.004.001.09")  # fmt: skip
    assert central(bank) == 0


def test_money_in_from_another_bank_and_straight_out_of_a_new_account_is_held_for_review(
    api: TestClient, bank: Bank
) -> None:
    """The mule pattern: risk control counts inbound credits, so the payment out is held."""
    payments_bank = PaymentsBank(bank.writer, bank.engine, bank.clock)
    onward = payments_bank.account(payments_bank.person(), funds=0)
    bank.clock.advance(timedelta(days=60))  # the onward account is an old one
    mule = Payer(payments_bank)  # the mule's is new
    assert send(api, bank, account=mule.account.number, name=payments_bank.name_of(mule.account),
                amount=6_000_00, e2e="E-MULE") == ("ACSC", None)  # fmt: skip
    request = mule.request(onward, 5_000_00)
    held = mule.paid(request, mule.sms(request))
    assert held.status == "review"
    assert bank.balance(onward) == 0
