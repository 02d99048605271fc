"""What the clearing tests share: our bank's app with its inbound endpoint, and messages as the
house would deliver them."""

import itertools
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine, select

from ebank.app import create_app
from ebank.clearing.house import SIM_BANK
from ebank.clearing.messages import CreditTransfer, Header, Message, StatusReport, parse, sign
from ebank.clearing.messages import verify as verify_signature
from ebank.clearing.tables import clearing_messages
from ebank.core.settings import Settings, get_settings

SETTINGS = get_settings()
OURS, SECRET = SETTINGS.bank_code, SETTINGS.clearing_secret.get_secret_value()
INBOUND = "/api/v1/clearing/messages"
_ids = itertools.count(1)


def bank_app(settings: Settings | None = None, **kwargs: Any) -> FastAPI:
    """Our bank's app, with the clearing house's way in."""
    return create_app(settings or Settings(), **kwargs)


def incoming(
    *, account: str, name: str, amount: int, now: datetime, sender: str = SIM_BANK,
    e2e: str | None = None, **change: Any,
) -> CreditTransfer:  # fmt: skip
    """A credit transfer from the simulated bank to one of our accounts, with fresh ids."""
    n = next(_ids)
    e2e = e2e or f"E-test-{n}"
    fields = {
        "header": Header(f"M-test-{n}", now, sender, OURS), "instr_id": e2e,
        "end_to_end_id": e2e, "tx_id": e2e, "amount": amount, "currency": "CNY",
        "debtor_name": "李雷", "debtor_account": "6222020000000001", "debtor_agent": sender,
        "creditor_agent": OURS, "creditor_name": name, "creditor_account": account,
        "remittance": "货款",
    }  # fmt: skip
    return CreditTransfer(**(fields | change))


def deliver(
    http: httpx.Client, message: Message | bytes, *, now: datetime, secret: str = SECRET
) -> httpx.Response:
    body = message if isinstance(message, bytes) else message.to_xml()
    return http.post(INBOUND, content=body, headers=sign(secret, body, now=now))


def answer_of(response: httpx.Response, *, now: datetime) -> StatusReport:
    """The signed pacs.002 our bank answered with."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    verify_signature(SECRET, response.content, response.headers, now=now)
    report = parse(response.content)
    assert isinstance(report, StatusReport)
    return report


def logged(engine: Engine, end_to_end_id: str) -> list[tuple[str, str, str | None, str | None]]:
    """(direction, kind, status, reason) of every message logged about a transaction."""
    m = clearing_messages
    with engine.connect() as conn:
        rows = conn.execute(
            select(m.c.direction, m.c.kind, m.c.status, m.c.reason)
            .where(m.c.end_to_end_id == end_to_end_id).order_by(m.c.id)
        )  # fmt: skip
        return [tuple(row) for row in rows]  # type: ignore[misc]
