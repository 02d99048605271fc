"""Refunds of gateway orders: full or partial, several per order, never more than was paid.

Each refund has the merchant's own request number (idempotent: the same number with the same
parameters is the same refund, with others REFUND_CONFLICT). Through the signed API the
merchant's system refunds at once; in the merchant portal an entry user (录入, maker) asks for
it and a review user (复核, checker), another person, approves it with their token, so no one
person can send money back. A refund asked for and waiting counts against what may still be
refunded.

Where the money comes from: escrow while the order is held there; the merchant's pending money
while the order's takings are not yet settled; once settled, the merchant's settlement account
(which must hold enough).
"""

from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, select

from ebank.accounts import service as accounts
from ebank.cards import service as cards
from ebank.core import audit
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError, checked_text
from ebank.core.money import MAX_MINOR, format_minor
from ebank.core.writer import Command, Tx, fingerprint
from ebank.corporate import operators
from ebank.corporate.operators import Operator
from ebank.gateway import merchants, notices, orders, settlement
from ebank.gateway.merchants import Merchant
from ebank.gateway.models import RefundView
from ebank.gateway.tables import orders as order_rows
from ebank.gateway.tables import refunds
from ebank.ledger import service as ledger
from ebank.ledger.models import reference
from ebank.notify import notices as customer_notices
from ebank.security import service as security

REFUNDABLE = ("held", "authorised", "paid")  # a disputed order is refunded by staff only


def _view(row: Any, order: Any) -> RefundView:
    return RefundView(
        row.id, row.refund_no, row.order_id, order.trade_no, order.out_trade_no,
        row.out_refund_no, row.amount, row.reason, row.status, row.requested_by,
        row.decided_by, as_utc(row.created_at),
        None if row.decided_at is None else as_utc(row.decided_at),
    )  # fmt: skip


def public(view: RefundView) -> dict[str, Any]:
    return {
        "refund_no": view.refund_no, "out_refund_no": view.out_refund_no,
        "trade_no": view.trade_no, "out_trade_no": view.out_trade_no,
        "amount": format_minor(view.amount, "CNY"), "reason": view.reason,
        "status": view.status, "created_at": view.created_at.isoformat(),
        "decided_at": None if view.decided_at is None else view.decided_at.isoformat(),
    }  # fmt: skip


def _order_of(conn: Connection, order_id: int, *, lock: bool = False) -> Any:
    query = select(order_rows).where(order_rows.c.id == order_id)
    return conn.execute(query.with_for_update() if lock else query).one()


def get(conn: Connection, *, merchant_id: int, out_refund_no: str) -> RefundView:
    """A merchant's refund by its own request number; someone else's is not found."""
    row = conn.execute(
        select(refunds).where(
            refunds.c.merchant_id == merchant_id, refunds.c.out_refund_no == out_refund_no
        )
    ).first()
    if row is None or not isinstance(out_refund_no, str):
        raise EbankError("REFUND_NOT_FOUND")
    return _view(row, _order_of(conn, row.order_id))


def of_merchant(
    conn: Connection, merchant_id: int, *, status: str | None = None, limit: int = 100
) -> list[RefundView]:
    """A merchant's refunds, newest first (the portal's review queue with `requested`)."""
    query = (
        select(refunds, order_rows.c.trade_no, order_rows.c.out_trade_no)
        .join(order_rows, order_rows.c.id == refunds.c.order_id)
        .where(refunds.c.merchant_id == merchant_id)
    )
    if status is not None:
        query = query.where(refunds.c.status == status)
    rows = conn.execute(query.order_by(refunds.c.id.desc()).limit(limit))
    return [_view(r, r) for r in rows]


def of_order(conn: Connection, order_id: int) -> list[RefundView]:
    order = _order_of(conn, order_id)
    rows = conn.execute(
        select(refunds).where(refunds.c.order_id == order_id).order_by(refunds.c.id)
    )
    return [_view(r, order) for r in rows]


def _refundable(order: Any) -> int:
    return order.paid_amount - order.refunded_amount


def _pay_back(tx: Tx, vault: Vault, order: Any, merchant: Merchant,
              refund: dict[str, Any]) -> None:  # fmt: skip
    """Move a refund's money to the buyer's card and record where it came from."""
    amount = refund["amount"]
    if order.status in ("held", "disputed"):
        source, debit = "escrow", ledger.account_id_of(tx, orders.ESCROW)
    elif settlement.unsettled_of_order(tx.conn, order.id) >= amount:
        source, debit = "pending", ledger.account_id_of(tx, settlement.PENDING)
    else:
        account = accounts.account_by_id(tx.conn, merchant.settlement_account_id)
        source, debit = "settlement", account.ledger_account_id
    entry = ledger.transfer(
        tx, debit=debit, credit=order.payer_ledger_account_id, amount=amount,
        memo=f"退款 {refund['refund_no']}",
    ).id  # fmt: skip
    orders.record_movement(tx, order, merchant, "refund", amount, entry, source=source,
                           refund_id=refund["id"])  # fmt: skip
    card = cards.get_card(tx.conn, order.card_id)
    customer_notices.account_movement(
        tx, vault, customer_id=order.buyer_id, account_number=card.masked, amount=amount,
        direction="in", balance=ledger.balance_in(tx, card.ledger_account_id),
        memo=f"退款-{merchant.name}"[:60], at=tx.now,
    )  # fmt: skip


def _finish(tx: Tx, vault: Vault, order: Any, merchant: Merchant, refund: dict[str, Any],
            actor: str, *, refunded: int) -> None:  # fmt: skip
    """Pay a refund out, mark it succeeded, and move the order on (`refunded` is the order's
    refunded total with this refund in it)."""
    _pay_back(tx, vault, order, merchant, refund)
    done = {"status": "succeeded", "decided_by": actor, "decided_at": tx.now}
    tx.conn.execute(refunds.update().where(refunds.c.id == refund["id"]).values(done))
    # Whole once every fen paid is back: refunds waiting for review are not back yet.
    back = orders.refunded_back(tx.conn, order.id)
    whole = back == order.paid_amount and order.status != "authorised"
    orders.record_refund(tx, order, merchant, refunded=refunded, whole=whole, actor=actor,
                         refund_no=refund["refund_no"])  # fmt: skip
    notices.announce(
        tx, merchant_id=merchant.id, merchant_no=merchant.merchant_no,
        order_id=order.id, notify_url=order.notify_url,
        event_type="refund.succeeded",
        data=public(_view(SimpleNamespace(**{**refund, **done}), order)),
    )  # fmt: skip


def request(
    vault: Vault, *, merchant_id: int, out_trade_no: str, out_refund_no: str, amount: int,
    reason: str, actor: str, review: bool, channel: str,
) -> Command[RefundView]:  # fmt: skip
    """Refund part or all of an order: at once, or (`review`) waiting for a review user."""

    def run(tx: Tx) -> RefundView:
        if not isinstance(out_refund_no, str) or not orders.REQUEST_NO.fullmatch(out_refund_no):
            raise EbankError("INVALID_INPUT", reason="a refund number is 1-64 of A-Z a-z 0-9 _ -")
        if type(amount) is not int or not 0 < amount <= MAX_MINOR:
            raise EbankError("INVALID_AMOUNT", reason="a refund is a positive amount")
        why = checked_text(reason, "a reason", 128, empty=True)
        order, merchant = orders.merchant_order(tx, merchant_id, out_trade_no)
        asked = fingerprint(order=order.id, amount=amount, reason=why, review=review)
        found = tx.conn.execute(
            select(refunds).where(
                refunds.c.merchant_id == merchant.id, refunds.c.out_refund_no == out_refund_no
            )
        ).first()
        if found is not None:
            if found.request_hash != asked:
                raise EbankError("REFUND_CONFLICT")
            return _view(found, order)
        if order.status not in REFUNDABLE:
            raise orders.refusal(order, "refund")
        if amount > _refundable(order):
            raise EbankError(
                "REFUND_EXCEEDS_PAID", refundable=format_minor(_refundable(order), "CNY")
            )
        refund_id = tx.new_id("gateway_refunds")
        values = dict(
            id=refund_id, refund_no=reference("R", refund_id, tx.now), order_id=order.id,
            merchant_id=merchant.id, out_refund_no=out_refund_no, request_hash=asked,
            amount=amount, reason=why, status="requested", requested_by=actor,
            decided_by=None, created_at=tx.now, decided_at=None,
        )  # fmt: skip
        tx.conn.execute(refunds.insert().values(values))
        refunded = order.refunded_amount + amount
        audit.record(
            tx, actor=actor, action="gateway.refund.request", subject=f"order:{order.trade_no}",
            channel=channel, detail={"refund": values["refund_no"], "amount": amount},
        )  # fmt: skip
        if review:  # held back from what may still be refunded until it is decided
            tx.conn.execute(
                order_rows.update().where(order_rows.c.id == order.id)
                .values(refunded_amount=refunded, updated_at=tx.now)
            )  # fmt: skip
            return _view(SimpleNamespace(**values), order)
        _finish(tx, vault, order, merchant, values, actor, refunded=refunded)
        return get(tx.conn, merchant_id=merchant.id, out_refund_no=out_refund_no)

    return Command(run)


def enter(
    vault: Vault, *, merchant_id: int, operator: Operator, out_trade_no: str,
    out_refund_no: str, amount: int, reason: str, channel: str = "merchant",
) -> Command[RefundView]:  # fmt: skip
    """An entry user (录入, the maker role) asks for a refund in the portal; it waits for a
    review user (`approve`)."""
    if "maker" not in operator.roles:
        raise EbankError("FORBIDDEN")
    return request(
        vault, merchant_id=merchant_id, out_trade_no=out_trade_no, out_refund_no=out_refund_no,
        amount=amount, reason=reason, actor=operator.actor, review=True, channel=channel,
    )  # fmt: skip


def _waiting(tx: Tx, merchant_id: int, refund_id: int) -> tuple[Any, Any, Merchant]:
    if type(refund_id) is not int:
        raise EbankError("REFUND_NOT_FOUND")
    refund = tx.conn.execute(
        select(refunds).where(refunds.c.id == refund_id, refunds.c.merchant_id == merchant_id)
        .with_for_update()
    ).first()  # fmt: skip
    if refund is None:
        raise EbankError("REFUND_NOT_FOUND")
    if refund.status != "requested":
        raise EbankError("REFUND_DECIDED", status=refund.status)
    return (
        refund,
        _order_of(tx.conn, refund.order_id, lock=True),
        merchants.get(tx.conn, merchant_id),
    )


def _reviewer(tx: Tx, vault: Vault, refund: Any, operator: Operator, code: str) -> None:
    """A review user, not the one who asked, confirming with their token now."""
    if "checker" not in operator.roles:
        raise EbankError("FORBIDDEN")
    if refund.requested_by == operator.actor:
        raise EbankError("REFUND_OWN_REQUEST")
    security.require(operators.check_token(tx, vault, operator, code))


def approve(vault: Vault, *, merchant_id: int, refund_id: int, operator: Operator, code: str,
            channel: str = "merchant") -> Command[RefundView]:  # fmt: skip
    """A review user approves a refund an entry user asked for: the money goes back now."""

    def run(tx: Tx) -> RefundView:
        refund, order, merchant = _waiting(tx, merchant_id, refund_id)
        _reviewer(tx, vault, refund, operator, code)
        if order.status not in REFUNDABLE:
            raise orders.refusal(order, "refund")
        audit.record(
            tx, actor=operator.actor, action="gateway.refund.approve",
            subject=f"order:{order.trade_no}", channel=channel,
            detail={"refund": refund.refund_no, "amount": refund.amount},
        )  # fmt: skip
        _finish(tx, vault, order, merchant, dict(refund._mapping), operator.actor,
                refunded=order.refunded_amount)  # fmt: skip
        return get(tx.conn, merchant_id=merchant.id, out_refund_no=refund.out_refund_no)

    return Command(run)


def reject(vault: Vault, *, merchant_id: int, refund_id: int, operator: Operator, code: str,
           note: str, channel: str = "merchant") -> Command[RefundView]:  # fmt: skip
    """A review user turns a refund down: what it held back may be refunded again."""

    def run(tx: Tx) -> RefundView:
        why = checked_text(note, "a note", 200)
        refund, order, merchant = _waiting(tx, merchant_id, refund_id)
        _reviewer(tx, vault, refund, operator, code)
        tx.conn.execute(
            refunds.update().where(refunds.c.id == refund.id)
            .values(status="rejected", decided_by=operator.actor, decided_at=tx.now)
        )  # fmt: skip
        tx.conn.execute(
            order_rows.update().where(order_rows.c.id == order.id)
            .values(refunded_amount=order.refunded_amount - refund.amount, updated_at=tx.now)
        )  # fmt: skip
        audit.record(
            tx, actor=operator.actor, action="gateway.refund.reject",
            subject=f"order:{order.trade_no}", channel=channel,
            detail={"refund": refund.refund_no, "note": why},
        )  # fmt: skip
        view = get(tx.conn, merchant_id=merchant.id, out_refund_no=refund.out_refund_no)
        notices.announce(
            tx, merchant_id=merchant.id, merchant_no=merchant.merchant_no,
            order_id=order.id, notify_url=order.notify_url,
            event_type="refund.rejected", data=public(view),
        )  # fmt: skip
        return view

    return Command(run)


def refund_rest(
    tx: Tx, vault: Vault, order: Any, merchant: Merchant, *, actor: str, reason: str
) -> None:
    """Staff decided a dispute for the buyer: refunds waiting for review are set aside (their
    money goes back with this one) and all that is left is refunded from escrow."""
    waiting = tx.conn.execute(
        select(refunds.c.id).where(refunds.c.order_id == order.id, refunds.c.status == "requested")
    ).scalars().all()  # fmt: skip
    if waiting:
        tx.conn.execute(
            refunds.update().where(refunds.c.id.in_(waiting))
            .values(status="rejected", decided_by=actor, decided_at=tx.now)
        )  # fmt: skip
    amount = order.paid_amount - orders.refunded_back(tx.conn, order.id)
    if amount <= 0:
        raise orders.refusal(order, "refund")
    refund_id = tx.new_id("gateway_refunds")
    values = dict(
        id=refund_id, refund_no=reference("R", refund_id, tx.now), order_id=order.id,
        # ':' is outside the merchant's numbers: a merchant cannot take this one first.
        merchant_id=merchant.id, out_refund_no=f"DISPUTE:{order.trade_no}",
        request_hash=fingerprint(order=order.id, amount=amount, dispute=True), amount=amount,
        reason=reason[:128], status="requested", requested_by=actor, decided_by=None,
        created_at=tx.now, decided_at=None,
    )  # fmt: skip
    tx.conn.execute(refunds.insert().values(values))
    _finish(tx, vault, order, merchant, values, actor, refunded=order.paid_amount)
