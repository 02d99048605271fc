"""Online banking's settings pages: cards (report one lost), the limits agreed per channel,
online payment (on or off, which cards, an own daily limit, the year's payments with the
buyer's word on escrow orders), security (the login password and the transaction PIN changed,
bound devices, live sessions, the certificate) and notification preferences.

Every rule is the services' own, as the JSON API calls them: a page only asks, shows what they
answer, and shows their refusals beside the field they concern. Someone else's card, order,
device or session is refused by the service exactly as one that does not exist.
"""

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from ebank.cards import service as cards
from ebank.channels.api.common import Before, ObjectId, client_address, read, vault_of, write
from ebank.channels.web.area import SignedIn, form_key, key_of, required, typed_amount, typed_secret
from ebank.channels.web.bank import BANK
from ebank.channels.web.i18n import _
from ebank.channels.web.words import N_, define
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.enrolment import service as enrolment
from ebank.enrolment.service import Enrolment
from ebank.gateway import controls, merchants, orders
from ebank.gateway.models import OrderView
from ebank.limits import parameters as limit_parameters
from ebank.limits.parameters import METHODS
from ebank.notify import notices
from ebank.risk.models import Origin
from ebank.security import certificates, devices, sessions
from ebank.security import service as security

router = APIRouter(prefix=BANK.prefix, include_in_schema=False)

HISTORY_PAGE = 50  # online payments shown at once, newest first
LIMIT_FIELDS = ("daily_limit", "per_payment_limit")

define("settings_card_status", {
    "active": N_("In use"), "reported_lost": N_("Reported lost"), "frozen": N_("Frozen"),
    "closed": N_("Closed"),
})  # fmt: skip
define("settings_assurance", {
    "counter": N_("Enrolled at a branch"), "self": N_("Enrolled online (lower limits)"),
})  # fmt: skip
define("settings_order_mode", {
    "instant": N_("Instant payment"), "escrow": N_("Escrow (paid on delivery)"),
    "authorise": N_("Pre-authorisation"),
})  # fmt: skip
define("settings_order_status", {
    "created": N_("Awaiting payment"), "closed": N_("Closed"), "expired": N_("Expired"),
    "held": N_("Held until you confirm"), "disputed": N_("Disputed"),
    "authorised": N_("Authorised"), "paid": N_("Paid"), "voided": N_("Voided"),
    "refunded": N_("Refunded"),
})  # fmt: skip
define("settings_sms_locale", {"zh-CN": N_("Chinese"), "en": N_("English")})


def _amount(form: dict[str, str], name: str, label: str) -> int:
    """An amount typed in a field; refused beside that field."""
    return typed_amount(required(form, name, label), name)


def _origin(me: SignedIn) -> Origin:
    return Origin(me.session.device, client_address(me.request))


# -- cards -----------------------------------------------------------------------------------
async def _cards_page(me: SignedIn, **context: object) -> Response:
    customer_id = me.customer_id
    held = await read(me.request, lambda conn: cards.cards_of(conn, customer_id))
    return me.render("bank/cards.html", cards=held, **context)


@router.get("/cards", name="bank_cards")
async def cards_page(request: Request) -> Response:
    return await _cards_page(await BANK.signed_in(request))


@router.get("/cards/{card_id}/report-loss", name="bank_card_loss")
async def card_loss_page(request: Request, card_id: ObjectId) -> Response:
    """The confirmation step: the card, and that reporting it lost is final."""
    me = await BANK.signed_in(request)
    customer_id = me.customer_id
    try:
        card = await read(
            request, lambda conn: cards.get_card(conn, card_id, customer_id=customer_id)
        )
    except EbankError as error:
        return await _cards_page(me, error=error)
    return me.render("bank/card_loss.html", card=card)


@router.post("/cards/{card_id}/report-loss", name="bank_card_report_loss")
async def report_card_lost(request: Request, card_id: ObjectId) -> Response:
    me, _form = await BANK.submitted(request)
    try:
        card = await write(
            request,
            cards.report_lost(vault_of(request), customer_id=me.customer_id, card_id=card_id,
                              channel=me.session.channel),
        )  # fmt: skip
    except EbankError as error:
        return await _cards_page(me, error=error)
    notice = _("Card %(card)s is reported lost and stopped.") % {"card": card.masked}
    return me.redirect("bank_cards", notice=notice)


# -- limits ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """An enrolment's agreed limits beside the most the bank lets it agree."""

    enrolment: Enrolment
    bank_daily: int
    bank_per_payment: int


def _channel_limits(conn: Connection, customer_id: int) -> list[ChannelLimits]:
    bank = limit_parameters.load(conn)
    return [
        ChannelLimits(e, *bank.channel_maximum(e.channel, e.assurance))
        for e in enrolment.enrolments_of(conn, customer_id)
    ]


def _one_channel(conn: Connection, customer_id: int, channel: str) -> ChannelLimits:
    for limits in _channel_limits(conn, customer_id):
        if limits.enrolment.channel == channel:
            return limits
    raise EbankError("NOT_ENROLLED")


def _factor_maxima(conn: Connection) -> list[tuple[str, int]]:
    """The bank's daily maximum for each factor that has one."""
    bank = limit_parameters.load(conn).values
    named = [(m, f"limits.method.{m}.daily") for m in METHODS]
    return [(m, bank[name]) for m, name in named if name in bank]


async def _limits_page(me: SignedIn, **context: object) -> Response:
    customer_id = me.customer_id

    def both(conn: Connection) -> tuple[list[ChannelLimits], list[tuple[str, int]]]:
        return _channel_limits(conn, customer_id), _factor_maxima(conn)

    channels, factors = await read(me.request, both)
    return me.render("bank/limits.html", channels=channels, factors=factors, **context)


@router.get("/limits", name="bank_limits")
async def limits_page(request: Request) -> Response:
    return await _limits_page(await BANK.signed_in(request))


async def _limit_form(
    me: SignedIn, channel: str, values: dict[str, str] | None = None, **context: object
) -> Response:
    customer_id = me.customer_id
    try:
        limits = await read(me.request, lambda conn: _one_channel(conn, customer_id, channel))
    except EbankError as error:
        return await _limits_page(me, error=error)
    if values is None:
        agreed = limits.enrolment
        values = {"daily_limit": format_minor(agreed.daily_limit),
                  "per_payment_limit": format_minor(agreed.per_payment_limit)}  # fmt: skip
    return me.render("bank/limit.html", limits=limits, values=values, **context)


@router.get("/limits/{channel}", name="bank_limit")
async def limit_page(request: Request, channel: str) -> Response:
    me = await BANK.signed_in(request)
    return await _limit_form(me, channel)


@router.post("/limits/{channel}", name="bank_limit_set")
async def set_limit(request: Request, channel: str) -> Response:
    """Lowering takes effect at once. Raising is refused by the service until it has the
    factor it asks for: the page then shows the change again with a field for it."""
    me, form = await BANK.submitted(request)
    values = {name: form.get(name, "")[:24] for name in LIMIT_FIELDS}
    confirming = form.get("step") == "confirm"
    try:
        asked = (
            _amount(form, "daily_limit", _("Daily limit")),
            _amount(form, "per_payment_limit", _("Per-payment limit")),
        )
    except EbankError as error:
        return await _limit_form(me, channel, values, error=error, fields=LIMIT_FIELDS)
    try:
        code = required(form, "token_code", _("Token code")) if confirming else None
        done = await write(
            request,
            enrolment.set_limits(
                vault_of(request), customer_id=me.customer_id, channel=channel,
                daily_limit=asked[0], per_payment_limit=asked[1], via=me.session.channel,
                token_code=code, origin=_origin(me),
            ),
        )  # fmt: skip
        done.value()
    except EbankError as error:
        if error.code == "STRONGER_FACTOR_REQUIRED":
            return await _limit_form(me, channel, values, asked=asked)
        if confirming and error.code != "ABOVE_BANK_MAXIMUM":
            return await _limit_form(me, channel, values, asked=asked, error=error,
                                     fields=("token_code",), at="token_code")  # fmt: skip
        return await _limit_form(me, channel, values, error=error, at="limits")
    return me.redirect("bank_limits", notice=_("Your limits are changed."))


# -- online payment --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OnlinePayment:
    order: OrderView
    merchant_name: str


def _named(conn: Connection, views: list[OrderView]) -> list[OnlinePayment]:
    names = {v.merchant_id: merchants.get(conn, v.merchant_id).name for v in views}
    return [OnlinePayment(v, names[v.merchant_id]) for v in views]


async def _online_page(me: SignedIn, before: int | None = None, **context: object) -> Response:
    customer_id, now = me.customer_id, me.now

    def both(conn: Connection) -> tuple[controls.Controls, list[OnlinePayment]]:
        views = orders.history_of(
            conn, customer_id, since=None, now=now, before=before, limit=HISTORY_PAGE
        )
        return controls.of(conn, customer_id), _named(conn, views)

    chosen, history = await read(me.request, both)
    context.setdefault("values", {
        "enabled": "on" if chosen.enabled else "off",
        "daily_limit": "" if chosen.daily_limit is None else format_minor(chosen.daily_limit),
    })  # fmt: skip
    older = history[-1].order.id if len(history) == HISTORY_PAGE else None
    return me.render(
        "bank/online_payments.html", controls=chosen, history=history, older=older, **context
    )


@router.get("/online-payments", name="bank_online_payments")
async def online_payments_page(request: Request, before: Before = None) -> Response:
    return await _online_page(await BANK.signed_in(request), before)


@router.post("/online-payments", name="bank_online_payments_set")
async def set_online_payment(request: Request) -> Response:
    me, form = await BANK.submitted(request)
    values = {"enabled": form.get("enabled", ""), "daily_limit": form.get("daily_limit", "")[:24]}
    try:
        if values["enabled"] not in ("on", "off"):
            raise EbankError("FORM_FIELD_MISSING", field="enabled", label=_("Online payment"))
        limit = None
        if values["daily_limit"].strip():
            limit = _amount(form, "daily_limit", _("My daily limit for online payment"))
        await write(
            request,
            controls.set_online_payment(customer_id=me.customer_id,
                                        enabled=values["enabled"] == "on", daily_limit=limit,
                                        channel=me.session.channel),
        )  # fmt: skip
    except EbankError as error:
        return await _online_page(me, error=error, fields=("enabled", "daily_limit"),
                                  values=values)  # fmt: skip
    return me.redirect("bank_online_payments", notice=_("Your online payment settings are saved."))


@router.post("/online-payments/cards/{card_id}", name="bank_online_card")
async def set_card_online(request: Request, card_id: ObjectId) -> Response:
    me, form = await BANK.submitted(request)
    try:
        await write(
            request,
            controls.set_card_online(customer_id=me.customer_id, card_id=card_id,
                                     enabled=form.get("online") == "on",
                                     channel=me.session.channel),
        )  # fmt: skip
    except EbankError as error:
        return await _online_page(me, error=error)
    return me.redirect("bank_online_payments", notice=_("Your online payment settings are saved."))


def _my_order(conn: Connection, customer_id: int, trade_no: str) -> OnlinePayment:
    view = orders.by_trade_no(conn, trade_no[:24], buyer_id=customer_id)
    [found] = _named(conn, [view])
    return found


async def _order_page(me: SignedIn, trade_no: str, **context: object) -> Response:
    customer_id = me.customer_id
    try:
        found = await read(me.request, lambda conn: _my_order(conn, customer_id, trade_no))
    except EbankError as error:
        return await _online_page(me, error=error)
    return me.render("bank/online_payment.html", payment=found, **context)


@router.get("/online-payments/{trade_no}", name="bank_online_payment")
async def online_payment_page(request: Request, trade_no: str) -> Response:
    """One payment, with the buyer's word on an escrow order: goods received, or a dispute."""
    return await _order_page(await BANK.signed_in(request), trade_no)


@router.post("/online-payments/{trade_no}/confirm", name="bank_online_payment_confirm")
async def confirm_receipt(request: Request, trade_no: str) -> Response:
    me, _form = await BANK.submitted(request)
    try:
        await write(
            request,
            orders.confirm_receipt(customer_id=me.customer_id, trade_no=trade_no[:24],
                                   channel=me.session.channel),
        )  # fmt: skip
    except EbankError as error:
        return await _order_page(me, trade_no, error=error)
    return me.redirect("bank_online_payment", trade_no=trade_no,
                       notice=_("You confirmed receipt: the shop is paid."))  # fmt: skip


@router.post("/online-payments/{trade_no}/dispute", name="bank_online_payment_dispute")
async def dispute(request: Request, trade_no: str) -> Response:
    me, form = await BANK.submitted(request)
    reason = form.get("reason", "")[:200]
    try:
        await write(
            request,
            orders.dispute(customer_id=me.customer_id, trade_no=trade_no[:24],
                           reason=required(form, "reason", _("What went wrong")),
                           channel=me.session.channel),
        )  # fmt: skip
    except EbankError as error:
        return await _order_page(me, trade_no, error=error, fields=("reason",), at="reason",
                                 values={"reason": reason})  # fmt: skip
    notice = _("Your dispute is recorded: the money stays held until the bank decides.")
    return me.redirect("bank_online_payment", trade_no=trade_no, notice=notice)


# -- security --------------------------------------------------------------------------------
async def _security_page(me: SignedIn, **context: object) -> Response:
    customer_id, now = me.customer_id, me.now

    def everything(
        conn: Connection,
    ) -> tuple[list[devices.Device], list[sessions.Session], certificates.Certificate | None]:
        return (
            devices.devices_of(conn, customer_id),
            sessions.live_sessions(conn, customer_id, now=now),
            certificates.certificate_of(conn, customer_id),
        )

    bound, live, certificate = await read(me.request, everything)
    # Each change form carries a key drawn with the page: a form sent twice changes once.
    keys = {kind: form_key() for kind in SECRET_FORMS}
    return me.render(
        "bank/security.html", devices=bound, sessions=live, current=me.session.id,
        certificate=certificate, now=now, keys=keys, **context,
    )  # fmt: skip


@router.get("/security", name="bank_security")
async def security_page(request: Request) -> Response:
    return await _security_page(await BANK.signed_in(request))


@router.post("/security/devices/{device_id}/unbind", name="bank_device_unbind")
async def unbind_device(request: Request, device_id: ObjectId) -> Response:
    me, _form = await BANK.submitted(request)
    try:
        await write(
            request,
            devices.unbind(customer_id=me.customer_id, device_id=device_id,
                           actor=me.session.holder, channel=me.session.channel),
        )  # fmt: skip
    except EbankError as error:
        return await _security_page(me, error=error)
    return me.redirect("bank_security", notice=_("The device is unbound and logged out."))


@router.post("/security/sessions/{session_id}/end", name="bank_session_end")
async def end_session(request: Request, session_id: ObjectId) -> Response:
    me, _form = await BANK.submitted(request)
    try:
        await write(
            request,
            sessions.end(customer_id=me.customer_id, session_id=session_id, reason="revoked"),
        )
    except EbankError as error:
        return await _security_page(me, error=error)
    return me.redirect("bank_security", notice=_("That login is ended."))


# kind: the prefix of its form's fields, and what its current and new ones are called
SECRET_FORMS = {
    "login_password": ("password", N_("Current login password"), N_("New login password")),
    "transaction_pin": ("pin", N_("Current transaction PIN"), N_("New transaction PIN")),
}
CURRENT_WRONG = ("AUTH_FAILED", "AUTH_FAILED_WARNING", "AUTH_FAILED_FINAL_WARNING",
                 "CREDENTIAL_LOCKED", "CREDENTIAL_LOCKED_PERMANENTLY")  # fmt: skip


async def _change_secret(request: Request, kind: str) -> Response:
    """The current one, the new one twice; nothing typed is ever shown again. Once per page
    drawn (its key): a double click changes once and counts no failure."""
    me, form = await BANK.submitted(request)
    prefix, current_label, new_label = SECRET_FORMS[kind]
    current, new, repeat = (f"{prefix}_{part}" for part in ("current", "new", "repeat"))
    try:
        typed = typed_secret(form, current, _(current_label)), typed_secret(form, new, _(new_label))
        if form.get(repeat, "") != typed[1]:
            raise EbankError("SECRET_REPEAT_MISMATCH", field=repeat)
        done = await write(
            request,
            security.change_secret(
                vault_of(request), customer_id=me.customer_id, kind=kind, current=typed[0],
                new=typed[1], channel=me.session.channel, session_id=me.session.id,
                idempotency_key=key_of(form),
            ),
        )  # fmt: skip
        ended = done.value()
    except EbankError as error:
        at = current if error.code in CURRENT_WRONG else new
        return await _security_page(me, error=error, fields=(current, new, repeat), at=at)
    if kind == "transaction_pin":
        notice = _("Your transaction PIN is changed.")
    elif ended:
        notice = _("Your login password is changed, and your other logins are ended.")
    else:
        notice = _("Your login password is changed.")
    return me.redirect("bank_security", notice=notice)


@router.post("/security/password", name="bank_password_change")
async def change_password(request: Request) -> Response:
    return await _change_secret(request, "login_password")


@router.post("/security/pin", name="bank_pin_change")
async def change_pin(request: Request) -> Response:
    return await _change_secret(request, "transaction_pin")


# -- notifications ---------------------------------------------------------------------------
NOTICE_FIELDS = ("movement_sms", "movement_threshold", "locale", "email")


async def _notifications_page(me: SignedIn, **context: object) -> Response:
    customer_id = me.customer_id
    chosen = await read(me.request, lambda conn: notices.preferences_of(conn, customer_id))
    context.setdefault("values", {
        "movement_sms": "on" if chosen.movement_sms else "off",
        "movement_threshold": format_minor(chosen.movement_threshold), "locale": chosen.locale,
        "email": "",
    })  # fmt: skip
    return me.render("bank/notifications.html", preferences=chosen, **context)


@router.get("/notifications", name="bank_notifications")
async def notifications_page(request: Request) -> Response:
    return await _notifications_page(await BANK.signed_in(request))


@router.post("/notifications", name="bank_notifications_set")
async def set_notifications(request: Request) -> Response:
    me, form = await BANK.submitted(request)
    values = {name: form.get(name, "")[:254] for name in NOTICE_FIELDS}
    try:
        threshold = 0
        if values["movement_threshold"].strip():
            threshold = _amount(form, "movement_threshold", _("Text me movements from"))
        email = values["email"].strip() or None
        await write(
            request,
            notices.set_preferences(
                vault_of(request), customer_id=me.customer_id,
                movement_sms=values["movement_sms"] == "on", movement_threshold=threshold,
                locale=values["locale"], email=email, actor=me.session.holder,
                channel=me.session.channel, address=client_address(request),
            ),
        )  # fmt: skip
    except EbankError as error:
        # The service names no field; the address is the one a person can get wrong.
        return await _notifications_page(me, error=error, fields=NOTICE_FIELDS, at="email",
                                         values=values)  # fmt: skip
    return me.redirect("bank_notifications", notice=_("Your notification settings are saved."))
