"""The clearing house's rules, in process: what the simulated bank takes and refuses, the
de-duplication that makes sending again safe, status queries, the faults it injects on
purpose, and its deliveries to our bank (here a fake bank that records what it got)."""

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ebank.clearing.house import SEED_ACCOUNTS, SIM_BANK, House, HouseControl
from ebank.clearing.messages import (
    PACS_008,
    CreditTransfer,
    Header,
    Message,
    PaymentReturn,
    StatusReport,
    StatusRequest,
    parse,
    sign,
    verify,
)
from ebank.core.clock import FixedClock

OURS = "999100000017"
SECRET = "house-test-secret-0123456789"
LEI, HAN, WANG, ZHAO = (a.number for a in SEED_ACCOUNTS)  # active, active, closed, frozen


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeBank:
    """Our bank as the house sees it: answers each delivery as told, records what came."""

    clock: FixedClock
    answer: tuple[str, str | None] = ("ACSC", None)
    down: bool = False
    received: list[Message] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        verify(SECRET, request.content, request.headers, now=self.clock.now())
        message = parse(request.content)
        assert isinstance(message, CreditTransfer | PaymentReturn)
        self.received.append(message)
        report = StatusReport(
            Header(f"B{len(self.received)}", self.clock.now(), OURS, SIM_BANK),
            message.header.msg_id, message.kind, message.end_to_end_id, *self.answer,
        )  # fmt: skip
        body = report.to_xml()
        return httpx.Response(200, content=body, headers=sign(SECRET, body, now=self.clock.now()))


@dataclass
class Rig:
    house: House
    http: TestClient
    control: HouseControl
    bank: FakeBank
    monotonic: Monotonic
    clock: FixedClock
    sent: int = 0

    def transfer(self, **change: Any) -> CreditTransfer:
        """A transfer from our bank to 李雷 at the simulated bank, with fresh ids."""
        self.sent += 1
        fields = {
            "header": Header(f"M{self.sent}", self.clock.now(), OURS, SIM_BANK),
            "instr_id": f"E{self.sent}", "end_to_end_id": f"E{self.sent}",
            "tx_id": f"E{self.sent}", "amount": 100_00, "currency": "CNY",
            "debtor_name": "张三", "debtor_account": "6217001000000000011",
            "debtor_agent": OURS, "creditor_agent": SIM_BANK, "creditor_name": "李雷",
            "creditor_account": LEI, "remittance": "货款",
        }  # fmt: skip
        return CreditTransfer(**(fields | change))

    def post(self, message: Message | bytes, *, secret: str = SECRET) -> tuple[int, Any]:
        body = message if isinstance(message, bytes) else message.to_xml()
        headers = sign(secret, body, now=self.clock.now())
        response = self.http.post("/messages", content=body, headers=headers)
        if response.status_code not in (200, 404):
            return response.status_code, response.text
        verify(SECRET, response.content, response.headers, now=self.clock.now())
        return response.status_code, parse(response.content)

    def query(self, transfer: CreditTransfer) -> tuple[int, StatusReport]:
        request = StatusRequest(
            Header(f"Q{transfer.header.msg_id}", self.clock.now(), OURS, SIM_BANK),
            transfer.header.msg_id, transfer.end_to_end_id,
        )  # fmt: skip
        return self.post(request)  # type: ignore[return-value]

    def balance(self, number: str) -> str:
        return str(self.control.accounts()[number]["balance"])


@pytest.fixture
def rig() -> Iterator[Rig]:
    clock = FixedClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    monotonic, bank = Monotonic(), FakeBank(clock)
    house = House(
        bank_code=OURS, bank_url="http://bank.test", secret=SECRET, seed=7, clock=clock,
        monotonic=monotonic, bank_transport=httpx.MockTransport(bank),
    )  # fmt: skip
    with TestClient(house.app) as http:
        yield Rig(house, http, HouseControl(http, secret=SECRET, clock=clock), bank, monotonic,
                  clock)  # fmt: skip


def status_of(report: StatusReport) -> tuple[str | None, str | None]:
    return report.status, report.reason


# -- transfers to the simulated bank ------------------------------------------------------------
def test_a_transfer_to_a_good_account_is_settled_and_credited_once_whatever_the_repeats(
    rig: Rig,
) -> None:
    transfer = rig.transfer()
    for _ in range(3):  # the same message again: an answer about the same transfer
        code, report = rig.post(transfer)
        assert code == 200
        assert status_of(report) == ("ACSC", None)
        assert (report.original_msg_id, report.end_to_end_id) == ("M1", "E1")
        assert (report.header.sender, report.header.receiver) == (SIM_BANK, OURS)
    assert rig.balance(LEI) == "1000100.00"
    assert [t["status"] for t in rig.control.transfers()] == ["ACSC"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"creditor_account": "6222020000009999"}, "AC01"),
        ({"creditor_account": WANG, "creditor_name": "王五"}, "AC04"),
        ({"creditor_account": ZHAO, "creditor_name": "赵六"}, "AC06"),
        ({"creditor_name": "李蕾"}, "BE01"),
        ({"currency": "USD"}, "AM03"),
        ({"creditor_agent": "999300000033"}, "AGNT"),
    ],
)
def test_the_simulated_bank_refuses_by_its_records_and_credits_nothing(
    rig: Rig, change: dict[str, str], reason: str
) -> None:
    before = rig.control.accounts()
    transfer = rig.transfer(**change)
    code, report = rig.post(transfer)
    assert (code, status_of(report)) == (200, ("RJCT", reason))
    assert rig.control.accounts() == before
    assert status_of(rig.query(transfer)[1]) == ("RJCT", reason)


def test_names_match_whatever_the_spaces(rig: Rig) -> None:
    assert status_of(rig.post(rig.transfer(creditor_name="李 雷"))[1]) == ("ACSC", None)


def test_the_same_end_to_end_id_under_a_new_message_id_is_a_duplicate_and_changes_nothing(
    rig: Rig,
) -> None:
    first = rig.transfer()
    rig.post(first)
    again = replace(first, header=Header("M-other", rig.clock.now(), OURS, SIM_BANK))
    code, report = rig.post(again)
    assert (code, status_of(report), report.original_msg_id) == (200, ("RJCT", "AM05"), "M-other")
    assert rig.balance(LEI) == "1000100.00"
    assert status_of(rig.query(first)[1]) == ("ACSC", None)


# -- status queries -----------------------------------------------------------------------------
def test_a_transfer_never_received_is_not_known_here_which_is_no_rejection(rig: Rig) -> None:
    never = rig.transfer()
    code, report = rig.query(never)
    assert code == 404
    assert report.status is None and report.reason is None and not report.known
    assert (report.original_msg_id, report.end_to_end_id) == (never.header.msg_id, "E1")
    rig.post(never)  # sending it now is safe, and then it is known
    code, report = rig.query(never)
    assert (code, status_of(report)) == (200, ("ACSC", None))


# -- faults -------------------------------------------------------------------------------------
def test_the_reject_fault_refuses_even_a_good_account(rig: Rig) -> None:
    rig.control.set_faults(reject_rate=1.0)
    transfer = rig.transfer()
    assert status_of(rig.post(transfer)[1]) == ("RJCT", "MS03")
    assert status_of(rig.query(transfer)[1]) == ("RJCT", "MS03")
    assert rig.balance(LEI) == "1000000.00"


def test_a_pending_transfer_settles_later_and_queries_see_each_step(rig: Rig) -> None:
    rig.control.set_faults(pending_rate=1.0, settle_seconds=3)
    transfer = rig.transfer()
    assert status_of(rig.post(transfer)[1]) == ("ACSP", None)
    assert status_of(rig.query(transfer)[1]) == ("ACSP", None)
    assert rig.balance(LEI) == "1000000.00"
    rig.monotonic.now += 3
    assert status_of(rig.query(transfer)[1]) == ("ACSC", None)
    assert status_of(rig.post(transfer)[1]) == ("ACSC", None)  # a repeat: the current status
    assert rig.balance(LEI) == "1000100.00"


def test_the_timeout_fault_applies_the_transfer_and_holds_the_answer_back(rig: Rig) -> None:
    rig.control.set_faults(timeout_rate=1.0, hang_seconds=0.3)
    transfer = rig.transfer()
    started = time.monotonic()
    assert status_of(rig.post(transfer)[1]) == ("ACSC", None)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert status_of(rig.query(transfer)[1]) == ("ACSC", None)  # a query is not held back
    assert time.monotonic() - started < 0.3
    assert rig.balance(LEI) == "1000100.00"


def test_latency_delays_every_answer(rig: Rig) -> None:
    rig.control.set_faults(latency_ms=200)
    started = time.monotonic()
    rig.query(rig.transfer())
    assert time.monotonic() - started >= 0.2


def test_the_same_seed_draws_the_same_faults() -> None:
    outcomes = []
    for _ in range(2):
        clock = FixedClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
        house = House(bank_code=OURS, bank_url="http://bank.test", secret=SECRET, seed=42,
                      clock=clock, monotonic=Monotonic())  # fmt: skip
        with TestClient(house.app) as http:
            rig = Rig(house, http, HouseControl(http, secret=SECRET, clock=clock), FakeBank(clock),
                      Monotonic(), clock)  # fmt: skip
            rig.control.set_faults(reject_rate=0.3, pending_rate=0.3)
            outcomes.append([status_of(rig.post(rig.transfer())[1]) for _ in range(12)])
    assert outcomes[0] == outcomes[1]
    assert {s for s, _ in outcomes[0]} == {"ACSC", "ACSP", "RJCT"}


@pytest.mark.parametrize(
    "faults",
    [{"reject_rate": 0.6, "pending_rate": 0.6}, {"reject_rate": -0.1}, {"latency_ms": 1.5},
     {"speed": 3}, {"hang_seconds": 10_000}],
)  # fmt: skip
def test_faults_out_of_range_are_refused_and_the_old_ones_stay(
    rig: Rig, faults: dict[str, Any]
) -> None:
    before = rig.control.set_faults()
    with pytest.raises(httpx.HTTPStatusError) as caught:
        rig.control.set_faults(**faults)
    assert caught.value.response.status_code == 400
    assert rig.control.set_faults() == before


# -- authentication and bad input ---------------------------------------------------------------
def test_an_unsigned_or_stale_message_is_refused_before_it_is_read(rig: Rig) -> None:
    body = rig.transfer().to_xml()
    assert rig.post(body, secret="not-the-shared-secret")[0] == 401
    stale = sign(SECRET, body, now=rig.clock.now() - timedelta(minutes=6))
    assert rig.http.post("/messages", content=body, headers=stale).status_code == 401
    assert rig.http.post("/messages", content=body).status_code == 401
    assert rig.control.transfers() == []


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda r: b"<not-a-message/>", "not one of the messages"),
        (lambda r: StatusReport(Header("M9", r.clock.now(), OURS, SIM_BANK), "M1", PACS_008,
                                "E1", "ACSC"), "pacs.008 or pacs.028"),
        (lambda r: r.transfer(header=Header("M9", r.clock.now(), "999300000033", SIM_BANK),
                              debtor_agent="999300000033"), "unknown participant"),
    ],
)  # fmt: skip
def test_a_signed_message_the_house_does_not_take_is_a_400(rig: Rig, make: Any, says: str) -> None:
    code, text = rig.post(make(rig))
    assert code == 400 and says in text
    assert rig.control.transfers() == []


def test_control_calls_must_be_signed_too(rig: Rig) -> None:
    assert rig.http.get("/control/transfers").status_code == 401
    forged = sign("not-the-shared-secret", b"", now=rig.clock.now())
    assert rig.http.get("/control/accounts", headers=forged).status_code == 401
    body = b'{"reject_rate": 1.0}'
    forged = sign("not-the-shared-secret", body, now=rig.clock.now())
    assert rig.http.post("/control", content=body, headers=forged).status_code == 401
    assert rig.control.set_faults()["reject_rate"] == 0.0


# -- the simulated bank pays our bank -----------------------------------------------------------
def test_a_payment_to_our_bank_is_delivered_signed_and_its_answer_recorded(rig: Rig) -> None:
    done = rig.control.send(from_account=HAN, to_account="6217001000000000011", to_name="张三",
                            amount="250.00", memo="还款")  # fmt: skip
    assert (done["status"], done["reason"], done["error"]) == ("ACSC", None, None)
    [message] = rig.bank.received
    assert isinstance(message, CreditTransfer)
    assert (message.amount, message.currency, message.remittance) == (250_00, "CNY", "还款")
    assert (message.debtor_name, message.debtor_account, message.debtor_agent) == (
        "韩梅梅",
        HAN,
        SIM_BANK,
    )
    assert (message.creditor_agent, message.header.receiver) == (OURS, OURS)
    assert rig.balance(HAN) == "199750.00"
    assert rig.control.transfers() == [done]


def test_a_payment_our_bank_rejects_goes_back_to_the_simulated_payer(rig: Rig) -> None:
    rig.bank.answer = ("RJCT", "AC04")
    done = rig.control.send(from_account=HAN, to_account="6217001000000000011", to_name="张三",
                            amount="250.00")  # fmt: skip
    assert (done["status"], done["reason"]) == ("RJCT", "AC04")
    assert rig.balance(HAN) == "200000.00"
    rig.control.redeliver(done["end_to_end_id"])  # a rejection again refunds nothing more
    assert rig.balance(HAN) == "200000.00"


def test_a_delivery_that_got_no_answer_can_be_made_again(rig: Rig) -> None:
    rig.bank.down = True
    done = rig.control.send(from_account=HAN, to_account="6217001000000000011", to_name="张三",
                            amount="1.00")  # fmt: skip
    assert (done["status"], done["error"]) == (None, "no trustworthy answer from the bank")
    rig.bank.down = False
    again = rig.control.redeliver(done["end_to_end_id"])
    assert (again["status"], again["error"]) == ("ACSC", None)
    assert rig.bank.received[0].to_xml() == parse(rig.house.transfers[(SIM_BANK, done[
        "end_to_end_id"])].xml).to_xml()  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [
        {"from_account": WANG, "to_account": "1", "to_name": "x", "amount": "1.00"},
        {"from_account": HAN, "to_account": "1", "to_name": "x", "amount": "300000.00"},
        {"from_account": HAN, "to_account": "1", "to_name": "x", "amount": "1.5"},
        {"from_account": HAN, "to_account": "1", "to_name": "", "amount": "1.00"},
    ],
)
def test_a_payment_the_simulated_bank_cannot_make_is_refused(
    rig: Rig, data: dict[str, str]
) -> None:
    with pytest.raises(httpx.HTTPStatusError) as caught:
        rig.control.send(**data)
    assert caught.value.response.status_code in (400, 422)
    assert rig.balance(HAN) == "200000.00" and rig.bank.received == []


def test_a_settled_transfer_can_be_returned_once_with_a_pacs004(rig: Rig) -> None:
    transfer = rig.transfer()
    rig.post(transfer)
    done = rig.control.return_transfer("E1", "AC04")
    assert (done["returned"], done["return_status"]) == ("AC04", "ACSC")
    [back] = rig.bank.received
    assert isinstance(back, PaymentReturn)
    assert (back.original_msg_id, back.end_to_end_id, back.amount, back.reason) == (
        "M1", "E1", 100_00, "AC04")  # fmt: skip
    assert rig.balance(LEI) == "1000000.00"
    with pytest.raises(httpx.HTTPStatusError) as caught:
        rig.control.return_transfer("E1", "AC04")
    assert caught.value.response.status_code == 409
