"""E-banking enrolment (签约): a customer is enrolled per channel with agreed limits.

At the counter, staff enrol a customer whose identity they checked; the agreed limits may go up
to the bank's maximum for the channel. Online, a customer enrols themselves with their card
number, the card's PIN and an SMS code sent to the mobile number the bank holds; that proves
less, so a self-enrolment gets the low-assurance limits only, until the customer enrols again
at a counter. The customer may lower an agreed limit at any time; raising one needs their token.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from ebank.cards import service as cards
from ebank.core import audit
from ebank.core.channels import E_CHANNELS, NAMES_ZH
from ebank.core.clock import as_utc, business_date
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.enrolment.tables import channel_enrolments
from ebank.limits import parameters
from ebank.risk import service as risk
from ebank.risk.models import BANK_RUN, Origin
from ebank.risk.models import Context as RiskContext
from ebank.security import service as security
from ebank.security.service import Checked, CodeIssued, Verdict

SELF_ENROLMENT_PURPOSE = "self_enrolment"


@dataclass(frozen=True, slots=True)
class Enrolment:
    id: int
    customer_id: int
    channel: str
    assurance: str  # counter | self
    daily_limit: int
    per_payment_limit: int
    enrolled_at: datetime


def _view(row: Any) -> Enrolment:
    return Enrolment(
        row["id"], row["customer_id"], row["channel"], row["assurance"], row["daily_limit"],
        row["per_payment_limit"], as_utc(row["enrolled_at"]),
    )  # fmt: skip


def _channel(channel: object) -> str:
    if channel not in E_CHANNELS:
        raise EbankError("INVALID_INPUT", reason=f"a channel is one of {E_CHANNELS}")
    return str(channel)


def _live(conn: Connection, customer_id: int, channel: str) -> Any:
    return conn.execute(_LIVE, {"customer_id": customer_id, "channel": channel}).mappings().first()


# Built once: every payment asks.
_LIVE = select(channel_enrolments).where(
    channel_enrolments.c.customer_id == bindparam("customer_id"),
    channel_enrolments.c.channel == bindparam("channel"),
    channel_enrolments.c.cancelled_at.is_(None),
)


def enrolment_of(conn: Connection, customer_id: int, channel: str) -> Enrolment | None:
    row = _live(conn, customer_id, _channel(channel))
    return None if row is None else _view(row)


def enrolments_of(conn: Connection, customer_id: int) -> list[Enrolment]:
    """The customer's live enrolments, in channel order."""
    rows = conn.execute(
        select(channel_enrolments).where(
            channel_enrolments.c.customer_id == customer_id,
            channel_enrolments.c.cancelled_at.is_(None),
        )
    ).mappings()
    return sorted((_view(row) for row in rows), key=lambda e: E_CHANNELS.index(e.channel))


def _agreed(
    conn: Connection, channel: str, assurance: str, daily: object, per_payment: object
) -> tuple[int, int]:
    """The limits to agree: as asked, within the bank's maximum; the maximum when not asked."""
    for value in (daily, per_payment):
        if value is not None and (type(value) is not int or value <= 0):
            raise EbankError("INVALID_INPUT", reason="a limit is a positive amount in fen")
    top_daily, top_per_payment = parameters.load(conn).channel_maximum(channel, assurance)
    daily = top_daily if daily is None else daily
    per_payment = min(top_per_payment, daily) if per_payment is None else per_payment
    if daily > top_daily or per_payment > top_per_payment:
        raise EbankError(
            "ABOVE_BANK_MAXIMUM",
            daily=format_minor(top_daily, "CNY"),
            per_payment=format_minor(top_per_payment, "CNY"),
        )
    if per_payment > daily:
        raise EbankError("INVALID_INPUT", reason="the per-payment limit is within the daily one")
    return daily, per_payment


def _enrol(
    tx: Tx, customer_id: int, channel: str, assurance: str, limits: tuple[int, int], actor: str
) -> Enrolment:
    """Enrol afresh: a live enrolment on the channel is cancelled and replaced."""
    tx.conn.execute(
        channel_enrolments.update()
        .where(
            channel_enrolments.c.customer_id == customer_id,
            channel_enrolments.c.channel == channel,
            channel_enrolments.c.cancelled_at.is_(None),
        )
        .values(cancelled_at=tx.now)
    )
    row = {
        "customer_id": customer_id, "channel": channel, "assurance": assurance,
        "daily_limit": limits[0], "per_payment_limit": limits[1], "enrolled_by": actor,
        "enrolled_at": tx.now,
    }  # fmt: skip
    row_id = tx.conn.execute(channel_enrolments.insert().values(row)).inserted_primary_key[0]
    audit.record(
        tx, actor=actor, action=f"enrolment.{assurance}", subject=f"customer:{customer_id}",
        channel="counter" if assurance == "counter" else channel,
        detail={"channel": channel, "daily_limit": limits[0], "per_payment_limit": limits[1]},
    )  # fmt: skip
    return _view({**row, "id": row_id})


def enrol_at_counter(
    *, customer_id: int, channel: str, actor: str, daily_limit: int | None = None,
    per_payment_limit: int | None = None,
) -> Command[Enrolment]:  # fmt: skip
    """Staff enrol a customer for a channel (or enrol them again, e.g. to lift a self-enrolment
    to the full limits). Limits not given are the bank's maximum for the channel."""

    def run(tx: Tx) -> Enrolment:
        customers.holder(tx.conn, customer_id, lock=True)
        ch = _channel(channel)
        limits = _agreed(tx.conn, ch, "counter", daily_limit, per_payment_limit)
        return _enrol(tx, customer_id, ch, "counter", limits, actor)

    return Command(run)


def cancel(*, customer_id: int, channel: str, actor: str, via: str) -> Command[None]:
    """End an enrolment (解约), by the customer on any channel or by staff."""

    def run(tx: Tx) -> None:
        customers.holder(tx.conn, customer_id, lock=True)
        row = _live(tx.conn, customer_id, _channel(channel))
        if row is None:
            raise EbankError("NOT_ENROLLED")
        tx.conn.execute(
            channel_enrolments.update()
            .where(channel_enrolments.c.id == row["id"])
            .values(cancelled_at=tx.now)
        )
        audit.record(tx, actor=actor, action="enrolment.cancel", subject=f"customer:{customer_id}",
                     channel=via, detail={"channel": row["channel"]})  # fmt: skip

    return Command(run)


# -- online self-enrolment: card + PIN, then the SMS code ---------------------------------------
def _binding(channel: str, card_id: int) -> str:
    return security.binding_of(channel=channel, card=card_id)


def begin_self_enrolment(
    vault: Vault, *, card_number: str, pin: str, channel: str = "online"
) -> Command[Checked[CodeIssued]]:
    """Check the card's PIN, then text a code to the mobile number the bank holds."""

    def holder_of(conn: Connection) -> int | None:
        _self_channel(channel)  # bad input is refused before any hashing
        card = cards.find_card(conn, vault, card_number)
        return None if card is None else card.customer_id

    # The PIN is checked (or a decoy hashed) before anything about the card is told.
    check = security.CredentialCheck("transaction_pin", pin, holder_of)

    def run(tx: Tx) -> Checked[CodeIssued]:
        ch = _self_channel(channel)
        verdict = check.record(tx, channel=ch)
        if not verdict.ok:
            return Checked(verdict)
        card = cards.find_card(tx.conn, vault, card_number)
        assert card is not None  # the PIN of no card never passes
        cards.check_usable(card, today=business_date(tx.now))
        issued = security.issue_code(
            vault, customer_id=card.customer_id, purpose=SELF_ENROLMENT_PURPOSE,
            binding=_binding(ch, card.id), message=f"开通{NAMES_ZH[ch]}",
        ).fn(tx)  # fmt: skip
        return Checked(verdict, issued)

    return Command(run, prepare=check.prepare)


def _self_channel(channel: object) -> str:
    ch = _channel(channel)
    if ch not in ("online", "mobile"):
        raise EbankError("INVALID_INPUT", reason="self-enrolment is online or mobile")
    return ch


def complete_self_enrolment(
    vault: Vault, *, card_number: str, code: str, login_password: str, channel: str = "online"
) -> Command[Checked[Enrolment]]:
    """With the code, enrol the card's holder on the channel at the low-assurance limits and
    set their login password. A customer already enrolled on the channel keeps what they
    agreed (a counter enrolment, or limits they lowered)."""
    password = security.NewSecret("login_password", login_password)

    def run(tx: Tx) -> Checked[Enrolment]:
        ch = _channel(channel)
        card = cards.find_card(tx.conn, vault, card_number)
        if card is None:
            return Checked(Verdict(False))
        holder = card.customer_id
        verdict = security.check_code(
            vault, customer_id=holder, purpose=SELF_ENROLMENT_PURPOSE,
            binding=_binding(ch, card.id), code=code,
        ).fn(tx)  # fmt: skip
        if not verdict.ok:
            return Checked(verdict)
        cards.check_usable(card, today=business_date(tx.now))
        customers.holder(tx.conn, holder, lock=True)
        actor = f"customer:{holder}"
        security.save_secret(tx, password, customer_id=holder, actor=actor, channel=ch)
        live = _live(tx.conn, holder, ch)
        if live is not None:  # enrolling again neither lowers nor raises what was agreed
            return Checked(verdict, _view(live))
        limits = _agreed(tx.conn, ch, "self", None, None)
        return Checked(verdict, _enrol(tx, holder, ch, "self", limits, actor))

    return Command(run, prepare=password.prepare)


# -- the customer's own limits -------------------------------------------------------------------
def set_limits(
    vault: Vault, *, customer_id: int, channel: str, daily_limit: int, per_payment_limit: int,
    via: str, token_code: str | None = None, origin: Origin = BANK_RUN,
) -> Command[Checked[Enrolment]]:  # fmt: skip
    """Change the agreed limits of a channel (asked `via` a channel, perhaps another): lower at
    will; raise (up to the bank's maximum for how the customer enrolled) only with a token,
    and only if risk control does not stop it (RISK_REJECTED for a block or a hold for
    review: a limit raised from a stolen phone is the fraudster's next step)."""

    def run(tx: Tx) -> Checked[Enrolment]:
        customers.holder(tx.conn, customer_id, lock=True)
        ch = _channel(channel)
        row = _live(tx.conn, customer_id, ch)
        if row is None:
            raise EbankError("NOT_ENROLLED")
        limits = _agreed(tx.conn, ch, row["assurance"], daily_limit, per_payment_limit)
        verdict = Verdict(True)
        if limits[0] > row["daily_limit"] or limits[1] > row["per_payment_limit"]:
            if token_code is None:
                raise EbankError("STRONGER_FACTOR_REQUIRED", methods=["token"])
            verdict = security.check_token(
                vault, customer_id=customer_id, code=token_code, channel=via
            ).fn(tx)
            if not verdict.ok:
                return Checked(verdict)
            seen = RiskContext(
                event="limit_change", customer_id=customer_id, channel=via,
                device=origin.device, ip=origin.ip, factor="token",
            )  # fmt: skip
            risk.admit(tx, seen)
            risk.observe(tx, seen)
        tx.conn.execute(
            channel_enrolments.update()
            .where(channel_enrolments.c.id == row["id"])
            .values(daily_limit=limits[0], per_payment_limit=limits[1])
        )
        audit.record(
            tx, actor=f"customer:{customer_id}", action="enrolment.limits",
            subject=f"customer:{customer_id}", channel=via,
            detail={"channel": ch, "from": [row["daily_limit"], row["per_payment_limit"]],
                    "to": list(limits)},
        )  # fmt: skip
        return Checked(
            verdict, _view({**row, "daily_limit": limits[0], "per_payment_limit": limits[1]})
        )

    return Command(run)
