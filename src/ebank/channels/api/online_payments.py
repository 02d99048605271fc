"""The customer's side of the merchant gateway (DOMAIN.md §5, as BOC offers it): online payment
switched on or off with a daily limit of their own, which cards may pay online, a year of
online payments, and the buyer's word on an escrow order (goods received, or a dispute).

Someone else's card or order answers exactly like one that does not exist (404).
"""

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from ebank.channels.api.auth import CustomerPrincipal, current_customer
from ebank.channels.api.common import Before, ObjectId, PageSize, read, write
from ebank.channels.api.schemas import ERRORS, Amount, In, text
from ebank.core.money import format_minor, parse_minor
from ebank.gateway import controls, merchants, orders
from ebank.gateway.models import OrderView

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["customer: online payment"])
Me = Annotated[CustomerPrincipal, Depends(current_customer)]
TradeNo = Annotated[str, Path(max_length=24, description="The bank's order number (trade_no)")]


def _cny(fen: int | None) -> str | None:
    return None if fen is None else format_minor(fen, "CNY")


class CardControlOut(BaseModel):
    id: int
    kind: Literal["debit", "credit"]
    number: str = Field(description="Masked")
    status: str = Field(description="The card's own status; only an active card pays")
    online: bool = Field(description="This card may pay online")


class ControlsOut(BaseModel):
    enabled: bool = Field(description="Online payment is switched on")
    daily_limit: str | None = Field(
        description="My own daily limit for online payment; null: only the bank's limits"
    )
    cards: list[CardControlOut]
    updated_at: datetime | None

    @classmethod
    def of(cls, view: controls.Controls) -> "ControlsOut":
        return cls(
            enabled=view.enabled, daily_limit=_cny(view.daily_limit),
            cards=[CardControlOut(id=c.card_id, kind=c.kind, number=c.masked, status=c.status,
                                  online=c.online) for c in view.cards],
            updated_at=view.updated_at,
        )  # fmt: skip


class ControlsIn(In):
    enabled: bool
    daily_limit: Amount | None = Field(
        None, description='A positive amount such as "2000.00", or null for none'
    )


class CardOnlineIn(In):
    enabled: bool


@router.get("/me/online-payment", summary="My online payment settings")
async def my_controls(request: Request, me: Me) -> ControlsOut:
    return ControlsOut.of(await read(request, lambda conn: controls.of(conn, me.customer_id)))


@router.put("/me/online-payment", summary="Switch online payment, set my own daily limit")
async def set_controls(request: Request, me: Me, body: ControlsIn) -> ControlsOut:
    """The bank's limits still apply on top of mine; a limit of mine only narrows them."""
    limit = None if body.daily_limit is None else parse_minor(body.daily_limit)
    done = await write(
        request,
        controls.set_online_payment(
            customer_id=me.customer_id, enabled=body.enabled, daily_limit=limit,
            channel=me.channel,
        ),
    )  # fmt: skip
    return ControlsOut.of(done)


@router.put("/me/online-payment/cards/{card_id}", summary="Allow or bar a card online")
async def set_card(request: Request, me: Me, card_id: ObjectId, body: CardOnlineIn) -> ControlsOut:
    done = await write(
        request,
        controls.set_card_online(
            customer_id=me.customer_id, card_id=card_id, enabled=body.enabled, channel=me.channel
        ),
    )
    return ControlsOut.of(done)


class OnlinePaymentOut(BaseModel):
    id: int = Field(description="Pass as `before` for the next page")
    trade_no: str
    merchant_no: str
    merchant_name: str
    subject: str
    mode: Literal["instant", "escrow", "authorise"]
    amount: str
    currency: str
    status: str
    paid_amount: str
    refunded_amount: str
    funding: str | None
    paid_at: datetime | None
    release_at: datetime | None = Field(
        description="Escrow: paid to the shop on its own then unless I confirm or dispute "
        "first; authorise: the hold ends then"
    )

    @classmethod
    def of(cls, view: OrderView, merchant_name: str) -> "OnlinePaymentOut":
        return cls(
            id=view.id, trade_no=view.trade_no, merchant_no=view.merchant_no,
            merchant_name=merchant_name, subject=view.subject, mode=view.mode,
            amount=format_minor(view.amount, view.currency), currency=view.currency,
            status=view.status, paid_amount=format_minor(view.paid_amount, view.currency),
            refunded_amount=format_minor(view.refunded_amount, view.currency),
            funding=view.funding, paid_at=view.paid_at, release_at=view.release_at,
        )  # fmt: skip


class OnlinePaymentsOut(BaseModel):
    payments: list[OnlinePaymentOut]


def _out(conn: Connection, views: list[OrderView]) -> list[OnlinePaymentOut]:
    names = {v.merchant_id: merchants.get(conn, v.merchant_id).name for v in views}
    return [OnlinePaymentOut.of(v, names[v.merchant_id]) for v in views]


@router.get("/me/online-payments", summary="My online payments, newest first")
async def my_online_payments(
    request: Request,
    me: Me,
    since: Annotated[
        date | None, Query(description="First business day, at most a year back (the default)")
    ] = None,
    before: Before = None,
    limit: PageSize = 50,
) -> OnlinePaymentsOut:
    now = request.app.state.clock.now()

    def history(conn: Connection) -> list[OnlinePaymentOut]:
        views = orders.history_of(
            conn, me.customer_id, since=since, now=now, before=before, limit=limit
        )
        return _out(conn, views)

    return OnlinePaymentsOut(payments=await read(request, history))


async def _answer(request: Request, view: OrderView) -> OnlinePaymentOut:
    [out] = await read(request, lambda conn: _out(conn, [view]))
    return out


@router.post("/me/online-payments/{trade_no}/confirm",
             summary="I received the goods: escrow pays the shop (确认收货)")  # fmt: skip
async def confirm_receipt(request: Request, me: Me, trade_no: TradeNo) -> OnlinePaymentOut:
    done = await write(
        request,
        orders.confirm_receipt(customer_id=me.customer_id, trade_no=trade_no, channel=me.channel),
    )
    return await _answer(request, done)


class DisputeIn(In):
    reason: Annotated[str, text(200, "What went wrong, for the bank's staff")]


@router.post("/me/online-payments/{trade_no}/dispute",
             summary="Dispute an escrow order: held until the bank decides")  # fmt: skip
async def dispute(request: Request, me: Me, trade_no: TradeNo, body: DisputeIn) -> OnlinePaymentOut:
    done = await write(
        request,
        orders.dispute(
            customer_id=me.customer_id, trade_no=trade_no, reason=body.reason, channel=me.channel
        ),
    )
    return await _answer(request, done)
