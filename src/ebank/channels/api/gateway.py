"""The merchant gateway's API: the signed merchant API a shop's server calls
(`/api/v1/gateway/...`, docs/gateway.md), the merchant portal's API for the merchant's entry
and review users (`/api/v1/merchant/...`, operator sessions), and the staff's (onboarding,
keys, fee plans, disputes).

The signed API reads its body itself (the signature covers the raw bytes), so its bodies are
parsed here from `SignedCall.json()` with the same strict models as everywhere else.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from ebank.channels.api.auth import (
    OperatorSession,
    StaffPrincipal,
    current_operator,
    staff_role,
)
from ebank.channels.api.common import ObjectId, read, vault_of, write
from ebank.channels.api.merchant_auth import SignedCall, signed_merchant
from ebank.channels.api.schemas import ERRORS, Amount, In, text
from ebank.core.errors import EbankError
from ebank.core.money import format_minor, parse_minor
from ebank.gateway import (
    fees,
    merchants,
    notices,
    orders,
    reconcile,
    refunds,
    reports,
    settlement,
    signing,
)
from ebank.gateway.fees import FeePlan
from ebank.gateway.merchants import Merchant, MerchantKey
from ebank.gateway.models import OrderRequest, OrderView, RefundView
from ebank.gateway.tables import CYCLES, KEY_ALGORITHMS, MERCHANT_STATUSES, MODES
from ebank.ops import staff

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Signed = Annotated[SignedCall, Depends(signed_merchant)]
Op = Annotated[OperatorSession, Depends(current_operator)]
Supervisor = Annotated[StaffPrincipal, Depends(staff_role(*staff.CHECKERS))]
Counter = Annotated[StaffPrincipal, Depends(staff_role(*staff.COUNTER))]
API, PORTAL, STAFF = "gateway: signed merchant API", "merchant portal", "staff: gateway"
OrderNo = Annotated[str, text(64)]
M = TypeVar("M", bound=BaseModel)


def _parse(call: SignedCall, model: type[M]) -> M:
    """The signed body as `model`, or INVALID_INPUT saying what is wrong."""
    try:
        return model.model_validate(call.json())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise EbankError("INVALID_INPUT", reason=f"{where}: {first['msg']}") from None


def _order_out(request: Request, view: OrderView) -> dict[str, Any]:
    """The order as the merchant sees it, with the link its buyer pays at."""
    token = orders.pay_token(vault_of(request), view.trade_no)
    return {**orders.public(view), "pay_url": str(request.base_url) + f"pay/{token}"}


# -- the signed merchant API --------------------------------------------------------------------
class OrderIn(In):
    out_trade_no: OrderNo
    amount: Amount
    currency: Literal["CNY"] = "CNY"
    mode: Literal[MODES] = "instant"  # type: ignore[valid-type]
    subject: Annotated[str, text(128)]
    return_url: Annotated[str, text(512)]
    notify_url: Annotated[str, text(512)]
    expire_minutes: int = Field(30, description="The buyer must pay within this")
    confirm_days: int = Field(10, description="Escrow: released this long after payment")
    auth_days: int = Field(7, description="Authorise: how long the hold lasts")


@router.post("/gateway/orders", tags=[API])
async def create_order(request: Request, call: Signed) -> dict[str, Any]:
    """Create an order. Its `out_trade_no` is the idempotency key: the same number with the
    same parameters answers with the same order, with others 409 ORDER_CONFLICT."""
    body = _parse(call, OrderIn)
    order = OrderRequest(
        merchant_id=call.merchant_id, out_trade_no=body.out_trade_no,
        amount=parse_minor(body.amount), mode=body.mode, subject=body.subject,
        return_url=body.return_url, notify_url=body.notify_url, currency=body.currency,
        expire_minutes=body.expire_minutes, confirm_days=body.confirm_days,
        auth_days=body.auth_days,
    )  # fmt: skip
    return _order_out(request, await write(request, orders.create(vault_of(request), order)))


@router.get("/gateway/orders/{out_trade_no}", tags=[API])
async def query_order(request: Request, out_trade_no: OrderNo, call: Signed) -> dict[str, Any]:
    """The order as it stands: with the notices, the only proof of payment."""
    view = await read(
        request, lambda c: orders.get(c, merchant_id=call.merchant_id, out_trade_no=out_trade_no)
    )
    return _order_out(request, view)


@router.post("/gateway/orders/{out_trade_no}/close", tags=[API])
async def close_order(request: Request, out_trade_no: OrderNo, call: Signed) -> dict[str, Any]:
    """Withdraw an order the buyer has not paid."""
    command = orders.close(merchant_id=call.merchant_id, out_trade_no=out_trade_no)
    return _order_out(request, await write(request, command))


class CaptureIn(In):
    out_capture_no: OrderNo
    amount: Amount
    final: bool = Field(False, description="Release what is left of the authorisation")


@router.post("/gateway/orders/{out_trade_no}/captures", tags=[API])
async def capture(request: Request, out_trade_no: OrderNo, call: Signed) -> dict[str, Any]:
    """Take part or all of an authorisation (请款); the capture number makes a retry safe."""
    body = _parse(call, CaptureIn)
    command = orders.capture(
        merchant_id=call.merchant_id, out_trade_no=out_trade_no, capture_no=body.out_capture_no,
        amount=parse_minor(body.amount), final=body.final,
    )  # fmt: skip
    return _order_out(request, await write(request, command))


@router.post("/gateway/orders/{out_trade_no}/void", tags=[API])
async def void(request: Request, out_trade_no: OrderNo, call: Signed) -> dict[str, Any]:
    """Give up what has not been captured of an authorisation."""
    command = orders.void(merchant_id=call.merchant_id, out_trade_no=out_trade_no)
    return _order_out(request, await write(request, command))


class RefundIn(In):
    out_refund_no: OrderNo
    amount: Amount
    reason: Annotated[str, text(128)] = ""


@router.post("/gateway/orders/{out_trade_no}/refunds", tags=[API])
async def refund(request: Request, out_trade_no: OrderNo, call: Signed) -> dict[str, Any]:
    """Refund part or all of an order at once; `out_refund_no` is the idempotency key."""
    body = _parse(call, RefundIn)
    command = refunds.request(
        vault_of(request), merchant_id=call.merchant_id, out_trade_no=out_trade_no,
        out_refund_no=body.out_refund_no, amount=parse_minor(body.amount), reason=body.reason,
        actor="api", review=False, channel="gateway",
    )  # fmt: skip
    return refunds.public(await write(request, command))


@router.get("/gateway/refunds/{out_refund_no}", tags=[API])
async def query_refund(request: Request, out_refund_no: OrderNo, call: Signed) -> dict[str, Any]:
    view = await read(
        request,
        lambda c: refunds.get(c, merchant_id=call.merchant_id, out_refund_no=out_refund_no),
    )
    return refunds.public(view)


def _notices_out(found: list[notices.Notice]) -> list[dict[str, Any]]:
    return [
        {"id": n.id, "type": n.type, "trade_no": n.trade_no, "state": n.state,
         "created_at": n.created_at.isoformat(),
         "next_attempt_at": None if n.next_attempt_at is None else n.next_attempt_at.isoformat(),
         "attempts": [{"attempt": a.number, "outcome": a.outcome, "error": a.error,
                       "at": a.at.isoformat()} for a in n.attempts]}
        for n in found
    ]  # fmt: skip


@router.get("/gateway/notifications", tags=[API])
async def notifications(
    request: Request, call: Signed, trade_no: Annotated[str | None, Query(max_length=24)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:  # fmt: skip
    """The notices sent about the merchant's orders, newest first, with every attempt."""
    found = await read(
        request,
        lambda c: notices.notifications_of(
            c, merchant_id=call.merchant_id, trade_no=trade_no, limit=limit
        ),
    )
    return _notices_out(found)


@router.post("/gateway/notifications/{event_id}/resend", tags=[API])
async def resend(request: Request, event_id: Annotated[str, text(40)],
                 call: Signed) -> list[dict[str, Any]]:  # fmt: skip
    """Send a notice again now (its id stays the same: deduplicate on it)."""
    command = notices.resend(
        merchant_id=call.merchant_id, event_id=event_id, actor="api", channel="gateway"
    )
    return _notices_out([await write(request, command)])


def _money(fen: int) -> str:
    return format_minor(fen, "CNY")


def _settlements_out(found: list[settlement.SettlementView]) -> list[dict[str, Any]]:
    return [
        {"settlement_no": v.settlement_no, "business_date": v.business_date.isoformat(),
         "cycle": v.cycle, "gross": _money(v.gross), "refunds": _money(v.refunds),
         "fees": _money(v.fees), "net": _money(v.net), "entry": v.entry,
         "created_at": v.created_at.isoformat(),
         "items": [{"trade_no": i.trade_no, "out_trade_no": i.out_trade_no, "kind": i.kind,
                    "refund_no": i.refund_no, "out_refund_no": i.out_refund_no,
                    "amount": _money(i.amount), "fee": _money(i.fee),
                    "business_date": i.business_date.isoformat(), "at": i.at.isoformat()}
                   for i in v.items]}
        for v in found
    ]  # fmt: skip


Since = Annotated[date, Query(alias="from", description="First business day (Asia/Shanghai)")]
Until = Annotated[date, Query(alias="to", description="Last business day, included")]


@router.get("/gateway/settlements", tags=[API])
async def settlements(request: Request, call: Signed, since: Since,
                      until: Until) -> list[dict[str, Any]]:  # fmt: skip
    """The merchant's settlements of these business days, each with what it took."""
    found = await read(request, lambda c: settlement.statement(c, call.merchant_id, since, until))
    return _settlements_out(found)


def _csv(content: bytes, day: date) -> Response:
    return Response(
        content, media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="reconciliation-{day}.csv"'},
    )  # fmt: skip


@router.get("/gateway/reconciliation/{day}", tags=[API])
async def reconciliation(request: Request, day: date, call: Signed) -> Response:
    """The business day's reconciliation file (CSV): every payment, refund and fee, then
    totals (docs/gateway.md, "Reconciliation file")."""
    return _csv(await read(request, lambda c: reconcile.daily_file(c, call.merchant_id, day)), day)


@router.get("/gateway/public-key", tags=[API])
async def gateway_public_key() -> dict[str, str]:
    """The key the gateway signs its answers, notices and return results with."""
    key = signing.gateway_key()
    return {"algorithm": "RSA2", "serial": key.serial, "public_key": key.public_pem}


# -- the merchant portal (the enterprise's operators) -------------------------------------------
async def _portal(request: Request, op: OperatorSession) -> Merchant:
    """The merchant whose operator this is; 403 if their enterprise is no merchant."""
    try:
        return await read(request, lambda c: merchants.of_enterprise(c, op.operator.customer_id))
    except EbankError as error:
        if error.code == "MERCHANT_NOT_FOUND":
            raise EbankError("FORBIDDEN") from None
        raise


def _refund_out(view: RefundView) -> dict[str, Any]:
    return {"id": view.id, **refunds.public(view), "requested_by": view.requested_by,
            "decided_by": view.decided_by}  # fmt: skip


@router.get("/merchant/orders", tags=[PORTAL])
async def portal_orders(
    request: Request, op: Op, status: Annotated[str | None, Query(max_length=12)] = None,
    mode: Annotated[str | None, Query(max_length=12)] = None,
    since: datetime | None = None, until: datetime | None = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:  # fmt: skip
    """The merchant's orders, newest first (search by status, payment mode: instant, escrow
    or authorise, and creation time)."""
    merchant = await _portal(request, op)
    found = await read(
        request,
        lambda c: orders.of_merchant(c, merchant.id, status=status, mode=mode, since=since,
                                     until=until, before=before, limit=limit),
    )  # fmt: skip
    return [{"id": v.id, **orders.public(v)} for v in found]


@router.get("/merchant/orders/{trade_no}", tags=[PORTAL])
async def portal_order(request: Request, trade_no: Annotated[str, text(24)],
                       op: Op) -> dict[str, Any]:  # fmt: skip
    """One order with its history and refunds."""
    merchant = await _portal(request, op)

    def load(conn: Any) -> dict[str, Any]:
        view = orders.by_trade_no(conn, trade_no, merchant_id=merchant.id)
        return {
            **orders.public(view), "events": orders.events_of(conn, view.id),
            "refunds": [_refund_out(r) for r in refunds.of_order(conn, view.id)],
        }  # fmt: skip

    return await read(request, load)


class PortalRefundIn(In):
    out_trade_no: OrderNo
    out_refund_no: OrderNo
    amount: Amount
    reason: Annotated[str, text(128)] = ""


@router.post("/merchant/refunds", tags=[PORTAL])
async def portal_refund(request: Request, body: PortalRefundIn, op: Op) -> dict[str, Any]:
    """An entry user (录入) asks for a refund; a review user approves it before it is paid."""
    merchant = await _portal(request, op)
    command = refunds.enter(
        vault_of(request), merchant_id=merchant.id, operator=op.operator,
        out_trade_no=body.out_trade_no, out_refund_no=body.out_refund_no,
        amount=parse_minor(body.amount), reason=body.reason,
    )  # fmt: skip
    return _refund_out(await write(request, command))


@router.get("/merchant/refunds", tags=[PORTAL])
async def portal_refunds(
    request: Request, op: Op,
    status: Annotated[Literal["requested", "rejected", "succeeded"] | None, Query()] = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The merchant's refunds, newest first; `status=requested` is the review queue."""
    merchant = await _portal(request, op)
    found = await read(request, lambda c: refunds.of_merchant(c, merchant.id, status=status))
    return [_refund_out(v) for v in found]


class ReviewIn(In):
    code: Annotated[str, text(16, "The review user's token code")]
    note: Annotated[str, text(200)] = ""


@router.post("/merchant/refunds/{refund_id}/approve", tags=[PORTAL])
async def portal_approve(request: Request, refund_id: ObjectId, body: ReviewIn,
                         op: Op) -> dict[str, Any]:  # fmt: skip
    """A review user (复核), not the one who asked, approves with their token: paid now."""
    merchant = await _portal(request, op)
    command = refunds.approve(
        vault_of(request), merchant_id=merchant.id, refund_id=refund_id, operator=op.operator,
        code=body.code,
    )  # fmt: skip
    return _refund_out(await write(request, command))


@router.post("/merchant/refunds/{refund_id}/reject", tags=[PORTAL])
async def portal_reject(request: Request, refund_id: ObjectId, body: ReviewIn,
                        op: Op) -> dict[str, Any]:  # fmt: skip
    merchant = await _portal(request, op)
    command = refunds.reject(
        vault_of(request), merchant_id=merchant.id, refund_id=refund_id, operator=op.operator,
        code=body.code, note=body.note or "-",
    )  # fmt: skip
    return _refund_out(await write(request, command))


@router.get("/merchant/settlements", tags=[PORTAL])
async def portal_settlements(request: Request, op: Op, since: Since,
                             until: Until) -> list[dict[str, Any]]:  # fmt: skip
    merchant = await _portal(request, op)
    found = await read(request, lambda c: settlement.statement(c, merchant.id, since, until))
    return _settlements_out(found)


@router.get("/merchant/reconciliation/{day}", tags=[PORTAL])
async def portal_reconciliation(request: Request, day: date, op: Op) -> Response:
    merchant = await _portal(request, op)
    return _csv(await read(request, lambda c: reconcile.daily_file(c, merchant.id, day)), day)


By = Annotated[
    list[Literal["merchant", "channel", "mode", "funding", "day", "month"]],
    Query(description="Group by these; at most one of day and month"),
]


def _statistics_out(stats: reports.Statistics) -> dict[str, Any]:
    def volume(v: reports.Volume) -> dict[str, Any]:
        return {"count": v.count, "amount": _money(v.amount), "refunds": _money(v.refunds),
                "fees": _money(v.fees)}  # fmt: skip

    return {
        "by": list(stats.by), "flagged": list(stats.flagged), "totals": volume(stats.totals),
        "groups": [{"key": dict(zip(stats.by, g.key, strict=True)), **volume(g.volume),
                    "flagged": g.flagged} for g in stats.groups],
    }  # fmt: skip


@router.get("/merchant/reports", tags=[PORTAL])
async def portal_reports(request: Request, op: Op, since: Since, until: Until,
                         by: By) -> dict[str, Any]:  # fmt: skip
    """The merchant's statistics by channel, payment mode, account type and period."""
    merchant = await _portal(request, op)
    stats = await read(request, lambda c: reports.statistics(
        c, merchant_id=merchant.id, since=since, until=until, by=by))  # fmt: skip
    return _statistics_out(stats)


@router.get("/merchant/notifications", tags=[PORTAL])
async def portal_notifications(
    request: Request, op: Op, trade_no: Annotated[str | None, Query(max_length=24)] = None
) -> list[dict[str, Any]]:
    merchant = await _portal(request, op)
    found = await read(
        request, lambda c: notices.notifications_of(c, merchant_id=merchant.id, trade_no=trade_no)
    )
    return _notices_out(found)


@router.post("/merchant/notifications/{event_id}/resend", tags=[PORTAL])
async def portal_resend(request: Request, event_id: Annotated[str, text(40)],
                        op: Op) -> list[dict[str, Any]]:  # fmt: skip
    merchant = await _portal(request, op)
    command = notices.resend(
        merchant_id=merchant.id, event_id=event_id, actor=op.operator.actor, channel="merchant"
    )
    return _notices_out([await write(request, command)])


# -- staff ---------------------------------------------------------------------------------------
class MerchantOut(BaseModel):
    id: int
    merchant_no: str
    customer_id: int
    name: str
    industry: str
    settlement_account_id: int
    fee_plan: str
    cycle: str
    settle_days: int
    status: str
    created_at: datetime

    @classmethod
    def of(cls, m: Merchant) -> "MerchantOut":
        return cls(**{name: getattr(m, name) for name in cls.model_fields})


class OnboardIn(In):
    customer_id: ObjectId
    name: Annotated[str, text(100, "Shown to buyers on the pay page")]
    industry: Annotated[str, text(40)]
    settlement_account: Annotated[str, text(34)]
    fee_plan: Annotated[str, text(24)]
    cycle: Literal[CYCLES]  # type: ignore[valid-type]
    settle_days: int = 0


@router.post("/staff/gateway/merchants", tags=[STAFF])
async def onboard(request: Request, body: OnboardIn, who: Counter) -> MerchantOut:
    """Sign an enterprise up as a merchant (its credit code is the business licence number)."""
    command = merchants.onboard(
        customer_id=body.customer_id, name=body.name, industry=body.industry,
        settlement_account=body.settlement_account, fee_plan=body.fee_plan, cycle=body.cycle,
        settle_days=body.settle_days, actor=who.actor, channel="console",
    )  # fmt: skip
    return MerchantOut.of(await write(request, command))


@router.get("/staff/gateway/merchants", tags=[STAFF])
async def merchant_list(request: Request, who: Counter) -> list[MerchantOut]:
    return [MerchantOut.of(m) for m in await read(request, merchants.listing)]


class TermsIn(In):
    fee_plan: Annotated[str, text(24)]
    cycle: Literal[CYCLES]  # type: ignore[valid-type]
    settle_days: int = 0


@router.put("/staff/gateway/merchants/{merchant_id}/terms", tags=[STAFF])
async def change_terms(request: Request, merchant_id: ObjectId, body: TermsIn,
                       who: Supervisor) -> MerchantOut:  # fmt: skip
    command = merchants.change_terms(
        merchant_id=merchant_id, fee_plan=body.fee_plan, cycle=body.cycle,
        settle_days=body.settle_days, actor=who.actor, channel="console",
    )  # fmt: skip
    return MerchantOut.of(await write(request, command))


class StatusIn(In):
    status: Literal[MERCHANT_STATUSES]  # type: ignore[valid-type]


@router.put("/staff/gateway/merchants/{merchant_id}/status", tags=[STAFF])
async def merchant_status(request: Request, merchant_id: ObjectId, body: StatusIn,
                          who: Supervisor) -> MerchantOut:  # fmt: skip
    command = merchants.set_status(
        merchant_id=merchant_id, status=body.status, actor=who.actor, channel="console"
    )
    return MerchantOut.of(await write(request, command))


class KeyIn(In):
    algorithm: Literal[KEY_ALGORITHMS]  # type: ignore[valid-type]
    public_key: Annotated[str, text(4096, "RSA: PEM; SM2: the public point in hex")]


class KeyOut(BaseModel):
    id: int
    algorithm: str
    fingerprint: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, k: MerchantKey) -> "KeyOut":
        return cls(id=k.id, algorithm=k.algorithm, fingerprint=k.fingerprint,
                   created_at=k.created_at, revoked_at=k.revoked_at)  # fmt: skip


@router.post("/staff/gateway/merchants/{merchant_id}/keys", tags=[STAFF])
async def add_key(request: Request, merchant_id: ObjectId, body: KeyIn, who: Counter) -> KeyOut:
    """Register the merchant's public key: from now on its requests are verified with it."""
    command = merchants.add_key(
        merchant_id=merchant_id, algorithm=body.algorithm, public_key=body.public_key,
        actor=who.actor, channel="console",
    )  # fmt: skip
    return KeyOut.of(await write(request, command))


@router.delete("/staff/gateway/merchants/{merchant_id}/keys/{key_id}", tags=[STAFF])
async def revoke_key(request: Request, merchant_id: ObjectId, key_id: ObjectId,
                     who: Supervisor) -> dict[str, str]:  # fmt: skip
    await write(request, merchants.revoke_key(merchant_id=merchant_id, key_id=key_id,
                                              actor=who.actor, channel="console"))  # fmt: skip
    return {"status": "revoked"}


class FeePlanOut(BaseModel):
    code: str
    name: str
    rate_ppm: int = Field(description="Parts per million of the amount: 0.1% is 1000")
    fixed: str
    minimum: str
    maximum: str | None = None

    @classmethod
    def of(cls, p: FeePlan) -> "FeePlanOut":
        return cls(
            code=p.code, name=p.name, rate_ppm=p.rate_ppm, fixed=format_minor(p.fixed, "CNY"),
            minimum=format_minor(p.minimum, "CNY"),
            maximum=None if p.maximum is None else format_minor(p.maximum, "CNY"),
        )  # fmt: skip


@router.get("/staff/gateway/fee-plans", tags=[STAFF])
async def fee_plans(request: Request, who: Counter) -> list[FeePlanOut]:
    return [FeePlanOut.of(p) for p in await read(request, fees.plans)]


class DecisionIn(In):
    outcome: Literal["release", "refund"]
    note: Annotated[str, text(200)]


@router.post("/staff/gateway/disputes/{trade_no}/decision", tags=[STAFF])
async def decide_dispute(request: Request, trade_no: Annotated[str, text(24)], body: DecisionIn,
                         who: Supervisor) -> dict[str, Any]:  # fmt: skip
    """Decide a buyer's dispute of an escrow order: release to the merchant or refund."""
    command = orders.decide_dispute(
        vault_of(request), trade_no=trade_no, outcome=body.outcome, note=body.note,
        actor=who.actor,
    )  # fmt: skip
    return orders.public(await write(request, command))


@router.get("/staff/gateway/reports", tags=[STAFF])
async def staff_reports(request: Request, who: Supervisor, since: Since, until: Until,
                        by: By) -> dict[str, Any]:  # fmt: skip
    """Every merchant's statistics; merchants flagged for fabricated volume are left out of
    the totals (DOMAIN §5)."""
    stats = await read(request, lambda c: reports.statistics(c, since=since, until=until, by=by))
    return _statistics_out(stats)


@router.get("/staff/gateway/reconciliation", tags=[STAFF])
async def staff_reconciliation(
    request: Request, who: Supervisor, day: date | None = None
) -> list[dict[str, Any]]:
    """The internal reconciliation: orders, movements, ledger postings and settlements agree,
    or each break says where and by how much (empty: all agree)."""
    breaks = await read(request, lambda c: reconcile.check(c, day))

    return [{"what": b.what, "where": b.where, "expected": b.expected, "found": b.found}
            for b in breaks]  # fmt: skip
