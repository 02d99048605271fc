"""E-mail: one way to ask for one (address, subject and body sealed in the outbox), and a
worker that sends it through a real SMTP server (aiosmtpd on 127.0.0.1, started by the test)
with the delivery mechanism SMS uses: what arrives has proper headers (the subject encoded for
Chinese, Date, a Message-ID kept through retries); a refusal (550) or a server that is down is
retried on the backoff schedule with every attempt recorded, then given up or expired; a
login goes only over STARTTLS.

Every database test runs on SQLite and PostgreSQL.
"""

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, select

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.settings import Settings
from ebank.core.tables import outbox_events
from ebank.core.writer import Command, Writer
from ebank.notify import email as email_service
from ebank.notify.delivery import BACKOFF, LEASE
from ebank.notify.email import (
    SmtpSender,
    deliver_email,
    mask_address,
    send_email,
    start_email_delivery,
    valid_address,
)
from ebank.notify.notices import payment_result, set_preferences
from ebank.notify.tables import email_deliveries, email_intake, email_messages
from tests.support import VAULT, WAIT, person

TO = "li.si@example.com"
FROM = "ebank <notices@ebank.example>"
SUBJECT = "【ebank】付款结果通知 / Payment result"
BODY = "您的付款已成功。\n\nYour payment succeeded."


# -- a real SMTP server ------------------------------------------------------------------------
class Mailbox:
    """What the server received; it refuses recipients while `refusing` is set."""

    def __init__(self) -> None:
        self.received: list[Envelope] = []
        self.refusing: str | None = None
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refusing:
            return self.refusing
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            cast(EmailMessage, message_from_bytes(e.original_content or b"", policy=policy.default))
            for e in self.received
        ]

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"right password", handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


def server_at(port: int, **options: Any) -> SmtpSender:
    return SmtpSender("127.0.0.1", port, sender=FROM, timeout=5, **options)


def ask(writer: Writer, customer: int, **changes: Any) -> None:
    params = {"customer_id": customer, "to": TO, "subject": SUBJECT, "body": BODY,
              "kind": "payment"} | changes  # fmt: skip
    writer.execute(Command(lambda tx: send_email(tx, VAULT, **params)))


def attempts(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(email_deliveries).order_by(
                email_deliveries.c.event_id, email_deliveries.c.attempt
            )
        )
        return [dict(r) for r in rows.mappings()]


def rows_of(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table)).mappings()]


# -- asking for an e-mail ----------------------------------------------------------------------
def test_send_email_seals_address_subject_and_body_in_the_outbox(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    ask(writer, customer)
    [event] = rows_of(engine, outbox_events)
    assert event["topic"] == "email.send"
    payload = json.loads(event["payload"])
    assert payload["customer"] == customer and payload["kind"] == "payment"
    assert TO not in event["payload"] and "付款" not in event["payload"]
    assert VAULT.decrypt(payload["to"], purpose="email.to") == TO
    assert VAULT.decrypt(payload["subject"], purpose="email.subject") == SUBJECT
    assert VAULT.decrypt(payload["body"], purpose="email.body") == BODY


@pytest.mark.parametrize(
    "changes",
    [
        {"to": "nobody"},
        {"to": f"{TO}\r\nBcc: all@example.com"},
        {"to": "a" * 65 + "@example.com"},
        {"subject": ""},
        {"subject": "付款\r\nBcc: all@example.com"},
        {"subject": "长" * 201},
        {"body": ""},
        {"body": "x" * 20_001},
        {"kind": "not a kind"},
        {"customer_id": "1"},
    ],
)
def test_send_email_refuses_bad_input_and_emits_nothing(
    writer: Writer, engine: Engine, changes: dict[str, Any]
) -> None:
    customer = person(writer, 1)
    with pytest.raises(EbankError) as caught:
        ask(writer, customer, **changes)
    assert caught.value.code == "INVALID_INPUT"
    assert rows_of(engine, outbox_events) == []


def test_addresses_are_checked_and_masked() -> None:
    assert valid_address("zhang.san+notices@mail.example.com")
    assert not valid_address("zhang san@example.com")
    assert not valid_address("@example.com")
    assert not valid_address(None)
    assert mask_address("zhang.san@example.com") == "z***@example.com"


# -- delivery ----------------------------------------------------------------------------------
def test_the_email_arrives_with_proper_headers_and_body(
    writer: Writer, engine: Engine, clock: FixedClock, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    customer = person(writer, 1)
    ask(writer, customer)
    assert deliver_email(writer, VAULT, server_at(port)) == 1
    [envelope] = box.received
    assert envelope.mail_from == "notices@ebank.example" and envelope.rcpt_tos == [TO]
    raw = (envelope.original_content or b"").decode("ascii")  # 7-bit clean on the wire
    assert "=?utf-8?" in raw, "the Chinese subject is RFC 2047-encoded"
    [mail] = box.messages()
    assert mail["From"] == FROM and mail["To"] == TO
    assert mail["Subject"] == SUBJECT
    assert parsedate_to_datetime(mail["Date"]) == clock.now()
    assert mail["Date"].endswith("+0800")
    [event] = rows_of(engine, outbox_events)
    assert mail["Message-ID"] == f"<notice.{event['id']}@ebank.example>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().rstrip("\n") == BODY
    [attempt] = attempts(engine)
    assert (attempt["attempt"], attempt["status"], attempt["error"]) == (1, "delivered", None)
    assert deliver_email(writer, VAULT, server_at(port)) == 0, "sent once"


def test_a_payment_result_email_arrives_in_both_languages(
    writer: Writer, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    customer = person(writer, 1)
    writer.execute(
        set_preferences(VAULT, customer_id=customer, movement_sms=True, movement_threshold=0,
                        locale="zh-CN", email=TO, actor="customer", channel="online")
    )  # fmt: skip
    writer.execute(
        Command(
            lambda tx: payment_result(
                tx, VAULT, customer_id=customer, amount=88_00, payee_name="王小明",
                payee_account="6217999900000000001", failure=EbankError("INSUFFICIENT_FUNDS"),
            )
        )
    )  # fmt: skip
    deliver_email(writer, VAULT, server_at(port))
    [mail] = box.messages()
    assert mail["To"] == TO and mail["Subject"] == "【ebank】付款结果通知 / Payment result"
    text = mail.get_content()
    assert text.index("您向王*明(尾号0001)的付款¥88.00未成功：可用余额不足") < text.index(
        "[ebank] Your payment of CNY 88.00 to 王*明 (a/c ending 0001) failed: Insufficient"
    )


def test_a_refusing_server_is_retried_on_the_schedule_then_given_up(
    writer: Writer, engine: Engine, clock: FixedClock, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    box.refusing = f"550 5.1.1 <{TO}>: Recipient address rejected"
    customer = person(writer, 1)
    ask(writer, customer)
    server = server_at(port)
    assert deliver_email(writer, VAULT, server) == 1
    for delay in BACKOFF:
        clock.advance(delay - timedelta(seconds=1))
        assert deliver_email(writer, VAULT, server) == 0, "retried before its time"
        clock.advance(timedelta(seconds=1))
        assert deliver_email(writer, VAULT, server) == 1, "not retried on time"
    clock.advance(timedelta(days=1))
    assert deliver_email(writer, VAULT, server) == 0, "retried after giving up"
    recorded = attempts(engine)
    assert [a["status"] for a in recorded] == ["retrying"] * len(BACKOFF) + ["failed"]
    assert {a["error"] for a in recorded} == {
        "EmailNotSent: 550 5.1.1 <address> Recipient address rejected"
    }
    assert box.received == []
    [message] = rows_of(engine, email_messages)
    assert message["state"] == "done"


def test_an_email_that_expires_while_refused_is_recorded_expired(
    writer: Writer, engine: Engine, clock: FixedClock, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    box.refusing = "550 mailbox unavailable"
    customer = person(writer, 1)
    ask(writer, customer, expires_at=clock.now() + timedelta(minutes=2))
    server = server_at(port)
    for delay in (timedelta(0), BACKOFF[0], BACKOFF[1]):  # at 0 s, 15 s, then 75 s
        clock.advance(delay)
        deliver_email(writer, VAULT, server)
    clock.advance(BACKOFF[2])  # 375 s: past its two minutes
    assert deliver_email(writer, VAULT, server) == 1
    assert [a["status"] for a in attempts(engine)] == ["retrying"] * 3 + ["expired"]
    assert box.received == []


def test_a_server_that_is_down_is_retried_and_the_email_arrives_when_it_is_back(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    port = free_port()  # nothing listens there yet
    customer = person(writer, 1)
    ask(writer, customer, subject="第一封")
    ask(writer, customer, subject="第二封")
    server = server_at(port)
    assert deliver_email(writer, VAULT, server) == 2
    first, second = attempts(engine)
    assert first["status"] == second["status"] == "retrying"
    assert first["error"].startswith("EmailNotSent: ConnectionRefusedError")
    assert second["error"].startswith("EmailNotSent: not tried: earlier in this round")
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        clock.advance(BACKOFF[0])
        assert deliver_email(writer, VAULT, server) == 2
    finally:
        controller.stop()
    assert [m["Subject"] for m in box.messages()] == ["第一封", "第二封"]
    assert [a["status"] for a in attempts(engine)] == ["retrying", "delivered"] * 2


class Crash(BaseException):
    """The worker process dying."""


def test_a_message_sent_again_after_a_crash_keeps_its_message_id(
    writer: Writer,
    engine: Engine,
    clock: FixedClock,
    mailbox: tuple[Mailbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box, port = mailbox
    customer = person(writer, 1)
    ask(writer, customer)

    def die(*args: Any, **kwargs: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:  # the server took it; the worker dies before noting so
        patch.setattr(email_service.log, "info", die)
        with pytest.raises(Crash):
            deliver_email(writer, VAULT, server_at(port))
    clock.advance(LEASE)
    deliver_email(writer, VAULT, server_at(port))  # records the lost attempt
    clock.advance(BACKOFF[0])
    assert deliver_email(writer, VAULT, server_at(port)) == 1
    first, again = box.messages()
    assert first["Message-ID"] == again["Message-ID"]
    assert [a["status"] for a in attempts(engine)] == ["retrying", "delivered"]


def test_no_address_subject_or_body_is_stored_in_clear(
    writer: Writer, engine: Engine, clock: FixedClock, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    box.refusing = f"550 <{TO}> unknown"
    customer = person(writer, 1)
    ask(writer, customer)
    deliver_email(writer, VAULT, server_at(port))
    box.refusing = None
    clock.advance(BACKOFF[0])
    deliver_email(writer, VAULT, server_at(port))
    assert len(box.received) == 1
    for table in (outbox_events, email_messages, email_deliveries, email_intake):
        for row in rows_of(engine, table):
            for column, value in row.items():
                text = str(value)
                assert TO not in text and "li.si" not in text, (table.name, column)
                assert "付款" not in text and "succeeded" not in text, (table.name, column)


# -- STARTTLS and login ------------------------------------------------------------------------
@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: the server's context and a client's that
    trusts it (and nothing else)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


@pytest.fixture
def secure_mailbox(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(
        box, hostname="127.0.0.1", port=free_port(), tls_context=tls[0],
        require_starttls=True, auth_required=True, auth_require_tls=True,
        authenticator=box.authenticate,
    )  # fmt: skip
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


def test_starttls_and_login_deliver(
    writer: Writer,
    engine: Engine,
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
    secure_mailbox: tuple[Mailbox, int],
) -> None:
    box, port = secure_mailbox
    customer = person(writer, 1)
    ask(writer, customer)
    server = server_at(
        port, starttls=True, username="ebank", password="right password", tls_context=tls[1]
    )
    assert deliver_email(writer, VAULT, server) == 1
    assert box.logins == [(b"ebank", b"right password")]
    assert len(box.received) == 1


def test_a_wrong_login_is_recorded_without_the_password(
    writer: Writer,
    engine: Engine,
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
    secure_mailbox: tuple[Mailbox, int],
) -> None:
    box, port = secure_mailbox
    customer = person(writer, 1)
    ask(writer, customer)
    server = server_at(
        port, starttls=True, username="ebank", password="wrong password", tls_context=tls[1]
    )
    deliver_email(writer, VAULT, server)
    [attempt] = attempts(engine)
    assert attempt["status"] == "retrying" and attempt["error"].startswith("EmailNotSent: 535")
    assert "wrong password" not in attempt["error"]
    assert box.received == []


def test_a_server_certificate_not_trusted_is_not_sent_to(
    writer: Writer, engine: Engine, secure_mailbox: tuple[Mailbox, int]
) -> None:
    box, port = secure_mailbox
    customer = person(writer, 1)
    ask(writer, customer)
    server = server_at(port, starttls=True, username="ebank", password="right password")
    deliver_email(writer, VAULT, server)
    [attempt] = attempts(engine)
    assert attempt["status"] == "retrying" and "SSLCertVerificationError" in attempt["error"]
    assert box.logins == [] and box.received == []


def test_without_starttls_a_login_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="STARTTLS"):
        SmtpSender("127.0.0.1", 25, sender=FROM, username="ebank", password="secret")


def test_the_from_address_must_be_an_address() -> None:
    with pytest.raises(ValueError, match="EBANK_SMTP_FROM"):
        SmtpSender("127.0.0.1", 25, sender="ebank")


# -- the background loop -----------------------------------------------------------------------
def test_no_email_delivery_starts_without_an_smtp_host(writer: Writer) -> None:
    assert start_email_delivery(writer, VAULT, Settings(smtp_host=None)) is None


def test_the_email_loop_delivers_in_the_background_until_stopped(
    writer: Writer, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from=FROM)
    customer = person(writer, 1)
    stop = start_email_delivery(writer, VAULT, settings)
    assert stop is not None
    try:
        ask(writer, customer)
        arrived = threading.Event()
        for _ in range(WAIT * 100):
            if box.received:
                arrived.set()
                break
            arrived.wait(0.01)
    finally:
        stop()
    assert arrived.is_set()
    assert [t.name for t in threading.enumerate() if t.name == "ebank-email"] == []
