"""The whole flow for real: `ebank clearing-house` in its own process, our bank's app under
uvicorn on a real socket, both on 127.0.0.1, talking signed HTTP. Money both ways, rejections,
a timeout followed by a late success, a pending transfer, and the worker's loop."""

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from ebank.accounts.models import CustomerAccount
from ebank.clearing import service as clearing
from ebank.clearing.client import ClearingClient
from ebank.clearing.house import SEED_ACCOUNTS, SIM_BANK, HouseControl
from ebank.core.clock import SystemClock
from ebank.core.settings import Settings, get_settings
from ebank.core.writer import Writer
from ebank.payments import service as payments
from tests.clearing.support import SECRET, bank_app
from tests.payments.support import Payer, PaymentsBank
from tests.support import VAULT, sound

YUAN = 100
LEI, HAN, _, _ = (a.number for a in SEED_ACCOUNTS)
WAIT = 30


def _first_line(proc: subprocess.Popen[str]) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline() if proc.stdout else ""),
                     daemon=True).start()  # fmt: skip
    try:
        return lines.get(timeout=WAIT)
    except queue.Empty:
        raise AssertionError("the clearing house never said where it listens") from None


@pytest.fixture
def clearing_house(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start `ebank clearing-house` for a bank URL; its URL. Stopped by its pid at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(bank_url: str) -> str:
        env = os.environ | {"EBANK_CLEARING_SECRET": SECRET,
                            "EBANK_BANK_CODE": get_settings().bank_code}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "ebank.cli", "clearing-house", "--port", "0", "--bank-url",
             bank_url, "--seed", "42"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(proc)
        line = _first_line(proc)
        assert line.startswith("clearing house listening on http://127.0.0.1:"), line
        return line.split()[-1]

    try:
        yield start
    finally:
        for proc in started:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def our_bank(engine: Engine) -> Iterator[tuple[str, Writer]]:
    """Our bank's app under uvicorn on a free loopback port, in a thread; its URL and writer.
    Real time: the house signs with the real clock."""
    writer = Writer(engine, clock=SystemClock())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    app = bank_app(engine=engine, writer=writer, vault=VAULT)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "our app did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", writer
    finally:
        server.should_exit = True
        thread.join(WAIT)
        sock.close()
        writer.close()


@dataclass
class Two:
    bank: PaymentsBank
    control: HouseControl
    client: ClearingClient
    settings: Settings


@pytest.fixture
def two(
    engine: Engine,
    our_bank: tuple[str, Writer],
    clearing_house: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Two]:
    bank_url, writer = our_bank
    house_url = clearing_house(bank_url)
    settings = get_settings().model_copy(
        update={"clearing_url": house_url, "clearing_timeout_seconds": 1.0}
    )
    monkeypatch.setattr(get_settings(), "clearing_url", house_url)
    # The bank runs on the real clock and the payer asks for codes seconds apart.
    monkeypatch.setattr(get_settings(), "sms_code_resend_seconds", 0)
    # Status queries after a fifth of a second, not 5 s, 15 s, ...: the schedule is not what
    # these tests are about (test_outgoing checks it).
    monkeypatch.setattr(clearing, "BACKOFF", (timedelta(seconds=0.2),))
    with httpx.Client(base_url=house_url, timeout=WAIT) as http:
        client = ClearingClient.from_settings(settings)
        try:
            yield Two(PaymentsBank(writer, engine, SystemClock()),
                      HouseControl(http, secret=SECRET), client, settings)  # fmt: skip
        finally:
            client.close()


def until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_money_from_the_other_bank_reaches_our_customer_or_is_rejected_untouched(
    two: Two,
) -> None:
    bank = two.bank
    good = bank.account(bank.person(), funds=0)  # 客户1
    closed = bank.account(bank.person(), funds=0)  # 客户2
    bank.decide("account.close", {"account": closed.number})
    frozen = bank.account(bank.person(), funds=0)  # 客户3
    bank.decide("account.freeze", {"account": frozen.number})

    def send(account: CustomerAccount, name: str) -> tuple[str, str | None]:
        done = two.control.send(from_account=HAN, to_account=account.number, to_name=name,
                                amount="1234.56", memo="跨行汇款")  # fmt: skip
        return done["status"], done["reason"]

    assert send(good, "客户1") == ("ACSC", None)
    assert bank.balance(good) == 1_234_56
    assert send(good, "客户9") == ("RJCT", "BE01")
    assert send(closed, "客户2") == ("RJCT", "AC04")
    assert send(frozen, "客户3") == ("RJCT", "AC06")
    assert [bank.balance(a) for a in (good, closed, frozen)] == [1_234_56, 0, 0]
    assert two.control.accounts()[HAN]["balance"] == "198765.44"  # rejections refunded there
    sound(bank.engine)


def test_transfers_to_the_other_bank_settle_come_back_or_resolve_by_query(two: Two) -> None:
    bank, control = two.bank, two.control
    alice = Payer(bank)

    def pay(amount: int, name: str = "李雷") -> int:
        request = alice.request(LEI, amount * YUAN, payee_name=name, payee_bank=SIM_BANK)
        return alice.paid(request, alice.sms(request), key=f"k{amount}").id

    def status(pid: int) -> str:
        return bank.payment(alice.id, pid).status

    def send() -> None:
        clearing.send_pending(bank.writer, two.client, VAULT)

    settled = pay(100)
    send()
    assert status(settled) == "completed"

    control.set_faults(reject_rate=1.0)
    rejected = pay(200)
    send()
    assert (status(rejected), bank.payment(alice.id, rejected).failure_code) == (
        "returned", "PAYEE_BANK_REJECTED")  # fmt: skip

    control.set_faults(reject_rate=0.0, timeout_rate=1.0, hang_seconds=3)
    late = pay(300)
    started = time.monotonic()
    send()
    assert time.monotonic() - started < 3  # we gave up after our timeout, not the house's hang
    assert status(late) == "unknown"

    control.set_faults(timeout_rate=0.0, pending_rate=1.0, settle_seconds=1)
    pending = pay(400)
    send()
    assert status(pending) == "sending"

    def resolved() -> bool:
        clearing.resolve_unknown(bank.writer, two.client, VAULT)
        return status(late) == status(pending) == "completed"

    until(resolved, "the late success and the pending transfer settled")
    assert bank.events(late) == ["sending", "unknown", "completed"]

    control.set_faults(pending_rate=0.0)
    stop = clearing.start(bank.writer, VAULT, two.settings)  # the worker's loop
    assert stop is not None
    try:
        by_worker = pay(500)
        until(lambda: status(by_worker) == "completed", "the worker sent it")
    finally:
        stop()

    assert control.accounts()[LEI]["balance"] == f"{1_000_000 + 100 + 300 + 400 + 500}.00"
    assert bank.balance(alice.account) == (1_000_000 - 100 - 300 - 400 - 500) * YUAN
    assert bank.ledger_balance(payments.CLEARING) == 0
    assert bank.ledger_balance(payments.CENTRAL_BANK) == -(100 + 300 + 400 + 500) * YUAN
    sound(bank.engine)
