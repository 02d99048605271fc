"""Notices about a customer's money: account movements (动账通知), payment results, scheduled
transfers that failed, inter-bank transfers that came back.

Payment services call these inside their own writer commands. They read where the customer's
notices go and append outbox events, never do I/O: the delivery workers send later, and a
notice exists if and only if the payment committed. Every notice is kept, as its facts, for
the customer's message centre (`notify.messages`) and goes by SMS, in the customer's language
(Chinese unless they chose English); payment outcomes also go by e-mail, in both languages, to
a customer who gave an address for it.

What a customer changed is in `notice_preferences` (no row: the defaults). A batch reads it at
most once per customer, by key, together with whether the customer has a mobile number; a
command that adds `prefetch(customer_id)` to its prefetch hints lets the whole batch read it
in one query.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from ebank.core import audit
from ebank.core.crypto import Vault, mask_name
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR, format_minor
from ebank.core.writer import Command, Participant, Tx
from ebank.customers.service import holder
from ebank.customers.tables import customers
from ebank.notify import messages, templates
from ebank.notify.email import mask_address, send_email, valid_address
from ebank.notify.service import send_sms
from ebank.notify.tables import notice_preferences

EMAIL_PURPOSE = "notice_preferences.email"


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a customer chose for their notices; the defaults are what everyone else gets."""

    movement_sms: bool = True
    movement_threshold: int = 0  # fen: smaller movements are not texted
    locale: str = "zh-CN"
    email_masked: str | None = None  # where payment outcomes are e-mailed


@dataclass(frozen=True, slots=True)
class _Target:
    """Where one customer's notices go."""

    mobile: bool  # whether the customer has a mobile number to text
    preferences: Preferences
    email_sealed: str | None


_UNKNOWN = object()  # not in the batch's view yet


class NoticeTargets(Participant):
    """The batch's view of where customers' notices go: read on first use (or for the whole
    batch from prefetch hints) and forgotten when `set_preferences` changes it, so that a
    notice later in the batch reads the new preferences."""

    def __init__(self, tx: Tx) -> None:
        super().__init__(tx)
        self.known: dict[int, _Target | None] = {}
        self._undo: dict[int, Any] = {}

    def prefetch(self, hints: list[Any]) -> None:
        self._load({h for h in hints if h not in self.known})

    def begin_command(self) -> None:
        self._undo = {}

    def rollback_command(self) -> None:
        for customer_id, before in self._undo.items():
            if before is _UNKNOWN:
                self.known.pop(customer_id, None)
            else:
                self.known[customer_id] = before

    def get(self, customer_id: int) -> _Target | None:
        """Where the customer's notices go; None if there is no such customer."""
        if customer_id not in self.known:
            self._load({customer_id})
        return self.known[customer_id]

    def forget(self, customer_id: int) -> None:
        self.touch()
        self._undo.setdefault(customer_id, self.known.get(customer_id, _UNKNOWN))
        self.known.pop(customer_id, None)

    def _load(self, ids: set[int]) -> None:
        if not ids:
            return
        rows = self.tx.raw.execute(_TARGETS, {"ids": sorted(ids)})
        self.known.update(dict.fromkeys(ids))
        for customer_id, mobile, sms, threshold, locale, sealed, masked in rows:
            chosen = Preferences() if sms is None else Preferences(sms, threshold, locale, masked)
            self.known[customer_id] = _Target(bool(mobile), chosen, sealed)


_TARGETS = (
    select(
        customers.c.id,
        customers.c.mobile_sealed != "",
        notice_preferences.c.movement_sms,
        notice_preferences.c.movement_threshold,
        notice_preferences.c.locale,
        notice_preferences.c.email_sealed,
        notice_preferences.c.email_masked,
    )
    .select_from(
        customers.outerjoin(notice_preferences, notice_preferences.c.customer_id == customers.c.id)
    )
    .where(customers.c.id.in_(bindparam("ids", expanding=True)))
)


def prefetch(customer_id: int) -> tuple[type[Participant], int]:
    """A prefetch hint for a command that will send this customer a notice."""
    return (NoticeTargets, customer_id)


# -- preferences -----------------------------------------------------------------------------
def preferences_of(conn: Connection, customer_id: int) -> Preferences:
    """What the customer chose (the defaults if they never changed anything)."""
    p = notice_preferences
    row = conn.execute(
        select(p.c.movement_sms, p.c.movement_threshold, p.c.locale, p.c.email_masked).where(
            p.c.customer_id == customer_id
        )
    ).first()
    return Preferences() if row is None else Preferences(bool(row[0]), row[1], row[2], row[3])


def set_preferences(
    vault: Vault,
    *,
    customer_id: int,
    movement_sms: bool,
    movement_threshold: int,
    locale: str,
    email: str | None,
    actor: str,
    channel: str,
    address: str = "",
) -> Command[Preferences]:
    """Replace what the customer wants: account movement SMS on or off and the amount (fen)
    from which a movement is texted, the language of their SMS, and the address payment
    outcomes are e-mailed to (None: no e-mail). Audited; the address only masked."""
    if type(movement_sms) is not bool:
        raise EbankError("INVALID_INPUT", reason="movement_sms is true or false")
    if type(movement_threshold) is not int or not 0 <= movement_threshold <= MAX_MINOR:
        raise EbankError("INVALID_INPUT", reason="the threshold is an amount of zero or more")
    if locale not in templates.LOCALES:
        raise EbankError("INVALID_INPUT", reason=f"the language is one of {templates.LOCALES}")
    if email is not None and not valid_address(email):
        raise EbankError("INVALID_INPUT", reason="not an e-mail address ebank can send to")
    chosen = Preferences(
        movement_sms, movement_threshold, locale, None if email is None else mask_address(email)
    )

    def run(tx: Tx) -> Preferences:
        holder(tx.conn, customer_id, lock=True)
        p = notice_preferences
        values = {
            "movement_sms": movement_sms,
            "movement_threshold": movement_threshold,
            "locale": locale,
            "email_sealed": None if email is None else vault.encrypt(email, purpose=EMAIL_PURPOSE),
            "email_masked": chosen.email_masked,
            "updated_at": tx.now,
        }
        mine = p.c.customer_id == customer_id
        if tx.conn.execute(select(p.c.customer_id).where(mine)).first() is None:
            tx.conn.execute(p.insert().values(customer_id=customer_id, **values))
        else:
            tx.conn.execute(p.update().where(mine).values(**values))
        tx.part(NoticeTargets).forget(customer_id)
        audit.record(
            tx, actor=actor, action="notice.preferences", subject=f"customer:{customer_id}",
            channel=channel, address=address,
            detail={"movement_sms": movement_sms,
                    "movement_threshold": format_minor(movement_threshold),
                    "locale": locale, "email": chosen.email_masked},
        )  # fmt: skip
        return chosen

    return Command(run)


# -- notices ---------------------------------------------------------------------------------
def account_movement(
    tx: Tx,
    vault: Vault,
    *,
    customer_id: int,
    account_number: str,
    amount: int,
    direction: str,
    balance: int,
    memo: str,
    at: datetime,
) -> None:
    """Tell the customer that money came into (`direction` "in") or left ("out") their
    account, with the balance after it: in their message centre always, by SMS unless they
    switched movement SMS off or the amount is below their threshold."""
    _amount(amount)
    if direction not in ("in", "out"):
        raise ValueError("direction is 'in' or 'out'")
    if type(balance) is not int or not isinstance(memo, str):
        raise ValueError("balance is an int of fen, memo a str")
    facts = {
        "last4": _last4(account_number), "at": _aware(at).isoformat(), "direction": direction,
        "amount": amount, "balance": balance, "memo": _one_line(memo),
    }  # fmt: skip
    target = _target(tx, customer_id)
    if target is None:
        return
    messages.keep(tx, customer_id, "account.movement", facts)
    chosen = target.preferences
    if not target.mobile or not chosen.movement_sms or amount < chosen.movement_threshold:
        return
    loc = chosen.locale
    fields = templates.fields("account.movement", loc, facts)
    body = templates.fit("account.movement", loc, shrink="memo", **fields)
    send_sms(tx, vault, customer_id=customer_id, kind="movement", body=body)


def payment_result(
    tx: Tx,
    vault: Vault,
    *,
    customer_id: int,
    amount: int,
    payee_name: str,
    payee_account: str,
    failure: EbankError | None = None,
) -> None:
    """Tell the customer how their payment ended: done, or not done and why (`failure`)."""
    _amount(amount)
    facts = _payee(payee_name, payee_account) | {"amount": amount, "failure": _kept(failure)}
    _tell(tx, vault, customer_id, "payment.result", "payment", facts)


def scheduled_failed(
    tx: Tx,
    vault: Vault,
    *,
    customer_id: int,
    amount: int,
    payee_name: str,
    payee_account: str,
    due_at: datetime,
    reason: EbankError,
) -> None:
    """Tell the customer a scheduled transfer due at `due_at` was not made, and why."""
    _amount(amount)
    facts = _payee(payee_name, payee_account) | {
        "amount": amount, "due_at": _aware(due_at).isoformat(), "reason": _kept(reason),
    }  # fmt: skip
    _tell(tx, vault, customer_id, "scheduled.failed", "scheduled", facts)


def payment_returned(
    tx: Tx,
    vault: Vault,
    *,
    customer_id: int,
    amount: int,
    payee_name: str,
    payee_account: str,
    sent_at: datetime,
    reason: str,
    account_number: str,
) -> None:
    """Tell the customer an inter-bank transfer sent at `sent_at` came back (`reason`: the
    ISO 20022 return reason code) and went back into their account `account_number`."""
    _amount(amount)
    if not isinstance(reason, str):
        raise ValueError("reason is an ISO 20022 reason code")
    facts = _payee(payee_name, payee_account) | {
        "amount": amount, "sent_at": _aware(sent_at).isoformat(), "reason": reason,
        "last4": _last4(account_number),
    }  # fmt: skip
    _tell(tx, vault, customer_id, "payment.returned", "returned", facts)


def payroll_result(
    tx: Tx, vault: Vault, *, customer_id: int, reference: str, period: str, paid: int,
    paid_total: int, failed: int,
) -> None:  # fmt: skip
    """Tell an enterprise how its payroll batch ended: how many rows were paid, for how much,
    and how many failed (the result file says which and why)."""
    facts = {
        "reference": reference, "period": period, "paid": paid, "paid_total": paid_total,
        "failed": failed,
    }  # fmt: skip
    _tell(tx, vault, customer_id, "payroll.result", "payroll", facts)


def _tell(tx: Tx, vault: Vault, customer_id: int, kind: str, short: str,
          facts: dict[str, Any]) -> None:  # fmt: skip
    """Keep the notice `kind` in the customer's message centre and send it by SMS in their
    language and, where they gave an address, by e-mail in both, theirs first."""
    target = _target(tx, customer_id)
    if target is None:
        return
    messages.keep(tx, customer_id, kind, facts)
    loc = target.preferences.locale
    if target.mobile:
        body = templates.render(kind, loc, **templates.fields(kind, loc, facts))
        send_sms(tx, vault, customer_id=customer_id, kind=short, body=body)
    if target.email_sealed is not None:
        order = [loc, *(other for other in templates.LOCALES if other != loc)]
        texts = [templates.render(kind, each, **templates.fields(kind, each, facts))
                 for each in order]  # fmt: skip
        footer = [templates.phrase("email.footer", each, brand=templates.BRAND) for each in order]
        body = "\n\n".join(texts) + "\n\n-- \n" + "\n".join(footer)
        send_email(
            tx, vault, customer_id=customer_id,
            to=vault.decrypt(target.email_sealed, purpose=EMAIL_PURPOSE),
            subject=templates.subject(kind), body=body, kind=short,
        )  # fmt: skip


def _kept(error: EbankError | None) -> list[Any] | None:
    """A failure as a notice keeps it: its code and details, worded when read."""
    return None if error is None else [error.code, error.details]


def _target(tx: Tx, customer_id: int) -> _Target | None:
    if type(customer_id) is not int:
        raise ValueError("a customer id is an int")
    return tx.part(NoticeTargets).get(customer_id)


def _amount(amount: int) -> None:
    if type(amount) is not int or not 0 < amount <= MAX_MINOR:
        raise ValueError("an amount is a positive int of fen")


def _aware(at: datetime) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise ValueError("a notice's time is a timezone-aware datetime")
    return at


def _last4(account: str) -> str:
    if not isinstance(account, str) or len(account) < 4:
        raise ValueError("an account number has at least 4 characters")
    return account[-4:]


def _payee(name: str, account: str) -> dict[str, str]:
    """The payee as notices show them: a masked name and the account's last four. Names
    longer than four characters (companies) are cut to their ends, to keep an SMS short."""
    if not isinstance(name, str) or not name:
        raise ValueError("a payee has a name")
    last4 = _last4(account)
    shown = mask_name(name) if len(name) <= 4 else f"{name[0]}**{name[-1]}"
    return {"payee": shown, "payee_last4": last4}


def _one_line(memo: str) -> str:
    """A payer's memo as the bank's SMS may carry it: one line of printable text, without
    brackets that could pass for a sender's signature (【某银行】) inside the bank's own SMS."""
    kept = "".join(ch if ch.isprintable() else " " for ch in memo if ch not in "【】[]")
    return " ".join(kept.split())
