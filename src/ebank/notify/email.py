"""E-mail to customers: one way to ask for one, and the worker that sends them over SMTP.

`send_email` seals the address, subject and body into an "email.send" outbox event in the
caller's transaction. `deliver_email` sends what is due through the bank's SMTP server
(`EBANK_SMTP_*`) with the delivery mechanism SMS uses (`notify.delivery`: leases, retries on
`BACKOFF`, every attempt in `email_deliveries`, expiry). The caller names the address: ebank
keeps a customer's e-mail address only where they asked for e-mail notices
(`notices.set_preferences`).

A message keeps one Message-ID through its retries, so that if a worker dies after the server
took a message and it is sent again, mail clients can tell the two are one.
"""

import logging
import re
import smtplib
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from ebank.core.clock import BUSINESS_TZ
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.settings import Settings
from ebank.core.writer import Tx, Writer
from ebank.notify import delivery
from ebank.notify.tables import email_deliveries, email_intake, email_messages

log = logging.getLogger(__name__)

EMAIL = delivery.Queue(
    "email", ("to", "subject", "body"), email_intake, email_messages, email_deliveries
)
MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 20_000
# A plain ASCII address (no SMTPUTF8): a dot-atom local part, a domain of LDH labels.
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_ANY_ADDRESS = re.compile(r"\S+@\S+")


def valid_address(text: object) -> bool:
    """Whether `text` is an e-mail address ebank sends to."""
    return (
        isinstance(text, str)
        and len(text) <= 254
        and _ADDRESS.fullmatch(text) is not None
        and len(text.partition("@")[0]) <= 64
    )


def mask_address(address: str) -> str:
    """z***@example.com: the first character and the domain."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def send_email(
    tx: Tx,
    vault: Vault,
    *,
    customer_id: int,
    to: str,
    subject: str,
    body: str,
    kind: str,
    expires_at: datetime | None = None,
) -> None:
    """Ask for an e-mail to `to`, in the caller's transaction. Address, subject and body are
    sealed: only the sender, which holds the data key, reads them. `expires_at` is when the
    message stops being worth sending."""
    if not valid_address(to):
        raise EbankError("INVALID_INPUT", reason="not an e-mail address ebank can send to")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
        raise EbankError("INVALID_INPUT", reason=f"a subject is 1-{MAX_SUBJECT_CHARS} characters")
    if not subject.isprintable():
        raise EbankError("INVALID_INPUT", reason="a subject is one line of printable text")
    if not isinstance(body, str) or not 0 < len(body) <= MAX_BODY_CHARS:
        raise EbankError("INVALID_INPUT", reason=f"a body is 1-{MAX_BODY_CHARS} characters")
    delivery.enqueue(
        tx, vault, EMAIL, customer_id=customer_id, kind=kind,
        fields={"to": to, "subject": subject, "body": body}, expires_at=expires_at,
    )  # fmt: skip


class EmailNotSent(Exception):
    """The server did not take a message. The text (kept with the attempt) has the server's
    code and words with any address in them blanked."""


def _describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()), (0, b""))
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, text = exc.smtp_code, exc.smtp_error
    else:  # no answer: refused, reset, timed out, TLS failed
        return f"{type(exc).__name__}: {exc}"
    words = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {_ANY_ADDRESS.sub('<address>', words)}".strip()


class SmtpSender:
    """The bank's SMTP server: where e-mail goes, from whom, and how to connect."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if username is not None and not starttls:
            raise ValueError("an SMTP login is only sent over STARTTLS: set EBANK_SMTP_STARTTLS")
        if not valid_address(parseaddr(sender)[1]):
            raise ValueError("EBANK_SMTP_FROM is not an e-mail address")
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self.starttls, self.username, self.password = starttls, username, password
        self.tls_context = tls_context
        self.domain = parseaddr(sender)[1].rpartition("@")[2]

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmtpSender":
        if settings.smtp_host is None:
            raise ValueError("EBANK_SMTP_HOST is not set")
        password = settings.smtp_password
        return cls(
            settings.smtp_host, settings.smtp_port, sender=settings.smtp_from,
            starttls=settings.smtp_starttls, username=settings.smtp_username,
            password=None if password is None else password.get_secret_value(),
            timeout=settings.smtp_timeout_seconds,
        )  # fmt: skip

    @contextmanager
    def session(self) -> Iterator["SmtpSession"]:
        """One delivery round's connection, opened at its first message and closed after."""
        session = SmtpSession(self)
        try:
            yield session
        finally:
            session.close()


class SmtpSession:
    """Sends a round's messages over one connection. Once the server cannot be reached, the
    round's other messages fail at once instead of each waiting out the timeout, which could
    outlast the lease."""

    def __init__(self, server: SmtpSender) -> None:
        self.server = server
        self._smtp: smtplib.SMTP | None = None
        self._unreachable: str | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.server
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.starttls:
                smtp.starttls(context=s.tls_context or ssl.create_default_context())
            if s.username is not None:
                smtp.login(s.username, s.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        if self._unreachable is not None:
            raise EmailNotSent(f"not tried: earlier in this round, {self._unreachable}")
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except (OSError, smtplib.SMTPException) as exc:
                self._unreachable = _describe(exc)
                raise EmailNotSent(self._unreachable) from None
        try:
            self._smtp.send_message(message)
        except (
            smtplib.SMTPRecipientsRefused,
            smtplib.SMTPSenderRefused,
            smtplib.SMTPDataError,
        ) as exc:
            raise EmailNotSent(_describe(exc)) from None  # refused; the connection still serves
        except (OSError, smtplib.SMTPException) as exc:
            self.close()  # the connection is in doubt: the next message opens another
            raise EmailNotSent(_describe(exc)) from None

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


def _compose(
    vault: Vault, server: SmtpSender, message: delivery.Message, now: datetime
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = server.sender
    mail["To"] = message.open(vault, EMAIL, "to")
    mail["Subject"] = message.open(vault, EMAIL, "subject")
    mail["Date"] = format_datetime(now.astimezone(BUSINESS_TZ))
    mail["Message-ID"] = f"<notice.{message.event_id}@{server.domain}>"
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    mail.set_content(message.open(vault, EMAIL, "body"), charset="utf-8", cte="base64")
    return mail


def deliver_email(
    writer: Writer, vault: Vault, server: SmtpSender, *, limit: int = delivery.ROUND
) -> int:
    """Send the e-mail that is due, up to `limit`; how many were dealt with (sent, failed or
    expired). Safe to run in several workers at once."""
    with server.session() as session:

        def send(message: delivery.Message) -> None:
            mail = _compose(vault, server, message, writer.clock.now())
            session.send(mail)
            log.info(
                "email sent",
                extra={"event": message.event_id, "customer": message.customer_id,
                       "kind": message.kind, "to": mask_address(mail["To"])},
            )  # fmt: skip

        return delivery.deliver(writer, EMAIL, send, limit=limit)


def run_email_loop(
    writer: Writer,
    vault: Vault,
    server: SmtpSender,
    stop: threading.Event,
    poll_seconds: float = 0.5,
) -> None:
    """Deliver e-mail until `stop` is set (a background thread's body)."""
    delivery.run_loop(
        lambda limit: deliver_email(writer, vault, server, limit=limit),
        stop, poll_seconds=poll_seconds, what="email",
    )  # fmt: skip


def start_email_delivery(
    writer: Writer, vault: Vault, settings: Settings
) -> Callable[[], None] | None:
    """Deliver e-mail on a background thread, if an SMTP server is configured
    (`EBANK_SMTP_HOST`); returns `stop`, or None when there is none."""
    if settings.smtp_host is None:
        return None
    server = SmtpSender.from_settings(settings)
    return delivery.start(
        lambda stop: run_email_loop(writer, vault, server, stop), name="ebank-email"
    )
