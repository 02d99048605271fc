"""Online banking's bills (生活缴费, /bank/bills) and scheduled transfers (预约转账,
/bank/scheduled).

A bill is looked up at its biller by the customer's number there (`bills.inquire`) and paid
from one of the customer's accounts; what a bill comes to is taken from the biller's answer,
never from the browser. A scheduled transfer pays a payee of the book once or again and again;
it is set up as the API sets it up (`orders.quote`, the factor, `orders.create`) and can be
cancelled. Both are confirmed by the transfer's steps (bank_payments: `confirm_page`,
`code_step`, `confirm_step`), on pages that extend its confirmation page.
"""

import re
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from ebank.accounts.models import CustomerAccount
from ebank.bills import service as bills
from ebank.bills.models import BillPaymentRequest, Inquiry
from ebank.channels.api.common import read, vault_of, write
from ebank.channels.web import i18n
from ebank.channels.web.area import SignedIn, missing, required, typed_amount, typed_day, typed_id
from ebank.channels.web.bank import BANK, CHANNEL
from ebank.channels.web.bank_payments import (
    PAGE,
    Sealed,
    Steps,
    code_step,
    confirm_page,
    confirm_step,
    not_found,
    paying_accounts,
    placed,
)
from ebank.channels.web.i18n import _, money
from ebank.channels.web.words import N_, define, term
from ebank.core.clock import business_date
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.core.writer import Command
from ebank.payments.models import Confirmation
from ebank.security.service import Checked
from ebank.standing import orders, payees
from ebank.standing.models import OrderRequest, Schedule
from ebank.standing.tables import FREQUENCIES

router = APIRouter(prefix=BANK.prefix, include_in_schema=False)

define("bank_bill_category", {
    "electricity": N_("Electricity"), "water": N_("Water"), "gas": N_("Gas"),
    "phone": N_("Mobile top-up"), "cable_tv": N_("Cable TV"),
})  # fmt: skip
define("bank_bill_status", {
    "pending_biller": N_("Paid: the biller is confirming it"),
    "paid": N_("Paid: confirmed by the biller"), "refunded": N_("Not accepted: refunded"),
})  # fmt: skip
define("bank_frequency", {
    "once": N_("Once"), "daily": N_("Every day"), "weekly": N_("Every week"),
    "monthly": N_("Every month"),
})  # fmt: skip
define("bank_weekday", {
    "1": N_("Monday"), "2": N_("Tuesday"), "3": N_("Wednesday"), "4": N_("Thursday"),
    "5": N_("Friday"), "6": N_("Saturday"), "7": N_("Sunday"),
})  # fmt: skip
define("bank_order_status", {
    "active": N_("In force"), "finished": N_("Finished"), "cancelled": N_("Cancelled"),
})  # fmt: skip

# Errors the services raise without naming a field, and the field a page shows them beside.
ACCOUNT_SLOTS = {
    "ACCOUNT_NOT_FOUND": "from_account", "NOT_A_PAYMENT_ACCOUNT": "from_account",
    "CARD_REPORTED_LOST": "from_account", "INVALID_AMOUNT": "amount", "LIMIT_EXCEEDED": "amount",
}  # fmt: skip
LOOKUP_FIELDS = ("biller", "number")
BILL_FIELDS = (*LOOKUP_FIELDS, "bill_id", "amount", "from_account")  # with what was looked up
BILL_SLOTS = {
    **ACCOUNT_SLOTS, "BILLER_NOT_FOUND": "biller", "BILL_ACCOUNT_NOT_FOUND": "number",
    "INVALID_INPUT": "number", "BILL_NOT_FOUND": "bill_id", "BILL_ALREADY_PAID": "bill_id",
    "BILL_AMOUNT_MISMATCH": "bill_id", "TOPUP_AMOUNT_NOT_OFFERED": "amount",
}  # fmt: skip
ORDER_FIELDS = (
    "payee", "from_account", "amount", "memo", "frequency", "start_on", "time", "weekday",
    "month_day", "end_on", "count",
)  # fmt: skip
ORDER_SLOTS = {
    **ACCOUNT_SLOTS, "PAYEE_ENTRY_NOT_FOUND": "payee", "PAYEE_NOT_FOUND": "payee",
    "PAYEE_ACCOUNT_UNAVAILABLE": "payee", "PAYEE_NAME_MISMATCH": "payee",
    "INTERBANK_UNAVAILABLE": "payee",
}  # fmt: skip
BILL_STEPS = Steps("bank_bill_confirm", "bank_bill_code", "bank_bills")
ORDER_STEPS = Steps("bank_order_confirm", "bank_order_code", "bank_order_new")
TIME_OF_DAY = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")


def account_options(held: list[CustomerAccount]) -> list[tuple[str, str]]:
    """The accounts that can pay, as a form offers them: the number and what is available."""
    return [(a.number, f"{a.number} · {_('Available')} {money(a.available, a.currency)}")
            for a in held]  # fmt: skip


def failure_of(code: str | None) -> EbankError | None:
    """Why a payment or a run failed, for the page to word in its language."""
    return None if code is None else EbankError(code)


# -- bills -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PendingBill(Sealed):
    """A bill payment between its confirmation page and its confirmation."""

    PURPOSE = "web.bank.bill"
    from_account: str
    biller: str
    number: str
    bill_id: str | None  # None: a phone top-up
    period: str | None  # shown only: the biller is asked about the bill again when it is paid
    amount: int

    def request(self) -> BillPaymentRequest:
        return BillPaymentRequest(
            customer_id=self.customer_id, channel=CHANNEL, from_account=self.from_account,
            biller=self.biller, number=self.number, amount=self.amount, bill_id=self.bill_id,
        )  # fmt: skip


def _bill_values(form: dict[str, str]) -> dict[str, str]:
    return {name: form.get(name, "").strip()[:40] for name in BILL_FIELDS}


@router.get("/bills", name="bank_bills")
async def bill_list(request: Request) -> Response:
    me = await BANK.signed_in(request)
    return await _bills_page(me, {}, before=typed_id(request.query_params.get("before", "")))


async def _bills_page(
    me: SignedIn, values: dict[str, str], *, inquiry: Inquiry | None = None,
    error: EbankError | None = None, before: int | None = None,
) -> Response:  # fmt: skip
    """The billers with the look-up form, what the look-up found (and the form that pays it),
    and the customer's bill payments."""
    customer_id = me.customer_id

    def look(conn: Connection) -> tuple[Any, list[CustomerAccount], Any]:
        return (
            bills.billers(conn), paying_accounts(conn, customer_id),
            bills.bill_payments_of(conn, customer_id, before_id=before, limit=PAGE),
        )  # fmt: skip

    billers, held, history = await read(me.request, look)
    zh = i18n.language() == "zh"
    offered = () if inquiry is None else inquiry.biller.topup_amounts
    return me.render(
        "bank/bills.html", error=None if error is None else placed(error, BILL_SLOTS),
        fields=BILL_FIELDS if inquiry else LOOKUP_FIELDS, values=values, inquiry=inquiry,
        accounts=account_options(held), topups=[(format_minor(a), money(a)) for a in offered],
        billers=[(b.code, b.name_zh if zh else b.name_en) for b in billers],
        history=[(p, failure_of(p.failure_code)) for p in history], paged=before is not None,
        older=history[-1].payment_id if len(history) == PAGE else None,
    )  # fmt: skip


async def _inquired(me: SignedIn, values: dict[str, str]) -> Inquiry:
    """The biller's answer for the number typed (BILL_ACCOUNT_NOT_FOUND and the like)."""
    biller = required(values, "biller", _("Biller"))
    number = required(values, "number", _("Number at the biller"))
    clock = me.request.app.state.clock
    return await read(
        me.request, lambda conn: bills.inquire(conn, clock, biller=biller, number=number)
    )


@router.post("/bills/inquire", name="bank_bill_inquire")
async def bill_inquire(request: Request) -> Response:
    me, form = await BANK.submitted(request)
    values = _bill_values(form)
    try:
        inquiry = await _inquired(me, values)
    except EbankError as error:
        return await _bills_page(me, values, error=error)
    return await _bills_page(me, values, inquiry=inquiry)


@router.post("/bills/pay", name="bank_bill_quote")
async def bill_quote(request: Request) -> Response:
    """The bill chosen from the look-up (or the top-up amount), quoted: on to the confirmation
    page, or back to the look-up with the reason."""
    me, form = await BANK.submitted(request)
    values = _bill_values(form)
    inquiry = None
    try:
        inquiry = await _inquired(me, values)
        if not values["from_account"]:
            raise missing("from_account", _("Pay from"))
        bill_id, period = None, None
        if inquiry.biller.has_bills:
            if not values["bill_id"]:
                raise missing("bill_id", _("Bill"))
            bill = next((b for b in inquiry.bills if b.bill_id == values["bill_id"]), None)
            if bill is None:
                raise EbankError("BILL_NOT_FOUND", field="bill_id")
            bill_id, period, amount = bill.bill_id, bill.period, bill.amount
        else:
            amount = typed_amount(values["amount"], "amount")
        pending = PendingBill.drawn(
            me, from_account=values["from_account"], biller=inquiry.biller.code,
            number=inquiry.number, bill_id=bill_id, period=period, amount=amount,
        )  # fmt: skip
        return await _bill_confirm_page(me, pending)
    except EbankError as error:
        return await _bills_page(me, values, inquiry=inquiry, error=error)


async def _bill_confirm_page(me: SignedIn, pending: PendingBill, **page: Any) -> Response:
    """The confirmation page of a bill payment, quoted again as it stands now (a quote that
    fails raises)."""
    asked, now = pending.request(), me.now

    def look(conn: Connection) -> tuple[Any, Any]:
        return bills.quote(conn, asked, now=now), bills.biller_of(conn, asked.biller)

    found, biller = await read(me.request, look)
    return confirm_page(
        me, "bank/bill_confirm.html", BILL_STEPS, pending, found, biller=biller, **page
    )


async def _bill_requoted(me: SignedIn, pending: PendingBill, **page: Any) -> Response:
    """The confirmation page again; if the payment can no longer be made, the look-up form,
    with the reason."""
    try:
        return await _bill_confirm_page(me, pending, **page)
    except EbankError as error:
        values = {"biller": pending.biller, "number": pending.number,
                  "from_account": pending.from_account}  # fmt: skip
        return await _bills_page(me, values, error=error)


@router.post("/bills/code", name="bank_bill_code")
async def bill_code(request: Request) -> Response:
    """Text the customer a code for exactly this bill payment."""
    me, form = await BANK.submitted(request)
    vault = vault_of(request)
    return await code_step(
        me, form, PendingBill, lambda p: bills.send_code(vault, p.request()), _bill_requoted
    )


@router.post("/bills/confirm", name="bank_bill_confirm")
async def bill_confirm(request: Request) -> Response:
    """Pay the bill with the factor given, once per confirmation page."""
    me, form = await BANK.submitted(request)
    vault, clock = vault_of(request), request.app.state.clock

    def make(p: PendingBill, confirmation: Confirmation) -> Command[Checked[int]]:
        return bills.pay(vault, clock, p.request(), confirmation, idempotency_key=p.key)

    done = await confirm_step(me, form, PendingBill, make, _bill_requoted)
    if isinstance(done, Response):
        return done
    return me.redirect("bank_bills", notice=_("Paid: the biller will confirm it shortly"))


# -- scheduled transfers -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PendingOrder(Sealed):
    """A scheduled transfer between its confirmation page and its confirmation."""

    PURPOSE = "web.bank.order"
    payee_id: int
    from_account: str
    amount: int
    memo: str
    frequency: str
    start_on: str  # YYYY-MM-DD
    at: str  # HH:MM, Beijing time
    day: int | None  # weekly: ISO weekday; monthly: day of the month
    end_on: str | None
    count: int | None

    def schedule(self) -> Schedule:
        end_on = None if self.end_on is None else date.fromisoformat(self.end_on)
        return Schedule(self.frequency, date.fromisoformat(self.start_on),
                        time.fromisoformat(self.at), self.day, end_on, self.count)  # fmt: skip

    def request(self) -> OrderRequest:
        return OrderRequest(
            customer_id=self.customer_id, channel=CHANNEL, payee_id=self.payee_id,
            from_account=self.from_account, amount=self.amount, schedule=self.schedule(),
            memo=self.memo,
        )  # fmt: skip


def _order_typed(me: SignedIn, values: dict[str, str]) -> PendingOrder:
    """The order as the form describes it, or the first field that is wrong."""
    payee_id = typed_id(values["payee"])
    if payee_id is None:
        raise missing("payee", _("Payee"))
    if not values["from_account"]:
        raise missing("from_account", _("Pay from"))
    amount = typed_amount(values["amount"], "amount")
    frequency = values["frequency"]
    if frequency not in FREQUENCIES:
        raise EbankError("INVALID_INPUT", reason=_("choose how often"), field="frequency")
    start_on = typed_day(values["start_on"], "start_on")
    if start_on is None:
        raise missing("start_on", _("First transfer on"))
    if not TIME_OF_DAY.fullmatch(values["time"]):
        raise EbankError("INVALID_INPUT", reason=_("a time such as 09:00"), field="time")
    on = {"weekly": ("weekday", _("Day of the week")),
          "monthly": ("month_day", _("Day of the month"))}.get(frequency)  # fmt: skip
    day = None
    if on is not None:
        day = typed_id(values[on[0]])
        if day is None:
            raise missing(*on)
    end_on = typed_day(values["end_on"], "end_on")
    count = None
    if values["count"]:
        count = typed_id(values["count"])
        if count is None:
            raise EbankError("INVALID_INPUT", reason=_("a whole number"), field="count")
    return PendingOrder.drawn(
        me, payee_id=payee_id, from_account=values["from_account"], amount=amount,
        memo=values["memo"], frequency=frequency, start_on=start_on.isoformat(),
        at=values["time"], day=day, end_on=None if end_on is None else end_on.isoformat(),
        count=count,
    )  # fmt: skip


@router.get("/scheduled", name="bank_orders")
async def order_list(request: Request) -> Response:
    me = await BANK.signed_in(request)
    customer_id = me.customer_id
    found = await read(request, lambda conn: orders.orders_of(conn, customer_id))
    return me.render("bank/orders.html", orders=list(reversed(found)))


@router.get("/scheduled/new", name="bank_order_new")
async def order_form(request: Request) -> Response:
    me = await BANK.signed_in(request)
    tomorrow = business_date(me.now) + timedelta(days=1)
    values = {
        "frequency": "monthly", "start_on": tomorrow.isoformat(), "time": "09:00",
        "weekday": str(tomorrow.isoweekday()), "month_day": str(tomorrow.day),
        "payee": request.query_params.get("payee", "")[:20],
    }  # fmt: skip
    return await _order_page(me, values)


async def _order_page(
    me: SignedIn, values: dict[str, str], error: EbankError | None = None
) -> Response:
    customer_id = me.customer_id

    def look(conn: Connection) -> tuple[list[CustomerAccount], Any]:
        return paying_accounts(conn, customer_id), payees.payees_of(conn, customer_id)

    held, book = await read(me.request, look)
    return me.render(
        "bank/order_new.html", error=None if error is None else placed(error, ORDER_SLOTS),
        fields=ORDER_FIELDS, values=values, accounts=account_options(held),
        payees=[(str(p.id), f"{p.alias or p.name} · {p.account}") for p in book],
        frequencies=FREQUENCIES, weekdays=[(str(d), term("bank_weekday", d)) for d in range(1, 8)],
        month_days=[(str(d), str(d)) for d in range(1, 32)],
    )  # fmt: skip


@router.post("/scheduled/new", name="bank_order_quote")
async def order_quote(request: Request) -> Response:
    """The form, quoted: on to the confirmation page, or back to the form with the reason."""
    me, form = await BANK.submitted(request)
    values = {name: form.get(name, "").strip()[:60] for name in ORDER_FIELDS}
    try:
        return await _order_confirm_page(me, _order_typed(me, values))
    except EbankError as error:
        return await _order_page(me, values, error)


async def _order_confirm_page(me: SignedIn, pending: PendingOrder, **page: Any) -> Response:
    """The confirmation page of a scheduled transfer, with its payee in full, quoted again as it
    stands now (a quote that fails raises)."""
    asked, vault, now = pending.request(), vault_of(me.request), me.now

    def look(conn: Connection) -> tuple[Any, payees.Entry]:
        return orders.quote(conn, vault, asked, now=now), payees.in_book(
            conn, vault, customer_id=asked.customer_id, payee_id=asked.payee_id
        )

    found, payee = await read(me.request, look)
    return confirm_page(
        me, "bank/order_confirm.html", ORDER_STEPS, pending, found, payee=payee, **page
    )


async def _order_requoted(me: SignedIn, pending: PendingOrder, **page: Any) -> Response:
    """The confirmation page again; if the order can no longer be set up, the form, with the
    reason."""
    try:
        return await _order_confirm_page(me, pending, **page)
    except EbankError as error:
        day = "" if pending.day is None else str(pending.day)
        values = {
            "payee": str(pending.payee_id), "from_account": pending.from_account,
            "amount": format_minor(pending.amount), "memo": pending.memo,
            "frequency": pending.frequency, "start_on": pending.start_on, "time": pending.at,
            "weekday": day, "month_day": day, "end_on": pending.end_on or "",
            "count": "" if pending.count is None else str(pending.count),
        }  # fmt: skip
        return await _order_page(me, values, error)


@router.post("/scheduled/code", name="bank_order_code")
async def order_code(request: Request) -> Response:
    """Text the customer a code for exactly this scheduled transfer."""
    me, form = await BANK.submitted(request)
    vault = vault_of(request)
    return await code_step(
        me, form, PendingOrder, lambda p: orders.send_code(vault, p.request()), _order_requoted
    )


@router.post("/scheduled/confirm", name="bank_order_confirm")
async def order_confirm(request: Request) -> Response:
    """Set the scheduled transfer up with the factor given, once per confirmation page."""
    me, form = await BANK.submitted(request)
    vault = vault_of(request)

    def make(p: PendingOrder, confirmation: Confirmation) -> Command[Checked[int]]:
        return orders.create(vault, p.request(), confirmation, idempotency_key=p.key)

    done = await confirm_step(me, form, PendingOrder, make, _order_requoted)
    if isinstance(done, Response):
        return done
    return me.redirect("bank_order", notice=_("Your scheduled transfer is set up"),
                       order_id=done)  # fmt: skip


@router.get("/scheduled/{order_id}", name="bank_order")
async def order_page(request: Request, order_id: str) -> Response:
    """One of the customer's scheduled transfers, with how each run went."""
    me = await BANK.signed_in(request)
    found, customer_id = typed_id(order_id), me.customer_id

    def look(conn: Connection) -> tuple[Any, Any]:
        if found is None:
            raise EbankError("STANDING_ORDER_NOT_FOUND")
        return (
            orders.order_of(conn, customer_id=customer_id, order_id=found),
            orders.occurrences_of(conn, customer_id=customer_id, order_id=found),
        )  # fmt: skip

    try:
        order, runs = await read(request, look)
    except EbankError as error:
        return not_found(me, error)
    return me.render(
        "bank/order.html", order=order, runs=[(r, failure_of(r.failure_code)) for r in runs]
    )


@router.post("/scheduled/{order_id}/cancel", name="bank_order_cancel")
async def order_cancel(request: Request, order_id: str) -> Response:
    me, _form = await BANK.submitted(request)
    found = typed_id(order_id)
    try:
        if found is None:
            raise EbankError("STANDING_ORDER_NOT_FOUND")
        await write(
            request, orders.cancel(customer_id=me.customer_id, order_id=found, channel=CHANNEL)
        )
    except EbankError as error:
        return not_found(me, error)
    return me.redirect("bank_order", notice=_("The scheduled transfer has been cancelled"),
                       order_id=found)  # fmt: skip
