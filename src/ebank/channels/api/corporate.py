"""The API of corporate banking (企业网银, and the bank-enterprise direct link an ERP uses):
operators log in, pay salaries and collect direct debits; staff give enterprises their
operators; employees read their e-payslips.

An operator logs in like staff: the enterprise's credit code, username and password, then a
code from their own token. Payroll: `POST /corporate/payroll` uploads the file and answers with
the validation report; the maker submits it; another operator with the checker role approves
it with a fresh token code; the bank pays the rows in the background; the result file is
`GET /corporate/payroll/{id}/results.csv`.
"""

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from ebank.channels.api.auth import (
    CustomerPrincipal,
    OperatorSession,
    StaffPrincipal,
    current_customer,
    current_operator,
    staff_role,
)
from ebank.channels.api.common import (
    Before,
    IdempotencyKey,
    ObjectId,
    PageSize,
    read,
    vault_of,
    write,
)
from ebank.channels.api.errors import language_of
from ebank.channels.api.receipts import PRIVATE
from ebank.channels.api.schemas import ERRORS, In, TokenEnrolledOut, TokenOut, handed_over, text
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.corporate import operators, payroll
from ebank.corporate.models import BatchView, Payslip, RowView
from ebank.corporate.tables import OPERATOR_ROLES
from ebank.ops import staff
from ebank.receipts.pdf import render_pdf
from ebank.security import sessions

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Op = Annotated[OperatorSession, Depends(current_operator)]
Me = Annotated[CustomerPrincipal, Depends(current_customer)]
Counter = Annotated[StaffPrincipal, Depends(staff_role(*staff.COUNTER))]
LOGIN, PAYROLL = "corporate: login", "corporate: payroll"
STAFF, PAYSLIPS = "staff: corporate operators", "customer: payslips"


# -- logging in ---------------------------------------------------------------------------------
class OperatorLoginIn(In):
    credit_code: Annotated[str, text(18, "The enterprise's unified social credit code")]
    username: Annotated[str, text(64)]
    password: Annotated[str, text(128)]


class OperatorVerifyIn(In):
    challenge: Annotated[str, text(100)]
    code: Annotated[str, text(16, "The 6-digit code of the operator's token")]


class OperatorOut(BaseModel):
    id: int
    customer_id: int = Field(description="The enterprise")
    username: str
    name: str
    roles: list[str]
    created_at: datetime
    disabled: bool

    @classmethod
    def of(cls, o: operators.Operator) -> "OperatorOut":
        return cls(
            id=o.id, customer_id=o.customer_id, username=o.username, name=o.name,
            roles=list(o.roles), created_at=o.created_at, disabled=o.disabled,
        )  # fmt: skip


class OperatorTokenOut(TokenOut):
    operator: OperatorOut


class ChallengeOut(BaseModel):
    challenge: str = Field(description="Pass to /corporate/auth/login/verify with a token code")
    expires_at: datetime


@router.post("/corporate/auth/login", tags=[LOGIN], summary="Step 1: password")
async def operator_login(request: Request, body: OperatorLoginIn) -> ChallengeOut:
    """Credit code, username and password; a challenge for step 2. Anything wrong, including a
    code or username naming nobody, answers like a wrong password and counts to the lockout."""
    command = operators.begin_login(
        vault_of(request), credit_code=body.credit_code, username=body.username,
        password=body.password,
    )  # fmt: skip
    challenge = (await write(request, command)).value()
    return ChallengeOut(challenge=challenge.token, expires_at=challenge.expires_at)


@router.post("/corporate/auth/login/verify", tags=[LOGIN], summary="Step 2: token code")
async def operator_login_verify(request: Request, body: OperatorVerifyIn) -> OperatorTokenOut:
    command = operators.complete_login(vault_of(request), challenge=body.challenge, code=body.code)
    done = (await write(request, command)).value()
    return OperatorTokenOut(**handed_over(done.started), operator=OperatorOut.of(done.operator))


@router.post("/corporate/auth/logout", tags=[LOGIN], status_code=204, response_class=Response)
async def operator_logout(request: Request, me: Op) -> None:
    await write(
        request,
        sessions.end(
            customer_id=me.operator.customer_id, operator_id=me.operator.id,
            session_id=me.session_id,
        ),
    )  # fmt: skip


@router.get("/corporate/me", tags=[LOGIN], summary="Who I am, with my roles")
async def operator_whoami(me: Op) -> OperatorOut:
    return OperatorOut.of(me.operator)


# -- payroll ------------------------------------------------------------------------------------
class PayrollIn(In):
    account: Annotated[str, text(34, "The enterprise's account that pays")]
    period: Annotated[str, text(7, "The month paid for, YYYY-MM")]
    memo: Annotated[str, text(60)] = ""
    file_name: Annotated[str, text(100, "As the enterprise named the file, e.g. 2026-11.csv")]
    content_base64: Annotated[
        str,
        Field(
            max_length=(payroll.MAX_FILE_BYTES + 2) // 3 * 4,
            description="The CSV file, base64. Header: name,account,amount,note (or "
            "姓名,账号,金额,备注); UTF-8 or GB18030; amounts like 8500.00",
        ),
    ]


class RowOut(BaseModel):
    line: int = Field(description="In the file; the header is line 1")
    name: str
    account: str = Field(description="Masked")
    amount: str
    note: str
    status: Literal["invalid", "pending", "paid", "failed", "skipped"]
    code: str | None = Field(description="Why it is invalid or failed")
    message: str | None
    reference: str | None = Field(description="The ledger entry that paid it")
    done_at: datetime | None

    @classmethod
    def of(cls, r: RowView, lang: str) -> "RowOut":
        return cls(
            line=r.line, name=r.name, account=r.account, amount=format_minor(r.amount),
            note=r.note, status=r.status, code=r.code,  # type: ignore[arg-type]
            message=r.message_zh if lang == "zh" else r.message_en, reference=r.reference,
            done_at=r.done_at,
        )  # fmt: skip


class BatchOut(BaseModel):
    id: int
    reference: str
    account: str
    period: str
    memo: str
    file_name: str
    status: str = Field(
        description="validated (the report is ready) → submitted → approved (the total is held, "
        "rows being paid) → completed; or rejected / cancelled"
    )
    row_count: int
    valid_count: int
    valid_total: str
    paid_count: int
    paid_total: str
    failed_count: int = Field(description="Invalid lines and rows that failed when paid")
    maker: str
    checker: str | None
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    decision_note: str | None
    completed_at: datetime | None

    @classmethod
    def of(cls, b: BatchView) -> "BatchOut":
        return cls(
            **{name: getattr(b, name) for name in cls.model_fields if name not in _AMOUNTS},
            **{name: format_minor(getattr(b, name)) for name in _AMOUNTS},
        )


_AMOUNTS = ("valid_total", "paid_total")


class ReportOut(BatchOut):
    rows: list[RowOut]


class BatchesOut(BaseModel):
    batches: list[BatchOut]


class ApproveIn(In):
    code: Annotated[str, text(16, "A fresh code of my (the checker's) token")]


class RejectIn(In):
    note: Annotated[str, text(200, "Why, for the maker")]


async def _report(request: Request, me: OperatorSession, batch_id: int) -> ReportOut:
    customer_id, lang = me.operator.customer_id, language_of(request)

    def load(conn: Connection) -> ReportOut:
        batch = payroll.batch_of(conn, customer_id=customer_id, batch_id=batch_id)
        rows = payroll.rows_of(conn, customer_id=customer_id, batch_id=batch_id)
        return ReportOut(**BatchOut.of(batch).model_dump(), rows=[RowOut.of(r, lang) for r in rows])

    return await read(request, load)


@router.post("/corporate/payroll", tags=[PAYROLL], status_code=201,
             summary="Upload a payroll file: the validation report, nothing paid")  # fmt: skip
async def upload_payroll(
    request: Request, me: Op, body: PayrollIn, key: IdempotencyKey
) -> ReportOut:
    try:
        content = base64.b64decode(body.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise EbankError("PAYROLL_FILE_INVALID", reason="content_base64 is not base64") from None
    command = payroll.upload(
        vault_of(request), me.operator, account=body.account, period=body.period,
        memo=body.memo, file_name=body.file_name, content=content, idempotency_key=key,
    )  # fmt: skip
    return await _report(request, me, await write(request, command))


@router.get("/corporate/payroll", tags=[PAYROLL], summary="Our payroll batches, newest first")
async def list_payroll(
    request: Request, me: Op, before: Before = None, limit: PageSize = 50
) -> BatchesOut:
    views = await read(
        request,
        lambda conn: payroll.batches_of(
            conn, customer_id=me.operator.customer_id, before=before, limit=limit
        ),
    )
    return BatchesOut(batches=[BatchOut.of(v) for v in views])


@router.get("/corporate/payroll/{batch_id}", tags=[PAYROLL], summary="A batch with its rows")
async def payroll_report(request: Request, me: Op, batch_id: ObjectId) -> ReportOut:
    return await _report(request, me, batch_id)


@router.get(
    "/corporate/payroll/{batch_id}/results.csv", tags=[PAYROLL], response_class=Response,
    summary="The per-row result file", responses={200: {"content": {"text/csv": {}}}},
)  # fmt: skip
async def payroll_results(
    request: Request, me: Op, batch_id: ObjectId,
    lang: Annotated[Literal["zh", "en"] | None, Query()] = None,
) -> Response:  # fmt: skip
    chosen = lang or language_of(request)
    text_ = await read(
        request,
        lambda conn: payroll.results_csv(
            conn, customer_id=me.operator.customer_id, batch_id=batch_id, lang=chosen
        ),
    )
    name = f"payroll-{batch_id}-results.csv"
    headers = PRIVATE | {"Content-Disposition": f'attachment; filename="{name}"'}
    # With a byte-order mark, so that a spreadsheet opens the Chinese as UTF-8.
    return Response("\ufeff" + text_, media_type="text/csv; charset=utf-8", headers=headers)


@router.post("/corporate/payroll/{batch_id}/submit", tags=[PAYROLL],
             summary="Maker: send the batch for approval")  # fmt: skip
async def submit_payroll(request: Request, me: Op, batch_id: ObjectId) -> ReportOut:
    await write(request, payroll.submit(me.operator, batch_id))
    return await _report(request, me, batch_id)


@router.post("/corporate/payroll/{batch_id}/cancel", tags=[PAYROLL],
             summary="Maker: withdraw a batch not yet approved")  # fmt: skip
async def cancel_payroll(request: Request, me: Op, batch_id: ObjectId) -> ReportOut:
    await write(request, payroll.cancel(me.operator, batch_id))
    return await _report(request, me, batch_id)


@router.post("/corporate/payroll/{batch_id}/approve", tags=[PAYROLL],
             summary="Checker: approve with my token code; the total is held and paid")  # fmt: skip
async def approve_payroll(
    request: Request, me: Op, batch_id: ObjectId, body: ApproveIn
) -> ReportOut:
    """Another operator than the maker, with the checker role. Approval holds the valid total
    on the paying account (INSUFFICIENT_FUNDS changes nothing); the rows are then paid in the
    background, each at most once, and the batch completes."""
    checked = await write(
        request, payroll.approve(vault_of(request), me.operator, batch_id, code=body.code)
    )
    checked.value()
    return await _report(request, me, batch_id)


@router.post("/corporate/payroll/{batch_id}/reject", tags=[PAYROLL],
             summary="Checker: send the batch back")  # fmt: skip
async def reject_payroll(request: Request, me: Op, batch_id: ObjectId, body: RejectIn) -> ReportOut:
    await write(request, payroll.reject(me.operator, batch_id, note=body.note))
    return await _report(request, me, batch_id)


@router.get(
    "/corporate/payroll/{batch_id}/rows/{line}/receipt.pdf", tags=[PAYROLL],
    response_class=Response, summary="The receipt (电子回单) of a paid row",
    responses={200: {"content": {"application/pdf": {}}}},
)  # fmt: skip
async def payroll_row_receipt(
    request: Request, me: Op, batch_id: ObjectId, line: ObjectId
) -> Response:
    vault = vault_of(request)
    receipt = await read(
        request,
        lambda conn: payroll.receipt_of(
            conn, vault, customer_id=me.operator.customer_id, batch_id=batch_id, line=line
        ),
    )
    body = await run_in_threadpool(render_pdf, receipt)
    headers = PRIVATE | {"Content-Disposition": f'inline; filename="{receipt.number}.pdf"'}
    return Response(body, media_type="application/pdf", headers=headers)


# -- employees' payslips ------------------------------------------------------------------------
class PayslipOut(BaseModel):
    id: int
    employer: str
    period: str
    amount: str
    note: str
    account: str = Field(description="Masked")
    paid_at: datetime
    reference: str

    @classmethod
    def of(cls, p: Payslip) -> "PayslipOut":
        return cls(
            id=p.id, employer=p.employer, period=p.period, amount=format_minor(p.amount),
            note=p.note, account=p.account, paid_at=p.paid_at, reference=p.reference,
        )  # fmt: skip


class PayslipsOut(BaseModel):
    payslips: list[PayslipOut]


@router.get("/me/payslips", tags=[PAYSLIPS], summary="My e-payslips (电子工资单), newest first")
async def my_payslips(
    request: Request, me: Me, before: Before = None, limit: PageSize = 50
) -> PayslipsOut:
    views = await read(
        request,
        lambda conn: payroll.payslips_of(
            conn, customer_id=me.customer_id, before=before, limit=limit
        ),
    )
    return PayslipsOut(payslips=[PayslipOut.of(v) for v in views])


# -- staff: an enterprise's operators -----------------------------------------------------------
class OperatorIn(In):
    username: Annotated[str, text(32)]
    name: Annotated[str, text(100)]
    roles: Annotated[list[Literal[OPERATOR_ROLES]], Field(min_length=1, max_length=2)]
    password: Annotated[str, text(128, "The first password, typed by the operator")]


class OperatorEnrolledOut(TokenEnrolledOut):
    operator: OperatorOut


class OperatorsOut(BaseModel):
    operators: list[OperatorOut]


@router.post("/staff/enterprises/{customer_id}/operators", tags=[STAFF], status_code=201,
             summary="Give an enterprise an operator login and token")  # fmt: skip
async def add_operator(
    request: Request, me: Counter, customer_id: ObjectId, body: OperatorIn
) -> OperatorEnrolledOut:
    """A retry is a 409 OPERATOR_EXISTS (usernames are unique per enterprise), never a second
    login; the token's URI is shown this once."""
    added = await write(
        request,
        operators.add(
            vault_of(request), customer_id=customer_id, username=body.username, name=body.name,
            roles=tuple(body.roles), password=body.password, actor=me.actor, channel="console",
        ),
    )  # fmt: skip
    operator = OperatorOut.of(added.operator)
    return OperatorEnrolledOut(otpauth_uri=added.otpauth_uri, operator=operator)


@router.get("/staff/enterprises/{customer_id}/operators", tags=[STAFF],
            summary="An enterprise's operators")  # fmt: skip
async def list_operators(request: Request, me: Counter, customer_id: ObjectId) -> OperatorsOut:
    found = await read(request, lambda conn: operators.of_enterprise(conn, customer_id))
    return OperatorsOut(operators=[OperatorOut.of(o) for o in found])


@router.post("/staff/enterprises/{customer_id}/operators/{operator_id}/disable", tags=[STAFF],
             summary="Stop an operator's login; its sessions end")  # fmt: skip
async def disable_operator(
    request: Request, me: Counter, customer_id: ObjectId, operator_id: ObjectId
) -> OperatorOut:
    done = await write(
        request,
        operators.disable(
            customer_id=customer_id, operator_id=operator_id, actor=me.actor, channel="console"
        ),
    )
    return OperatorOut.of(done)
