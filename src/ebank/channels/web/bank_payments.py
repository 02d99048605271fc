"""Online banking's money pages: an account's statement (with CSV and PDF downloads),
transfers with their confirmation step, the customer's payments and their e-receipts, and the
payee book.

A transfer takes two pages, as the API's two calls: the form is quoted (`payments.quote`
checks the payee and says which factor the limits demand), then the confirmation page shows
what will be paid and asks for that factor. What the customer confirms travels in one hidden
field sealed by the vault for its purpose (`Sealed`): the browser can neither read nor alter
it, it names the customer it was made for, and it carries the idempotency key drawn when the
confirmation page was first shown, so that a form sent twice pays once. The service checks
everything again when it pays (the SMS code is bound to the exact details). Bills and standing
orders (bank_bills.py) are confirmed by the same steps (`confirm_page`, `code_step`,
`confirm_step`) on pages that extend the transfer's (bank/confirm.html).
"""

import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, ClassVar, Self, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount, Product
from ebank.channels.api.common import client_address, read, vault_of, write
from ebank.channels.web import guard, i18n
from ebank.channels.web.area import (
    SignedIn,
    form_key,
    missing,
    typed_amount,
    typed_id,
    typed_range,
)
from ebank.channels.web.bank import BANK, CHANNEL
from ebank.channels.web.i18n import _, money, when
from ebank.channels.web.words import N_, define
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.core.sheets import csv_text
from ebank.core.writer import Command
from ebank.ledger import queries
from ebank.ledger.models import StatementLine
from ebank.payments import service as payments
from ebank.payments.models import Confirmation, PaymentView, Quote, TransferRequest
from ebank.payments.tables import SPEEDS
from ebank.receipts.pdf import LATIN, SONG, _fit, render_pdf
from ebank.risk.models import Origin
from ebank.security.service import Checked
from ebank.standing import payees
from ebank.standing.models import OrderQuote

router = APIRouter(prefix=BANK.prefix, include_in_schema=False)

PAGE = 20  # lines of a statement page, payments of a list page
DOWNLOAD_MAX = 5_000  # lines a statement download holds at most (narrow the dates for more)
CONFIRM_FOR_SECONDS = 30 * 60  # a confirmation page older than this is asked for again
PAGE_FACTORS = ("sms", "token")  # what a browser page can confirm with; no certificate

define("bank_payment_status", {
    "scheduled": N_("Scheduled: not yet sent"), "sending": N_("Sent to the payee's bank"),
    "unknown": N_("Being confirmed with the payee's bank"), "completed": N_("Completed"),
    "failed": N_("Failed"), "revoked": N_("Revoked"), "returned": N_("Returned"),
    "review": N_("Held for a security review"),
})  # fmt: skip
define("bank_payment_kind", {
    "own": N_("Between my accounts"), "intra": N_("To a customer of this bank"),
    "interbank": N_("To another bank"), "bill": N_("Bill payment"), "payroll": N_("Payroll"),
    "debit": N_("Direct debit"),
})  # fmt: skip
define("bank_speed", {
    "realtime": N_("Real time: arrives at once"),
    "normal": N_("Normal: sent after 2 hours, revocable until then"),
    "next_day": N_("Next day: sent at 09:00 tomorrow, revocable until then"),
    "delayed": N_("Delayed: sent after 24 hours, revocable until then"),
})  # fmt: skip
define("bank_direction", {"in": N_("Money in"), "out": N_("Money out")})
DIRECTIONS = {"in": "C", "out": "D"}  # a customer's account: a credit is money in

STATEMENT_FIELDS = ("from", "to", "direction", "min", "max")
TRANSFER_FIELDS = (
    "from_account", "payee_account", "payee_name", "payee_bank", "amount", "speed", "memo",
)  # fmt: skip
CONFIRM_FIELDS = ("method", "code", "large_confirmed")
PAYEE_FIELDS = ("account", "name", "bank", "alias", "code")
# Errors the services raise without naming a field, and the field a page shows them beside.
TRANSFER_SLOTS = {
    "INVALID_AMOUNT": "amount", "PAYEE_NOT_FOUND": "payee_account",
    "PAYEE_ACCOUNT_UNAVAILABLE": "payee_account", "PAYEE_NAME_MISMATCH": "payee_name",
    "ACCOUNT_NOT_FOUND": "from_account", "NOT_A_PAYMENT_ACCOUNT": "from_account",
    "CARD_REPORTED_LOST": "from_account", "INSUFFICIENT_FUNDS": "amount",
    "LIMIT_EXCEEDED": "amount", "INTERBANK_UNAVAILABLE": "payee_bank",
}  # fmt: skip
CONFIRM_SLOTS = {
    "AUTH_FAILED": "code", "AUTH_FAILED_WARNING": "code", "AUTH_FAILED_FINAL_WARNING": "code",
    "CREDENTIAL_LOCKED": "code", "CREDENTIAL_LOCKED_PERMANENTLY": "code",
    "LARGE_TRANSFER_WARNING": "large_confirmed", "STRONGER_FACTOR_REQUIRED": "method",
    "CERTIFICATE_REQUIRED": "method", "FORM_FIELD_MISSING": "code",
}  # fmt: skip
PAYEE_SLOTS = {
    "AUTH_FAILED": "code", "AUTH_FAILED_WARNING": "code", "AUTH_FAILED_FINAL_WARNING": "code",
    "PAYEE_NOT_FOUND": "account", "PAYEE_NAME_MISMATCH": "name", "CODE_TOO_SOON": "code",
    "CODE_DAILY_LIMIT": "code",
}  # fmt: skip


def placed(error: EbankError, slots: dict[str, str]) -> EbankError:
    """The error, naming the field a page shows it beside when the service named none."""
    if "field" in error.details or error.code not in slots:
        return error
    return EbankError(error.code, **error.details, field=slots[error.code])


def origin_of(me: SignedIn) -> Origin:
    """Where the request came from, for risk control: the session's device and the address."""
    return Origin(me.session.device, client_address(me.request))


def not_found(me: SignedIn, error: EbankError) -> Response:
    return me.render("bank/not_found.html", error=error)


# -- statement ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Filters:
    since: date | None
    until: date | None
    side: str | None
    min_amount: int | None
    max_amount: int | None

    @classmethod
    def of(cls, typed: dict[str, str], currency: str) -> "Filters":
        """The filters as typed, or the first one that is wrong (naming its field)."""
        since, until = typed_range(typed["from"], typed["to"])
        direction = typed["direction"]
        if direction not in ("", *DIRECTIONS):
            raise EbankError("INVALID_INPUT", reason=_("money in or out"), field="direction")
        low, high = (
            typed_amount(typed[name], name, currency) if typed[name].strip() else None
            for name in ("min", "max")
        )
        return cls(since, until, DIRECTIONS.get(direction), low, high)

    def page(self, conn: Connection, account: CustomerAccount, **how: Any) -> Any:
        return queries.statement(
            conn, account.ledger_account_id, since=self.since, until=self.until,
            min_amount=self.min_amount, max_amount=self.max_amount, side=self.side, **how,
        )  # fmt: skip


def _typed_filters(request: Request) -> dict[str, str]:
    query = request.query_params
    return {name: query.get(name, "")[:24] for name in STATEMENT_FIELDS}


@router.get("/accounts/{number}/statement", name="bank_statement")
async def statement(request: Request, number: str) -> Response:
    me = await BANK.signed_in(request)
    typed = _typed_filters(request)
    cursor = request.query_params.get("cursor", "")[:64] or None
    customer_id = me.customer_id

    def look(conn: Connection) -> tuple[CustomerAccount, Any, EbankError | None]:
        account = accounts.get_account(conn, number=number[:34], customer_id=customer_id)
        try:
            filters = Filters.of(typed, account.currency)
            return account, filters.page(conn, account, cursor=cursor, limit=PAGE), None
        except EbankError as error:
            return account, None, error

    try:
        account, page, error = await read(request, look)
    except EbankError as error:
        return not_found(me, error)
    query = {name: value for name, value in typed.items() if value}
    older = None
    if page is not None and page.next_cursor is not None:
        older = {**query, "cursor": page.next_cursor}
    return me.render(
        "bank/statement.html", error=error, fields=STATEMENT_FIELDS, account=account,
        lines=() if page is None else page.lines, values=typed, query=query, older=older,
        paged=cursor is not None,
    )  # fmt: skip


async def _download(me: SignedIn, number: str) -> tuple[CustomerAccount, list[StatementLine]]:
    """The filtered lines, oldest first, for a download; a wrong filter or someone else's
    account raises (the download link comes from a page that showed the filters were right)."""
    typed = _typed_filters(me.request)
    customer_id = me.customer_id

    def look(conn: Connection) -> tuple[CustomerAccount, list[StatementLine]]:
        account = accounts.get_account(conn, number=number[:34], customer_id=customer_id)
        filters = Filters.of(typed, account.currency)
        lines: list[StatementLine] = []
        cursor = None
        while len(lines) < DOWNLOAD_MAX:
            page = filters.page(
                conn, account, newest_first=False, cursor=cursor,
                limit=min(queries.MAX_PAGE, DOWNLOAD_MAX - len(lines)),
            )  # fmt: skip
            lines += page.lines
            cursor = page.next_cursor
            if cursor is None:
                break
        return account, lines

    return await read(me.request, look)


def _file(body: bytes, media: str, name: str) -> Response:
    """A download: never cached, saved under an ASCII name."""
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return guard.guarded(Response(body, media_type=media, headers=headers))


@router.get("/accounts/{number}/statement.csv", name="bank_statement_csv")
async def statement_csv(request: Request, number: str) -> Response:
    me = await BANK.signed_in(request)
    try:
        account, lines = await _download(me, number)
    except EbankError as error:
        return not_found(me, error)
    header = [_("Time"), _("Reference"), _("Memo"), _("Money in"), _("Money out"), _("Balance"),
              _("Currency")]  # fmt: skip
    rows = (
        [when(line.posted_at, with_seconds=True), line.reference, line.memo,
         format_minor(line.amount, account.currency) if line.side == "C" else "",
         format_minor(line.amount, account.currency) if line.side == "D" else "",
         format_minor(line.balance_after, account.currency), account.currency]
        for line in lines
    )  # fmt: skip
    # The BOM first: a spreadsheet then reads the Chinese as UTF-8.
    body = "\ufeff" + csv_text([header, *rows])
    return _file(body.encode(), "text/csv; charset=utf-8", f"statement-{account.number}.csv")


@router.get("/accounts/{number}/statement.pdf", name="bank_statement_pdf")
async def statement_pdf(request: Request, number: str) -> Response:
    me = await BANK.signed_in(request)
    try:
        account, lines = await _download(me, number)
    except EbankError as error:
        return not_found(me, error)
    typed = _typed_filters(request)
    body = await run_in_threadpool(_statement_pdf, account, lines, typed, me.now)
    return _file(body, "application/pdf", f"statement-{account.number}.pdf")


def _statement_pdf(
    account: CustomerAccount, lines: list[StatementLine], typed: dict[str, str], now: Any
) -> bytes:
    """The statement as a printable A4 document, in the receipts' fonts (Chinese in the
    readers' own STSong, figures in Helvetica): a header on every page, then the lines."""
    out = io.BytesIO()
    width, height = A4
    margin, row = 14 * mm, 6 * mm
    columns = (  # label, width, right-aligned
        ("时间 Time", 34 * mm, False), ("摘要 Memo", 52 * mm, False),
        ("收入 In", 26 * mm, True), ("支出 Out", 26 * mm, True), ("余额 Balance", 30 * mm, True),
    )  # fmt: skip
    canvas = Canvas(out, pagesize=A4, pageCompression=1)
    canvas.setTitle(f"账户明细 {account.number}")
    period = f"{typed['from'] or '…'} — {typed['to'] or '…'}"

    def header() -> float:
        top = height - margin
        canvas.setFont(SONG, 15)
        canvas.drawString(margin, top - 5 * mm, "账户交易明细 Account statement")
        canvas.setFont(LATIN, 9)
        canvas.drawString(margin, top - 11 * mm, f"{account.number}  {account.currency}")
        canvas.drawString(margin, top - 16 * mm, f"{period}   ({when(now)})")
        y = top - 24 * mm
        x = margin
        for label, w, right in columns:
            canvas.setFont(SONG, 8)
            (canvas.drawRightString(x + w - 1 * mm, y, label) if right
             else canvas.drawString(x + 1 * mm, y, label))  # fmt: skip
            x += w
        canvas.line(margin, y - 2 * mm, width - margin, y - 2 * mm)
        return y - row

    y = header()
    for line in lines:
        if y < margin:
            canvas.showPage()
            y = header()
        amount = money(line.amount, account.currency)
        cells = (
            (when(line.posted_at), LATIN), (line.memo, SONG),
            (amount if line.side == "C" else "", LATIN),
            (amount if line.side == "D" else "", LATIN),
            (money(line.balance_after, account.currency), LATIN),
        )  # fmt: skip
        x = margin
        for (text, font), (_label, w, right) in zip(cells, columns, strict=True):
            if right:
                canvas.setFont(font, 8.5)
                canvas.drawRightString(x + w - 1 * mm, y, text)
            else:
                _fit(canvas, x + 1 * mm, y, text, font, 8.5, w - 2 * mm)
            x += w
        y -= row
    if not lines:
        canvas.setFont(SONG, 9)
        canvas.drawString(margin, y, "无交易记录 No transactions")
    canvas.showPage()
    canvas.save()
    return out.getvalue()


# -- confirming what the customer asked for: a transfer, a bill, a standing order ----------------
S = TypeVar("S", bound="Sealed")
# (me, pending, *, error=, sent=, chosen=, large_confirmed=): the page
Requote = Callable[..., Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Steps:
    """The routes of a confirmation page: its form, its "text me a code" button, and the form
    the customer goes back to."""

    confirm: str
    code: str
    back: str


@dataclass(frozen=True, slots=True)
class Sealed:
    """What the customer is confirming, between its confirmation page and its confirmation, as
    sealed in the page (a subclass adds the details, and its own purpose for the seal)."""

    PURPOSE: ClassVar[str]
    customer_id: int
    key: str  # the idempotency key: drawn once, when the confirmation page is first shown
    issued: float  # Unix seconds

    @classmethod
    def drawn(cls, me: SignedIn, **details: Any) -> Self:
        """Made when the form is quoted: the page shown again carries the same key."""
        return cls(customer_id=me.customer_id, key=form_key(),
                   issued=me.now.timestamp(), **details)  # fmt: skip

    def seal(self, request: Request) -> str:
        return vault_of(request).encrypt(json.dumps(asdict(self)), purpose=self.PURPOSE)

    @classmethod
    def unseal(cls, me: SignedIn, sealed: str) -> Self:
        """What this customer's own confirmation page carries, or FORM_EXPIRED."""
        try:
            pending = cls(**json.loads(vault_of(me.request).decrypt(sealed, purpose=cls.PURPOSE)))
        except (ValueError, TypeError):
            raise EbankError("FORM_EXPIRED") from None
        fresh = me.now.timestamp() - pending.issued < CONFIRM_FOR_SECONDS
        if pending.customer_id != me.customer_id or not fresh:
            raise EbankError("FORM_EXPIRED")
        return pending


def confirm_page(
    me: SignedIn, template: str, steps: Steps, pending: Sealed, quote: Quote | OrderQuote, *,
    error: EbankError | None = None, sent: bool = False, chosen: str = "", status: int = 200,
    large_confirmed: bool = False, **context: Any,
) -> Response:  # fmt: skip
    """A confirmation page (a template extending bank/confirm.html): what is confirmed, sealed,
    and the factors the quote asks for that a page can take; shown again, it keeps the
    factor chosen and the large-transfer box ticked (never a code)."""
    offered = [m for m in quote.methods if m in PAGE_FACTORS]
    return me.render(
        template, error=error, fields=CONFIRM_FIELDS, at="code", status=status, steps=steps,
        pending=pending, sealed=pending.seal(me.request), quote=quote, offered=offered,
        certificate_only=bool(quote.methods) and not offered, sent=sent,
        chosen=chosen if chosen in offered else (offered[0] if offered else ""),
        large_confirmed=large_confirmed, **context,
    )  # fmt: skip


async def pending_of(me: SignedIn, form: dict[str, str], kind: type[S]) -> S | Response:
    """What the page's sealed field carries, or the page that says it has expired."""
    try:
        return kind.unseal(me, form.get("pending", ""))
    except EbankError as error:
        return not_found(me, error)


def confirmation_of(form: dict[str, str]) -> Confirmation:
    """The factor a confirmation page's form gives, or why it gives none that will do."""
    method = form.get("method", "")
    code = form.get("code", "").strip()[:16]
    if method and method not in PAGE_FACTORS:
        raise EbankError("INVALID_INPUT", reason=_("choose how to confirm"), field="method")
    if method and not code:
        raise missing("code", _("Verification code"))
    return Confirmation(
        method=method or None, code=code or None,
        large_confirmed=form.get("large_confirmed") == "yes",
    )  # fmt: skip


async def code_step(
    me: SignedIn, form: dict[str, str], kind: type[S], send: Callable[[S], Command[Any]],
    requote: Requote,
) -> Response:  # fmt: skip
    """A confirmation page's "text me a code": a code for exactly what it confirms; a refusal
    (too soon after the last code, the day's codes spent) shows beside the code field."""
    pending = await pending_of(me, form, kind)
    if isinstance(pending, Response):
        return pending
    ticked = form.get("large_confirmed") == "yes"
    try:
        await write(me.request, send(pending))
    except EbankError as error:
        return await requote(me, pending, error=error, chosen="sms", large_confirmed=ticked)
    return await requote(me, pending, sent=True, chosen="sms", large_confirmed=ticked)


async def confirm_step(
    me: SignedIn, form: dict[str, str], kind: type[S],
    make: Callable[[S, Confirmation], Command[Checked[int]]], requote: Requote,
) -> int | Response:  # fmt: skip
    """A confirmation page's form: made with the factor given, once per page (the id of what
    was made), or the page again with the reason."""
    pending = await pending_of(me, form, kind)
    if isinstance(pending, Response):
        return pending
    try:
        made = await write(me.request, make(pending, confirmation_of(form)))
        return made.value()
    except EbankError as error:
        return await requote(
            me, pending, error=placed(error, CONFIRM_SLOTS), chosen=form.get("method", ""),
            large_confirmed=form.get("large_confirmed") == "yes",
        )  # fmt: skip


def paying_accounts(conn: Connection, customer_id: int) -> list[CustomerAccount]:
    return [a for a in accounts.accounts_of(conn, customer_id) if a.product == Product.DEMAND]


# -- transfers ---------------------------------------------------------------------------------
TRANSFER_STEPS = Steps("bank_transfer_confirm", "bank_transfer_code", "bank_transfer")


@router.get("/transfer", name="bank_transfer")
async def transfer_form(request: Request) -> Response:
    me = await BANK.signed_in(request)
    payee_id = typed_id(request.query_params.get("payee", ""))
    values = {"speed": "realtime", "payee": "" if payee_id is None else str(payee_id)}
    return await _transfer_page(me, values)


async def _transfer_page(
    me: SignedIn, values: dict[str, str], error: EbankError | None = None
) -> Response:
    """The transfer form, with the saved payee it pays (if one was chosen) shown masked."""
    customer_id, vault = me.customer_id, vault_of(me.request)
    payee_id = typed_id(values.get("payee", ""))

    def look(conn: Connection) -> tuple[list[CustomerAccount], Any, Any]:
        saved = None
        if payee_id is not None:
            try:
                saved = payees.in_book(conn, vault, customer_id=customer_id, payee_id=payee_id).view
            except EbankError:
                saved = None  # removed, or not theirs: the form asks for the payee instead
        return paying_accounts(conn, customer_id), saved, payees.payees_of(conn, customer_id)

    held, saved, book = await read(me.request, look)
    return me.render(
        "bank/transfer.html", error=error, fields=TRANSFER_FIELDS, accounts=held, saved=saved,
        book=book, values=values, speeds=SPEEDS,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Pending(Sealed):
    """A transfer between its confirmation page and its confirmation."""

    PURPOSE = "web.bank.confirm"
    from_account: str
    payee_account: str
    payee_name: str
    payee_bank: str | None
    amount: int
    speed: str
    memo: str

    def request(self) -> TransferRequest:
        return TransferRequest(
            customer_id=self.customer_id, channel=CHANNEL, from_account=self.from_account,
            payee_account=self.payee_account, payee_name=self.payee_name,
            payee_bank=self.payee_bank, amount=self.amount, speed=self.speed, memo=self.memo,
        )  # fmt: skip


def _transfer_values(form: dict[str, str]) -> dict[str, str]:
    """What the form shows again after an error: what was typed, never a code."""
    return {name: form.get(name, "")[:100] for name in (*TRANSFER_FIELDS, "payee")}


@router.post("/transfer", name="bank_transfer_quote")
async def transfer_quote(request: Request) -> Response:
    """The form, quoted: on to the confirmation page, or back to the form with the reason."""
    me, form = await BANK.submitted(request)
    values = _transfer_values(form)
    customer_id, vault = me.customer_id, vault_of(request)
    payee_id = typed_id(values["payee"])

    def payee_of(conn: Connection) -> tuple[str, str, str | None]:
        if payee_id is None:
            bank = values["payee_bank"].strip() or None
            return values["payee_account"], values["payee_name"], bank
        entry = payees.in_book(conn, vault, customer_id=customer_id, payee_id=payee_id)
        return entry.account, entry.name, entry.bank

    try:
        if not values["from_account"]:
            raise missing("from_account", _("Pay from"))
        if payee_id is None and not values["payee_account"].strip():
            raise missing("payee_account", _("Payee account or card number"))
        if payee_id is None and not values["payee_name"].strip():
            raise missing("payee_name", _("Payee name"))
        if values["speed"] not in SPEEDS:
            raise EbankError("INVALID_INPUT", reason=_("choose an arrival speed"), field="speed")
        amount = typed_amount(values["amount"], "amount")
        account, name, bank = await read(request, payee_of)
        pending = Pending.drawn(
            me, from_account=values["from_account"], payee_account=account, payee_name=name,
            payee_bank=bank, amount=amount, speed=values["speed"], memo=values["memo"],
        )  # fmt: skip
        return await _confirm_page(me, pending)
    except EbankError as error:
        return await _transfer_page(me, values, placed(error, TRANSFER_SLOTS))


async def _confirm_page(me: SignedIn, pending: Pending, **page: Any) -> Response:
    """The confirmation page of a pending transfer, quoted again as it stands now. A quote
    that fails raises: the caller shows its reason where the customer can act on it."""
    asked, now = pending.request(), me.now
    found: Quote = await read(me.request, lambda conn: payments.quote(conn, asked, now=now))
    return confirm_page(me, "bank/confirm.html", TRANSFER_STEPS, pending, found, **page)


async def _requoted(me: SignedIn, pending: Pending, **page: Any) -> Response:
    """The confirmation page again; if the transfer can no longer be made (the money went
    meanwhile), the form, with the reason."""
    try:
        return await _confirm_page(me, pending, **page)
    except EbankError as error:
        values = {name: "" for name in (*TRANSFER_FIELDS, "payee")}
        values.update(from_account=pending.from_account, payee_name=pending.payee_name,
                      speed=pending.speed, memo=pending.memo)  # fmt: skip
        return await _transfer_page(me, values, placed(error, TRANSFER_SLOTS))


@router.post("/transfer/code", name="bank_transfer_code")
async def transfer_code(request: Request) -> Response:
    """Text the customer a code for exactly the pending transfer."""
    me, form = await BANK.submitted(request)
    vault = vault_of(request)
    return await code_step(
        me, form, Pending, lambda p: payments.send_code(vault, p.request()), _requoted
    )


@router.post("/transfer/confirm", name="bank_transfer_confirm")
async def transfer_confirm(request: Request) -> Response:
    """Make the pending transfer with the factor given, once per confirmation page."""
    me, form = await BANK.submitted(request)
    vault, origin = vault_of(request), origin_of(me)

    def make(p: Pending, confirmation: Confirmation) -> Command[Checked[int]]:
        return payments.transfer(vault, p.request(), confirmation, idempotency_key=p.key,
                                 origin=origin)  # fmt: skip

    done = await confirm_step(me, form, Pending, make, _requoted)
    if isinstance(done, Response):
        return done
    return me.redirect("bank_payment", notice=_("Your transfer has been accepted"),
                       payment_id=done)  # fmt: skip


# -- payments and their receipts ---------------------------------------------------------------
@router.get("/payments", name="bank_payments")
async def payment_list(request: Request) -> Response:
    me = await BANK.signed_in(request)
    before = typed_id(request.query_params.get("before", ""))
    customer_id = me.customer_id
    views = await read(
        request, lambda conn: payments.payments_of(conn, customer_id, before_id=before, limit=PAGE)
    )
    older = views[-1].id if len(views) == PAGE else None
    return me.render("bank/payments.html", payments=views, older=older, paged=before is not None)


async def _payment(me: SignedIn, payment_id: str) -> PaymentView:
    found, customer_id = typed_id(payment_id), me.customer_id
    if found is None:
        raise EbankError("PAYMENT_NOT_FOUND")
    return await read(
        me.request,
        lambda conn: payments.payment_of(conn, customer_id=customer_id, payment_id=found),
    )


@router.get("/payments/{payment_id}", name="bank_payment")
async def payment_page(request: Request, payment_id: str) -> Response:
    me = await BANK.signed_in(request)
    try:
        view = await _payment(me, payment_id)
    except EbankError as error:
        return not_found(me, error)
    failure = None if view.failure_code is None else EbankError(view.failure_code)
    return me.render("bank/payment.html", payment=view, failure=failure)


@router.post("/payments/{payment_id}/revoke", name="bank_payment_revoke")
async def payment_revoke(request: Request, payment_id: str) -> Response:
    me, _form = await BANK.submitted(request)
    try:
        view = await _payment(me, payment_id)
        await write(
            request,
            payments.revoke(customer_id=me.customer_id, payment_id=view.id, channel=CHANNEL),
        )
    except EbankError as error:
        if error.code == "PAYMENT_NOT_FOUND":
            return not_found(me, error)
        return me.redirect("bank_payment", notice=error.message(i18n.language()),
                           payment_id=payment_id)  # fmt: skip
    return me.redirect("bank_payment", notice=_("The transfer has been revoked"),
                       payment_id=view.id)  # fmt: skip


@router.get("/payments/{payment_id}/receipt.pdf", name="bank_receipt")
async def payment_receipt(request: Request, payment_id: str) -> Response:
    """The payment's e-receipt (电子回单), as the bank prints it."""
    me = await BANK.signed_in(request)
    customer_id, vault = me.customer_id, vault_of(request)
    try:
        view = await _payment(me, payment_id)
        receipt = await read(
            request,
            lambda conn: payments.receipt_of(
                conn, vault, customer_id=customer_id, payment_id=view.id
            ),
        )
    except EbankError as error:
        return not_found(me, error)
    body = await run_in_threadpool(render_pdf, receipt)
    return _file(body, "application/pdf", f"{receipt.number}.pdf")


# -- payees ------------------------------------------------------------------------------------
@router.get("/payees", name="bank_payees")
async def payee_book(request: Request) -> Response:
    me = await BANK.signed_in(request)
    return await _payees_page(me, {})


async def _payees_page(
    me: SignedIn, values: dict[str, str], error: EbankError | None = None, sent: bool = False
) -> Response:
    customer_id = me.customer_id
    book = await read(me.request, lambda conn: payees.payees_of(conn, customer_id))
    values = {"key": form_key(), **values}
    return me.render("bank/payees.html", error=error, fields=PAYEE_FIELDS, book=book,
                     values=values, sent=sent)  # fmt: skip


@router.post("/payees", name="bank_payee_add")
async def payee_add(request: Request) -> Response:
    """One form, two buttons: text me a code for this payee, then add it with the code."""
    me, form = await BANK.submitted(request)
    values = {name: form.get(name, "")[:100] for name in ("account", "name", "bank", "alias")}
    values["key"] = form.get("key", "")[:64]
    bank = values["bank"].strip() or None
    try:
        if not values["account"].strip():
            raise missing("account", _("Payee account or card number"))
        if not values["name"].strip():
            raise missing("name", _("Payee name"))
        if form.get("step") == "code":
            await write(
                request,
                payees.send_code(vault_of(request), customer_id=me.customer_id,
                                 account=values["account"], name=values["name"], bank=bank),
            )  # fmt: skip
            return await _payees_page(me, values, sent=True)
        code = form.get("code", "").strip()[:16]
        if not code:
            raise missing("code", _("Verification code"))
        added = await write(
            request,
            payees.add(
                vault_of(request), customer_id=me.customer_id, channel=CHANNEL,
                account=values["account"], name=values["name"], bank=bank,
                alias=values["alias"], code=code,
                idempotency_key=values["key"] or form_key(), origin=origin_of(me),
            ),
        )  # fmt: skip
        added.value()
    except EbankError as error:
        return await _payees_page(me, values, placed(error, PAYEE_SLOTS))
    return me.redirect("bank_payees", notice=_("Payee saved"))


@router.post("/payees/{payee_id}/delete", name="bank_payee_delete")
async def payee_delete(request: Request, payee_id: str) -> Response:
    me, _form = await BANK.submitted(request)
    found = typed_id(payee_id)
    try:
        if found is None:
            raise EbankError("PAYEE_ENTRY_NOT_FOUND")
        await write(
            request, payees.remove(customer_id=me.customer_id, payee_id=found, channel=CHANNEL)
        )
    except EbankError as error:
        return await _payees_page(me, {}, error)
    return me.redirect("bank_payees", notice=_("Payee removed"))
