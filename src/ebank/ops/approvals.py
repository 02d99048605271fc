"""Maker-checker: a sensitive staff action is proposed by one person and carried out only when
a different person approves it.

Domains register the actions they allow (`register`). Approving runs the action in the same
transaction as the decision, so an approved action has happened, and an action that fails
(say, closing an account that still holds money) leaves the request pending with nothing done.
Every proposal and decision is audited.

An action that seals what it makes (a card's number) is registered with `register_sealing`:
approving it needs the bank's vault, which the channel that decides passes to `approve`.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ebank.core import audit
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError, checked_text
from ebank.core.writer import Command, Tx
from ebank.ops.tables import approval_decisions, approval_requests

# What an action does, given the request's params and who approved it.
Handler = Callable[[Tx, dict[str, Any], str], Any]
# The same for an action that seals what it makes: it is given the bank's vault too.
SealingHandler = Callable[[Tx, dict[str, Any], str, Vault], Any]
Subject = Callable[[Tx, dict[str, Any]], str]
_ACTIONS: dict[str, tuple[Callable[[Tx, dict[str, Any], str, Vault | None], Any], Subject]] = {}


def register(action: str, run: Handler, *, subject: Subject) -> None:
    """Allow `action` under maker-checker. `subject` names what it acts on and checks the
    params when it is proposed (raising an EbankError for bad ones)."""
    _allow(action, lambda tx, params, checker, _vault: run(tx, params, checker), subject)


def register_sealing(action: str, run: SealingHandler, *, subject: Subject) -> None:
    """Allow `action`, which seals what it makes (a card's number), under maker-checker."""

    def sealed(tx: Tx, params: dict[str, Any], checker: str, vault: Vault | None) -> Any:
        if vault is None:
            raise RuntimeError(f"approving {action} needs the bank's vault")
        return run(tx, params, checker, vault)

    _allow(action, sealed, subject)


def _allow(
    action: str, run: Callable[[Tx, dict[str, Any], str, Vault | None], Any], subject: Subject
) -> None:
    if action in _ACTIONS:
        raise ValueError(f"action {action} is already registered")
    _ACTIONS[action] = (run, subject)


@dataclass(frozen=True, slots=True)
class Approval:
    id: int
    action: str
    subject: str
    params: dict[str, Any]
    reason: str
    maker: str
    made_at: datetime
    status: str  # pending | approved | rejected
    checker: str | None
    note: str | None


def propose(
    action: str, params: dict[str, Any], *, reason: str, maker: str, channel: str = "console"
) -> Command[int]:
    """Ask for an action; returns the request id for a checker to decide."""

    def run(tx: Tx) -> int:
        entry = _ACTIONS.get(action)
        if entry is None:
            raise EbankError("INVALID_INPUT", reason=f"no such action: {action[:40]}")
        subject = entry[1](tx, params)
        request_id = tx.conn.execute(
            approval_requests.insert().values(
                action=action,
                subject=subject,
                params=json.dumps(params, sort_keys=True),
                reason=checked_text(reason, "a reason", 500),
                maker=checked_text(maker, "the maker", 128),
                made_at=tx.now,
            )
        ).inserted_primary_key[0]
        audit.record(
            tx,
            actor=maker,
            action=f"{action}.propose",
            subject=subject,
            channel=channel,
            detail={"request": request_id, "reason": reason},
        )
        return int(request_id)

    return Command(run)


def _pending(tx: Tx, request_id: int) -> Any:
    if type(request_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a request id is an integer")
    # Locked, so that a second checker waits for the first and then sees the decision.
    query = select(approval_requests).where(approval_requests.c.id == request_id)
    request = tx.conn.execute(query.with_for_update()).mappings().first()
    if request is None:
        raise EbankError("APPROVAL_NOT_FOUND")
    decided = tx.conn.execute(
        select(approval_decisions.c.outcome).where(approval_decisions.c.request_id == request_id)
    ).scalar()
    if decided is not None:
        raise EbankError("APPROVAL_DECIDED", outcome=decided)
    return request


_VERBS = {"approved": "approve", "rejected": "reject"}  # for the audit's action names


def _decide(tx: Tx, request: Any, outcome: str, checker: str, note: str, channel: str) -> None:
    checker = checked_text(checker, "the checker", 128)
    if checker == request["maker"]:
        raise EbankError("SAME_MAKER_AND_CHECKER")
    tx.conn.execute(
        approval_decisions.insert().values(
            request_id=request["id"],
            outcome=outcome,
            checker=checker,
            note=note,
            decided_at=tx.now,
        )
    )
    audit.record(
        tx,
        actor=checker,
        action=f"{request['action']}.{_VERBS[outcome]}",
        subject=request["subject"],
        channel=channel,
        detail={"request": request["id"], "maker": request["maker"], "note": note},
    )


def approve(
    request_id: int, *, checker: str, note: str = "", channel: str = "console",
    vault: Vault | None = None,
) -> Command[Any]:  # fmt: skip
    """Approve and carry out a pending request; the action's result is returned. `vault` is
    needed by an action registered with `register_sealing`."""

    def run(tx: Tx) -> Any:
        if not isinstance(note, str) or len(note) > 500:
            raise EbankError("INVALID_INPUT", reason="a note is text of at most 500 characters")
        request = _pending(tx, request_id)
        handler = _ACTIONS[request["action"]][0]
        _decide(tx, request, "approved", checker, note.strip(), channel)
        return handler(tx, json.loads(request["params"]), checker, vault)

    return Command(run)


def reject(request_id: int, *, checker: str, note: str, channel: str = "console") -> Command[None]:
    """Turn a pending request down; nothing is done."""

    def run(tx: Tx) -> None:
        request = _pending(tx, request_id)
        _decide(tx, request, "rejected", checker, checked_text(note, "a note", 500), channel)

    return Command(run)


def get(conn: Connection, request_id: int) -> Approval:
    row = (
        conn.execute(
            select(
                approval_requests,
                approval_decisions.c.outcome,
                approval_decisions.c.checker,
                approval_decisions.c.note,
            )
            .outerjoin(
                approval_decisions, approval_decisions.c.request_id == approval_requests.c.id
            )
            .where(approval_requests.c.id == request_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise EbankError("APPROVAL_NOT_FOUND")
    return Approval(
        row["id"],
        row["action"],
        row["subject"],
        json.loads(row["params"]),
        row["reason"],
        row["maker"],
        as_utc(row["made_at"]),
        row["outcome"] or "pending",
        row["checker"],
        row["note"],
    )


def pending(conn: Connection, *, limit: int = 100) -> list[Approval]:
    """Requests waiting for a checker, oldest first."""
    ids = (
        conn.execute(
            select(approval_requests.c.id)
            .outerjoin(
                approval_decisions, approval_decisions.c.request_id == approval_requests.c.id
            )
            .where(approval_decisions.c.id.is_(None))
            .order_by(approval_requests.c.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    return [get(conn, i) for i in ids]
