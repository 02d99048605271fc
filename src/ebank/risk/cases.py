"""Cases: attempts held for review, the staff's queue, and what they decide.

A domain registers how to let one of its held subjects proceed or give its money back
(`register("payment", release=..., reject=...)`). When a decision says "review", the caller
holds the funds and opens a case (`open_case`). Staff see the queue (open and escalated
cases, oldest first) and each case with its evidence: the decision, the rules hit with what
they saw, the customer's recent activity from the aggregates, and their recent decisions.

`decide` releases (the funds proceed), rejects (the funds return) or escalates (to another
member of staff: whoever escalated a case does not decide it). Release and reject run the
registered callback in the same transaction as the case's event, so a decided case has
happened; a decided case is final. Staff may also suspend the payer's or the payee's account
from a case, at once (the emergency path of the Anti-Telecom and Online Fraud Law, Art. 18).
Every action is audited and announced on the outbox (`risk.case`); release, reject and
suspension are told to the customer by SMS in their language.
"""

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ebank.accounts.tables import customer_accounts
from ebank.core import audit, outbox
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx
from ebank.ledger import service as ledger
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.notify import templates
from ebank.notify.notices import NoticeTargets
from ebank.notify.service import send_sms
from ebank.risk import aggregates
from ebank.risk.expr import Aggregate
from ebank.risk.models import Context, Decision
from ebank.risk.service import DecisionRecord, decisions, get_decision
from ebank.risk.tables import risk_case_events, risk_cases

Callback = Callable[[Tx, int, str], None]  # (tx, subject id, actor)
_KINDS: dict[str, tuple[Callback, Callback]] = {}
SYSTEM = "system:risk"
ACTIONS = ("release", "reject", "escalate")  # what staff decide
OPEN = ("open", "escalated")
_DONE = {"release": "released", "reject": "rejected", "escalate": "escalated"}


def register(kind: str, *, release: Callback, reject: Callback) -> None:
    """Say how a held subject of this kind proceeds (`release`) or returns its funds
    (`reject`); each gets the transaction, the subject's id and the deciding actor."""
    if kind in _KINDS:
        raise ValueError(f"case kind {kind} is already registered")
    if not kind or len(kind) > 24:
        raise ValueError("a case kind is 1-24 characters")
    _KINDS[kind] = (release, reject)


@dataclass(frozen=True, slots=True)
class Case:
    id: int
    decision_id: int
    kind: str
    subject_id: int
    customer_id: int
    status: str  # open | escalated | released | rejected
    opened_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class CaseEvent:
    action: str  # open | escalate | release | reject | suspend
    actor: str
    note: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CaseFile:
    """A case with its evidence."""

    case: Case
    decision: DecisionRecord
    events: list[CaseEvent]
    activity: dict[str, int]  # the customer's and accounts' recent aggregates, by label
    recent: list[DecisionRecord]  # the customer's latest decisions


def _event(tx: Tx, case_id: int, action: str, actor: str, note: str) -> None:
    tx.conn.execute(
        risk_case_events.insert().values(
            case_id=case_id, action=action, actor=actor, note=note, at=tx.now
        )
    )


def _announce(tx: Tx, case: Case, status: str) -> None:
    outbox.emit(tx, "risk.case", f"case:{case.id}", {
        "case": case.id, "kind": case.kind, "subject": case.subject_id, "status": status,
        "customer": case.customer_id,
    })  # fmt: skip


def open_case(tx: Tx, decision: Decision, *, kind: str, subject_id: int, customer_id: int) -> int:
    """Open a case for a subject held on `decision`; its id. The caller has already held the
    money and tells the customer the attempt is under review."""
    if kind not in _KINDS:
        raise ValueError(f"no case kind {kind!r} is registered")
    case_id = int(
        tx.conn.execute(
            risk_cases.insert().values(
                decision_id=decision.id, kind=kind, subject_id=subject_id,
                customer_id=customer_id, status="open", opened_at=tx.now,
            )
        ).inserted_primary_key[0]
    )  # fmt: skip
    _event(tx, case_id, "open", SYSTEM, ",".join(r.code for r in decision.reasons)[:500])
    case = Case(case_id, decision.id, kind, subject_id, customer_id, "open", tx.now, None)
    audit.record(
        tx, actor=SYSTEM, action="risk.case.open", subject=f"risk_case:{case_id}",
        detail={"decision": decision.id, "kind": kind, "subject": subject_id,
                "outcome": decision.outcome, "score": decision.score},
    )  # fmt: skip
    _announce(tx, case, "open")
    return case_id


def _note(note: object) -> str:
    if not isinstance(note, str) or len(note) > 500 or not note.isprintable():
        raise EbankError("INVALID_INPUT", reason="a note is printable text of at most 500 chars")
    return note.strip()


def _locked(tx: Tx, case_id: int) -> Case:
    if type(case_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a case id is an integer")
    query = select(risk_cases).where(risk_cases.c.id == case_id)
    row = tx.conn.execute(query.with_for_update()).mappings().first()
    if row is None:
        raise EbankError("RISK_CASE_NOT_FOUND")
    return _case(row)


def decide(
    case_id: int, *, outcome: str, actor: str, note: str, vault: Vault, channel: str = "console"
) -> Command[Case]:
    """Release, reject or escalate an open case (see the module). The vault seals the SMS
    that tells the customer."""

    def run(tx: Tx) -> Case:
        if outcome not in ACTIONS:
            raise EbankError("INVALID_INPUT", reason=f"a case outcome is one of {ACTIONS}")
        text = _note(note)
        case = _locked(tx, case_id)
        if case.status not in OPEN:
            raise EbankError("RISK_CASE_DECIDED", status=case.status)
        if outcome == "escalate" and case.status == "escalated":
            raise EbankError("RISK_CASE_ESCALATED")
        if case.status == "escalated" and _escalated_by(tx, case.id) == actor:
            raise EbankError("RISK_SAME_REVIEWER")
        status = _DONE[outcome]
        if outcome != "escalate":
            release, reject = _KINDS[case.kind]
            (release if outcome == "release" else reject)(tx, case.subject_id, actor)
        decided_at = None if outcome == "escalate" else tx.now
        tx.conn.execute(
            risk_cases.update().where(risk_cases.c.id == case.id)
            .values(status=status, decided_at=decided_at)
        )  # fmt: skip
        _event(tx, case.id, outcome, actor, text)
        audit.record(
            tx, actor=actor, action=f"risk.case.{outcome}", subject=f"risk_case:{case.id}",
            channel=channel, detail={"kind": case.kind, "subject": case.subject_id, "note": text},
        )  # fmt: skip
        decided = Case(case.id, case.decision_id, case.kind, case.subject_id, case.customer_id,
                       status, case.opened_at, decided_at)  # fmt: skip
        _announce(tx, decided, status)
        if outcome != "escalate":
            _tell_outcome(tx, vault, decided, get_decision(tx.conn, case.decision_id), outcome)
        return decided

    return Command(run)


def _escalated_by(tx: Tx, case_id: int) -> str | None:
    e = risk_case_events
    return tx.conn.execute(
        select(e.c.actor).where(e.c.case_id == case_id, e.c.action == "escalate")
        .order_by(e.c.id.desc()).limit(1)
    ).scalar()  # fmt: skip


def suspend_account(
    case_id: int, *, which: str, actor: str, note: str, vault: Vault, channel: str = "console"
) -> Command[str]:
    """Suspend the payer's (`which="payer"`) or the payee's ("payee") account here, at once,
    whatever the case's status; its new status. The account's holder is told."""

    def run(tx: Tx) -> str:
        if which not in ("payer", "payee"):
            raise EbankError("INVALID_INPUT", reason='which account: "payer" or "payee"')
        text = _note(note)
        case = _locked(tx, case_id)
        context = get_decision(tx.conn, case.decision_id).context
        ledger_id = context["account_id" if which == "payer" else "payee_account_id"]
        holder = None if ledger_id is None else _holder(tx.conn, ledger_id)
        if holder is None:
            raise EbankError("INVALID_INPUT", reason=f"the {which} has no account here")
        customer_id, number, status = holder
        if status != "suspended":
            status = ledger.set_status(tx, account_id=ledger_id, status="suspended").status
        _event(tx, case.id, "suspend", actor, text)
        audit.record(
            tx, actor=actor, action="risk.case.suspend", subject=f"account:{number}",
            channel=channel, detail={"case": case.id, "which": which, "note": text},
        )  # fmt: skip
        _tell(tx, vault, customer_id, "suspended", last4=number[-4:])
        return status

    return Command(run)


def _holder(conn: Connection, ledger_id: int) -> tuple[int, str, str] | None:
    """(customer, account number, status) of a customer account by its ledger id."""
    row = conn.execute(
        select(customer_accounts.c.customer_id, ledger_accounts.c.code, ledger_accounts.c.status)
        .join(ledger_accounts, ledger_accounts.c.id == customer_accounts.c.ledger_account_id)
        .where(customer_accounts.c.ledger_account_id == ledger_id)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


# -- telling the customer ----------------------------------------------------------------------
NOTICES: dict[str, tuple[str, str]] = {
    "released": (
        "您{time}发起的{what}{amount}经人工核实已放行，将继续办理。【ebank】",
        "[ebank] Your {what}{amount} of {time} was checked and released; it goes ahead.",
    ),
    "rejected": (
        "为保障您的资金安全，您{time}发起的{what}{amount}未予办理，资金已退回。如有疑问请致电本行"
        "客服热线或到网点咨询。【ebank】",
        "[ebank] For your safety your {what}{amount} of {time} was not carried out and the "
        "money was returned. Questions: call our hotline or visit a branch.",
    ),
    "suspended": (
        "您尾号{last4}的账户已暂停非柜面业务，请本人携身份证件到网点办理。【ebank】",
        "[ebank] Non-counter business on your account ending {last4} is suspended: please "
        "visit a branch with your ID.",
    ),
}
WHAT = {"payment": ("付款", "payment"), "gateway_payment": ("网上支付", "online payment")}


def _tell(tx: Tx, vault: Vault, customer_id: int, notice: str, **fields: str) -> None:
    target = tx.part(NoticeTargets).get(customer_id)
    if target is None or not target.mobile:
        return
    zh = target.preferences.locale == "zh-CN"
    body = NOTICES[notice][0 if zh else 1].format(**fields)
    send_sms(tx, vault, customer_id=customer_id, kind="risk", body=body)


def _tell_outcome(tx: Tx, vault: Vault, case: Case, decision: DecisionRecord, outcome: str) -> None:
    target = tx.part(NoticeTargets).get(case.customer_id)
    locale = "en" if target is not None and target.preferences.locale == "en" else "zh-CN"
    zh = locale == "zh-CN"
    what = WHAT.get(decision.event, ("交易", "transaction"))[0 if zh else 1]
    amount = ""
    if decision.amount:
        yuan = templates.yuan(decision.amount)
        amount = f"¥{yuan}" if zh else f" of CNY {yuan}"
    _tell(tx, vault, case.customer_id, _DONE[outcome], what=what, amount=amount,
          time=templates.moment(decision.at, locale))  # fmt: skip


# -- reading -----------------------------------------------------------------------------------
def _case(row: Any) -> Case:
    return Case(
        row["id"], row["decision_id"], row["kind"], row["subject_id"], row["customer_id"],
        row["status"], as_utc(row["opened_at"]),
        None if row["decided_at"] is None else as_utc(row["decided_at"]),
    )  # fmt: skip


def get_case(conn: Connection, case_id: int) -> Case:
    row = conn.execute(select(risk_cases).where(risk_cases.c.id == case_id)).mappings().first()
    if row is None:
        raise EbankError("RISK_CASE_NOT_FOUND")
    return _case(row)


def queue(
    conn: Connection, *, status: str | None = None, after: int | None = None, limit: int = 50
) -> list[Case]:
    """Cases waiting (open and escalated, or one status), oldest first; `after` pages on."""
    c = risk_cases
    wanted = OPEN if status is None else (status,)
    query = select(c).where(c.c.status.in_(wanted)).order_by(c.c.id).limit(limit)
    if after is not None:
        query = query.where(c.c.id > after)
    return [_case(row) for row in conn.execute(query).mappings()]


def _activity_plan() -> aggregates.Plan:
    """What staff see of recent activity: the customer's and the two accounts' aggregates."""
    wanted = [
        ("count", "customer", "payment", "1h"), ("count", "customer", "payment", "24h"),
        ("sum", "customer", "payment", "24h"), ("count", "customer", "payment", "7d"),
        ("sum", "customer", "payment", "7d"), ("count", "customer", "login", "24h"),
        ("count", "customer", "payee_add", "7d"), ("distinct", "customer", "payees", "24h"),
        ("distinct", "customer", "devices", "7d"), ("sum", "account", "inflow", "24h"),
        ("sum", "account", "outflow", "24h"), ("sum", "payee_account", "inflow", "24h"),
        ("distinct", "payee_account", "payers", "24h"),
    ]  # fmt: skip
    found = []
    for fn, entity, metric, span in wanted:
        res_count = aggregates.window(span)
        assert res_count is not None
        label = f'{fn}({entity},"{metric}","{span}")'
        found.append(Aggregate(fn, entity, metric, res_count, label))
    return aggregates.Plan((), found, ())


_ACTIVITY = _activity_plan()
_CONTEXT = {f.name for f in fields(Context)}


def case_file(conn: Connection, case_id: int, *, now: datetime) -> CaseFile:
    """The case with its evidence, activity as of `now`."""
    case = get_case(conn, case_id)
    decision = get_decision(conn, case.decision_id)
    e = risk_case_events
    events = [
        CaseEvent(row.action, row.actor, row.note, as_utc(row.at))
        for row in conn.execute(select(e).where(e.c.case_id == case_id).order_by(e.c.id))
    ]
    ctx = Context(**{k: v for k, v in decision.context.items() if k in _CONTEXT})
    env = _ACTIVITY.gather(conn, ctx, now)
    activity = {label: env[key] for key, label in _ACTIVITY.labels.items()}
    recent = decisions(conn, customer_id=case.customer_id, limit=20)
    return CaseFile(case, decision, events, activity, recent)
