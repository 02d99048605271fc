"""Corporate banking's payroll pages (企业网银 · 代发工资), under /corporate: a maker uploads a
salary file and reads its validation report, submits it, and a checker (another operator)
approves it with their token; then the result of every line.

It does what the corporate API does (channels/api/corporate.py), through the same service
(`corporate.payroll`). The file comes as a multipart upload, which the area's url-encoded
form reader does not read: `uploaded` reads it with a size limit and checks the CSRF token the
same way `Area.posted` does.
"""

import re
import secrets
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from ebank.accounts import service as accounts
from ebank.channels.api.common import read, vault_of, write
from ebank.channels.web import guard, i18n
from ebank.channels.web.area import Area, FormForged, form_key, required, typed_id
from ebank.channels.web.i18n import _
from ebank.channels.web.operators import (
    Signed,
    is_operator,
    login_routes,
    operator_of,
    operator_posted,
)
from ebank.channels.web.words import N_, define
from ebank.core.errors import EbankError
from ebank.corporate import payroll

CORPORATE = Area("corporate", "/corporate", "corporate_login", is_operator)
router = APIRouter(prefix=CORPORATE.prefix, include_in_schema=False)
login_routes(CORPORATE, router, "corporate_payroll")

UPLOAD_FIELDS = ("account", "period", "memo", "file")
MAX_UPLOAD_BYTES = payroll.MAX_FILE_BYTES + 16_384  # the file and the form's few fields
FILE_ERRORS = ("PAYROLL_FILE_INVALID", "PAYROLL_DUPLICATE_FILE")
NOT_THE_CODE = ("FORBIDDEN", "PAYROLL_OWN_BATCH", "PAYROLL_BATCH_NOT_FOUND", "INSUFFICIENT_FUNDS")

define("corporate_batch_status", {
    "validated": N_("Checked, not submitted"), "submitted": N_("Awaiting approval"),
    "approved": N_("Approved, being paid"), "rejected": N_("Rejected"),
    "completed": N_("Completed"), "cancelled": N_("Withdrawn"),
})  # fmt: skip
define("corporate_row_status", {
    "invalid": N_("Invalid"), "pending": N_("To be paid"), "paid": N_("Paid"),
    "failed": N_("Failed"), "skipped": N_("Not paid"),
})  # fmt: skip


@dataclass(slots=True)
class Upload:
    """A payroll file posted with its form."""

    fields: dict[str, str]
    name: str  # as the enterprise named the file, without the folders
    content: bytes


LENGTH = re.compile(r"[0-9]{1,10}")  # a Content-Length header


async def uploaded(request: Request) -> tuple[Signed, Upload]:
    """A multipart form with one file, posted from the area's own page: the body limited to
    `MAX_UPLOAD_BYTES`, the CSRF token matched against the cookie's (FormForged otherwise)."""
    visit = CORPORATE.visit(request)
    length = request.headers.get("content-length", "")
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if (
        kind != "multipart/form-data"
        or not LENGTH.fullmatch(length)
        or (int(length) > MAX_UPLOAD_BYTES)
    ):
        raise FormForged(visit) if not visit.trusted else _too_large()
    try:
        form = await request.form(max_files=1, max_fields=10, max_part_size=4096)
    except (MultiPartException, HTTPException):  # a malformed body, or too many parts
        raise FormForged(visit) from None
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    given = fields.get("csrf", "").encode()
    if not visit.trusted or not secrets.compare_digest(given, visit.state.csrf.encode()):
        raise FormForged(visit)
    signed = await operator_of(CORPORATE, request)
    signed.me.state = visit.state
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        return signed, Upload(fields, "", b"")
    content = await file.read(payroll.MAX_FILE_BYTES + 1)
    if len(content) > payroll.MAX_FILE_BYTES:
        raise _too_large()
    name = PureWindowsPath(PurePosixPath(file.filename).name).name
    return signed, Upload(fields, name, content)


def _too_large() -> EbankError:
    return EbankError(
        "PAYROLL_FILE_INVALID", reason=_("the file is larger than 2 MB"), field="file"
    )


# -- batches ------------------------------------------------------------------------------------
@router.get("/", name="corporate_payroll")
async def batch_list(request: Request) -> Response:
    signed = await operator_of(CORPORATE, request)
    customer_id = signed.operator.customer_id
    found = await read(request, lambda conn: payroll.batches_of(conn, customer_id=customer_id))
    return signed.me.render("corporate/batches.html", batches=found, operator=signed.operator)


async def _upload_page(request: Request, signed: Signed, **context: Any) -> Response:
    customer_id = signed.operator.customer_id

    def paying(conn: Connection) -> list[str]:
        held = accounts.accounts_of(conn, customer_id)
        return [a.number for a in held if a.product == "demand" and a.status == "active"]

    context.setdefault("values", {"key": form_key()})
    return signed.me.render("corporate/upload.html", accounts=await read(request, paying),
                            operator=signed.operator, **context)  # fmt: skip


@router.get("/payroll/new", name="corporate_payroll_new")
async def upload_page(request: Request) -> Response:
    return await _upload_page(request, await operator_of(CORPORATE, request))


@router.post("/payroll/new", name="corporate_payroll_upload")
async def upload(request: Request) -> Response:
    try:
        signed, file = await uploaded(request)
    except EbankError as error:  # too large: the form is not read, the page asked again
        signed = await operator_of(CORPORATE, request)
        return await _upload_page(request, signed, error=error, fields=UPLOAD_FIELDS, at="file")
    form = file.fields
    values = {name: form.get(name, "")[:60] for name in ("account", "period", "memo", "key")}
    try:
        account = required(form, "account", _("Paying account"))
        period = required(form, "period", _("Month paid for"))
        if not file.content:
            raise EbankError("FORM_FIELD_MISSING", field="file", label=_("Payroll file"))
        batch_id = await write(
            request,
            payroll.upload(
                vault_of(request), signed.operator, account=account, period=period,
                memo=values["memo"], file_name=file.name, content=file.content,
                idempotency_key=values["key"] or form_key(),
            ),
        )  # fmt: skip
    except EbankError as error:
        at = "file" if error.code in FILE_ERRORS else "form"
        return await _upload_page(request, signed, error=error, fields=UPLOAD_FIELDS, at=at,
                                  values=values)  # fmt: skip
    return signed.me.redirect(
        "corporate_batch", batch=batch_id,
        notice=_("File checked: read the report, then submit the batch for approval"),
    )  # fmt: skip


def _batch_id(text: str) -> int:
    """A batch's id from the address; one that names no batch is not found."""
    found = typed_id(text)
    if found is None:
        raise EbankError("PAYROLL_BATCH_NOT_FOUND")
    return found


async def _batch_page(request: Request, signed: Signed, batch: str, **context: Any) -> Response:
    customer_id = signed.operator.customer_id

    def load(conn: Connection) -> dict[str, Any]:
        batch_id = _batch_id(batch)
        return {
            "batch": payroll.batch_of(conn, customer_id=customer_id, batch_id=batch_id),
            "rows": payroll.rows_of(conn, customer_id=customer_id, batch_id=batch_id),
        }

    try:
        found = await read(request, load)
    except EbankError as error:
        return signed.me.render("corporate/batch.html", error=error, batch=None)
    context.setdefault("values", {})
    return signed.me.render("corporate/batch.html", operator=signed.operator,
                            lang=i18n.language(), **found, **context)  # fmt: skip


@router.get("/payroll/{batch}", name="corporate_batch")
async def batch_detail(request: Request, batch: str) -> Response:
    return await _batch_page(request, await operator_of(CORPORATE, request), batch)


@router.post("/payroll/{batch}/{action}", name="corporate_batch_act")
async def act(request: Request, batch: str, action: str) -> Response:
    """The maker submits or withdraws the batch; a checker approves it with their token code,
    or sends it back with a note."""
    signed, form = await operator_posted(CORPORATE, request)
    values = {"note": form.get("note", "")[:200]}
    done = {"submit": _("Submitted: a checker must now approve it"),
            "cancel": _("The batch is withdrawn"),
            "approve": _("Approved: the total is held and the salaries are being paid"),
            "reject": _("The batch is sent back to the maker")}  # fmt: skip
    me = signed.operator
    try:
        batch_id = _batch_id(batch)
        if action == "submit":
            await write(request, payroll.submit(me, batch_id))
        elif action == "cancel":
            await write(request, payroll.cancel(me, batch_id))
        elif action == "approve":
            code = required(form, "code", _("Token code"))
            checked = await write(request, payroll.approve(vault_of(request), me, batch_id,
                                                           code=code))  # fmt: skip
            checked.value()
        elif action == "reject":
            note = required(form, "note", _("Reason for sending back"))
            await write(request, payroll.reject(me, batch_id, note=note))
        else:
            raise EbankError("NOT_FOUND")
    except EbankError as error:
        at = "form" if error.code in NOT_THE_CODE or action not in ("approve", "reject") else "code"
        if error.code == "FORM_FIELD_MISSING":
            at = str(error.details.get("field", at))
        return await _batch_page(request, signed, batch, error=error, fields=("code", "note"),
                                 at=at, values=values)  # fmt: skip
    return signed.me.redirect("corporate_batch", batch=batch_id, notice=done[action])


@router.get("/payroll/{batch}/results.csv", name="corporate_batch_results")
async def results(request: Request, batch: str) -> Response:
    """The per-line result file (the service makes its cells safe for spreadsheets)."""
    signed = await operator_of(CORPORATE, request)
    i18n.use(i18n.locale_of(request))
    customer_id, lang = signed.operator.customer_id, i18n.language()
    try:
        text = await read(
            request,
            lambda conn: payroll.results_csv(conn, customer_id=customer_id,
                                             batch_id=_batch_id(batch), lang=lang),
        )  # fmt: skip
    except EbankError as error:
        return signed.me.render("corporate/batch.html", error=error, batch=None)
    name = f"payroll-{int(batch)}-results.csv"
    response = Response(
        "\ufeff" + text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
    return signed.me.keep(guard.guarded(response))
