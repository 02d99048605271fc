"""The merchant portal (商户服务平台), the pages under /merchant: an enterprise's operators
search the merchant's orders, ask for and review refunds, read settlements, download
reconciliation files, re-send notices and read reports with charts.

It does what the portal's API (`/api/v1/merchant`, channels/api/gateway.py) does, through the
same services: an entry user (录入, the maker role) asks for a refund, a review user (复核, the
checker role), another person, approves it with their token; the services refuse the rest.
"""

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from ebank.channels.api.common import read, vault_of, write
from ebank.channels.web import guard
from ebank.channels.web.area import (
    Area,
    NotSignedIn,
    SignedIn,
    required,
    typed_amount,
    typed_day,
    typed_id,
    typed_range,
    with_query,
)
from ebank.channels.web.i18n import _
from ebank.channels.web.operators import (
    Signed,
    is_operator,
    login_routes,
    operator_of,
    operator_posted,
)
from ebank.channels.web.words import N_, define, term
from ebank.core.clock import BUSINESS_TZ, business_date, business_day_bounds
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.corporate.operators import Operator
from ebank.gateway import merchants, notices, orders, reconcile, refunds, reports, settlement
from ebank.gateway.merchants import Merchant
from ebank.gateway.models import OrderView
from ebank.gateway.tables import MODES, ORDER_STATUSES, REFUND_STATUSES

MERCHANT = Area("merchant", "/merchant", "merchant_login", is_operator)
router = APIRouter(prefix=MERCHANT.prefix, include_in_schema=False)
login_routes(MERCHANT, router, "merchant_orders")

PAGE = 50  # orders a page shows
SEARCH_FIELDS = ("from", "to", "status", "mode", "number")
REPORT_BY = ("day", "month", "channel", "mode", "funding")
AMOUNT_ERRORS = ("INVALID_AMOUNT", "REFUND_EXCEEDS_PAID")
REFUND_FIELDS = ("amount", "reason")
REVIEW_FIELDS = ("code", "note")
NOT_THE_CODE = ("FORBIDDEN", "REFUND_OWN_REQUEST", "REFUND_DECIDED", "REFUND_NOT_FOUND")

define("merchant_order_status", {
    "created": N_("Awaiting payment"), "closed": N_("Closed"), "expired": N_("Expired"),
    "held": N_("Paid, in escrow"), "disputed": N_("Disputed"), "authorised": N_("Authorised"),
    "paid": N_("Paid"), "voided": N_("Voided"), "refunded": N_("Refunded"),
})  # fmt: skip
define("merchant_mode", {
    "instant": N_("Instant payment"), "escrow": N_("Escrow payment"),
    "authorise": N_("Pre-authorisation"),
})  # fmt: skip
define("merchant_refund_status", {
    "requested": N_("Awaiting review"), "rejected": N_("Rejected"), "succeeded": N_("Refunded"),
})  # fmt: skip
define("merchant_notice_state", {
    "pending": N_("Waiting to send"), "sending": N_("Sending"), "delivered": N_("Delivered"),
    "failed": N_("Given up"), "retrying": N_("Will retry"),
})  # fmt: skip
define("merchant_movement", {
    "pay": N_("Payment"), "escrow_in": N_("Into escrow"), "release": N_("Released from escrow"),
    "capture": N_("Capture"), "refund": N_("Refund"),
})  # fmt: skip
define("merchant_event", {
    "created": N_("Order created"), "paid": N_("Paid by the buyer"),
    "held": N_("Paid into escrow"), "authorised": N_("Authorised by the buyer"),
    "captured": N_("Captured"), "released": N_("Released to the merchant"),
    "voided": N_("Authorisation voided"), "refunded": N_("Refund paid"),
    "disputed": N_("Disputed by the buyer"), "closed": N_("Closed by the merchant"),
    "expired": N_("Expired unpaid"),
})  # fmt: skip
define("merchant_report_by", {
    "day": N_("By day"), "month": N_("By month"), "channel": N_("By channel"),
    "mode": N_("By payment mode"), "funding": N_("By card type"),
})  # fmt: skip
define("merchant_report_column", {
    "day": N_("Business day"), "month": N_("Month"), "channel": N_("Payment channel"),
    "mode": N_("Payment mode"), "funding": N_("Card type"),
})  # fmt: skip
REPORT_TERMS = {"channel": "channel", "mode": "merchant_mode",
                "funding": "card_kind"}  # fmt: skip


@dataclass(slots=True)
class Portal:
    """A signed-in operator of a merchant, as they and the merchant stand now."""

    me: SignedIn
    operator: Operator
    merchant: Merchant

    def render(self, template: str, **context: Any) -> Response:
        return self.me.render(template, operator=self.operator, merchant=self.merchant, **context)


async def portal(request: Request) -> Portal:
    """The operator's visit, if their enterprise is a merchant; a refusal otherwise."""
    return await _merchant_of(request, await operator_of(MERCHANT, request))


async def posted(request: Request) -> tuple[Portal, dict[str, str]]:
    """A form posted from the portal's own page (CSRF checked), and its fields."""
    signed, form = await operator_posted(MERCHANT, request)
    return await _merchant_of(request, signed), form


async def _merchant_of(request: Request, signed: Signed) -> Portal:
    customer_id = signed.operator.customer_id
    try:
        merchant = await read(request, lambda conn: merchants.of_enterprise(conn, customer_id))
    except EbankError as error:
        if error.code != "MERCHANT_NOT_FOUND":
            raise
        refused = signed.me.render("web/refused.html", error=EbankError("FORBIDDEN"))
        raise NotSignedIn(refused) from None
    return Portal(signed.me, signed.operator, merchant)


# -- what people type ---------------------------------------------------------------------------
def period(query: dict[str, str], today: date, days: int) -> tuple[date, date]:
    """The `from`..`to` days asked for, by default the `days` up to today."""
    since = typed_day(query.get("from", ""), "from") or today - timedelta(days=days - 1)
    return since, typed_day(query.get("to", ""), "to") or today


def refund_number(request: Request) -> str:
    """A refund's request number made for the entry user: the form carries it, so a form sent
    twice is the same refund."""
    now = request.app.state.clock.now().astimezone(BUSINESS_TZ)
    return f"W{now:%Y%m%d%H%M%S}{secrets.token_hex(3).upper()}"


# -- orders ---------------------------------------------------------------------------------------
@router.get("/", name="merchant_orders")
async def order_search(request: Request) -> Response:
    p = await portal(request)
    query = dict(request.query_params)
    values = {name: query.get(name, "")[:64] for name in SEARCH_FIELDS}
    merchant_id = p.merchant.id
    try:
        since, until = typed_range(query.get("from", ""), query.get("to", ""))
        status = values["status"] if values["status"] in ORDER_STATUSES else None
        mode = values["mode"] if values["mode"] in MODES else None
        number = values["number"].strip()
        before = typed_id(query.get("before"))

        def search(conn: Connection) -> list[OrderView]:
            if number:  # the bank's trade number, or the merchant's own order number
                for find in (
                    lambda: orders.by_trade_no(conn, number, merchant_id=merchant_id),
                    lambda: orders.get(conn, merchant_id=merchant_id, out_trade_no=number),
                ):
                    try:
                        return [find()]
                    except EbankError:
                        continue
                return []
            return orders.of_merchant(
                conn, merchant_id, status=status, mode=mode, before=before, limit=PAGE,
                since=None if since is None else business_day_bounds(since)[0],
                until=None if until is None else business_day_bounds(until)[1],
            )  # fmt: skip

        found = await read(request, search)
    except EbankError as error:
        return p.render("merchant/orders.html", error=error, fields=("from", "to"),
                        values=values, orders=[], older=None, statuses=ORDER_STATUSES,
                        modes=MODES)  # fmt: skip
    older = None
    if len(found) == PAGE and not number:
        kept = {k: v for k, v in values.items() if v}
        older = with_query(p.me.url("merchant_orders"), **kept, before=str(found[-1].id))
    return p.render("merchant/orders.html", values=values, orders=found, older=older,
                    statuses=ORDER_STATUSES, modes=MODES)  # fmt: skip


async def _order_page(p: Portal, request: Request, trade_no: str, **context: Any) -> Response:
    """An order with its history and refunds, and (for an entry user) the refund form."""
    merchant_id = p.merchant.id

    def load(conn: Connection) -> dict[str, Any]:
        view = orders.by_trade_no(conn, trade_no[:24], merchant_id=merchant_id)
        return {"order": view, "events": orders.events_of(conn, view.id),
                "refunds": refunds.of_order(conn, view.id)}  # fmt: skip

    try:
        found = await read(request, load)
    except EbankError as error:
        return p.render("merchant/order.html", error=error, order=None)
    context.setdefault("values", {"out_refund_no": refund_number(request)})
    order = found["order"]
    return p.render("merchant/order.html", refundable=order.paid_amount - order.refunded_amount,
                    **found, **context)  # fmt: skip


@router.get("/orders/{trade_no}", name="merchant_order")
async def order_detail(request: Request, trade_no: str) -> Response:
    return await _order_page(await portal(request), request, trade_no)


@router.post("/orders/{trade_no}/refunds", name="merchant_refund_enter")
async def enter_refund(request: Request, trade_no: str) -> Response:
    p, form = await posted(request)
    values = {"amount": form.get("amount", "")[:20], "reason": form.get("reason", "")[:128],
              "out_refund_no": form.get("out_refund_no", "")[:64]}  # fmt: skip
    merchant_id = p.merchant.id
    try:
        amount = typed_amount(required(form, "amount", _("Refund amount")), "amount")
        order = await read(
            request, lambda conn: orders.by_trade_no(conn, trade_no[:24], merchant_id=merchant_id)
        )
        asked = await write(
            request,
            refunds.enter(
                vault_of(request), merchant_id=merchant_id, operator=p.operator,
                out_trade_no=order.out_trade_no, out_refund_no=values["out_refund_no"],
                amount=amount, reason=values["reason"],
            ),
        )  # fmt: skip
    except EbankError as error:
        at = "amount" if error.code in AMOUNT_ERRORS else "form"
        return await _order_page(p, request, trade_no, error=error, fields=REFUND_FIELDS, at=at,
                                 values=values)  # fmt: skip
    return p.me.redirect(
        "merchant_refund", out_refund_no=asked.out_refund_no,
        notice=_("Refund requested: a review user must approve it before it is paid"),
    )  # fmt: skip


# -- refunds -------------------------------------------------------------------------------------
@router.get("/refunds", name="merchant_refunds")
async def refund_list(request: Request) -> Response:
    p = await portal(request)
    asked = request.query_params.get("status", "")
    status = asked if asked in REFUND_STATUSES else None
    merchant_id = p.merchant.id
    found = await read(request, lambda conn: refunds.of_merchant(conn, merchant_id, status=status))
    return p.render("merchant/refunds.html", refunds=found, chosen=status or "",
                    statuses=REFUND_STATUSES)  # fmt: skip


async def _refund_page(p: Portal, request: Request, number: str, **context: Any) -> Response:
    merchant_id = p.merchant.id
    try:
        view = await read(
            request,
            lambda conn: refunds.get(conn, merchant_id=merchant_id, out_refund_no=number[:64]),
        )
    except EbankError as error:
        return p.render("merchant/refund.html", error=error, refund=None)
    context.setdefault("values", {})
    return p.render("merchant/refund.html", refund=view, **context)


@router.get("/refunds/{out_refund_no}", name="merchant_refund")
async def refund_detail(request: Request, out_refund_no: str) -> Response:
    return await _refund_page(await portal(request), request, out_refund_no)


async def _review(request: Request, out_refund_no: str, approve: bool) -> Response:
    """A review user's decision on a refund waiting, confirmed with their token code."""
    p, form = await posted(request)
    values = {"note": form.get("note", "")[:200]}
    merchant_id, vault = p.merchant.id, vault_of(request)
    try:
        code = required(form, "code", _("Token code"))
        note = values["note"] if approve else required(form, "note", _("Reason for rejecting"))
        view = await read(
            request,
            lambda conn: refunds.get(conn, merchant_id=merchant_id, out_refund_no=out_refund_no),
        )
        if approve:
            command = refunds.approve(vault, merchant_id=merchant_id, refund_id=view.id,
                                      operator=p.operator, code=code)  # fmt: skip
        else:
            command = refunds.reject(vault, merchant_id=merchant_id, refund_id=view.id,
                                     operator=p.operator, code=code, note=note)  # fmt: skip
        await write(request, command)
    except EbankError as error:
        at = "form" if error.code in NOT_THE_CODE else "code"
        if error.code == "FORM_FIELD_MISSING":
            at = str(error.details.get("field", at))
        return await _refund_page(p, request, out_refund_no, error=error, fields=REVIEW_FIELDS,
                                  at=at, values=values)  # fmt: skip
    notice = (
        _("Refund approved: the money is on its way back to the buyer")
        if approve
        else _("Refund rejected")
    )
    return p.me.redirect("merchant_refund", out_refund_no=out_refund_no, notice=notice)


@router.post("/refunds/{out_refund_no}/approve", name="merchant_refund_approve")
async def approve_refund(request: Request, out_refund_no: str) -> Response:
    return await _review(request, out_refund_no, approve=True)


@router.post("/refunds/{out_refund_no}/reject", name="merchant_refund_reject")
async def reject_refund(request: Request, out_refund_no: str) -> Response:
    return await _review(request, out_refund_no, approve=False)


# -- settlements and reconciliation files ----------------------------------------------------------
def _today(request: Request) -> date:
    return business_date(request.app.state.clock.now())


@router.get("/settlements", name="merchant_settlements")
async def settlement_list(request: Request) -> Response:
    p = await portal(request)
    query = dict(request.query_params)
    values = {name: query.get(name, "")[:10] for name in ("from", "to")}
    merchant_id = p.merchant.id
    try:
        since, until = period(query, _today(request), 7)
        found = await read(
            request, lambda conn: settlement.statement(conn, merchant_id, since, until)
        )
    except EbankError as error:
        return p.render("merchant/settlements.html", error=error, fields=("from", "to"),
                        values=values, settlements=[])  # fmt: skip
    values = {"from": since.isoformat(), "to": until.isoformat()}
    return p.render("merchant/settlements.html", values=values, settlements=found)


@router.get("/reconciliation", name="merchant_reconciliation")
async def reconciliation_page(request: Request) -> Response:
    p = await portal(request)
    yesterday = _today(request) - timedelta(days=1)
    days = [yesterday - timedelta(days=n) for n in range(7)]
    return p.render("merchant/reconciliation.html", days=days, values={"day": yesterday})


@router.get("/reconciliation/file", name="merchant_reconciliation_file")
async def reconciliation_file(request: Request) -> Response:
    """The business day's reconciliation file (CSV, cells made safe by the service)."""
    p = await portal(request)
    merchant_id = p.merchant.id
    try:
        day = typed_day(request.query_params.get("day", ""), "day")
        if day is None:
            raise EbankError("INVALID_INPUT", reason=_("a date such as 2026-11-30"), field="day")
        content = await read(request, lambda conn: reconcile.daily_file(conn, merchant_id, day))
    except EbankError as error:
        yesterday = _today(request) - timedelta(days=1)
        return p.render("merchant/reconciliation.html", error=error, fields=("day",),
                        days=[yesterday - timedelta(days=n) for n in range(7)],
                        values={"day": request.query_params.get("day", "")[:10]})  # fmt: skip
    response = Response(content, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="reconciliation-{day.isoformat()}.csv"',
    })  # fmt: skip
    return p.me.keep(guard.guarded(response))


# -- notifications ---------------------------------------------------------------------------------
@router.get("/notifications", name="merchant_notifications")
async def notification_log(request: Request) -> Response:
    p = await portal(request)
    trade_no = request.query_params.get("trade_no", "").strip()[:24] or None
    merchant_id = p.merchant.id
    found = await read(
        request,
        lambda conn: notices.notifications_of(conn, merchant_id=merchant_id, trade_no=trade_no),
    )
    return p.render("merchant/notifications.html", notices=found, trade_no=trade_no or "")


@router.post("/notifications/{event_id}/resend", name="merchant_notification_resend")
async def resend_notice(request: Request, event_id: str) -> Response:
    p, _form = await posted(request)
    command = notices.resend(merchant_id=p.merchant.id, event_id=event_id[:40],
                             actor=p.operator.actor, channel="merchant")  # fmt: skip
    try:
        await write(request, command)
    except EbankError as error:
        found = await read(
            request, lambda conn: notices.notifications_of(conn, merchant_id=p.merchant.id)
        )
        return p.render("merchant/notifications.html", error=error, notices=found, trade_no="")
    return p.me.redirect("merchant_notifications", notice=_("The notice will be sent again now"))


# -- reports -------------------------------------------------------------------------------------
def chart_of(stats: reports.Statistics) -> dict[str, Any]:
    """The chart's data block (static/charts.js): labels and amounts as exact decimal text."""
    dim = stats.by[0]
    words = REPORT_TERMS.get(dim)
    labels = [term(words, g.key[0]) if words else g.key[0] for g in stats.groups]
    series = ((_("Amount paid"), "amount"), (_("Refunds"), "refunds"), (_("Fees"), "fees"))
    return {
        "labels": labels,
        "series": [
            {"name": name, "values": [format_minor(getattr(g.volume, what)) for g in stats.groups]}
            for name, what in series
        ],
    }


@router.get("/reports", name="merchant_reports")
async def report_page(request: Request) -> Response:
    p = await portal(request)
    query = dict(request.query_params)
    by = query.get("by", "day") if query.get("by", "day") in REPORT_BY else "day"
    values = {"from": query.get("from", "")[:10], "to": query.get("to", "")[:10], "by": by}
    merchant_id = p.merchant.id
    try:
        since, until = period(query, _today(request), 30)
        stats = await read(
            request,
            lambda conn: reports.statistics(conn, merchant_id=merchant_id, since=since,
                                            until=until, by=[by]),
        )  # fmt: skip
    except EbankError as error:
        return p.render("merchant/reports.html", error=error, fields=("from", "to"),
                        values=values, stats=None, report_by=REPORT_BY)  # fmt: skip
    values.update({"from": since.isoformat(), "to": until.isoformat()})
    return p.render("merchant/reports.html", values=values, stats=stats, chart=chart_of(stats),
                    kind="line" if by in ("day", "month") else "bar", report_by=REPORT_BY,
                    words=REPORT_TERMS.get(by))  # fmt: skip
