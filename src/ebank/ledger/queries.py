"""Reading the ledger: balances, entries, holds, statements, and the invariant check.

Reads use any connection (not the writer's); they see what has been committed.
"""

import base64
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from ebank.core.clock import as_utc, business_date, business_day_bounds
from ebank.core.errors import EbankError
from ebank.ledger.models import (
    AccountView,
    EntryView,
    HoldView,
    Posting,
    StatementLine,
    StatementPage,
    parse_reference,
)
from ebank.ledger.models import reference as make_reference
from ebank.ledger.service import latest_balance
from ebank.ledger.tables import accounts, entries, holds, postings

MAX_PAGE = 500


_VIEW_COLUMNS = (
    accounts.c.id, accounts.c.code, accounts.c.name, accounts.c.kind, accounts.c.currency,
    accounts.c.normal_side, accounts.c.status, accounts.c.credit_line,
    accounts.c.overdraft_allowed, latest_balance(accounts.c.id), accounts.c.held,
    accounts.c.ceiling,
)  # fmt: skip


def _view(row: Any) -> AccountView:
    values = list(row)
    values[8] = bool(values[8])
    return AccountView(*values)


def get_account(
    conn: Connection, *, account_id: int | None = None, code: str | None = None
) -> AccountView:
    query = select(*_VIEW_COLUMNS)
    if account_id is not None:
        query = query.where(accounts.c.id == account_id)
    elif code is not None:
        query = query.where(accounts.c.code == code)
    else:
        raise ValueError("give account_id or code")
    row = conn.execute(query).first()
    if row is None:
        raise EbankError("ACCOUNT_NOT_FOUND")
    return _view(row)


def list_accounts(
    conn: Connection, *, kind: str | None = None, limit: int = 50
) -> list[AccountView]:
    """Accounts in code order, with balances; `kind` is customer or internal."""
    query = select(*_VIEW_COLUMNS).order_by(accounts.c.code).limit(limit)
    if kind is not None:
        query = query.where(accounts.c.kind == kind)
    return [_view(row) for row in conn.execute(query)]


def get_entry(
    conn: Connection, *, entry_id: int | None = None, reference: str | None = None
) -> EntryView:
    day = None
    if entry_id is None:
        if reference is None:
            raise ValueError("give entry_id or reference")
        parsed = parse_reference(reference)
        if parsed is None or parsed[0] != "E":
            raise EbankError("ENTRY_NOT_FOUND")
        _, day, entry_id = parsed
    row = conn.execute(select(entries).where(entries.c.id == entry_id)).mappings().first()
    if row is None or (day is not None and business_date(as_utc(row["created_at"])) != day):
        raise EbankError("ENTRY_NOT_FOUND")
    reversed_by = conn.execute(
        select(entries.c.id).where(entries.c.reverses_id == row["id"])
    ).scalar()
    legs = conn.execute(
        select(
            postings.c.account_id,
            accounts.c.code,
            accounts.c.currency,
            postings.c.side,
            postings.c.amount,
            postings.c.balance_after,
        )
        .join(accounts, accounts.c.id == postings.c.account_id)
        .where(postings.c.entry_id == row["id"])
        .order_by(postings.c.id)
    )
    created_at = as_utc(row["created_at"])
    return EntryView(
        row["id"],
        make_reference("E", row["id"], created_at),
        row["kind"],
        row["memo"],
        created_at,
        row["reverses_id"],
        reversed_by,
        row["hold_id"],
        tuple(Posting(*leg) for leg in legs),
    )


def get_hold(conn: Connection, hold_id: int) -> HoldView:
    row = conn.execute(select(holds).where(holds.c.id == hold_id)).mappings().first()
    if row is None:
        raise EbankError("HOLD_NOT_FOUND")
    created_at = as_utc(row["created_at"])
    return HoldView(
        row["id"],
        make_reference("H", row["id"], created_at),
        row["account_id"],
        row["amount"],
        row["remaining"],
        row["status"],
        row["memo"],
        as_utc(row["expires_at"]),
        created_at,
    )


def _encode_cursor(posting_id: int) -> str:
    return base64.urlsafe_b64encode(f"p{posting_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("p") or not raw[1:].isdigit() or len(raw) > 20:
            raise ValueError(raw)
        posting_id = int(raw[1:])
        if not 0 < posting_id < 2**63:
            raise ValueError(raw)
        return posting_id
    except (ValueError, UnicodeDecodeError):
        raise EbankError("INVALID_INPUT", reason="the cursor is not one this API gave") from None


def statement(
    conn: Connection,
    account_id: int,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    min_amount: int | None = None,
    max_amount: int | None = None,
    side: str | None = None,
    newest_first: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> StatementPage:
    """An account's postings with the running balance, filtered, one page at a time.

    Dates are business days (Asia/Shanghai), inclusive; datetimes are exact instants,
    `until` exclusive. The cursor continues where the previous page stopped.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise EbankError("INVALID_INPUT", reason=f"limit is 1 to {MAX_PAGE}")
    if side not in (None, "D", "C"):
        raise EbankError("INVALID_INPUT", reason="side is D or C")
    p = postings
    conditions = [p.c.account_id == account_id]
    if since is not None:
        start = business_day_bounds(since)[0] if type(since) is date else as_utc(since)
        conditions.append(p.c.posted_at >= start)
    if until is not None:
        end = business_day_bounds(until)[1] if type(until) is date else as_utc(until)
        conditions.append(p.c.posted_at < end)
    if min_amount is not None:
        conditions.append(p.c.amount >= min_amount)
    if max_amount is not None:
        conditions.append(p.c.amount <= max_amount)
    if side is not None:
        conditions.append(p.c.side == side)
    if cursor is not None:
        after = _decode_cursor(cursor)
        conditions.append(p.c.id < after if newest_first else p.c.id > after)
    rows = conn.execute(
        select(
            p.c.id,
            p.c.entry_id,
            entries.c.kind,
            entries.c.memo,
            p.c.side,
            p.c.amount,
            p.c.balance_after,
            p.c.posted_at,
        )
        .join(entries, entries.c.id == p.c.entry_id)
        .where(and_(*conditions))
        .order_by(p.c.id.desc() if newest_first else p.c.id)
        .limit(limit + 1)
    ).all()
    lines = tuple(
        StatementLine(
            pid,
            eid,
            make_reference("E", eid, as_utc(at)),
            kind,
            memo,
            side,
            amount,
            after,
            as_utc(at),
        )
        for pid, eid, kind, memo, side, amount, after, at in rows[:limit]
    )
    more = len(rows) > limit
    return StatementPage(lines, _encode_cursor(lines[-1].posting_id) if more else None)


def check_invariants(conn: Connection, *, check_running: bool = True) -> list[str]:
    """Every way the ledger could be wrong, checked against its own history; [] when sound.

    `check_running` also recomputes every posting's running balance (quadratic in an
    account's history: for tests, not for a ledger of millions of postings).
    """
    postings_b = postings.alias("pb")
    problems: list[str] = []
    signed = func.sum(case((postings.c.side == "D", postings.c.amount), else_=-postings.c.amount))
    unbalanced = conn.execute(
        select(postings.c.entry_id, accounts.c.currency)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .group_by(postings.c.entry_id, accounts.c.currency)
        .having(signed != 0)
        .limit(10)
    ).all()
    problems += [f"entry {e} does not balance in {c}" for e, c in unbalanced]
    short = (
        conn.execute(
            select(entries.c.id)
            .outerjoin(postings, postings.c.entry_id == entries.c.id)
            .group_by(entries.c.id)
            .having(func.count(postings.c.id) < 2)
            .limit(10)
        )
        .scalars()
        .all()
    )
    problems += [f"entry {e} has fewer than two postings" for e in short]

    sums = (
        select(postings.c.account_id, signed.label("net"), func.max(postings.c.id).label("last"))
        .group_by(postings.c.account_id)
        .subquery()
    )
    last_after = (
        select(postings.c.balance_after).where(postings.c.id == sums.c.last).scalar_subquery()
    )
    held_sum = (
        select(func.coalesce(func.sum(holds.c.remaining), 0))
        .where(holds.c.account_id == accounts.c.id, holds.c.status == "pending")
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            accounts.c.id,
            accounts.c.normal_side,
            accounts.c.held,
            accounts.c.credit_line,
            accounts.c.overdraft_allowed,
            accounts.c.ceiling,
            func.coalesce(sums.c.net, 0),
            func.coalesce(last_after, 0),
            held_sum,
        ).outerjoin(sums, sums.c.account_id == accounts.c.id)
    )
    for acc_id, normal, held, credit_line, overdraft, ceiling, net, balance, pending in rows:
        from_postings = int(net) if normal == "D" else -int(net)
        if balance != from_postings:
            problems.append(f"account {acc_id}: balance {balance} != postings {from_postings}")
        if held != pending:
            problems.append(f"account {acc_id}: held {held} != pending holds {pending}")
        if not overdraft and balance - held + credit_line < 0:
            problems.append(f"account {acc_id}: below its floor ({balance} - {held})")
        if ceiling is not None and balance > ceiling:
            problems.append(f"account {acc_id}: above its ceiling ({balance} > {ceiling})")
    running = (
        conn.execute(
            select(postings.c.account_id)
            .where(
                postings.c.balance_after
                != select(
                    func.sum(
                        case(
                            (postings_b.c.side == accounts.c.normal_side, postings_b.c.amount),
                            else_=-postings_b.c.amount,
                        )
                    )
                )
                .where(
                    postings_b.c.account_id == postings.c.account_id,
                    postings_b.c.id <= postings.c.id,
                )
                .join_from(postings_b, accounts, accounts.c.id == postings_b.c.account_id)
                .scalar_subquery()
            )
            .limit(10)
        )
        .scalars()
        .all()
        if check_running
        else []
    )
    problems += [f"account {a}: a running balance does not match its history" for a in running]
    return problems
