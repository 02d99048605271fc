"""Issuing cards, reporting them lost, the staff actions on them, and the check a payment makes.

A debit card draws on one of its holder's demand accounts; a credit card gets a ledger account
of its own whose credit line is the card's limit. Card numbers are sealed like identity
numbers: the full number is shown once, when the card is issued, and masked everywhere after.
Reporting a card lost is the customer's own act on any channel and takes effect at once;
freezing, unfreezing and closing are staff actions under maker-checker.

A bank caps what one person may lend: the member of staff at the counter alone grants a credit
card while the customer's credit lines on all their cards not closed, the new one included, stay
within a bank parameter; above it the line is proposed (`propose_credit_card`) and the card is
issued when a second member of staff approves. The cap counts the customer's total, not one
card's line: five cards of ¥40,000 are ¥200,000 lent to one person.
"""

import calendar
import secrets
import unicodedata
from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from ebank.accounts import service as accounts
from ebank.accounts.service import luhn_digit, luhn_valid
from ebank.cards.models import Card, CardStatus, IssuedCard
from ebank.cards.tables import card_events, cards
from ebank.core import audit, outbox
from ebank.core.clock import business_date
from ebank.core.crypto import Vault, mask_card
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR, format_minor
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.ledger import service as ledger
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.ops import approvals, parameters

NUMBER_PURPOSE = "cards.number"
# Where a holder can stop their card: every channel, at any hour.
CUSTOMER_CHANNELS = ("online", "mobile", "phone", "sms", "counter", "atm")
VALIDITY_YEARS = 5
CREDIT_LINE_ALONE = parameters.define(
    "cards.credit_line.alone_max", 50_000 * 100,  # ¥50,000
    "credit cards: the most one member of staff lends a customer alone (the credit lines of "
    "all their cards not closed, the new one included)",
)  # fmt: skip
CREDIT_ACTION = "card.issue.credit"  # a line above it, under maker-checker

# Which status a card may move to from which (挂失 is final: a replacement card follows).
_TRANSITIONS = {
    CardStatus.ACTIVE: {CardStatus.REPORTED_LOST, CardStatus.FROZEN, CardStatus.CLOSED},
    CardStatus.FROZEN: {CardStatus.ACTIVE, CardStatus.REPORTED_LOST, CardStatus.CLOSED},
    CardStatus.REPORTED_LOST: {CardStatus.CLOSED},
    CardStatus.CLOSED: set(),
}
_REFUSALS = {
    CardStatus.REPORTED_LOST: "CARD_REPORTED_LOST",
    CardStatus.FROZEN: "CARD_FROZEN",
    CardStatus.CLOSED: "CARD_CLOSED",
}


def card_number(bin_: str, sequence: int) -> str:
    """16 digits: the BIN, a 9-digit sequence, a Luhn check digit."""
    payload = f"{bin_}{sequence:09d}"
    return payload + luhn_digit(payload)


def _free_number(tx: Tx, vault: Vault, bin_: str) -> str:
    """A card number no one can work out from what the bank shows: its middle is drawn at
    random. A card's id is in the APIs and on the console, so a number made from the id
    would undo the masking everywhere."""
    for _ in range(8):
        number = card_number(bin_, secrets.randbelow(10**9))
        hashed = vault.lookup_hash(number, purpose=NUMBER_PURPOSE)
        if tx.conn.execute(select(cards.c.id).where(cards.c.number_hash == hashed)).first() is None:
            return number
    raise RuntimeError(f"no free card number under BIN {bin_} in 8 draws")


def _expiry(issued: date) -> date:
    year = issued.year + VALIDITY_YEARS
    return date(year, issued.month, calendar.monthrange(year, issued.month)[1])


def _issue(
    tx: Tx,
    vault: Vault,
    *,
    card_id: int,
    kind: str,
    customer_id: int,
    ledger_account_id: int,
    actor: str,
    channel: str,
) -> IssuedCard:
    settings = get_settings()
    number = _free_number(
        tx, vault, settings.debit_card_bin if kind == "debit" else settings.credit_card_bin
    )
    row = {
        "id": card_id,
        "customer_id": customer_id,
        "kind": kind,
        "ledger_account_id": ledger_account_id,
        "number_sealed": vault.encrypt(number, purpose=NUMBER_PURPOSE),
        "number_hash": vault.lookup_hash(number, purpose=NUMBER_PURPOSE),
        "masked": mask_card(number),
        "expires": _expiry(business_date(tx.now)),
        "status": CardStatus.ACTIVE.value,
        "issued_at": tx.now,
    }
    tx.conn.execute(cards.insert().values(row))
    _event(tx, card_id, CardStatus.ACTIVE, actor, channel)
    audit.record(
        tx,
        actor=actor,
        action=f"card.issue.{kind}",
        subject=f"card:{card_id}",
        channel=channel,
        detail={"customer": customer_id, "card": row["masked"]},
    )
    return IssuedCard(_view(row), number)


def issue_debit_card(
    vault: Vault, *, customer_id: int, account_number: str, actor: str, channel: str = "counter"
) -> Command[IssuedCard]:
    """A debit card on one of the customer's own active demand accounts."""

    def run(tx: Tx) -> IssuedCard:
        customers.holder(tx.conn, customer_id)
        account = accounts.get_account(tx.conn, number=account_number)
        if account.customer_id != customer_id:
            raise EbankError("ACCOUNT_NOT_FOUND")  # someone else's: as if it did not exist
        if account.product != "demand" or account.status != "active":
            raise EbankError("INVALID_INPUT", reason="a debit card needs an active demand account")
        return _issue(
            tx,
            vault,
            card_id=tx.new_id("cards"),
            kind="debit",
            customer_id=customer_id,
            ledger_account_id=account.ledger_account_id,
            actor=actor,
            channel=channel,
        )

    return Command(run)


def _applicant(tx: Tx, customer_id: object, credit_line: object) -> str:
    """The customer's name, if a credit card with this line may be made for them. The
    customer's row is held to the end of the transaction: a card issued at the counter and one
    approved at the same moment are counted one after the other against the cap."""
    name: str = customers.holder(tx.conn, customer_id, lock=True).name
    if type(credit_line) is not int or not 0 < credit_line <= MAX_MINOR:
        raise EbankError("INVALID_INPUT", reason="a credit line is a positive amount in fen")
    return name


def _credit_card(
    tx: Tx, vault: Vault, *, name: str, customer_id: int, credit_line: int, actor: str,
    channel: str,
) -> IssuedCard:  # fmt: skip
    card_id = tx.new_id("cards")
    # The card's account is named by the card's id: its number is sealed, never a code.
    card_account = ledger.open_account(
        tx, code=f"CC{card_id:012d}", name=name, currency="CNY", credit_line=credit_line
    )
    return _issue(
        tx,
        vault,
        card_id=card_id,
        kind="credit",
        customer_id=customer_id,
        ledger_account_id=card_account.id,
        actor=actor,
        channel=channel,
    )


def credit_line_alone(conn: Connection) -> int:
    """The most (fen) one member of staff lends a customer alone: the bank's parameter."""
    return parameters.values(conn, CREDIT_LINE_ALONE.name)[CREDIT_LINE_ALONE.name]


def credit_granted(conn: Connection, customer_id: int) -> int:
    """What the bank lends a customer on cards now (fen): the credit lines of their credit cards
    not closed. A frozen or lost card's line counts: its account can still be in debt."""
    query = (
        select(func.coalesce(func.sum(ledger_accounts.c.credit_line), 0))
        .select_from(cards.join(ledger_accounts, ledger_accounts.c.id == cards.c.ledger_account_id))
        .where(
            cards.c.customer_id == customer_id,
            cards.c.kind == "credit",
            cards.c.status != CardStatus.CLOSED.value,
        )
    )
    return int(conn.execute(query).scalar_one())


def _check_alone(conn: Connection, customer_id: int, credit_line: int) -> None:
    """CREDIT_LINE_NEEDS_APPROVAL if the customer's credit lines with this one came to more
    than one member of staff lends alone: the one place that decides."""
    alone = credit_line_alone(conn)
    granted = credit_granted(conn, customer_id)
    if granted + credit_line > alone:
        raise EbankError(
            "CREDIT_LINE_NEEDS_APPROVAL", cap=format_minor(alone), granted=format_minor(granted)
        )


def issue_credit_card(
    vault: Vault, *, customer_id: int, credit_line: int, actor: str, channel: str = "counter"
) -> Command[IssuedCard]:
    """A credit card with its own ledger account, whose credit line is the card's limit. If the
    customer's credit lines with this one come to more than one person lends alone, it is
    CREDIT_LINE_NEEDS_APPROVAL (`propose_credit_card`)."""

    def run(tx: Tx) -> IssuedCard:
        name = _applicant(tx, customer_id, credit_line)
        _check_alone(tx.conn, customer_id, credit_line)
        return _credit_card(
            tx, vault, name=name, customer_id=customer_id, credit_line=credit_line, actor=actor,
            channel=channel,
        )  # fmt: skip

    return Command(run)


def propose_credit_card(
    *, customer_id: int, credit_line: int, reason: str, maker: str, channel: str = "console"
) -> Command[int]:
    """Ask for a credit card (checked now, issued when another member of staff approves it);
    the request's id. Any valid line may be proposed, and the approved card is issued whatever
    the customer already holds: the checker, not the cap, decides."""
    params = {"customer": customer_id, "credit_line": credit_line}
    return approvals.propose(CREDIT_ACTION, params, reason=reason, maker=maker, channel=channel)


def _event(tx: Tx, card_id: int, status: CardStatus, actor: str, channel: str) -> None:
    tx.conn.execute(
        card_events.insert().values(
            card_id=card_id, status=status.value, actor=actor, channel=channel, at=tx.now
        )
    )


def _move(tx: Tx, card: Any, to: CardStatus, actor: str, channel: str) -> Card:
    current = CardStatus(card["status"])
    if to not in _TRANSITIONS[current]:
        raise EbankError("INVALID_STATUS_CHANGE", from_status=current.value, to_status=to.value)
    tx.conn.execute(cards.update().where(cards.c.id == card["id"]).values(status=to.value))
    _event(tx, card["id"], to, actor, channel)
    audit.record(
        tx,
        actor=actor,
        action=f"card.{to.value}",
        subject=f"card:{card['id']}",
        channel=channel,
        detail={"card": card["masked"], "from": current.value},
    )
    return _view({**card, "status": to.value})


def report_lost(
    vault: Vault, *, customer_id: int, card_number: str | None = None, card_id: int | None = None,
    channel: str, actor: str | None = None,
) -> Command[Card]:  # fmt: skip
    """挂失: the holder stops their card at once, from any channel, at any hour.

    The card is named by its number (typed on the phone or at an ATM) or by its id (picked
    from the holder's own list in the app). Reporting a card that is already reported lost
    answers as before, so a customer who repeats themselves (or a retried SMS) is not told off.
    """

    def run(tx: Tx) -> Card:
        if channel not in CUSTOMER_CHANNELS:
            raise EbankError("INVALID_INPUT", reason=f"a channel is one of {CUSTOMER_CHANNELS}")
        if card_id is None:
            card = _holders_card(tx.conn, vault, customer_id, card_number)
        else:
            query = select(cards).where(cards.c.id == card_id)
            card = tx.conn.execute(query).mappings().first()
            if card is None or card["customer_id"] != customer_id:
                raise EbankError("CARD_NOT_FOUND")  # someone else's is as unknown as none
        if card["status"] == CardStatus.REPORTED_LOST:
            return _view(card)
        done = _move(
            tx, card, CardStatus.REPORTED_LOST, actor or f"customer:{customer_id}", channel
        )
        outbox.emit(
            tx,
            "card.reported_lost",
            f"card:{card['id']}",
            {"customer": customer_id, "card": card["masked"], "channel": channel},
        )
        return done

    return Command(run)


def _card_row(conn: Connection, vault: Vault, number: object) -> Any:
    """The card a customer typed, found by its keyed hash; None if the bank has no such card.

    Typed numbers are NFKC-normalised (a phone keyboard may give full-width digits) and may
    hold spaces; what is left must be 16-19 ASCII digits passing Luhn.
    """
    if not isinstance(number, str):
        raise EbankError("INVALID_INPUT", reason="a card number is 16-19 digits passing Luhn")
    digits_only = unicodedata.normalize("NFKC", number).replace(" ", "")
    if not 16 <= len(digits_only) <= 19 or not luhn_valid(digits_only):
        raise EbankError("INVALID_INPUT", reason="a card number is 16-19 digits passing Luhn")
    digest = vault.lookup_hash(digits_only, purpose=NUMBER_PURPOSE)
    return conn.execute(select(cards).where(cards.c.number_hash == digest)).mappings().first()


def _holders_card(conn: Connection, vault: Vault, customer_id: int, number: str) -> Any:
    card = _card_row(conn, vault, number)
    if card is None or card["customer_id"] != customer_id:
        raise EbankError("CARD_NOT_FOUND")  # someone else's card is as unknown as no card
    return card


def find_card(conn: Connection, vault: Vault, card_number: str) -> Card | None:
    """The card with this number, whatever its status; None if the bank has no such card."""
    row = _card_row(conn, vault, card_number)
    return None if row is None else _view(row)


def check_usable(card: Card, *, today: date) -> Card:
    """The card, if it may pay: active and not expired; else the error that says why not."""
    refusal = _REFUSALS.get(CardStatus(card.status))
    if refusal:
        raise EbankError(refusal)
    if card.expires < today:
        raise EbankError("CARD_EXPIRED")
    return card


def usable(conn: Connection, vault: Vault, card_number: str, *, today: date) -> Card:
    """The card a payment names, if it may pay; else why not."""
    card = find_card(conn, vault, card_number)
    if card is None:
        raise EbankError("CARD_NOT_FOUND")
    return check_usable(card, today=today)


def _view(row: Any) -> Card:
    return Card(
        row["id"],
        row["customer_id"],
        row["kind"],
        row["masked"],
        row["ledger_account_id"],
        row["expires"],
        row["status"],
    )


def cards_of(conn: Connection, customer_id: int) -> list[Card]:
    rows = conn.execute(
        select(cards).where(cards.c.customer_id == customer_id).order_by(cards.c.id)
    ).mappings()
    return [_view(row) for row in rows]


def get_card(conn: Connection, card_id: int, *, customer_id: int | None = None) -> Card:
    """A card by id; given `customer_id`, only that customer's (someone else's answers
    CARD_NOT_FOUND, as none does)."""
    row = conn.execute(_BY_ID, {"card_id": card_id}).mappings().first()
    if row is None or customer_id not in (None, row["customer_id"]):
        raise EbankError("CARD_NOT_FOUND")
    return _view(row)


_BY_ID = select(cards).where(cards.c.id == bindparam("card_id"))  # every card payment's


# -- staff actions under maker-checker: params name the card by id, never by number -----------
def _subject(tx: Tx, params: dict[str, Any]) -> str:
    if set(params) != {"card"} or type(params["card"]) is not int:
        raise EbankError("INVALID_INPUT", reason="a card action names one card by its id")
    return f"card:{get_card(tx.conn, params['card']).id}"


def _staff_move(to: CardStatus) -> approvals.Handler:
    def run(tx: Tx, params: dict[str, Any], checker: str) -> str:
        card = tx.conn.execute(select(cards).where(cards.c.id == params["card"])).mappings().one()
        return _move(tx, card, to, checker, "console").status

    return run


for _action, _status in (
    ("card.freeze", CardStatus.FROZEN),
    ("card.unfreeze", CardStatus.ACTIVE),
    ("card.close", CardStatus.CLOSED),
):
    approvals.register(_action, _staff_move(_status), subject=_subject)


# -- a credit line above what one person grants alone: params name the customer by id ---------
def _credit_proposed(tx: Tx, params: dict[str, Any]) -> str:
    if set(params) != {"customer", "credit_line"}:
        raise EbankError(
            "INVALID_INPUT", reason="a credit card names a customer by id and a line in fen"
        )
    _applicant(tx, params["customer"], params["credit_line"])
    return f"customer:{params['customer']}"


def _credit_approved(tx: Tx, params: dict[str, Any], checker: str, vault: Vault) -> Card:
    """The card, issued in the checker's name and without the cap (the checker weighed the
    customer's other lines): masked, as no customer stands at this counter to be told its full
    number."""
    customer_id, line = params["customer"], params["credit_line"]
    name = _applicant(tx, customer_id, line)
    issued = _credit_card(tx, vault, name=name, customer_id=customer_id, credit_line=line,
                          actor=checker, channel="console")  # fmt: skip
    return issued.card


approvals.register_sealing(CREDIT_ACTION, _credit_approved, subject=_credit_proposed)
