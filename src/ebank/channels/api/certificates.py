"""The API of digital certificates: the bank's CA certificate, a teller certifying the key
on a customer's USB key, the customer's view of their certificate, and revocation.

Signing a payment (`security.certificates.start_signing` / `verify_signature`) belongs to the
payment's confirmation step, where the payment is known.
"""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from ebank.channels.api.auth import CustomerPrincipal, StaffPrincipal, current_customer, staff_role
from ebank.channels.api.common import ObjectId, read, vault_of, write
from ebank.channels.api.schemas import ERRORS, In, text
from ebank.core.errors import EbankError
from ebank.ops import staff
from ebank.security import certificates
from ebank.security.certificates import Certificate

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Me = Annotated[CustomerPrincipal, Depends(current_customer)]
Counter = Annotated[StaffPrincipal, Depends(staff_role(*staff.COUNTER))]
Reason = Literal["key_compromise", "cessation_of_operation", "affiliation_changed", "unspecified"]


class CertificateOut(BaseModel):
    id: int
    serial: str
    certificate_pem: str
    not_before: datetime | None = None
    not_after: datetime


class CertificateIn(In):
    csr_pem: Annotated[str, text(certificates.MAX_CSR_CHARS, "PKCS#10 request from the USB key")]


class RevokeIn(In):
    reason: Reason = "key_compromise"


def _out(found: Certificate) -> CertificateOut:
    return CertificateOut(
        id=found.id, serial=found.serial, certificate_pem=found.pem,
        not_before=found.not_before, not_after=found.not_after,
    )  # fmt: skip


@router.get("/certificates/ca", tags=["certificates"], response_class=PlainTextResponse,
            summary="The bank's CA certificate (PEM), to check what it issued")  # fmt: skip
async def ca_certificate(request: Request) -> str:
    return await write(request, certificates.ca_certificate(vault_of(request)))


@router.post("/staff/customers/{customer_id}/certificates", tags=["staff: certificates"],
             status_code=201, summary="Certify the key on a customer's USB key")  # fmt: skip
async def issue(
    request: Request, me: Counter, customer_id: ObjectId, body: CertificateIn
) -> CertificateOut:
    """The subject comes from the bank's records, never from the request; a new certificate
    supersedes the customer's previous one."""
    issued = await write(
        request,
        certificates.issue_certificate(
            vault_of(request), customer_id=customer_id, csr_pem=body.csr_pem, actor=me.actor
        ),
    )
    return CertificateOut(
        id=issued.id, serial=issued.serial, certificate_pem=issued.pem, not_after=issued.not_after
    )


@router.post("/staff/customers/{customer_id}/certificates/{certificate_id}/revoke",
             tags=["staff: certificates"], status_code=204, response_class=Response)  # fmt: skip
async def staff_revoke(
    request: Request, me: Counter, customer_id: ObjectId, certificate_id: ObjectId, body: RevokeIn
) -> None:
    await write(
        request,
        certificates.revoke_certificate(
            customer_id=customer_id, certificate_id=certificate_id, reason=body.reason,
            actor=me.actor, channel="counter",
        ),
    )  # fmt: skip


async def _mine(request: Request, me: CustomerPrincipal) -> Certificate:
    found = await read(request, lambda conn: certificates.certificate_of(conn, me.customer_id))
    if found is None:
        raise EbankError("CERTIFICATE_NOT_FOUND")
    return found


@router.get("/me/certificate", tags=["customer: certificates"], summary="My active certificate")
async def my_certificate(request: Request, me: Me) -> CertificateOut:
    return _out(await _mine(request, me))


@router.post("/me/certificate/revoke", tags=["customer: certificates"], status_code=204,
             response_class=Response, summary="Revoke my certificate (a lost USB key)")  # fmt: skip
async def revoke_mine(request: Request, me: Me, body: RevokeIn) -> None:
    found = await _mine(request, me)
    await write(
        request,
        certificates.revoke_certificate(
            customer_id=me.customer_id, certificate_id=found.id, reason=body.reason,
            actor=me.actor, channel=me.channel,
        ),
    )  # fmt: skip
