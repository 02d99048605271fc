"""Inter-bank transfers our customers send, through the clearing house (in process): settled,
returned, or unknown and then resolved by status queries on a backoff schedule, never guessed;
a late success posts once; a pacs.004 brings the money back. SQLite and PostgreSQL."""

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ebank.clearing import service as clearing
from ebank.clearing.client import ClearingClient
from ebank.clearing.house import SEED_ACCOUNTS, SIM_BANK, House, HouseControl
from ebank.clearing.messages import (
    PACS_002,
    PACS_004,
    PACS_008,
    PACS_028,
    Header,
    PaymentReturn,
)
from ebank.clearing.tables import clearing_messages, clearing_outgoing
from ebank.core.clock import as_utc
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.payments import service as payments
from ebank.payments.models import PaymentView
from tests.clearing.support import OURS, SECRET, answer_of, bank_app, deliver, logged
from tests.clearing.test_house import Monotonic
from tests.payments.support import Payer, PaymentsBank
from tests.support import VAULT, sound, wait_to_resend

YUAN = 100
LEI, HAN, WANG, _ = (a.number for a in SEED_ACCOUNTS)  # active, active, closed, frozen


class Lossy(httpx.BaseTransport):
    """The way to the house, with faults of the network: requests lost on the way there
    (`drop`), answers lost on the way back (`lose`), or the sending process dying (`die`)."""

    def __init__(self, house: TestClient) -> None:
        self.house = house
        self.drop = self.lose = self.die = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.die:
            self.die -= 1
            raise RuntimeError("the worker died mid-send")
        if self.drop:
            self.drop -= 1
            raise httpx.ConnectError("connection reset", request=request)
        response = self.house.send(request)
        if self.lose:
            self.lose -= 1
            raise httpx.ReadTimeout("no answer in time", request=request)
        return httpx.Response(response.status_code, headers=response.headers,
                              content=response.content)  # fmt: skip


@dataclass
class World:
    bank: PaymentsBank
    alice: Payer
    house: House
    control: HouseControl
    net: Lossy
    client: ClearingClient
    monotonic: Monotonic
    ours: TestClient  # our bank's app

    def pay(self, amount: int = 5_000 * YUAN, to: str = LEI, name: str = "李雷") -> int:
        request = self.alice.request(to, amount, payee_name=name, payee_bank=SIM_BANK)
        return self.alice.paid(request, self.alice.sms(request), key=f"k{amount}{to}").id

    def send(self) -> int:
        return clearing.send_pending(self.bank.writer, self.client, VAULT)

    def resolve(self) -> int:
        return clearing.resolve_unknown(self.bank.writer, self.client, VAULT)

    def later(self, seconds: float) -> None:
        self.bank.clock.advance(timedelta(seconds=seconds))
        self.monotonic.now += seconds

    def payment(self, payment_id: int) -> PaymentView:
        return self.bank.payment(self.alice.id, payment_id)

    def sim(self, number: str = LEI) -> str:
        return str(self.control.accounts()[number]["balance"])

    def next_query(self, payment_id: int) -> Any:
        with self.bank.engine.connect() as conn:
            at = conn.execute(
                select(clearing_outgoing.c.next_query_at).where(
                    clearing_outgoing.c.payment_id == payment_id
                )
            ).scalar_one()
        return None if at is None else as_utc(at)

    def e2e(self, payment_id: int) -> str:
        return self.payment(payment_id).reference


@pytest.fixture
def world(
    writer: Writer, engine: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    monkeypatch.setattr(get_settings(), "clearing_url", "http://house.test")
    bank = PaymentsBank(writer, engine, clock)
    alice = Payer(bank)
    ours = bank_app(engine=engine, writer=writer, clock=clock, vault=VAULT)
    monotonic = Monotonic()
    with TestClient(ours) as ours_http:
        house = House(
            bank_code=OURS, bank_url="http://bank.test", secret=SECRET, clock=clock,
            monotonic=monotonic, bank_transport=httpx.ASGITransport(app=ours),
        )  # fmt: skip
        with TestClient(house.app, base_url="http://house.test") as house_http:
            net = Lossy(house_http)
            http = httpx.Client(transport=net, base_url="http://house.test")
            client = ClearingClient(http, bank_code=OURS, secret=SECRET, clock=clock)
            control = HouseControl(house_http, secret=SECRET, clock=clock)
            yield World(bank, alice, house, control, net, client, monotonic, ours_http)
            http.close()


def money_is_where_it_should_be(w: World, *, settled: int, returned: int = 0) -> None:
    """The payer paid what settled; the clearing account is square; our reserve paid out
    exactly what settled and was not returned."""
    assert w.bank.balance(w.alice.account) == 1_000_000 * YUAN - settled + returned
    assert w.bank.ledger_balance(payments.CLEARING) == 0
    assert w.bank.ledger_balance(payments.CENTRAL_BANK) == -(settled - returned)
    sound(w.bank.engine)


# -- answered at once ---------------------------------------------------------------------------
def test_a_transfer_the_other_bank_takes_is_settled_and_completes(world: World) -> None:
    pid = world.pay()
    assert world.send() == 1
    assert world.payment(pid).status == "completed"
    assert world.sim() == "1005000.00"
    money_is_where_it_should_be(world, settled=5_000 * YUAN)
    e2e = world.e2e(pid)
    assert logged(world.bank.engine, e2e) == [("out", PACS_008, None, None),
                                              ("in", PACS_002, "ACSC", None)]  # fmt: skip
    [sent] = world.control.transfers()
    assert (sent["msg_id"], sent["end_to_end_id"]) == (f"{OURS}{e2e}", e2e)
    assert (sent["debtor_name"], sent["debtor_account"]) == ("客户1", world.alice.account.number)
    assert world.next_query(pid) is None
    world.later(3600)
    assert (world.send(), world.resolve()) == (0, 0)  # nothing left to send or ask


@pytest.mark.parametrize(
    ("to", "name", "reject_rate", "reason", "code"),
    [
        (LEI, "李蕾", 0.0, "BE01", "PAYEE_NAME_MISMATCH"),
        (WANG, "王五", 0.0, "AC04", "PAYEE_ACCOUNT_UNAVAILABLE"),
        ("6222020000009999", "某人", 0.0, "AC01", "PAYEE_NOT_FOUND"),
        (LEI, "李雷", 1.0, "MS03", "PAYEE_BANK_REJECTED"),
    ],
)
def test_a_transfer_the_other_bank_rejects_comes_back_to_the_payer(
    world: World, to: str, name: str, reject_rate: float, reason: str, code: str
) -> None:
    world.control.set_faults(reject_rate=reject_rate)
    pid = world.pay(to=to, name=name)
    world.send()
    back = world.payment(pid)
    assert (back.status, back.failure_code) == ("returned", code)
    assert world.sim() == "1000000.00"
    money_is_where_it_should_be(world, settled=0)
    assert logged(world.bank.engine, back.reference)[-1] == ("in", PACS_002, "RJCT", reason)
    with world.bank.engine.connect() as conn:
        assert [p.id for p in payments.exceptions(conn)] == [pid]


def test_a_message_the_house_refuses_outright_is_returned_as_invalid(world: World) -> None:
    world.client.bank_code = "999100000099"  # a participant the house does not know: HTTP 400
    pid = world.pay()
    world.send()
    assert (world.payment(pid).status, world.payment(pid).failure_code) == (
        "returned", "PAYEE_BANK_REJECTED")  # fmt: skip
    assert world.control.transfers() == []
    money_is_where_it_should_be(world, settled=0)


# -- unknown, then resolved ---------------------------------------------------------------------
def test_a_timeout_followed_by_a_late_success_settles_once_and_is_never_returned(
    world: World,
) -> None:
    pid = world.pay()
    world.net.lose = 1  # the house applies it, the answer never comes back
    world.send()
    assert world.payment(pid).status == "unknown"
    with world.bank.engine.connect() as conn:
        assert [p.id for p in payments.exceptions(conn)] == [pid]  # staff see it meanwhile
    assert world.sim() == "1005000.00"
    assert world.resolve() == 0  # not due before the first delay
    world.later(5)
    assert world.resolve() == 1
    assert world.payment(pid).status == "completed"
    world.later(7200)
    assert world.resolve() == 0
    assert world.bank.events(pid) == ["sending", "unknown", "completed"]
    assert world.sim() == "1005000.00"
    money_is_where_it_should_be(world, settled=5_000 * YUAN)
    assert [(d, k, s) for d, k, s, _ in logged(world.bank.engine, world.e2e(pid))] == [
        ("out", PACS_008, None), ("out", PACS_028, None), ("in", PACS_002, "ACSC")]  # fmt: skip


def test_a_transfer_lost_on_the_way_is_not_known_there_and_goes_again_with_the_same_ids(
    world: World,
) -> None:
    pid = world.pay()
    world.net.drop = 1
    world.send()
    assert world.payment(pid).status == "unknown" and world.control.transfers() == []
    world.later(5)
    world.resolve()
    assert world.payment(pid).status == "completed"
    [sent] = world.control.transfers()
    assert sent["end_to_end_id"] == world.e2e(pid)
    money_is_where_it_should_be(world, settled=5_000 * YUAN)
    with world.bank.engine.connect() as conn:
        sent_bytes = conn.execute(
            select(clearing_messages.c.xml).where(clearing_messages.c.kind == PACS_008)
        ).scalars().all()  # fmt: skip
    assert len(sent_bytes) == 2 and sent_bytes[0] == sent_bytes[1]
    assert [(d, k, s) for d, k, s, _ in logged(world.bank.engine, world.e2e(pid))] == [
        ("out", PACS_008, None), ("out", PACS_028, None), ("in", PACS_002, None),
        ("out", PACS_008, None), ("in", PACS_002, "ACSC")]  # fmt: skip


def test_a_transfer_whose_sender_died_mid_send_is_picked_up_by_status_queries(
    world: World,
) -> None:
    pid = world.pay()
    world.net.die = 1
    with pytest.raises(RuntimeError):
        world.send()
    assert world.payment(pid).status == "sending"
    assert world.send() == 0  # recorded as sent: never sent twice by the sending path
    world.later(clearing.SEND_GRACE.total_seconds() - 1)
    assert world.resolve() == 0
    world.later(1)
    assert world.resolve() == 1
    assert world.payment(pid).status == "completed"
    money_is_where_it_should_be(world, settled=5_000 * YUAN)


def test_a_pending_transfer_is_asked_about_until_it_settles(world: World) -> None:
    world.control.set_faults(pending_rate=1.0, settle_seconds=10)
    pid = world.pay()
    world.send()
    assert world.payment(pid).status == "sending"  # an answer, not an unknown: no exception
    with world.bank.engine.connect() as conn:
        assert list(payments.exceptions(conn)) == []
    world.later(5)
    world.resolve()  # still pending at the house
    assert world.payment(pid).status == "sending"
    world.later(15)
    world.resolve()
    assert world.payment(pid).status == "completed"
    money_is_where_it_should_be(world, settled=5_000 * YUAN)
    assert world.sim() == "1005000.00"


def test_an_unknown_transfer_is_asked_about_on_the_backoff_schedule_then_hourly(
    world: World,
) -> None:
    pid = world.pay()
    world.net.lose = 1_000  # the house never gets an answer through
    world.send()
    sent_at = world.bank.clock.now()
    assert world.next_query(pid) == sent_at + timedelta(seconds=5)
    delays = []
    for _ in range(8):
        due = world.next_query(pid)
        world.bank.clock.set(due)
        assert world.resolve() == 1
        delays.append((world.next_query(pid) - due).total_seconds())
    assert delays == [15, 60, 300, 900, 3600, 3600, 3600, 3600]
    assert world.payment(pid).status == "unknown"  # never guessed
    world.net.lose = 0
    world.bank.clock.set(world.next_query(pid))
    world.resolve()
    assert world.payment(pid).status == "completed"
    money_is_where_it_should_be(world, settled=5_000 * YUAN)


def test_two_workers_sending_at_once_send_each_transfer_once(world: World) -> None:
    pids = []
    for n in range(4):
        wait_to_resend(world.bank.clock)  # each payment's code a minute after the last
        pids.append(world.pay(amount=(100 + n) * YUAN))
    other = Writer(world.bank.engine, clock=world.bank.clock)
    start = threading.Barrier(2)
    counts: list[int] = []

    def work(writer: Writer) -> None:
        start.wait(30)
        counts.append(clearing.send_pending(writer, world.client, VAULT))

    try:
        threads = [threading.Thread(target=work, args=(w,)) for w in (world.bank.writer, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        other.close()
    assert sum(counts) == 4
    assert [world.payment(pid).status for pid in pids] == ["completed"] * 4
    assert len(world.control.transfers()) == 4
    money_is_where_it_should_be(world, settled=sum((100 + n) * YUAN for n in range(4)))


# -- returned after settlement ------------------------------------------------------------------
def test_a_settled_transfer_the_other_bank_returns_comes_back_once(world: World) -> None:
    pid = world.pay()
    world.send()
    done = world.control.return_transfer(world.e2e(pid), "AC04")
    assert done["return_status"] == "ACSC"
    back = world.payment(pid)
    assert (back.status, back.failure_code) == ("returned", "PAYEE_ACCOUNT_UNAVAILABLE")
    money_is_where_it_should_be(world, settled=5_000 * YUAN, returned=5_000 * YUAN)
    with world.bank.engine.connect() as conn:
        pacs004 = conn.execute(
            select(clearing_messages.c.xml).where(clearing_messages.c.kind == PACS_004)
        ).scalar_one()  # fmt: skip
    now = world.bank.clock.now()
    report = answer_of(deliver(world.ours, pacs004.encode(), now=now), now=now)
    assert (report.status, report.original_kind) == ("ACSC", PACS_004)  # taken, once
    money_is_where_it_should_be(world, settled=5_000 * YUAN, returned=5_000 * YUAN)
    with world.bank.engine.connect() as conn:
        audited = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.action == "clearing.return")
        ).scalars().all()  # fmt: skip
    assert audited == ["clearing"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"amount": 4_999 * YUAN}, "AM09"), ({"sender": "999300000033"}, "NOOR")],
)
def test_a_return_that_does_not_match_what_we_sent_is_rejected(
    world: World, change: dict[str, Any], reason: str
) -> None:
    pid = world.pay()
    world.send()
    now = world.bank.clock.now()
    sender = change.get("sender", SIM_BANK)
    back = PaymentReturn(
        Header("M-back", now, sender, OURS), "R-1", f"{OURS}{world.e2e(pid)}", world.e2e(pid),
        change.get("amount", 5_000 * YUAN), "CNY", "AC04",
    )  # fmt: skip
    report = answer_of(deliver(world.ours, back, now=now), now=now)
    assert (report.status, report.reason) == ("RJCT", reason)
    assert world.payment(pid).status == "completed"
    money_is_where_it_should_be(world, settled=5_000 * YUAN)
