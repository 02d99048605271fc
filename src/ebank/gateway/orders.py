"""Orders of the e-commerce gateway, from the merchant's request to the money's last move.

A merchant creates an order (its order number is the idempotency key: the same number with the
same parameters is the same order, with others a conflict) and sends the buyer to the pay page
(`pay_url`). The buyer logs in, picks a card and confirms with the transaction PIN plus the
factor the limits service asks for; then, by mode:
- instant (即时支付): the money goes to the merchant's pending money at once;
- escrow (延时支付): it waits in escrow until the buyer confirms receipt or `release_at`
  passes; a buyer's dispute keeps it there until staff decide;
- authorise (授权支付): a hold on the buyer's account, captured once or several times up to
  the amount, voided, or left to expire.
Every change of state is an order event and a signed notice to the merchant
(`gateway.notices`). Money reaching the merchant bears the plan's fee (`gateway.fees`) and is
settled by its cycle (`gateway.settlement`). Refunds are in `gateway.refunds`.
"""

import hashlib
import json
import re
from dataclasses import asdict
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Select, bindparam, func, select

from ebank.accounts import service as accounts
from ebank.cards import service as cards
from ebank.cards.models import Card
from ebank.core import audit
from ebank.core.clock import as_utc, business_date, business_day_bounds
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError, checked_text
from ebank.core.money import MAX_MINOR, format_minor
from ebank.core.writer import Command, Tx, fingerprint
from ebank.customers.tables import customers
from ebank.gateway import controls, fees, merchants, notices, settlement
from ebank.gateway.merchants import Merchant
from ebank.gateway.models import Checkout, OrderRequest, OrderView, PayCard, Payment
from ebank.gateway.tables import (
    MODES,
    movements,
    order_events,
    orders,
)
from ebank.gateway.tables import (
    merchants as merchant_rows,
)
from ebank.ledger import service as ledger
from ebank.ledger.models import reference
from ebank.limits import service as limits
from ebank.notify import notices as customer_notices
from ebank.payments import confirm
from ebank.payments.models import Confirmation
from ebank.risk import service as risk
from ebank.risk.models import BANK_RUN, Origin, payee_key
from ebank.risk.models import Context as RiskContext
from ebank.security import certificates
from ebank.security.service import Checked, CodeIssued

ESCROW = "GL-ESCROW-CNY"
TOKEN_PURPOSE = "gateway.pay_token"  # noqa: S105 (a vault purpose, not a secret)
PAY_CHANNELS = ("online", "mobile")
REQUEST_NO = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_EXPIRE_MINUTES = 7 * 24 * 60
MAX_DAYS = 30
SWEEP = 500
HISTORY_DAYS = 366  # a buyer's payment history: a year back, whatever the year


# -- reading ------------------------------------------------------------------------------
def _view(row: Any, merchant_no: str) -> OrderView:
    return OrderView(
        row.id, row.trade_no, row.merchant_id, merchant_no, row.out_trade_no, row.mode,
        row.amount, row.currency, row.subject, row.status, row.return_url, row.notify_url,
        as_utc(row.expires_at), row.paid_amount, row.refunded_amount, row.funding, row.buyer_id,
        _utc(row.paid_at), _utc(row.release_at), as_utc(row.created_at), as_utc(row.updated_at),
    )  # fmt: skip


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _lookup(*columns: str) -> tuple[Select[Any], Select[Any]]:
    """An order by `columns`, built once: as read, and locked for a change."""
    query = select(orders).where(*(orders.c[c] == bindparam(c) for c in columns))
    return query, query.with_for_update()


_BY_ID = _lookup("id")
_BY_TRADE_NO = _lookup("trade_no")
_BY_TOKEN = _lookup("pay_token_hash")
_BY_MERCHANT = _lookup("merchant_id", "out_trade_no")
_UPDATE = orders.update().where(orders.c.id == bindparam("order_id"))


def _row(conn: Connection, lookup: tuple[Select[Any], Select[Any]], *, lock: bool = False,
         **values: object) -> Any:  # fmt: skip
    row = conn.execute(lookup[lock], values).first()
    if row is None:
        raise EbankError("ORDER_NOT_FOUND")
    return row


def view_of(conn: Connection, row: Any) -> OrderView:
    return _view(row, merchants.get(conn, row.merchant_id).merchant_no)


def get(conn: Connection, *, merchant_id: int, out_trade_no: str) -> OrderView:
    """A merchant's order by its own number; someone else's is not found."""
    if not isinstance(out_trade_no, str):
        raise EbankError("ORDER_NOT_FOUND")
    return view_of(conn, _row(conn, _BY_MERCHANT, merchant_id=merchant_id,
                              out_trade_no=out_trade_no))  # fmt: skip


def by_trade_no(
    conn: Connection, trade_no: str, *, merchant_id: int | None = None,
    buyer_id: int | None = None,
) -> OrderView:  # fmt: skip
    """An order by the bank's number; given `merchant_id`, only that merchant's, given
    `buyer_id`, only that buyer's (another's is not found)."""
    row = _row(conn, _BY_TRADE_NO, trade_no=trade_no)
    if merchant_id not in (None, row.merchant_id) or buyer_id not in (None, row.buyer_id):
        raise EbankError("ORDER_NOT_FOUND")
    return view_of(conn, row)


def public(view: OrderView) -> dict[str, Any]:
    """The order as the merchant's API, notices and return result show it (no pay link)."""
    return {
        "trade_no": view.trade_no, "out_trade_no": view.out_trade_no,
        "merchant_no": view.merchant_no, "mode": view.mode,
        "amount": format_minor(view.amount, view.currency), "currency": view.currency,
        "subject": view.subject, "status": view.status,
        "paid_amount": format_minor(view.paid_amount, view.currency),
        "refunded_amount": format_minor(view.refunded_amount, view.currency),
        "funding": view.funding, "created_at": view.created_at.isoformat(),
        "expires_at": view.expires_at.isoformat(),
        "paid_at": None if view.paid_at is None else view.paid_at.isoformat(),
        "release_at": None if view.release_at is None else view.release_at.isoformat(),
    }  # fmt: skip


def pay_token(vault: Vault, trade_no: str) -> str:
    """The secret in the order's pay link: a keyed hash of its number, so the link can be
    given again to a merchant repeating its request, and stored only as its digest."""
    return vault.lookup_hash(trade_no, purpose=TOKEN_PURPOSE)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _by_token(conn: Connection, token: object, *, lock: bool = False) -> Any:
    if not isinstance(token, str) or not 0 < len(token) <= 128:
        raise EbankError("ORDER_NOT_FOUND")
    return _row(conn, _BY_TOKEN, lock=lock, pay_token_hash=_digest(token))


def checkout(conn: Connection, token: str) -> Checkout:
    """What the pay page shows about an order before the buyer logs in."""
    row = _by_token(conn, token)
    m = merchants.get(conn, row.merchant_id)
    return Checkout(
        row.trade_no, m.name, row.subject, row.amount, row.currency, row.mode, row.status,
        as_utc(row.expires_at), row.return_url,
    )  # fmt: skip


def of_merchant(
    conn: Connection, merchant_id: int, *, status: str | None = None, mode: str | None = None,
    since: datetime | None = None, until: datetime | None = None, before: int | None = None,
    limit: int = 50,
) -> list[OrderView]:  # fmt: skip
    """A merchant's orders, newest first, filtered (the portal's search): by status, payment
    mode (instant, escrow, authorise), creation time."""
    query = select(orders).where(orders.c.merchant_id == merchant_id)
    if status is not None:
        query = query.where(orders.c.status == status)
    if mode is not None:
        if mode not in MODES:
            raise EbankError("INVALID_INPUT", reason=f"a payment mode is one of {MODES}")
        query = query.where(orders.c.mode == mode)
    if since is not None:  # stored in UTC: SQLite compares the text, so convert first
        query = query.where(orders.c.created_at >= as_utc(since))
    if until is not None:
        query = query.where(orders.c.created_at < as_utc(until))
    if before is not None:
        query = query.where(orders.c.id < before)
    number = merchants.get(conn, merchant_id).merchant_no
    rows = conn.execute(query.order_by(orders.c.id.desc()).limit(limit))
    return [_view(r, number) for r in rows]


def history_of(
    conn: Connection, customer_id: int, *, since: date | None, now: datetime,
    before: int | None = None, limit: int = 50,
) -> list[OrderView]:  # fmt: skip
    """What a buyer paid online from a business day on (at most `HISTORY_DAYS` back, the
    default), newest first: the customer's payment history."""
    today = business_date(now)
    earliest = today - timedelta(days=HISTORY_DAYS)
    if since is not None and not earliest <= since <= today:
        raise EbankError("INVALID_INPUT", reason="since is a day within the last year")
    start = business_day_bounds(since or earliest)[0]
    query = (
        select(orders, merchant_rows.c.merchant_no)
        .join(merchant_rows, merchant_rows.c.id == orders.c.merchant_id)
        .where(orders.c.buyer_id == customer_id, orders.c.paid_at >= start)
    )
    if before is not None:
        query = query.where(orders.c.id < before)
    rows = conn.execute(query.order_by(orders.c.id.desc()).limit(limit))
    return [_view(r, r.merchant_no) for r in rows]


# -- the state record ---------------------------------------------------------------------
def refusal(row: Any, action: str) -> EbankError:
    return EbankError("ORDER_STATE", status=row.status, action=action)


def _change(
    tx: Tx, row: Any, merchant: Merchant, *, status: str, what: str, actor: str,
    detail: dict[str, Any] | None = None, announce: bool = True, **columns: Any,
) -> OrderView:  # fmt: skip
    """Move an order on: its columns, its event, the merchant's notice (unless the caller
    sends its own). The new view."""
    values = {"status": status, "updated_at": tx.now, **columns}
    tx.conn.execute(_UPDATE, {**values, "order_id": row.id})
    _event(tx, row.id, status, what, actor, detail)
    view = _view(SimpleNamespace(**{**row._asdict(), **values}), merchant.merchant_no)
    if announce:
        notices.announce(
            tx, merchant_id=merchant.id, merchant_no=merchant.merchant_no,
            order_id=row.id, notify_url=row.notify_url,
            event_type=f"order.{what}", data=public(view),
        )  # fmt: skip
    return view


def _event(tx: Tx, order_id: int, status: str, what: str, actor: str,
           detail: dict[str, Any] | None) -> None:  # fmt: skip
    detail_text = "{}" if not detail else json.dumps(detail, sort_keys=True, ensure_ascii=False)
    tx.conn.execute(
        order_events.insert(),
        {"order_id": order_id, "status": status, "what": what, "actor": actor,
         "detail": detail_text, "at": tx.now},
    )  # fmt: skip


def refunded_back(conn: Connection, order_id: int, *, source: str | None = None) -> int:
    """What refunds of the order have paid back so far (not those waiting for review); only
    those paid out of `source` (escrow, pending, settlement) when given."""
    query = select(func.coalesce(func.sum(movements.c.amount), 0)).where(
        movements.c.order_id == order_id, movements.c.kind == "refund"
    )
    if source is not None:
        query = query.where(movements.c.source == source)
    return int(conn.execute(query).scalar_one())  # a SUM is a numeric on PostgreSQL


def record_refund(tx: Tx, row: Any, merchant: Merchant, *, refunded: int, whole: bool,
                  actor: str, refund_no: str) -> None:  # fmt: skip
    """A refund of the order has succeeded (its own notice is the refund's): the order's
    refunded total, and `refunded` once every fen paid has gone back."""
    _change(
        tx, row, merchant, status="refunded" if whole else row.status, what="refunded",
        actor=actor, detail={"refund": refund_no}, announce=whole, refunded_amount=refunded,
    )  # fmt: skip


def record_movement(
    tx: Tx, row: Any, merchant: Merchant, kind: str, amount: int, entry_id: int, *,
    fee: int = 0, source: str | None = None, refund_id: int | None = None,
    capture_no: str | None = None,
) -> int:  # fmt: skip
    """Record a movement of the order's money; settle it now if the merchant settles T+0
    in real time."""
    movement_id = tx.new_id("gateway_movements")
    tx.conn.execute(
        movements.insert(),
        dict(
            id=movement_id, order_id=row.id, merchant_id=merchant.id, kind=kind, amount=amount,
            fee=fee, refund_id=refund_id, source=source, capture_no=capture_no,
            entry_id=entry_id, business_date=tx.business_day, at=tx.now,
        ),
    )  # fmt: skip
    settlement.realtime(tx, merchant, movement_id)
    return movement_id


def _to_merchant(tx: Tx, row: Any, merchant: Merchant, kind: str, amount: int, entry: int,
                 **extra: Any) -> None:  # fmt: skip
    """Money has reached the merchant (pending): its movement, with the plan's fee."""
    fee = fees.plan(tx.conn, merchant.fee_plan).fee_of(amount)
    record_movement(tx, row, merchant, kind, amount, entry, fee=fee, **extra)


# -- creating, closing ----------------------------------------------------------------------
def _url(value: object, what: str) -> str:
    text = value if isinstance(value, str) else ""
    parts = urlsplit(text)
    if (
        not 0 < len(text) <= 512 or parts.scheme not in ("http", "https") or not parts.hostname
        or not text.isprintable() or " " in text or parts.username or parts.password
    ):  # fmt: skip
        raise EbankError("INVALID_INPUT", reason=f"{what} is an http(s) URL of at most 512 chars")
    if what == "notify_url" and notices.literal_refused(parts.hostname):
        raise EbankError("INVALID_INPUT", reason="notify_url must be a public address")
    return text


def _bounded(value: object, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise EbankError("INVALID_INPUT", reason=f"{what} is a whole number {low}-{high}")
    return value


def _checked(r: OrderRequest) -> OrderRequest:
    if not isinstance(r.out_trade_no, str) or not REQUEST_NO.fullmatch(r.out_trade_no):
        raise EbankError("INVALID_INPUT", reason="an order number is 1-64 of A-Z a-z 0-9 _ -")
    if r.mode not in MODES:
        raise EbankError("INVALID_INPUT", reason=f"a mode is one of {MODES}")
    if r.currency != "CNY":
        raise EbankError("UNKNOWN_CURRENCY", currency=str(r.currency)[:8])
    if type(r.amount) is not int or not 0 < r.amount <= MAX_MINOR:
        raise EbankError("INVALID_AMOUNT", reason="an order is a positive amount")
    return OrderRequest(
        r.merchant_id, r.out_trade_no, r.amount, r.mode,
        checked_text(r.subject, "a subject", 128), _url(r.return_url, "return_url"),
        _url(r.notify_url, "notify_url"), r.currency,
        _bounded(r.expire_minutes, "expire_minutes", 1, MAX_EXPIRE_MINUTES),
        _bounded(r.confirm_days, "confirm_days", 1, MAX_DAYS),
        _bounded(r.auth_days, "auth_days", 1, MAX_DAYS),
    )  # fmt: skip


def create(vault: Vault, request: OrderRequest, *, actor: str = "api") -> Command[OrderView]:
    """Create the order once per merchant order number: a repeat with the same parameters is
    the same order, one with others ORDER_CONFLICT."""

    def run(tx: Tx) -> OrderView:
        r = _checked(request)
        merchant = merchants.get(tx.conn, r.merchant_id)
        if merchant.status != "active":
            raise EbankError("MERCHANT_SUSPENDED")
        asked = fingerprint(**asdict(r))
        found = tx.conn.execute(
            _BY_MERCHANT[0], {"merchant_id": merchant.id, "out_trade_no": r.out_trade_no}
        ).first()
        if found is not None:
            if found.request_hash != asked:
                raise EbankError("ORDER_CONFLICT")
            return _view(found, merchant.merchant_no)
        order_id = tx.new_id("gateway_orders")
        trade_no = reference("G", order_id, tx.now)
        values = dict(
            id=order_id, trade_no=trade_no, merchant_id=merchant.id,
            out_trade_no=r.out_trade_no, request_hash=asked, mode=r.mode, amount=r.amount,
            currency=r.currency, subject=r.subject, return_url=r.return_url,
            notify_url=r.notify_url, pay_token_hash=_digest(pay_token(vault, trade_no)),
            expires_at=tx.now + timedelta(minutes=r.expire_minutes),
            confirm_days=r.confirm_days, auth_days=r.auth_days, status="created",
            buyer_id=None, card_id=None, funding=None, payer_ledger_account_id=None,
            channel=None, method=None, hold_id=None, paid_at=None, release_at=None,
            paid_amount=0, refunded_amount=0, created_at=tx.now, updated_at=tx.now,
        )  # fmt: skip
        tx.conn.execute(orders.insert(), values)
        _event(tx, order_id, "created", "created", actor, None)
        return _view(SimpleNamespace(**values), merchant.merchant_no)

    return Command(run)


def merchant_order(tx: Tx, merchant_id: int, out_trade_no: object) -> tuple[Any, Merchant]:
    if not isinstance(out_trade_no, str):
        raise EbankError("ORDER_NOT_FOUND")
    row = _row(tx.conn, _BY_MERCHANT, lock=True, merchant_id=merchant_id,
               out_trade_no=out_trade_no)  # fmt: skip
    return row, merchants.get(tx.conn, merchant_id)


def close(*, merchant_id: int, out_trade_no: str, actor: str = "api") -> Command[OrderView]:
    """The merchant withdraws an unpaid order; closing a closed one is a no-op."""

    def run(tx: Tx) -> OrderView:
        row, merchant = merchant_order(tx, merchant_id, out_trade_no)
        if row.status == "closed":
            return _view(row, merchant.merchant_no)
        if row.status != "created":
            raise refusal(row, "close")
        return _change(tx, row, merchant, status="closed", what="closed", actor=actor)

    return Command(run)


# -- paying -------------------------------------------------------------------------------
def _card(conn: Connection, customer_id: int, card_id: object, now: datetime) -> Card:
    """One of the buyer's cards that may pay online now."""
    if type(card_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a card id is an integer")
    card = cards.get_card(conn, card_id)
    if card.customer_id != customer_id:
        raise EbankError("CARD_NOT_FOUND")  # someone else's: as if it did not exist
    cards.check_usable(card, today=business_date(now))
    if not controls.card_allowed(conn, card.id):
        raise EbankError("CARD_NOT_ALLOWED_ONLINE")
    return card


def _payable(row: Any, now: datetime) -> None:
    if row.status != "created":
        raise refusal(row, "pay")
    if now >= as_utc(row.expires_at):
        raise EbankError("ORDER_EXPIRED")


def _limits_payment(card: Card, conn: Connection, customer_id: int, channel: str, amount: int,
                    method: str | None) -> limits.Payment:  # fmt: skip
    account = None
    if card.kind == "debit":
        account = accounts.account_by_ledger_id(conn, card.ledger_account_id).number
    return limits.Payment(
        customer_id=customer_id, channel=channel, kind="ecommerce", from_account=account,
        amount=amount, method=method,
    )  # fmt: skip


def options(conn: Connection, *, token: str, customer_id: int, channel: str,
            now: datetime) -> list[PayCard]:  # fmt: skip
    """The buyer's cards, each with the factors that would let it pay this order now."""
    row = _by_token(conn, token)
    _payable(row, now)
    found = []
    for card in cards.cards_of(conn, customer_id):
        try:
            _card(conn, customer_id, card.id, now)
        except EbankError:
            continue
        assessed = limits.assess(
            conn, _limits_payment(card, conn, customer_id, channel, row.amount, None), now=now
        )
        refusal = None if assessed.refusal is None else assessed.refusal.code
        found.append(PayCard(card.id, card.kind, card.masked, assessed.methods, refusal))
    return found


def _confirming(row: Any, merchant: Merchant, card: Card, customer_id: int,
                channel: str) -> confirm.Confirming:  # fmt: skip
    """What the buyer's factor confirms: this card paying this order (the bank's number for
    it stands as the payee's account) to this merchant, this amount. A code or signature for
    one order confirms no other, even of the same merchant and amount."""
    return confirm.Confirming(
        customer_id=customer_id, channel=channel, what="ecommerce", from_account=card.masked,
        payee_account=row.trade_no, payee_name=merchant.name, amount=row.amount,
    )  # fmt: skip


def send_code(vault: Vault, *, token: str, customer_id: int, card_id: int,
              channel: str) -> Command[CodeIssued]:  # fmt: skip
    """Text the buyer a code bound to this order's merchant, amount and card."""

    def run(tx: Tx) -> CodeIssued:
        row = _by_token(tx.conn, token)
        _payable(row, tx.now)
        card = _card(tx.conn, customer_id, card_id, tx.now)
        merchant = merchants.get(tx.conn, row.merchant_id)
        return confirm.send_code(tx, vault, _confirming(row, merchant, card, customer_id, channel))

    return Command(run)


def start_signing(*, token: str, customer_id: int, card_id: int,
                  channel: str) -> Command[certificates.SigningChallenge]:  # fmt: skip
    """What the buyer's certificate signs to pay this order (non-repudiation)."""

    def run(tx: Tx) -> certificates.SigningChallenge:
        row = _by_token(tx.conn, token)
        _payable(row, tx.now)
        card = _card(tx.conn, customer_id, card_id, tx.now)
        merchant = merchants.get(tx.conn, row.merchant_id)
        return confirm.start_signing(tx, _confirming(row, merchant, card, customer_id, channel))

    return Command(run)


def _related(conn: Connection, buyer_id: int, merchant: Merchant) -> bool:
    """Whether the buyer is the merchant itself or shares its contact number (self-dealing)."""
    if buyer_id == merchant.customer_id:
        return True
    phones = conn.execute(_PHONES, {"buyer": buyer_id, "merchant": merchant.customer_id}).all()
    return len({mobile for _, mobile in phones}) == 1


_PHONES = select(customers.c.id, customers.c.mobile_hash).where(
    customers.c.id.in_((bindparam("buyer"), bindparam("merchant")))
)


def pay(vault: Vault, payment: Payment, origin: Origin = BANK_RUN) -> Command[Checked[OrderView]]:
    """The buyer pays the order: the PIN and the factor checked, the buyer's controls, the
    limits and risk control asked, the money moved (or held) by the order's mode."""
    p = payment
    pin = confirm.pin_check(p.customer_id, Confirmation(method="pin", code=p.pin))

    def run(tx: Tx) -> Checked[OrderView]:
        if p.channel not in PAY_CHANNELS:
            raise EbankError("INVALID_INPUT", reason=f"a channel is one of {PAY_CHANNELS}")
        if p.method not in (None, "sms", "token", "certificate"):
            raise EbankError("INVALID_INPUT", reason="the factor is sms, token or certificate")
        row = _by_token(tx.conn, p.token, lock=True)
        _payable(row, tx.now)
        merchant = merchants.get(tx.conn, row.merchant_id)
        if merchant.status != "active":
            raise EbankError("MERCHANT_SUSPENDED")
        card = _card(tx.conn, p.customer_id, p.card_id, tx.now)
        verdict = pin.record(tx, channel=p.channel)
        if verdict.ok and p.method is not None:
            factor = Confirmation(p.method, p.code, p.challenge_id, p.signature)
            c = _confirming(row, merchant, card, p.customer_id, p.channel)
            verdict = confirm.check(tx, vault, c, factor, pin)
        if not verdict.ok:
            return Checked(verdict)
        method = p.method or "pin"
        limits.authorise(
            tx, _limits_payment(card, tx.conn, p.customer_id, p.channel, row.amount, method)
        )
        # After the limits: they hold the buyer's row, so two payments count one after the other.
        controls.check(tx.conn, p.customer_id, row.amount, tx.now)
        seen = RiskContext(
            event="gateway_payment", customer_id=p.customer_id, channel="gateway",
            device=origin.device, ip=origin.ip, amount=row.amount,
            account_id=card.ledger_account_id,
            payee=payee_key(ledger_account_id=ledger.account_id_of(tx, settlement.PENDING)),
            merchant_id=merchant.id, buyer_related=_related(tx.conn, p.customer_id, merchant),
            factor=method,
        )  # fmt: skip
        risk.admit(tx, seen, step_up=True)
        view = _take_money(tx, row, merchant, card, p, method)
        risk.observe(tx, seen)
        _tell_buyer(tx, vault, card, row.amount, merchant.name)
        audit.record(
            tx, actor=f"customer:{p.customer_id}", action=f"gateway.pay.{row.mode}",
            subject=f"order:{row.trade_no}", channel=p.channel,
            detail={"amount": row.amount, "card": card.masked, "method": method},
        )  # fmt: skip
        return Checked(verdict, view)

    return Command(run, prepare=pin.prepare)


def _take_money(tx: Tx, row: Any, merchant: Merchant, card: Card, p: Payment,
                method: str) -> OrderView:  # fmt: skip
    payer, amount = card.ledger_account_id, row.amount
    paid = dict(
        buyer_id=p.customer_id, card_id=card.id, funding=card.kind,
        payer_ledger_account_id=payer, channel=p.channel, method=method, paid_at=tx.now,
    )  # fmt: skip
    actor = f"customer:{p.customer_id}"
    memo = f"网上支付 {row.trade_no}"
    if row.mode == "authorise":
        until = tx.now + timedelta(days=row.auth_days)
        hold = ledger.place_hold(tx, account_id=payer, amount=amount, expires_at=until, memo=memo)
        return _change(tx, row, merchant, status="authorised", what="authorised", actor=actor,
                       hold_id=hold.id, release_at=until, **paid)  # fmt: skip
    if row.mode == "escrow":
        entry = ledger.transfer(
            tx, debit=payer, credit=ledger.account_id_of(tx, ESCROW), amount=amount, memo=memo
        ).id
        record_movement(tx, row, merchant, "escrow_in", amount, entry)
        until = tx.now + timedelta(days=row.confirm_days)
        return _change(tx, row, merchant, status="held", what="held", actor=actor,
                       release_at=until, paid_amount=amount, **paid)  # fmt: skip
    entry = ledger.transfer(
        tx, debit=payer, credit=ledger.account_id_of(tx, settlement.PENDING), amount=amount,
        memo=memo,
    ).id  # fmt: skip
    _to_merchant(tx, row, merchant, "pay", amount, entry)
    return _change(tx, row, merchant, status="paid", what="paid", actor=actor,
                   paid_amount=amount, **paid)  # fmt: skip


def _tell_buyer(tx: Tx, vault: Vault, card: Card, amount: int, merchant_name: str) -> None:
    """The payment SMS the buyer gets for every online payment."""
    customer_notices.account_movement(
        tx, vault, customer_id=card.customer_id, account_number=card.masked, amount=amount,
        direction="out", balance=ledger.balance_in(tx, card.ledger_account_id),
        memo=f"网上支付-{merchant_name}"[:60], at=tx.now,
    )  # fmt: skip


# -- escrow -------------------------------------------------------------------------------
def _release(tx: Tx, row: Any, merchant: Merchant, actor: str, what: str) -> OrderView:
    """Escrow pays the merchant what is left of the order there after refunds (one waiting
    for review is then paid back from the merchant's money)."""
    refunded = refunded_back(tx.conn, row.id, source="escrow")
    amount = row.paid_amount - refunded
    if amount > 0:
        entry = ledger.transfer(
            tx, debit=ledger.account_id_of(tx, ESCROW),
            credit=ledger.account_id_of(tx, settlement.PENDING), amount=amount,
            memo=f"担保交易放款 {row.trade_no}",
        ).id  # fmt: skip
        _to_merchant(tx, row, merchant, "release", amount, entry)
    return _change(tx, row, merchant, status="paid", what=what, actor=actor,
                   detail={"released": amount})  # fmt: skip


def _buyer_order(tx: Tx, customer_id: int, trade_no: object) -> tuple[Any, Merchant]:
    if not isinstance(trade_no, str):
        raise EbankError("ORDER_NOT_FOUND")
    row = _row(tx.conn, _BY_TRADE_NO, lock=True, trade_no=trade_no)
    if row.buyer_id != customer_id:
        raise EbankError("ORDER_NOT_FOUND")  # someone else's: as if it did not exist
    return row, merchants.get(tx.conn, row.merchant_id)


def confirm_receipt(*, customer_id: int, trade_no: str, channel: str) -> Command[OrderView]:
    """The buyer confirms the goods arrived (确认收货): escrow pays the merchant."""

    def run(tx: Tx) -> OrderView:
        row, merchant = _buyer_order(tx, customer_id, trade_no)
        if row.mode != "escrow" or row.status != "held":
            raise refusal(row, "confirm")
        audit.record(tx, actor=f"customer:{customer_id}", action="gateway.escrow.confirm",
                     subject=f"order:{row.trade_no}", channel=channel)  # fmt: skip
        return _release(tx, row, merchant, f"customer:{customer_id}", "released")

    return Command(run)


def dispute(*, customer_id: int, trade_no: str, reason: str, channel: str) -> Command[OrderView]:
    """The buyer disputes an escrow order: its money stays held until staff decide."""

    def run(tx: Tx) -> OrderView:
        why = checked_text(reason, "a reason", 200)
        row, merchant = _buyer_order(tx, customer_id, trade_no)
        if row.mode != "escrow" or row.status != "held" or tx.now >= as_utc(row.release_at):
            raise refusal(row, "dispute")  # once due to the merchant, it is the merchant's
        actor = f"customer:{customer_id}"
        audit.record(tx, actor=actor, action="gateway.escrow.dispute",
                     subject=f"order:{row.trade_no}", channel=channel,
                     detail={"reason": why})  # fmt: skip
        return _change(tx, row, merchant, status="disputed", what="disputed", actor=actor,
                       detail={"reason": why})  # fmt: skip

    return Command(run)


def decide_dispute(
    vault: Vault, *, trade_no: str, outcome: str, note: str, actor: str,
    channel: str = "console",
) -> Command[OrderView]:  # fmt: skip
    """Staff decide a disputed order: release it to the merchant, or refund the buyer in
    full."""
    from ebank.gateway import refunds  # refunds build on orders

    def run(tx: Tx) -> OrderView:
        why = checked_text(note, "a note", 200)
        if outcome not in ("release", "refund"):
            raise EbankError("INVALID_INPUT", reason="an outcome is release or refund")
        if not isinstance(trade_no, str):
            raise EbankError("ORDER_NOT_FOUND")
        row = _row(tx.conn, _BY_TRADE_NO, lock=True, trade_no=trade_no)
        if row.status != "disputed":
            raise refusal(row, "decide")
        merchant = merchants.get(tx.conn, row.merchant_id)
        audit.record(tx, actor=actor, action=f"gateway.dispute.{outcome}",
                     subject=f"order:{row.trade_no}", channel=channel,
                     detail={"note": why})  # fmt: skip
        if outcome == "release":
            return _release(tx, row, merchant, actor, "released")
        refunds.refund_rest(tx, vault, row, merchant, actor=actor, reason=why)
        return by_trade_no(tx.conn, row.trade_no)

    return Command(run)


# -- authorisations -------------------------------------------------------------------------
def capture(
    *, merchant_id: int, out_trade_no: str, capture_no: str, amount: int, final: bool,
    actor: str = "api",
) -> Command[OrderView]:  # fmt: skip
    """Take part or all of what the buyer authorised (请款); `final` releases the rest. The
    capture number makes a retry harmless; reused with another amount it is a conflict."""

    def run(tx: Tx) -> OrderView:
        if not isinstance(capture_no, str) or not REQUEST_NO.fullmatch(capture_no):
            raise EbankError("INVALID_INPUT", reason="a capture number is 1-64 of A-Z a-z 0-9 _ -")
        if type(amount) is not int or not 0 < amount <= MAX_MINOR or type(final) is not bool:
            raise EbankError("INVALID_AMOUNT", reason="a capture is a positive amount")
        row, merchant = merchant_order(tx, merchant_id, out_trade_no)
        done = tx.conn.execute(
            select(movements.c.amount)
            .where(movements.c.order_id == row.id, movements.c.capture_no == capture_no)
        ).first()  # fmt: skip
        if done is not None:
            # A final capture ends the authorisation: the same number asked again as final
            # while it still stands was not the capture it names.
            if done.amount != amount or (final and row.status == "authorised"):
                raise EbankError("IDEMPOTENCY_CONFLICT")
            return _view(row, merchant.merchant_no)
        if row.mode != "authorise" or row.status != "authorised":
            raise refusal(row, "capture")
        remaining = row.amount - row.paid_amount
        if amount > remaining:
            raise EbankError(
                "CAPTURE_EXCEEDS_AUTHORISATION", remaining=format_minor(remaining, "CNY")
            )
        if tx.now >= as_utc(row.release_at):
            raise refusal(row, "capture")  # the hold has run out; the sweep ends it
        entry = ledger.capture_hold(
            tx, hold_id=row.hold_id, to=[(ledger.account_id_of(tx, settlement.PENDING), amount)],
            final=final, memo=f"预授权请款 {row.trade_no}",
        ).id  # fmt: skip
        _to_merchant(tx, row, merchant, "capture", amount, entry, capture_no=capture_no)
        paid = row.paid_amount + amount
        status = "paid" if final or paid == row.amount else "authorised"
        return _change(tx, row, merchant, status=status, what="captured", actor=actor,
                       paid_amount=paid, detail={"amount": amount, "final": final})  # fmt: skip

    return Command(run)


def _end_authorisation(tx: Tx, row: Any, merchant: Merchant, actor: str, what: str) -> OrderView:
    """Release what is left of the hold; the order is paid if anything was captured."""
    try:
        ledger.release_hold(tx, hold_id=row.hold_id)
    except EbankError as error:  # the ledger's own sweep may have expired it already
        if error.code != "HOLD_NOT_PENDING":
            raise
    if row.paid_amount > 0:
        whole = refunded_back(tx.conn, row.id) == row.paid_amount  # captured, all given back
        return _change(tx, row, merchant, status="refunded" if whole else "paid", what=what,
                       actor=actor)  # fmt: skip
    status = "voided" if what == "voided" else "expired"
    return _change(tx, row, merchant, status=status, what=what, actor=actor)


def void(*, merchant_id: int, out_trade_no: str, actor: str = "api") -> Command[OrderView]:
    """The merchant gives up what it has not captured (撤销授权)."""

    def run(tx: Tx) -> OrderView:
        row, merchant = merchant_order(tx, merchant_id, out_trade_no)
        if row.mode != "authorise" or row.status != "authorised":
            raise refusal(row, "void")
        return _end_authorisation(tx, row, merchant, actor, "voided")

    return Command(run)


# -- what time does -------------------------------------------------------------------------
def _due(conn: Connection, status: str, column: Any, now: datetime, limit: int) -> list[int]:
    query = select(orders.c.id).where(orders.c.status == status, column <= now)
    return list(conn.execute(query.order_by(orders.c.id).limit(limit)).scalars())


def sweep(*, limit: int = SWEEP) -> Command[int]:
    """Let time act on orders: unpaid ones expire, escrow releases itself when the buyer's
    time to confirm has passed, authorisations end when their hold does. How many moved."""

    def run(tx: Tx) -> int:
        moved = 0
        for status, column in (("created", orders.c.expires_at), ("held", orders.c.release_at),
                               ("authorised", orders.c.release_at)):  # fmt: skip
            for order_id in _due(tx.conn, status, column, tx.now, limit):
                row = _row(tx.conn, _BY_ID, lock=True, id=order_id)
                if row.status != status:
                    continue
                merchant = merchants.get(tx.conn, row.merchant_id)
                if status == "created":
                    _change(tx, row, merchant, status="expired", what="expired", actor="system")
                elif status == "held":
                    _release(tx, row, merchant, "system", "released")
                else:
                    _end_authorisation(tx, row, merchant, "system", "expired")
                moved += 1
        return moved

    return Command(run)


def events_of(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(order_events).where(order_events.c.order_id == order_id).order_by(order_events.c.id)
    )
    return [
        {"status": r.status, "what": r.what, "actor": r.actor, "at": r.at,
         "detail": json.loads(r.detail)}
        for r in rows
    ]  # fmt: skip


def count_by_status(conn: Connection, merchant_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(orders.c.status, func.count())
        .where(orders.c.merchant_id == merchant_id).group_by(orders.c.status)
    )  # fmt: skip
    return dict(rows.all())
