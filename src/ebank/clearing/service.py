"""Our bank's side of clearing: transfers other banks send us, and the ones our customers send.

Incoming (`receive`, from the house through our inbound endpoint):
- A pacs.008 to one of our accounts is credited (debit our reserve at the central bank, credit
  the customer) if the account exists, is a demand account in that currency, is not closed,
  frozen or suspended, and the creditor name is the holder's (spaces do not count). Otherwise
  it is rejected, RJCT with the ISO reason (AC01, AC04, AC06, BE01, AG01, AM02, AM03, AGNT).
  We reject rather than return: our answer is synchronous, before the house settles, so a
  rejected transfer never settles and the money never leaves the sending bank; a pacs.004
  return is for money that did settle. A transfer is decided once per (sending bank,
  end-to-end id): a repeated delivery gets the first answer and never a second credit, and
  the same id with other contents is RJCT AM05.
- A pacs.004 returning one of our outgoing transfers gives the payer their money back.

Outgoing (`send_pending`, `resolve_unknown`, run by the worker): a payment the payments service
debited to the clearing account (status `sending`) goes out as a pacs.008 whose ids derive from
its reference. ACSC settles it, RJCT returns it to the payer, ACSP/PDNG is asked about later,
and an unknown outcome (timeout, reset, 5xx) marks it unknown. Unknown and pending transfers
are resolved by status queries on a backoff schedule (`BACKOFF`), never guessed: "not known
here" means the house never received it, so the same pacs.008 (same ids) goes again, which
is safe because the house de-duplicates.

Every message in and out is in `clearing_messages`, appended in the same transaction as what
it caused. HTTP happens outside the writer: a transfer is recorded as sent before it is posted,
so a worker that dies mid-send leaves a transfer that the status queries pick up (`SEND_GRACE`).
"""

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, select, update

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount, Product
from ebank.clearing.client import Answer, ClearingClient, MessageRefused, OutcomeUnknown
from ebank.clearing.messages import (
    REJECTED,
    SETTLED,
    CreditTransfer,
    Header,
    Message,
    PaymentReturn,
    StatusReport,
    StatusRequest,
    invalid,
    parse,
)
from ebank.clearing.tables import clearing_inbound, clearing_messages, clearing_outgoing
from ebank.core import audit, outbox
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.core.settings import Settings
from ebank.core.writer import Command, Tx, Writer
from ebank.customers import service as customers
from ebank.customers.identity import same_name
from ebank.ledger import service as ledger
from ebank.ledger.models import reference
from ebank.notify import notices
from ebank.payments import service as payments
from ebank.payments.tables import payments as payments_table
from ebank.risk import service as risk
from ebank.risk.models import Context as RiskContext
from ebank.risk.models import payee_key

log = logging.getLogger(__name__)

ACTOR = "clearing"
CHANNEL = "clearing"
# When to ask the house about an unknown or pending transfer: after each delay in turn, counted
# from the previous question, then hourly for as long as it takes.
BACKOFF: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(seconds=15),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
)
# A transfer recorded as sent whose outcome was not recorded within this long: the worker that
# sent it died mid-send, and status queries take over. Far above the client's timeout.
SEND_GRACE = timedelta(minutes=2)
REFUSED = "FF01"  # the house refused our message itself: nothing was applied
BATCH = 100
# A ledger refusal of an incoming credit, as the ISO reason the sending bank gets.
_LEDGER_REASONS = {"BALANCE_CEILING": "AM02"}


# -- the message log -----------------------------------------------------------------------------
def _log(tx: Tx, direction: str, message: Message, xml: str, row_id: int | None = None) -> None:
    """Append a message as it went over the wire."""
    status = message.status if isinstance(message, StatusReport) else None
    reason = message.reason if isinstance(message, StatusReport | PaymentReturn) else None
    header = message.header
    tx.conn.execute(
        clearing_messages.insert().values(
            id=tx.new_id("clearing_messages") if row_id is None else row_id,
            direction=direction, kind=message.kind, msg_id=header.msg_id,
            end_to_end_id=message.end_to_end_id,
            counterpart=header.sender if direction == "in" else header.receiver,
            status=status, reason=reason, xml=xml, at=tx.now,
        )
    )  # fmt: skip


def _header(tx: Tx, bank_code: str, receiver: str) -> tuple[int, Header]:
    """A header for a message of ours, its id made from the log row it will be."""
    row_id = tx.new_id("clearing_messages")
    msg_id = f"{bank_code}{tx.business_day:%Y%m%d}{row_id:010d}"
    return row_id, Header(msg_id, tx.now, bank_code, receiver)


def _send_out(tx: Tx, bank_code: str, receiver: str, make: Callable[[Header], Message]) -> bytes:
    """Build a message of ours, log it, and return its bytes."""
    row_id, header = _header(tx, bank_code, receiver)
    message = make(header)
    xml = message.to_xml()
    _log(tx, "out", message, xml.decode(), row_id)
    return xml


# -- incoming ------------------------------------------------------------------------------------
def receive(vault: Vault, message: Message, xml: str, *, bank_code: str) -> Command[bytes]:
    """Take a message the house delivered to us; the pacs.002 that answers it.

    A credit transfer to one of our customers is credited or rejected; a payment return gives
    one of our outgoing transfers back to its payer. Other messages are not taken here.
    """
    if not isinstance(message, CreditTransfer | PaymentReturn):
        raise invalid("only pacs.008 and pacs.004 are delivered to a bank")
    if message.header.receiver != bank_code:
        raise invalid("InstdAgt is not this bank")

    def run(tx: Tx) -> bytes:
        _log(tx, "in", message, xml)
        if isinstance(message, CreditTransfer):
            status, reason = _credit(tx, vault, message, bank_code)
        else:
            status, reason = _returned(tx, vault, message)
        sender = message.header.sender
        return _send_out(
            tx, bank_code, sender,
            lambda header: StatusReport(
                header, message.header.msg_id, message.kind, message.end_to_end_id, status,
                reason,
            ),
        )  # fmt: skip

    return Command(run)


def _fingerprint(t: CreditTransfer) -> str:
    """What a repeated delivery must repeat exactly (not the message id or time)."""
    content = (
        t.amount, t.currency, t.debtor_agent, t.debtor_account, t.debtor_name,
        t.creditor_agent, t.creditor_account, t.creditor_name, t.remittance,
    )  # fmt: skip
    return hashlib.sha256(repr(content).encode()).hexdigest()


def _refusal(
    conn: Connection, t: CreditTransfer, bank_code: str
) -> tuple[str | None, CustomerAccount | None]:
    """Why we cannot credit it (an ISO reason), or None and the account to credit."""
    if t.creditor_agent != bank_code:
        return "AGNT", None
    try:
        account = accounts.get_account(conn, number=t.creditor_account)
    except EbankError:
        return "AC01", None
    if account.product != Product.DEMAND:
        return "AG01", account
    if account.currency != t.currency:
        return "AM03", account
    if account.status == "closed":
        return "AC04", account
    if account.status in ("frozen", "suspended"):
        return "AC06", account
    if not same_name(customers.holder(conn, account.customer_id).name, t.creditor_name):
        return "BE01", account
    return None, account


def _credit(tx: Tx, vault: Vault, t: CreditTransfer, bank_code: str) -> tuple[str, str | None]:
    sender = t.header.sender
    i = clearing_inbound
    first = tx.conn.execute(
        select(i.c.fingerprint, i.c.status, i.c.reason).where(
            i.c.sender_bank == sender, i.c.end_to_end_id == t.end_to_end_id
        )
    ).first()
    if first is not None:
        if first.fingerprint != _fingerprint(t):
            return REJECTED, "AM05"
        return first.status, first.reason
    reason, account = _refusal(tx.conn, t, bank_code)
    entry_id = None
    if account is not None and reason is None:
        try:
            entry_id = ledger.transfer(
                tx, debit=ledger.account_id_of(tx, payments.CENTRAL_BANK),
                credit=account.ledger_account_id, amount=t.amount, kind="clearing_in",
                memo=f"{t.debtor_name}: {t.remittance}" if t.remittance else t.debtor_name,
            ).id  # fmt: skip
        except EbankError as error:
            # The ledger checks before it changes anything, so a refusal left nothing behind.
            reason = _LEDGER_REASONS.get(error.code)
            if reason is None:
                raise
    status = REJECTED if entry_id is None else SETTLED
    tx.conn.execute(
        i.insert().values(
            sender_bank=sender, end_to_end_id=t.end_to_end_id, fingerprint=_fingerprint(t),
            status=status, reason=reason, account_id=None if account is None else account.id,
            amount=t.amount, currency=t.currency, entry_id=entry_id, at=tx.now,
        )
    )  # fmt: skip
    amount = format_minor(t.amount, t.currency)
    audit.record(
        tx, actor=ACTOR, action="clearing.credit", subject=f"account:{t.creditor_account}",
        channel=CHANNEL, outcome="ok" if entry_id else "rejected",
        detail={"sender_bank": sender, "end_to_end_id": t.end_to_end_id, "amount": amount,
                "currency": t.currency, "reason": reason},
    )  # fmt: skip
    if account is not None and entry_id is not None:
        outbox.emit(
            tx, "clearing.credited", t.end_to_end_id,
            {"account_id": account.id, "customer_id": account.customer_id, "amount": t.amount,
             "currency": t.currency, "entry_id": entry_id, "sender_bank": sender},
        )  # fmt: skip
        notices.account_movement(
            tx, vault, customer_id=account.customer_id, account_number=account.number,
            amount=t.amount, direction="in",
            balance=ledger.balance_in(tx, account.ledger_account_id),
            memo=t.remittance or t.debtor_name, at=tx.now,
        )  # fmt: skip
        # Money in from another bank is what a mule account receives before it pays out:
        # risk control counts it (it is not scored: the sender's bank screened it).
        risk.observe(
            tx,
            RiskContext(
                event="payment", customer_id=None, channel="clearing", amount=t.amount,
                payee=payee_key(ledger_account_id=account.ledger_account_id),
                payee_account_id=account.ledger_account_id,
            ),
        )  # fmt: skip
    return status, reason


def _returned(tx: Tx, vault: Vault, r: PaymentReturn) -> tuple[str, str | None]:
    """A pacs.004 for one of our outgoing transfers: the money goes back to the payer."""
    o = clearing_outgoing
    found = (
        tx.conn.execute(
            select(o.c.payment_id, o.c.creditor_agent, payments_table.c.amount,
                   payments_table.c.currency, payments_table.c.status)
            .join(payments_table, payments_table.c.id == o.c.payment_id)
            .where(o.c.end_to_end_id == r.end_to_end_id)
        ).first()
    )  # fmt: skip
    if found is None or found.creditor_agent != r.header.sender:
        return REJECTED, "NOOR"
    if (found.amount, found.currency) != (r.amount, r.currency):
        return REJECTED, "AM09"
    if found.status != "returned":
        payments.return_outgoing(tx, vault, found.payment_id, reason=r.reason)
        tx.conn.execute(update(o).where(o.c.payment_id == found.payment_id).values(
            next_query_at=None))  # fmt: skip
        audit.record(
            tx, actor=ACTOR, action="clearing.return", subject=f"payment:{found.payment_id}",
            channel=CHANNEL, detail={"sender_bank": r.header.sender, "reason": r.reason,
                                     "end_to_end_id": r.end_to_end_id},
        )  # fmt: skip
    return SETTLED, None


# -- outgoing ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Outgoing:
    payment_id: int
    end_to_end_id: str
    xml: bytes  # the message to post


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What came back from the house: an answer, a refusal of the message, or neither."""

    answer: Answer | None = None
    refused: bool = False


def _exchange(post: Callable[[], Answer]) -> _Outcome:
    try:
        return _Outcome(post())
    except MessageRefused as exc:
        log.warning("the clearing house refused a message: %s", exc)
        return _Outcome(refused=True)
    except OutcomeUnknown as exc:
        log.warning("clearing outcome unknown: %s", exc)
        return _Outcome()


def _after(queries: int) -> timedelta:
    """How long after a question the next one is due, `queries` having been asked."""
    return BACKOFF[min(queries, len(BACKOFF) - 1)]


def _prepare(vault: Vault, payment_id: int, bank_code: str) -> Command[_Outgoing | None]:
    """Record a due payment's pacs.008 as sent (None if another worker took it first)."""

    def run(tx: Tx) -> _Outgoing | None:
        p = payments_table
        row = tx.conn.execute(select(p).where(p.c.id == payment_id).with_for_update()).first()
        taken = tx.conn.execute(
            select(clearing_outgoing.c.payment_id).where(
                clearing_outgoing.c.payment_id == payment_id
            )
        ).first()
        if row is None or row.kind != "interbank" or row.status != "sending" or taken:
            return None
        ref = reference("P", payment_id, as_utc(row.created_at))
        payer = accounts.account_by_id(tx.conn, row.from_account_id)
        try:
            transfer = CreditTransfer(
                header=Header(f"{bank_code}{ref}", tx.now, bank_code, row.payee_bank),
                instr_id=ref, end_to_end_id=ref, tx_id=ref, amount=row.amount,
                currency=row.currency, debtor_name=customers.holder(tx.conn, row.customer_id).name,
                debtor_account=payer.number, debtor_agent=bank_code,
                creditor_agent=row.payee_bank, creditor_name=row.payee_name,
                creditor_account=vault.decrypt(row.payee_account_sealed,
                                               purpose=payments.PAYEE_PURPOSE),
                remittance=row.memo,
            )  # fmt: skip
        except EbankError as error:  # what the scheme cannot carry goes back to the payer
            log.warning("payment %s cannot go out as a pacs.008: %s", payment_id, error)
            _apply(tx, vault, payment_id, REJECTED, REFUSED)
            return None
        xml = transfer.to_xml()
        tx.conn.execute(
            clearing_outgoing.insert().values(
                payment_id=payment_id, end_to_end_id=ref, msg_id=transfer.header.msg_id,
                creditor_agent=row.payee_bank, queries=0, next_query_at=tx.now + SEND_GRACE,
                sent_at=tx.now,
            )
        )  # fmt: skip
        _log(tx, "out", transfer, xml.decode())
        return _Outgoing(payment_id, ref, xml)

    return Command(run)


def _apply(tx: Tx, vault: Vault, payment_id: int, status: str | None, reason: str | None) -> None:
    """Act on what the house said of a payment: settle it (ACSC), return it (RJCT), mark it
    unknown (None: no answer); pending changes nothing. What was done already is not redone."""
    current = tx.conn.execute(
        select(payments_table.c.status).where(payments_table.c.id == payment_id)
    ).scalar_one()
    in_flight, acted = current in ("sending", "unknown"), True
    if status == SETTLED and in_flight:
        payments.settle_outgoing(tx, vault, payment_id)
    elif status == REJECTED and in_flight:
        assert reason is not None  # a rejection always carries its reason
        payments.return_outgoing(tx, vault, payment_id, reason=reason)
    elif status is None and current == "sending":
        payments.mark_unknown(tx, payment_id)
    else:
        acted = False
    if status in (SETTLED, REJECTED) or not (in_flight or acted):  # nothing left to ask
        tx.conn.execute(
            update(clearing_outgoing).where(clearing_outgoing.c.payment_id == payment_id)
            .values(next_query_at=None)
        )  # fmt: skip
    if not acted:
        if status == REJECTED and current == "completed":
            log.error("payment %s settled, but the house now says RJCT %s", payment_id, reason)
        return
    audit.record(
        tx, actor=ACTOR, action="clearing.outcome", subject=f"payment:{payment_id}",
        channel=CHANNEL, outcome={SETTLED: "ok", REJECTED: "rejected"}.get(status, "unknown"),
        detail={"status": status, "reason": reason},
    )  # fmt: skip


def _conclude(vault: Vault, payment_id: int, outcome: _Outcome, *, first: bool) -> Command[None]:
    """Log the house's answer and act on it. After the first sending, a transfer that is not
    final is asked about after the first delay; later, the claim has scheduled it already."""

    def run(tx: Tx) -> None:
        answer = outcome.answer
        if answer is not None:
            _log(tx, "in", answer.report, answer.xml)
        if outcome.refused:
            status, reason = REJECTED, REFUSED
        elif answer is not None:
            status, reason = answer.report.status, answer.report.reason
        else:
            status, reason = None, None
        _apply(tx, vault, payment_id, status, reason)
        if first and status not in (SETTLED, REJECTED):
            tx.conn.execute(
                update(clearing_outgoing).where(clearing_outgoing.c.payment_id == payment_id)
                .values(next_query_at=tx.now + _after(0))
            )  # fmt: skip

    return Command(run)


def send_pending(
    writer: Writer, client: ClearingClient, vault: Vault, *, limit: int = BATCH
) -> int:
    """Send the inter-bank payments debited and not yet sent; how many went out."""
    o, p = clearing_outgoing, payments_table
    with writer.engine.connect() as conn:
        due: Sequence[int] = conn.execute(
            select(p.c.id).outerjoin(o, o.c.payment_id == p.c.id)
            .where(p.c.kind == "interbank", p.c.status == "sending", o.c.payment_id.is_(None))
            .order_by(p.c.id).limit(limit)
        ).scalars().all()  # fmt: skip
    sent = 0
    for payment_id in due:
        out = writer.execute(_prepare(vault, payment_id, client.bank_code))
        if out is None:
            continue
        outcome = _exchange(lambda o=out: client.send(o.xml, end_to_end_id=o.end_to_end_id))
        writer.execute(_conclude(vault, payment_id, outcome, first=True))
        sent += 1
    return sent


@dataclass(frozen=True, slots=True)
class _Query:
    payment_id: int
    end_to_end_id: str
    xml: bytes  # the pacs.028


def _claim_due(bank_code: str, limit: int) -> Command[list[_Query]]:
    """Take the transfers due a status query, schedule each one's next, and log the queries.
    Racing workers never ask about the same transfer twice at once (PostgreSQL skips rows
    another has locked; SQLite's writer is alone)."""

    def run(tx: Tx) -> list[_Query]:
        o = clearing_outgoing
        rows = tx.conn.execute(
            select(o).where(o.c.next_query_at <= tx.now).order_by(o.c.next_query_at)
            .limit(limit).with_for_update(skip_locked=True)
        ).all()  # fmt: skip
        claimed = []
        for row in rows:
            tx.conn.execute(
                update(o).where(o.c.payment_id == row.payment_id).values(
                    queries=row.queries + 1, next_query_at=tx.now + _after(row.queries + 1))
            )  # fmt: skip
            xml = _send_out(
                tx, bank_code, row.creditor_agent,
                lambda h, r=row: StatusRequest(h, r.msg_id, r.end_to_end_id),
            )  # fmt: skip
            claimed.append(_Query(row.payment_id, row.end_to_end_id, xml))
        return claimed

    return Command(run)


def _resend(not_known: Answer) -> Command[bytes]:
    """Log the house's "not known here", and the same pacs.008 going again; its bytes."""

    def run(tx: Tx) -> bytes:
        _log(tx, "in", not_known.report, not_known.xml)
        m = clearing_messages
        xml = tx.conn.execute(
            select(m.c.xml).where(
                m.c.direction == "out", m.c.kind == CreditTransfer.kind,
                m.c.end_to_end_id == not_known.report.end_to_end_id,
            ).order_by(m.c.id).limit(1)
        ).scalar_one()  # fmt: skip
        _log(tx, "out", parse(xml.encode()), xml)
        return xml.encode()  # type: ignore[no-any-return]

    return Command(run)


def resolve_unknown(
    writer: Writer, client: ClearingClient, vault: Vault, *, limit: int = BATCH
) -> int:
    """Ask the house about the transfers whose outcome is unknown or pending and due a query;
    act on what it says. How many were asked about."""
    claimed = writer.execute(_claim_due(client.bank_code, limit))
    for q in claimed:
        outcome = _exchange(lambda q=q: client.query(q.xml, end_to_end_id=q.end_to_end_id))
        answer = outcome.answer
        if answer is not None and not answer.report.known:
            again = writer.execute(_resend(answer))
            outcome = _exchange(lambda x=again, q=q: client.send(x, end_to_end_id=q.end_to_end_id))
        writer.execute(_conclude(vault, q.payment_id, outcome, first=False))
    return len(claimed)


def run_loop(
    writer: Writer, client: ClearingClient, vault: Vault, stop: threading.Event,
    poll_seconds: float = 1.0,
) -> None:  # fmt: skip
    """Send and resolve until `stop` is set (a background thread's body). A failing round is
    logged and tried again."""
    while not stop.is_set():
        try:
            busy = send_pending(writer, client, vault) >= BATCH
            busy = resolve_unknown(writer, client, vault) >= BATCH or busy
        except Exception:
            log.exception("clearing round failed")
            busy = False
        if not busy:
            stop.wait(poll_seconds)


def start(writer: Writer, vault: Vault, settings: Settings) -> Callable[[], None] | None:
    """Run the loop on a background thread (the worker's) when a clearing house is configured
    (None otherwise); returns `stop`, which ends it after its current round."""
    if not settings.clearing_url:
        return None
    client = ClearingClient.from_settings(settings, clock=writer.clock)
    stop = threading.Event()
    thread = threading.Thread(
        target=run_loop, args=(writer, client, vault, stop), name="ebank-clearing", daemon=True
    )
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join()
        client.close()

    return halt
