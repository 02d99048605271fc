"""The pay page (收银台): where a merchant sends its buyer (the order's `pay_url`,
/pay/{token}) to pay with a card of this bank.

The buyer sees the order, logs in as to online banking (password, then the code the login asks
for: the token's, or the SMS code, which a token holder can have texted instead), picks a card
and confirms with the transaction PIN, plus an SMS code or token code where the buyer picks
one; then goes back to the merchant's return URL with the signed result
(`gateway.returns`). Every rule is the gateway's (`gateway.orders`): the page asks and shows.
A USB-key certificate cannot sign from a plain browser page, so a payment only a certificate
could confirm is explained, not offered.

The page keeps its state in one cookie sealed by the vault (AES-GCM: neither readable nor
forgeable): the order it serves, the CSRF token every form carries, the login under way and
the buyer's session token. The cookie is HttpOnly, SameSite=Strict, Secure over https, sent
for this order's path only and forgotten after the online session's idle time; the session
it holds ends once the order is paid. Pages forbid framing, inline script and inline style,
and escape everything: a merchant names itself, and names can be hostile.
"""

import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from ebank.channels.api.common import client_address, read, vault_of, write
from ebank.channels.web import guard
from ebank.channels.web.area import login_step
from ebank.channels.web.templating import templates
from ebank.core.clock import BUSINESS_TZ, as_utc
from ebank.core.crypto import mask_name
from ebank.core.errors import EbankError
from ebank.core.money import display_amount
from ebank.core.settings import get_settings
from ebank.customers import service as customers
from ebank.gateway import controls, orders, returns
from ebank.gateway.models import Checkout, PayCard, Payment
from ebank.risk.models import Origin
from ebank.security import login, sessions

router = APIRouter(prefix="/pay", include_in_schema=False)

COOKIE = "ebank_pay"
STATE_PURPOSE = "web.pay_page"
CHANNEL = "online"  # the buyer logs in as to online banking
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # what may name an order (and a cookie's path)
MAX_FORM_BYTES = 4096  # the largest form the page sends is well under 1 KiB
FACTORS = ("pin", "sms", "token")  # what the page can confirm with; no certificate
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class Words:
    """A sentence in both of the page's languages."""

    zh: str
    en: str

    @classmethod
    def of(cls, error: EbankError) -> "Words":
        return cls(error.message("zh"), error.message("en"))


MODES = {
    "instant": Words("即时支付", "instant payment"),
    "escrow": Words("担保交易：确认收货后商户才收到款项", "escrow: the shop is paid once you "
                    "confirm receipt"),
    "authorise": Words("预授权：先冻结款项，商户确认后扣款", "pre-authorisation: the money is "
                       "held, then taken by the shop"),
}  # fmt: skip
KINDS = {"debit": Words("借记卡", "debit card"), "credit": Words("信用卡", "credit card")}
METHODS = {
    "pin": Words("仅交易密码", "Transaction PIN only"),
    "sms": Words("交易密码 + 短信验证码", "PIN + SMS code"),
    "token": Words("交易密码 + 动态口令", "PIN + token code"),
}
CERTIFICATE_ONLY = Words(
    "本笔支付只能用数字证书（U盾）签名确认，本页面不支持证书签名；请减少金额或换用其他方式付款",
    "Only your certificate (USB key) can confirm this payment, and this page cannot sign with "
    "it: lower the amount or pay another way",
)
TOKEN_NEEDED = Words(
    "本笔支付需用动态口令确认，您尚未开通动态口令", "This payment needs a token code, and you have "
    "no token",
)  # fmt: skip
BARRED = Words.of(EbankError("CARD_NOT_ALLOWED_ONLINE"))
# What a card's refusal says when its catalogue wording needs the amounts options() leaves out.
REFUSED = {
    "LIMIT_EXCEEDED": Words("本笔支付超过该卡可用的支付限额", "This payment is above a limit of "
                            "this card's"),
}  # fmt: skip
CANNOT_PAY = Words("该卡不能支付本订单", "This card cannot pay this order")
GONE = {
    "closed": Words("商户已关闭该订单", "The shop has closed this order"),
    "expired": Words.of(EbankError("ORDER_EXPIRED")),
    "created": Words.of(EbankError("ORDER_EXPIRED")),  # past its time, not yet swept
}
PAID = Words("该订单已付款，无需再次支付", "This order has been paid: there is nothing more to pay")
MISSING = Words.of(EbankError("ORDER_NOT_FOUND"))
LABELS = {  # the form's fields, as FORM_FIELD_MISSING names them
    "login": ("证件号码或手机号", "ID or mobile number"), "password": ("登录密码", "password"),
    "code": ("验证码", "code"), "card": ("银行卡", "card"), "pin": ("交易密码", "PIN"),
    "method": ("确认方式", "how to confirm"),
}  # fmt: skip


# -- the page's state, in its cookie ---------------------------------------------------------
@dataclass(slots=True)
class State:
    order: str  # a digest of the pay token: the cookie serves this order only
    csrf: str
    seen: float  # Unix seconds of the last request: idle longer and the state is forgotten
    challenge: str | None = None  # the login between password and code
    factors: list[str] = field(default_factory=list)  # that login's second factors
    factor: str = "sms"  # the one it asks for (logins begun before it was kept texted a code)
    session: str | None = None  # the buyer's online session, once logged in
    card: int | None = None  # the card last chosen, and how the buyer confirms
    method: str = "pin"
    code_sent: bool = False


def _bound(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class Visit:
    """One request to the page: its order's token, and the state it came with (a fresh one
    if its cookie was missing, altered, for another order or idle too long)."""

    request: Request
    token: str
    state: State
    trusted: bool  # the state came from a good cookie

    @classmethod
    def of(cls, request: Request, token: str) -> "Visit":
        now = request.app.state.clock.now().timestamp()
        saved = guard.unseal(request, COOKIE, STATE_PURPOSE)
        try:
            state = State(**saved) if saved is not None else None
        except TypeError:
            state = None
        idle = get_settings().session_idle_seconds
        if state is not None and state.order == _bound(token) and now - state.seen < idle:
            state.seen = now
            return cls(request, token, state, True)
        return cls(request, token, State(_bound(token), secrets.token_urlsafe(32), now), False)

    @property
    def now(self) -> datetime:
        return self.request.app.state.clock.now()  # type: ignore[no-any-return]

    def url(self, name: str) -> str:
        return self.request.url_for(name, token=self.token).path

    def keep(self, response: Response) -> Response:
        """Send the state back (its idle clock restarted)."""
        return guard.seal(
            self.request, response, COOKIE, STATE_PURPOSE, asdict(self.state),
            path=self.url("pay_page"), max_age=get_settings().session_idle_seconds,
        )  # fmt: skip

    def forget(self, response: Response) -> Response:
        return guard.forget(self.request, response, COOKIE, path=self.url("pay_page"))

    async def session(self) -> sessions.Session:
        """The buyer's session, resumed; SESSION_EXPIRED (and forgotten) when it has ended."""
        if self.state.session is None:
            raise EbankError("SESSION_EXPIRED")
        try:
            return await write(self.request, sessions.resume(self.state.session))
        except EbankError:
            self.state.session = None
            raise


def _guarded(response: Response, return_url: str | None = None) -> Response:
    """The page's own security headers. Forms may post here only, and the payment's answer
    may redirect to the shop's origin (browsers hold a form's redirects to form-action)."""
    allowed = "'self'"
    if return_url is not None:
        parts = urlsplit(return_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if ORIGIN.fullmatch(origin):
            allowed += f" {origin}"
    return guard.guarded(
        response, scripts=False, form_action=allowed, referrer="no-referrer"
    )  # the pay link is a secret: never in a Referer


# -- rendering ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CardChoice:
    id: int
    kind: Words
    masked: str
    methods: tuple[str, ...]  # what the page offers to confirm with; () when it cannot pay
    note: Words | None  # why it cannot pay, when it cannot


def _choice(card: PayCard, factors: list[str]) -> CardChoice:
    offered = tuple(m for m in card.methods if m in FACTORS and (m != "token" or m in factors))
    note = None
    if card.refusal is not None:
        note = Words.of(EbankError(card.refusal))
        if "{" in note.zh + note.en:  # a wording that needs the details options() leaves out
            note = REFUSED.get(card.refusal, CANNOT_PAY)
    elif not offered:
        note = CERTIFICATE_ONLY if card.methods == ("certificate",) else TOKEN_NEEDED
    return CardChoice(card.card_id, KINDS[card.kind], card.masked, offered, note)


def _slot(error: EbankError) -> str:
    """Where the page shows an error: beside its field, or above the form."""
    code = error.code
    if code == "FORM_FIELD_MISSING":
        return str(error.details["field"])
    if code.startswith(("AUTH_FAILED", "CREDENTIAL_LOCKED")):
        return "secret"  # never which factor was wrong
    if code.startswith(("CARD_", "ACCOUNT_")) or code == "INSUFFICIENT_FUNDS":
        return "card"
    return "form"


def _missing_field(name: str) -> EbankError:
    zh, en = LABELS[name]
    return EbankError("FORM_FIELD_MISSING", field=name, label=f"{zh} {en}")  # a bilingual page


def _summary(order: Checkout) -> dict[str, Any]:
    expires = as_utc(order.expires_at).astimezone(BUSINESS_TZ)
    return {
        "merchant": order.merchant_name, "subject": order.subject, "trade_no": order.trade_no,
        "amount": display_amount(order.amount, order.currency), "mode": MODES[order.mode],
        "expires": expires.strftime("%Y-%m-%d %H:%M"),
    }  # fmt: skip


def _page(
    visit: Visit, name: str, order: Checkout | None, *, status: int = 200,
    error: EbankError | None = None, **context: Any,
) -> Response:  # fmt: skip
    problems = {} if error is None else {_slot(error): Words.of(error)}
    response = templates.TemplateResponse(
        visit.request, f"pay/{name}.html",
        {"summary": None if order is None else _summary(order), "problems": problems,
         "csrf": visit.state.csrf, "token": visit.token, **context},
        status_code=status if error is None else error.status,
    )  # fmt: skip
    return _guarded(response, None if order is None else order.return_url)


def _missing(visit: Visit) -> Response:
    return _page(visit, "gone", None, status=404, words=MISSING)


def _gone(visit: Visit, order: Checkout) -> Response:
    """An order that can no longer be paid says so (and, like every step, links back)."""
    words = GONE.get(order.status, PAID)
    return visit.forget(_page(visit, "gone", order, status=409, words=words))


async def _checkout(visit: Visit) -> Checkout | None:
    try:
        return await read(visit.request, lambda conn: orders.checkout(conn, visit.token))
    except EbankError as error:
        if error.code != "ORDER_NOT_FOUND":
            raise
        return None


def _payable(order: Checkout, now: datetime) -> bool:
    return order.status == "created" and now < as_utc(order.expires_at)


async def _render(
    visit: Visit, error: EbankError | None = None, values: dict[str, str] | None = None
) -> Response:
    """The step the buyer is at, with `error` beside the field it concerns."""
    order = await _checkout(visit)
    if order is None:
        return _missing(visit)
    if not _payable(order, visit.now):
        return _gone(visit, order)
    if visit.state.session is not None:
        try:
            session = await visit.session()
        except EbankError as ended:
            error = error or ended
        else:
            return visit.keep(await _choose(visit, order, session, error))
    step = "verify" if visit.state.challenge is not None else "login"
    return visit.keep(_page(visit, step, order, error=error, values=values or {},
                            factor=visit.state.factor))  # fmt: skip


async def _choose(
    visit: Visit, order: Checkout, session: sessions.Session, error: EbankError | None
) -> Response:
    """Step three: the buyer's cards, how to confirm, the PIN."""
    customer_id, now = session.customer_id, visit.now
    assert customer_id is not None

    def gather(conn: Connection) -> tuple[list[CardChoice], EbankError | None, str]:
        cards = orders.options(
            conn, token=visit.token, customer_id=customer_id, channel=session.channel, now=now
        )
        choices = [_choice(card, visit.state.factors) for card in cards]
        choices += [  # barred by the buyer: shown, so that a missing card is no mystery
            CardChoice(c.card_id, KINDS[c.kind], c.masked, (), BARRED)
            for c in controls.of(conn, customer_id).cards if not c.online and c.status == "active"
        ]  # fmt: skip
        try:  # told before the buyer types anything; the payment asks again
            controls.check(conn, customer_id, order.amount, now)
            notice = None
        except EbankError as refused:
            notice = refused
        return choices, notice, mask_name(customers.holder(conn, customer_id).name)

    choices, notice, payer = await read(visit.request, gather)
    usable = [c for c in choices if c.methods]
    methods = [m for m in FACTORS if any(m in c.methods for c in usable)]
    chosen = visit.state.card if any(c.id == visit.state.card for c in usable) else None
    return _page(
        visit, "choose", order, error=error, payer=payer, cards=choices,
        chosen=chosen or (usable[0].id if usable else None), methods=methods,
        method=visit.state.method if visit.state.method in methods else next(iter(methods), None),
        method_words=METHODS, notice=notice and Words.of(notice),
        code_sent=visit.state.code_sent,
    )  # fmt: skip


# -- the forms --------------------------------------------------------------------------------
def _required(form: dict[str, str], name: str, *, secret: bool = False) -> str:
    """A field's value, trimmed unless it is a `secret` (a password or PIN, taken as typed)."""
    value = form.get(name, "") if secret else form.get(name, "").strip()
    if not value:
        raise _missing_field(name)
    return value


def _card_id(form: dict[str, str]) -> int:
    text = form.get("card", "")
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise _missing_field("card")
    return int(text)


Step = Callable[[Visit, dict[str, str]], Awaitable[Response]]


async def _handle(request: Request, token: str, step: Step) -> Response:
    """A form sent to the page: checked to come from this page's own state (the CSRF token
    in the cookie and in the form), for an order that can still be paid; then its step, whose
    refusal is shown beside the field it concerns."""
    visit = Visit.of(request, token)
    form = await guard.read_form(request, max_bytes=MAX_FORM_BYTES, max_fields=20)
    given = form.get("csrf", "").encode()
    if not visit.trusted or not secrets.compare_digest(given, visit.state.csrf.encode()):
        return await _render(visit, EbankError("FORM_EXPIRED"))
    order = await _checkout(visit)
    if order is None:
        return _missing(visit)
    if not _payable(order, visit.now):
        return _gone(visit, order)
    try:
        return await step(visit, form)
    except EbankError as error:
        return await _render(visit, error, {"login": form.get("login", "")[:32]})


def _see_page(visit: Visit) -> Response:
    """After a step that worked: back to the page (POST, redirect, GET)."""
    return visit.keep(_guarded(RedirectResponse(visit.url("pay_page"), status_code=303)))


async def _log_in(visit: Visit, form: dict[str, str]) -> Response:
    who, password = _required(form, "login"), _required(form, "password", secret=True)
    begun = await write(
        visit.request,
        login.begin(vault_of(visit.request), login=who, password=password, channel=CHANNEL),
    )
    challenge = begun.value()
    state = visit.state
    state.challenge, state.factors = challenge.token, list(challenge.factors)
    state.factor, state.session = challenge.factor, None
    return _see_page(visit)


async def _text_code_instead(visit: Visit, form: dict[str, str]) -> Response:
    """No token at hand: the login's SMS code is texted, and the code step asks for it."""
    vault = vault_of(visit.request)
    await login_step(
        visit.request, visit.state, lambda challenge: login.send_code(vault, challenge=challenge)
    )
    visit.state.factor = "sms"
    return _see_page(visit)


async def _verify(visit: Visit, form: dict[str, str]) -> Response:
    state, vault, code = visit.state, vault_of(visit.request), _required(form, "code")
    done = await login_step(
        visit.request, visit.state,
        lambda challenge: login.complete(vault, challenge=challenge, factor=state.factor,
                                         code=code, ip=client_address(visit.request)),
    )  # fmt: skip
    started = done.value()
    state.challenge, state.session = None, started.token
    state.csrf = secrets.token_urlsafe(32)  # a new token for the logged-in page
    return _see_page(visit)


async def _send_code(visit: Visit, form: dict[str, str]) -> Response:
    session = await visit.session()
    assert session.customer_id is not None
    visit.state.card, visit.state.method = _card_id(form), "sms"
    await write(
        visit.request,
        orders.send_code(vault_of(visit.request), token=visit.token,
                         customer_id=session.customer_id, card_id=visit.state.card,
                         channel=session.channel),
    )  # fmt: skip
    visit.state.code_sent = True
    return _see_page(visit)


async def _pay(visit: Visit, form: dict[str, str]) -> Response:
    session = await visit.session()
    assert session.customer_id is not None
    card, method = _card_id(form), form.get("method", "pin")
    if method not in FACTORS:
        raise _missing_field("method")
    visit.state.card, visit.state.method = card, method
    pin = _required(form, "pin", secret=True)
    code = None if method == "pin" else _required(form, "code")
    payment = Payment(
        token=visit.token, customer_id=session.customer_id, channel=session.channel,
        card_id=card, pin=pin, method=None if method == "pin" else method, code=code,
    )  # fmt: skip
    origin = Origin(session.device, client_address(visit.request))
    paid = await write(visit.request, orders.pay(vault_of(visit.request), payment, origin))
    view = paid.value()
    await write(visit.request, sessions.end(customer_id=session.customer_id, session_id=session.id))
    back = returns.signed_return_url(view, now=visit.now)
    return visit.forget(_guarded(RedirectResponse(back, status_code=303), view.return_url))


async def _log_out(visit: Visit, form: dict[str, str]) -> Response:
    """Not the buyer: end the session (or the login under way) and start again."""
    if visit.state.session is not None:
        try:
            session = await visit.session()
        except EbankError:
            pass  # it had ended anyway
        else:
            assert session.customer_id is not None
            await write(
                visit.request,
                sessions.end(customer_id=session.customer_id, session_id=session.id),
            )
    visit.state = State(visit.state.order, visit.state.csrf, visit.state.seen)
    return _see_page(visit)


# -- the routes -------------------------------------------------------------------------------
@router.get("/{token}", name="pay_page", response_class=HTMLResponse)
async def pay_page(request: Request, token: str) -> Response:
    visit = Visit.of(request, token)
    if not TOKEN.fullmatch(token):
        return _missing(visit)
    return await _render(visit)


RETURN_WINDOW = timedelta(hours=1)


@router.get("/{token}/back", name="pay_back", response_class=HTMLResponse)
async def back_to_shop(request: Request, token: str) -> Response:
    """The buyer leaves for the shop's return URL, with the order's signed result as it now
    stands: while the order waits to be paid, and for `RETURN_WINDOW` after its time ran out
    or it last changed. Not later: a link on the bank's own address must not serve, long
    after, to send people wherever a merchant pointed its return URL."""
    visit = Visit.of(request, token)

    def back(conn: Connection) -> str:
        view = orders.by_trade_no(conn, orders.checkout(conn, token).trade_no)
        if visit.now >= max(view.expires_at, view.updated_at) + RETURN_WINDOW:
            raise EbankError("ORDER_NOT_FOUND")
        return returns.signed_return_url(view, now=visit.now)

    if not TOKEN.fullmatch(token):
        return _missing(visit)
    try:
        url = await read(request, back)
    except EbankError as error:
        if error.code != "ORDER_NOT_FOUND":
            raise
        return _missing(visit)
    return _guarded(RedirectResponse(url, status_code=303))


def _form_route(path: str, name: str, step: Step) -> None:
    async def route(request: Request, token: str) -> Response:
        if not TOKEN.fullmatch(token):
            return _missing(Visit.of(request, token))
        return await _handle(request, token, step)

    router.add_api_route(path, route, methods=["POST"], name=name, response_class=HTMLResponse)


_form_route("/{token}/login", "pay_login", _log_in)
_form_route("/{token}/verify", "pay_verify", _verify)
_form_route("/{token}/login/sms", "pay_login_sms", _text_code_instead)
_form_route("/{token}/code", "pay_code", _send_code)
_form_route("/{token}/confirm", "pay_confirm", _pay)
_form_route("/{token}/logout", "pay_logout", _log_out)
